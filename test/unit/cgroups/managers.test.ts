// The v1, v2 and hybrid managers against fake cgroup trees: the files written, their values, and the errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freezerStateOf, managerFor, managerFromPaths } from '../../../src/cgroups';
import { effectiveResources, sharesToWeight, blkioToIoWeight } from '../../../src/cgroups/resources';
import { StockadeError } from '../../../src/errors';
import { FakeTree } from './fake-tree';
import type { DeviceCgroup } from '../../../src/oci/spec';

const V1_FILES: Record<string, Record<string, string>> = {
  memory: { 'memory.limit_in_bytes': '9223372036854771712', 'memory.memsw.limit_in_bytes': '9223372036854771712', 'memory.soft_limit_in_bytes': '', 'memory.swappiness': '60', 'memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n', 'memory.kmem.tcp.limit_in_bytes': '', 'cgroup.procs': '' },
  cpu: { 'cpu.shares': '1024', 'cpu.cfs_period_us': '100000', 'cpu.cfs_quota_us': '-1', 'cpu.rt_period_us': '', 'cpu.rt_runtime_us': '', 'cgroup.procs': '' },
  cpuset: { 'cpuset.cpus': '', 'cpuset.mems': '', 'cgroup.procs': '' },
  pids: { 'pids.max': 'max', 'cgroup.procs': '' },
  freezer: { 'freezer.state': 'THAWED', 'cgroup.procs': '' },
  devices: { 'devices.allow': '', 'devices.deny': '', 'cgroup.procs': '' },
  blkio: { 'blkio.bfq.weight': '100', 'blkio.bfq.weight_device': '', 'blkio.throttle.read_bps_device': '', 'cgroup.procs': '' },
};

function v1Tree(controllers = Object.keys(V1_FILES)): { t: FakeTree; layout: ReturnType<FakeTree['layout']> } {
  const t = new FakeTree();
  for (const c of controllers) {
    t.cgroup(c, c === 'cpuset' ? { 'cpuset.cpus': '0-3', 'cpuset.mems': '0' } : {});
    t.cgroup(`${c}/c1`, V1_FILES[c] ?? {});
  }
  return { t, layout: t.layout('v1', t.v1(controllers.map((c) => [c]))) };
}

const noWarn = (m: string): void => assert.fail(`unexpected warning: ${m}`);

test('v1: each limit lands in its controller file with runc\'s values', async () => {
  const { t, layout } = v1Tree();
  try {
    const m = managerFor(undefined, 'c1', layout);
    assert.ok(m !== undefined && m.mode === 'v1');
    await m.create({
      memory: { limit: 64 << 20, reservation: 32 << 20, swap: 128 << 20, swappiness: 10, disableOOMKiller: true, kernelTCP: 1 << 20 },
      cpu: { shares: 1024, quota: 50000, period: 100000, cpus: '1', mems: '0' },
      pids: { limit: 20 },
      blockIO: { weight: 300, weightDevice: [{ major: 8, minor: 0, weight: 200 }], throttleReadBpsDevice: [{ major: 8, minor: 0, rate: 1048576 }] },
      devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rw' }],
    }, noWarn);
    assert.equal(t.read('memory/c1/memory.limit_in_bytes'), String(64 << 20));
    assert.equal(t.read('memory/c1/memory.memsw.limit_in_bytes'), String(128 << 20));
    assert.equal(t.read('memory/c1/memory.soft_limit_in_bytes'), String(32 << 20));
    assert.equal(t.read('memory/c1/memory.swappiness'), '10');
    assert.equal(t.read('memory/c1/memory.oom_control'), '1');
    assert.equal(t.read('memory/c1/memory.kmem.tcp.limit_in_bytes'), String(1 << 20));
    assert.equal(t.read('cpu/c1/cpu.shares'), '1024');
    assert.equal(t.read('cpu/c1/cpu.cfs_quota_us'), '50000');
    assert.equal(t.read('cpu/c1/cpu.cfs_period_us'), '100000');
    assert.equal(t.read('cpuset/c1/cpuset.cpus'), '1');
    assert.equal(t.read('pids/c1/pids.max'), '20');
    // No blkio.weight on a kernel without CFQ: BFQ's file takes the same value.
    assert.equal(t.read('blkio/c1/blkio.bfq.weight'), '300');
    assert.equal(t.read('blkio/c1/blkio.bfq.weight_device'), '8:0 200');
    assert.equal(t.read('blkio/c1/blkio.throttle.read_bps_device'), '8:0 1048576');
    assert.equal(t.read('devices/c1/devices.deny'), 'a *:* rwm');
    assert.equal(t.read('devices/c1/devices.allow'), 'c 1:3 rw');
    assert.deepEqual(m.paths, ['cpu', 'memory', 'cpuset', 'pids', 'freezer', 'devices', 'blkio'].map((c) => join(t.root, c, 'c1')).sort((a, b) => Object.keys(V1_FILES).indexOf(a.split('/').at(-2) ?? '') - Object.keys(V1_FILES).indexOf(b.split('/').at(-2) ?? '')));
  } finally {
    t.remove();
  }
});

