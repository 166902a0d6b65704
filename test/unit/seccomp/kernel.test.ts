// Loads compiled programs into the real kernel in a child (a tiny C loader built with gcc) and checks what the syscalls get.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { errno } from '../../../src/seccomp/actions';
import { nativeArch } from '../../../src/seccomp/arch';
import { decodeProgram } from '../../../src/seccomp/bpf';
import type { CompiledFilter } from '../../../src/seccomp/compile';
import { compile } from '../../../src/seccomp/compile';
import { SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW } from '../../../src/seccomp/constants';
import { defaultSeccompProfile } from '../../../src/seccomp/default-profile';
import { parseSeccomp } from '../../../src/seccomp/parse';
import type { SeccompArch, SeccompProfile } from '../../../src/seccomp/types';
import { SeccompLoader, type Outcome } from '../../helpers/seccomp-loader';
import { nr, profile, X32_BIT } from './helpers';

function native(): SeccompArch | undefined {
  try {
    const arch = nativeArch();
    return arch === 'SCMP_ARCH_X86_64' || arch === 'SCMP_ARCH_AARCH64' ? arch : undefined;
  } catch {
    return undefined;
  }
}

const loader = new SeccompLoader('stockade-seccomp-kernel-', () => (native() === undefined ? `no test loader for ${process.arch}` : undefined));
after(() => loader.cleanup());

/** The loader's path: a loader that does not build fails the test. */
function setup(): string {
  return loader.exe();
}

function run(_exe: string, filter: CompiledFilter, flags: number, sysno: number, args: readonly bigint[] = []): Outcome {
  return loader.run(filter, flags, sysno, args);
}

function compileFor(arch: SeccompArch, prof: SeccompProfile): CompiledFilter {
  return compile(prof, { arch });
}

test('kernel: a denied call gets its errno, an allowed one runs, KILL_PROCESS dies of SIGSYS', { skip: loader.skip }, () => {
  const exe = setup();
  const arch = native();
  if (arch === undefined) throw new Error('no native architecture, although the loader can run');
  const f = compileFor(arch, profile({
    defaultAction: { kind: 'ALLOW' },
    syscalls: [
      { names: ['getppid'], action: errno(13), args: [] },
      { names: ['getpgid'], action: { kind: 'KILL_PROCESS' }, args: [] },
      { names: ['getpriority'], action: errno(22), args: [{ index: 1, op: 'EQ', value: 0x1_7fff_fff0n, valueTwo: 0n }] },
    ],
  }));
  assert.deepEqual(run(exe, f, 0, nr(arch, 'getppid')), { signal: null, result: -1n, errno: 13 });
  const pid = run(exe, f, 0, nr(arch, 'getpid'));
  assert.equal(pid.signal, null);
  assert.ok((pid.result ?? 0n) > 0n, 'getpid returned a pid');
  assert.deepEqual(run(exe, f, 0, nr(arch, 'getpgid'), [0n]), { signal: 'SIGSYS' });
  // The high half of a 64-bit argument reaches the filter.
  assert.deepEqual(run(exe, f, 0, nr(arch, 'getpriority'), [0n, 0x1_7fff_fff0n]), { signal: null, result: -1n, errno: 22 });
  assert.equal(run(exe, f, 0, nr(arch, 'getpriority'), [0n, 0x7fff_fff0n]).errno, 3, 'no such process: ESRCH from the kernel itself');
});

test('kernel: the flags the compiler returns are accepted', { skip: loader.skip }, () => {
  const exe = setup();
  const arch = native();
  if (arch === undefined) throw new Error('no native architecture, although the loader can run');
  const f = compile(parseSeccomp({
    defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'],
    syscalls: [{ names: ['getppid'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
  }), { arch });
  assert.equal(f.flags, SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW);
  assert.deepEqual(run(exe, f, f.flags, nr(arch, 'getppid')), { signal: null, result: -1n, errno: 1 });
});

test('kernel: the default profile, with its trampolines, allows and denies as Docker\'s does', { skip: loader.skip }, () => {
  const exe = setup();
  const arch = native();
  if (arch === undefined) throw new Error('no native architecture, although the loader can run');
  const f = compile(parseSeccomp(defaultSeccompProfile({ arch })), { arch });
  assert.ok(decodeProgram(f.program).some((i) => i.code === 0x05), 'the program exercises long jumps');
  assert.equal(run(exe, f, f.flags, nr(arch, 'getppid')).errno, 0);
  assert.deepEqual(run(exe, f, f.flags, nr(arch, 'mount')), { signal: null, result: -1n, errno: 1 });
  assert.deepEqual(run(exe, f, f.flags, nr(arch, 'unshare'), [0x10000000n]), { signal: null, result: -1n, errno: 1 });
  assert.deepEqual(run(exe, f, f.flags, nr(arch, 'kexec_load')), { signal: null, result: -1n, errno: 1 });
  assert.deepEqual(run(exe, f, f.flags, nr(arch, 'clone3')), { signal: null, result: -1n, errno: 38 });
  assert.deepEqual(run(exe, f, f.flags, nr(arch, 'socket'), [40n, 1n, 0n]), { signal: null, result: -1n, errno: 1 });
  assert.deepEqual(run(exe, f, f.flags, nr(arch, 'socket'), [(1n << 32n) | 38n, 5n, 0n]), { signal: null, result: -1n, errno: 1 });
  // An AF_UNIX socket is allowed: the loader exits right after, so the descriptor does not matter.
  assert.equal(run(exe, f, f.flags, nr(arch, 'socket'), [1n, 1n, 0n]).errno, 0);
});

test('kernel: an x32 syscall from a filter without x32 takes the bad-arch action', { skip: loader.skip || (native() !== 'SCMP_ARCH_X86_64' && 'x32 is an x86_64 ABI') }, () => {
  const exe = setup();
  const arch = 'SCMP_ARCH_X86_64';
  const getpid = nr(arch, 'getpid');
  const only64 = compileFor(arch, profile({ defaultAction: { kind: 'ALLOW' } }));
  assert.deepEqual(run(exe, only64, 0, X32_BIT | getpid), { signal: 'SIGSYS' });
  // With x32 filtered, its rules answer before the kernel looks at whether it supports x32 at all.
  const withX32 = compileFor(arch, profile({
    defaultAction: { kind: 'ALLOW' }, architectures: ['SCMP_ARCH_X32'],
    syscalls: [{ names: ['getpid'], action: errno(77), args: [] }],
  }));
  assert.deepEqual(run(exe, withX32, 0, X32_BIT | getpid), { signal: null, result: -1n, errno: 77 });
  assert.equal(run(exe, withX32, 0, getpid).errno, 77, 'and x86_64 getpid, named by the same rule');
});
