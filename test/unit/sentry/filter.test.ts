// The workload filter compiled from the table, run in the BPF interpreter: argument rules, NOTIFY, ENOSYS, compat ABIs, size.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CachedFilter } from '../../../src/seccomp/cache';
import { actionOf, actionValue, formatAction } from '../../../src/seccomp/actions';
import type { Abi } from '../../../src/seccomp/arch';
import { abiOf } from '../../../src/seccomp/arch';
import { BPF_MAXINSNS, SECCOMP_FILTER_FLAG_NEW_LISTENER } from '../../../src/seccomp/constants';
import { checkProgram, runFilter } from '../../../src/seccomp/interpreter';
import type { SeccompArch } from '../../../src/seccomp/types';
import type { SyscallEntry } from '../../../src/sentry/syscalls';
import { compileSentryFilter, sentryProfile, sentrySyscallTable, verdictAction } from '../../../src/sentry/syscalls';

const X86_64: SeccompArch = 'SCMP_ARCH_X86_64';
const native = compileSentryFilter(X86_64);
const compat = compileSentryFilter(X86_64, { compat: true });

const CLONE_NEWUSER = 0x10000000n;
const CLONE_NEWNET = 0x40000000n;
// What glibc's pthread_create passes.
const THREAD_FLAGS = 0x3d0f00n; // VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|CHILD_CLEARTID
const SIGCHLD = 17n;

function nr(arch: SeccompArch, name: string): number {
  const n = (abiOf(arch) as Abi).table[name];
  if (n === undefined) throw new Error(`no ${name} on ${arch}`);
  return n;
}

function verdict(program: Buffer, arch: SeccompArch, name: string | number, args: readonly bigint[] = []): string {
  const abi = abiOf(arch) as Abi;
  const n = typeof name === 'number' ? name : nr(arch, name);
  return formatAction(actionOf(runFilter(program, { nr: n, arch: abi.auditArch, args })));
}