test('v1: a new cpuset cgroup inherits cpus and mems from its parent, or nothing could join it', async () => {
  const { t, layout } = v1Tree(['cpuset']);
  try {
    await managerFor(undefined, 'c1', layout)?.create({}, noWarn);
    assert.equal(t.read('cpuset/c1/cpuset.cpus'), '0-3');
    assert.equal(t.read('cpuset/c1/cpuset.mems'), '0');
  } finally {
    t.remove();
  }
});

test('v1: errors name the field; a missing controller and v2-only settings are refused', async () => {
  const { t, layout } = v1Tree(['memory', 'cpu']);
  try {
    const m = managerFor(undefined, 'c1', layout);
    assert.ok(m !== undefined);
    await assert.rejects(m.create({ pids: { limit: 5 } }, noWarn), (e: StockadeError) => e.code === 'CGROUP_FAILED' && /^linux\.resources\.pids: the pids cgroup controller is not available/.test(e.message));
    await assert.rejects(m.create({ unified: { 'memory.high': '1' } }, noWarn), /linux\.resources\.unified: cgroup v2 settings cannot be applied on a cgroup v1 host/);
    await assert.rejects(m.create({ memory: { swappiness: 101 } }, noWarn), /linux\.resources\.memory\.swappiness: 101 is out of range/);
    await assert.rejects(m.create({ cpu: { idle: 1 } }, noWarn), /^StockadeError: linux\.resources\.cpu\.idle: cannot set cpu\.idle to "1": cpu\.idle does not exist in \S+ \(the controller or this setting is not available on this host\)$/);
  } finally {
    t.remove();
  }
});

test('v1: memory and memory+swap are written in the order the kernel accepts', () => {
  const { t, layout } = v1Tree(['memory']);
  try {
    const m = managerFromPaths([join(t.root, 'memory/c1')], layout);
    assert.ok(m !== undefined);
    m.apply({ memory: { limit: -1 } }, noWarn);
    // Unlimited memory with no word on swap: swap unlimited too.
    assert.equal(t.read('memory/c1/memory.memsw.limit_in_bytes'), '-1');
  } finally {
    t.remove();
  }
});

test('v1: freeze writes FROZEN and the status reads it back; thaw writes THAWED', async () => {
  const { t, layout } = v1Tree(['freezer', 'memory']);
  try {
    const paths = [join(t.root, 'freezer/c1'), join(t.root, 'memory/c1')];
    const m = managerFromPaths(paths, layout);
    assert.ok(m !== undefined);
    await m.freeze();
    assert.equal(t.read('freezer/c1/freezer.state'), 'FROZEN');
    assert.equal(freezerStateOf(paths), 'frozen');
    m.thaw();
    assert.equal(freezerStateOf(paths), 'thawed');
  } finally {
    t.remove();
  }
});

