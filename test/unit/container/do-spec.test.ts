// stockade do's config: the working directory resolved and never mounted, the limits, the tmpfs sizes, the hidden state root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { homedir } from 'node:os';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY } from '../../../src/abi/linux/constants';
import { DO_DEFAULT_LIMITS, doSpec, doTmpfsSizes, doWorkingDirectory, type DoOptions } from '../../../src/container/do-spec';
import { buildPlan, type PlanOptions } from '../../../src/container/plan';
import { doLimits, doTimeout } from '../../../src/cli/do';
import { withoutEnvValues } from '../../../src/cli/main';
import { PLAN } from '../../../src/native/protocol';

// Not under /tmp: do refuses working directories there.
// Not in the checkout: a checkout below /tmp is a directory the sandbox replaces.
const base = mkdtempSync(join(homedir(), '.stockade-do-spec-test-'));
process.on('exit', () => rmSync(base, { recursive: true, force: true }));

function options(over: Partial<DoOptions> = {}): DoOptions {
  return { args: ['true'], env: ['SECRET=x'], cwd: '/', network: 'none', rw: false, uid: 0, gid: 0, limits: DO_DEFAULT_LIMITS, hidden: [], ...over };
}

test('the working directory is resolved through symlinks and .., and mounts nothing', () => {
  mkdirSync(join(base, 'real'));
  symlinkSync(join(base, 'real'), join(base, 'link'));
  symlinkSync('/', join(base, 'to-root'));
  assert.equal(doWorkingDirectory(join(base, 'link'), '/', []), join(base, 'real'));
  assert.equal(doWorkingDirectory(`${base}/real/../real/.`, '/', []), join(base, 'real'));
  assert.equal(doWorkingDirectory(join(base, 'to-root'), '/', []), '/');
  assert.equal(doWorkingDirectory('/tmp/..', '/', []), '/');
  assert.equal(doWorkingDirectory(undefined, join(base, 'link'), []), join(base, 'real'));
  const spec = doSpec(options({ cwd: doWorkingDirectory('/tmp/..', '/', []) }));
  assert.equal(spec.process?.cwd, '/');
  assert.deepEqual(spec.mounts?.filter((m) => m.type === 'bind'), [], 'no bind at all');
});

