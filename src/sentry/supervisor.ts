// The sentry seen from the runtime: a worker thread of the process that waits for the container, or
// a process of its own that outlives `create`, serving one workload's listener; and the filter that sends it calls.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join, posix } from 'node:path';
import { Worker } from 'node:worker_threads';
import { CAPABILITIES } from '../abi/linux/constants';
import type { SupervisedLevel, SuperviseContext, Supervisor } from '../container/supervisor';
import type { Mount } from '../oci/spec';
import { sendFd, socketpair, unixConnect } from '../native/addon';
import type { Creds } from './creds';
import { Logger, type LogFormat } from '../cli/log';
import type { SentryDenial, SentryMount, SentryStats, TraceRecord } from './kernel';
import { SENTRY_JOIN_SOCKET, SENTRY_MOUNTS_RECORD, type MountsRecord } from '../container/sentry-mounts';
import { compileSentryFilter } from './syscalls';
import type { SentryWorkerData, SentryWorkerMessage } from './worker';
import type { JoinRequest } from './host';
import { logDenial, privateSocket, type DaemonConfig } from './daemon-config';
import { writeFileAtomic } from '../container/atomic-file';
import { parseContainerId } from '../container/id';

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
  /** Told each refusal of the workload's (the filter reports them: see sentryLevel). */
  readonly onDenied?: ((denial: SentryDenial) => void) | undefined;
  /** Where the sentry writes which mounts it holds (pid and fds), for an exec to clone them. */
  readonly mountsRecord?: string | undefined;
  /** Where processes exec'd into the container join a detached sentry. */
  readonly joinSocket?: string | undefined;
  /** Where a detached sentry records refusals: the --log file of the `create` that started it. */
  readonly log?: { readonly path: string; readonly format: LogFormat } | undefined;
  /** The container's id, for the records of a detached sentry. */
  readonly id?: string | undefined;
}

/** A function that closes `fd` the first time it is called and does nothing after: a supervisor's copy of stockade-init's socket, closed at launch or on abort. */
function closerOf(fd: number): () => void {
  let open = true;
  return () => {
    if (!open) return;
    open = false;
    closeSync(fd);
  };
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
    // Root's alone whatever the umask, as the detached sentry's (privateSocket).
    const fd = privateSocket(path);
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
    this.#server.listen({ fd });
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

/**
 * Where the in-process sentry holds the container's mounts, for the sentry of a process exec'd
 * into it (sentry-mounts.ts): a detached sentry is joined instead, and writes none.
 */
function recordMounts(path: string | undefined, mounts: readonly SentryMount[]): void {
  if (path === undefined) return;
  try {
    writeFileAtomic(path, JSON.stringify({ pid: process.pid, mounts } satisfies MountsRecord));
  } catch { /* the container still runs; an exec into it will say what is missing */ }
}

/** A worker thread of this process serving the listener that arrives on `socketFd`. */
function serveInWorker(socketFd: number, cfg: SentryConfig, onExit: () => void): { done: Promise<void>; feed: TraceFeed; stop(): void } {
  const feed = new TraceFeed(cfg.trace !== undefined);
  const data: SentryWorkerData = {
    socketFd,
    user: cfg.user,
    hostname: cfg.hostname,
    domainname: cfg.domainname,
    traceFlag: feed.flag,
  };
  // The worker allocates little per call (a notification, a path): a young generation of 1 MB
  // instead of V8's default takes 2.5 MB off each sandbox, at no cost measured to a call.
  const worker = new Worker(workerScript(), { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: 1 } });
  const done = new Promise<void>((resolve) => {
    worker.on('message', (m: SentryWorkerMessage) => {
      if (m.type === 'trace') {
        cfg.trace?.(m.record);
        feed.send(m.record);
      } else if (m.type === 'denied') cfg.onDenied?.(m.denial);
      else if (m.type === 'mounts') recordMounts(cfg.mountsRecord, m.mounts);
      else if (m.type === 'done') cfg.onStats?.(m.stats);
      else if (m.type === 'failed') cfg.onError?.(m.message);
    });
    worker.on('error', (e) => cfg.onError?.(e.message));
    worker.once('exit', () => {
      onExit();
      feed.close();
      resolve();
    });
  });
  return { done, feed, stop: () => void worker.terminate() };
}

/** Serves from a worker thread of this process: for a container this process waits for (do, run). */
function inProcess(cfg: SentryConfig): Supervisor {
  const [mine, theirs] = socketpair();
  const closeTheirs = closerOf(theirs);
  const served = serveInWorker(mine, cfg, () => {
    closeTheirs();
    closeSync(mine);
  });
  return {
    childSocket: theirs,
    launched: () => {
      closeTheirs();
      if (cfg.traceSocket !== undefined) served.feed.listen(cfg.traceSocket);
    },
    done: served.done,
    abort: () => {
      closeTheirs();
      served.stop();
    },
  };
}

