// The sentry seen from the runtime: a worker thread serving one workload's listener, and the filter that sends it calls.
import { closeSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Supervisor } from '../container/supervisor';
import { socketpair } from '../native/addon';
import type { Creds } from './creds';
import type { SentryStats, TraceRecord } from './kernel';
import { compileSentryFilter } from './syscalls';
import type { SentryWorkerData, SentryWorkerMessage } from './worker';

export interface SentryConfig {
  readonly user: Creds;
  readonly hostname: string;
  readonly domainname: string;
  readonly trace?: ((record: TraceRecord) => void) | undefined;
  /** Told when the sentry stops, with what it served. */
  readonly onStats?: ((stats: SentryStats) => void) | undefined;
  /** Told when the sentry could not serve (no listener arrived, or it failed). */
  readonly onError?: ((message: string) => void) | undefined;
}

/** The worker's script: the bundle's own file when running from dist/stockade-main.js, else the compiled module. */
function workerScript(): string {
  const module = join(__dirname, 'worker.js');
  return existsSync(module) ? module : join(__dirname, 'stockade-sentry.js');
}

export function sentrySupervisor(cfg: SentryConfig): Supervisor {
  const compiled = compileSentryFilter();
  const [mine, theirs] = socketpair();
  const data: SentryWorkerData = {
    socketFd: mine,
    user: cfg.user,
    hostname: cfg.hostname,
    domainname: cfg.domainname,
    trace: cfg.trace !== undefined,
  };
  const worker = new Worker(workerScript(), { workerData: data });
  let theirsOpen = true;
  const closeTheirs = (): void => {
    if (!theirsOpen) return;
    theirsOpen = false;
    closeSync(theirs);
  };
  const done = new Promise<void>((resolve) => {
    worker.on('message', (m: SentryWorkerMessage) => {
      if (m.type === 'trace') cfg.trace?.(m.record);
      else if (m.type === 'done') cfg.onStats?.(m.stats);
      else if (m.type === 'failed') cfg.onError?.(m.message);
    });
    worker.on('error', (e) => cfg.onError?.(e.message));
    worker.once('exit', () => {
      closeTheirs();
      closeSync(mine);
      resolve();
    });
  });
  return {
    filter: { flags: compiled.flags, program: compiled.program },
    childSocket: theirs,
    launched: closeTheirs,
    done,
    abort: () => {
      closeTheirs();
      void worker.terminate();
    },
  };
}