test('v1: create makes missing parents and undo removes exactly those; destroy removes the leaves', async () => {
  const t = new FakeTree();
  try {
    t.cgroup('memory', { 'memory.limit_in_bytes': '0' });
    t.cgroup('memory/existing', {});
    const layout = t.layout('v1', t.v1([['memory']]));
    const m = managerFor('/existing/a/b', 'c1', layout);
    assert.ok(m !== undefined);
    await m.create({}, noWarn);
    assert.deepEqual(m.made, [join(t.root, 'memory/existing/a'), join(t.root, 'memory/existing/a/b')]);
    await m.undo();
    assert.ok(!existsSync(join(t.root, 'memory/existing/a')));
    assert.ok(existsSync(join(t.root, 'memory/existing')));
    const again = managerFor('/existing/c1', 'c1', layout);
    await again?.create({}, noWarn);
    await managerFromPaths(again?.paths ?? [], layout)?.destroy();
    assert.ok(!existsSync(join(t.root, 'memory/existing/c1')));
  } finally {
    t.remove();
  }
});

const V2_FILES = {
  'cgroup.controllers': 'cpuset cpu io memory hugetlb pids', 'cgroup.procs': '', 'cgroup.freeze': '0', 'cgroup.events': 'populated 0\nfrozen 0\n',
  'cpu.weight': '100', 'cpu.max': 'max 100000', 'cpu.idle': '0', 'cpuset.cpus': '', 'cpuset.mems': '', 'memory.max': 'max', 'memory.low': '0', 'memory.swap.max': 'max',
  'memory.high': 'max', 'io.weight': 'default 100', 'io.max': '', 'pids.max': 'max', 'hugetlb.2MB.max': 'max',
};

function v2Tree(): { t: FakeTree; layout: ReturnType<FakeTree['layout']> } {
  const t = new FakeTree();
  t.cgroup('cg', { 'cgroup.controllers': 'cpuset cpu io memory hugetlb pids', 'cgroup.subtree_control': '' });
  t.cgroup('cg/user.slice', { 'cgroup.controllers': 'cpuset cpu io memory hugetlb pids', 'cgroup.subtree_control': '' });
  t.cgroup('cg/user.slice/c1', V2_FILES);
  return { t, layout: t.layout('v2', [], t.unified('cg', ['cpuset', 'cpu', 'io', 'memory', 'hugetlb', 'pids'], '/user.slice/session.scope')) };
}

