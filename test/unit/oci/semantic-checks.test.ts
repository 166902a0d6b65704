// Every semantic check of config.json: one config that breaks it, and the field the error names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkCapabilities, checkIdMappings, checkSysctl, normaliseSysctlKey, runSemanticChecks,
} from '../../../src/oci/validate';
import type { Spec } from '../../../src/oci/spec';
import { assertSpecRejects, baseSpec } from './helpers';

function linux(spec: Spec): NonNullable<Spec['linux']> {
  spec.linux ??= {};
  return spec.linux;
}

function proc(spec: Spec): NonNullable<Spec['process']> {
  if (spec.process === undefined) throw new Error('default spec has a process');
  return spec.process;
}

test('the default spec has no semantic problems', () => {
  assert.deepEqual(runSemanticChecks(baseSpec()), []);
});

test('ociVersion: must be SemVer with major version 1', () => {
  assertSpecRejects((s) => { s.ociVersion = '2.0.0'; }, 'ociVersion', /major version must be 1, got "2\.0\.0"/);
  assertSpecRejects((s) => { s.ociVersion = 'latest'; }, 'ociVersion', /SemVer/);
  assert.deepEqual(runSemanticChecks({ ...baseSpec(), ociVersion: '1.0.2-dev' }), []);
});

test('root: required on Linux, path not empty', () => {
  assertSpecRejects((s) => { delete s.root; }, 'root', /required on Linux/);
  assertSpecRejects((s) => { s.root = { path: '' }; }, 'root.path', /must not be empty/);
});

test('process.args: required and non-empty when process is present', () => {
  assertSpecRejects((s) => { proc(s).args = []; }, 'process.args', /must not be empty/);
  assertSpecRejects((s) => { delete proc(s).args; }, 'process.args', /is required/);
});

test('process.cwd: absolute', () => {
  assertSpecRejects((s) => { proc(s).cwd = 'home'; }, 'process.cwd', /absolute path, got "home"/);
});

test('process.env: NAME=value entries', () => {
  assertSpecRejects((s) => { proc(s).env = ['PATH=/bin', 'JUSTNAME']; }, 'process.env[1]', /NAME=value/);
  assertSpecRejects((s) => { proc(s).env = ['=value']; }, 'process.env[0]', /empty name/);
});

test('process.user.umask: at most 0o777', () => {
  assertSpecRejects((s) => { proc(s).user.umask = 0o1000; }, 'process.user.umask', /between 0 and 0o777 \(511\), got 512/);
  assert.deepEqual(runSemanticChecks({ ...baseSpec(), process: { ...proc(baseSpec()), user: { uid: 0, gid: 0, umask: 0o22 } } }), []);
});

test('process.ioPriority.priority: 0 to 7', () => {
  assertSpecRejects((s) => { proc(s).ioPriority = { class: 'IOPRIO_CLASS_BE', priority: 8 }; }, 'process.ioPriority.priority', /between 0 and 7/);
});

test('capabilities: every name a known CAP_*', () => {
  assertSpecRejects((s) => { proc(s).capabilities = { bounding: ['CAP_KILL', 'CAP_FLY'] }; }, 'process.capabilities.bounding[1]', /unknown capability "CAP_FLY"/);
  assertSpecRejects((s) => { proc(s).capabilities = { ambient: ['KILL'] }; }, 'process.capabilities.ambient[0]', /did you mean "CAP_KILL"/);
  assert.deepEqual(checkCapabilities({ ...baseSpec(), process: { ...proc(baseSpec()), capabilities: { effective: ['CAP_CHECKPOINT_RESTORE'] } } }), []);
});

test('rlimits: known types', () => {
  assertSpecRejects((s) => { proc(s).rlimits = [{ type: 'RLIMIT_BOGUS', soft: 1, hard: 1 }]; }, 'process.rlimits[0].type', /unknown rlimit "RLIMIT_BOGUS"/);
});

test('rlimits: no type twice', () => {
  assertSpecRejects((s) => {
    proc(s).rlimits = [{ type: 'RLIMIT_NOFILE', soft: 1, hard: 1 }, { type: 'RLIMIT_CORE', soft: 0, hard: 0 }, { type: 'RLIMIT_NOFILE', soft: 2, hard: 2 }];
  }, 'process.rlimits[2].type', /duplicate rlimit "RLIMIT_NOFILE" \(first at process\.rlimits\[0\]\)/);
});

test('rlimits: soft <= hard', () => {
  assertSpecRejects((s) => { proc(s).rlimits = [{ type: 'RLIMIT_NOFILE', soft: 2048, hard: 1024 }]; }, 'process.rlimits[0].soft', /soft limit 2048 exceeds hard limit 1024/);
});

