// NO_SETID_RULES compiled, in the interpreter: a setuid or setgid mode is refused in every call that takes one, any other mode passes, and the rules come first in do's profile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile, defaultSeccompProfile, parseSeccomp } from '../../../src/seccomp';
import { NO_SETID_PROFILE, withNoSetid } from '../../../src/seccomp/no-setid';
import { verdict } from './helpers';

const CALLS: readonly (readonly [string, number])[] = [
  ['chmod', 1], ['fchmod', 1], ['fchmodat', 2], ['fchmodat2', 2], ['creat', 1], ['open', 2], ['openat', 3], ['mknod', 1], ['mknodat', 2],
];

function args(index: number, mode: number): bigint[] {
  const a = [0n, 0n, 0n, 0n, 0n, 0n];
  a[index] = BigInt(mode);
  return a;
}

for (const [name, program] of [
  ['the file server\'s profile', compile(parseSeccomp(NO_SETID_PROFILE)).program],
  ['do\'s profile with the rules', compile(parseSeccomp(withNoSetid(defaultSeccompProfile()))).program],
] as const) {
  test(`${name}: S_ISUID or S_ISGID in a mode is EPERM, other modes pass; openat2 is ENOSYS`, () => {
    for (const [call, index] of CALLS) {
      for (const mode of [0o4755, 0o2755, 0o6755, 0o104755]) assert.equal(verdict(program, 'SCMP_ARCH_X86_64', call, args(index, mode)), 'ERRNO(1)', `${call} ${mode.toString(8)}`);
      for (const mode of [0o755, 0o1777, 0o644, 0o100644]) assert.equal(verdict(program, 'SCMP_ARCH_X86_64', call, args(index, mode)), 'ALLOW', `${call} ${mode.toString(8)}`);
    }
    assert.equal(verdict(program, 'SCMP_ARCH_X86_64', 'openat2'), 'ERRNO(38)');
    assert.equal(verdict(program, 'SCMP_ARCH_X86_64', 'read'), 'ALLOW');
  });
}
