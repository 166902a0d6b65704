// Serving one workload on the calling thread: its mounts and listener arrive from stockade-init, the
// thread walls and confines itself, then serves until every process under the filter is gone.
// The in-process sentry runs this in a worker thread; the detached sentry on its main thread.
import { CLONE_FS, CLONE_NEWIPC, CLONE_NEWNET, PATH_MAX, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP } from '../abi/linux/constants';
import { recvFd, sentryNative } from '../native/addon';
import { Sentry, type SentryDenial, type SentryMount, type SentryOptions, type SentryStats, type TraceSink } from './kernel';
import { compileSentryThreadFilter } from './confine';
import { NR, type SentryKernel } from './native';

export interface ServeConfig {
  /** The socket stockade-init sends the mounts and the listener over. */
  readonly socketFd: number;
  readonly user: SentryOptions['user'];
  readonly hostname: string;
  readonly domainname: string;
}

export interface ServeHooks {
  readonly trace?: TraceSink | undefined;
  readonly denied?: ((d: SentryDenial) => void) | undefined;
  /** Told the mounts the sentry holds, as fds of this process, before it serves (a later exec clones them). */
  readonly mounts?: ((m: readonly SentryMount[]) => void) | undefined;
  /** Blocks until the listener has a notification or has hung up; without it, RECV itself blocks. */
  readonly waitFor?: ((listener: number) => void) | undefined;
}

/** What serving came to: the stats once the workload is gone, or why there was nothing to serve. */
export type Served = { readonly stats: SentryStats } | { readonly failed: string };

export function serveOnThisThread(cfg: ServeConfig, hooks: ServeHooks = {}): Served {
  const native = sentryNative();
  // umask and cwd become this thread's alone: the sentry sets the caller's umask before creating files.
  const unshared = native.syscall(NR.unshare, CLONE_FS);
  if (unshared < 0) throw new Error(`unshare(CLONE_FS) failed: errno ${-unshared}`);
  // The sentry needs no network and no System V IPC: this thread gets empty namespaces of both
  // (namespaces are per thread), so a sentry subverted past its own filter reaches neither.
  const walled = native.syscall(NR.unshare, CLONE_NEWNET | CLONE_NEWIPC);
  if (walled < 0) throw new Error(`unshare(CLONE_NEWNET | CLONE_NEWIPC) failed: errno ${-walled}`);
  // Blocks until stockade-init loads the filter; its death before that closes the socket (EOF).
  // The mounts the sentry owns come first ("M" and the path), then the listener ("L").
  const mounts: SentryMount[] = [];
  let received = recvFd(cfg.socketFd, 1 + PATH_MAX);
  while (received.fd !== null && received.data[0] === 0x4d /* M */) {
    mounts.push({ path: received.data.toString('utf8', 1), fd: received.fd });
    received = recvFd(cfg.socketFd, 1 + PATH_MAX);
  }
  if (received.fd === null || received.data.toString() !== 'L') {
    for (const m of mounts) native.syscall(NR.close, m.fd);
    if (received.fd !== null) native.syscall(NR.close, received.fd);
    return { failed: 'stockade-init closed the sentry socket without sending a listener' };
  }
  const listener = received.fd;
  try {
    if (mounts.length > 0) hooks.mounts?.(mounts);
    // The workload's thread and the sentry hand the CPU to each other directly (Linux 6.6): a
    // round trip without a pass through the scheduler's run queue.
    native.notifSetFlags(listener, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
    const waitFor = hooks.waitFor;
    const kernel: SentryKernel = {
      listener: {
        recv: waitFor === undefined
          ? (buf) => native.notifRecv(listener, buf)
          : (buf) => {
            waitFor(listener);
            return native.notifRecv(listener, buf);
          },
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
      user: cfg.user,
      hostname: cfg.hostname,
      domainname: cfg.domainname,
      trace: hooks.trace,
      mounts,
      denied: hooks.denied,
    });
    sentry.init();
    // The addon learns the notification sizes once, with seccomp(2): before the thread may not.
    native.notifSizes();
    const confined = native.confineThread(compileSentryThreadFilter().program);
    if (confined < 0) throw new Error(`cannot confine the sentry's thread: errno ${-confined}`);
    return { stats: sentry.serve() };
  } finally {
    // Closed on every way out: a sentry that failed must not leave the workload waiting on a
    // listener nobody reads (once it is closed, the filter answers ENOSYS instead).
    native.syscall(NR.close, listener);
    for (const m of mounts) native.syscall(NR.close, m.fd);
  }
}
