// cgroup layouts as hosts have them: v1 alone, v2 alone, both, each built in a private mount namespace.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { Runtime, STOCKADE, has, integrationSkip, probeSpec } from './harness';

const skip = integrationSkip() ?? (has('unshare') ? undefined : 'unshare (util-linux) is needed to build a layout in a private mount namespace');

/** The v1 controllers this kernel has and does not bind to cgroup2 (hierarchy 0 in /proc/cgroups would be v2's). */
function v1Controllers(): string[] {
  return readFileSync('/proc/cgroups', 'utf8').split('\n').slice(1).map((l) => l.split('\t'))
    .filter((f) => f[0] !== undefined && f[0] !== '' && f[3] === '1' && f[1] !== '0').map((f) => f[0] ?? '');
}

/** The controllers a fresh cgroup2 mount offers here: those no v1 hierarchy holds. */
function v2Controllers(): string[] {
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs none /mnt && mount -t cgroup2 none /mnt && cat /mnt/cgroup.controllers'], { encoding: 'utf8' });
  return r.stdout.trim().split(/\s+/).filter((c) => c !== '');
}

type LayoutName = 'v1' | 'v2' | 'both';

/**
 * The mounts that make a layout, over a tmpfs on /sys/fs/cgroup that covers whatever the host
 * mounted there (its cgroup2 mount at /sys/fs/cgroup/unified included: mountinfo still lists it).
 */
function layoutScript(layout: LayoutName, controllers: readonly string[]): string {
  const lines = ['set -e', 'mount -t tmpfs -o mode=755 none /sys/fs/cgroup'];
  if (layout !== 'v2') {
    for (const c of controllers) lines.push(`mkdir /sys/fs/cgroup/${c}`, `mount -t cgroup -o ${c} cgroup /sys/fs/cgroup/${c}`);
  }
  if (layout === 'v2') lines.push('umount /sys/fs/cgroup', 'mount -t cgroup2 none /sys/fs/cgroup');
  if (layout === 'both') lines.push('mkdir /sys/fs/cgroup/unified', 'mount -t cgroup2 none /sys/fs/cgroup/unified');
  lines.push('set +e');
  return lines.join('\n');
}

interface Step { readonly name: string; readonly status: number; readonly out: string }

/** Runs `steps` (stockade argument lists, or `sh:` shell lines) in a private mount namespace holding `layout`. */
function inLayout(rt: Runtime, layout: LayoutName, controllers: readonly string[], steps: readonly (readonly string[] | string)[]): Step[] {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const stockade = [STOCKADE, '--root', rt.root, '--log', rt.log, '--log-format', 'json'].map(q).join(' ');
  const script = [layoutScript(layout, controllers), ...steps.map((s, i) => {
    const cmd = typeof s === 'string' ? s.replace(/^sh:/, '') : `${stockade} ${s.map(q).join(' ')}`;
    return `echo "@@step ${i}"; ${cmd} 2>&1; echo "@@status $?"`;
  })].join('\n');
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'bash', '-c', script], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `the layout could not be built: ${r.stderr}${r.stdout}`);
  const found: Step[] = [];
  for (const m of r.stdout.matchAll(/@@step (\d+)\n([\s\S]*?)@@status (\d+)\n/g)) {
    const s = steps[Number(m[1])];
    found.push({ name: typeof s === 'string' ? s : s?.join(' ') ?? '', out: m[2] ?? '', status: Number(m[3]) });
  }
  assert.equal(found.length, steps.length, r.stdout);
  return found;
}

