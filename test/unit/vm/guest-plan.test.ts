// The host's plan records turned into the guest's: guest paths in, what has no meaning in a VM refused by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MOUNTF, PLAN, type PlanRecord } from '../../../src/native/protocol';
import { GUEST_PLAN_PLACEHOLDERS, guestCreatePlan, guestExecPlan, type GuestShares } from '../../../src/vm/guest-plan';

const shares: GuestShares = {
  rootfs: { host: '/nonexistent/bundle/rootfs', guest: '/run/stockade/share/root' },
  binds: new Map([['/nonexistent/data', '/run/stockade/share/b0'], ['/nonexistent/file', '/run/stockade/share/b1']]),
};

const bind = (source: string, target: string): PlanRecord => ({
  tag: PLAN.TAG_MOUNT, flags: 0, propagation: 0, recursiveAttr: 0, mountFlags: MOUNTF.BIND, source, target, fstype: '', data: '',
});

const base: PlanRecord[] = [
  { tag: PLAN.TAG_CGROUP_JOIN, path: '/sys/fs/cgroup/host/ctr' },
  { tag: PLAN.TAG_CLONE_FLAGS, flags: 0x20000 },
  { tag: PLAN.TAG_START_SOCKET, path: GUEST_PLAN_PLACEHOLDERS.startSocket },
  { tag: PLAN.TAG_CONSOLE_SOCKET, path: '/host/console.sock' },
  { tag: PLAN.TAG_TERMINAL },
  { tag: PLAN.TAG_ROOTFS, flags: 1, source: '/nonexistent/bundle/rootfs', mountpoint: '/host/state/rootfs' },
  bind('/nonexistent/data', '/mnt/data'),
  bind('/nonexistent/data/sub/dir', '/mnt/sub'),
  bind('/nonexistent/file', '/etc/file'),
  bind('/sys', '/sys'),
  { tag: PLAN.TAG_ARG, value: 'sh' },
];

test('a create plan gets the guest\'s paths: root, binds (below a share too), sockets, cgroup', () => {
  const g = guestCreatePlan(base, 'c1', shares);
  assert.equal(g.terminal, true);
  assert.deepEqual(g.records.filter((r) => r.tag === PLAN.TAG_CGROUP_JOIN), [{ tag: PLAN.TAG_CGROUP_JOIN, path: '/sys/fs/cgroup/stockade/c1' }]);
  const root = g.records.find((r) => r.tag === PLAN.TAG_ROOTFS);
  assert.deepEqual(root, { tag: PLAN.TAG_ROOTFS, flags: 1, source: '/run/stockade/share/root', mountpoint: '/run/stockade/c/c1/root' });
  const sources = g.records.flatMap((r) => (r.tag === PLAN.TAG_MOUNT ? [r.source] : []));
  assert.deepEqual(sources, ['/run/stockade/share/b0', '/run/stockade/share/b0/sub/dir', '/run/stockade/share/b1', '/sys']);
  assert.ok(g.records.some((r) => r.tag === PLAN.TAG_START_SOCKET && r.path === '/run/stockade/c/c1/start.sock'));
  assert.ok(g.records.some((r) => r.tag === PLAN.TAG_CONSOLE_SOCKET && r.path === '/run/stockade/c/c1/console.sock'));
  assert.equal(g.plan.readUInt32LE(0), PLAN.MAGIC);
});

test('what has no meaning in a VM is refused, naming it', () => {
  const refuse = (extra: PlanRecord[], re: RegExp, records = base): void => {
    assert.throws(() => guestCreatePlan([...records, ...extra], 'c1', shares), re);
  };
  refuse([{ tag: PLAN.TAG_JOIN_NS, nstype: 0x40000000, path: '/var/run/netns/x' }], /joining a namespace by path \(\/var\/run\/netns\/x\)/);
  refuse([bind('/etc/shadow', '/mnt/x')], /bind source \/etc\/shadow was not shared with the VM/);
  refuse([bind('/nonexistent/database', '/mnt/x')], /bind source \/nonexistent\/database was not shared/);
  refuse([bind('/nonexistent/data/../../etc', '/mnt/x')], /bind source \/etc was not shared/);
  refuse([{ tag: PLAN.TAG_MONITOR }], /monitor/);
  refuse([{ tag: PLAN.TAG_TIED, pid: 1 }], /tied/);
  refuse([{ tag: PLAN.TAG_CHROOT, path: '/x' }], /chroot/);
  refuse([{ tag: PLAN.TAG_PRESERVE_FDS, count: 2 }], /preserve-fds/);
  refuse([{ tag: PLAN.TAG_SENTRY_MOUNT, path: '/proc' }], /sentry/);
  refuse([], /not the directory shared with the VM/, base.map((r) => (r.tag === PLAN.TAG_ROOTFS ? { ...r, source: '/other/rootfs' } : r)));
  refuse([], /no start socket/, base.filter((r) => r.tag !== PLAN.TAG_START_SOCKET));
  assert.throws(() => guestCreatePlan(base, '../x', shares), /not a container name/);
  // Zero preserved fds is what buildPlan writes for none: not refused.
  assert.doesNotThrow(() => guestCreatePlan([...base, { tag: PLAN.TAG_PRESERVE_FDS, count: 0 }], 'c1', shares));
});

