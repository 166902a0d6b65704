// The sentry's seam to the kernel: the listener, the workload's memory and the host's own syscalls, as interfaces a test can fake.
import { writeSync } from 'node:fs';
import type { SyscallArg } from '../native/addon';
import type { BlockingOpener } from './blocking';
import type { FastPathSeam } from './fast-path';
import { abiOf, nativeArch, syscallNumber } from '../seccomp/arch';


/** The host's own syscalls, made by the sentry's thread: the result, or a negative errno. */
export type RawSyscall = (nr: number, ...args: SyscallArg[]) => number;

/** The seccomp listener of one workload (SECCOMP_IOCTL_NOTIF_*): every call returns 0 or a negative errno. */
export interface Listener {
  /** Blocks for the next notification into `buf`; 1 when every process under the filter is gone. */
  recv(buf: Buffer): number;
  send(id: bigint, value: bigint, error: number, flags: number): number;
  /** Installs the sentry's `fd` in the caller; with `send`, the kernel answers the call with its number. */
  addfd(id: bigint, fd: number, newfdFlags: number, send: boolean): number;
  idValid(id: bigint): boolean;
}

/** The workload's memory, by the pid the notification names (process_vm_readv/writev). */
export interface WorkloadMemory {
  /**
   * `caps`, when given, is filled first with the thread's effective capabilities and a status
   * (memRead in src/native/addon.ts); a memory that leaves it as it was has the sentry read them itself.
   */
  read(pid: number, addr: bigint, buf: Buffer, len: number, caps?: Buffer): number;
  /** A NUL-terminated string of at most `max` bytes, or a negative errno (EFAULT, ENAMETOOLONG). */
  readString(pid: number, addr: bigint, max: number, caps?: Buffer): string | number;
  write(pid: number, addr: bigint, data: Uint8Array, len: number): number;
}

/** Everything the sentry reaches the kernel through. */
export interface SentryKernel {
  readonly listener: Listener;
  readonly memory: WorkloadMemory;
  readonly sys: RawSyscall;
  /**
   * The effective capabilities of thread `pid` as the kernel holds them now, or a negative errno;
   * capget(2) when absent. A seam for tests whose caller is this (root) process.
   */
  readonly callerCaps?: ((pid: number) => bigint | number) | undefined;
  /** sendmsg(2) with one iovec, a name and ancillary data (native sendMessage): the network wall's sends. */
  readonly sendMessage?: ((fd: number, data: Uint8Array, name: Uint8Array | null, control: Uint8Array | null, flags: number) => number) | undefined;
  /** Hands an open that may block to a thread of its own (blocking.ts); without it such opens are refused (EAGAIN). */
  readonly blocking?: BlockingOpener | undefined;
  /** The addon's fast path for this listener (fast-path.ts); without it every call is served in JavaScript. */
  readonly fast?: FastPathSeam | undefined;
}

const HOST_CALLS = [
  'openat2', 'close', 'newfstatat', 'statx', 'readlinkat', 'faccessat2', 'mkdirat', 'mknodat', 'unlinkat',
  'renameat2', 'linkat', 'symlinkat', 'fchmodat2', 'fchownat', 'utimensat', 'fstatfs', 'ftruncate', 'fcntl',
  'getxattr', 'lgetxattr', 'setxattr', 'lsetxattr', 'listxattr', 'llistxattr', 'removexattr', 'lremovexattr',
  'setfsuid', 'setfsgid', 'setgroups', 'setresuid', 'setresgid', 'umask', 'capget', 'capset', 'unshare', 'read', 'uname', 'sysinfo', 'syncfs',
  'pidfd_open', 'pidfd_getfd', 'inotify_add_watch', 'memfd_create', 'write', 'fchmod', 'ppoll', 'accept4', 'exit_group',
  'getdents64', 'fsopen', 'fsconfig', 'fsmount', 'pwrite64',
  'connect', 'bind', 'getsockopt', 'socket', 'getrandom',
] as const;
export type HostCall = (typeof HOST_CALLS)[number];

/** Syscall numbers of the calls the sentry makes itself, on the host's ABI. */
export const NR: Readonly<Record<HostCall, number>> = (() => {
  const abi = abiOf(nativeArch());
  const out: Partial<Record<HostCall, number>> = {};
  for (const name of HOST_CALLS) {
    const nr = abi === undefined ? undefined : syscallNumber(abi, name);
    out[name] = nr ?? -1;
  }
  return Object.freeze(out as Record<HostCall, number>);
})();

/**
 * Says `message` on stderr (sentry.log, or the terminal of a do) in one write(2). Not through
 * process.stderr: a serving thread is confined, and Node stats and reconfigures that fd, which the
 * thread's filter refuses.
 */
export function sayOnStderr(message: string): void {
  try {
    writeSync(2, `stockade sentry: ${message}\n`);
  } catch {
    // Nowhere left to say it.
  }
}