/**
 * V8 flags of the detached sentry, which serves on one thread and runs no event loop:
 * - a young generation of 1 MB, as the worker's above (V8 grows it to 4 MB under a workload's
 *   calls, and without an event loop nothing ever shrinks it back);
 * - no helper threads for V8's compilers and garbage collector: the serving thread does that work
 *   itself, between two calls, as it does everything else;
 * - gc() exposed, which the sentry calls when it idles (daemon.ts).
 */
const DAEMON_NODE_FLAGS = ['--max-semi-space-size=1', '--single-threaded', '--expose-gc'];

function daemonScript(): string {
  const module = join(__dirname, 'daemon.js');
  return existsSync(module) ? module : join(__dirname, 'stockade-sentryd.js');
}

/**
 * Serves from a process of its own that outlives this one (create, run --detach): one sentry per
 * container, in its own session, exiting when the last supervised process is gone. It gets its
 * end of the socket as fd 3; its errors go to sentry.log in the state directory.
 */
function detached(cfg: SentryConfig, stateDir: string): Supervisor {
  const [mine, theirs] = socketpair();
  const log = openSync(join(stateDir, 'sentry.log'), 'a', 0o600);
  const config: DaemonConfig = {
    user: { ...cfg.user, caps: cfg.user.caps.toString() }, hostname: cfg.hostname, domainname: cfg.domainname,
    traceSocket: cfg.traceSocket, joinSocket: cfg.joinSocket, id: cfg.id ?? '', log: cfg.log,
  };
  let daemon: ChildProcess;
  try {
    daemon = spawn(process.execPath, [...DAEMON_NODE_FLAGS, daemonScript(), JSON.stringify(config)], {
      detached: true,
      stdio: ['ignore', 'ignore', log, mine],
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
    });
  } finally {
    closeSync(log);
    closeSync(mine);
  }
  daemon.unref();
  const done = new Promise<void>((resolve) => {
    daemon.once('exit', () => resolve());
    daemon.once('error', () => resolve());
  });
  const closeTheirs = closerOf(theirs);
  return {
    childSocket: theirs,
    launched: closeTheirs,
    done,
    abort: () => {
      closeTheirs();
      daemon.kill('SIGKILL');
    },
  };
}

/** Annotations containerd's and CRI-O's CRI plugins put on every container of a pod. */
const POD_ANNOTATIONS = [
  { type: 'io.kubernetes.cri.container-type', sandbox: 'io.kubernetes.cri.sandbox-id' },
  { type: 'io.kubernetes.cri-o.ContainerType', sandbox: 'io.kubernetes.cri-o.SandboxID' },
] as const;

