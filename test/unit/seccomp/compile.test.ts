// Compiles profiles and runs the programs in the interpreter: actions, arguments, rule order, architectures, flags, size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SYSCALLS_X86_64 } from '../../../src/abi/linux/syscalls-x86_64';
import { actionValue, errno, trace } from '../../../src/seccomp/actions';
import { decodeProgram, disassemble } from '../../../src/seccomp/bpf';
import { compile } from '../../../src/seccomp/compile';
import {
  SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_NEW_LISTENER, SECCOMP_FILTER_FLAG_SPEC_ALLOW,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS,
  SECCOMP_RET_KILL_THREAD, SECCOMP_RET_LOG, SECCOMP_RET_TRACE, SECCOMP_RET_TRAP, SECCOMP_RET_USER_NOTIF,
} from '../../../src/seccomp/constants';
import { checkProgram, runFilter } from '../../../src/seccomp/interpreter';
import { parseSeccomp } from '../../../src/seccomp/parse';
import type { ArgCondition, CmpOp, SeccompAction, SeccompArch, SeccompProfile } from '../../../src/seccomp/types';
import { StockadeError } from '../../../src/errors';
import {
  AUDIT_ARCH_AARCH64, AUDIT_ARCH_ARM, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_BIT, expected, nr, pick, profile, rng,
  verdict,
} from './helpers';

const X86_64 = { arch: 'SCMP_ARCH_X86_64' } as const;
const ALLOW: SeccompAction = { kind: 'ALLOW' };
const EPERM = errno(1);

function rule(names: string[], action: SeccompAction, args: ArgCondition[] = []): SeccompProfile['syscalls'][number] {
  return { names, action, args };
}

function cond(index: ArgCondition['index'], op: CmpOp, value: bigint, valueTwo = 0n): ArgCondition {
  return { index, op, value, valueTwo };
}

test('each action returns its SECCOMP_RET_* value', () => {
  const cases: [SeccompAction, number][] = [
    [{ kind: 'ALLOW' }, SECCOMP_RET_ALLOW],
    [errno(13), SECCOMP_RET_ERRNO | 13],
    [{ kind: 'KILL_THREAD' }, SECCOMP_RET_KILL_THREAD],
    [{ kind: 'KILL_PROCESS' }, SECCOMP_RET_KILL_PROCESS],
    [{ kind: 'TRAP' }, SECCOMP_RET_TRAP],
    [trace(7), SECCOMP_RET_TRACE | 7],
    [{ kind: 'LOG' }, SECCOMP_RET_LOG],
    [{ kind: 'NOTIFY' }, SECCOMP_RET_USER_NOTIF],
  ];
  for (const [action, value] of cases) {
    const { program } = compile(profile({ defaultAction: ALLOW, syscalls: [rule(['getppid'], action)] }), X86_64);
    const ret = runFilter(program, { nr: nr('SCMP_ARCH_X86_64', 'getppid'), arch: AUDIT_ARCH_X86_64 });
    assert.equal(ret, value >>> 0, `${action.kind}`);
    assert.equal(runFilter(program, { nr: nr('SCMP_ARCH_X86_64', 'getpid'), arch: AUDIT_ARCH_X86_64 }), SECCOMP_RET_ALLOW);
  }
});

test('the default action and errno apply to syscalls no rule names', () => {
  const prof = parseSeccomp({
    defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: 95,
    syscalls: [{ names: ['read', 'openat2'], action: 'SCMP_ACT_ALLOW' }],
  });
  const { program } = compile(prof, X86_64);
  assert.equal(verdict(program, 'SCMP_ARCH_X86_64', 'read'), 'ALLOW');
  assert.equal(verdict(program, 'SCMP_ARCH_X86_64', 'write'), 'ERRNO(95)');
  assert.equal(verdict(program, 'SCMP_ARCH_X86_64', 0), 'ALLOW'); // read is 0
});

