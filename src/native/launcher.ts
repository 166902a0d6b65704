// Starts stockade-init with a setup plan and follows it until the container is ready or has failed.
import { spawn, type StdioOptions } from 'node:child_process';
import { PassThrough, type Duplex, type Readable, type Writable } from 'node:stream';
import { getSystemErrorMap } from 'node:util';
import { StockadeError } from '../errors';
import { initBinary } from './paths';
import { mark } from '../log/timing';
import { MessageReader, MSG, encodeMessage, initFds, type InitMessage } from './protocol';

export interface LaunchOptions {
  plan: Buffer;
  /** fds 3 .. 3+n-1 of this process pass into the container. */
  preserveFds: number;
  /** Called when the container pauses at a hook point; it continues when the promise resolves,
   *  with the resolved buffer (the state JSON for the container's own hooks) as MSG_CONTINUE's payload. */
  onHook?: (point: number, pid: number) => Promise<Buffer | undefined>;
  /** Called as soon as the container's pid is known, so a failure later can still clean it up. */
  onPid?: (pid: number) => void;
  /** The plan has no start socket (exec): the process runs right after READY, so resolve only at
   *  the EOF that its execve causes, and fail on the ERROR frame a failed execve sends instead. */
  awaitExec?: boolean;
  /** Called once the helper is spawned, so a caller whose launch fails can still wait for it to exit. */
  onSpawn?: (helper: InitProcess, helperExit: Launched['helperExit']) => void;
  /** For a plan with TAG_SENTRY: an fd of this process, one end of a unix socketpair the caller
   *  made, that stockade-init gets as initFds(preserveFds).sentryFd, the number the record names.
   *  The seccomp listener arrives on the other end (SCM_RIGHTS, one byte "L") after `start`. The
   *  caller closes this end once launchInit has returned or failed, so that the other end sees EOF
   *  should the container die before the hand-off. */
  sentrySocket?: number;
  /** The container process's fds 0-2: this process's own (the default: the CLI's caller's), none
   *  (/dev/null), or pipes to this process (helper.stdin/stdout/stderr; the SDK reads and writes them). */
  stdio?: 'inherit' | 'ignore' | 'pipe';
}

/** stockade-init as its spawner holds it: a child of this process, or of the front a planner serves. */
export interface InitProcess {
  readonly pid?: number | undefined;
  readonly exitCode: number | null;
  readonly signalCode: NodeJS.Signals | null;
  kill(signal?: NodeJS.Signals | number): boolean;
}

export type InitExit = Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

/** A spawned stockade-init and the two channels its plan and sync points travel over. */
export interface InitChannels {
  readonly helper: InitProcess;
  readonly helperExit: InitExit;
  /** Writes the whole plan to the plan pipe, then closes it. */
  sendPlan(plan: Buffer): void;
  /** The sync socket: MSG frames both ways; destroyed once the container is ready. */
  readonly sync: Duplex;
  /** Called if the executable could not be started, with the system's words for why. */
  onSpawnError(report: (message: string) => void): void;
  /** With stdio 'pipe': the container process's stdio, read from the moment of the spawn. */
  readonly pipes?: ContainerPipes | undefined;
}

export interface ContainerPipes {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
}

/**
 * How stockade-init is started: `initFds(preserveFds)` tells at which fd it expects its plan pipe,
 * its sync socket and (with a sentry) the socket `sentrySocket`, which must pass to it. Fds 0 .. 3+
 * preserveFds-1 are the caller's own. The resident planner puts its own here, so that the front
 * that asked it spawns stockade-init, and the container stays the CLI call's descendant.
 */
export type InitSpawner = (path: string, preserveFds: number, sentrySocket: number | undefined) => InitChannels;

let spawner: InitSpawner | undefined;

/** The planner's spawner for the request it serves; undefined restores spawning a child of this process. */
export function setInitSpawner(s: InitSpawner | undefined): void {
  spawner = s;
}

function spawnChild(path: string, preserveFds: number, sentrySocket: number | undefined, own: NonNullable<LaunchOptions['stdio']> = 'inherit'): InitChannels {
  const { planFd, syncFd } = initFds(preserveFds);
  const stdio: StdioOptions = [own, own, own];
  for (let fd = 3; fd < planFd; fd++) stdio.push(fd);
  stdio.push('pipe', 'pipe');
  // At initFds().sentryFd, the slot after the sync socket.
  if (sentrySocket !== undefined) stdio.push(sentrySocket);
  const helper = spawn(path, [String(planFd), String(syncFd)], { stdio });
  const helperExit: InitExit = new Promise((res) => {
    helper.once('exit', (code, signal) => res({ code, signal }));
  });
  const planPipe = helper.stdio[planFd] as Writable;
  // Read at once: a pipe nobody listens to yet when the helper's exit is handled is resumed by
  // Node (its flushStdio) and its data dropped, and a fast process exits before launchInit resolves.
  const pipes = own === 'pipe' ? {
    stdin: helper.stdin as Writable,
    stdout: (helper.stdout as Readable).pipe(new PassThrough()),
    stderr: (helper.stderr as Readable).pipe(new PassThrough()),
  } : undefined;
  return {
    helper,
    helperExit,
    pipes,
    sendPlan(plan) {
      planPipe.on('error', () => { /* the helper died early; its exit tells why */ });
      planPipe.end(plan);
    },
    sync: helper.stdio[syncFd] as Duplex,
    onSpawnError(report) {
      helper.once('error', (e) => report(e.message));
    },
  };
}

