// The runtime's side of a vm container's keeper: starting it, and the requests of every later CLI call.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, write } from 'node:fs';
import { connect, Socket } from 'node:net';
import { socketpair } from '../native/addon';
import type { InitExit, InitProcess } from '../native/launcher';
import { rawReleaser, supervisorSpawner, type SupervisorProcess, type SupervisorSpawner } from '../native/supervisor-spawner';
import { constants as osConstants } from 'node:os';
import type { Readable, Writable } from 'node:stream';
import { join } from 'node:path';
import { readInput } from './fd-input';
import { mark } from '../log/timing';
import { StockadeError } from '../errors';
import type { Process } from '../oci/spec';
import { readProcessStat } from '../container/process-identity';
import {
  FRAME, FrameReader, KEEPER_CONFIG_FD, KEEPER_LOG, KEEPER_SOCKET, KEEPER_STATUS_FD, KEEPER_TIE_FD, MAX_FRAME, encodeFrame,
  type KeeperConfig, type KeeperReply, type KeeperRequest, type WireExit,
} from './keeper-wire';

const SUN_PATH_MAX = 107;

/** Writes the configuration to the child's KEEPER_CONFIG_FD and closes it. */
function sendConfig(child: ChildProcess, cfg: object): void {
  const pipe = child.stdio[KEEPER_CONFIG_FD] as Socket | null;
  pipe?.on('error', () => undefined);
  pipe?.end(JSON.stringify(cfg));
}

/** The keeper's environment: a PATH, and the STOCKADE_* settings of the VM (QEMU, the cache, the accelerator, ...). */
function keeperEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('STOCKADE_')) env[k] = v;
  return env;
}

/**
 * Node's flags for the keeper, which waits while its container runs and relays its stdio: one
 * keeper per container, so what each Node holds counts (issue 13's 64 MB per idle container).
 * - a young generation of at most 1 MB (V8 grows it under a stream of output, and an idle
 *   keeper would keep what it grew to);
 * - no helper threads for V8's compilers and garbage collector (the relay's thread does that
 *   work between two chunks), and one thread in Node's pool for V8 (with none it picks one per core);
 * - gc() exposed, which the keeper runs when it idles (trimWhileWaiting).
 */
export const KEEPER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--single-threaded', '--v8-pool-size=1', '--expose-gc'];

/** The keeper's script: the compiled module beside this one, or, from the bundled CLI, the bundle beside it. */
export function keeperScript(): string {
  const module = join(__dirname, 'keeper.js');
  return existsSync(module) ? module : join(__dirname, 'stockade-vmkeeper.js');
}

export interface StartedKeeper {
  /** This process's child, or the CLI call's front's (a planner serves the call). */
  readonly child: InitProcess;
  readonly pid: number;
  readonly startTime: string;
  /** Settles with its exit. */
  readonly exited: InitExit;
}

/** The keeper's process as startKeeper drives it, however it was started. */
interface KeeperProcess {
  readonly process: InitProcess;
  readonly pid: number;
  readonly exited: InitExit;
  /** Writes the configuration to the keeper's KEEPER_CONFIG_FD and closes it. */
  configure(cfg: object): void;
  /** The keeper's status pipe (KEEPER_STATUS_FD), read here. */
  readonly status: Socket;
  /** A create that returns before the keeper exits does not wait for it. */
  unref(): void;
}

async function localKeeper(command: string, args: readonly string[], stdio: readonly [number | 'ignore', number | 'ignore', number | 'ignore'], tied: boolean): Promise<KeeperProcess | undefined> {
  const child = spawn(command, args, {
    detached: true,
    // fd 5 (KEEPER_TIE_FD), tied: this end stays open, unwritten, for as long as this process lives.
    stdio: [...stdio, 'pipe', 'pipe', ...(tied ? ['pipe' as const] : [])],
    env: keeperEnv(),
  });
  if (tied) ((child.stdio as unknown as (Socket | null)[])[KEEPER_TIE_FD])?.unref();
  if (child.pid === undefined) {
    await new Promise((r) => child.once('error', r));
    return undefined;
  }
  const exited: InitExit = new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve({ code: child.exitCode, signal: child.signalCode });
    else child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  return {
    process: child,
    pid: child.pid,
    exited,
    configure: (cfg) => sendConfig(child, cfg),
    status: child.stdio[KEEPER_STATUS_FD] as Socket,
    unref: () => child.unref(),
  };
}