test('errnoRet: given, and EPERM when absent (as runc)', () => {
  const prof = parseSeccomp({
    defaultAction: 'SCMP_ACT_ALLOW',
    syscalls: [
      { names: ['mount'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
      { names: ['umount2'], action: 'SCMP_ACT_ERRNO' },
      { names: ['ptrace'], action: 'SCMP_ACT_TRACE', errnoRet: 1234 },
      { names: ['kcmp'], action: 'SCMP_ACT_TRACE' },
    ],
  });
  const { program } = compile(prof, X86_64);
  assert.equal(verdict(program, 'SCMP_ARCH_X86_64', 'mount'), 'ERRNO(38)');
  assert.equal(verdict(program, 'SCMP_ARCH_X86_64', 'umount2'), 'ERRNO(1)');
  assert.equal(verdict(program, 'SCMP_ARCH_X86_64', 'ptrace'), 'TRACE(1234)');
  assert.equal(verdict(program, 'SCMP_ARCH_X86_64', 'kcmp'), 'TRACE(1)');
  const dflt = compile(parseSeccomp({ defaultAction: 'SCMP_ACT_ERRNO' }), X86_64);
  assert.equal(verdict(dflt.program, 'SCMP_ARCH_X86_64', 'read'), 'ERRNO(1)');
});

test('SCMP_ACT_KILL is KILL_THREAD', () => {
  const prof = parseSeccomp({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['kexec_load'], action: 'SCMP_ACT_KILL' }] });
  assert.deepEqual(prof.syscalls[0]?.action, { kind: 'KILL_THREAD' });
  assert.equal(verdict(compile(prof, X86_64).program, 'SCMP_ARCH_X86_64', 'kexec_load'), 'KILL_THREAD');
});

// Values where the high half decides, the low half decides, or both are equal.
const HI = 0x1_0000_0000n;
const opCases: [CmpOp, bigint, [bigint, boolean][]][] = [
  ['EQ', HI + 5n, [[HI + 5n, true], [5n, false], [2n * HI + 5n, false], [HI + 6n, false]]],
  ['NE', HI + 5n, [[HI + 5n, false], [5n, true], [2n * HI + 5n, true], [HI + 4n, true]]],
  ['GT', HI + 5n, [[HI + 6n, true], [HI + 5n, false], [2n * HI, true], [0xffff_ffffn, false], [HI + 4n, false]]],
  ['GE', HI + 5n, [[HI + 5n, true], [HI + 4n, false], [2n * HI, true], [0xffff_ffffn, false], [(1n << 64n) - 1n, true]]],
  ['LT', HI + 5n, [[HI + 4n, true], [HI + 5n, false], [0xffff_ffffn, true], [2n * HI, false], [0n, true]]],
  ['LE', HI + 5n, [[HI + 5n, true], [HI + 6n, false], [0xffff_ffffn, true], [2n * HI + 1n, false]]],
];

for (const [op, value, samples] of opCases) {
  test(`SCMP_CMP_${op} compares all 64 bits`, () => {
    const prof = profile({ defaultAction: EPERM, syscalls: [rule(['openat'], ALLOW, [cond(2, op, value)])] });
    const { program } = compile(prof, X86_64);
    for (const [arg, holds] of samples) {
      assert.equal(verdict(program, 'SCMP_ARCH_X86_64', 'openat', [0n, 0n, arg]), holds ? 'ALLOW' : 'ERRNO(1)', `${arg} ${op} ${value}`);
    }
  });
}