test('an exec plan joins the container\'s init\'s namespaces and cgroup, nothing else', () => {
  const exec: PlanRecord[] = [
    { tag: PLAN.TAG_CGROUP_JOIN, path: '/sys/fs/cgroup/host/ctr' },
    { tag: PLAN.TAG_JOIN_NS, nstype: 0x20000000, path: '/proc/42/ns/pid' },
    { tag: PLAN.TAG_JOIN_NS, nstype: 0x00020000, path: '/proc/42/ns/mnt' },
    { tag: PLAN.TAG_CLONE_FLAGS, flags: 0 },
    { tag: PLAN.TAG_ARG, value: 'ls' },
  ];
  const g = guestExecPlan(exec, 'c1.x1', { name: 'c1', pid: 42 });
  assert.deepEqual(g.records[0], { tag: PLAN.TAG_CGROUP_JOIN, path: '/sys/fs/cgroup/stockade/c1' });
  assert.equal(g.records.filter((r) => r.tag === PLAN.TAG_CGROUP_JOIN).length, 1);
  assert.equal(g.terminal, false);
  assert.throws(() => guestExecPlan(exec, 'c1.x1', { name: 'c1', pid: 43 }), /exec joins \/proc\/42\/ns\/pid, not a namespace of the container's init \(\/proc\/43/);
  assert.throws(() => guestExecPlan([...exec, { tag: PLAN.TAG_JOIN_NS, nstype: 0, path: '/proc/42/ns/../../1/ns/mnt' }], 'c1.x1', { name: 'c1', pid: 42 }), /exec joins/);
  assert.throws(() => guestExecPlan([...exec, base[5]!], 'c1.x1', { name: 'c1', pid: 42 }), /an exec plan makes no root/);
  assert.throws(() => guestExecPlan([...exec, { tag: PLAN.TAG_MONITOR }], 'c1.x1', { name: 'c1', pid: 42 }), /monitor/);
});

test('a pod\'s later container may join the namespaces of its sandbox\'s init in the guest, and nothing else by path', () => {
  const shares: GuestShares = { rootfs: { host: '/nonexistent-pod-root', guest: '/run/stockade/share/pods/m1/root' }, binds: new Map() };
  const base: PlanRecord[] = [
    { tag: PLAN.TAG_ROOTFS, source: '/nonexistent-pod-root', mountpoint: GUEST_PLAN_PLACEHOLDERS.rootfsMountpoint, mode: 0, flags: 0 } as PlanRecord,
    { tag: PLAN.TAG_START_SOCKET, path: GUEST_PLAN_PLACEHOLDERS.startSocket } as PlanRecord,
  ];
  const join = (path: string): PlanRecord => ({ tag: PLAN.TAG_JOIN_NS, nstype: 0x08000000, path });
  const g = guestCreatePlan([join('/proc/42/ns/ipc'), join('/proc/42/ns/uts'), ...base], 'c2', shares, [42]);
  assert.deepEqual(g.records.filter((r) => r.tag === PLAN.TAG_JOIN_NS).map((r) => (r as { path: string }).path), ['/proc/42/ns/ipc', '/proc/42/ns/uts']);
  assert.equal((g.records.find((r) => r.tag === PLAN.TAG_ROOTFS) as { source: string }).source, '/run/stockade/share/pods/m1/root');
  for (const path of ['/proc/43/ns/ipc', '/proc/42/ns/net', '/proc/42/ns/mnt', '/proc/42/ns/../../1/ns/ipc', '/var/run/netns/x']) {
    assert.throws(() => guestCreatePlan([join(path), ...base], 'c2', shares, [42]), /joining a namespace by path/, path);
  }
  assert.throws(() => guestCreatePlan([join('/proc/42/ns/ipc'), ...base], 'c2', shares), /joining a namespace by path/, 'no pod: nothing joined');
});