/**
 * The keeper started by the CLI call's front for the planner serving the call
 * (supervisor-spawner.ts): the same command, environment and stdio, its two pipes socket pairs
 * (as Node's 'pipe' is), a child of the call's process and not of the planner. Never tied: the
 * planner serves no `do` and no SDK.
 */
async function remoteKeeper(spawnRemote: SupervisorSpawner, command: string, args: readonly string[], stdio: readonly [number | 'ignore', number | 'ignore', number | 'ignore'], env: NodeJS.ProcessEnv = keeperEnv()): Promise<KeeperProcess | undefined> {
  const [statusHere, statusThere] = socketpair();
  const [configHere, configThere] = socketpair();
  let child: SupervisorProcess;
  try {
    child = await spawnRemote({
      command, args, detached: true, env,
      stdio: [...stdio.map((io) => (io === 'ignore' ? 'ignore' as const : 'inherit' as const)), statusThere, configThere],
    });
  } catch {
    closeSync(statusHere);
    closeSync(configHere);
    return undefined;
  } finally {
    closeSync(statusThere);
    closeSync(configThere);
  }
  const status = new Socket({ fd: statusHere, readable: true, writable: false });
  return {
    process: child,
    pid: child.pid,
    exited: child.exited,
    configure: (cfg) => {
      const pipe = new Socket({ fd: configHere, readable: false, writable: true });
      pipe.on('error', () => undefined);
      pipe.end(JSON.stringify(cfg));
    },
    status,
    unref: () => undefined,
  };
}

/**
 * Starts the keeper and waits until it says the container is created (the VM booted, the agent
 * answered), or why not. `stdio`: the workload's fds 0-2 (the caller's own, for create and run).
 * Detached (create, run -d): its own session, and this process does not wait for it.
 * `configure` makes the keeper's configuration while the keeper's Node starts (it waits for it on
 * KEEPER_CONFIG_FD): choosing the template and Node's start-up, each about half a second here
 * under load, overlap instead of adding up. `tied`: the configuration will say `tied` (its pipe is
 * made at the spawn).
 */
export async function startKeeper(
  spec: KeeperConfig['spec'], stateDir: string, tied: boolean, configure: () => Promise<KeeperConfig>,
  stdio: readonly [number | 'ignore', number | 'ignore', number | 'ignore'], detached: boolean, onPid: (pid: number) => void,
  beforeBoot?: () => Promise<void>,
): Promise<StartedKeeper> {
  const [command, args] = inContainerNetwork(spec, [process.execPath, ...KEEPER_NODE_FLAGS, keeperScript(), '--keep']);
  const remote = supervisorSpawner();
  const child = remote !== undefined && !tied ? await remoteKeeper(remote, command, args, stdio) : await localKeeper(command, args, stdio, tied);
  if (child === undefined) throw new StockadeError('SYSTEM', `vm: cannot start the VM keeper (${process.execPath})`);
  const pid = child.pid;
  mark('vm: keeper spawned');
  const startTime = readProcessStat(pid)?.startTime ?? '';
  // Recorded before the boot: a create that fails from here on is cleaned up by that pid.
  onPid(pid);
  // The keeper waits for its configuration before it boots: what runs here (the runtime's create
  // hooks: Docker's puts the container's interfaces into the keeper's network namespace) is done
  // by then, and the VM gets the namespace's interfaces as they are (microvm has no hotplug).
  let cfg: KeeperConfig;
  try {
    cfg = await configure();
    mark('vm: keeper config made');
    if (beforeBoot !== undefined) await beforeBoot();
  } catch (e) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    throw e;
  }
  child.configure(cfg);
  const status = child.status;
  let said = '';
  status.on('data', (c: Buffer) => {
    if (said.length < 65536) said += c.toString('utf8');
  });
  const exited = child.exited.then(({ code, signal: sig }) => (sig !== null ? `killed by ${sig}` : `exited with status ${code}`));
  await new Promise<void>((resolve) => {
    status.once('close', () => resolve());
    status.once('error', () => resolve());
  });
  const line = said.split('\n')[0] ?? '';
  if (line !== 'ok') {
    const how = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r(''), 5000))]);
    const why = line.startsWith('error ') ? line.slice(6) : `the VM keeper ${how || 'said nothing'}${lastLogLine(stateDir)}`;
    throw new StockadeError('SYSTEM', `container ${cfg.id}: ${why}`, { id: cfg.id });
  }
  if (detached) child.unref();
  return { child: child.process, pid, startTime, exited: child.exited };
}