test('SCMP_CMP_MASKED_EQ: (arg & value) == valueTwo on both halves', () => {
  const mask = 0xff00_0000_0000_00f0n;
  const prof = profile({ defaultAction: EPERM, syscalls: [rule(['mmap'], ALLOW, [cond(3, 'MASKED_EQ', mask, 0x1200_0000_0000_0030n)])] });
  const { program } = compile(prof, X86_64);
  const at = (v: bigint): string => verdict(program, 'SCMP_ARCH_X86_64', 'mmap', [0n, 0n, 0n, v]);
  assert.equal(at(0x12ab_cdef_0123_4537n), 'ALLOW');
  assert.equal(at(0x1200_0000_0000_0030n), 'ALLOW');
  assert.equal(at(0x1300_0000_0000_0030n), 'ERRNO(1)'); // high half differs under the mask
  assert.equal(at(0x1200_0000_0000_0040n), 'ERRNO(1)'); // low half differs under the mask
});

test('MASKED_EQ like Docker\'s clone rule: no namespace flags', () => {
  const prof = profile({ defaultAction: EPERM, syscalls: [rule(['clone'], ALLOW, [cond(0, 'MASKED_EQ', 0x7e020000n)])] });
  const { program } = compile(prof, X86_64);
  assert.equal(verdict(program, 'SCMP_ARCH_X86_64', 'clone', [0x01200011n]), 'ALLOW'); // what fork() passes
  assert.equal(verdict(program, 'SCMP_ARCH_X86_64', 'clone', [0x10000000n | 17n]), 'ERRNO(1)'); // CLONE_NEWUSER
  assert.equal(verdict(program, 'SCMP_ARCH_X86_64', 'clone', [HI | 17n]), 'ALLOW'); // high bits are outside the mask
});

test('conditions in one rule are ANDed, also on the same argument', () => {
  const prof = profile({
    defaultAction: EPERM,
    syscalls: [rule(['kill'], ALLOW, [cond(0, 'GE', 10n), cond(0, 'LE', 20n), cond(1, 'EQ', 15n)])],
  });
  const { program } = compile(prof, X86_64);
  const at = (a: bigint, b: bigint): string => verdict(program, 'SCMP_ARCH_X86_64', 'kill', [a, b]);
  assert.equal(at(10n, 15n), 'ALLOW');
  assert.equal(at(20n, 15n), 'ALLOW');
  assert.equal(at(21n, 15n), 'ERRNO(1)');
  assert.equal(at(9n, 15n), 'ERRNO(1)');
  assert.equal(at(15n, 9n), 'ERRNO(1)');
});

test('rules for one syscall are ORed, and the first that matches decides', () => {
  const prof = profile({
    defaultAction: { kind: 'KILL_PROCESS' },
    syscalls: [
      rule(['socket'], errno(97), [cond(0, 'EQ', 40n)]),
      rule(['socket'], ALLOW, [cond(0, 'LT', 38n)]),
      rule(['socket', 'getpid'], { kind: 'LOG' }, [cond(0, 'GT', 38n)]),
      rule(['socket'], errno(13)),
      rule(['socket'], ALLOW), // never reached: the rule above always matches
    ],
  });
  const { program } = compile(prof, X86_64);
  const at = (d: bigint): string => verdict(program, 'SCMP_ARCH_X86_64', 'socket', [d]);
  assert.equal(at(40n), 'ERRNO(97)'); // first rule wins over the third
  assert.equal(at(2n), 'ALLOW');
  assert.equal(at(39n), 'LOG');
  assert.equal(at(38n), 'ERRNO(13)');
  assert.equal(verdict(program, 'SCMP_ARCH_X86_64', 'getpid', [39n]), 'LOG');
  assert.equal(verdict(program, 'SCMP_ARCH_X86_64', 'getpid', [1n]), 'KILL_PROCESS');
});

