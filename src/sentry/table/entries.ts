// The sentry's syscall table as data: every syscall of the ABIs stockade knows, its class, its handler, and why.
//
// Reading guide. Each spec below names syscalls that share an answer and a reason. ALLOW is kept
// to what cannot reach a path, a socket address, an identity or a new namespace: compute,
// memory, futexes, signals, time, and I/O on descriptors the workload already holds. Everything
// that resolves a path, creates or addresses a socket, changes identity or execs is MEDIATED:
// the sentry serves it (`served` says how fully; the handlers live in src/sentry/sys-*.ts, and a
// test checks that every served call has one). The rest is DENIED.
//
// Errnos of DENIED calls:
// - EPERM where a container without the privilege would get EPERM from the kernel (mount,
//   ptrace, bpf, keyctl, ...): the answer programs already handle, and Docker's.
// - ENOSYS where the kernel itself no longer implements the call, where a newer call has an
//   older fallback that the filter can see (clone3 -> clone), or where "not built into this
//   kernel" is the answer that makes programs carry on (io_uring, landlock): gVisor answers
//   ENOSYS for what it does not implement for the same reason.
// - Numbers no ABI table names get ENOSYS too (the profile's default): a syscall newer than
//   this table is one that libc must be able to live without.
//
// Process creation: fork, vfork and clone without namespace flags are ALLOW. A seccomp supervisor
// cannot learn the child's pid from a clone notification (the child exists only after the reply,
// and with SECCOMP_USER_NOTIF_FLAG_CONTINUE the return value never passes through the sentry), and
// it cannot fork on the workload's behalf; mediating would cost a round trip per thread and buy
// nothing. The sentry knows processes from what it needs them for: every notification carries the
// caller's pid, which it pins with a pidfd; the container's pid namespace and cgroup bound the
// rest. What a new process can do is still decided by the filter it inherits.
import type { ArgCondition, ArgIndex } from '../../seccomp/types';
import {
  CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWUSER, CLONE_NEWUTS,
  AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, AF_UNIX, EAFNOSUPPORT, ENOSYS, EOPNOTSUPP, EPERM, EPROTONOSUPPORT,
  FS_IOC32_SETFLAGS, FS_IOC_FSSETXATTR, FS_IOC_SETFLAGS, NETLINK_AUDIT, PER_LINUX, PER_LINUX32, PERSONALITY_QUERY,
  SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_PACKET, SOCK_RAW, SOCK_TYPE_MASK, TIOCLINUX, TIOCSTI, UNAME26,
} from '../../abi/linux/constants';
import type { ArgRule, HandlerFamily, Verdict } from './types';

export interface SyscallSpec {
  readonly names: readonly string[];
  /** what the calls get when no argument rule holds */
  readonly verdict: Verdict;
  /** where a MEDIATED call's handler lives; its name is the syscall's */
  readonly family?: HandlerFamily;
  readonly rules?: readonly ArgRule[];
  readonly note: string;
  /**
   * How much of a MEDIATED call's behaviour the sentry's handler gives: 'full', or 'partial' (the
   * note says what is missing). Absent: no handler yet, and the call is not MEDIATED.
   */
  readonly served?: 'full' | 'partial';
}

const ALLOW: Verdict = { class: 'ALLOW' };
const MEDIATED: Verdict = { class: 'MEDIATED' };
function deny(errno: number): Verdict {
  return { class: 'DENIED', errno };
}

/** The low 32 bits of an int argument equal `value` (what the kernel reads of an int). */
/** Socket options that route a packet through addresses of the sender's choosing (linux/in.h, linux/in6.h). */
const IPPROTO_IP = 0;
const IP_OPTIONS = 4;
const IPPROTO_IPV6 = 41;
const IPV6_2292RTHDR = 5;
const IPV6_RTHDR = 57;

