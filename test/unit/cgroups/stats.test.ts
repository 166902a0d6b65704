// Statistics parsed from fake v1 and v2 files, printed with runc's field names and omitempty rules.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pageSizeName, parseBlkio, statsJson, toJson, v1Stats, v2Stats } from '../../../src/cgroups/stats';
import { FakeTree } from './fake-tree';

test('v1 statistics: cpuacct, cpu.stat, memory, pids, blkio, hugetlb', () => {
  const t = new FakeTree();
  try {
    const dirs: Record<string, string> = {
      cpuacct: t.cgroup('cpuacct/c1', { 'cpuacct.usage': '5000', 'cpuacct.usage_percpu': '3000 2000 ', 'cpuacct.stat': 'user 2\nsystem 1\n', 'cpuacct.usage_all': 'cpu user system\n0 2000 1000\n1 1500 500\n' }),
      cpu: t.cgroup('cpu/c1', { 'cpu.stat': 'nr_periods 10\nnr_throttled 3\nthrottled_time 999\n' }),
      memory: t.cgroup('memory/c1', {
        'memory.stat': 'cache 4096\nrss 8192\n', 'memory.usage_in_bytes': '12288', 'memory.max_usage_in_bytes': '20480', 'memory.failcnt': '2', 'memory.limit_in_bytes': '9223372036854771712',
        'memory.memsw.usage_in_bytes': '12288', 'memory.memsw.limit_in_bytes': '9223372036854771712',
      }),
      pids: t.cgroup('pids/c1', { 'pids.current': '3', 'pids.max': 'max' }),
      blkio: t.cgroup('blkio/c1', { 'blkio.throttle.io_service_bytes_recursive': '8:0 Read 4096\n8:0 Write 0\nTotal 4096\n', 'blkio.throttle.io_serviced_recursive': '8:0 Read 1\n' }),
      hugetlb: t.cgroup('hugetlb/c1', { 'hugetlb.2MB.usage_in_bytes': '0', 'hugetlb.2MB.max_usage_in_bytes': '2097152', 'hugetlb.2MB.failcnt': '1' }),
    };
    const s = v1Stats((c) => dirs[c], ['2MB']);
    const j = JSON.parse(toJson({ type: 'stats', id: 'c1', data: statsJson(s) })) as { data: Record<string, Record<string, unknown>> };
    assert.deepEqual(j.data['cpu'], {
      usage: { total: 5000, percpu: [3000, 2000], percpu_kernel: [1000, 500], percpu_user: [2000, 1500], kernel: 10000000, user: 20000000 },
      throttling: { periods: 10, throttledPeriods: 3, throttledTime: 999 },
    });
    const mem = j.data['memory'] as Record<string, unknown>;
    assert.equal(mem['cache'], 4096);
    assert.deepEqual(mem['usage'], { limit: 9223372036854772000, usage: 12288, max: 20480, failcnt: 2 });
    // Zero values of omitempty fields are left out, the others always printed, as Go's encoder does.
    assert.deepEqual(mem['kernel'], { limit: 0, failcnt: 0 });
    assert.deepEqual(mem['raw'], { cache: 4096, rss: 8192 });
    assert.deepEqual(j.data['pids'], { current: 3 });
    assert.deepEqual(j.data['blkio'], { ioServiceBytesRecursive: [{ major: 8, op: 'Read', value: 4096 }, { major: 8, op: 'Write' }], ioServicedRecursive: [{ major: 8, op: 'Read', value: 1 }] });
    assert.deepEqual(j.data['hugetlb'], { '2MB': { max: 2097152, failcnt: 1 } });
    // uint64 past 2^53 printed exactly.
    assert.match(toJson(statsJson(s)), /"limit":9223372036854771712/);
  } finally {
    t.remove();
  }
});

test('v2 statistics from one directory, mapped as runc maps them', () => {
  const t = new FakeTree();
  try {
    const dir = t.cgroup('c1', {
      'cpu.stat': 'usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 4\nnr_throttled 1\nthrottled_usec 7\n',
      'memory.current': '1000', 'memory.max': 'max', 'memory.peak': '2000', 'memory.events': 'low 0\nhigh 0\nmax 5\noom 1\noom_kill 1\n',
      'memory.stat': 'anon 600\nfile 400\n', 'memory.swap.current': '10', 'memory.swap.max': 'max',
      'pids.current': '2', 'pids.max': '10', 'io.stat': '8:0 rbytes=100 wbytes=200 rios=1 wios=2 dbytes=0 dios=0\n',
    });
    const s = v2Stats(dir, []);
    assert.equal(s.cpu.usage.total, 1_500_000n);
    assert.equal(s.cpu.usage.kernel, 500_000n);
    assert.equal(s.cpu.throttling.throttledTime, 7000n);
    assert.equal(s.memory.cache, 400n);
    assert.equal(s.memory.usage.limit, (1n << 64n) - 1n);
    assert.equal(s.memory.usage.failcnt, 5n);
    assert.equal(s.memory.swap.usage, 1010n);
    assert.deepEqual(s.pids, { current: 2n, limit: 10n });
    assert.deepEqual(s.blkio.ioServiceBytesRecursive.map((e) => [e.op, e.value]), [['Read', 100n], ['Write', 200n]]);
    assert.equal(join(dir), dir);
  } finally {
    t.remove();
  }
});

test('page sizes are named as runc names them; blkio lines without a device are skipped', () => {
  assert.equal(pageSizeName('hugepages-2048kB'), '2MB');
  assert.equal(pageSizeName('hugepages-1048576kB'), '1GB');
  assert.equal(pageSizeName('hugepages-64kB'), '64KB');
  assert.deepEqual(parseBlkio('Total 5\n'), []);
});
