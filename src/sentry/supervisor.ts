// The sentry seen from the runtime: a worker thread serving one workload's listener, and the filter that sends it calls.
import { closeSync, existsSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
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
  /** Where `stockade trace` connects: a unix socket made once the container's state directory exists. */
  readonly traceSocket?: string | undefined;
  /** Every traced call, also without a `stockade trace` reader (STOCKADE_SENTRY_TRACE=1). */
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

/**
 * Serves `stockade trace` readers: each gets every traced call as a JSON line. The worker builds
 * records only while `flag` is set, that is while a reader (or cfg.trace) is there.
 */
class TraceFeed {
  readonly flag = new Int32Array(new SharedArrayBuffer(4));
  readonly #readers = new Set<Socket>();
  #server: Server | undefined;
  readonly #always: boolean;

  constructor(always: boolean) {
    this.#always = always;
    this.#update();
  }

  listen(path: string): void {
    rmSync(path, { force: true });
    this.#server = createServer((sock) => {
      this.#readers.add(sock);
      this.#update();
      sock.on('error', () => sock.destroy());
      sock.on('close', () => {
        this.#readers.delete(sock);
        this.#update();
      });
    });
    this.#server.on('error', () => { /* a reader that could not connect is its own problem */ });
    this.#server.listen(path);
    // The container's life keeps the process alive, not a trace socket nobody reads.
    this.#server.unref();
  }

  send(record: TraceRecord): void {
    if (this.#readers.size === 0) return;
    const line = `${JSON.stringify(record)}\n`;
    for (const r of this.#readers) r.write(line);
  }

  close(): void {
    for (const r of this.#readers) r.end();
    this.#server?.close();
  }

  #update(): void {
    Atomics.store(this.flag, 0, this.#always || this.#readers.size > 0 ? 1 : 0);
  }
}

export function sentrySupervisor(cfg: SentryConfig): Supervisor {
  const compiled = compileSentryFilter();
  const [mine, theirs] = socketpair();
  const feed = new TraceFeed(cfg.trace !== undefined);
  const data: SentryWorkerData = {
    socketFd: mine,
    user: cfg.user,
    hostname: cfg.hostname,
    domainname: cfg.domainname,
    traceFlag: feed.flag,
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
      if (m.type === 'trace') {
        cfg.trace?.(m.record);
        feed.send(m.record);
      } else if (m.type === 'done') cfg.onStats?.(m.stats);
      else if (m.type === 'failed') cfg.onError?.(m.message);
    });
    worker.on('error', (e) => cfg.onError?.(e.message));
    worker.once('exit', () => {
      closeTheirs();
      closeSync(mine);
      feed.close();
      resolve();
    });
  });
  return {
    filter: { flags: compiled.flags, program: compiled.program },
    childSocket: theirs,
    launched: () => {
      closeTheirs();
      if (cfg.traceSocket !== undefined) feed.listen(cfg.traceSocket);
    },
    done,
    abort: () => {
      closeTheirs();
      void worker.terminate();
    },
  };
}
