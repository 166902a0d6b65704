// A command running in a sandbox (what spawn returns): its pipes, its end, and the ways it is cut short.
import type { Readable, Writable } from 'node:stream';
import type { ExecProcess } from '../container/level';
import { SandboxAbortError, SandboxClosedError, SandboxOptionsError, SandboxOutputLimitError, SandboxTimeoutError } from './errors';

/** Why a command was killed by the SDK rather than ending on its own. */
export type KillReason =
  | { kind: 'timeout'; timeoutMs: number; what: 'command' | 'sandbox' }
  | { kind: 'abort'; cause: unknown }
  | { kind: 'closed' }
  | { kind: 'output'; stream: 'stdout' | 'stderr'; maxBuffer: number }
  | { kind: 'kill' };

/** How long exec reads a command's pipes after its exit (see drain). */
const PIPE_GRACE_MS = 1000;

export interface Ended {
  readonly exitCode: number;
  readonly reason: KillReason | undefined;
}

export class SandboxProcess {
  /** The process's pid as the host sees it (namespaces, sentry) or the guest (vm). */
  readonly pid: number;
  /** Its stdin: write, then end() to let it see the end of its input. */
  readonly stdin: Writable;
  /** Whether it runs on a terminal (spawn's tty): stdout is then the pty, stderr empty. */
  readonly tty: boolean;
  /** Its stdout as it comes: a Readable, so `for await (const chunk of p.stdout)` reads it. */
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly #proc: ExecProcess;
  readonly #ended: Promise<Ended>;
  #reason: KillReason | undefined;
  #timer: NodeJS.Timeout | undefined;
  readonly #unlisten: () => void;

  /** @internal Made by Sandbox.spawn. */
  constructor(proc: ExecProcess, opts: { timeoutMs: number | undefined; signal: AbortSignal | undefined; onEnd: () => void }) {
    const pipes = proc.stdio;
    if (pipes === undefined) throw new Error('sdk: the level returned no pipes for a piped exec');
    this.#proc = proc;
    this.pid = proc.pid;
    this.tty = proc.resize !== undefined;
    this.stdin = pipes.stdin;
    this.stdout = pipes.stdout;
    this.stderr = pipes.stderr;
    // A command that exits without reading its input makes writes to it fail (EPIPE): that is its choice, not an error here.
    this.stdin.on('error', () => undefined);
    if (opts.timeoutMs !== undefined) {
      const ms = opts.timeoutMs;
      this.#timer = setTimeout(() => this.kill({ kind: 'timeout', timeoutMs: ms, what: 'command' }), ms);
    }
    const signal = opts.signal;
    const onAbort = (): void => this.kill({ kind: 'abort', cause: signal?.reason });
    signal?.addEventListener('abort', onAbort, { once: true });
    this.#unlisten = () => signal?.removeEventListener('abort', onAbort);
    // Fired while the process was being started (spawn checked it before): a listener added now
    // is never called, and the command would run on (at vm, where a start takes a while, it did).
    if (signal?.aborted === true) onAbort();
    this.#ended = this.#run().finally(() => {
      clearTimeout(this.#timer);
      this.#unlisten();
      opts.onEnd();
    });
  }

  async #run(): Promise<Ended> {
    let exitCode: number;
    try {
      exitCode = await this.#proc.finish();
    } catch {
      // The level lost the process (its helper killed: the sandbox went away under it).
      this.#reason ??= { kind: 'closed' };
      exitCode = 137;
    }
    return { exitCode, reason: this.#reason };
  }

  /**
   * @internal For exec, which reads both pipes: once the process has exited, they end when every
   * writer is gone; a process it left in the background may hold them open. They are read this
   * long after the exit, then closed: exec returns at the exit, as `docker exec` does, not when a
   * daemon the command started ends.
   */
  async drain(): Promise<void> {
    let ended = false;
    const ends = Promise.all([streamEnd(this.stdout), streamEnd(this.stderr)]).then(() => { ended = true; });
    // exec reads both pipes already (flowing): one more listener only counts what comes.
    let got = 0;
    const count = (b: Buffer): void => { got += b.length; };
    this.stdout.on('data', count);
    this.stderr.on('data', count);
    let read = got;
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([ends, new Promise<void>((r) => { timer = setTimeout(r, PIPE_GRACE_MS); })]);
      clearTimeout(timer);
      // Timers run before the loop polls for I/O: after a long synchronous stretch elsewhere in
      // the program the grace may be over before the pipes were read at all. One poll first
      // (setImmediate runs after it); only pipes that gave nothing since are given up on.
      await new Promise((r) => setImmediate(r));
      if (ended) break;
      if (got === read) break;
      read = got;
    }
    for (const s of [this.stdout, this.stderr]) if (!s.readableEnded) s.destroy();
    this.stdin.destroy();
  }

  /** A terminal's new size (spawn with tty): the command gets SIGWINCH. */
  resize(rows: number, cols: number): void {
    checkSize('rows', rows);
    checkSize('cols', cols);
    if (this.#proc.resize === undefined) throw new SandboxOptionsError('tty', 'resize needs a command spawned with tty');
    this.#proc.resize(rows, cols);
  }

  /** Kills the command and its process group at once (SIGKILL); wait() then says why it ended. */
  kill(reason: KillReason = { kind: 'kill' }): void {
    if (this.#reason === undefined) this.#reason = reason;
    this.#proc.kill();
  }

  /** @internal The exit and why: exec decides what to make of it. */
  ended(): Promise<Ended> {
    return this.#ended;
  }

  /**
   * Resolves with the exit status once the command has ended (128+N when signal N killed it, as
   * after kill()); rejects with SandboxTimeoutError, SandboxAbortError or SandboxClosedError when
   * it was cut short for that reason.
   */
  async wait(): Promise<{ exitCode: number }> {
    const { exitCode, reason } = await this.#ended;
    const e = reasonError(reason, '', '');
    if (e !== undefined) throw e;
    return { exitCode };
  }
}

/** The error a command cut short for `reason` fails with; undefined for one that ended on its own or by kill(). */
export function reasonError(reason: KillReason | undefined, stdout: string, stderr: string): Error | undefined {
  switch (reason?.kind) {
    case 'timeout':
      return new SandboxTimeoutError(reason.what === 'command'
        ? `the command ran past its timeoutMs (${reason.timeoutMs} ms) and was killed`
        : `the sandbox ran past its timeoutMs (${reason.timeoutMs} ms) and was killed`, reason.timeoutMs, { stdout, stderr });
    case 'abort':
      return new SandboxAbortError('the command was aborted (its AbortSignal fired) and was killed', { cause: reason.cause });
    case 'closed':
      return new SandboxClosedError('the sandbox was killed while the command ran');
    case 'output':
      return new SandboxOutputLimitError(`the command wrote more than maxBuffer (${reason.maxBuffer} bytes) on ${reason.stream} and was killed`,
        reason.stream, reason.maxBuffer, { stdout, stderr });
    default:
      return undefined;
  }
}

/** A terminal's rows or columns: 1 to 65535. */
export function checkSize(name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 0xffff) {
    throw new SandboxOptionsError(`tty.${name}`, `must be a whole number from 1 to 65535, not ${JSON.stringify(v)}`);
  }
}

function streamEnd(s: Readable): Promise<void> {
  return new Promise((resolve) => {
    if (s.readableEnded || s.destroyed) return resolve();
    s.once('end', () => resolve());
    s.once('close', () => resolve());
    s.once('error', () => resolve());
  });
}