/** socket(2)'s type with no bit but the type and SOCK_NONBLOCK and SOCK_CLOEXEC: what the kernel checks before anything else. */
const cleanType: ArgCondition = { index: 1, op: 'MASKED_EQ', value: BigInt((~(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC)) >>> 0), valueTwo: 0n };

function intEq(index: ArgIndex, value: number): ArgCondition {
  return { index, op: 'MASKED_EQ', value: 0xffffffffn, valueTwo: BigInt(value >>> 0) };
}

/**
 * The CLONE_NEW* flags clone(2) can carry, one rule each so the docs name them. CLONE_NEWTIME
 * is not among them: in clone(2) its bit is part of the exit signal, only clone3 and unshare take it.
 */
const CLONE_NAMESPACE_FLAGS: readonly (readonly [number, string])[] = [
  [CLONE_NEWNS, 'CLONE_NEWNS'], [CLONE_NEWCGROUP, 'CLONE_NEWCGROUP'], [CLONE_NEWUTS, 'CLONE_NEWUTS'],
  [CLONE_NEWIPC, 'CLONE_NEWIPC'], [CLONE_NEWUSER, 'CLONE_NEWUSER'], [CLONE_NEWPID, 'CLONE_NEWPID'],
  [CLONE_NEWNET, 'CLONE_NEWNET'],
];

