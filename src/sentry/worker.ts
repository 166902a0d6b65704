// The in-process sentry's worker thread: serves the workload off the Node event loop of the process
// that waits for the container (do, run), and posts what it sees to that process's main thread.
import { parentPort, workerData } from 'node:worker_threads';
import type { SentryMount, SentryDenial, SentryOptions, SentryStats, TraceRecord, TraceSink } from './kernel';
import { serveOnThisThread } from './serve';

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

if (parentPort !== null) {
  try {
    const data = workerData as SentryWorkerData;
    const served = serveOnThisThread(data, {
      trace: data.traceFlag === undefined ? undefined : traceSink(data.traceFlag),
      denied: (denial) => post({ type: 'denied', denial }),
      mounts: (mounts) => post({ type: 'mounts', mounts }),
    });
    post('stats' in served ? { type: 'done', stats: served.stats } : { type: 'failed', message: served.failed });
  } catch (e) {
    post({ type: 'failed', message: (e as Error).message });
  }
}
