// The sentry's worker thread: receives the listener from stockade-init and serves it, off Node's event loop.
import { parentPort, workerData } from 'node:worker_threads';
import { CLONE_FS, CLONE_NEWIPC, CLONE_NEWNET, PATH_MAX, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP } from '../abi/linux/constants';
import { recvFd, sentryNative } from '../native/addon';
import { Sentry, type SentryMount, type SentryDenial, type SentryOptions, type SentryStats, type TraceRecord, type TraceSink } from './kernel';
import { compileSentryThreadFilter } from './confine';
import { NR, type SentryKernel } from './native';

/** What the supervisor passes the worker (structured-cloned). */
export interface SentryWorkerData {
  /** This process's end of the socket stockade-init sends the listener over. */
  readonly socketFd: number;
  readonly user: SentryOptions['user'];
  readonly hostname: string;
  readonly domainname: string;
  /** Element 0 is non-zero while a `stockade trace` reader is connected; absent: never traced. */
  readonly traceFlag?: Int32Array | undefined;
}

/** Messages from the worker to the supervisor. */
export type SentryWorkerMessage =
  | { readonly type: 'listening'; readonly syncWakeUp: boolean }
  /** The mounts the sentry holds, as fds of this process (a later exec clones them). */
  | { readonly type: 'mounts'; readonly mounts: readonly SentryMount[] }
  | { readonly type: 'trace'; readonly record: TraceRecord }
  | { readonly type: 'denied'; readonly denial: SentryDenial }
  | { readonly type: 'done'; readonly stats: SentryStats }
  | { readonly type: 'failed'; readonly message: string };

function post(m: SentryWorkerMessage): void {
  parentPort?.postMessage(m);
}

function traceSink(flag: Int32Array): TraceSink {
  return {
    enabled: () => Atomics.load(flag, 0) !== 0,
    record: (record) => post({ type: 'trace', record }),
  };
}

function main(data: SentryWorkerData): void {
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
  let received = recvFd(data.socketFd, 1 + PATH_MAX);
  while (received.fd !== null && received.data[0] === 0x4d /* M */) {
    mounts.push({ path: received.data.toString('utf8', 1), fd: received.fd });
    received = recvFd(data.socketFd, 1 + PATH_MAX);
  }
  if (received.fd === null || received.data.toString() !== 'L') {
    for (const m of mounts) native.syscall(NR.close, m.fd);
    if (received.fd !== null) native.syscall(NR.close, received.fd);
    post({ type: 'failed', message: 'stockade-init closed the sentry socket without sending a listener' });
    return;
  }
  const listener = received.fd;
  if (mounts.length > 0) post({ type: 'mounts', mounts });
  let stats: SentryStats;
  try {
    // The workload's thread and the sentry hand the CPU to each other directly (Linux 6.6): a
    // round trip without a pass through the scheduler's run queue.
    const syncWakeUp = native.notifSetFlags(listener, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) === 0;
    post({ type: 'listening', syncWakeUp });
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
      user: data.user,
      hostname: data.hostname,
      domainname: data.domainname,
      trace: data.traceFlag === undefined ? undefined : traceSink(data.traceFlag),
      mounts,
      denied: (denial) => post({ type: 'denied', denial }),
    });
    sentry.init();
    // The addon learns the notification sizes once, with seccomp(2): before the thread may not.
    native.notifSizes();
    const confined = native.confineThread(compileSentryThreadFilter().program);
    if (confined < 0) throw new Error(`cannot confine the sentry's thread: errno ${-confined}`);
    stats = sentry.serve();
  } finally {
    // Closed on every way out: a sentry that failed must not leave the workload waiting on a
    // listener nobody reads (once it is closed, the filter answers ENOSYS instead).
    native.syscall(NR.close, listener);
    for (const m of mounts) native.syscall(NR.close, m.fd);
  }
  post({ type: 'done', stats });
}

if (parentPort !== null) {
  try {
    main(workerData as SentryWorkerData);
  } catch (e) {
    post({ type: 'failed', message: (e as Error).message });
  }
}