test('v2: v1-shaped values converted as runc converts them', async () => {
  const { t, layout } = v2Tree();
  try {
    const attached: { dir: string; rules: readonly DeviceCgroup[] }[] = [];
    const m = managerFor(undefined, 'c1', layout, { devices: (dir, rules) => attached.push({ dir, rules }) });
    assert.ok(m !== undefined && m.mode === 'v2');
    assert.deepEqual(m.paths, [join(t.root, 'cg/user.slice/c1')]);
    const warnings: string[] = [];
    await m.create(effectiveResources({
      memory: { limit: 64 << 20, swap: 96 << 20, reservation: 16 << 20, swappiness: 10 },
      cpu: { shares: 1024, quota: 50000, period: 100000, cpus: '0' },
      pids: { limit: 20 },
      blockIO: { weight: 500, throttleWriteIOPSDevice: [{ major: 8, minor: 0, rate: 100 }] },
      hugepageLimits: [{ pageSize: '2MB', limit: 4 << 20 }],
      devices: [{ allow: false, access: 'rwm' }],
      unified: { 'memory.high': '50000000' },
    }, []), (w) => warnings.push(w));
    const r = (f: string): string => t.read(`cg/user.slice/c1/${f}`);
    assert.equal(r('memory.max'), String(64 << 20));
    assert.equal(r('memory.swap.max'), String(32 << 20));
    assert.equal(r('memory.low'), String(16 << 20));
    assert.equal(r('memory.high'), '50000000');
    assert.equal(r('cpu.weight'), '100');
    assert.equal(r('cpu.max'), '50000 100000');
    assert.equal(r('cpuset.cpus'), '0');
    assert.equal(r('pids.max'), '20');
    assert.equal(r('io.weight'), String(blkioToIoWeight(500)));
    assert.equal(r('io.max'), '8:0 wiops=100');
    assert.equal(r('hugetlb.2MB.max'), String(4 << 20));
    // Controllers are handed down from the mount to the container's parent, not enabled in the leaf.
    assert.equal(t.read('cg/cgroup.subtree_control'), '+cpuset +cpu +io +memory +hugetlb +pids');
    assert.equal(t.read('cg/user.slice/cgroup.subtree_control'), '+cpuset +cpu +io +memory +hugetlb +pids');
    // Device rules go to the device program of the container's own directory, completed as runc completes them.
    assert.deepEqual(attached.map((a) => a.dir), [join(t.root, 'cg/user.slice/c1')]);
    assert.deepEqual(attached[0]?.rules.slice(0, 2), [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', access: 'm' }]);
    assert.ok(!warnings.some((w) => w.includes('devices')), warnings.join('\n'));
    assert.ok(warnings.some((w) => w.startsWith('linux.resources.memory.swappiness')));
  } finally {
    t.remove();
  }
});

test('v2: conversions match runc at their reference points', () => {
  assert.equal(sharesToWeight(2), 1);
  assert.equal(sharesToWeight(1024), 100);
  assert.equal(sharesToWeight(262144), 10000);
  assert.equal(sharesToWeight(512), 59);
  assert.equal(blkioToIoWeight(10), 1);
  assert.equal(blkioToIoWeight(1000), 10000);
});

test('v2: refusals name the field', () => {
  const { t, layout } = v2Tree();
  try {
    const m = managerFromPaths([join(t.root, 'cg/user.slice/c1')], layout);
    assert.ok(m !== undefined);
    assert.throws(() => m.apply({ unified: { 'memory.nosuch': '1' } }, noWarn), /^StockadeError: linux\.resources\.unified\["memory\.nosuch"\]: cannot set memory\.nosuch: no such cgroup file/);
    assert.throws(() => m.apply({ unified: { 'rdma.max': '1' } }, noWarn), /the rdma controller is not enabled/);
    assert.throws(() => m.apply({ unified: { '../x.y': '1' } }, noWarn), /not a cgroup file name/);
    assert.throws(() => m.apply({ memory: { swap: 100 } }, noWarn), /linux\.resources\.memory\.swap: cannot limit swap without a memory limit/);
    assert.throws(() => m.apply({ cpu: { realtimeRuntime: 1000 } }, noWarn), /real-time CPU budgets do not exist in cgroup v2/);
    assert.throws(() => m.apply({ network: { classID: 1 } }, noWarn), /linux\.resources\.network\.classID: the net_cls controller does not exist in cgroup v2/);
  } finally {
    t.remove();
  }
});

test('v2: freeze waits for cgroup.events to say frozen', async () => {
  const { t, layout } = v2Tree();
  try {
    const dir = join(t.root, 'cg/user.slice/c1');
    const m = managerFromPaths([dir], layout);
    assert.ok(m !== undefined);
    const frozen = m.freeze(2000);
    writeFileSync(join(dir, 'cgroup.events'), 'populated 1\nfrozen 1\n');
    await frozen;
    assert.equal(t.read('cg/user.slice/c1/cgroup.freeze'), '1');
    assert.equal(freezerStateOf([dir]), 'frozen');
    await assert.rejects(m.freeze(1).then(() => { writeFileSync(join(dir, 'cgroup.events'), 'frozen 0\n'); return m.freeze(30); }), /did not freeze within 30 ms/);
  } finally {
    t.remove();
  }
});

test('hybrid: v1 controllers take their sections, a v2-only controller (hugetlb here) takes its own', async () => {
  const t = new FakeTree();
  try {
    for (const c of ['memory', 'freezer']) t.cgroup(`${c}/c1`, V1_FILES[c] ?? {});
    t.cgroup('unified', { 'cgroup.controllers': 'hugetlb', 'cgroup.subtree_control': '' });
    t.cgroup('unified/c1', { 'cgroup.controllers': 'hugetlb', 'hugetlb.2MB.max': 'max', 'cgroup.freeze': '0', 'cgroup.procs': '' });
    const layout = t.layout('hybrid', t.v1([['memory'], ['freezer']], { memory: '/nested' }), t.unified('unified', ['hugetlb']));
    // This process's memory cgroup is nested; the container's memory directory follows it.
    t.cgroup('memory/nested/c1', V1_FILES['memory'] ?? {});
    const m = managerFor(undefined, 'c1', layout);
    assert.ok(m !== undefined && m.mode === 'hybrid');
    assert.deepEqual(m.paths, [join(t.root, 'memory/nested/c1'), join(t.root, 'freezer/c1'), join(t.root, 'unified/c1')]);
    await m.create({ memory: { limit: 1 << 20 }, hugepageLimits: [{ pageSize: '2MB', limit: 2 << 20 }], unified: { 'hugetlb.2MB.max': '4194304' } }, noWarn);
    assert.equal(t.read('memory/nested/c1/memory.limit_in_bytes'), String(1 << 20));
    assert.equal(t.read('unified/c1/hugetlb.2MB.max'), '4194304');
    assert.equal(t.read('unified/cgroup.subtree_control'), '+hugetlb');
    assert.throws(() => m.apply({ unified: { 'memory.max': '1' } }, noWarn), /linux\.resources\.unified\["memory\.max"\]: the memory controller is not on the cgroup v2 side of this hybrid host \(only hugetlb\)/);
    assert.throws(() => m.apply({ pids: { limit: 1 } }, noWarn), /linux\.resources\.pids: the pids cgroup controller is not available on this host/);
    // The v1 freezer is the one pause uses, even though the unified directory has cgroup.freeze.
    await m.freeze();
    assert.equal(t.read('freezer/c1/freezer.state'), 'FROZEN');
    assert.equal(freezerStateOf(m.paths), 'frozen');
  } finally {
    t.remove();
  }
});

test('effectiveResources completes a device list as runc does, and leaves an empty one alone', () => {
  assert.equal(effectiveResources({}, [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229 }]).devices, undefined);
  const d = effectiveResources({ devices: [{ allow: false, access: 'rwm' }] }, [{ path: '/dev/fuse', type: 'c', major: 10, minor: 229 }]).devices ?? [];
  assert.deepEqual(d[0], { allow: false, access: 'rwm' });
  assert.deepEqual(d[1], { allow: true, type: 'c', major: 10, minor: 229, access: 'rwm' });
  assert.ok(d.some((r) => r.major === 1 && r.minor === 3));
});

test('v2: device rules that cannot be enforced fail the create, naming the field; nothing is left', async () => {
  const { t, layout } = v2Tree();
  try {
    // The real applier on a plain directory: no cgroup to attach a program to (or no right to load one).
    const m = managerFor(undefined, 'c2', layout);
    assert.ok(m !== undefined);
    await assert.rejects(m.create(effectiveResources({ devices: [{ allow: false, access: 'rwm' }] }, []), () => undefined), (e: unknown) => {
      assert.ok(e instanceof StockadeError && e.code === 'CGROUP_FAILED', String(e));
      assert.match(e.message, /^linux\.resources\.devices: cannot enforce the device rules on \S+\/c2 \(a cgroup v2 device program\): /);
      return true;
    });
    assert.ok(!existsSync(join(t.root, 'cg/user.slice/c2')), 'the directory the failed create made is gone');
  } finally {
    t.remove();
  }
});