describe('cgroup layouts as hosts have them', { skip }, () => {
  let rt: Runtime;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());
  const v1 = skip === undefined ? v1Controllers() : [];
  const v2 = skip === undefined ? v2Controllers() : [];

  for (const layout of ['v1', 'both', 'v2'] as const) {
    // A limit the layout can hold: the memory controller where v1 has it, else whatever cgroup2 offers.
    const memory = layout === 'v2' ? v2.includes('memory') : v1.includes('memory');
    const pids = layout === 'v2' ? v2.includes('pids') : v1.includes('pids');
    // Where a v1 hierarchy holds memory and pids (this host), cgroup2 alone offers what is left:
    // hugetlb stands in for them there, a limit all the same.
    const hugetlb = !memory && !pids && layout === 'v2' && v2.includes('hugetlb') && existsSync('/sys/kernel/mm/hugepages/hugepages-2048kB');
    const limit = memory ? 'a memory limit' : pids ? 'a pids limit' : hugetlb ? 'a hugetlb limit (memory and pids are v1\'s here)' : 'no limit (no controller is free for this layout here)';
    const why = layout !== 'v2' && v1.length === 0 ? 'this kernel offers no v1 controller (every one is bound to cgroup2)' : undefined;
    test(`${layout === 'both' ? 'v1 and v2' : `${layout} alone`}: create, start, delete with ${limit}; nothing left`, { skip: why ?? false }, () => {
      const id = `layout-${layout}`;
      const b = rt.bundle(probeSpec(['/bin/sleep', '100'], (s) => {
        s.linux = {
          ...s.linux,
          resources: {
            ...(memory ? { memory: { limit: 64 * 1024 * 1024 } } : {}),
            ...(pids ? { pids: { limit: 50 } } : {}),
            ...(hugetlb ? { hugepageLimits: [{ pageSize: '2MB', limit: 4 * 1024 * 1024 }] } : {}),
          },
        };
      }));
      const steps = inLayout(rt, layout, v1, [
        ['create', '--bundle', b.dir, id],
        ['start', id],
        `sh:cat ${rt.root}/${id}/state.json`,
        `sh:for d in $(sed -n 's/.*"cgroupPaths":\\[\\([^]]*\\)\\].*/\\1/p' ${rt.root}/${id}/state.json | tr -d '"' | tr ',' ' '); do ` +
          'for f in memory.limit_in_bytes memory.max pids.max hugetlb.2MB.max; do test -f $d/$f && echo "$d/$f=$(cat $d/$f)"; done; done; true',
        ['state', id],
        ['delete', '--force', id],
      ]);
      const [create, start, record, limits, state, del] = steps;
      assert.equal(create?.status, 0, create?.out);
      assert.equal(start?.status, 0, start?.out);
      const paths = (JSON.parse(record?.out ?? '{}') as { cgroupPaths?: string[] }).cgroupPaths ?? [];
      if (layout !== 'v2') assert.ok(paths.some((p) => p.startsWith('/sys/fs/cgroup/memory/') || p.startsWith('/sys/fs/cgroup/pids/')), paths.join(' '));
      if (layout === 'v1') assert.ok(!paths.some((p) => p.includes('/unified/')), `the covered cgroup2 mount is not used: ${paths.join(' ')}`);
      // (Below the cgroup the test harness puts each test process's containers in, if any.)
      if (layout === 'both') assert.ok(paths.some((p) => p.startsWith('/sys/fs/cgroup/unified/') && p.endsWith(`/${id}`)), paths.join(' '));
      if (layout === 'v2') {
        assert.equal(paths.length, 1, paths.join(' '));
        assert.match(paths[0] ?? '', new RegExp(`^/sys/fs/cgroup/(?!unified/)(.*/)?${id}$`));
      }
      if (memory) assert.match(limits?.out ?? '', /\/memory\.(limit_in_bytes|max)=67108864$/m);
      if (pids) assert.match(limits?.out ?? '', /\/pids\.max=50$/m);
      if (hugetlb) assert.match(limits?.out ?? '', /\/hugetlb\.2MB\.max=4194304$/m);
      assert.equal(JSON.parse(state?.out ?? '{}').status, 'running');
      assert.equal(del?.status, 0, del?.out);
      // Nothing left: the state directory, and the cgroup directories (checked in the namespace).
      const gone = inLayout(rt, layout, v1, [`sh:for d in ${paths.join(' ')}; do test -d $d && echo "left: $d"; done; true`]);
      assert.equal(gone[0]?.out, '');
      assert.deepEqual(rt.containerDirs(), []);
    });
  }

  test('v2 alone, a limit whose controller the cgroup2 mount lacks: a one-line error naming the field, nothing left', { skip: v2.includes('memory') ? 'cgroup2 here offers the memory controller' : false }, () => {
    const b = rt.bundle(probeSpec(['/bin/true'], (s) => { s.linux = { ...s.linux, resources: { memory: { limit: 64 * 1024 * 1024 } } }; }));
    const [create] = inLayout(rt, 'v2', v1, [['create', '--bundle', b.dir, 'layout-v2-limit']]);
    assert.equal(create?.status, 1);
    assert.match(create?.out ?? '', /^stockade: linux\.resources\.memory: .*\n$/);
    assert.deepEqual(rt.containerDirs(), []);
  });
});