test('names unknown on every filtered ABI are skipped and reported; per-ABI gaps are not', () => {
  const prof = parseSeccomp({
    defaultAction: 'SCMP_ACT_ERRNO',
    architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
    syscalls: [
      { names: ['read', 'no_such_syscall', 'arch_prctl', 'socketcall', 'constructor'], action: 'SCMP_ACT_ALLOW' },
      { names: ['also_missing'], action: 'SCMP_ACT_KILL' },
    ],
  });
  const out = compile(prof, X86_64);
  assert.deepEqual(out.skippedSyscalls, ['no_such_syscall', 'constructor', 'also_missing']);
  assert.equal(verdict(out.program, 'SCMP_ARCH_X86_64', 'read'), 'ALLOW');
  assert.equal(verdict(out.program, 'SCMP_ARCH_X86_64', 'arch_prctl'), 'ALLOW');
  assert.equal(verdict(out.program, 'SCMP_ARCH_X86', 'socketcall'), 'ALLOW');
  assert.equal(verdict(out.program, 'SCMP_ARCH_X86', 'read'), 'ALLOW');
});

test('an ABI the filter does not cover gets the bad-arch action (KILL_THREAD unless told)', () => {
  const prof = profile({ defaultAction: ALLOW, syscalls: [rule(['mount'], EPERM)] });
  const out = compile(prof, X86_64);
  assert.deepEqual(out.arches, ['SCMP_ARCH_X86_64']);
  assert.equal(runFilter(out.program, { nr: 3, arch: AUDIT_ARCH_I386 }), SECCOMP_RET_KILL_THREAD);
  assert.equal(runFilter(out.program, { nr: 3, arch: AUDIT_ARCH_AARCH64 }), SECCOMP_RET_KILL_THREAD);
  assert.equal(runFilter(out.program, { nr: 3, arch: 0x12345678 }), SECCOMP_RET_KILL_THREAD);
  const trap = compile(prof, { ...X86_64, badArchAction: { kind: 'KILL_PROCESS' } });
  assert.equal(runFilter(trap.program, { nr: 3, arch: AUDIT_ARCH_I386 }), SECCOMP_RET_KILL_PROCESS);
});