/**
 * The keeper stands for the workload, and clients treat its pid as the container's: Docker's
 * prestart hook configures the network namespace of that pid (addresses, routes, and sysctls such
 * as net.ipv6.conf.all.disable_ipv6). So the keeper lives in the network namespace the config
 * gives the container (joined by path, or a new one), never in the host's unless the config says
 * so: started in the host's, Docker's hook reconfigured the host's network. QEMU has a network
 * namespace of its own anyway (its jail), so the VM sees none of this.
 */
function inContainerNetwork(spec: KeeperConfig['spec'], keeper: readonly string[]): [string, string[]] {
  let argv = [...keeper];
  // A UTS namespace of the container's own: the keeper gets one too, named as the container, so a
  // pod's other containers that join it by the keeper's pid (CRI) read the pod's hostname, not the host's.
  const uts = spec.linux?.namespaces?.find((ns) => ns.type === 'uts');
  if (uts !== undefined && (uts.path === undefined || uts.path === '') && spec.hostname !== undefined && spec.hostname !== '') {
    argv = ['unshare', '--uts', '--', 'sh', '-c', 'hostname -- "$0" && exec "$@"', spec.hostname, ...argv];
  }
  const net = spec.linux?.namespaces?.find((ns) => ns.type === 'network');
  if (net !== undefined && net.path !== undefined && net.path !== '') argv = ['nsenter', `--net=${net.path}`, '--', ...argv];
  else if (net !== undefined) argv = ['unshare', '--net', '--', ...argv];
  return [argv[0] ?? '', argv.slice(1)];
}

function lastLogLine(stateDir: string): string {
  try {
    const lines = readFileSync(join(stateDir, KEEPER_LOG), 'utf8').trim().split('\n');
    const last = lines[lines.length - 1];
    return last === undefined || last === '' ? '' : `: ${last.replace(/^\S+ /, '')}`;
  } catch {
    return '';
  }
}

/** Connects to the keeper's socket (through a directory fd when the path is too long for sun_path). */
export async function connectKeeper(stateDir: string, id: string): Promise<Socket> {
  const path = join(stateDir, KEEPER_SOCKET);
  let dirFd = -1;
  let target = path;
  if (Buffer.byteLength(path) > SUN_PATH_MAX) {
    dirFd = openSync(stateDir, 'r');
    target = `/proc/self/fd/${dirFd}/${KEEPER_SOCKET}`;
  }
  try {
    return await new Promise<Socket>((resolve, reject) => {
      const s = connect({ path: target });
      s.once('connect', () => resolve(s));
      s.once('error', (e) => reject(new StockadeError('SYSTEM', `container ${id}: its VM keeper does not answer: ${e.message}`, { id })));
    });
  } finally {
    if (dirFd >= 0) closeSync(dirFd);
  }
}

