// linux.seccomp compiled by stockade and loaded by stockade-init: denied calls get their errno or kill, others pass.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime, integrationSkip, probeSpec } from '../integration/harness';

const skip = integrationSkip();

describe('seccomp in a container', { skip }, () => {
  let rt: Runtime;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  const profile = {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
    syscalls: [
      { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
      { names: ['fchmodat', 'chmod', 'fchmodat2'], action: 'SCMP_ACT_KILL_PROCESS' },
      { names: ['no_such_syscall_anywhere'], action: 'SCMP_ACT_ERRNO' },
    ],
  } as const;

  test('an ERRNO rule returns its errno, a KILL_PROCESS rule kills with SIGSYS, the rest runs', () => {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'grep ^Seccomp: /proc/self/status; mkdir /tmp/x; echo "mkdir=$?"; echo alive'], (s) => {
      s.linux!.seccomp = JSON.parse(JSON.stringify(profile));
    }));
    const r = rt.run(['run', '--bundle', b.dir, 'sc1']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Seccomp:\s+2/);
    assert.match(r.stdout, /mkdir=1\nalive/);
    assert.match(r.stderr, /Permission denied/);
    b.writeSpec(probeSpec(['/bin/chmod', '600', '/tmp'], (s) => { s.linux!.seccomp = JSON.parse(JSON.stringify(profile)); }));
    const k = rt.run(['run', '--bundle', b.dir, 'sc2']);
    assert.equal(k.status, 128 + 31, 'killed by SIGSYS');
  });

  test('stockade do runs under the default profile', () => {
    const r = rt.run(['do', '--', 'sh', '-c', 'grep ^Seccomp: /proc/self/status; unshare -U true 2>/dev/null || echo refused']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Seccomp:\s+2\nrefused/);
  });

  test('a malformed profile is a one-line error naming the field', () => {
    const b = rt.bundle(probeSpec(['/bin/true'], (s) => {
      s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ERRNO', args: [{ index: 0, value: 1, op: 'SCMP_CMP_BOGUS' as 'SCMP_CMP_EQ' }] }] };
    }));
    const r = rt.run(['create', '--bundle', b.dir, 'sc3']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /linux\.seccomp\.syscalls\[0\]\.args\[0\]\.op/);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1);
    assert.deepEqual(rt.containerDirs(), []);
  });
});