/** The id of the sandbox (the pod's first container) a pod's container belongs to; undefined for the sandbox itself or a container of no pod. */
export function podSandbox(annotations: Readonly<Record<string, string>> | undefined, id: string): string | undefined {
  for (const a of POD_ANNOTATIONS) {
    const sandbox = annotations?.[a.sandbox];
    if (annotations?.[a.type] !== 'container' || sandbox === undefined || sandbox === id) continue;
    try {
      return parseContainerId(sandbox);
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * Joins a container's detached sentry (SentryHost) over its join socket at `path`, and returns the
 * supervisor stockade-init is handed; undefined when no sentry takes joins there.
 * - For a process exec'd into that container (`container` undefined): sends the process's
 *   identity and one end of a socket pair, whose other end stockade-init sends the process's
 *   listener over. The sentry holds the container's mounts already.
 * - For another container of the sandbox's pod: the container's id too, and its own trace and
 *   join sockets, made here in its state directory so that `stockade trace` and `exec` reach it
 *   as they reach every other container; stockade-init sends its own /proc and /sys clones, then
 *   its listener.
 * Nothing of this process serves, so there is nothing to wait for.
 */
function joinSentry(cfg: SentryConfig, path: string, container?: { readonly id: string; readonly stateDir: string }): Supervisor | undefined {
  let conn: number;
  try {
    conn = unixConnect(path);
  } catch {
    return undefined;
  }
  const [mine, theirs] = socketpair();
  const held = [mine, conn];
  try {
    const req: JoinRequest = {
      user: { ...cfg.user, caps: cfg.user.caps.toString() }, hostname: cfg.hostname, domainname: cfg.domainname, container: container?.id,
    };
    sendFd(conn, mine, Buffer.from(`J${JSON.stringify(req)}`));
    if (container !== undefined) {
      const trace = privateSocket(join(container.stateDir, 'trace.sock'));
      held.push(trace);
      const joins = privateSocket(join(container.stateDir, SENTRY_JOIN_SOCKET));
      held.push(joins);
      sendFd(conn, trace, Buffer.from('T'));
      sendFd(conn, joins, Buffer.from('S'));
    }
  } catch {
    closeSync(theirs);
    return undefined;
  } finally {
    for (const fd of held) closeSync(fd);
  }
  const closeTheirs = closerOf(theirs);
  return { childSocket: theirs, holdsMounts: container === undefined, launched: closeTheirs, done: Promise.resolve(), abort: closeTheirs };
}

/** CAP_* names as the kernel's bit mask; names this table lacks add nothing. */
function capabilityMask(names: readonly string[]): bigint {
  let mask = 0n;
  for (const n of names) {
    const bit = (CAPABILITIES as readonly string[]).indexOf(n);
    if (bit >= 0) mask |= 1n << BigInt(bit);
  }
  return mask;
}

export interface SentryLevelOptions {
  readonly trace?: SentryConfig['trace'];
  readonly onStats?: SentryConfig['onStats'];
  readonly onError?: SentryConfig['onError'];
  /** Where refusals are recorded: the --log file. Without one they are counted only (and traced). */
  readonly log?: Logger | undefined;
}

/**
 * The config's procfs at /proc and sysfs at /sys: the sentry resolves paths under them in clones of
 * their mount trees, and the workload's own mount namespace holds neither, so no call the sentry
 * lets the kernel finish (execve, chdir, O_PATH and FIFO opens) can reach a magic link or a
 * host-wide file through them.
 */
export function sentryMounts(mounts: readonly Mount[]): string[] {
  const owned: string[] = [];
  for (const m of mounts) {
    const dest = posix.normalize(m.destination).replace(/(.)\/+$/, '$1');
    if ((dest === '/proc' && m.type === 'proc') || (dest === '/sys' && m.type === 'sysfs')) {
      // A later mount over the same destination hides the earlier one: hand over what is on top.
      if (!owned.includes(dest)) owned.push(dest);
    }
  }
  return owned;
}

/** The sentry as create's supervised level: in this process when it waits for the container, else detached. */
export function sentryLevel(opts: SentryLevelOptions = {}): SupervisedLevel {
  // Refusals go through the sentry, which answers the same errno and records them.
  const compiled = compileSentryFilter(undefined, { reportDenials: true });
  const logFile = opts.log?.file;
  return {
    filter: { flags: compiled.flags, program: compiled.program },
    ownedMounts: sentryMounts,
    supervise(ctx: SuperviseContext): Supervisor {
      const user = ctx.spec.process?.user;
      const cfg: SentryConfig = {
        user: {
          uid: user?.uid ?? 0, gid: user?.gid ?? 0, groups: user?.additionalGids ?? [],
          caps: capabilityMask(ctx.spec.process?.capabilities?.effective ?? []),
        },
        hostname: ctx.spec.hostname ?? '',
        domainname: ctx.spec.domainname ?? '',
        // An exec's sentry neither takes over `stockade trace` nor the record of the container's mounts.
        traceSocket: ctx.exec === true ? undefined : join(ctx.stateDir, 'trace.sock'),
        mountsRecord: ctx.exec === true ? undefined : join(ctx.stateDir, SENTRY_MOUNTS_RECORD),
        joinSocket: ctx.exec === true ? undefined : join(ctx.stateDir, SENTRY_JOIN_SOCKET),
        trace: opts.trace,
        onStats: opts.onStats,
        onError: opts.onError,
        onDenied: logFile === undefined || opts.log === undefined ? undefined : logDenial.bind(undefined, opts.log, ctx.id),
        log: logFile,
        id: ctx.id,
      };
      // A process exec'd into a container whose detached sentry is serving joins it; else (the
      // container's sentry serves from inside an attached `run` or `do`) it gets a sentry of its own.
      if (ctx.exec === true) {
        return joinSentry(cfg, join(ctx.stateDir, SENTRY_JOIN_SOCKET)) ?? detached(cfg, ctx.stateDir);
      }
      // A container of a pod joins the sentry of the pod's sandbox, when that one serves (else,
      // as a runtime without pods would, it gets one of its own).
      const sandbox = podSandbox(ctx.spec.annotations, ctx.id);
      const pod = sandbox === undefined ? undefined
        : joinSentry(cfg, join(ctx.stateDir, '..', sandbox, SENTRY_JOIN_SOCKET), { id: ctx.id, stateDir: ctx.stateDir });
      if (pod !== undefined) return pod;
      return ctx.detached ? detached(cfg, ctx.stateDir) : inProcess(cfg);
    },
  };
}