/** One request and its reply; a keeper that does not answer in timeoutMs is an error naming it. */
export async function keeperRequest(stateDir: string, id: string, req: KeeperRequest, timeoutMs = 30000): Promise<KeeperReply & { ok: true }> {
  const sock = await connectKeeper(stateDir, id);
  const reader = new FrameReader();
  try {
    const reply = await new Promise<KeeperReply>((resolve, reject) => {
      const timer = setTimeout(() => reject(new StockadeError('SYSTEM', `container ${id}: its VM keeper did not answer ${req.op} within ${timeoutMs} ms`, { id })), timeoutMs);
      sock.on('data', (c: Buffer) => {
        try {
          for (const f of reader.push(c)) {
            if (f.kind === FRAME.REPLY) {
              clearTimeout(timer);
              resolve(JSON.parse(f.payload.toString('utf8')) as KeeperReply);
            }
          }
        } catch (e) {
          clearTimeout(timer);
          reject(e);
        }
      });
      sock.on('close', () => {
        clearTimeout(timer);
        reject(new StockadeError('SYSTEM', `container ${id}: its VM keeper closed the connection without answering ${req.op}`, { id }));
      });
      sock.write(encodeFrame(FRAME.REQUEST, req));
    });
    if (!reply.ok) throw new StockadeError('SYSTEM', `container ${id}: ${req.op}: ${reply.error}`, { id });
    return reply;
  } finally {
    sock.destroy();
  }
}

/**
 * Tells the keeper to start the workload. In a call a planner serves, the call's front sends it
 * (rawReleaser): the release is the call's commit point, and the front, which lives as long as
 * the call, must know whether it was made (a planner lost after it is never retried: the workload
 * would run twice). The words of every failure are keeperRequest's.
 */
export async function keeperStart(stateDir: string, id: string): Promise<void> {
  const release = rawReleaser();
  if (release === undefined) {
    await keeperRequest(stateDir, id, { op: 'start' });
    return;
  }
  const path = join(stateDir, KEEPER_SOCKET);
  const r = await release(path, encodeFrame(FRAME.REQUEST, { op: 'start' }));
  if (r.errno !== 0) {
    const name = Object.entries(osConstants.errno).find(([, v]) => v === r.errno)?.[0] ?? `errno ${r.errno}`;
    throw new StockadeError('SYSTEM', `container ${id}: its VM keeper does not answer: connect ${name} ${path}`, { id });
  }
  let reply: KeeperReply | undefined;
  for (const f of new FrameReader().push(r.data)) if (f.kind === FRAME.REPLY && reply === undefined) reply = JSON.parse(f.payload.toString('utf8')) as KeeperReply;
  if (reply === undefined) throw new StockadeError('SYSTEM', `container ${id}: its VM keeper closed the connection without answering start`, { id });
  if (!reply.ok) throw new StockadeError('SYSTEM', `container ${id}: start: ${reply.error}`, { id });
}

/**
 * Sends a request without waiting for its answer: a paused VM's keeper is frozen with it and
 * reads the request once resumed (a signal to a paused container is delivered at resume, as the
 * kernel does for a frozen process).
 */
export async function keeperNotify(stateDir: string, id: string, req: KeeperRequest): Promise<void> {
  const sock = await connectKeeper(stateDir, id);
  await new Promise<void>((resolve) => sock.end(encodeFrame(FRAME.REQUEST, req), () => resolve()));
  sock.destroy();
}

export interface ExecStdio {
  /** Read for the process's stdin; -1: none (the process reads /dev/null's end at once). A stream: the SDK's pipe. */
  readonly stdin: number | Readable;
  readonly stdout: number | Writable;
  readonly stderr: number | Writable;
  /** A terminal's size, polled and sent when it changes. */
  readonly winsize?: (() => { rows: number; cols: number } | undefined) | undefined;
}

/**
 * Runs a process in the container through the keeper, relaying stdio between the given fds and the
 * guest, and returns its exit status. `onStarted` gets its guest pid once it runs.
 */
