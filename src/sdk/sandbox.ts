// Sandbox: a container held open for the commands a program runs in it, through the lifecycle the CLI uses.
//
// create makes a container (createContainer, startContainer) whose init runs no command of its
// own (stockade-init's TAG_HOLD): it only holds the namespaces, cgroups and, at sentry and vm, the
// sentry or the VM, until kill(). Each exec and spawn is `stockade exec` in-process (startExec)
// with the process's stdio as pipes to this one. kill() is `delete --force` and the removal of the
// image's overlay. At namespaces and sentry the container is tied to this process (TAG_TIED), as
// `stockade do` is: should it die without kill(), the container dies with it, and the next
// Sandbox.create (or `stockade do`, or `stockade list`) deletes what it left.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import { createContainer } from '../container/create';
import { deleteContainer } from '../container/delete';
import { sweepAbandoned } from '../container/do-sweep';
import { driven } from '../container/driver-of';
import { startExec } from '../container/exec';
import { parseContainerId, type ContainerId } from '../container/id';
import type { Levels, Workload } from '../container/level';
import { startContainer } from '../container/start';
import { DEFAULT_ROOT, StateStore } from '../container/state-store';
import { isStockadeError } from '../errors';
import { removeImageRootfs } from '../image/overlay';
import { resolveUser } from '../image/runtime-config';
import { ImageStore } from '../image/store';
import { levelRegistry } from '../levels/registry';
import { Logger, type Level } from '../log/logger';
import { mark } from '../log/timing';
import {
  SandboxAbortError, SandboxClosedError, SandboxCreateError, SandboxError, SandboxExecError, SandboxExitError,
  SandboxOptionsError, SandboxOutOfMemoryError,
} from './errors';
import { SandboxFiles, type Runner } from './files';
import { checkSize, reasonError, SandboxProcess, type KillReason } from './process';
import { checkOptions, hostContainer, imageContainer, type SandboxContainer } from './spec';
import type { ExecOptions, ExecResult, Isolation, SandboxOptions, SpawnOptions } from './types';

/** A logger for the runtime's own lines: to the file asked for, else nowhere (a library does not write to stderr). */
class SdkLogger extends Logger {
  readonly #toFile: boolean;
  constructor(file: string | undefined) {
    super(file, 'json', false);
    this.#toFile = file !== undefined;
  }
  override log(level: Level, msg: string, fields?: Readonly<Record<string, string | number | boolean | undefined>>): void {
    if (this.#toFile) super.log(level, msg, fields);
  }
}

/** exec's maxBuffer unless it is given: the bytes of stdout, and of stderr, kept (child_process's is 1 MiB). */
export const DEFAULT_MAX_BUFFER = 16 * 1024 * 1024;
/** files.read's bound on a file's size: past it the read fails with SandboxOutputLimitError. */
const FILES_MAX_BYTES = 256 * 1024 * 1024;
/** spawn's terminal when `tty: true`: the size a terminal has until told otherwise. */
const DEFAULT_TTY = { rows: 24, cols: 80 };

/** Sandboxes of this process not yet killed: should it exit without kill(), their workloads are killed on the way out. */
const live = new Set<Sandbox>();
let exitHook = false;

function watchExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const sb of live) sb.killNow();
  });
}

/** A StockadeError's one line, as a SandboxError of the SDK's. */
function createError(e: unknown): Error {
  if (e instanceof SandboxError) return e;
  if (isStockadeError(e)) return new SandboxCreateError(e.message, { cause: e });
  return e instanceof Error ? e : new Error(String(e));
}

