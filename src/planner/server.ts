// The resident planner: one Node process per state root, started by the C front (native/light/
// planner.c) on demand, gone after an idle minute. It runs the CLI's own main() for each call the
// front sends, with the call's cwd, umask and environment, its output and signals relayed by the
// front, and stockade-init spawned by the front (remote-init.ts). It keeps no container state of
// its own: everything is on disk as the cold path writes it, so kill -9 at any moment loses nothing.
import { closeSync, constants as fsConstants, fstatSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { constants } from 'node:os';
import { join } from 'node:path';
import { getSystemErrorMap } from 'node:util';
import { EventEmitter } from 'node:events';
import { main } from '../cli/main';
import { setIdTakenHook } from '../container/create';
import { setRunStarting, setWaitBecomer } from '../container/light-wait';
import { setStartReleaser } from '../namespaces/start';
import { FORWARDED, setSignalSource, type SignalSource } from '../container/signal-forward';
import { setStdio } from '../log/logger';
import { setCallerCgroup } from '../cgroups/layout';
import { flockSync, peerCred, peerPidfd, pidfdSendSignal, sendFd } from '../native/addon';
import { setTerminalRelayer, type TerminalRelay } from '../container/console-relay';
import { setCaller, type Caller } from '../container/caller';
import { setInitSpawner } from '../native/launcher';
import { setRawReleaser, setSupervisorSpawner } from '../native/supervisor-spawner';
import { declined } from './eligible';
import { buildIdOf, fingerprintOf, hostFingerprint } from './host';
import { FrameReader, PLANNER_SOCKET, PLANNER_SERVE_ENV, TO_FRONT, frame, i32s, strings, type FrontFrame } from './protocol';
import { RemoteInit } from './remote-init';
import { RemoteSupervisors, ownCopy } from './remote-supervisor';
import { leaveCallerCgroup } from './own-cgroup';

/** How long a planner with nothing to do stays; STOCKADE_PLANNER_IDLE_MS (in the environment it starts with) for tests. */
export const IDLE_MS = 60_000;

/** The signals a front relays, by number. */
const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(FORWARDED.map((s) => [constants.signals[s], s]));

/** How often a frame carrying an fd looks again whether the frames before it have left Node's buffer. */
const FD_RETRY_MS = 1;

/** One call being served: the connection it came on and what it spawned there. */
class Call implements SignalSource {
  readonly #sock: Socket;
  /** Frames waiting behind one that carries an fd (sent by sendmsg, past Node's own write queue). */
  readonly #queue: { frame: Buffer; fd?: number }[] = [];
  #ttyEnded: (() => void) | undefined;
  #init: RemoteInit | undefined;
  #events = new EventEmitter();
  #relaying = false;
  #becameWait = false;
  #waitFailed: (() => void) | undefined;
  #gone = false;
  #started: ((r: { errno: number; data: Buffer }) => void) | undefined;
  #stdin: { chunks: Buffer[]; settle: (errno: number) => void } | undefined;
  #handOver!: () => void;
  /** Settles when the front, having become the wait, is gone: the call is over for this process. */
  readonly handedOver = new Promise<void>((res) => { this.#handOver = res; });
  /** The supervisors the front started for this call (SUPERVISE). */
  readonly supervisors: RemoteSupervisors;
  constructor(sock: Socket) {
    this.#sock = sock;
    this.supervisors = new RemoteSupervisors(this);
  }

  /** Passes this process's fd (its own copy, closed once sent) as an FD frame: the next SPAWN or SUPERVISE takes it. */
  sendFd(fd: number): void {
    this.sendWithFd(frame(TO_FRONT.FD), fd);
  }

  send(f: Buffer): void {
    if (this.#gone) return;
    if (this.#queue.length > 0) this.#queue.push({ frame: f });
    else this.#sock.write(f);
  }

  /**
   * A frame with an fd attached (SCM_RIGHTS), in its place among the others: sendmsg goes past
   * Node's write queue, so it waits until that queue is empty, and what is sent after it waits
   * behind it. The fd is closed here once sent.
   */
  sendWithFd(f: Buffer, fd: number): void {
    if (this.#gone) {
      closeSync(fd);
      return;
    }
    this.#queue.push({ frame: f, fd });
    this.#flush();
  }

  #flush(): void {
    while (this.#queue.length > 0 && !this.#gone) {
      const next = this.#queue[0];
      if (next === undefined) return;
      if (next.fd !== undefined) {
        const sockFd = (this.#sock as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
        if (this.#sock.writableLength > 0) {
          setTimeout(() => this.#flush(), FD_RETRY_MS);
          return;
        }
        try {
          sendFd(sockFd, next.fd, next.frame);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code === 'EAGAIN') {
            setTimeout(() => this.#flush(), FD_RETRY_MS);
            return;
          }
          // The front is gone: its connection's close tells the rest.
        }
        closeSync(next.fd);
      } else {
        this.#sock.write(next.frame);
      }
      this.#queue.shift();
    }
  }

  /** The front relays the caller's terminal to the master (the planner holds no terminal of its own). */
  relayTerminal(master: number): TerminalRelay {
    const finished = new Promise<void>((res) => { this.#ttyEnded = res; });
    this.sendWithFd(frame(TO_FRONT.TTY), master);
    return { finished, stop: () => this.send(frame(TO_FRONT.TTY_STOP)) };
  }

  on(sig: NodeJS.Signals, handler: (sig: NodeJS.Signals) => void): void {
    this.#events.on(sig, handler);
    this.#relay();
  }

  off(sig: NodeJS.Signals, handler: (sig: NodeJS.Signals) => void): void {
    this.#events.off(sig, handler);
    this.#relay();
  }

  /** The front relays its signals here only while something here takes them; else they act on it as on a cold call. */
  #relay(): void {
    const want = FORWARDED.some((s) => this.#events.listenerCount(s) > 0);
    if (want === this.#relaying) return;
    this.#relaying = want;
    this.send(frame(TO_FRONT.RELAY, i32s(want ? 1 : 0)));
  }

  spawn(path: string, preserveFds: number, sentrySocket: number | undefined): RemoteInit {
    // The sentry's socket goes first: the front puts the fds it holds at SPAWN after the sync socket.
    if (sentrySocket !== undefined) this.sendFd(ownCopy(sentrySocket));
    this.#init = new RemoteInit(this, path, preserveFds);
    // A front already gone (killed while run --image pulled, say) spawns nothing: the call fails
    // and cleans up as when it goes right after the spawn, rather than await a SPAWNED never sent.
    if (this.#gone) this.#init.lost();
    return this.#init;
  }

  /** Connects to path from the front, sends bytes, and resolves with what came back until it closed (RELEASE). */
  releaseRaw(path: string, bytes: Buffer): Promise<{ errno: number; data: Buffer }> {
    if (this.#gone) return Promise.resolve({ errno: constants.errno.EPIPE, data: Buffer.alloc(0) });
    this.send(frame(TO_FRONT.RELEASE, Buffer.concat([strings([path]), bytes])));
    return new Promise((res) => { this.#started = res; });
  }

  /** The front releases the container itself: once it has, the call is never run again by it. */
  release(path: string, hookState: Buffer | undefined): Promise<{ errno: number; data: Buffer }> {
    if (this.#gone) return Promise.resolve({ errno: constants.errno.EPIPE, data: Buffer.alloc(0) });
    this.send(frame(TO_FRONT.START, Buffer.concat([strings([path]), hookState ?? Buffer.alloc(0)])));
    return new Promise((res) => { this.#started = res; });
  }

  /** The caller's stdin, which the front reads to its end: the planner's own stdin is /dev/null. */
  readIn(): Promise<Buffer> {
    if (this.#gone) return Promise.reject(readError(constants.errno.EPIPE));
    this.send(frame(TO_FRONT.STDIN));
    return new Promise((res, rej) => {
      const chunks: Buffer[] = [];
      this.#stdin = { chunks, settle: (errno) => { this.#stdin = undefined; if (errno === 0) res(Buffer.concat(chunks)); else rej(readError(errno)); } };
    });
  }

  becomeWait(path: string, args: readonly string[]): Promise<void> {
    this.#becameWait = true;
    this.send(frame(TO_FRONT.WAIT, strings([path, ...args])));
    // Settles only if the front could not exec it: then this call waits, as Node does then.
    return new Promise((res) => { this.#waitFailed = () => { this.#becameWait = false; res(); }; });
  }

  frame(f: FrontFrame): void {
    switch (f.type) {
      case 'spawned': this.#init?.spawned(f.pid); break;
      case 'spawn-failed': this.#init?.spawnFailed(f.errno); break;
      case 'sync': this.#init?.sync.push(f.data); break;
      case 'sync-eof': this.#init?.sync.ended(); break;
      case 'exit': this.#init?.exited(f.code, f.signal); break;
      case 'signal': {
        const name = SIGNAL_NAMES.get(f.signal);
        if (name !== undefined) this.#events.emit(name, name);
        break;
      }
      case 'wait-failed': this.#waitFailed?.(); break;
      case 'tty-ended': this.#ttyEnded?.(); break;
      case 'started': {
        const settle = this.#started;
        this.#started = undefined;
        settle?.({ errno: f.errno, data: f.data });
        break;
      }
      case 'stdin-data': this.#stdin?.chunks.push(f.data); break;
      case 'stdin-end': this.#stdin?.settle(f.errno); break;
      case 'supervised':
      case 'supervise-failed':
      case 'supervisor-exit':
        this.supervisors.frame(f);
        break;
      default: break;
    }
  }

  /** The front is gone (it exec'd the wait, exited, or was killed). */
  lost(): void {
    this.#gone = true;
    for (const q of this.#queue.splice(0)) if (q.fd !== undefined) closeSync(q.fd);
    this.#ttyEnded?.();
    this.#init?.lost();
    this.supervisors.lost();
    this.#started?.({ errno: constants.errno.EPIPE, data: Buffer.alloc(0) });
    this.#started = undefined;
    this.#stdin?.settle(constants.errno.EPIPE);
    if (this.#becameWait) this.#handOver();
  }
}

/** The error readFileSync(0) throws for a read that failed with errno: the cold call words it from this. */
function readError(errno: number): Error {
  const [code, description] = getSystemErrorMap().get(-errno) ?? ['UNKNOWN', 'unknown error'];
  return Object.assign(new Error(`${code}: ${description}, read`), { errno: -errno, code, syscall: 'read' });
}

export function serve(root: string): void {
  const bundle = __filename;
  const build = buildIdOf(bundle);
  const host = hostFingerprint();
  // One planner per root: the one holding the root directory's flock; another started at the same time leaves.
  const rootFd = openSync(root, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    flockSync(rootFd, 'ex', true);
  } catch {
    tellFront('L'); // the front connects to the one that holds it
    process.exit(0);
  }
  // Each call brings its caller's cgroup (setCallerCgroup): this process's own is none of a call's business.
  if (!leaveCallerCgroup()) {
    // A hierarchy it cannot leave (one its mount namespace does not show): it would keep its
    // caller's cgroup from going for a minute, so there is no planner here; the call runs cold.
    closeSync(rootFd);
    process.exit(0);
  }
  const path = join(root, PLANNER_SOCKET);
  try { unlinkSync(path); } catch { /* none, or a stale one: replaced */ }
  // The socket is made 0600 (no other user may even connect); SO_PEERCRED is checked besides.
  process.umask(0o077);
  const idleMs = Number(process.env['STOCKADE_PLANNER_IDLE_MS'] ?? IDLE_MS) || IDLE_MS;
  const baseEnv = { ...process.env };
  delete baseEnv[PLANNER_SERVE_ENV];
  const baseCwd = process.cwd();
  let busy = false;
  let idle: NodeJS.Timeout | undefined;
  let ourSocket: bigint | undefined;
  let quitting = false;

  const leave = (): never => {
    // Only our own socket: a newer planner may have replaced it.
    try {
      if (ourSocket !== undefined && statSync(path, { bigint: true }).ino === ourSocket) unlinkSync(path);
    } catch { /* gone already */ }
    process.exit(0);
  };
  // A root removed (a test's temporary one, `rm -rf` of a state dir) or a socket taken over: no
  // front will reach this planner again, so it leaves now rather than after its minute.
  setInterval(() => {
    if (busy || ourSocket === undefined) return;
    try {
      if (statSync(path, { bigint: true }).ino !== ourSocket) leave();
    } catch {
      leave();
    }
  }, 2000).unref();
  const armIdle = (): void => {
    clearTimeout(idle);
    idle = setTimeout(() => { if (!busy) leave(); }, idleMs);
  };

  const server = createServer({ allowHalfOpen: false }, (sock) => {
    const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
    let cred;
    try {
      cred = peerCred(fd);
    } catch {
      sock.destroy();
      return;
    }
    if (cred.uid !== process.getuid?.() || !peerIsEqual(fd, cred.pid, host)) {
      sock.destroy();
      return;
    }
    sock.write(frame(TO_FRONT.HELLO, strings([build, host])));
    const reader = new FrameReader();
    let call: Call | undefined;
    let caller: Caller | undefined;
    sock.on('data', (chunk: Buffer) => {
      let frames: FrontFrame[];
      try {
        frames = reader.push(chunk);
      } catch {
        sock.destroy();
        return;
      }
      for (const f of frames) {
        if (f.type === 'quit') {
          // An older planner than its front: it gives the root up at once and finishes what it does.
          if (!quitting) {
            quitting = true;
            server.close();
            try { unlinkSync(path); } catch { /* gone */ }
            closeSync(rootFd);
          }
          if (!busy) process.exit(0);
          sock.destroy();
          return;
        }
        if (f.type === 'caller') {
          caller = { pid: f.pid, tty: [(f.ttys & 1) !== 0, (f.ttys & 2) !== 0, (f.ttys & 4) !== 0] };
          continue;
        }
        if (f.type === 'request') {
          if (busy || call !== undefined) {
            // One call at a time (the call's cwd, umask and environment are this process's own while it runs).
            sock.end(frame(TO_FRONT.COLD));
            continue;
          }
          call = new Call(sock);
          busy = true;
          clearTimeout(idle);
          const c = call;
          void handle(c, f, caller).finally(() => {
            busy = false;
            if (quitting) process.exit(0);
            armIdle();
          });
          continue;
        }
        call?.frame(f);
      }
    });
    sock.on('error', () => { /* close follows */ });
    sock.on('close', () => call?.lost());
  });

  const handle = async (call: Call, req: Extract<FrontFrame, { type: 'request' }>, caller: Caller | undefined): Promise<void> => {
    // A front says who it is before it asks (CALLER): without it a `do` would take this process for its caller.
    if (caller === undefined) {
      call.send(frame(TO_FRONT.COLD));
      return;
    }
    try {
      process.chdir(req.cwd);
    } catch {
      call.send(frame(TO_FRONT.COLD));
      return;
    }
    const why = declined(req.argv, req.cwd);
    if (why !== undefined) {
      process.chdir(baseCwd);
      call.send(frame(TO_FRONT.COLD));
      return;
    }
    const oldUmask = process.umask(req.umask);
    setEnvironment(req.env);
    setCallerCgroup(req.cgroup);
    setStdio({ out: (b) => call.send(frame(TO_FRONT.OUT, b)), err: (b) => call.send(frame(TO_FRONT.ERR, b)), readIn: () => call.readIn() });
    setInitSpawner((path, preserveFds, sentry) => call.spawn(path, preserveFds, sentry).channels(call));
    setSupervisorSpawner((req) => call.supervisors.spawn(req));
    setRawReleaser((path, bytes) => call.releaseRaw(path, bytes));
    setSignalSource(call);
    setWaitBecomer((path, args) => call.becomeWait(path, args));
    setIdTakenHook((_store, id) => call.send(frame(TO_FRONT.UNDO, strings([id]))));
    setRunStarting((then) => { if (then !== undefined) call.send(frame(TO_FRONT.THEN, strings(then))); });
    setStartReleaser((path, hookState) => call.release(path, hookState));
    setCaller(caller);
    setTerminalRelayer((master) => call.relayTerminal(master));
    let code = 1;
    try {
      const done = main(req.argv);
      // A call that became the wait never settles here: it ends when its front's connection does.
      code = await Promise.race([done, call.handedOver.then(() => -1)]);
    } finally {
      setTerminalRelayer(undefined);
      setCaller(undefined);
      setIdTakenHook(undefined);
      setRunStarting(undefined);
      setStartReleaser(undefined);
      setWaitBecomer(undefined);
      setSignalSource(undefined);
      setInitSpawner(undefined);
      setSupervisorSpawner(undefined);
      setRawReleaser(undefined);
      setStdio(undefined);
      setCallerCgroup(undefined);
      setEnvironment(envList(baseEnv));
      process.umask(oldUmask);
      process.chdir(baseCwd);
    }
    if (code >= 0) call.send(frame(TO_FRONT.DONE, i32s(code)));
  };

  server.on('error', () => process.exit(1));
  server.listen(path, () => {
    ourSocket = statSync(path, { bigint: true }).ino;
    tellFront('R');
    armIdle();
  });
}

/**
 * Whether the process that connected is this planner's equal: the same namespaces, root, ids and
 * capabilities (fingerprintOf), read from its /proc entry. The uid alone is not enough: a process
 * of this uid with less power (no capabilities, another mount namespace: a sandboxed command that
 * can see the state root, as a read-only bind shows a socket) would have its call run with all of
 * this planner's. Its pidfd must still be alive once its entry is read: a peer that exited could
 * have left its pid to another process.
 */
function peerIsEqual(fd: number, pid: number, own: string): boolean {
  let pidfd = -1;
  try {
    pidfd = peerPidfd(fd);
    if (pid <= 0 || fingerprintOf(`/proc/${pid}`) !== own) return false;
    pidfdSendSignal(pidfd, 0);
    return true;
  } catch {
    return false;
  } finally {
    if (pidfd >= 0) closeSync(pidfd);
  }
}

/**
 * The front that started this planner waits on fd 3 for one byte: R, it listens; L, another planner
 * holds the root; EOF without either, it could not start (the front then runs its call cold at once).
 */
function tellFront(what: 'R' | 'L'): void {
  try {
    if (fstatSync(3).isFIFO()) {
      writeSync(3, what);
      closeSync(3);
    }
  } catch { /* started by hand */ }
}

function envList(env: NodeJS.ProcessEnv): string[] {
  return Object.entries(env).map(([k, v]) => `${k}=${v ?? ''}`);
}

function setEnvironment(entries: readonly string[]): void {
  for (const k of Object.keys(process.env)) delete process.env[k];
  for (const e of entries) {
    const eq = e.indexOf('=');
    if (eq > 0) process.env[e.slice(0, eq)] = e.slice(eq + 1);
  }
}

// Run as dist/stockade-planner.js by a front, which names the root in the environment.
const servedRoot = process.env[PLANNER_SERVE_ENV];
if (servedRoot !== undefined && servedRoot !== '') serve(servedRoot);
