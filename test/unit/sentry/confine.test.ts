// The sentry's own filter, run in the BPF interpreter: what its worker thread may still do once it serves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { actionOf } from '../../../src/seccomp/actions';
import { runFilter } from '../../../src/seccomp/interpreter';
import { AUDIT_ARCH_X86_64, SYSCALLS_X86_64 } from '../../../src/abi/linux/syscalls-x86_64';
import { compileSentryThreadFilter, SENTRY_THREAD_CALLS } from '../../../src/sentry/confine';

const skip = process.arch !== 'x64' ? 'x86_64 syscall numbers' : false;

function verdict(name: string, args: bigint[] = []): string {
  const nr = SYSCALLS_X86_64[name];
  if (nr === undefined) throw new Error(`no ${name}`);
  const data = { nr, arch: AUDIT_ARCH_X86_64, instructionPointer: 0n, args: [...args, 0n, 0n, 0n, 0n, 0n, 0n].slice(0, 6) };
  const a = actionOf(runFilter(compileSentryThreadFilter().program, data));
  return a.kind === 'ERRNO' ? `ERRNO(${a.errno ?? 0})` : a.kind;
}

test('every call the worker needs is allowed', { skip }, () => {
  for (const name of Object.values(SENTRY_THREAD_CALLS).flat()) {
    if (SYSCALLS_X86_64[name] === undefined) continue;
    assert.equal(verdict(name), 'ALLOW', name);
  }
});

test('the /proc files the sentry generates: memfd_create, write, fchmod and fcntl (seals) are allowed', { skip }, () => {
  for (const name of ['memfd_create', 'write', 'fchmod', 'fcntl']) assert.equal(verdict(name), 'ALLOW', name);
});

test('escape routes are refused: exec, fork, sockets, ptrace, mounts, namespaces, signals, plain open', { skip }, () => {
  for (const name of ['execve', 'execveat', 'fork', 'vfork', 'clone', 'socket', 'ptrace', 'mount',
    'umount2', 'unshare', 'setns', 'kill', 'tgkill', 'open', 'openat', 'chroot', 'setuid', 'bpf', 'seccomp', 'prctl']) {
    assert.equal(verdict(name), 'ERRNO(1)', name);
  }
});

test('the network wall: connect, bind, sendmsg and getsockopt on sockets it holds; never a new socket', { skip }, () => {
  for (const name of ['connect', 'bind', 'sendmsg', 'getsockopt']) assert.equal(verdict(name), 'ALLOW', name);
  for (const name of ['socket', 'socketpair', 'sendto', 'listen', 'accept']) assert.equal(verdict(name), 'ERRNO(1)', name);
});

test('threads, never processes: clone only with CLONE_THREAD, clone3 ENOSYS (its flags are out of the filter\'s reach; glibc then uses clone)', { skip }, () => {
  // glibc's pthread_create: CLONE_VM|CLONE_FS|CLONE_FILES|CLONE_SIGHAND|CLONE_THREAD|CLONE_SYSVSEM|CLONE_SETTLS|CLONE_PARENT_SETTID|CLONE_CHILD_CLEARTID.
  assert.equal(verdict('clone', [0x3d0f00n]), 'ALLOW');
  // fork as glibc makes it (SIGCHLD|CLONE_CHILD_SETTID|CLONE_CHILD_CLEARTID), and a new user namespace.
  assert.equal(verdict('clone', [0x1200011n]), 'ERRNO(1)');
  assert.equal(verdict('clone', [0x10000000n | 17n]), 'ERRNO(1)');
  assert.equal(verdict('clone3'), 'ERRNO(38)');
});

test('ioctl only on the listener: SECCOMP_IOCTL_NOTIF_*, not a terminal\'s TIOCSTI', { skip }, () => {
  assert.equal(verdict('ioctl', [5n, 0xc0502100n]), 'ALLOW');
  assert.equal(verdict('ioctl', [5n, 0x40182103n]), 'ALLOW');
  assert.equal(verdict('ioctl', [0n, 0x5412n]), 'ERRNO(1)');
});
