// The default seccomp profile: the same effect as Docker's default (moby/profiles seccomp/default.json), in OCI `linux.seccomp` form.
//
// Docker's profile is an allow list: anything not named answers EPERM. Some calls are allowed
// only with the capability that makes them useful (mount needs CAP_SYS_ADMIN in any case, but
// the filter also keeps a container without it from reaching the kernel code at all), some only
// with harmless arguments. Rules that depend on capabilities are resolved here against the
// container's bounding set, as Docker does when it builds config.json.
import { ENOSYS, EPERM } from '../abi/linux/constants';
import { nativeArch } from './arch';
import type { OciSeccomp, OciSyscall, SeccompArch } from './types';

/** The capabilities Docker gives a container by default, which this profile is usually paired with. */
export const DOCKER_DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

const AF_ALG = 38;
const AF_NFC = 39;
const AF_VSOCK = 40;
/** CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP */
const CLONE_NAMESPACE_FLAGS = 0x7e020000;

/** Calls allowed whatever their arguments and capabilities, one group per concern. */
const ALWAYS_ALLOWED: readonly (readonly string[])[] = [
  // I/O on descriptors the process already holds, pipes, and descriptor bookkeeping.
  ['read', 'readv', 'pread64', 'preadv', 'preadv2', 'write', 'writev', 'pwrite64', 'pwritev', 'pwritev2',
    'lseek', '_llseek', 'sendfile', 'sendfile64', 'splice', 'tee', 'vmsplice', 'copy_file_range',
    'readahead', 'fadvise64', 'fadvise64_64', 'fallocate', 'ftruncate', 'ftruncate64', 'fsync',
    'fdatasync', 'sync', 'syncfs', 'sync_file_range', 'flock', 'cachestat', 'close', 'close_range', 'dup',
    'dup2', 'dup3', 'fcntl', 'fcntl64', 'ioctl', 'pipe', 'pipe2'],
  // Paths and file metadata inside the container's own file system view.
  ['access', 'faccessat', 'faccessat2', 'open', 'openat', 'openat2', 'creat', 'chdir', 'fchdir', 'getcwd',
    'mkdir', 'mkdirat', 'mknod', 'mknodat', 'rmdir', 'link', 'linkat', 'symlink', 'symlinkat', 'unlink',
    'unlinkat', 'rename', 'renameat', 'renameat2', 'readlink', 'readlinkat', 'chmod', 'fchmod', 'fchmodat',
    'fchmodat2', 'chown', 'chown32', 'fchown', 'fchown32', 'fchownat', 'lchown', 'lchown32', 'truncate',
    'truncate64', 'stat', 'stat64', 'lstat', 'lstat64', 'fstat', 'fstat64', 'fstatat64', 'newfstatat',
    'statx', 'statfs', 'statfs64', 'fstatfs', 'fstatfs64', 'utime', 'utimes', 'utimensat',
    'utimensat_time64', 'futimesat', 'getdents', 'getdents64', 'umask', 'name_to_handle_at'],
  // Reading the mount table through the newer calls (what /proc/self/mountinfo already shows).
  ['statmount', 'listmount'],
  // Extended attributes.
  ['getxattr', 'lgetxattr', 'fgetxattr', 'getxattrat', 'setxattr', 'lsetxattr', 'fsetxattr', 'setxattrat',
    'listxattr', 'llistxattr', 'flistxattr', 'listxattrat', 'removexattr', 'lremovexattr', 'fremovexattr',
    'removexattrat'],
  // Waiting for descriptors, and descriptors that deliver events (epoll, eventfd, signalfd,
  // timerfd, inotify, fanotify marks on a group someone with CAP_SYS_ADMIN created).
  ['poll', 'ppoll', 'ppoll_time64', 'select', '_newselect', 'pselect6', 'pselect6_time64', 'epoll_create',
    'epoll_create1', 'epoll_ctl', 'epoll_ctl_old', 'epoll_wait', 'epoll_wait_old', 'epoll_pwait',
    'epoll_pwait2', 'eventfd', 'eventfd2', 'signalfd', 'signalfd4', 'timerfd_create', 'timerfd_settime',
    'timerfd_settime64', 'timerfd_gettime', 'timerfd_gettime64', 'inotify_init', 'inotify_init1',
    'inotify_add_watch', 'inotify_rm_watch', 'fanotify_mark'],
  // Linux native AIO (not io_uring, which stays denied).
  ['io_setup', 'io_destroy', 'io_submit', 'io_cancel', 'io_getevents', 'io_pgetevents', 'io_pgetevents_time64'],
  // The process's own memory.
  ['brk', 'mmap', 'mmap2', 'munmap', 'mremap', 'mprotect', 'madvise', 'mincore', 'msync', 'mlock', 'mlock2',
    'mlockall', 'munlock', 'munlockall', 'remap_file_pages', 'membarrier', 'memfd_create', 'memfd_secret',
    'pkey_alloc', 'pkey_free', 'pkey_mprotect', 'map_shadow_stack', 'mseal'],
  // Creating, running and reaping processes and threads (clone has its own rule below), futexes,
  // restartable sequences, thread-local storage, pidfds on its own children.
  ['fork', 'vfork', 'execve', 'execveat', 'exit', 'exit_group', 'wait4', 'waitid', 'waitpid',
    'set_tid_address', 'set_robust_list', 'get_robust_list', 'futex', 'futex_time64', 'futex_wait',
    'futex_wake', 'futex_requeue', 'futex_waitv', 'rseq', 'restart_syscall', 'getcpu', 'prctl',
    'get_thread_area', 'set_thread_area', 'pidfd_open', 'pidfd_send_signal', 'process_mrelease',
    'uretprobe', 'riscv_hwprobe'],
  // Sandboxing itself further.
  ['seccomp', 'landlock_create_ruleset', 'landlock_add_rule', 'landlock_restrict_self'],
  // Credentials: reading them, and changing them within what the capabilities allow.
  ['getuid', 'getuid32', 'geteuid', 'geteuid32', 'getgid', 'getgid32', 'getegid', 'getegid32', 'getresuid',
    'getresuid32', 'getresgid', 'getresgid32', 'getgroups', 'getgroups32', 'setuid', 'setuid32', 'setgid',
    'setgid32', 'setreuid', 'setreuid32', 'setregid', 'setregid32', 'setresuid', 'setresuid32', 'setresgid',
    'setresgid32', 'setfsuid', 'setfsuid32', 'setfsgid', 'setfsgid32', 'setgroups', 'setgroups32', 'capget',
    'capset', 'getpid', 'getppid', 'gettid', 'getpgid', 'getpgrp', 'setpgid', 'getsid', 'setsid'],
  // Signals.
  ['kill', 'tkill', 'tgkill', 'rt_sigaction', 'rt_sigprocmask', 'rt_sigpending', 'rt_sigsuspend',
    'rt_sigreturn', 'rt_sigtimedwait', 'rt_sigtimedwait_time64', 'rt_sigqueueinfo', 'rt_tgsigqueueinfo',
    'sigaltstack', 'sigprocmask', 'sigreturn', 'pause', 'alarm'],
  // Clocks and timers (adjtimex and clock_adjtime only read the clock without CAP_SYS_TIME).
  ['clock_gettime', 'clock_gettime64', 'clock_getres', 'clock_getres_time64', 'clock_nanosleep',
    'clock_nanosleep_time64', 'clock_adjtime', 'clock_adjtime64', 'adjtimex', 'gettimeofday', 'time',
    'nanosleep', 'getitimer', 'setitimer', 'timer_create', 'timer_delete', 'timer_getoverrun',
    'timer_gettime', 'timer_gettime64', 'timer_settime', 'timer_settime64', 'times'],
  // Scheduling, priorities, resource limits and usage, system information, randomness.
  ['sched_yield', 'sched_getaffinity', 'sched_setaffinity', 'sched_getattr', 'sched_setattr',
    'sched_getparam', 'sched_setparam', 'sched_getscheduler', 'sched_setscheduler',
    'sched_get_priority_max', 'sched_get_priority_min', 'sched_rr_get_interval',
    'sched_rr_get_interval_time64', 'getpriority', 'setpriority', 'ioprio_get', 'ioprio_set', 'getrlimit',
    'ugetrlimit', 'setrlimit', 'prlimit64', 'getrusage', 'sysinfo', 'uname', 'getrandom'],
  // Sockets once created (socket itself has its own rule below); socketcall is i386's
  // multiplexer for all of them, whose arguments a filter cannot see.
  ['accept', 'accept4', 'bind', 'connect', 'listen', 'getsockname', 'getpeername', 'getsockopt',
    'setsockopt', 'shutdown', 'socketpair', 'sendto', 'sendmsg', 'sendmmsg', 'send', 'recv', 'recvfrom',
    'recvmsg', 'recvmmsg', 'recvmmsg_time64', 'socketcall'],
  // System V IPC (in the container's IPC namespace) and POSIX message queues.
  ['ipc', 'msgget', 'msgctl', 'msgsnd', 'msgrcv', 'semget', 'semctl', 'semop', 'semtimedop',
    'semtimedop_time64', 'shmget', 'shmctl', 'shmat', 'shmdt', 'mq_open', 'mq_unlink', 'mq_timedsend',
    'mq_timedsend_time64', 'mq_timedreceive', 'mq_timedreceive_time64', 'mq_notify', 'mq_getsetattr'],
];

