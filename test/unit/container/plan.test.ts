// The planner: a validated config.json becomes the records stockade-init executes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER, MS_BIND, MS_RDONLY, MS_REC } from '../../../src/abi/linux/constants';
import { buildPlan, type PlanOptions } from '../../../src/container/plan';
import { PLAN, MOUNTF, DEVICEF, ROOTFS, type PlanRecord } from '../../../src/native/protocol';
import { defaultSpec } from '../../../src/oci/default-spec';
import type { Spec } from '../../../src/oci/spec';

const bundle = mkdtempSync(join(tmpdir(), 'stockade-plan-'));
mkdirSync(join(bundle, 'rootfs'));
process.on('exit', () => rmSync(bundle, { recursive: true, force: true }));

const ALL = (1n << 41n) - 1n;
function opts(over: Partial<PlanOptions> = {}): PlanOptions {
  return {
    id: 'c1', bundle, rootfsMountpoint: '/run/s/c1/rootfs', startSocket: '/run/s/c1/start.sock', consoleSocket: undefined,
    preserveFds: 0, noPivot: false, noNewKeyring: false, monitor: false, rootfsMode: 'bind', createHooks: false,
    heldCapabilities: ALL, cgroupPaths: [], ...over,
  };
}
function spec(mutate?: (s: Spec) => void): Spec {
  const s = defaultSpec();
  s.process!.terminal = false;
  mutate?.(s);
  return s;
}
// The member of PlanRecord whose tag set includes T (some members share one shape between tags).
type RecordOf<T> = PlanRecord extends infer R ? (R extends { tag: infer U } ? (T extends U ? R : never) : never) : never;
function find<T extends PlanRecord['tag']>(plan: PlanRecord[], tag: T): RecordOf<T>[] {
  return plan.filter((r) => r.tag === tag) as RecordOf<T>[];
}

test('namespaces: new ones become clone flags, paths become joins with the user namespace first', () => {
  const plan = buildPlan(spec((s) => {
    s.linux!.namespaces = [{ type: 'pid' }, { type: 'network', path: '/proc/1/ns/net' }, { type: 'mount' }, { type: 'user', path: '/proc/1/ns/user' }];
  }), opts());
  assert.equal(find(plan, PLAN.TAG_CLONE_FLAGS)[0]?.flags, CLONE_NEWPID | CLONE_NEWNS);
  assert.deepEqual(find(plan, PLAN.TAG_JOIN_NS).map((j) => j.path), ['/proc/1/ns/user', '/proc/1/ns/net']);
  assert.equal(find(plan, PLAN.TAG_LOOPBACK_UP).length, 0, 'a joined network namespace is left as it is');
});

test('a new user namespace carries its id maps', () => {
  const plan = buildPlan(spec((s) => {
    s.linux!.namespaces!.push({ type: 'user' });
    s.linux!.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }, { containerID: 1, hostID: 100000, size: 65536 }];
    s.linux!.gidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
  }), opts());
  assert.ok(((find(plan, PLAN.TAG_CLONE_FLAGS)[0]?.flags ?? 0) & CLONE_NEWUSER) !== 0);
  assert.equal(find(plan, PLAN.TAG_UID_MAP)[0]?.content, '0 1000 1\n1 100000 65536\n');
  assert.equal(find(plan, PLAN.TAG_GID_MAP)[0]?.content, '0 1000 1\n');
  assert.ok(find(plan, PLAN.TAG_DEVICE).every((d) => d.deviceFlags === DEVICEF.BIND), 'devices are bound, not made, in a user namespace');
});

test('rootfs: bundle-relative source, readonly, no-pivot, and the do modes', () => {
  const ro = find(buildPlan(spec((s) => { s.root = { path: 'rootfs', readonly: true }; }), opts({ noPivot: true })), PLAN.TAG_ROOTFS)[0];
  assert.equal(ro?.source, join(bundle, 'rootfs'));
  assert.equal(ro?.mountpoint, '/run/s/c1/rootfs');
  assert.equal(ro?.flags, ROOTFS.READONLY | ROOTFS.NO_PIVOT);
  assert.equal(find(buildPlan(spec((s) => { s.root = { path: 'rootfs' }; }), opts({ rootfsMode: 'overlay' })), PLAN.TAG_ROOTFS)[0]?.flags, ROOTFS.OVERLAY);
  assert.throws(() => buildPlan(spec((s) => { s.root = { path: 'missing' }; }), opts()), /root file system .*missing \(root\.path\) does not exist/);
});

