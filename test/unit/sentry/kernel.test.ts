// The workload filter on the real kernel: a child loads it, drops the listener, and reports what one syscall got.
//
// The sentry filter asks for a listener: the loader closes it, so MEDIATED calls come back ENOSYS.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Abi } from '../../../src/seccomp/arch';
import { abiOf, nativeArch } from '../../../src/seccomp/arch';
import type { CompiledFilter } from '../../../src/seccomp/compile';
import { compileSentryFilter } from '../../../src/sentry/syscalls';
import { SeccompLoader, type Outcome } from '../../helpers/seccomp-loader';

const loader = new SeccompLoader('stockade-sentry-kernel-', () => {
  let arch: string | undefined;
  try {
    arch = nativeArch();
  } catch {
    arch = undefined;
  }
  return arch === 'SCMP_ARCH_X86_64' ? undefined : `these cases are written for x86_64, not ${process.arch}`;
});
after(() => loader.cleanup());

/** The loader's path: a loader that does not build fails the test. */
function setup(): string {
  return loader.exe();
}

function run(_exe: string, filter: CompiledFilter, sysno: number, args: readonly bigint[] = []): Outcome {
  return loader.run(filter, filter.flags, sysno, args);
}

const X86_64 = abiOf('SCMP_ARCH_X86_64') as Abi;
function nr(name: string): number {
  const n = X86_64.table[name];
  if (n === undefined) throw new Error(`no ${name}`);
  return n;
}

const EPERM = { signal: null, result: -1n, errno: 1 };
const ENOSYS = { signal: null, result: -1n, errno: 38 };

test('kernel: the sentry filter loads, denied calls get their errno, allowed ones run, mediated ones notify', { skip: loader.skip }, () => {
  const exe = setup();
  const f = compileSentryFilter('SCMP_ARCH_X86_64');

  const ppid = run(exe, f, nr('getppid'));
  assert.equal(ppid.errno, 0);
  assert.ok((ppid.result ?? 0n) > 0n, 'getppid returned a pid');

  // As root these would succeed or fail on their arguments; EPERM is the filter's.
  assert.deepEqual(run(exe, f, nr('unshare'), [0x10000000n]), EPERM, 'unshare(CLONE_NEWUSER)');
  assert.deepEqual(run(exe, f, nr('unshare'), [0n]), EPERM, 'unshare(0)');
  assert.deepEqual(run(exe, f, nr('mount'), [0n, 0n, 0n, 0n, 0n]), EPERM, 'mount');
  assert.deepEqual(run(exe, f, nr('ptrace'), [0n]), EPERM, 'ptrace(PTRACE_TRACEME)');
  assert.deepEqual(run(exe, f, nr('bpf'), [0n, 0n, 0n]), EPERM, 'bpf');
  assert.deepEqual(run(exe, f, nr('keyctl'), [0n, 0n]), EPERM, 'keyctl');
  assert.deepEqual(run(exe, f, nr('setns'), [0n, 0n]), EPERM, 'setns');
  assert.deepEqual(run(exe, f, nr('clone'), [0x10000000n | 17n]), EPERM, 'clone(CLONE_NEWUSER)');
  assert.deepEqual(run(exe, f, nr('personality'), [0x400000n]), EPERM, 'personality(READ_IMPLIES_EXEC)');
  assert.equal(run(exe, f, nr('personality'), [0xffffffffn]).errno, 0, 'personality query');

  assert.deepEqual(run(exe, f, nr('clone3'), [0n, 0n]), ENOSYS, 'clone3');
  assert.deepEqual(run(exe, f, nr('io_uring_setup'), [1n, 0n]), ENOSYS, 'io_uring_setup');
  assert.deepEqual(run(exe, f, 1000), ENOSYS, 'a number no table names');

  assert.deepEqual(run(exe, f, nr('socket'), [17n, 3n, 0x300n]), EPERM, 'AF_PACKET');
  assert.deepEqual(run(exe, f, nr('socket'), [2n, 3n | 0x80000n, 1n]), EPERM, 'AF_INET, SOCK_RAW|SOCK_CLOEXEC');
  assert.deepEqual(run(exe, f, nr('socket'), [16n, 3n, 9n]), { signal: null, result: -1n, errno: 93 }, 'NETLINK_AUDIT');

  // NOTIFY with the listener closed: the kernel's ENOSYS.
  assert.deepEqual(run(exe, f, nr('openat'), [0xffffff9cn, 0n, 0n]), ENOSYS, 'openat reaches the (absent) sentry');
  assert.deepEqual(run(exe, f, nr('socket'), [2n, 1n, 0n]), ENOSYS, 'AF_INET socket reaches the (absent) sentry');
});

test('kernel: a syscall through the x32 ABI kills the process', { skip: loader.skip }, () => {
  const exe = setup();
  const f = compileSentryFilter('SCMP_ARCH_X86_64');
  assert.deepEqual(run(exe, f, 0x40000000 | nr('getpid')), { signal: 'SIGSYS' });
});
