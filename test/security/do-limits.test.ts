// Issue 22, finding 5: `do` set no pids or memory limit (3,000 processes ran), and sized /tmp,
// /var/tmp and /run at half the host's memory each. Limits are on by default, stated in the help,
// changeable with --memory, --pids and --cpus; the in-memory file systems together fit in the
// memory limit.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime, integrationSkip, has, waitFor } from '../integration/harness';
import { runProcesses } from '../helpers/run-scope';
import { vmSkip, VM_CALL } from '../integration/vm-helpers';

const skip = integrationSkip();

const DEFAULT_MEMORY = 2 * 1024 ** 3;
const DEFAULT_PIDS = 1024;

// Forks until the kernel refuses (or `want` children run), each child parked until the end.
const BOMB = [
  'import os, signal, sys',
  'want = int(sys.argv[1]); n = 0',
  'while n < want:',
  '    try:',
  '        pid = os.fork()',
  '    except OSError:',
  '        break',
  '    if pid == 0:',
  '        signal.pause(); os._exit(0)',
  '    n += 1',
  'print("forked", n)',
].join('\n');

/** The kB sizes `df` reports for each mount point, summed. */
function dfTotalKb(out: string): number {
  return out.trim().split('\n').slice(1).reduce((t, l) => t + Number(l.split(/\s+/)[1] ?? 'NaN'), 0);
}

describe('do: limits on by default (issue 22, finding 5)', { skip }, () => {
  let rt: Runtime;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  test('the help states the defaults and the flags that change them', () => {
    const r = rt.run(['do', '--help']);
    const text = r.stdout + r.stderr;
    for (const flag of ['--memory', '--pids', '--cpus']) assert.match(text, new RegExp(flag));
    assert.match(text, /2g|2 GiB/);
    assert.match(text, /1024/);
  });

  for (const level of ['namespaces', 'sentry'] as const) {
    test(`${level}: the default memory and pids limits, and --cpus, are in the container's cgroups`, async () => {
      const arg = `51.${level === 'sentry' ? 1 : 2}`;
      const child = rt.spawn(['do', '--isolation', level, '--cpus', '0.5', '--', 'sleep', arg]);
      const exited = new Promise((r) => child.once('exit', r));
      try {
        await waitFor(() => runProcesses(`sleep ${arg}`).some((p) => p.cmdline.startsWith('sleep ')), 15_000);
        const [id] = rt.containerDirs();
        assert.ok(id !== undefined);
        const paths = (JSON.parse(readFileSync(join(rt.root, id, 'state.json'), 'utf8')) as { cgroupPaths: string[] }).cgroupPaths;
        const read = (file: string): string | undefined => {
          for (const p of paths) {
            try { return readFileSync(join(p, file), 'utf8').trim(); } catch { /* not this hierarchy */ }
          }
          return undefined;
        };
        const memory = read('memory.limit_in_bytes') ?? read('memory.max');
        assert.equal(Number(memory), DEFAULT_MEMORY);
        assert.equal(read('pids.max'), String(DEFAULT_PIDS));
        // Half a CPU: 50 ms in every 100 ms, in v1's two files or v2's one.
        const quota = read('cpu.max') ?? `${read('cpu.cfs_quota_us') ?? '?'} ${read('cpu.cfs_period_us') ?? '?'}`;
        assert.equal(quota, '50000 100000');
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    });


    test(`${level}: the in-memory file systems together fit in the memory limit`, () => {
      for (const [flags, limit] of [[[], DEFAULT_MEMORY], [['--memory', '256m'], 256 * 1024 ** 2], [['--rw', '--memory', '512m'], 512 * 1024 ** 2]] as const) {
        const r = rt.run(['do', '--isolation', level, ...flags, '--', 'sh', '-c', 'df -k /tmp /var/tmp /run /dev /dev/shm; if grep -qE " / / .* - (overlay|tmpfs) " /proc/self/mountinfo; then df -k / | tail -1; fi']);
        assert.equal(r.status, 0, r.stderr);
        const total = dfTotalKb(r.stdout) * 1024;
        assert.ok(total <= limit, `${total} bytes of tmpfs with ${flags.join(' ')} (limit ${limit})`);
      }
    });
  }

  // The limits hold in the guest's cgroup at vm (the VM is sized from them, and only bounded by them).
  for (const level of ['namespaces', 'sentry', 'vm'] as const) {
    const skip = level === 'vm' ? vmSkip() ?? (has('python3') ? false : 'python3 is not installed') : has('python3') ? false : 'python3 is not installed';
    const call = level === 'vm' ? VM_CALL : { timeout: 60_000 };
    test(`${level}: a fork bomb stops at --pids`, { skip }, () => {
      const r = rt.run(['do', '--isolation', level, '--pids', '64', '--', 'python3', '-c', BOMB, '3000'], call);
      assert.equal(r.status, 0, r.stderr);
      const n = Number(/forked (\d+)/.exec(r.stdout)?.[1]);
      assert.ok(n > 10 && n < 64, `${n} processes forked under --pids 64`);
    });

    test(`${level}: memory beyond --memory ends the command (OOM: 128+9)`, { skip }, () => {
      const r = rt.run(['do', '--isolation', level, '--memory', '128m', '--', 'python3', '-c', 'b = bytearray(b"x") * (400 << 20); print("allocated")'], call);
      assert.doesNotMatch(r.stdout, /allocated/);
      assert.equal(r.status, 137, r.stderr);
    });
  }

  test('vm: the default memory and pids limits, and --cpus, in the guest\'s cgroup (events --stats) and on the VMM\'s host cgroup', { skip: vmSkip() }, async () => {
    const child = rt.spawn(['do', '--isolation', 'vm', '--cpus', '0.5', '--', 'sleep', '300']);
    const exited = new Promise((r) => child.once('exit', r));
    try {
      let id: string | undefined;
      await waitFor(() => {
        id = rt.containerDirs()[0];
        return id !== undefined && rt.run(['state', id]).stdout.includes('"running"');
      }, 150_000);
      assert.ok(id !== undefined);
      const ev = rt.run(['events', '--stats', id], VM_CALL);
      assert.equal(ev.status, 0, ev.stderr);
      const data = (JSON.parse(ev.stdout.trim()) as { data: { memory: { usage: { limit: number } }; pids: { limit: number } } }).data;
      assert.equal(data.memory.usage.limit, DEFAULT_MEMORY);
      assert.equal(data.pids.limit, DEFAULT_PIDS);
      const paths = (JSON.parse(readFileSync(join(rt.root, id, 'state.json'), 'utf8')) as { cgroupPaths: string[] }).cgroupPaths;
      const read = (file: string): string | undefined => {
        for (const p of paths) {
          try { return readFileSync(join(p, file), 'utf8').trim(); } catch { /* not this hierarchy */ }
        }
        return undefined;
      };
      // The VMM's vCPU thread is held to half a CPU on the host as well.
      const quota = read('cpu.max') ?? `${read('cpu.cfs_quota_us') ?? '?'} ${read('cpu.cfs_period_us') ?? '?'}`;
      assert.equal(quota, '50000 100000');
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });

  test('bad limits are one-line errors', () => {
    for (const args of [['--memory', 'lots'], ['--pids', '0'], ['--pids', 'x'], ['--cpus', '-1'], ['--memory', '1k']]) {
      const r = rt.run(['do', ...args, '--', 'true']);
      assert.notEqual(r.status, 0, args.join(' '));
      assert.match(r.stderr, new RegExp(args[0] ?? ''));
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    }
    assert.deepEqual(rt.containerDirs(), []);
  });
});
