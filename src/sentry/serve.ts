// Serving workloads on the calling thread, in steps: the mounts and listener arrive from
// stockade-init, the thread walls itself, a Sentry is made per listener, the thread confines itself,
// then serves until every process under the filter is gone. The in-process sentry runs these in a
// worker thread (serveOnThisThread); the detached sentry on its main thread (SentryHost).
import { CLONE_FS, CLONE_NEWIPC, CLONE_NEWNET, PATH_MAX, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP } from '../abi/linux/constants';
import { recvFd, sentryNative } from '../native/addon';
import { Sentry, type SentryDenial, type SentryMount, type SentryOptions, type SentryStats, type TraceSink } from './kernel';
import { compileSentryThreadFilter } from './confine';
import { denialJudge } from './denials';
import { nativeArch } from '../seccomp/arch';
import { sentrySyscallTable } from './syscalls';
import { NR, type SentryKernel } from './native';

/** Who the workload runs as, and the names uname reports: what a Sentry serving it is made with. */
export interface WorkloadIdentity {
  readonly user: SentryOptions['user'];
  readonly hostname: string;
  readonly domainname: string;
}

export interface ServeConfig extends WorkloadIdentity {
  /** The socket stockade-init sends the mounts and the listener over. */
  readonly socketFd: number;
}

export interface ServeHooks {
  readonly trace?: TraceSink | undefined;
  readonly denied?: ((d: SentryDenial) => void) | undefined;
  /** Told the mounts the sentry holds, as fds of this process, before it serves (a later exec clones them). */
  readonly mounts?: ((m: readonly SentryMount[]) => void) | undefined;
}

/** What serving came to: the stats once the workload is gone, or why there was nothing to serve. */
export type Served = { readonly stats: SentryStats } | { readonly failed: string };

/** What stockade-init hands over: the mounts the sentry owns ("M" and the path), then the listener ("L"). */
type Handoff = { readonly listener: number; readonly mounts: SentryMount[] } | { readonly failed: string };

/** Receives one hand-off, blocking until stockade-init loads the filter; its death before that closes the socket (EOF). */
function receiveHandoff(socketFd: number): Handoff {
  const native = sentryNative();
  const mounts: SentryMount[] = [];
  let received = recvFd(socketFd, 1 + PATH_MAX);
  while (received.fd !== null && received.data[0] === 0x4d /* M */) {
    mounts.push({ path: received.data.toString('utf8', 1), fd: received.fd });
    received = recvFd(socketFd, 1 + PATH_MAX);
  }
  if (received.fd === null || received.data.toString() !== 'L') {
    for (const m of mounts) native.syscall(NR.close, m.fd);
    if (received.fd !== null) native.syscall(NR.close, received.fd);
    return { failed: 'stockade-init closed the sentry socket without sending a listener' };
  }
  return { listener: received.fd, mounts };
}

/**
 * umask and cwd become this thread's alone: the sentry sets the caller's umask before creating
 * files. And the sentry needs no network and no System V IPC: this thread gets empty namespaces of
 * both (namespaces are per thread), so a sentry subverted past its own filter reaches neither.
 */
export function wallThisThread(): void {
  const native = sentryNative();
  const unshared = native.syscall(NR.unshare, CLONE_FS);
  if (unshared < 0) throw new Error(`unshare(CLONE_FS) failed: errno ${-unshared}`);
  const walled = native.syscall(NR.unshare, CLONE_NEWNET | CLONE_NEWIPC);
  if (walled < 0) throw new Error(`unshare(CLONE_NEWNET | CLONE_NEWIPC) failed: errno ${-walled}`);
}

let threadFilter: Buffer | undefined;

/**
 * Makes what serving needs and takes milliseconds to make (the refusal judge compiles the whole
 * sentry filter; the syscall table; this thread's own filter), so that it is made while
 * stockade-init sets the container up, not once the listener has arrived and the workload waits
 * at its first call.
 */
export function prepareToServe(): void {
  denialJudge(nativeArch());
  sentrySyscallTable();
  threadFilter ??= compileSentryThreadFilter().program;
}

/** Bounds what this thread may do from now on (confine.ts). */
export function confineThisThread(): void {
  const native = sentryNative();
  // The addon learns the notification sizes once, with seccomp(2): before the thread may not.
  native.notifSizes();
  threadFilter ??= compileSentryThreadFilter().program;
  const confined = native.confineThread(threadFilter);
  if (confined < 0) throw new Error(`cannot confine the sentry's thread: errno ${-confined}`);
}

/** A Sentry serving `listener` from this thread, which makes its own calls. */
export function sentryFor(listener: number, who: WorkloadIdentity, hooks: ServeHooks, mounts: readonly SentryMount[]): Sentry {
  const native = sentryNative();
  // The workload's thread and the sentry hand the CPU to each other directly (Linux 6.6): a
  // round trip without a pass through the scheduler's run queue.
  native.notifSetFlags(listener, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
  const kernel: SentryKernel = {
    listener: {
      recv: (buf) => native.notifRecv(listener, buf),
      send: (id, value, error, flags) => native.notifSend(listener, id, value, error, flags),
      addfd: (id, fd, newfdFlags, send) => native.notifAddfd(listener, id, fd, newfdFlags, send),
      idValid: (id) => native.notifIdValid(listener, id),
    },
    memory: {
      read: (pid, addr, buf, len) => native.memRead(pid, addr, buf, len),
      readString: (pid, addr, max) => native.memReadString(pid, addr, max),
      write: (pid, addr, d, len) => native.memWrite(pid, addr, d, len),
    },
    sys: native.syscall,
  };
  const sentry = new Sentry(kernel, {
    user: who.user, hostname: who.hostname, domainname: who.domainname, trace: hooks.trace, mounts, denied: hooks.denied,
  });
  sentry.init();
  return sentry;
}

/** The in-process sentry's worker: one workload, served with RECV blocking by itself. */
export function serveOnThisThread(cfg: ServeConfig, hooks: ServeHooks = {}): Served {
  wallThisThread();
  prepareToServe();
  const handoff = receiveHandoff(cfg.socketFd);
  if ('failed' in handoff) return handoff;
  const native = sentryNative();
  try {
    if (handoff.mounts.length > 0) hooks.mounts?.(handoff.mounts);
    const sentry = sentryFor(handoff.listener, cfg, hooks, handoff.mounts);
    confineThisThread();
    return { stats: sentry.serve() };
  } finally {
    // Closed on every way out: a sentry that failed must not leave the workload waiting on a
    // listener nobody reads (once it is closed, the filter answers ENOSYS instead).
    native.syscall(NR.close, handoff.listener);
    for (const m of handoff.mounts) native.syscall(NR.close, m.fd);
  }
}