test('the native ABI is filtered even when `architectures` leaves it out; listed ones are added', () => {
  const prof = parseSeccomp({
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_ARM', 'SCMP_ARCH_MIPS64'],
    syscalls: [{ names: ['mount'], action: 'SCMP_ACT_ERRNO' }],
  });
  const out = compile(prof, { arch: 'SCMP_ARCH_AARCH64' });
  assert.deepEqual(out.arches, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  assert.deepEqual(out.skippedArchitectures, ['SCMP_ARCH_MIPS64']);
  assert.equal(verdict(out.program, 'SCMP_ARCH_AARCH64', 'mount'), 'ERRNO(1)');
  assert.equal(verdict(out.program, 'SCMP_ARCH_AARCH64', 'getpid'), 'ALLOW');
  assert.equal(verdict(out.program, 'SCMP_ARCH_ARM', 'mount'), 'ERRNO(1)');
  assert.equal(runFilter(out.program, { nr: 21, arch: AUDIT_ARCH_X86_64 }), SECCOMP_RET_KILL_THREAD);
  assert.equal(runFilter(out.program, { nr: 21, arch: AUDIT_ARCH_ARM }), SECCOMP_RET_ERRNO | 1); // arm's mount is 21
});

test('x32: numbers with __X32_SYSCALL_BIT take the bad-arch action unless x32 is listed', () => {
  const rules = [rule(['write'], ALLOW), rule(['read'], errno(5)), rule(['execveat'], EPERM)];
  const only64 = compile(profile({ defaultAction: EPERM, syscalls: rules }), X86_64);
  const run = (program: Buffer, n: number): number => runFilter(program, { nr: n, arch: AUDIT_ARCH_X86_64 });
  assert.equal(run(only64.program, 1), SECCOMP_RET_ALLOW);
  assert.equal(run(only64.program, X32_BIT | 1), SECCOMP_RET_KILL_THREAD, 'x32 write must not match x86_64 write');
  assert.equal(run(only64.program, X32_BIT | 0), SECCOMP_RET_KILL_THREAD);
  assert.equal(run(only64.program, 0x8000_0001), SECCOMP_RET_KILL_THREAD);
  // -1 is the number a tracer writes to skip a call; the filter sees it again and must not kill.
  assert.equal(run(only64.program, 0xffffffff), SECCOMP_RET_ERRNO | 1);

  const both = compile(profile({ defaultAction: EPERM, architectures: ['SCMP_ARCH_X32'], syscalls: rules }), X86_64);
  assert.deepEqual(both.arches, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32']);
  assert.equal(run(both.program, X32_BIT | 1), SECCOMP_RET_ALLOW);
  assert.equal(run(both.program, X32_BIT | 0), SECCOMP_RET_ERRNO | 5);
  assert.equal(run(both.program, X32_BIT | 2), SECCOMP_RET_ERRNO | 1);
  assert.equal(run(both.program, X32_BIT | 546), SECCOMP_RET_ERRNO | 38); // above x32's execveat, the last named
  // x32's own numbers: rt_sigaction is 512 | bit on x32, 13 on x86_64.
  const sig = compile(profile({ defaultAction: EPERM, architectures: ['SCMP_ARCH_X32'], syscalls: [rule(['rt_sigaction'], ALLOW)] }), X86_64);
  assert.equal(run(sig.program, X32_BIT | 512), SECCOMP_RET_ALLOW);
  assert.equal(run(sig.program, 13), SECCOMP_RET_ALLOW);
  assert.equal(run(sig.program, X32_BIT | 13), SECCOMP_RET_ERRNO | 1);
});

test('32-bit ABIs compare only the low half of an argument', () => {
  const prof = profile({
    defaultAction: ALLOW,
    architectures: ['SCMP_ARCH_X86'],
    syscalls: [
      rule(['kill'], EPERM, [cond(1, 'EQ', 9n)]),
      rule(['tgkill'], EPERM, [cond(0, 'EQ', HI + 1n)]), // can never hold for a 32-bit argument
      rule(['tkill'], EPERM, [cond(0, 'LT', HI)]), // always holds for a 32-bit argument
    ],
  });
  const { program } = compile(prof, X86_64);
  // A 64-bit process entering the i386 table with int $0x80 controls the high halves; the syscall ignores them.
  assert.equal(verdict(program, 'SCMP_ARCH_X86', 'kill', [1n, HI | 9n]), 'ERRNO(1)');
  assert.equal(verdict(program, 'SCMP_ARCH_X86_64', 'kill', [1n, HI | 9n]), 'ALLOW');
  assert.equal(verdict(program, 'SCMP_ARCH_X86', 'tgkill', [HI + 1n]), 'ALLOW');
  assert.equal(verdict(program, 'SCMP_ARCH_X86', 'tgkill', [1n]), 'ALLOW');
  assert.equal(verdict(program, 'SCMP_ARCH_X86', 'tkill', [HI | 7n]), 'ERRNO(1)');
});

test('syscalls newer than the profile get ENOSYS when the default denies (runc\'s patchbpf)', () => {
  const prof = profile({ defaultAction: EPERM, syscalls: [rule(['read', 'close_range'], ALLOW), rule(['clone3'], errno(1))] });
  const { program } = compile(prof, X86_64);
  const last = nr('SCMP_ARCH_X86_64', 'close_range'); // 436, above clone3's 435
  assert.equal(verdict(program, 'SCMP_ARCH_X86_64', last), 'ALLOW');
  assert.equal(verdict(program, 'SCMP_ARCH_X86_64', last - 2), 'ERRNO(1)');
  assert.equal(verdict(program, 'SCMP_ARCH_X86_64', last + 1), 'ERRNO(38)');
  assert.equal(verdict(program, 'SCMP_ARCH_X86_64', 0x3fff_ffff), 'ERRNO(38)');
  const off = compile(prof, { ...X86_64, enosysForNewerSyscalls: false });
  assert.equal(verdict(off.program, 'SCMP_ARCH_X86_64', last + 1), 'ERRNO(1)');
  const permissive = compile(profile({ defaultAction: { kind: 'LOG' }, syscalls: [rule(['read'], EPERM)] }), X86_64);
  assert.equal(verdict(permissive.program, 'SCMP_ARCH_X86_64', 400), 'LOG');
});

test('flags: LOG and SPEC_ALLOW pass through, TSYNC is ignored, NOTIFY adds NEW_LISTENER', () => {
  const base = { defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] };
  const plain = compile(parseSeccomp({ ...base, flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW', 'SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'] }), X86_64);
  assert.equal(plain.flags, SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW);
  assert.equal(plain.notify, false);
  assert.equal(compile(parseSeccomp(base), X86_64).flags, 0);

  const notify = compile(parseSeccomp({
    defaultAction: 'SCMP_ACT_ALLOW', listenerPath: '/run/agent.sock',
    flags: ['SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV'],
    syscalls: [{ names: ['openat'], action: 'SCMP_ACT_NOTIFY' }],
  }), X86_64);
  assert.equal(notify.notify, true);
  assert.equal(notify.flags, SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV);
  assert.equal(verdict(notify.program, 'SCMP_ARCH_X86_64', 'openat'), 'NOTIFY');

  // A NOTIFY rule whose names all fail to resolve notifies nothing: no listener.
  const none = compile(profile({ defaultAction: ALLOW, syscalls: [rule(['not_a_syscall'], { kind: 'NOTIFY' })] }), X86_64);
  assert.equal(none.notify, false);
  assert.equal(none.flags & SECCOMP_FILTER_FLAG_NEW_LISTENER, 0);
});

test('long programs: jumps beyond 255 instructions go through trampolines', () => {
  // Every syscall gets a different argument rule, so the search tree spans thousands of instructions.
  const names = Object.keys(SYSCALLS_X86_64);
  const prof = profile({
    defaultAction: { kind: 'KILL_PROCESS' },
    syscalls: names.map((n, i) => rule([n], errno(i % 4000 + 1), [cond(0, 'GT', BigInt(i) << 20n)])),
  });
  const out = compile(prof, X86_64);
  assert.ok(out.instructions > 1000 && out.instructions <= 4096, `${out.instructions} instructions`);
  const insns = decodeProgram(out.program);
  assert.ok(insns.some((ins) => ins.code === 0x05), 'expected ja trampolines');
  checkProgram(out.program);
  names.forEach((n, i) => {
    const threshold = BigInt(i) << 20n;
    assert.equal(verdict(out.program, 'SCMP_ARCH_X86_64', n, [threshold + 1n]), `ERRNO(${i % 4000 + 1})`, n);
    assert.equal(verdict(out.program, 'SCMP_ARCH_X86_64', n, [threshold]), 'KILL_PROCESS', n);
  });
});

test('a filter over 4096 instructions is refused, naming linux.seccomp', () => {
  const names = ['read', 'write', 'openat', 'close', 'mmap', 'brk', 'ioctl', 'fstat'];
  const prof = profile({
    defaultAction: EPERM,
    syscalls: Array.from({ length: 1000 }, (_, i) => rule([pick(rng(i + 1), names)], ALLOW, [cond(1, 'NE', BigInt(i) + HI)])),
  });
  assert.throws(() => compile(prof, X86_64), (e: unknown) => {
    assert.ok(e instanceof StockadeError);
    assert.equal(e.code, 'SECCOMP_INVALID');
    assert.match(e.message, /^linux\.seccomp: the compiled filter has \d+ instructions; the kernel takes at most 4096$/);
    return true;
  });
});

test('every program passes the kernel\'s load-time checks and disassembles', () => {
  const prof = profile({ defaultAction: EPERM, architectures: ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'], syscalls: [rule(['read'], ALLOW, [cond(0, 'NE', 3n)])] });
  const out = compile(prof, X86_64);
  checkProgram(out.program);
  const text = disassemble(decodeProgram(out.program)).join('\n');
  assert.match(text, /ld \[4\]/);
  assert.match(text, /jeq #0xc000003e/);
});

test('randomized: compiled filters agree with the reference semantics', () => {
  const pool = ['read', 'write', 'openat', 'socket', 'clone', 'personality', 'kill', 'mmap', 'ioctl', 'getpid', 'arch_prctl', 'socketcall', 'rt_sigaction', 'bogus'];
  const values = [0n, 1n, 2n, 38n, 40n, 0x7fff_ffffn, 0xffff_ffffn, HI, HI + 1n, 0xffff_ffff_0000_0000n, (1n << 64n) - 1n, 0x8000_0000_0000_0000n];
  const ops: CmpOp[] = ['NE', 'LT', 'LE', 'EQ', 'GE', 'GT', 'MASKED_EQ'];
  const actions: SeccompAction[] = [ALLOW, EPERM, errno(38), { kind: 'KILL_PROCESS' }, { kind: 'TRAP' }, { kind: 'LOG' }, trace(3), { kind: 'NOTIFY' }];
  const natives: SeccompArch[] = ['SCMP_ARCH_X86_64', 'SCMP_ARCH_AARCH64'];
  const extras: SeccompArch[] = ['SCMP_ARCH_X86', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_PPC64LE'];
  const audits = [AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64, AUDIT_ARCH_ARM];
  let checked = 0;
  for (let seed = 1; seed <= 150; seed++) {
    const r = rng(seed);
    const native = pick(r, natives);
    const prof = profile({
      defaultAction: pick(r, actions.filter((a) => a.kind !== 'NOTIFY')),
      architectures: extras.filter(() => r() < 0.4),
      syscalls: Array.from({ length: 1 + Math.floor(r() * 10) }, () => rule(
        Array.from({ length: 1 + Math.floor(r() * 3) }, () => pick(r, pool)),
        pick(r, actions),
        Array.from({ length: Math.floor(r() * 4) }, () => cond(
          Math.floor(r() * 3) as ArgCondition['index'], pick(r, ops), pick(r, values), pick(r, values),
        )),
      )),
    });
    const opts = { arch: native, enosysForNewerSyscalls: r() < 0.7 };
    const { program } = compile(prof, opts);
    for (let k = 0; k < 60; k++) {
      const auditArch = pick(r, audits);
      const abiName = pick(r, pool);
      let n: number;
      const roll = r();
      if (roll < 0.6) {
        const candidates: SeccompArch[] = auditArch === AUDIT_ARCH_X86_64 ? ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32']
          : auditArch === AUDIT_ARCH_I386 ? ['SCMP_ARCH_X86'] : auditArch === AUDIT_ARCH_AARCH64 ? ['SCMP_ARCH_AARCH64'] : ['SCMP_ARCH_ARM'];
        try {
          n = nr(pick(r, candidates), abiName);
        } catch {
          n = 0;
        }
      } else if (roll < 0.7) {
        n = 0xffffffff;
      } else if (roll < 0.8) {
        n = X32_BIT + Math.floor(r() * 600);
      } else {
        n = Math.floor(r() * 1000);
      }
      const args = Array.from({ length: 3 }, () => {
        const v = pick(r, values);
        const tweak = r();
        return BigInt.asUintN(64, tweak < 0.2 ? v + 1n : tweak < 0.4 ? v - 1n : tweak < 0.5 ? v ^ HI : v);
      });
      const got = runFilter(program, { nr: n, arch: auditArch, args });
      const want = expected(prof, opts, auditArch, n, args);
      assert.equal(got, want, `seed ${seed}: nr ${n} arch 0x${auditArch.toString(16)} args ${args.join(',')}: got 0x${got.toString(16)} want 0x${want.toString(16)}`);
      checked++;
    }
  }
  assert.equal(checked, 150 * 60);
});

test('the model\'s action values are what compile emits', () => {
  assert.equal(actionValue(errno(4095)), (SECCOMP_RET_ERRNO | 4095) >>> 0);
});