function checkSpawn(opts: SpawnOptions): void {
  if (opts.cwd !== undefined && (typeof opts.cwd !== 'string' || !opts.cwd.startsWith('/'))) {
    throw new SandboxOptionsError('cwd', `must be an absolute path in the sandbox, not ${JSON.stringify(opts.cwd)}`);
  }
  if (opts.timeoutMs !== undefined && (!Number.isInteger(opts.timeoutMs) || opts.timeoutMs < 1 || opts.timeoutMs > 0x7fffffff)) {
    throw new SandboxOptionsError('timeoutMs', `must be a whole number of milliseconds from 1, not ${JSON.stringify(opts.timeoutMs)}`);
  }
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(k)) throw new SandboxOptionsError('env', `${JSON.stringify(k)} is not a variable name`);
    if (typeof v !== 'string') throw new SandboxOptionsError(`env.${k}`, 'must be a string');
  }
  const u = opts.user;
  if (u !== undefined && !(typeof u === 'number' && Number.isInteger(u) && u >= 0 && u < 0xffffffff)
    && !(typeof u === 'string' && /^[A-Za-z0-9_.][A-Za-z0-9_.-]*(:[A-Za-z0-9_.][A-Za-z0-9_.-]*)?$/.test(u))) {
    throw new SandboxOptionsError('user', `must be NAME, UID, NAME:GROUP or UID:GID, or a uid number, not ${JSON.stringify(u)}`);
  }
  const t = opts.tty;
  if (t !== undefined && typeof t !== 'boolean') {
    if (typeof t !== 'object' || t === null) throw new SandboxOptionsError('tty', `must be true, false or { rows, cols }, not ${JSON.stringify(t)}`);
    checkSize('rows', t.rows);
    checkSize('cols', t.cols);
  }
}

function checkMaxBuffer(v: unknown): number {
  if (v === undefined) return DEFAULT_MAX_BUFFER;
  if (v === Infinity || (typeof v === 'number' && Number.isInteger(v) && v >= 1)) return v;
  throw new SandboxOptionsError('maxBuffer', `must be a whole number of bytes from 1, or Infinity, not ${JSON.stringify(v)}`);
}

function argvOf(cmd: string | readonly string[]): string[] {
  if (typeof cmd === 'string') {
    if (cmd === '') throw new SandboxOptionsError('cmd', 'must not be empty');
    return ['/bin/sh', '-c', cmd];
  }
  if (!Array.isArray(cmd) || cmd.length === 0 || cmd.some((a) => typeof a !== 'string')) {
    throw new SandboxOptionsError('cmd', 'must be a string (run by /bin/sh -c) or a non-empty array of strings');
  }
  if (cmd[0] === '') throw new SandboxOptionsError('cmd[0]', 'must name a program');
  return [...cmd];
}

/**
 * Reads a pipe to its end: each piece decoded (UTF-8, never split inside a character) and handed
 * on, kept up to `limit` bytes; past it `over` is told once and nothing more is kept or handed on.
 */
function collect(s: Readable, on: ((chunk: string) => void) | undefined, limit: number, over: () => void): () => Buffer {
  const chunks: Buffer[] = [];
  let kept = 0;
  let full = false;
  const decoder = on === undefined ? undefined : new StringDecoder('utf8');
  s.on('data', (whole: Buffer) => {
    if (full) return;
    let b = whole;
    if (kept + b.length > limit) {
      full = true;
      b = b.subarray(0, limit - kept);
      over();
    }
    kept += b.length;
    chunks.push(b);
    if (decoder !== undefined) {
      const text = decoder.write(b);
      if (text !== '') on?.(text);
    }
  });
  s.on('end', () => {
    const rest = decoder?.end();
    if (rest !== undefined && rest !== '') on?.(rest);
  });
  s.on('error', () => undefined);
  return () => Buffer.concat(chunks);
}

async function feed(p: SandboxProcess, input: ExecOptions['stdin']): Promise<void> {
  const w = p.stdin;
  try {
    if (input === undefined) return;
    if (typeof input === 'string' || input instanceof Uint8Array) {
      await new Promise<void>((resolve) => { w.write(input, () => resolve()); });
      return;
    }
    for await (const chunk of input) {
      if (w.destroyed) return;
      if (!w.write(chunk)) await new Promise<void>((resolve) => { w.once('drain', resolve); w.once('close', resolve); });
    }
  } finally {
    if (!w.destroyed) w.end();
  }
}

export class Sandbox implements AsyncDisposable {
  /** The container's id in the state root (`stockade list --root ...` shows it). */
  readonly id: string;
  readonly isolation: Isolation;
  /** Files in the sandbox, read and written by commands run in it (they need sh, cat, mkdir and rm). */
  readonly files: SandboxFiles;
  readonly #store: StateStore;
  readonly #levels: Levels;
  readonly #container: SandboxContainer;
  readonly #workload: Workload;
  readonly #env: readonly string[];
  readonly #memoryMb: number;
  readonly #warn: (m: string) => void;
  readonly #procs = new Set<SandboxProcess>();
  #closed: KillReason | { kind: 'exited'; how: string } | undefined;
  #closing: Promise<void> | undefined;
  #lifetime: NodeJS.Timeout | undefined;
  #oomSeen = 0n;

