// `stockade spec` output: runc's example spec, valid against our own validator, rootless variant included.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultSpec, OCI_VERSION } from '../../../src/oci/default-spec';
import { parseMountOptions } from '../../../src/oci/mount-options';
import { parseConfig, runSemanticChecks } from '../../../src/oci/validate';

const DEFAULT_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

test('the default spec validates, written the way `stockade spec` writes it', () => {
  const text = `${JSON.stringify(defaultSpec(), null, '\t')}\n`;
  const spec = parseConfig(text, 'config.json');
  assert.equal(spec.ociVersion, OCI_VERSION);
});

test('the default spec is runc\'s', () => {
  const s = defaultSpec();
  assert.deepEqual(s.process?.args, ['sh']);
  assert.equal(s.process?.terminal, true);
  assert.equal(s.process?.noNewPrivileges, true);
  assert.deepEqual(s.process?.user, { uid: 0, gid: 0 });
  assert.deepEqual(s.process?.capabilities, { bounding: DEFAULT_CAPS, effective: DEFAULT_CAPS, permitted: DEFAULT_CAPS });
  assert.deepEqual(s.process?.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }]);
  assert.deepEqual(s.root, { path: 'rootfs', readonly: true });
  assert.deepEqual(s.mounts?.map((m) => m.destination), ['/proc', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue', '/sys', '/sys/fs/cgroup']);
  assert.deepEqual(s.linux?.namespaces?.map((n) => n.type), ['pid', 'network', 'ipc', 'uts', 'mount', 'cgroup']);
  assert.deepEqual(s.linux?.resources, { devices: [{ allow: false, access: 'rwm' }] });
  assert.ok(s.linux?.maskedPaths?.includes('/proc/kcore'));
  assert.ok(s.linux?.readonlyPaths?.includes('/proc/sys'));
  assert.equal(s.linux?.seccomp, undefined);
  for (const m of s.mounts ?? []) parseMountOptions(m.options);
});

test('the rootless spec: a user namespace mapping the caller, no network namespace, /sys bound', () => {
  const s = defaultSpec({ rootless: true, hostUid: 1234, hostGid: 5678 });
  assert.deepEqual(runSemanticChecks(s), []);
  parseConfig(JSON.stringify(s), 'config.json');
  const types = s.linux?.namespaces?.map((n) => n.type) ?? [];
  assert.ok(types.includes('user') && !types.includes('network'));
  assert.deepEqual(s.linux?.uidMappings, [{ containerID: 0, hostID: 1234, size: 1 }]);
  assert.deepEqual(s.linux?.gidMappings, [{ containerID: 0, hostID: 5678, size: 1 }]);
  assert.deepEqual(s.mounts?.find((m) => m.destination === '/sys'),
    { destination: '/sys', type: 'none', source: '/sys', options: ['rbind', 'nosuid', 'noexec', 'nodev', 'ro'] });
  assert.ok(!(s.mounts ?? []).some((m) => (m.options ?? []).some((o) => o.startsWith('gid=') || o.startsWith('uid='))));
  assert.equal(s.linux?.resources, undefined);
});

test('the rootless spec maps the caller by default', () => {
  const s = defaultSpec({ rootless: true });
  assert.equal(s.linux?.uidMappings?.[0]?.hostID, process.geteuid?.());
  assert.equal(s.linux?.gidMappings?.[0]?.hostID, process.getegid?.());
});

test('a seccomp profile plugs into linux.seccomp and still validates', () => {
  const s = defaultSpec({ seccomp: { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] } });
  assert.equal(parseConfig(JSON.stringify(s), 'config.json').linux?.seccomp?.defaultAction, 'SCMP_ACT_ERRNO');
});

test('each call returns a fresh object', () => {
  const a = defaultSpec();
  a.process?.capabilities?.bounding?.push('CAP_SYS_ADMIN');
  a.linux?.maskedPaths?.pop();
  assert.deepEqual(defaultSpec().process?.capabilities?.bounding, DEFAULT_CAPS);
  assert.equal(defaultSpec().linux?.maskedPaths?.length, 11);
});