export async function keeperExec(stateDir: string, id: string, proc: Process, stdio: ExecStdio, onStarted?: (pid: number) => void): Promise<WireExit> {
  const sock = await connectKeeper(stateDir, id);
  const reader = new FrameReader();
  const out = new OrderedWrites();
  let stopInput = (): void => undefined;
  try {
    return await new Promise<WireExit>((resolve, reject) => {
      let started = false;
      let exit: WireExit | undefined;
      sock.on('data', (c: Buffer) => {
        let frames;
        try {
          frames = reader.push(c);
        } catch (e) {
          reject(e);
          sock.destroy();
          return;
        }
        for (const f of frames) {
          if (f.kind === FRAME.REPLY) {
            const r = JSON.parse(f.payload.toString('utf8')) as KeeperReply;
            if (!r.ok) {
              reject(new StockadeError('SYSTEM', `container ${id}: exec: ${r.error}`, { id }));
              return;
            }
            if (!started) {
              started = true;
              onStarted?.(r.pid ?? 0);
              stopInput = relayInput(sock, stdio);
            }
          } else if (f.kind === FRAME.STDOUT || f.kind === FRAME.STDERR) {
            // Back-pressure: the keeper's socket fills, so the guest's credit stops coming back.
            sock.pause();
            void out.write(f.kind === FRAME.STDOUT ? stdio.stdout : stdio.stderr, Buffer.from(f.payload)).then(() => sock.resume());
          } else if (f.kind === FRAME.EXIT) {
            exit = JSON.parse(f.payload.toString('utf8')) as WireExit;
          }
        }
      });
      sock.on('error', () => undefined);
      sock.on('close', () => {
        if (exit !== undefined) void out.drained().then(() => resolve(exit!));
        else reject(new StockadeError('SYSTEM', `container ${id}: its VM keeper went away during exec (the container stopped)`, { id }));
      });
      sock.write(encodeFrame(FRAME.REQUEST, { op: 'exec', process: proc }));
    });
  } finally {
    stopInput();
    sock.destroy();
  }
}

function relayInput(sock: Socket, stdio: ExecStdio): () => void {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  if (stdio.winsize !== undefined) {
    let last = '';
    const poll = (): void => {
      const ws = stdio.winsize?.();
      const key = ws === undefined ? '' : `${ws.rows}x${ws.cols}`;
      if (ws !== undefined && key !== last && !sock.destroyed) sock.write(encodeFrame(FRAME.RESIZE, ws));
      last = key;
    };
    poll();
    timer = setInterval(poll, 250);
  }
  let stopReading = (): void => undefined;
  const sendEnd = (): void => {
    if (!sock.destroyed) sock.write(encodeFrame(FRAME.STDIN, Buffer.alloc(0)));
  };
  if (stdio.stdin === -1) {
    sendEnd();
  } else {
    stopReading = readInput(stdio.stdin, (b) => new Promise<void>((resolve) => {
      if (stopped || sock.destroyed) return resolve();
      const parts: Buffer[] = [];
      for (let o = 0; o < b.length; o += MAX_FRAME) parts.push(encodeFrame(FRAME.STDIN, b.subarray(o, o + MAX_FRAME)));
      if (sock.write(Buffer.concat(parts))) resolve();
      else sock.once('drain', () => resolve());
    }), sendEnd);
  }
  return () => {
    stopped = true;
    stopReading();
    clearInterval(timer);
  };
}

/** Writes to fds in the thread pool, in order. */
class OrderedWrites {
  #tail: Promise<void> = Promise.resolve();
  write(fd: number | Writable, chunk: Buffer): Promise<void> {
    this.#tail = this.#tail.then(async () => {
      if (typeof fd !== 'number') {
        // A stream the reader stopped (destroyed) takes nothing more; the rest is dropped, as for a closed fd.
        if (fd.destroyed || fd.writableEnded) return;
        if (!fd.write(chunk)) await new Promise<void>((resolve) => { fd.once('drain', resolve); fd.once('close', resolve); });
        return;
      }
      let off = 0;
      while (off < chunk.length) {
        const n = await new Promise<number>((resolve) => {
          write(fd, chunk, off, chunk.length - off, null, (err, w) => {
            if (err === null) resolve(w);
            else if (err.code === 'EAGAIN') setTimeout(() => resolve(0), 5);
            else resolve(-1);
          });
        });
        if (n < 0) return;
        off += n;
      }
    });
    return this.#tail;
  }
  drained(): Promise<void> {
    return this.#tail;
  }
}