export const SYSCALL_SPECS: readonly SyscallSpec[] = [
  // ---------------------------------------------------------------- ALLOW
  {
    names: ['read', 'write', 'readv', 'writev', 'pread64', 'pwrite64', 'preadv', 'pwritev', 'preadv2', 'pwritev2',
      'lseek', '_llseek', 'close', 'close_range', 'dup', 'dup2', 'dup3', 'fcntl', 'fcntl64', 'flock', 'fsync',
      'fdatasync', 'syncfs', 'sync_file_range', 'sync_file_range2', 'arm_sync_file_range', 'fadvise64',
      'fadvise64_64', 'arm_fadvise64_64', 'readahead', 'sendfile', 'sendfile64', 'splice', 'tee', 'vmsplice',
      'copy_file_range', 'getdents', 'getdents64', 'readdir', 'fstat', 'fstat64', 'oldfstat', 'fstatfs',
      'fstatfs64', 'fchdir', 'fgetxattr', 'flistxattr'],
    verdict: ALLOW,
    note: 'I/O on a descriptor the workload holds; the sentry chose its access mode when it opened it',
  },
  {
    names: ['ftruncate', 'ftruncate64', 'fallocate'],
    verdict: ALLOW,
    note: 'needs a descriptor open for writing, which the sentry does not hand out on a read-only mount',
  },
  {
    names: ['ioctl'],
    verdict: ALLOW,
    rules: [
      { when: [intEq(1, TIOCSTI)], verdict: deny(EPERM), why: 'TIOCSTI pushes input into a terminal another process reads' },
      { when: [intEq(1, TIOCLINUX)], verdict: deny(EPERM), why: 'TIOCLINUX reaches the virtual console' },
      { when: [intEq(1, FS_IOC_SETFLAGS)], verdict: deny(EPERM), why: 'chattr needs only ownership, not a writable descriptor, so it would pass a read-only mount the sentry enforces' },
      { when: [intEq(1, FS_IOC32_SETFLAGS)], verdict: deny(EPERM), why: 'chattr, 32-bit spelling' },
      { when: [intEq(1, FS_IOC_FSSETXATTR)], verdict: deny(EPERM), why: 'inode flags and project ids, as chattr' },
    ],
    note: 'on a held descriptor; the commands that write through terminals or inode flags are refused',
  },
  {
    names: ['poll', 'ppoll', 'ppoll_time64', 'select', '_newselect', 'pselect6', 'pselect6_time64', 'epoll_create',
      'epoll_create1', 'epoll_ctl', 'epoll_wait', 'epoll_pwait', 'epoll_pwait2'],
    verdict: ALLOW,
    note: 'waiting on held descriptors',
  },
  {
    names: ['pipe', 'pipe2', 'eventfd', 'eventfd2', 'signalfd', 'signalfd4', 'timerfd_create', 'timerfd_settime',
      'timerfd_settime64', 'timerfd_gettime', 'timerfd_gettime64', 'inotify_init', 'inotify_init1', 'inotify_rm_watch'],
    verdict: ALLOW,
    note: 'a new anonymous descriptor that names nothing outside the process',
  },
  {
    names: ['socketpair'],
    verdict: deny(EAFNOSUPPORT),
    rules: [{ when: [intEq(0, AF_UNIX)], verdict: ALLOW, why: 'an AF_UNIX pair is a pipe with two ends: no address, nothing outside' }],
    note: 'AF_UNIX only, as a pipe',
  },
  {
    names: ['brk', 'mmap', 'mmap2', 'munmap', 'mremap', 'mprotect', 'madvise', 'mincore', 'msync', 'mlock', 'mlock2',
      'mlockall', 'munlock', 'munlockall', 'membarrier', 'memfd_create', 'pkey_mprotect', 'pkey_alloc', 'pkey_free',
      'map_shadow_stack', 'mseal', 'cacheflush'],
    verdict: ALLOW,
    note: 'the process\'s own memory (a file mapping goes through a descriptor the sentry opened)',
  },
  {
    names: ['futex', 'futex_time64', 'futex_waitv', 'futex_wake', 'futex_wait', 'futex_requeue', 'set_robust_list',
      'get_robust_list', 'set_tid_address', 'rseq', 'restart_syscall', 'sched_yield', 'getcpu', 'arch_prctl',
      'set_thread_area', 'get_thread_area', 'set_tls', 'get_tls', 'breakpoint'],
    verdict: ALLOW,
    note: 'threads, futexes and thread-local storage',
  },
  {
    names: ['prctl'],
    verdict: ALLOW,
    note: 'per-process knobs (name, no_new_privs, death signal); those that touch credentials or the memory map need capabilities the container lacks',
  },
  {
    names: ['seccomp'],
    verdict: ALLOW,
    note: 'a filter the workload adds runs after the sentry\'s and can only narrow it',
  },
  {
    names: ['fork', 'vfork'],
    verdict: ALLOW,
    note: 'spawning is not mediated: the sentry cannot learn the child from the notification, nor fork for the workload; the child inherits the filter',
  },
  {
    names: ['clone'],
    verdict: ALLOW,
    rules: CLONE_NAMESPACE_FLAGS.map(([flag, name]) => ({
      when: [{ index: 0, op: 'MASKED_EQ', value: BigInt(flag), valueTwo: BigInt(flag) }],
      verdict: deny(EPERM),
      why: `${name}: a new namespace would leave the sentry's view`,
    })),
    note: 'threads and processes (see fork); any CLONE_NEW* flag gets EPERM (the flags are the first argument on every ABI here)',
  },
  {
    names: ['clone3'],
    verdict: deny(ENOSYS),
    note: 'its flags are in memory, out of the filter\'s sight; ENOSYS makes libc fall back to clone, whose flags the filter reads',
  },
  {
    names: ['exit', 'exit_group', 'wait4', 'waitid', 'waitpid'],
    verdict: ALLOW,
    note: 'ending and reaping processes',
  },
  {
    names: ['rt_sigaction', 'rt_sigprocmask', 'rt_sigreturn', 'rt_sigpending', 'rt_sigsuspend', 'rt_sigtimedwait',
      'rt_sigtimedwait_time64', 'rt_sigqueueinfo', 'rt_tgsigqueueinfo', 'sigaltstack', 'sigaction', 'sigprocmask',
      'sigreturn', 'sigsuspend', 'sigpending', 'signal', 'sgetmask', 'ssetmask', 'pause', 'alarm', 'kill', 'tkill',
      'tgkill', 'pidfd_open', 'pidfd_send_signal'],
    verdict: ALLOW,
    note: 'signals, within the container\'s pid namespace',
  },
  {
    names: ['clock_gettime', 'clock_gettime64', 'clock_getres', 'clock_getres_time64', 'clock_nanosleep',
      'clock_nanosleep_time64', 'nanosleep', 'gettimeofday', 'time', 'getitimer', 'setitimer', 'timer_create',
      'timer_settime', 'timer_settime64', 'timer_gettime', 'timer_gettime64', 'timer_getoverrun', 'timer_delete',
      'times'],
    verdict: ALLOW,
    note: 'reading clocks and arming the process\'s own timers',
  },
  {
    names: ['getpid', 'getppid', 'gettid', 'getuid', 'getuid32', 'geteuid', 'geteuid32', 'getgid', 'getgid32',
      'getegid', 'getegid32', 'getresuid', 'getresuid32', 'getresgid', 'getresgid32', 'getgroups', 'getgroups32',
      'getpgid', 'getpgrp', 'getsid', 'setpgid', 'setsid', 'capget'],
    verdict: ALLOW,
    note: 'reading ids, and job control: the kernel\'s credentials are the ones the sentry let the workload set',
  },
  {
    names: ['sched_getaffinity', 'sched_setaffinity', 'sched_getparam', 'sched_setparam', 'sched_getscheduler',
      'sched_setscheduler', 'sched_get_priority_max', 'sched_get_priority_min', 'sched_rr_get_interval',
      'sched_rr_get_interval_time64', 'sched_getattr', 'sched_setattr', 'getpriority', 'setpriority', 'nice',
      'ioprio_get', 'ioprio_set', 'getrlimit', 'ugetrlimit', 'setrlimit', 'prlimit64', 'getrusage', 'getrandom',
      'umask'],
    verdict: ALLOW,
    note: 'scheduling, limits and randomness within the container; raising them needs capabilities it lacks',
  },
  {
    names: ['accept', 'accept4', 'listen', 'shutdown', 'getsockname', 'getpeername', 'getsockopt',
      'recvfrom', 'recv', 'recvmsg', 'recvmmsg', 'recvmmsg_time64', 'send'],
    verdict: ALLOW,
    note: 'on a socket the workload holds, whose creation, bind and connect the sentry mediated',
  },
  {
    names: ['setsockopt'],
    verdict: ALLOW,
    rules: [
      // A source route sends each packet to its first hop, not to the address connect or sendto
      // named (tcp_v4_connect's nexthop, udp_sendmsg's faddr): past the network policy.
      { when: [intEq(1, IPPROTO_IP), intEq(2, IP_OPTIONS)], verdict: deny(EPERM), why: 'IP_OPTIONS: a source route (LSRR, SSRR) sends to an address the network policy never saw' },
      { when: [intEq(1, IPPROTO_IPV6), intEq(2, IPV6_RTHDR)], verdict: deny(EPERM), why: 'IPV6_RTHDR: a routing header sends to an address the network policy never saw' },
      { when: [intEq(1, IPPROTO_IPV6), intEq(2, IPV6_2292RTHDR)], verdict: deny(EPERM), why: 'IPV6_2292RTHDR: the same routing header, in RFC 2292\'s spelling' },
    ],
    note: 'on a socket the workload holds; source routes (IP_OPTIONS, IPV6_RTHDR) get EPERM: they would send past the network policy',
  },
  {
    names: ['sendto'],
    verdict: MEDIATED,
    family: 'socket',
    rules: [{
      when: [{ index: 4, op: 'EQ', value: 0n, valueTwo: 0n }],
      verdict: ALLOW,
      why: 'no destination address: the socket is connected, and its peer was checked when it connected',
    }],
    served: 'partial',
    note: 'with an address: under a network policy, checked and sent by the sentry on the socket it takes with pidfd_getfd (MSG_FASTOPEN: EOPNOTSUPP); under policy all, the kernel\'s',
  },
  {
    names: ['shmget', 'shmat', 'shmctl', 'shmdt', 'semget', 'semop', 'semctl', 'semtimedop', 'semtimedop_time64',
      'msgget', 'msgsnd', 'msgrcv', 'msgctl', 'ipc'],
    verdict: ALLOW,
    note: 'System V IPC, in the container\'s own IPC namespace',
  },
  {
    names: ['mq_timedsend', 'mq_timedsend_time64', 'mq_timedreceive', 'mq_timedreceive_time64', 'mq_notify',
      'mq_getsetattr'],
    verdict: ALLOW,
    note: 'on a message queue descriptor the workload holds',
  },
  {
    names: ['io_setup', 'io_destroy', 'io_submit', 'io_cancel', 'io_getevents', 'io_pgetevents', 'io_pgetevents_time64'],
    verdict: ALLOW,
    note: 'Linux native AIO on held descriptors (databases use it; io_uring stays denied)',
  },
  {
    names: ['uretprobe', 'uprobe'],
    verdict: ALLOW,
    note: 'entered only from a uprobe trampoline the host installed; the kernel kills any other caller',
  },
  {
    names: ['personality'],
    verdict: deny(EPERM),
    rules: [PER_LINUX, PER_LINUX32, UNAME26, UNAME26 | PER_LINUX32, PERSONALITY_QUERY].map((v) => ({
      when: [intEq(0, v)],
      verdict: ALLOW,
      why: v === PERSONALITY_QUERY ? 'reads the persona' : `persona 0x${v.toString(16)} changes what uname reports, not what may run or be mapped`,
    })),
    note: 'only PER_LINUX, PER_LINUX32, UNAME26 and the query (Docker\'s list); READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE, MMAP_PAGE_ZERO and other domains get EPERM',
  },

  // ---------------------------------------------------------------- MEDIATED: files
  {
    names: ['open', 'openat', 'openat2', 'creat'],
    verdict: MEDIATED, family: 'file', served: 'full',
    note: 'the sentry opens through its own descriptor of the root (RESOLVE_IN_ROOT) and injects the result with NOTIF_ADDFD; FIFOs, devices and O_PATH are checked, then opened by the kernel in the caller',
  },
  {
    names: ['newfstatat'],
    verdict: MEDIATED, family: 'file', served: 'full',
    note: 'glibc >= 2.33 implements fstat as newfstatat(fd, "", AT_EMPTY_PATH), whose empty path the filter cannot see: a hot path, the handler must be fast',
  },
  {
    names: ['stat', 'lstat', 'stat64', 'lstat64', 'fstatat64', 'oldstat', 'oldlstat', 'statx', 'access', 'faccessat',
      'faccessat2', 'readlink', 'readlinkat', 'statfs', 'statfs64', 'getxattr', 'lgetxattr', 'listxattr', 'llistxattr'],
    verdict: MEDIATED, family: 'file', served: 'partial',
    note: 'reads metadata by path, resolved in the root and written into the workload\'s memory; access checks the effective ids (AT_EACCESS), and lgetxattr and llistxattr on a symlink read its target',
  },
  {
    names: ['mkdir', 'mkdirat', 'mknod', 'mknodat', 'unlink', 'unlinkat', 'rmdir', 'rename', 'renameat', 'renameat2',
      'link', 'linkat', 'symlink', 'symlinkat', 'chmod', 'fchmodat', 'fchmodat2', 'chown', 'chown32', 'lchown',
      'lchown32', 'fchownat', 'truncate', 'truncate64', 'utime', 'utimes', 'utimensat', 'utimensat_time64',
      'futimesat', 'setxattr', 'lsetxattr', 'removexattr', 'lremovexattr'],
    verdict: MEDIATED, family: 'file', served: 'partial',
    note: 'changes the file system by path: performed by the sentry in the root, as the caller; mknod makes regular files and FIFOs only, and lsetxattr and lremovexattr on a symlink act on its target',
  },
  {
    names: ['fchmod', 'fchown', 'fchown32', 'fsetxattr', 'fremovexattr'],
    verdict: MEDIATED, family: 'file', served: 'full',
    note: 'on a held descriptor, but the kernel asks only for ownership, not a writable descriptor, so a read-only mount the sentry enforces would not stop it',
  },
  {
    names: ['chdir', 'getcwd', 'chroot'],
    verdict: MEDIATED, family: 'file', served: 'partial',
    note: 'the working directory: checked, then set by the kernel inside the root; chroot gets EPERM (the sentry resolves against one root)',
  },
  {
    names: ['inotify_add_watch'],
    verdict: MEDIATED, family: 'file', served: 'full',
    note: 'takes a path',
  },
  {
    names: ['sync'],
    verdict: MEDIATED, family: 'file', served: 'full',
    note: 'served as syncfs of the container\'s root, not a flush of every host file system',
  },

  // ---------------------------------------------------------------- MEDIATED: sockets
  {
    names: ['socket'],
    // Argument errors first, in the kernel's order (__sys_socket, then __sock_create): flags the
    // type does not have (EINVAL), a family out of range (EAFNOSUPPORT), a type out of range
    // (EINVAL), and only then the family's own answer. The filter cannot say "any of these bits",
    // so a call whose type carries a bit no flag is, or a family no rule names, reaches the
    // sentry's handler, which answers in that order (sys-socket.ts); the rules below apply to
    // clean types only, and a type past SOCK_PACKET goes to the handler too.
    verdict: MEDIATED,
    family: 'socket',
    rules: [
      ...[11, 12, 13, 14, 15].map((t) => ({
        when: [{ index: 1 as const, op: 'MASKED_EQ' as const, value: BigInt(SOCK_TYPE_MASK), valueTwo: BigInt(t) }],
        verdict: MEDIATED, why: `type ${t}, past SOCK_PACKET: the sentry answers EINVAL, or EAFNOSUPPORT for a family out of range, as the kernel checks them`,
      })),
      { when: [cleanType, intEq(0, AF_PACKET)], verdict: deny(EPERM), why: 'AF_PACKET sees and forges link-layer frames' },
      { when: [cleanType, intEq(0, AF_NETLINK), intEq(2, NETLINK_AUDIT)], verdict: deny(EPROTONOSUPPORT), why: 'NETLINK_AUDIT: the answer of a kernel without audit, which libaudit callers (login, sudo, useradd) carry on from' },
      // Before the SOCK_RAW rule: netlink sockets are SOCK_RAW or SOCK_DGRAM by definition, and a
      // unix SOCK_RAW socket is a datagram one (unix_create), no raw access.
      { when: [intEq(0, AF_NETLINK)], verdict: MEDIATED, why: 'other netlink protocols: the sentry lets NETLINK_ROUTE through (address and route dumps) and refuses the rest' },
      { when: [intEq(0, AF_UNIX)], verdict: MEDIATED, why: 'AF_UNIX: the kernel creates it in the caller\'s network namespace; its addresses come to the sentry' },
      { when: [cleanType, { index: 1, op: 'MASKED_EQ', value: BigInt(SOCK_TYPE_MASK), valueTwo: BigInt(SOCK_RAW) }], verdict: deny(EPERM), why: 'SOCK_RAW, whatever SOCK_NONBLOCK or SOCK_CLOEXEC: what a process without CAP_NET_RAW gets' },
      { when: [cleanType, { index: 1, op: 'MASKED_EQ', value: BigInt(SOCK_TYPE_MASK), valueTwo: BigInt(SOCK_PACKET) }], verdict: deny(EPERM), why: 'SOCK_PACKET, the obsolete packet socket type' },
      ...([[AF_INET, 'AF_INET'], [AF_INET6, 'AF_INET6']] as const).map(([f, name]) => ({
        when: [intEq(0, f)], verdict: MEDIATED, why: `${name}: the kernel creates it in the caller's network namespace; its addresses come to the sentry`,
      })),
    ],
    served: 'partial',
    note: 'AF_UNIX, AF_INET, AF_INET6 and AF_NETLINK reach the sentry, which lets the kernel create them in the container\'s network namespace; netlink only NETLINK_ROUTE (others EPROTONOSUPPORT); under a network policy, inet sockets only TCP, UDP, UDP-Lite and ping (SCTP and MPTCP connect where the sentry cannot see: EPROTONOSUPPORT); other families get EAFNOSUPPORT from the sentry, after the kernel\'s argument checks (flags and type EINVAL, a family out of range EAFNOSUPPORT)',
  },
  {
    names: ['connect', 'bind'],
    verdict: MEDIATED, family: 'socket', served: 'partial',
    note: 'under a network policy, the address is checked (a unix path resolved in the root as the caller) and the sentry performs the call on the socket it takes with pidfd_getfd; a blocking connect is answered when done, the sentry serving others meanwhile; refusals EPERM (connect), EACCES (bind); under policy all, the kernel\'s',
  },
  {
    names: ['sendmsg', 'sendmmsg'],
    verdict: MEDIATED, family: 'socket', served: 'partial',
    note: 'the destination is inside msghdr, in memory: under a network policy the sentry sends every message itself, with the address it checked (SCM_RIGHTS fds taken from the caller; SCM_CREDENTIALS and source routes EPERM); under policy all, the kernel\'s',
  },
  {
    names: ['mq_open', 'mq_unlink'],
    verdict: MEDIATED, family: 'system', served: 'full',
    note: 'queue names live in the IPC namespace\'s mqueue file system; the sentry owns the names the workload sees',
  },

  // ---------------------------------------------------------------- MEDIATED: identity, exec, system view
  {
    names: ['setuid', 'setuid32', 'setgid', 'setgid32', 'setreuid', 'setreuid32', 'setregid', 'setregid32',
      'setresuid', 'setresuid32', 'setresgid', 'setresgid32', 'setfsuid', 'setfsuid32', 'setfsgid', 'setfsgid32',
      'setgroups', 'setgroups32', 'capset'],
    verdict: MEDIATED, family: 'identity', served: 'full',
    note: 'identity changes are decided by the sentry against the container\'s user',
  },
  {
    names: ['execve', 'execveat'],
    verdict: MEDIATED, family: 'process', served: 'full',
    note: 'the sentry resolves and checks the binary; the exec itself continues in the kernel (the mount namespace holds only the container root); /proc/PID/exe through an exec link the sentry writes over the path (sentry-view.md)',
  },
  {
    names: ['uname', 'olduname', 'oldolduname', 'sysinfo'],
    verdict: MEDIATED, family: 'system', served: 'full',
    note: 'answered from the container\'s view (its hostname, a fixed release, its memory limit), not the host\'s kernel',
  },

  // ---------------------------------------------------------------- DENIED: privileged
  {
    names: ['mount', 'umount', 'umount2', 'pivot_root', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'move_mount',
      'open_tree', 'open_tree_attr', 'mount_setattr', 'statmount', 'listmount'],
    verdict: deny(EPERM),
    note: 'mounts: the workload\'s mount namespace holds only its root; its mount table is the sentry\'s',
  },
  {
    names: ['unshare', 'setns', 'listns'],
    verdict: deny(EPERM),
    note: 'namespaces: new ones would leave the sentry\'s view',
  },
  {
    names: ['ptrace', 'process_vm_readv', 'process_vm_writev', 'process_madvise', 'process_mrelease', 'kcmp', 'pidfd_getfd'],
    verdict: deny(EPERM),
    note: 'reaching into another process: the sentry alone does that (debuggers inside the container do not work)',
  },
  {
    names: ['bpf', 'perf_event_open', 'userfaultfd', 'fanotify_init', 'fanotify_mark', 'lookup_dcookie'],
    verdict: deny(EPERM),
    note: 'kernel attack surface with a long CVE record, and host-wide observation',
  },
  {
    names: ['keyctl', 'add_key', 'request_key'],
    verdict: deny(EPERM),
    note: 'kernel keyrings are not namespaced',
  },
  {
    names: ['kexec_load', 'kexec_file_load', 'reboot', 'init_module', 'finit_module', 'delete_module', 'iopl', 'ioperm',
      'swapon', 'swapoff', 'acct', 'quotactl', 'quotactl_fd', 'vhangup', 'syslog', 'sethostname', 'setdomainname',
      'pciconfig_iobase', 'pciconfig_read', 'pciconfig_write', 'vm86', 'vm86old'],
    verdict: deny(EPERM),
    note: 'host administration',
  },
  {
    names: ['settimeofday', 'stime', 'clock_settime', 'clock_settime64', 'adjtimex', 'clock_adjtime', 'clock_adjtime64'],
    verdict: deny(EPERM),
    note: 'the clock is the host\'s (adjtimex and clock_adjtime can also set it)',
  },
  {
    names: ['open_by_handle_at'],
    verdict: deny(EPERM),
    note: 'opens by inode handle, around every path check (the "shocker" escape)',
  },
  {
    names: ['name_to_handle_at'],
    verdict: deny(EOPNOTSUPP),
    note: 'handles and mount ids are host data; EOPNOTSUPP is what a file system without handles answers',
  },
  {
    names: ['modify_ldt'],
    verdict: deny(EPERM),
    note: 'per-process LDT entries: 16-bit code only, and a history of kernel bugs',
  },
  {
    names: ['mbind', 'set_mempolicy', 'get_mempolicy', 'set_mempolicy_home_node', 'migrate_pages', 'move_pages'],
    verdict: deny(EPERM),
    note: 'NUMA placement of host memory (Docker allows it only with CAP_SYS_NICE)',
  },
  {
    names: ['socketcall'],
    verdict: deny(ENOSYS),
    note: 'i386\'s socket multiplexer reads its arguments from memory, where the filter cannot apply the socket rules; libc for Linux >= 4.3 uses the direct calls',
  },

  // ---------------------------------------------------------------- DENIED: absent
  {
    names: ['io_uring_setup', 'io_uring_enter', 'io_uring_register'],
    verdict: deny(ENOSYS),
    note: 'io_uring performs I/O the filter never sees; ENOSYS, as a kernel built without it, makes runtimes fall back to epoll and threads',
  },
  {
    names: ['landlock_create_ruleset', 'landlock_add_rule', 'landlock_restrict_self'],
    verdict: deny(ENOSYS),
    note: 'the sentry already confines paths; callers treat ENOSYS as "no Landlock" and carry on',
  },
  {
    names: ['getxattrat', 'listxattrat', 'setxattrat', 'removexattrat', 'file_getattr', 'file_setattr'],
    verdict: deny(ENOSYS),
    note: 'Linux 6.13+ path-and-fd forms the sentry does not serve yet; ENOSYS makes libc use getxattr and the other older calls',
  },
  {
    names: ['memfd_secret', 'cachestat', 'remap_file_pages', 'lsm_get_self_attr', 'lsm_set_self_attr', 'lsm_list_modules',
      'rseq_slice_yield'],
    verdict: deny(ENOSYS),
    note: 'rare or new, not yet reviewed for the sentry; callers must cope with kernels without it',
  },
  {
    names: ['ustat', 'sysfs', '_sysctl', 'uselib'],
    verdict: deny(ENOSYS),
    note: 'obsolete and reveals host data; modern kernels build without it',
  },
  {
    names: ['afs_syscall', 'tuxcall', 'security', 'vserver', 'getpmsg', 'putpmsg', 'nfsservctl', 'create_module',
      'get_kernel_syms', 'query_module', 'epoll_ctl_old', 'epoll_wait_old', 'break', 'stty', 'gtty', 'ftime', 'prof',
      'lock', 'mpx', 'ulimit', 'profil', 'idle', 'bdflush', 'usr26', 'usr32'],
    verdict: deny(ENOSYS),
    note: 'not implemented by the kernel either',
  },
];