test('scheduler: nice range, priority and deadline fields only for their policies', () => {
  assertSpecRejects((s) => { proc(s).scheduler = { policy: 'SCHED_OTHER', nice: 20 }; }, 'process.scheduler.nice', /-20 and 19/);
  assertSpecRejects((s) => { proc(s).scheduler = { policy: 'SCHED_OTHER', priority: 5 }; }, 'process.scheduler.priority', /SCHED_FIFO and SCHED_RR/);
  assertSpecRejects((s) => { proc(s).scheduler = { policy: 'SCHED_FIFO', runtime: 5 }; }, 'process.scheduler.runtime', /SCHED_DEADLINE/);
});

test('hooks: absolute paths', () => {
  assertSpecRejects((s) => { s.hooks = { poststop: [{ path: '/bin/true' }, { path: 'hook.sh' }] }; }, 'hooks.poststop[1].path', /absolute path/);
});

test('mounts: destinations absolute', () => {
  assertSpecRejects((s) => { s.mounts?.push({ destination: 'data', type: 'tmpfs', source: 'tmpfs' }); }, 'mounts[7].destination', /absolute path, got "data"/);
});

test('mounts: options stockade does not implement are named, not passed to the fs', () => {
  assertSpecRejects((s) => { s.mounts?.push({ destination: '/data', type: 'tmpfs', options: ['idmap'] }); }, 'mounts[7].options[0]', /idmap/, 'UNSUPPORTED');
  assertSpecRejects((s) => {
    s.mounts?.push({ destination: '/data', source: '/src', options: ['rbind'], uidMappings: [{ containerID: 0, hostID: 1000, size: 1 }] });
  }, 'mounts[7].uidMappings', /id-mapped/, 'UNSUPPORTED');
});

test('linux.namespaces: no type twice', () => {
  assertSpecRejects((s) => { linux(s).namespaces?.push({ type: 'pid' }); }, 'linux.namespaces[6].type', /duplicate namespace "pid" \(first at linux\.namespaces\[0\]\)/);
});

test('linux.namespaces: paths absolute', () => {
  assertSpecRejects((s) => { linux(s).namespaces = [{ type: 'mount' }, { type: 'network', path: 'netns' }]; s.hostname = ''; }, 'linux.namespaces[1].path', /absolute path/);
});

test('uidMappings/gidMappings need a user namespace', () => {
  assertSpecRejects((s) => { linux(s).uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }]; }, 'linux.uidMappings', /needs a user namespace/);
  assertSpecRejects((s) => { linux(s).gidMappings = [{ containerID: 0, hostID: 1000, size: 1 }]; }, 'linux.gidMappings', /needs a user namespace/);
});

test('a new user namespace needs both mappings; joining one by path does not', () => {
  assertSpecRejects((s) => {
    linux(s).namespaces?.push({ type: 'user' });
    linux(s).uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
  }, 'linux.gidMappings', /required when a new user namespace/);
  const joined = baseSpec();
  linux(joined).namespaces?.push({ type: 'user', path: '/proc/1/ns/user' });
  assert.deepEqual(checkIdMappings(joined), []);
  // The spec does not forbid a path together with mappings; create checks they match.
  linux(joined).uidMappings = [{ containerID: 0, hostID: 0, size: 1 }];
  linux(joined).gidMappings = [{ containerID: 0, hostID: 0, size: 1 }];
  assert.deepEqual(runSemanticChecks(joined), []);
});

test('id mappings: size at least 1', () => {
  assertSpecRejects((s) => {
    linux(s).namespaces?.push({ type: 'user' });
    linux(s).uidMappings = [{ containerID: 0, hostID: 1000, size: 0 }];
    linux(s).gidMappings = [{ containerID: 0, hostID: 1000, size: 1 }];
  }, 'linux.uidMappings[0].size', /at least 1/);
});

test('hostname and domainname need a uts namespace', () => {
  assertSpecRejects((s) => { linux(s).namespaces = linux(s).namespaces?.filter((n) => n.type !== 'uts') ?? []; }, 'hostname', /needs a uts namespace/);
  assertSpecRejects((s) => {
    linux(s).namespaces = linux(s).namespaces?.filter((n) => n.type !== 'uts') ?? [];
    s.hostname = '';
    s.domainname = 'example.org';
  }, 'domainname', /needs a uts namespace/);
});

test('timeOffsets need a time namespace', () => {
  assertSpecRejects((s) => { linux(s).timeOffsets = { monotonic: { secs: 10 } }; }, 'linux.timeOffsets', /needs a time namespace/);
});

