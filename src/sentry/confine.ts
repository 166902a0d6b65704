// The sentry's own wall: the thread that serves the workload may make only the calls serving needs.
//
// A seccomp filter without TSYNC binds only the thread that loads it, so the serving thread (the
// main thread of the sentry process) confines itself and Node's other threads (libuv's, V8's)
// keep working as before. What
// a bug in a handler, or a workload that found one, could make this thread do is then bounded:
// no exec, no fork, no new socket (connect, bind and send only on the workload's own, taken, and the resolver sockets made before), no ptrace, no mount or namespace change, no signals to
// other processes; the only ioctls are the listener's.
import { ALLOW, errno } from '../seccomp/actions';
import { compile, type CompiledFilter } from '../seccomp/compile';
import type { SeccompProfile } from '../seccomp/types';
import { CLONE_THREAD, ENOSYS, EPERM } from '../abi/linux/constants';

/** SECCOMP_IOCTL_NOTIF_RECV, _SEND, _ID_VALID, _ADDFD and _SET_FLAGS (linux/seccomp.h, x86_64 and aarch64). */
const LISTENER_IOCTLS = [0xc0502100, 0xc0182101, 0x40082102, 0x40182103, 0x40082104];

/** Every call the serving thread makes once confined, by what it needs it for. */
export const SENTRY_THREAD_CALLS: Readonly<Record<string, readonly string[]>> = {
  'waiting for and reading the workload': ['poll', 'ppoll', 'process_vm_readv', 'process_vm_writev'],
  // /proc/TID/mem: the path of an exec through /proc/self/exe, rewritten to its exec link (exec-links.ts).
  'rewriting a caller\'s exec path': ['pwrite64'],
  'the file operations it performs for callers': [
    'openat2', 'close', 'newfstatat', 'statx', 'readlinkat', 'faccessat2', 'mkdirat', 'mknodat', 'unlinkat', 'renameat2',
    'linkat', 'symlinkat', 'fchmodat2', 'fchownat', 'utimensat', 'fstatfs', 'ftruncate', 'fcntl', 'getxattr', 'lgetxattr',
    'setxattr', 'lsetxattr', 'listxattr', 'llistxattr', 'removexattr', 'lremovexattr', 'read', 'syncfs',
    'inotify_add_watch', 'pidfd_open', 'pidfd_getfd',
  ],
  'listing the /proc and /sys directories it hands out as shadows (shadow-dirs.ts)': ['getdents64'],
  'taking the caller\'s identity and umask': ['setfsuid', 'setfsgid', 'setgroups', 'umask', 'capget', 'capset'],
  // Its own ids only (raw calls change the calling thread), within its saved uid 0: a unix peer of a
  // call the sentry makes reads the caller's ids (creds.ts asProcess).
  'taking the caller\'s process ids for a unix peer': ['setresuid', 'setresgid'],
  'answering uname and sysinfo': ['uname', 'sysinfo'],
  'taking `stockade trace` readers and exec\'d processes (the detached sentry, between notifications)': ['accept4', 'recvmsg'],
  'the /proc files it generates (sealed memfds)': ['memfd_create', 'fchmod'],
  // No socket(): the sockets are the workload's, taken with pidfd_getfd, and the resolver
  // sockets made before the thread confined itself (dns.ts).
  'the network wall: connecting, binding and sending on the workload\'s sockets, and its own DNS queries': [
    'connect', 'bind', 'sendmsg', 'getsockopt',
  ],
  'the threads that wait in opens of FIFOs and devices (blocking.ts), each interrupted by a timer of its own': [
    'timer_create', 'timer_settime', 'timer_delete',
  ],
  'what V8 and libuv do on the thread': [
    'mmap', 'munmap', 'mprotect', 'madvise', 'mremap', 'brk', 'futex', 'write', 'getpid', 'gettid', 'clock_gettime',
    'clock_nanosleep', 'nanosleep', 'sched_yield', 'sched_getaffinity', 'rt_sigprocmask', 'rt_sigreturn', 'getrandom',
    'rseq', 'set_robust_list', 'exit', 'exit_group', 'epoll_wait', 'epoll_pwait', 'epoll_pwait2', 'epoll_ctl',
  ],
};

export function sentryThreadProfile(): SeccompProfile {
  return {
    defaultAction: errno(EPERM),
    architectures: [],
    flags: [],
    syscalls: [
      { names: Object.values(SENTRY_THREAD_CALLS).flat(), action: ALLOW, args: [] },
      // Threads of this process (the blocking opens'), never a process: CLONE_THREAD is required.
      {
        names: ['clone'], action: ALLOW,
        args: [{ index: 0 as const, op: 'MASKED_EQ' as const, value: BigInt(CLONE_THREAD), valueTwo: BigInt(CLONE_THREAD) }],
      },
      // clone3 passes its flags in memory, out of a filter's reach: ENOSYS, and glibc falls back to clone.
      { names: ['clone3'], action: errno(ENOSYS), args: [] },
      ...LISTENER_IOCTLS.map((cmd) => ({
        names: ['ioctl'], action: ALLOW,
        args: [{ index: 1 as const, op: 'MASKED_EQ' as const, value: 0xffffffffn, valueTwo: BigInt(cmd) }],
      })),
    ],
  };
}

export function compileSentryThreadFilter(): CompiledFilter {
  // A call from another ABI gets EPERM too: killing the thread would take the runtime with it.
  return compile(sentryThreadProfile(), { badArchAction: errno(EPERM), enosysForNewerSyscalls: false });
}