test('mounts: binds get a remount for their flags; sysfs without a network namespace is bound from the host', () => {
  const plan = buildPlan(spec((s) => {
    s.mounts!.push({ destination: '/data', type: 'bind', source: 'rootfs', options: ['rbind', 'ro'] });
    s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'network');
  }), opts());
  const mounts = find(plan, PLAN.TAG_MOUNT);
  const data = mounts.find((m) => m.target === '/data');
  assert.equal(data?.source, join(bundle, 'rootfs'));
  assert.equal(data?.mountFlags, MOUNTF.BIND | MOUNTF.REMOUNT);
  assert.equal((data?.flags ?? 0) & (MS_BIND | MS_REC | MS_RDONLY), MS_BIND | MS_REC | MS_RDONLY);
  const sys = mounts.find((m) => m.target === '/sys');
  assert.equal(sys?.source, '/sys');
  assert.equal(sys?.fstype, '');
  assert.ok(((sys?.mountFlags ?? 0) & MOUNTF.BIND) !== 0);
});

test('process: user, rlimits (RLIM_INFINITY clamped), ambient capabilities cut to permitted and inheritable', () => {
  const plan = buildPlan(spec((s) => {
    s.process!.user = { uid: 1000, gid: 1001, additionalGids: [5], umask: 0o077 };
    s.process!.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 10, hard: 2 ** 64 }];
    s.process!.capabilities = { bounding: ['CAP_KILL'], permitted: ['CAP_KILL'], inheritable: ['CAP_KILL'], ambient: ['CAP_KILL', 'CAP_CHOWN'] };
  }), opts({ heldCapabilities: ALL & ~(1n << 24n) }));
  assert.deepEqual(find(plan, PLAN.TAG_USER)[0], { tag: PLAN.TAG_USER, uid: 1000, gid: 1001, umask: 0o077, additionalGids: [5] });
  assert.deepEqual(find(plan, PLAN.TAG_RLIMIT)[0], { tag: PLAN.TAG_RLIMIT, resource: 7, soft: 10n, hard: (1n << 64n) - 1n });
  const caps = find(plan, PLAN.TAG_CAPS)[0];
  assert.equal(caps?.bounding, 1n << 5n);
  assert.equal(caps?.ambient, 1n << 5n, 'CAP_CHOWN is not inheritable, so it cannot be ambient');
});

test('a capability outside the runtime\'s bounding set is an error naming it and the set, in every set', () => {
  for (const set of ['bounding', 'effective', 'permitted', 'inheritable', 'ambient'] as const) {
    assert.throws(
      () => buildPlan(spec((s) => { s.process!.capabilities = { [set]: ['CAP_KILL', 'CAP_SYS_RESOURCE'] }; }), opts({ heldCapabilities: ALL & ~(1n << 24n) })),
      (e: Error) => e.message === `process.capabilities.${set}: CAP_SYS_RESOURCE cannot be granted: not in this host's capability bounding set`,
      set,
    );
  }
});

test('no mount namespace: the root is planned in the host\'s (HOST_MOUNT_NS), never with --no-pivot, the sentry or another root mode', () => {
  const shared = (s: Spec): void => {
    s.linux!.namespaces = s.linux!.namespaces?.filter((n) => n.type !== 'mount') ?? [];
    delete s.linux!.maskedPaths;
    delete s.linux!.readonlyPaths;
  };
  const plan = buildPlan(spec(shared), opts({ noPivot: true }));
  assert.equal(find(plan, PLAN.TAG_CLONE_FLAGS)[0]!.flags & CLONE_NEWNS, 0);
  assert.equal(find(plan, PLAN.TAG_ROOTFS)[0]!.flags & ROOTFS.NO_PIVOT, 0, 'no NO_PIVOT: a move onto / would be the host\'s');
  assert.equal(find(plan, PLAN.TAG_ROOTFS)[0]!.flags & ROOTFS.HOST_MOUNT_NS, ROOTFS.HOST_MOUNT_NS);
  assert.equal(find(buildPlan(spec(), opts()), PLAN.TAG_ROOTFS)[0]!.flags & ROOTFS.HOST_MOUNT_NS, 0);
  assert.throws(() => buildPlan(spec(shared), opts({ sentry: { flags: 0, program: Buffer.alloc(8) } })), /sentry level needs a mount namespace/);
  assert.throws(() => buildPlan(spec(shared), opts({ rootfsMode: 'overlay' })), /needs a mount namespace of its own/);
});

