// The exec planner and process builder: what an exec joins, and how flags and --process files shape the process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER } from '../../../src/abi/linux/constants';
import { buildExecPlan, type ExecPlanOptions } from '../../../src/container/exec-plan';
import { execProcess, type ExecProcessFlags } from '../../../src/container/exec-process';
import { PLAN, type PlanRecord } from '../../../src/native/protocol';
import { defaultSpec } from '../../../src/oci/default-spec';
import type { Spec } from '../../../src/oci/spec';
import { isStockadeError } from '../../../src/errors';

const ALL = (1n << 41n) - 1n;
const bit = (n: number): bigint => 1n << BigInt(n);

function opts(over: Partial<ExecPlanOptions> = {}): ExecPlanOptions {
  return { id: 'c1', initPid: 42, cgroupPaths: [], consoleSocket: undefined, preserveFds: 0, monitor: true, seccomp: undefined, heldCapabilities: ALL, ...over };
}
function spec(mutate?: (s: Spec) => void): Spec {
  const s = defaultSpec();
  s.process!.terminal = false;
  mutate?.(s);
  return s;
}
function flags(over: Partial<ExecProcessFlags> = {}): ExecProcessFlags {
  return { args: ['/bin/true'], env: [], additionalGids: [], caps: [], ...over };
}
const tags = (plan: PlanRecord[], tag: number): PlanRecord[] => plan.filter((r) => r.tag === tag);

test('every listed namespace is joined from the init\'s /proc entry, the user namespace first; nothing is created', () => {
  const s = spec((c) => {
    c.linux!.namespaces = [{ type: 'pid' }, { type: 'network', path: '/var/run/netns/x' }, { type: 'mount' }, { type: 'ipc' }, { type: 'user' }];
    delete c.hostname;
    c.linux!.uidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
    c.linux!.gidMappings = [{ containerID: 0, hostID: 100000, size: 65536 }];
  });
  const plan = buildExecPlan(s, execProcess(s, flags()), opts({ cgroupPaths: ['/sys/fs/cgroup/a'] }));
  assert.deepEqual(tags(plan, PLAN.TAG_JOIN_NS), [
    { tag: PLAN.TAG_JOIN_NS, nstype: CLONE_NEWUSER, path: '/proc/42/ns/user' },
    { tag: PLAN.TAG_JOIN_NS, nstype: CLONE_NEWPID, path: '/proc/42/ns/pid' },
    { tag: PLAN.TAG_JOIN_NS, nstype: CLONE_NEWNET, path: '/proc/42/ns/net' },
    { tag: PLAN.TAG_JOIN_NS, nstype: CLONE_NEWNS, path: '/proc/42/ns/mnt' },
    { tag: PLAN.TAG_JOIN_NS, nstype: CLONE_NEWIPC, path: '/proc/42/ns/ipc' },
  ]);
  assert.deepEqual(tags(plan, PLAN.TAG_CLONE_FLAGS), [{ tag: PLAN.TAG_CLONE_FLAGS, flags: 0 }]);
  assert.deepEqual(plan[0], { tag: PLAN.TAG_CGROUP_JOIN, path: '/sys/fs/cgroup/a' }, 'cgroups before any namespace');
  for (const tag of [PLAN.TAG_ROOTFS, PLAN.TAG_START_SOCKET, PLAN.TAG_UID_MAP, PLAN.TAG_HOSTNAME, PLAN.TAG_MOUNT, PLAN.TAG_LOOPBACK_UP]) {
    assert.deepEqual(tags(plan, tag), [], `no record ${tag}`);
  }
  assert.equal(tags(plan, PLAN.TAG_MONITOR).length, 1);
  assert.deepEqual(tags(buildExecPlan(s, execProcess(s, flags()), opts({ monitor: false })), PLAN.TAG_MONITOR), [], 'detached: no monitor');
});