test('a working directory the sandbox replaces or hides is refused in one line', () => {
  for (const dir of ['/tmp', '/run', '/proc/self', '/sys/kernel', '/dev/shm']) {
    if (dir === '/tmp' || dir === '/run') {
      assert.equal(doWorkingDirectory(dir, '/', []), dir, `${dir} itself is the sandbox's own, there`);
      continue;
    }
    assert.throws(() => doWorkingDirectory(dir, '/', []), /not in the sandbox/);
  }
  const sub = mkdtempSync('/tmp/stockade-do-unit-');
  try {
    assert.throws(() => doWorkingDirectory(sub, '/', []), /--cwd .* is not in the sandbox, whose \/tmp is its own/);
    // Only the caller's own directory: the command starts in / and is told why.
    const said: string[] = [];
    assert.equal(doWorkingDirectory(undefined, sub, [], [], (why) => said.push(why)), '/');
    assert.match(said.join('\n'), /^the working directory .* is not in the sandbox, whose \/tmp is its own and empty: the command starts in \//);
    assert.equal(doWorkingDirectory(undefined, sub, [], [{ source: sub, destination: sub, writable: false }]), sub, 'a --bind of it shows it');
  } finally {
    rmSync(sub, { recursive: true, force: true });
  }
  assert.throws(() => doWorkingDirectory(join(base, 'real'), '/', [base]), /state directory/);
  writeFileSync(join(base, 'file'), '');
  assert.throws(() => doWorkingDirectory(join(base, 'file'), '/', []), /is not a directory/);
  assert.throws(() => doWorkingDirectory(join(base, 'missing'), '/', []), /no such directory/);
});

test('the in-memory file systems together stay below the memory limit', () => {
  for (const memory of [32 * 1024 ** 2, 256 * 1024 ** 2, 2 * 1024 ** 3, 64 * 1024 ** 3]) {
    const s = doTmpfsSizes(memory);
    const total = Object.values(s).reduce((t, o) => t + Number(/^size=(\d+)k$/.exec(o)?.[1]) * 1024, 0);
    assert.ok(total <= memory, `${total} > ${memory}`);
  }
  const spec = doSpec(options({ limits: { memory: 256 * 1024 ** 2, pids: 100, cpus: 1.5 } }));
  assert.deepEqual(spec.linux?.resources, { memory: { limit: 256 * 1024 ** 2 }, pids: { limit: 100 }, cpu: { quota: 150_000, period: 100_000 } });
  for (const d of ['/tmp', '/var/tmp', '/run', '/dev', '/dev/shm']) {
    assert.ok(spec.mounts?.find((m) => m.destination === d)?.options?.some((o) => o.startsWith('size=')), d);
  }
});

test('limits: defaults, flags, and one-line refusals', () => {
  assert.deepEqual(doLimits(undefined, undefined, undefined), { memory: 2 * 1024 ** 3, pids: 1024 });
  assert.deepEqual(doLimits('512m', '64', '0.5'), { memory: 512 * 1024 ** 2, pids: 64, cpus: 0.5 });
  for (const [m, p, c] of [['1k', undefined, undefined], ['-1', undefined, undefined], ['x', undefined, undefined], [undefined, '0', undefined], [undefined, '1.5', undefined], [undefined, undefined, '0'], [undefined, undefined, 'two']] as const) {
    assert.throws(() => doLimits(m, p, c), /^StockadeError: do: --(memory|pids|cpus)/);
  }
});

test('the state root is covered by an empty read-only tmpfs unless a fresh mount hides it already', () => {
  const hidden = doSpec(options({ hidden: ['/var/lib/stockade', '/run/stockade'] })).mounts?.filter((m) => m.destination.includes('stockade'));
  assert.deepEqual(hidden?.map((m) => [m.destination, m.type, m.options?.includes('ro')]), [['/var/lib/stockade', 'tmpfs', true]]);
});

test('do\'s plan: an init, tied to its caller, the host root read-only all the way down', () => {
  const spec = doSpec(options());
  const plan = buildPlan(spec, {
    id: 'do-1-ab', bundle: '/', rootfsMountpoint: '/run/s/do-1-ab/rootfs', startSocket: '/run/s/do-1-ab/start.sock', consoleSocket: undefined,
    preserveFds: 0, noPivot: false, noNewKeyring: false, monitor: true, rootfsMode: 'recursive-readonly', createHooks: false,
    heldCapabilities: (1n << 41n) - 1n, cgroupPaths: [], init: true, tiedTo: 4242,
  } satisfies PlanOptions);
  assert.equal(plan.filter((r) => r.tag === PLAN.TAG_INIT).length, 1);
  assert.deepEqual(plan.filter((r) => r.tag === PLAN.TAG_TIED), [{ tag: PLAN.TAG_TIED, pid: 4242 }]);
  const base: Omit<PlanOptions, 'monitor'> = { id: 'c', bundle: '/', rootfsMountpoint: '/x', startSocket: undefined, consoleSocket: undefined, preserveFds: 0, noPivot: false, noNewKeyring: false, rootfsMode: 'bind', createHooks: false, heldCapabilities: (1n << 41n) - 1n, cgroupPaths: [] };
  assert.throws(() => buildPlan(spec, { ...base, monitor: false, tiedTo: 1 }), /attached/);
  const noPid = { ...spec, linux: { ...spec.linux, namespaces: [{ type: 'mount' as const }] } };
  assert.throws(() => buildPlan(noPid, { ...base, monitor: true, init: true }), /pid namespace/);
  const timed = buildPlan(spec, { ...base, monitor: true, init: true, initTimeout: { timeoutMs: 1500, graceMs: 5000 } });
  assert.deepEqual(timed.filter((r) => r.tag === PLAN.TAG_INIT_TIMEOUT), [{ tag: PLAN.TAG_INIT_TIMEOUT, timeoutMs: 1500, graceMs: 5000 }]);
  assert.throws(() => buildPlan(spec, { ...base, monitor: true, initTimeout: { timeoutMs: 1, graceMs: 0 } }), /init/);
});

test('--timeout: durations as timeout(1) and runc take them', () => {
  assert.deepEqual(doTimeout('1.5'), { timeoutMs: 1500, graceMs: 5000 });
  assert.deepEqual(doTimeout('1m30s'), { timeoutMs: 90_000, graceMs: 5000 });
  assert.equal(doTimeout(undefined), undefined);
  for (const bad of ['0', '', 'x', '-5', '1d']) assert.throws(() => doTimeout(bad), /--timeout/);
});

test('an rbind asked ro, nosuid, nodev is so on every submount', () => {
  const spec = doSpec(options({ network: 'host' }));
  spec.mounts?.push({ destination: '/mnt/x', type: 'bind', source: '/', options: ['rbind', 'ro', 'nosuid', 'nodev'] });
  const plan = buildPlan(spec, {
    id: 'c', bundle: '/', rootfsMountpoint: '/x', startSocket: undefined, consoleSocket: undefined, preserveFds: 0, noPivot: false,
    noNewKeyring: false, monitor: false, rootfsMode: 'bind', createHooks: false, heldCapabilities: (1n << 41n) - 1n, cgroupPaths: [],
  });
  const mounts = plan.filter((r): r is Extract<typeof r, { tag: typeof PLAN.TAG_MOUNT }> => r.tag === PLAN.TAG_MOUNT);
  const all = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  assert.equal((mounts.find((m) => m.target === '/mnt/x')?.recursiveAttr ?? 0) & all, all);
  // The host's /sys, bound for --network host, too.
  assert.equal((mounts.find((m) => m.target === '/sys')?.recursiveAttr ?? 0) & all, all);
});

test('the --log line keeps no --env value', () => {
  assert.deepEqual(withoutEnvValues(['do', '--env', 'TOKEN=abc', '-e', 'K=v', '--env=A=b', '-eX=y', '--', 'sh', '-e', 'x=1']),
    ['do', '--env', 'TOKEN=...', '-e', 'K=...', '--env=A=...', '-eX=...', '--', 'sh', '-e', 'x=1']);
});