test('terminal needs a console socket; the start socket and keyring are planned', () => {
  assert.throws(() => buildPlan(spec((s) => { s.process!.terminal = true; }), opts()), /no --console-socket/);
  const plan = buildPlan(spec((s) => { s.process!.terminal = true; }), opts({ consoleSocket: '/tmp/c.sock' }));
  assert.equal(find(plan, PLAN.TAG_CONSOLE_SOCKET)[0]?.path, '/tmp/c.sock');
  assert.equal(find(plan, PLAN.TAG_TERMINAL).length, 1);
  assert.equal(find(plan, PLAN.TAG_START_SOCKET)[0]?.path, '/run/s/c1/start.sock');
  assert.equal(find(plan, PLAN.TAG_SESSION_KEYRING)[0]?.name, '_ses.c1');
  assert.equal(find(buildPlan(spec(), opts({ noNewKeyring: true })), PLAN.TAG_SESSION_KEYRING).length, 0);
});

test('the default devices and /dev links, unless /dev is a bind', () => {
  const plan = buildPlan(spec(), opts());
  assert.deepEqual(find(plan, PLAN.TAG_DEVICE).map((d) => d.path), ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty']);
  assert.ok(find(plan, PLAN.TAG_SYMLINK).some((l) => l.linkpath === '/dev/ptmx' && l.target === 'pts/ptmx'));
  const bound = buildPlan(spec((s) => { s.mounts = s.mounts!.map((m) => (m.destination === '/dev' ? { destination: '/dev', type: 'bind', source: 'rootfs', options: ['rbind'] } : m)); }), opts());
  assert.equal(find(bound, PLAN.TAG_DEVICE).length, 0);
});

test('args, env and cwd in order; net namespace brings lo up', () => {
  const plan = buildPlan(spec((s) => { s.process!.args = ['a', 'b c']; s.process!.env = ['X=1']; s.process!.cwd = '/w'; }), opts());
  assert.deepEqual(find(plan, PLAN.TAG_ARG).map((a) => a.value), ['a', 'b c']);
  assert.deepEqual(find(plan, PLAN.TAG_ENV).map((a) => a.value), ['X=1']);
  assert.equal(find(plan, PLAN.TAG_CWD)[0]?.path, '/w');
  assert.equal(find(plan, PLAN.TAG_LOOPBACK_UP).length, 1);
  assert.ok(((find(plan, PLAN.TAG_CLONE_FLAGS)[0]?.flags ?? 0) & CLONE_NEWNET) !== 0);
});

test('the sentry\'s mounts: /proc and /sys of type proc and sysfs, each once, as TAG_SENTRY_MOUNT records', async () => {
  const { sentryMounts } = await import('../../../src/sentry/supervisor');
  const s = spec((x) => {
    x.mounts = [
      ...(x.mounts ?? []),
      { destination: '/proc/', type: 'proc', source: 'proc' },
      { destination: '/srv/proc', type: 'proc', source: 'proc' },
      { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind'] },
    ];
  });
  const owned = sentryMounts(s.mounts ?? []);
  assert.deepEqual(owned, ['/proc', '/sys'], 'the default spec\'s proc and sysfs; a second /proc once; no bind, no other place');
  assert.deepEqual(sentryMounts([{ destination: '/sys', type: 'bind', source: '/sys' }]), []);
  const plan = buildPlan(s, opts({ sentry: { flags: 0, program: Buffer.alloc(8) }, sentryMounts: owned }));
  assert.deepEqual(find(plan, PLAN.TAG_SENTRY_MOUNT).map((r) => r.path), ['/proc', '/sys']);
  assert.deepEqual(find(buildPlan(s, opts()), PLAN.TAG_SENTRY_MOUNT), [], 'none without the sentry');
});