export interface Launched {
  pid: number;
  /** stockade-init itself; in monitor mode it exits with the container's status. */
  helper: InitProcess;
  helperExit: InitExit;
  /** With stdio 'pipe': the process's stdin, and its stdout and stderr as read from the moment of the spawn. */
  pipes?: ContainerPipes | undefined;
}

export function initError(m: Extract<InitMessage, { type: 'error' }>): StockadeError {
  // A hook's message already names it (hooks.startContainer[0] (/path): ...); a step prefix adds nothing.
  const what = m.step === 'hook' ? m.message : `${m.step}: ${m.message}`;
  const entry = m.errno === 0 ? undefined : getSystemErrorMap().get(-Math.abs(m.errno));
  let message = what;
  if (m.errno !== 0 && entry === undefined) message = `${what}: errno ${m.errno}`;
  else if (entry !== undefined) {
    // Some messages already carry the errno's text ("...: No such file or directory"): add only its name.
    const said = what.toLowerCase().includes(entry[1].toLowerCase());
    message = said ? `${what} (${entry[0]})` : `${what}: ${entry[1]} (${entry[0]})`;
  }
  const code = m.step === 'exec' ? 'EXEC_FAILED' : m.step === 'hook' ? 'HOOK_FAILED' : 'INIT_FAILED';
  return new StockadeError(code, message, { step: m.step, errno: m.errno });
}

export function launchInit(opts: LaunchOptions): Promise<Launched> {
  const own = opts.stdio ?? 'inherit';
  // The planner's front holds the caller's stdio and spawns for it; a launch that wants stdio of
  // its own (the SDK's, in its own program, never through a planner) spawns a child here.
  const channels = spawner !== undefined && own === 'inherit'
    ? spawner(initBinary(), opts.preserveFds, opts.sentrySocket)
    : spawnChild(initBinary(), opts.preserveFds, opts.sentrySocket, own);
  const { helper, helperExit, sync, pipes } = channels;
  mark('spawned');
  opts.onSpawn?.(helper, helperExit);

  return new Promise<Launched>((resolvePromise, rejectPromise) => {
    let pid = 0;
    let settled = false;
    let ready = false;
    const fail = (e: StockadeError): void => {
      if (settled) return;
      settled = true;
      sync.destroy();
      rejectPromise(e);
    };
    channels.onSpawnError((why) => fail(new StockadeError('SYSTEM', `cannot start ${initBinary()}: ${why}`, { path: initBinary() })));
    channels.sendPlan(opts.plan);

    const reader = new MessageReader();
    sync.on('data', (chunk: Buffer) => {
      let messages: InitMessage[];
      try {
        messages = reader.push(chunk);
      } catch (e) {
        fail(new StockadeError('INIT_FAILED', (e as Error).message));
        return;
      }
      for (const m of messages) {
        switch (m.type) {
          case 'pid':
            pid = m.pid;
            mark('pid');
            opts.onPid?.(pid);
            break;
          case 'hook': {
            const run = opts.onHook ?? (async () => undefined);
            run(m.point, pid).then(
              (state) => { if (!settled) sync.write(encodeMessage(MSG.CONTINUE, state)); },
              (e: unknown) => fail(e instanceof StockadeError ? e : new StockadeError('HOOK_FAILED', String(e))),
            );
            break;
          }
          case 'error':
            fail(initError(m));
            break;
          case 'ready':
            mark('ready');
            ready = true;
            if (!settled && opts.awaitExec !== true) {
              settled = true;
              sync.destroy();
              resolvePromise({ pid, helper, helperExit, pipes });
            }
            break;
        }
      }
    });
    sync.on('error', () => { /* reported through 'close' */ });
    sync.on('close', () => {
      if (settled) return;
      if (ready) {
        settled = true;
        resolvePromise({ pid, helper, helperExit, pipes });
        return;
      }
      void helperExit.then(({ code, signal }) => {
        // The helper exits at once after the container is released; only the container's silence is an error.
        fail(new StockadeError('INIT_FAILED', `container init exited before it was ready (stockade-init ${signal ?? `status ${code ?? '?'}`})`));
      });
    });
  });
}
