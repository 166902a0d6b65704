// The sentry acts with the caller's capabilities as the kernel holds them, not the config's: `docker run --user 1000` read and appended to /etc/shadow, chowned /etc/passwd (issue 21, finding 1).
//
// Docker puts its default capabilities in every set of the config, whatever the user; the kernel
// clears a non-root uid's effective set at its execve. The sentry took the config's set until the
// workload made an identity call. Each case runs the same program at the `namespaces` level (the
// kernel alone) and under the sentry, and the two must answer alike: through every transition
// (the first execve, setuid from root, capset, a setuid-root binary under no_new_privs, ambient
// capabilities that a non-root uid does keep).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Spec } from '../../src/oci/spec';
import { Runtime } from '../integration/harness';
import { attackSpec, buildAttacker, runAt, skip, type Level } from './sentry-creds-fixture';

/** Docker's default capability set (moby's oci/caps/defaults.go). */
const DOCKER_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

interface Rights { uid: number; euid: number; capeff: string; shadow_read: string; shadow_append: string; chown_passwd: string; chmod_shadow: string }

/** What the process may do, without the capability number (compared on its own). */
const verdicts = (r: Rights): Omit<Rights, 'capeff'> => ({
  uid: r.uid, euid: r.euid, shadow_read: r.shadow_read, shadow_append: r.shadow_append, chown_passwd: r.chown_passwd, chmod_shadow: r.chmod_shadow,
});

function user(uid: number, caps: readonly string[], ambient = false): (s: Spec) => void {
  return (s) => {
    if (s.process === undefined) return;
    s.process.user = { uid, gid: uid };
    s.process.capabilities = {
      bounding: [...caps], effective: [...caps], permitted: [...caps],
      ...(ambient ? { inheritable: [...caps], ambient: [...caps] } : {}),
    };
  };
}

describe('the sentry acts with the caller\'s capabilities as the kernel holds them (finding 1)', { skip }, () => {
  let rt: Runtime;
  before(() => {
    buildAttacker();
    rt = new Runtime();
  });
  after(() => rt.cleanup());

  function both(args: string[], mutate: (s: Spec) => void, what: string): Record<Level, Rights> {
    return {
      namespaces: runAt<Rights>(rt, 'namespaces', attackSpec(args, mutate), what),
      sentry: runAt<Rights>(rt, 'sentry', attackSpec(args, mutate), what),
    };
  }

  test('uid 1000 with Docker\'s capabilities in the config (docker run --user 1000): /etc/shadow neither read nor appended, /etc/passwd not chowned, /etc/shadow not chmodded', () => {
    const r = both(['rights'], user(1000, DOCKER_CAPS), 'uid 1000');
    const table = JSON.stringify(r);
    // The kernel's answer: after its execve a uid-1000 process holds no effective capability.
    assert.equal(r.namespaces.capeff, '0', table);
    assert.deepEqual(verdicts(r.namespaces), { uid: 1000, euid: 1000, shadow_read: 'EACCES', shadow_append: 'EACCES', chown_passwd: 'EPERM', chmod_shadow: 'EPERM' }, table);
    assert.deepEqual(verdicts(r.sentry), verdicts(r.namespaces), `the sentry lent the config's capabilities: ${table}`);
  });

  test('uid 1000 with DAC_OVERRIDE as an ambient capability keeps it through execve: the sentry lets it read /etc/shadow as the kernel does', () => {
    const r = both(['rights'], user(1000, ['CAP_DAC_OVERRIDE'], true), 'ambient');
    const table = JSON.stringify(r);
    assert.equal(r.namespaces.shadow_read, 'ok', table);
    assert.deepEqual(verdicts(r.sentry), verdicts(r.namespaces), table);
  });

  test('root with Docker\'s capabilities: setuid(1000), then the same calls are refused as the kernel refuses them', () => {
    const r = both(['setuid', '1000'], user(0, DOCKER_CAPS), 'setuid');
    const table = JSON.stringify(r);
    assert.equal(r.namespaces.shadow_read, 'EACCES', table);
    assert.deepEqual(verdicts(r.sentry), verdicts(r.namespaces), table);
  });

  test('root drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from its effective set (capset): /etc/shadow (mode 0000) is refused', () => {
    const r = both(['capdrop', '1', '2'], user(0, DOCKER_CAPS), 'capdrop');
    const table = JSON.stringify(r);
    assert.equal(r.namespaces.shadow_read, 'EACCES', table);
    assert.deepEqual(verdicts(r.sentry), verdicts(r.namespaces), table);
  });

  test('capabilities are per thread: a thread that dropped DAC_OVERRIDE is refused /etc/shadow, the thread that kept it is not', () => {
    const args = ['thread-capdrop'];
    const r = {
      namespaces: runAt<{ thread: string; main: string }>(rt, 'namespaces', attackSpec(args, user(0, DOCKER_CAPS)), 'thread-capdrop'),
      sentry: runAt<{ thread: string; main: string }>(rt, 'sentry', attackSpec(args, user(0, DOCKER_CAPS)), 'thread-capdrop'),
    };
    assert.deepEqual(r.namespaces, { thread: 'EACCES', main: 'ok' }, JSON.stringify(r));
    assert.deepEqual(r.sentry, r.namespaces, JSON.stringify(r));
  });

  test('uid 1000 executes a setuid-root copy of itself: no_new_privs keeps it uid 1000 and the sentry gives it nothing more', () => {
    const r = both(['exec', '/bin/suid-attack', 'rights'], user(1000, DOCKER_CAPS), 'setuid binary');
    const table = JSON.stringify(r);
    assert.equal(r.namespaces.euid, 1000, table);
    assert.deepEqual(verdicts(r.sentry), verdicts(r.namespaces), table);
  });

  test('root with Docker\'s capabilities keeps them through execve: the sentry allows what the kernel allows', () => {
    const r = both(['exec', '/bin/attack', 'rights'], user(0, DOCKER_CAPS), 'root');
    const table = JSON.stringify(r);
    assert.deepEqual(verdicts(r.namespaces), { uid: 0, euid: 0, shadow_read: 'ok', shadow_append: 'ok', chown_passwd: 'ok', chmod_shadow: 'ok' }, table);
    assert.deepEqual(verdicts(r.sentry), verdicts(r.namespaces), table);
  });
});