test('the program is one the kernel accepts, within BPF_MAXINSNS, and asks for a listener', () => {
  for (const f of [native, compat, compileSentryFilter('SCMP_ARCH_AARCH64', { compat: true })]) {
    checkProgram(f.program);
    assert.ok(f.instructions <= BPF_MAXINSNS, `${f.instructions} instructions`);
    assert.ok(f.notify);
    assert.ok((f.flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) !== 0);
  }
  assert.deepEqual(native.arches, [X86_64]);
  assert.deepEqual(compat.arches, [X86_64, 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  // Names only other ABIs have are what the x86_64-only build skips; nothing else.
  const x64Only = new Set(sentrySyscallTable().filter((e) => e.numbers.SCMP_ARCH_X86_64 === undefined).map((e) => e.name));
  assert.ok(native.skippedSyscalls.every((n) => x64Only.has(n)));
});

test('clone: namespace flags get EPERM, threads and processes are allowed; clone3 gets ENOSYS', () => {
  assert.equal(verdict(native.program, X86_64, 'clone', [CLONE_NEWUSER | SIGCHLD]), 'ERRNO(1)');
  assert.equal(verdict(native.program, X86_64, 'clone', [CLONE_NEWNET]), 'ERRNO(1)');
  for (const flag of [0x20000n, 0x2000000n, 0x4000000n, 0x8000000n, 0x10000000n, 0x20000000n, 0x40000000n]) {
    assert.equal(verdict(native.program, X86_64, 'clone', [THREAD_FLAGS | flag]), 'ERRNO(1)', `flag 0x${flag.toString(16)}`);
  }
  assert.equal(verdict(native.program, X86_64, 'clone', [THREAD_FLAGS]), 'ALLOW');
  assert.equal(verdict(native.program, X86_64, 'clone', [0x1200000n | SIGCHLD]), 'ALLOW', 'fork as glibc does it');
  // The kernel reads clone's flags as 32 bits: junk above them changes nothing.
  assert.equal(verdict(native.program, X86_64, 'clone', [(1n << 40n) | SIGCHLD]), 'ALLOW');
  assert.equal(verdict(native.program, X86_64, 'clone3', [0n, 88n]), 'ERRNO(38)');
  assert.equal(verdict(native.program, X86_64, 'fork'), 'ALLOW');
  assert.equal(verdict(native.program, X86_64, 'vfork'), 'ALLOW');
  assert.equal(verdict(native.program, X86_64, 'unshare', [CLONE_NEWUSER]), 'ERRNO(1)');
});

test('socket: packet, raw and netlink-audit are refused; unix, inet and other netlink reach the sentry', () => {
  const s = (family: bigint, type: bigint, protocol = 0n): string => verdict(native.program, X86_64, 'socket', [family, type, protocol]);
  const SOCK_STREAM = 1n; const SOCK_DGRAM = 2n; const SOCK_RAW = 3n;
  const SOCK_NONBLOCK = 0x800n; const SOCK_CLOEXEC = 0x80000n;
  assert.equal(s(17n, SOCK_RAW, 0x300n), 'ERRNO(1)', 'AF_PACKET');
  assert.equal(s(17n, SOCK_DGRAM), 'ERRNO(1)', 'AF_PACKET, cooked');
  assert.equal(s(2n, SOCK_RAW | SOCK_CLOEXEC, 1n), 'ERRNO(1)', 'AF_INET raw');
  assert.equal(s(10n, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 58n), 'ERRNO(1)', 'AF_INET6 raw');
  assert.equal(s(2n, 10n), 'ERRNO(1)', 'SOCK_PACKET');
  assert.equal(s(16n, SOCK_RAW | SOCK_CLOEXEC, 9n), 'ERRNO(93)', 'AF_NETLINK/NETLINK_AUDIT');
  assert.equal(s(16n, SOCK_RAW | SOCK_CLOEXEC, 0n), 'NOTIFY', 'AF_NETLINK/NETLINK_ROUTE');
  assert.equal(s(1n, SOCK_STREAM | SOCK_CLOEXEC), 'NOTIFY', 'AF_UNIX');
  assert.equal(s(2n, SOCK_STREAM), 'NOTIFY', 'AF_INET');
  assert.equal(s(10n, SOCK_DGRAM | SOCK_NONBLOCK), 'NOTIFY', 'AF_INET6');
  // Families no rule names reach the sentry, which checks the arguments first, as the kernel
  // does, then answers EAFNOSUPPORT (sys-socket.ts): the filter cannot tell a bad type from a good one.
  assert.equal(s(38n, 5n), 'NOTIFY', 'AF_ALG');
  assert.equal(s(40n, SOCK_STREAM), 'NOTIFY', 'AF_VSOCK');
  assert.equal(s(17n, 999n), 'NOTIFY', 'AF_PACKET with a type the kernel refuses first (EINVAL)');
  assert.equal(s(17n, 11n), 'NOTIFY', 'AF_PACKET with a type past SOCK_PACKET (EINVAL)');
  assert.equal(s(1n, SOCK_RAW), 'NOTIFY', 'AF_UNIX SOCK_RAW, a datagram socket to the kernel');
  // socket() reads an int: a high word cannot smuggle AF_PACKET past the rules, nor turn AF_INET away.
  assert.equal(s((1n << 32n) | 17n, SOCK_DGRAM), 'ERRNO(1)');
  assert.equal(s((1n << 32n) | 2n, SOCK_STREAM), 'NOTIFY');
  assert.equal(verdict(native.program, X86_64, 'socketpair', [1n, SOCK_STREAM, 0n, 0x7ff0n]), 'ALLOW');
  assert.equal(verdict(native.program, X86_64, 'socketpair', [2n, SOCK_STREAM, 0n, 0x7ff0n]), 'ERRNO(97)');
  assert.equal(verdict(native.program, X86_64, 'sendto', [3n, 0x1000n, 5n, 0n, 0n, 0n]), 'ALLOW', 'connected: no address');
  assert.equal(verdict(native.program, X86_64, 'sendto', [3n, 0x1000n, 5n, 0n, 0x2000n, 16n]), 'NOTIFY');
  assert.equal(verdict(native.program, X86_64, 'sendto', [3n, 0x1000n, 5n, 0n, 1n << 32n, 16n]), 'NOTIFY', 'a pointer is 64 bits');
});

test('personality: only values that do not widen execution', () => {
  for (const v of [0n, 8n, 0x20000n, 0x20008n, 0xffffffffn]) {
    assert.equal(verdict(native.program, X86_64, 'personality', [v]), 'ALLOW', `0x${v.toString(16)}`);
  }
  for (const v of [0x0400000n /* READ_IMPLIES_EXEC */, 0x0040000n /* ADDR_NO_RANDOMIZE */, 0x0100000n /* MMAP_PAGE_ZERO */, 0x0800000n, 0x1n]) {
    assert.equal(verdict(native.program, X86_64, 'personality', [v]), 'ERRNO(1)', `0x${v.toString(16)}`);
  }
});

test('ioctl: held descriptors, minus TIOCSTI, TIOCLINUX and chattr', () => {
  assert.equal(verdict(native.program, X86_64, 'ioctl', [0n, 0x5401n /* TCGETS */]), 'ALLOW');
  assert.equal(verdict(native.program, X86_64, 'ioctl', [0n, 0x5412n]), 'ERRNO(1)');
  assert.equal(verdict(native.program, X86_64, 'ioctl', [0n, (0xdeadn << 32n) | 0x5412n]), 'ERRNO(1)', 'the command is an unsigned int');
  assert.equal(verdict(native.program, X86_64, 'ioctl', [0n, 0x40086602n]), 'ERRNO(1)');
});

test('paths NOTIFY, held-fd I/O ALLOW, the rest as the table says, unknown numbers ENOSYS', () => {
  assert.equal(verdict(native.program, X86_64, 'openat', [0xffffff9cn, 0x1000n, 0n]), 'NOTIFY');
  for (const name of ['open', 'newfstatat', 'statx', 'execve', 'connect', 'setuid', 'getcwd', 'uname']) {
    assert.equal(verdict(native.program, X86_64, name), 'NOTIFY', name);
  }
  for (const name of ['getppid', 'read', 'write', 'fstat', 'futex', 'mmap', 'exit_group', 'clock_gettime', 'rt_sigreturn']) {
    assert.equal(verdict(native.program, X86_64, name), 'ALLOW', name);
  }
  assert.equal(verdict(native.program, X86_64, 'mount'), 'ERRNO(1)');
  assert.equal(verdict(native.program, X86_64, 'io_uring_setup'), 'ERRNO(38)');
  assert.equal(verdict(native.program, X86_64, 'name_to_handle_at'), 'ERRNO(95)');
  assert.equal(verdict(native.program, X86_64, 1000), 'ERRNO(38)', 'a number no table names');
  assert.equal(verdict(native.program, X86_64, 0xffffffff), 'ERRNO(38)', 'a tracer\'s skip');
});

test('every x86_64 entry without argument rules gets exactly its class from the compiled program', () => {
  const plain = sentrySyscallTable().filter((e): e is SyscallEntry => e.rules.length === 0 && e.numbers.SCMP_ARCH_X86_64 !== undefined);
  for (const e of plain) {
    const want = verdictAction(e.class === 'DENIED' ? { class: 'DENIED', errno: e.errno } : { class: e.class });
    const got = runFilter(native.program, { nr: e.numbers.SCMP_ARCH_X86_64 as number, arch: 0xc000003e });
    assert.equal(got, actionValue(want), e.name);
  }
});

test('i386 and x32: killed without compat, filtered by the same table with it', () => {
  const I386: SeccompArch = 'SCMP_ARCH_X86';
  const X32: SeccompArch = 'SCMP_ARCH_X32';
  // int $0x80 from a 64-bit process, or an x32 call: not what the sentry's handlers can read.
  assert.equal(verdict(native.program, I386, 'getppid'), 'KILL_PROCESS');
  assert.equal(verdict(native.program, X32, 'getppid'), 'KILL_PROCESS');
  assert.equal(verdict(native.program, I386, 'openat'), 'KILL_PROCESS');

  assert.equal(verdict(compat.program, I386, 'getppid'), 'ALLOW');
  assert.equal(verdict(compat.program, I386, 'openat'), 'NOTIFY');
  assert.equal(verdict(compat.program, I386, 'stat64'), 'NOTIFY');
  assert.equal(verdict(compat.program, I386, 'mount'), 'ERRNO(1)');
  assert.equal(verdict(compat.program, I386, 'socketcall'), 'ERRNO(38)');
  assert.equal(verdict(compat.program, I386, 'clone', [CLONE_NEWUSER]), 'ERRNO(1)');
  // On i386 the registers are 32 bits wide: the high word is not the syscall's.
  assert.equal(verdict(compat.program, I386, 'clone', [(CLONE_NEWUSER << 32n) | SIGCHLD]), 'ALLOW');
  assert.equal(verdict(compat.program, I386, 'socket', [17n, 2n, 0n]), 'ERRNO(1)');
  assert.equal(verdict(compat.program, I386, 'socket', [2n, 1n, 0n]), 'NOTIFY');
  assert.equal(verdict(compat.program, X32, 'getppid'), 'ALLOW');
  assert.equal(verdict(compat.program, X32, 'openat'), 'NOTIFY');
  assert.equal(verdict(compat.program, X32, 'clone', [CLONE_NEWUSER]), 'ERRNO(1)');
  // The x86_64 half is the same program either way.
  assert.equal(verdict(compat.program, X86_64, 'clone', [CLONE_NEWUSER]), 'ERRNO(1)');
  assert.equal(verdict(compat.program, X86_64, 'openat'), 'NOTIFY');
});

test('the profile is plain data: MEDIATED as NOTIFY, default ENOSYS, no compat ABI unless asked', () => {
  const p = sentryProfile(X86_64);
  assert.deepEqual(p.defaultAction, { kind: 'ERRNO', errno: 38 });
  assert.deepEqual(p.architectures, []);
  assert.deepEqual(sentryProfile(X86_64, { compat: true }).architectures, ['SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  const notify = p.syscalls.filter((r) => r.action.kind === 'NOTIFY').flatMap((r) => r.names);
  assert.ok(notify.includes('openat') && notify.includes('execve') && notify.includes('socket'));
});

test('the sentry filter through the compiled-filter cache: the same program, from the cache the second time', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-sentry-cache-'));
  try {
    const plain = compileSentryFilter(undefined, { reportDenials: true });
    const first = compileSentryFilter(undefined, { reportDenials: true }, dir) as CachedFilter;
    const second = compileSentryFilter(undefined, { reportDenials: true }, dir) as CachedFilter;
    assert.equal(first.cached, false);
    assert.equal(second.cached, true);
    assert.deepEqual(second.program, plain.program);
    assert.equal(second.flags, plain.flags);
    // Another profile is another entry, not the first one's program.
    const other = compileSentryFilter(undefined, {}, dir) as CachedFilter;
    assert.equal(other.cached, false);
    assert.notDeepEqual(other.program, plain.program);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