  private constructor(p: {
    id: ContainerId; isolation: Isolation; store: StateStore; levels: Levels; container: SandboxContainer; workload: Workload;
    memoryMb: number; timeoutMs: number | undefined; warn: (m: string) => void;
  }) {
    this.id = p.id;
    this.isolation = p.isolation;
    this.#store = p.store;
    this.#levels = p.levels;
    this.#container = p.container;
    this.#workload = p.workload;
    this.#env = p.container.spec.process?.env ?? [];
    this.#memoryMb = p.memoryMb;
    this.#warn = p.warn;
    const run: Runner = (argv, stdin) => this.#run(argv, stdin);
    this.files = new SandboxFiles(run);
    if (p.timeoutMs !== undefined) {
      const ms = p.timeoutMs;
      this.#lifetime = setTimeout(() => void this.#close({ kind: 'timeout', timeoutMs: ms, what: 'sandbox' }).catch(() => undefined), ms);
      this.#lifetime.unref();
    }
    // The container ending on its own (its wall's own part died, or the OOM killer took its init)
    // ends the sandbox: fail closed, and leave nothing.
    void p.workload.exit.then(({ code, signal }) => {
      if (this.#closing !== undefined) return;
      this.#closed = { kind: 'exited', how: signal !== null ? `killed by ${signal}` : `status ${code ?? '?'}` };
      void this.#close({ kind: 'closed' }).catch(() => undefined);
    });
  }

  /**
   * Makes a sandbox and returns it running, or fails with nothing left behind: SandboxOptionsError
   * names a wrong option, SandboxCreateError says what the host could not do.
   */
  static async create(options: SandboxOptions): Promise<Sandbox> {
    mark('sdk create');
    const c = checkOptions(options);
    const store = new StateStore(options.root ?? DEFAULT_ROOT);
    const log = new SdkLogger(options.logFile);
    const warn = (m: string): void => log.warn(m);
    const debug = (m: string): void => log.debug(m);
    try {
      store.ensureRoot();
    } catch (e) {
      throw new SandboxCreateError(`root ${store.root}: ${(e as Error).message}`, { cause: e });
    }
    const levels = levelRegistry({ log, root: store.root }, c.isolation);
    // What a process killed before it could kill() its sandboxes left: deleted, its overlays removed.
    await sweepAbandoned(store, levels, debug);
    mark('sdk swept');
    const images = new ImageStore(store.root);
    if (existsSync(images.dir)) {
      await images.locked(async () => { for (const orphan of images.orphans()) removeImageRootfs(images, orphan); }).catch(() => undefined);
    }
    mark('sdk orphans');
    const id = parseContainerId(`sdk-${process.pid}-${randomBytes(6).toString('hex')}`);
    let container: SandboxContainer;
    try {
      container = c.source.kind === 'image'
        ? await imageContainer(id, c, { store: images, registry: options.registry, warn, debug })
        : hostContainer(store.root, c);
    } catch (e) {
      throw createError(e);
    }
    mark('sdk rootfs');
    let workload: Workload;
    try {
      ({ workload } = await createContainer({
        store, id, bundle: container.bundle, spec: container.spec, monitor: true, levels, rootfsMode: container.rootfsMode,
        sandbox: { ...container.sandbox, tiedTo: process.pid }, warn, debug,
      }));
    } catch (e) {
      container.cleanup();
      throw createError(e);
    }
    mark('sdk created');
    try {
      await startContainer(store, levels, id, { warn });
    } catch (e) {
      await deleteContainer(store, levels, id, true, { warn }).catch(() => undefined);
      await workload.done.catch(() => undefined);
      container.cleanup();
      throw createError(e);
    }
    const sb = new Sandbox({ id, isolation: c.isolation, store, levels, container, workload, memoryMb: c.limits.memory / 1024 ** 2, timeoutMs: c.timeoutMs, warn });
    live.add(sb);
    watchExit();
    mark('sdk started');
    return sb;
  }

  /**
   * Runs a command to its end: an argv array, or a string run by `/bin/sh -c`. Resolves with its
   * exit status and output whatever the status (with `check: true` a non-zero one rejects with
   * SandboxExitError); rejects with SandboxTimeoutError, SandboxAbortError, SandboxOutOfMemoryError
   * (the OOM killer took it at memoryMb) or SandboxClosedError.
   */
  async exec(cmd: string | readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    mark('sdk exec');
    const maxBuffer = checkMaxBuffer(opts.maxBuffer);
    const p = await this.spawn(cmd, opts);
    mark('sdk spawned');
    const stdout = collect(p.stdout, opts.onStdout, maxBuffer, () => p.kill({ kind: 'output', stream: 'stdout', maxBuffer }));
    const stderr = collect(p.stderr, opts.onStderr, maxBuffer, () => p.kill({ kind: 'output', stream: 'stderr', maxBuffer }));
    const fed = feed(p, opts.stdin);
    const { exitCode, reason } = await p.ended();
    mark('sdk exec exited');
    await p.drain();
    mark('sdk exec drained');
    await fed.catch(() => undefined);
    const result: ExecResult = { exitCode, stdout: stdout().toString('utf8'), stderr: stderr().toString('utf8') };
    const cut = reasonError(this.#closed !== undefined && reason?.kind === 'closed' ? this.#closeReason() : reason, result.stdout, result.stderr);
    if (cut !== undefined) throw cut;
    if (exitCode === 137 && await this.#oomKilled()) {
      throw new SandboxOutOfMemoryError(`the command was killed by the OOM killer: the sandbox's memoryMb (${this.#memoryMb}) was not enough`, result, this.#memoryMb);
    }
    if (opts.check === true && exitCode !== 0) throw new SandboxExitError(`the command exited with status ${exitCode}`, result);
    return result;
  }

  /**
   * Starts a command and returns it running: write its stdin, read its stdout and stderr (async
   * iterables), wait() for its end, kill() it. For a long-running process, a server, a REPL.
   */
  async spawn(cmd: string | readonly string[], opts: SpawnOptions = {}): Promise<SandboxProcess> {
    const argv = argvOf(cmd);
    checkSpawn(opts);
    this.#assertOpen();
    if (opts.signal?.aborted === true) throw new SandboxAbortError('the command was not started: its AbortSignal had fired', { cause: opts.signal.reason });
    const user = this.#user(opts.user);
    const env = [...this.#env, ...(user === undefined ? [] : [`HOME=${user.home}`]), ...Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`)];
    const tty = opts.tty === undefined || opts.tty === false ? undefined : opts.tty === true ? DEFAULT_TTY : opts.tty;
    let proc;
    try {
      proc = await startExec({
        store: this.#store, id: this.id as ContainerId, levels: this.#levels, detach: false, preserveFds: 0, ignorePaused: false,
        args: argv, env, cwd: opts.cwd, caps: [], pipes: true,
        ...(user === undefined ? { additionalGids: [] } : { user: `${user.uid}:${user.gid}`, additionalGids: user.additionalGids.map(String) }),
        ...(tty === undefined ? {} : { tty: true, consoleSize: { height: tty.rows, width: tty.cols } }),
      });
    } catch (e) {
      this.#assertOpen();
      if (isStockadeError(e) && e.code === 'STATE_TRANSITION') throw new SandboxClosedError(`the sandbox ${this.id} is not running: ${e.message}`);
      if (isStockadeError(e)) throw new SandboxExecError(e.message, { cause: e });
      throw e;
    }
    const p = new SandboxProcess(proc, { timeoutMs: opts.timeoutMs, signal: opts.signal, onEnd: () => this.#procs.delete(p) });
    this.#procs.add(p);
    // Killed meanwhile: the process must not run on in a sandbox that is going.
    if (this.#closing !== undefined) p.kill({ kind: 'closed' });
    return p;
  }

  /**
   * Ends the sandbox: every process in it killed, the container deleted (state directory,
   * cgroups, mounts), the image's overlay removed, the sentry or VM gone. Safe to call again;
   * resolves once nothing is left, rejects with a SandboxError naming what could not be removed.
   */
  kill(): Promise<void> {
    return this.#close({ kind: 'closed' });
  }

  /** `await using sb = await Sandbox.create(...)`: kill() at the end of the block. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.kill();
  }

  /** @internal On this process's exit without kill(): its workload killed at once (the next create deletes the rest). */
  killNow(): void {
    try {
      process.kill(this.#workload.pid, 'SIGKILL');
    } catch { /* gone */ }
  }

  #close(reason: KillReason): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed ??= reason;
      clearTimeout(this.#lifetime);
      for (const p of this.#procs) p.kill(reason);
      const problems: string[] = [];
      // The init's monitor, the sentry or the VM keeper: once they are gone nothing uses the
      // image's overlay, so it goes while delete still removes the cgroups and the state.
      const gone = Promise.all([this.#workload.exit, this.#workload.done]).catch(() => undefined);
      const cleaned = gone.then(() => this.#container.cleanupAsync()).catch((e: unknown) => { problems.push((e as Error).message); });
      try {
        await deleteContainer(this.#store, this.#levels, this.id as ContainerId, true, { warn: this.#warn });
        mark('sdk deleted');
      } catch (e) {
        // Already gone (deleted by a sweep meanwhile) is what was asked.
        if (!(isStockadeError(e) && e.code === 'CONTAINER_NOT_FOUND')) problems.push((e as Error).message);
      }
      await gone;
      mark('sdk workload gone');
      await Promise.all([...this.#procs].map((p) => p.ended())).catch(() => undefined);
      await cleaned;
      live.delete(this);
      mark('sdk cleaned');
      if (problems.length > 0) throw new SandboxError('SANDBOX_CLOSED', `sandbox ${this.id}: could not remove everything: ${problems.join('; ')}`);
    })();
    return this.#closing;
  }

  #closeReason(): KillReason {
    const c = this.#closed;
    return c === undefined || c.kind === 'exited' ? { kind: 'closed' } : c;
  }

  #assertOpen(): void {
    const c = this.#closed;
    if (c === undefined) return;
    if (c.kind === 'exited') throw new SandboxClosedError(`the sandbox ${this.id} is gone: its container ended (${c.how})`);
    if (c.kind === 'timeout') throw reasonError(c, '', '') ?? new SandboxClosedError(`the sandbox ${this.id} is gone`);
    throw new SandboxClosedError(`the sandbox ${this.id} was killed`);
  }

  /** spawn's user, looked up in the image's /etc/passwd and /etc/group as `docker exec --user` does. */
  #user(u: string | number | undefined): { uid: number; gid: number; additionalGids: number[]; home: string } | undefined {
    if (u === undefined) return undefined;
    const db = this.#container.userDb;
    if (db === undefined) throw new SandboxOptionsError('user', 'a hostRoot sandbox runs every command as its one identity (as stockade do): no user can be chosen');
    try {
      return resolveUser(String(u), db);
    } catch (e) {
      if (isStockadeError(e)) throw new SandboxOptionsError('user', e.message);
      throw e;
    }
  }

  /** Whether the OOM killer has killed in the sandbox's cgroup since it was last asked. */
  async #oomKilled(): Promise<boolean> {
    try {
      const d = driven(this.#levels, this.#store, this.id as ContainerId, this.#store.read(this.id as ContainerId));
      const { oomKills } = await d.driver.stats(d.container);
      if (oomKills <= this.#oomSeen) return false;
      this.#oomSeen = oomKills;
      return true;
    } catch {
      return false;
    }
  }

  /** A command to its end with its output as bytes (files.*). */
  async #run(argv: readonly string[], stdin: string | Uint8Array | undefined): Promise<{ exitCode: number; stdout: Buffer; stderr: Buffer }> {
    const p = await this.spawn(argv);
    const stdout = collect(p.stdout, undefined, FILES_MAX_BYTES, () => p.kill({ kind: 'output', stream: 'stdout', maxBuffer: FILES_MAX_BYTES }));
    const stderr = collect(p.stderr, undefined, FILES_MAX_BYTES, () => p.kill({ kind: 'output', stream: 'stderr', maxBuffer: FILES_MAX_BYTES }));
    const fed = feed(p, stdin);
    const { exitCode, reason } = await p.ended();
    await p.drain();
    await fed.catch(() => undefined);
    const cut = reasonError(reason?.kind === 'closed' ? this.#closeReason() : reason, '', '');
    if (cut !== undefined) throw cut;
    return { exitCode, stdout: stdout(), stderr: stderr() };
  }
}