test('capabilities outside the held set are refused by name; ambient is cut to permitted and inheritable', () => {
  const s = spec((c) => {
    c.process!.capabilities = { bounding: ['CAP_KILL', 'CAP_SYS_ADMIN'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'], inheritable: [], ambient: ['CAP_KILL'] };
  });
  assert.throws(() => buildExecPlan(s, execProcess(s, flags()), opts({ heldCapabilities: bit(5) })), /process\.capabilities\.bounding: CAP_SYS_ADMIN cannot be granted/);
  s.process!.capabilities!.bounding = ['CAP_KILL'];
  const [caps] = tags(buildExecPlan(s, execProcess(s, flags()), opts({ heldCapabilities: bit(5) })), PLAN.TAG_CAPS);
  assert.deepEqual(caps, { tag: PLAN.TAG_CAPS, bounding: bit(5), effective: bit(5), inheritable: 0n, permitted: bit(5), ambient: 0n });
});

test('--cap adds to bounding, effective and permitted, and to ambient only where inheritable exists', () => {
  const s = spec((c) => { c.process!.capabilities = { bounding: ['CAP_KILL'], effective: ['CAP_KILL'], permitted: ['CAP_KILL'] }; });
  const p = execProcess(s, flags({ caps: ['net_raw', 'CAP_SYS_TIME'] }));
  for (const set of ['bounding', 'effective', 'permitted'] as const) {
    assert.deepEqual(p.capabilities?.[set], ['CAP_KILL', 'CAP_NET_RAW', 'CAP_SYS_TIME'], set);
  }
  assert.equal(p.capabilities?.ambient, undefined, 'no inheritable set: no ambient');
  const withInheritable = spec((c) => { c.process!.capabilities = { bounding: [], inheritable: ['CAP_NET_RAW'] }; });
  const q = execProcess(withInheritable, flags({ caps: ['CAP_NET_RAW'] }));
  assert.deepEqual(q.capabilities?.ambient, ['CAP_NET_RAW']);
  assert.deepEqual(q.capabilities?.inheritable, ['CAP_NET_RAW'], '--cap itself grants no inheritable');
  assert.throws(() => execProcess(s, flags({ caps: ['CAP_NOPE'] })), /--cap: unknown capability "CAP_NOPE"/);
});

test('flags: env overrides by name, user and groups, cwd, no_new_privs; tty off unless asked', () => {
  const s = spec((c) => { c.process!.env = ['PATH=/bin', 'A=1']; c.process!.terminal = true; });
  const p = execProcess(s, flags({ env: ['A=2', 'B=3'], user: '1000:100', additionalGids: ['7'], cwd: '/tmp', noNewPrivs: false }));
  assert.deepEqual(p.env, ['PATH=/bin', 'A=2', 'B=3']);
  assert.deepEqual(p.user, { uid: 1000, gid: 100, additionalGids: [7] });
  assert.equal(p.cwd, '/tmp');
  assert.equal(p.noNewPrivileges, false);
  assert.equal(p.terminal, false, 'the config\'s terminal does not carry over to exec');
  assert.equal(execProcess(s, flags({ tty: true })).terminal, true);
  assert.equal(execProcess(s, flags({ user: '5' })).user.gid, 0, 'UID alone keeps the gid');
  assert.throws(() => execProcess(s, flags({ user: 'root' })), /--user must be UID or UID:GID/);
  assert.throws(() => execProcess(s, flags({ env: ['=x'] })), /--env must be NAME=value/);
  assert.throws(() => execProcess(s, flags({ cwd: 'tmp' })), /--cwd must be an absolute path/);
  assert.throws(() => execProcess(s, flags({ additionalGids: ['-1'] })), /--additional-gids must be a non-negative number/);
});

test('--process FILE: its fields replace the config\'s, the ones it leaves out fall back, errors name its fields', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-exec-process-'));
  try {
    const file = join(dir, 'p.json');
    const s = spec((c) => { c.process!.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 10, hard: 20 }]; });
    writeFileSync(file, JSON.stringify({ args: ['/bin/sh'], cwd: '/srv', env: ['X=1'], user: { uid: 3, gid: 4 }, terminal: true }));
    const p = execProcess(s, flags({ processFile: file, args: [] }));
    assert.deepEqual(p.args, ['/bin/sh']);
    assert.equal(p.cwd, '/srv');
    assert.deepEqual(p.env, ['X=1']);
    assert.equal(p.terminal, true, 'the file\'s terminal holds without --tty');
    assert.deepEqual(p.rlimits, s.process!.rlimits);
    assert.deepEqual(p.capabilities, s.process!.capabilities);

    writeFileSync(file, JSON.stringify({ args: ['/bin/sh'], cwd: 'relative', user: { uid: 0, gid: 0 } }));
    assert.throws(() => execProcess(s, flags({ processFile: file, args: [] })), (e: unknown) => isStockadeError(e) && e.message === `${file}: cwd: must be an absolute path, got "relative"`);
    writeFileSync(file, '{"args": [');
    assert.throws(() => execProcess(s, flags({ processFile: file, args: [] })), /malformed JSON/);
    assert.throws(() => execProcess(s, flags({ processFile: join(dir, 'absent.json'), args: [] })), /--process .*absent\.json does not exist/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a terminal needs a console socket; the process\'s own stdio, cwd, args and env go in order', () => {
  const s = spec((c) => { c.process!.env = ['A=1', 'B=2']; });
  assert.throws(() => buildExecPlan(s, execProcess(s, flags({ tty: true })), opts()), /no console socket/);
  const plan = buildExecPlan(s, execProcess(s, flags({ tty: true, args: ['/bin/echo', 'x'] })), opts({ consoleSocket: '/run/c.sock', preserveFds: 2 }));
  assert.deepEqual(tags(plan, PLAN.TAG_CONSOLE_SOCKET), [{ tag: PLAN.TAG_CONSOLE_SOCKET, path: '/run/c.sock' }]);
  assert.equal(tags(plan, PLAN.TAG_TERMINAL).length, 1);
  assert.deepEqual(tags(plan, PLAN.TAG_ARG).map((r) => (r as { value: string }).value), ['/bin/echo', 'x']);
  assert.deepEqual(tags(plan, PLAN.TAG_ENV).map((r) => (r as { value: string }).value), ['A=1', 'B=2']);
  assert.deepEqual(tags(plan, PLAN.TAG_PRESERVE_FDS), [{ tag: PLAN.TAG_PRESERVE_FDS, count: 2 }]);
  assert.deepEqual(tags(plan, PLAN.TAG_SESSION_KEYRING), [{ tag: PLAN.TAG_SESSION_KEYRING, name: '_ses.c1' }]);
});

test('a container that shares the runtime\'s mount namespace: the process is put in its root (TAG_CHROOT)', () => {
  const s = spec((c) => {
    c.linux!.namespaces = c.linux!.namespaces?.filter((n) => n.type !== 'mount') ?? [];
    delete c.linux!.maskedPaths;
    delete c.linux!.readonlyPaths;
  });
  const plan = buildExecPlan(s, execProcess(s, flags()), opts({ chroot: '/run/s/c1/rootfs' }));
  assert.deepEqual(tags(plan, PLAN.TAG_CHROOT), [{ tag: PLAN.TAG_CHROOT, path: '/run/s/c1/rootfs' }]);
  assert.deepEqual(tags(buildExecPlan(s, execProcess(s, flags()), opts()), PLAN.TAG_CHROOT), []);
});