/**
 * The stand-in of a detached exec: a process of its own (the keeper's script with --exec) that
 * relays the caller's stdio, or a pty whose master goes to consoleSocket, and exits with the exec'd
 * process's status; its pid is the one exec's --pid-file names. Returns once the process runs.
 */
export async function startExecStandIn(stateDir: string, id: string, proc: Process, consoleSocket: string | undefined): Promise<{ pid: number; kill: () => void }> {
  const remote = supervisorSpawner();
  if (remote !== undefined) return remoteExecStandIn(remote, stateDir, id, proc, consoleSocket);
  const child = spawn(process.execPath, [keeperScript(), '--exec'], {
    detached: true,
    // With a terminal, the pty whose master goes to consoleSocket is its stdio: none of the
    // caller's fds are kept (a client waiting for the EOF of exec's output pipe would wait on).
    stdio: [...(proc.terminal === true && consoleSocket !== undefined ? ['ignore', 'ignore', 'ignore'] as const : [0, 1, 2] as const), 'pipe', 'pipe'],
    env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
  });
  sendConfig(child, { stateDir, id, process: proc, consoleSocket });
  const status = child.stdio[KEEPER_STATUS_FD] as Socket;
  let said = '';
  status.on('data', (c: Buffer) => {
    if (said.length < 65536) said += c.toString('utf8');
  });
  await new Promise<void>((resolve) => {
    status.once('close', () => resolve());
    status.once('error', () => resolve());
  });
  const line = said.split('\n')[0] ?? '';
  if (line !== 'ok' || child.pid === undefined) {
    child.kill('SIGKILL');
    throw new StockadeError('SYSTEM', line.startsWith('error ') ? line.slice(6) : `container ${id}: exec: its stand-in process said nothing`, { id });
  }
  child.unref();
  const pid = child.pid;
  return { pid, kill: () => child.kill('SIGKILL') };
}

/** startExecStandIn, the stand-in started by the call's front for the planner serving the call (as remoteKeeper). */
async function remoteExecStandIn(spawnRemote: SupervisorSpawner, stateDir: string, id: string, proc: Process, consoleSocket: string | undefined): Promise<{ pid: number; kill: () => void }> {
  const own = proc.terminal === true && consoleSocket !== undefined ? 'ignore' as const : 'inherit' as const;
  const child = await remoteKeeper(spawnRemote, process.execPath, [keeperScript(), '--exec'], [own === 'ignore' ? 'ignore' : 0, own === 'ignore' ? 'ignore' : 1, own === 'ignore' ? 'ignore' : 2], { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin' });
  if (child === undefined) throw new StockadeError('SYSTEM', `container ${id}: exec: its stand-in process said nothing`, { id });
  child.configure({ stateDir, id, process: proc, consoleSocket });
  let said = '';
  child.status.on('data', (c: Buffer) => {
    if (said.length < 65536) said += c.toString('utf8');
  });
  await new Promise<void>((resolve) => {
    child.status.once('close', () => resolve());
    child.status.once('error', () => resolve());
  });
  const line = said.split('\n')[0] ?? '';
  if (line !== 'ok') {
    child.process.kill('SIGKILL');
    throw new StockadeError('SYSTEM', line.startsWith('error ') ? line.slice(6) : `container ${id}: exec: its stand-in process said nothing`, { id });
  }
  return { pid: child.pid, kill: () => child.process.kill('SIGKILL') };
}