test('maskedPaths and readonlyPaths need a mount namespace', () => {
  assertSpecRejects((s) => { linux(s).namespaces = linux(s).namespaces?.filter((n) => n.type !== 'mount') ?? []; }, 'linux.maskedPaths', /needs a mount namespace/);
});

test('sysctl: each key only with the namespace that isolates it', () => {
  assertSpecRejects((s) => {
    linux(s).namespaces = linux(s).namespaces?.filter((n) => n.type !== 'network') ?? [];
    linux(s).sysctl = { 'net.ipv4.ip_forward': '1' };
  }, 'linux.sysctl["net.ipv4.ip_forward"]', /needs a network namespace/);
  assertSpecRejects((s) => {
    linux(s).namespaces = linux(s).namespaces?.filter((n) => n.type !== 'ipc') ?? [];
    linux(s).sysctl = { 'kernel.shmmax': '1' };
  }, 'linux.sysctl["kernel.shmmax"]', /needs an ipc namespace/);
  assertSpecRejects((s) => {
    linux(s).namespaces = linux(s).namespaces?.filter((n) => n.type !== 'ipc') ?? [];
    linux(s).sysctl = { 'fs.mqueue.msg_max': '10' };
  }, 'linux.sysctl["fs.mqueue.msg_max"]', /needs an ipc namespace/);
  assertSpecRejects((s) => { linux(s).sysctl = { 'kernel.hostname': 'x' }; }, 'linux.sysctl["kernel.hostname"]', /hostname field/);
  assertSpecRejects((s) => { linux(s).sysctl = { 'vm.swappiness': '10' }; }, 'linux.sysctl["vm.swappiness"]', /not namespaced/);
  const ok = baseSpec();
  linux(ok).sysctl = { 'net/ipv4/conf/eth0.100/rp_filter': '1', 'kernel.msgmax': '1', 'kernel.domainname': 'x' };
  assert.deepEqual(checkSysctl(ok), []);
});

test('sysctl keys in slash form are read as sysctl(8) reads them', () => {
  assert.equal(normaliseSysctlKey('net/ipv4/conf/eno2.100/rp_filter'), 'net.ipv4.conf.eno2/100.rp_filter');
  assert.equal(normaliseSysctlKey('net.ipv4.ip_forward'), 'net.ipv4.ip_forward');
  assert.equal(normaliseSysctlKey('kernel/shmmax'), 'kernel.shmmax');
});

test('devices: type valid, major and minor for c, b, u', () => {
  assertSpecRejects((s) => {
    linux(s).devices = [{ path: '/dev/x', type: 'x' as 'c', major: 1, minor: 1 }];
  }, 'linux.devices[0].type', /must match pattern/);
  assertSpecRejects((s) => { linux(s).devices = [{ path: '/dev/fuse', type: 'c', major: 10 }]; }, 'linux.devices[0].minor', /required for device type "c"/);
  assertSpecRejects((s) => { linux(s).devices = [{ path: 'dev/fuse', type: 'c', major: 10, minor: 229 }]; }, 'linux.devices[0].path', /absolute/);
  assert.deepEqual(runSemanticChecks({ ...baseSpec(), linux: { ...linux(baseSpec()), devices: [{ path: '/dev/fifo', type: 'p' }] } }), []);
});

test('maskedPaths and readonlyPaths: absolute', () => {
  assertSpecRejects((s) => { linux(s).maskedPaths = ['/proc/kcore', 'proc/keys']; }, 'linux.maskedPaths[1]', /absolute/);
  assertSpecRejects((s) => { linux(s).readonlyPaths = ['sys']; }, 'linux.readonlyPaths[0]', /absolute/);
});

test('rootfsPropagation: one of the spec values', () => {
  assertSpecRejects((s) => { linux(s).rootfsPropagation = 'rprivate' as 'private'; }, 'linux.rootfsPropagation', /allowed values \(private, shared, slave, unbindable\)/);
});

test('intelRdt.closID: one directory name', () => {
  assertSpecRejects((s) => { linux(s).intelRdt = { closID: '../escape' }; }, 'linux.intelRdt.closID', /single directory name/);
});

test('no NUL byte reaches C', () => {
  assertSpecRejects((s) => { proc(s).args = ['sh', '-c', 'echo\0hidden']; }, 'process.args[2]', /NUL/);
  const annotated = baseSpec();
  annotated.annotations = { note: 'a\0b' };
  assert.deepEqual(runSemanticChecks(annotated), []);
});
