// A container's supervisors (the sentry and its watch, a VM's keeper, a detached exec's stand-in)
// started by the front that asked the planner, not by the planner: they stay descendants of the CLI
// call, as a cold call's do, and outlive the planner (its idle exit, a kill -9) as they outlive a
// cold call's Node. The planner names the command, the environment and each fd (SUPERVISE, with
// the fds it passes as FD frames); the front forks, execs, reaps and says when each ended.
import { accessSync, constants as fsConstants } from 'node:fs';
import { constants } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import { pidfdGetfd, pidfdOpen } from '../native/addon';
import type { InitExit } from '../native/launcher';
import type { SupervisorProcess, SupervisorSpawn } from '../native/supervisor-spawner';
import { SUPERVISE_FD_NULL, SUPERVISE_FD_OWN, SUPERVISE_SETSID, TO_FRONT, frame, i32s, strings, type FrontFrame } from './protocol';

/** What the supervisors need of the call: its frames to the front. */
export interface SupervisorLink {
  send(frame: Buffer): void;
  /** Passes this process's fd (its own copy, closed once sent) as the next FD frame. */
  sendFd(fd: number): void;
}

let selfPidfd = -1;

/** A duplicate of one of this process's fds (pidfd_getfd on itself: Node has no dup), close-on-exec. */
export function ownCopy(fd: number): number {
  if (selfPidfd < 0) selfPidfd = pidfdOpen(process.pid);
  return pidfdGetfd(selfPidfd, fd);
}

function signalName(n: number): NodeJS.Signals {
  return (Object.entries(constants.signals).find(([, v]) => v === n)?.[0] ?? 'SIGKILL') as NodeJS.Signals;
}

function errnoName(n: number): string {
  return Object.entries(constants.errno).find(([, v]) => v === n)?.[0] ?? `errno ${n}`;
}

/** As child_process.spawn looks a command up: a name without a slash, in the PATH of the environment it is given. */
function resolveCommand(command: string, env: NodeJS.ProcessEnv): string {
  if (command.includes('/')) return command;
  for (const dir of (env['PATH'] ?? '').split(delimiter)) {
    if (dir === '' || !isAbsolute(dir)) continue;
    const path = join(dir, command);
    try {
      accessSync(path, fsConstants.X_OK);
      return path;
    } catch { /* the next */ }
  }
  return command; // the front's execve then fails with ENOENT, as spawn's does
}

class RemoteProcess implements SupervisorProcess {
  readonly pid: number;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  readonly exited: InitExit;
  #settle!: (e: { code: number | null; signal: NodeJS.Signals | null }) => void;
  /** The front reaped it: its pid may be another process's from now on. */
  #reaped = false;
  constructor(pid: number) {
    this.pid = pid;
    this.exited = new Promise((res) => { this.#settle = res; });
  }

  kill(signal: NodeJS.Signals | number = 'SIGTERM'): boolean {
    if (this.#reaped) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  ended(code: number | null, signal: number | null): void {
    this.#reaped = true;
    this.settle(code, signal === null ? null : signalName(signal));
  }

  /** The front is gone: this process will never hear of its exit (it runs on, an orphan, as after a cold call). */
  unheard(): void {
    this.settle(null, 'SIGKILL');
  }

  settle(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.exitCode !== null || this.signalCode !== null) return;
    this.exitCode = signal === null ? code : null;
    this.signalCode = signal;
    this.#settle({ code: this.exitCode, signal: this.signalCode });
  }
}

/** The supervisors of one call: spawned in order, answered in order. */
export class RemoteSupervisors {
  readonly #link: SupervisorLink;
  readonly #pending: { command: string; resolve: (p: RemoteProcess) => void; reject: (e: Error) => void }[] = [];
  readonly #running = new Map<number, RemoteProcess>();
  #gone = false;
  constructor(link: SupervisorLink) {
    this.#link = link;
  }

  spawn(s: SupervisorSpawn): Promise<SupervisorProcess> {
    const path = resolveCommand(s.command, s.env);
    if (this.#gone) return Promise.reject(new Error(`spawn ${path} EPIPE`));
    const map: number[] = [];
    let passed = 0;
    for (const io of s.stdio) {
      if (io === 'ignore') map.push(SUPERVISE_FD_NULL);
      else if (io === 'inherit') map.push(SUPERVISE_FD_OWN);
      else {
        this.#link.sendFd(ownCopy(io));
        map.push(passed++);
      }
    }
    const env = Object.entries(s.env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v ?? ''}`);
    this.#link.send(frame(TO_FRONT.SUPERVISE, Buffer.concat([
      i32s(s.detached ? SUPERVISE_SETSID : 0, map.length, ...map, s.args.length + 1),
      strings([path, s.command, ...s.args, ...env]),
    ])));
    return new Promise((resolve, reject) => this.#pending.push({ command: path, resolve, reject }));
  }

  frame(f: FrontFrame): void {
    if (f.type === 'supervised') {
      const p = new RemoteProcess(f.pid);
      this.#running.set(f.pid, p);
      this.#pending.shift()?.resolve(p);
    } else if (f.type === 'supervise-failed') {
      const w = this.#pending.shift();
      // As child_process words a spawn that failed.
      w?.reject(Object.assign(new Error(`spawn ${w.command} ${errnoName(f.errno)}`), { code: errnoName(f.errno) }));
    } else if (f.type === 'supervisor-exit') {
      this.#running.get(f.pid)?.ended(f.code, f.signal);
      this.#running.delete(f.pid);
    }
  }

  lost(): void {
    this.#gone = true;
    for (const w of this.#pending.splice(0)) w.reject(new Error(`spawn ${w.command}: the call's process is gone`));
    for (const p of this.#running.values()) p.unheard();
    this.#running.clear();
  }
}