/** Each ABI family's own calls, allowed when the host is of that family. */
const ARCH_ALLOWED: readonly { readonly hosts: readonly SeccompArch[]; readonly names: readonly string[] }[] = [
  // Setting the FS/GS base for thread-local storage.
  { hosts: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32'], names: ['arch_prctl'] },
  // Per-process LDT entries, which 16-bit code and some old runtimes use.
  { hosts: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_X86'], names: ['modify_ldt'] },
  // ARM's private calls: cache maintenance for JITs, the TLS register, and argument-order variants.
  {
    hosts: ['SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64'],
    names: ['arm_fadvise64_64', 'arm_sync_file_range', 'sync_file_range2', 'breakpoint', 'cacheflush', 'set_tls'],
  },
];

/** Calls allowed only when the container holds every capability named. */
const CAPABILITY_ALLOWED: readonly { readonly caps: readonly string[]; readonly names: readonly string[] }[] = [
  { caps: ['CAP_DAC_READ_SEARCH'], names: ['open_by_handle_at'] },
  // Mounts, namespaces, host and domain names, quotas, BPF and perf, kernel log: administration.
  {
    caps: ['CAP_SYS_ADMIN'],
    names: ['bpf', 'clone', 'clone3', 'fanotify_init', 'fsconfig', 'fsmount', 'fsopen', 'fspick',
      'lookup_dcookie', 'lsm_get_self_attr', 'lsm_list_modules', 'lsm_set_self_attr', 'mount',
      'mount_setattr', 'move_mount', 'open_tree', 'perf_event_open', 'quotactl', 'quotactl_fd',
      'setdomainname', 'sethostname', 'setns', 'syslog', 'umount', 'umount2', 'unshare'],
  },
  { caps: ['CAP_SYS_BOOT'], names: ['reboot'] },
  { caps: ['CAP_SYS_CHROOT'], names: ['chroot'] },
  { caps: ['CAP_SYS_MODULE'], names: ['delete_module', 'init_module', 'finit_module'] },
  { caps: ['CAP_SYS_PACCT'], names: ['acct'] },
  // Looking into other processes beyond what ptrace of its own children needs (see below).
  { caps: ['CAP_SYS_PTRACE'], names: ['kcmp', 'pidfd_getfd', 'process_madvise', 'process_vm_readv', 'process_vm_writev', 'ptrace'] },
  { caps: ['CAP_SYS_RAWIO'], names: ['iopl', 'ioperm'] },
  { caps: ['CAP_SYS_TIME'], names: ['settimeofday', 'stime', 'clock_settime', 'clock_settime64'] },
  { caps: ['CAP_SYS_TTY_CONFIG'], names: ['vhangup'] },
  { caps: ['CAP_SYS_NICE'], names: ['get_mempolicy', 'mbind', 'set_mempolicy', 'set_mempolicy_home_node'] },
  { caps: ['CAP_SYSLOG'], names: ['syslog'] },
  { caps: ['CAP_BPF'], names: ['bpf'] },
  { caps: ['CAP_PERFMON'], names: ['perf_event_open'] },
];

export interface DefaultProfileOptions {
  /** The host's ABI (this process's by default): picks the ABIs to filter and the ABI-specific calls. */
  readonly arch?: SeccompArch;
  /** The container's bounding set; Docker's default set when absent. */
  readonly capabilities?: readonly string[];
}

/** 32-bit and x32 processes a host of this ABI can also run, which Docker filters too. */
function architecturesFor(arch: SeccompArch): SeccompArch[] {
  switch (arch) {
    case 'SCMP_ARCH_X86_64': return ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];
    case 'SCMP_ARCH_AARCH64': return ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM'];
    default: return [arch];
  }
}

function allow(names: readonly string[]): OciSyscall {
  return { names: [...names], action: 'SCMP_ACT_ALLOW' };
}

/** The default profile for a container on a host of ABI `arch`, as config.json's `linux.seccomp`. */
export function defaultSeccompProfile(opts: DefaultProfileOptions = {}): OciSeccomp {
  const arch = opts.arch ?? nativeArch();
  const caps = new Set(opts.capabilities ?? DOCKER_DEFAULT_CAPABILITIES);
  const sysAdmin = caps.has('CAP_SYS_ADMIN');
  const syscalls: OciSyscall[] = [allow(ALWAYS_ALLOWED.flat())];

  // ptrace and cross-process memory access, within what the kernel's own ptrace checks allow
  // (debuggers and strace inside the container). Docker gates this on kernel 4.8, the first in
  // which seccomp re-checks a syscall after a tracer has changed it; stockade needs newer anyway.
  syscalls.push(allow(['process_vm_readv', 'process_vm_writev', 'ptrace']));

  // socket: every address family but AF_ALG (the kernel crypto API) and AF_VSOCK (host-guest
  // sockets). socket() reads its family as an int, so a 64-bit caller could put AF_ALG in the low
  // half and junk in the high half to slip past the range rules below; the two denials in front
  // look at the low half only. (Under runc these two rules, which repeat the default action, are
  // dropped, and the profile means exactly what Docker's does.)
  for (const family of [AF_ALG, AF_VSOCK]) {
    syscalls.push({
      names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM,
      args: [{ index: 0, value: 0xffffffff, valueTwo: family, op: 'SCMP_CMP_MASKED_EQ' }],
    });
  }
  syscalls.push({ names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: AF_ALG, op: 'SCMP_CMP_LT' }] });
  syscalls.push({ names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: AF_NFC, op: 'SCMP_CMP_EQ' }] });
  syscalls.push({ names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: AF_VSOCK, op: 'SCMP_CMP_GT' }] });

  // personality: only the execution domains programs ask for in practice (PER_LINUX,
  // PER_LINUX32, UNAME26 and both, and 0xffffffff, which only queries); not ADDR_NO_RANDOMIZE
  // and the like, which weaken the process's own hardening.
  for (const persona of [0x0, 0x8, 0x20000, 0x20008, 0xffffffff]) {
    syscalls.push({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: persona, op: 'SCMP_CMP_EQ' }] });
  }

  for (const group of ARCH_ALLOWED) if (group.hosts.includes(arch)) syscalls.push(allow(group.names));
  for (const group of CAPABILITY_ALLOWED) if (group.caps.every((c) => caps.has(c))) syscalls.push(allow(group.names));

  if (!sysAdmin) {
    // Without CAP_SYS_ADMIN: threads and processes yes, new namespaces no. clone's flags are
    // its first argument everywhere stockade runs (s390 swaps the first two).
    syscalls.push({
      names: ['clone'], action: 'SCMP_ACT_ALLOW',
      args: [{ index: 0, value: CLONE_NAMESPACE_FLAGS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
    });
    // clone3 passes its flags in memory, out of a filter's sight. ENOSYS rather than EPERM makes
    // libc fall back to clone, where the rule above applies.
    syscalls.push({ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS });
  }

  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: EPERM,
    architectures: architecturesFor(arch),
    syscalls,
  };
}
