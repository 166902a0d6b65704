// stockade-init spawned by the front that asked the planner, not by the planner: the container
// stays a descendant of the CLI call, and only stockade-init gets the caller's fds. The plan pipe
// and the sync socket stay in the front, which relays their bytes as frames (protocol.ts).
import { Duplex } from 'node:stream';
import { constants } from 'node:os';
import { type InitChannels, type InitExit, type InitProcess } from '../native/launcher';
import { initFds } from '../native/protocol';
import { TO_FRONT, frame, i32s, strings } from './protocol';

/** What remote-init needs of the request: sending a frame to its front. */
export interface FrontLink {
  send(frame: Buffer): void;
}

function signalName(n: number): NodeJS.Signals | null {
  const entry = Object.entries(constants.signals).find(([, v]) => v === n);
  return entry === undefined ? null : (entry[0] as NodeJS.Signals);
}

/** The sync socket's far end: what the planner writes goes to the front as SYNC frames. */
class RelayedSync extends Duplex {
  readonly #link: FrontLink;
  #closed = false;
  constructor(link: FrontLink) {
    super();
    this.#link = link;
  }
  override _read(): void { /* frames are pushed as they come */ }
  override _write(chunk: Buffer, _enc: BufferEncoding, done: (e?: Error | null) => void): void {
    this.#link.send(frame(TO_FRONT.SYNC, chunk));
    done();
  }
  override _destroy(e: Error | null, done: (e?: Error | null) => void): void {
    if (!this.#closed) this.#link.send(frame(TO_FRONT.SYNC_CLOSE));
    this.#closed = true;
    done(e);
  }
  /** The front's end saw EOF: stockade-init closed its end. */
  ended(): void {
    this.#closed = true;
    this.push(null);
    this.destroy();
  }
}

/** One stockade-init the front spawned for the current request. */
export class RemoteInit implements InitProcess {
  pid: number | undefined;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  readonly sync: RelayedSync;
  readonly helperExit: InitExit;
  #exited!: (e: { code: number | null; signal: NodeJS.Signals | null }) => void;
  #spawnError: ((message: string) => void) | undefined;
  #failedWith: string | undefined;
  readonly #path: string;

  constructor(link: FrontLink, path: string, preserveFds: number) {
    this.#path = path;
    this.sync = new RelayedSync(link);
    this.helperExit = new Promise((res) => { this.#exited = res; });
    const { planFd, syncFd } = initFds(preserveFds);
    link.send(frame(TO_FRONT.SPAWN, Buffer.concat([i32s(preserveFds, planFd, syncFd), strings([path, String(planFd), String(syncFd)])])));
  }

  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    // Until the front says it exited (it reaps it then): a pid is not reused within the moment between.
    if (this.pid === undefined || this.exitCode !== null || this.signalCode !== null) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  spawned(pid: number): void {
    this.pid = pid;
  }

  spawnFailed(errno: number): void {
    const name = Object.entries(constants.errno).find(([, v]) => v === errno)?.[0] ?? `errno ${errno}`;
    // As child_process words a spawn that failed.
    this.#failedWith = `spawn ${this.#path} ${name}`;
    this.#spawnError?.(this.#failedWith);
    this.exited(-errno, null);
  }

  exited(code: number | null, signal: number | null): void {
    if (this.exitCode !== null || this.signalCode !== null) return;
    this.signalCode = signal === null ? null : signalName(signal) ?? 'SIGKILL';
    this.exitCode = signal === null ? code : null;
    this.#exited({ code: this.exitCode, signal: this.signalCode });
  }

  /** The front is gone: stockade-init, its child, is as good as gone for this request. */
  lost(): void {
    this.sync.ended();
    this.exited(null, constants.signals.SIGKILL);
  }

  channels(link: FrontLink): InitChannels {
    return {
      helper: this,
      helperExit: this.helperExit,
      sendPlan: (plan) => link.send(frame(TO_FRONT.PLAN, plan)),
      sync: this.sync,
      onSpawnError: (report) => {
        this.#spawnError = report;
        if (this.#failedWith !== undefined) report(this.#failedWith);
      },
    };
  }
}
