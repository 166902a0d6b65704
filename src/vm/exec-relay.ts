// A process exec'd into a vm container, as the host sees it: the caller relaying its stdio or terminal, or a stand-in that does.
import { closeSync } from 'node:fs';
import type { ExecProcess } from '../container/level';
import { FORWARDED_SIGNALS, SIGNALS } from '../abi/linux/constants';
import { keeperExec, keeperRequest } from './keeper-client';
import type { Process } from '../oci/spec';
import type { WireExit } from './keeper-wire';

/** The exit code a shell would show: the code, or 128+N for signal N. */
export function exitCode(st: WireExit): number {
  return st.signal !== null ? 128 + st.signal : st.code ?? 0;
}

/**
 * This process stands for the exec'd one: its stdin, stdout and stderr go to and from the guest
 * (or, with a terminal, the caller's terminal goes raw and its size follows), and the signals it
 * gets go to the workload through the keeper.
 */
export async function attachedExec(stateDir: string, id: string, proc: Process): Promise<ExecProcess> {
  let guestPid = 0;
  let resolveStarted!: () => void;
  const started = new Promise<void>((r) => { resolveStarted = r; });
  const { setOnlcr } = require('../native/addon') as typeof import('../native/addon');
  const tty = proc.terminal && process.stdin.isTTY;
  let restore = (): void => undefined;
  if (tty) {
    process.stdin.setRawMode(true);
    const onlcr = process.stdout.isTTY ? setOnlcr(1, false) : false;
    restore = () => {
      process.stdin.setRawMode(false);
      if (onlcr) setOnlcr(1, true);
    };
  }
  const finished = keeperExec(stateDir, id, proc, {
    stdin: 0, stdout: 1, stderr: 2,
    ...(tty && process.stdout.isTTY ? { winsize: () => ({ rows: process.stdout.rows, cols: process.stdout.columns }) } : {}),
  }, (pid) => {
    guestPid = pid;
    resolveStarted();
  });
  finished.catch(() => resolveStarted());
  await started;
  if (guestPid === 0) {
    // A failure to start is exec's error, said at once.
    restore();
    await finished;
    throw new Error(`exec into container ${id} ended before it started`);
  }
  // The signals this process gets are the exec'd process's (`kill` of the stand-in's pid reaches it).
  const handlers = FORWARDED_SIGNALS.map((name) => {
    const h = (): void => void keeperRequest(stateDir, id, { op: 'signal', signal: SIGNALS[name], all: false, pid: guestPid }).catch(() => undefined);
    process.on(name, h);
    return [name, h] as const;
  });
  return {
    pid: process.pid,
    finish: async () => {
      try {
        return exitCode(await finished);
      } finally {
        for (const [name, h] of handlers) process.off(name, h);
        restore();
      }
    },
    kill: () => void keeperRequest(stateDir, id, { op: 'signal', signal: 9, all: false, pid: guestPid }).catch(() => undefined),
  };
}

/**
 * The stand-in of a detached exec (stockade-vmkeeper --exec): relays its inherited stdio, or a
 * host pty whose master went to the console socket, and exits with the process's status. Says
 * "ok" on fd 3 once the process runs in the guest.
 */
export async function runExecStandIn(o: { stateDir: string; id: string; process: Process; consoleSocket?: string | undefined }): Promise<never> {
  const say = (line: string): void => {
    try {
      require('node:fs').writeFileSync(3, `${line}\n`);
      closeSync(3);
    } catch { /* exec is gone */ }
  };
  let fds = { stdin: 0, stdout: 1, stderr: 2 };
  let winsize: (() => { rows: number; cols: number }) | undefined;
  if (o.process.terminal && o.consoleSocket !== undefined) {
    const { openPty, sendFd, unixConnect, setOnlcr, getWinsize } = require('../native/addon') as typeof import('../native/addon');
    const pty = openPty();
    const { ReadStream } = require('node:tty') as typeof import('node:tty');
    const s = new ReadStream(pty.slave);
    s.setRawMode(true);
    setOnlcr(pty.slave, false);
    s.pause();
    const conn = unixConnect(o.consoleSocket);
    try {
      sendFd(conn, pty.master, Buffer.from(pty.name));
    } finally {
      closeSync(conn);
      closeSync(pty.master);
    }
    fds = { stdin: pty.slave, stdout: pty.slave, stderr: pty.slave };
    winsize = () => getWinsize(pty.slave);
  }
  try {
    const st = await keeperExec(o.stateDir, o.id, o.process, { ...fds, ...(winsize === undefined ? {} : { winsize }) }, (pid) => {
      // A signal to the stand-in (the pid in exec's --pid-file) is the exec'd process's.
      for (const name of FORWARDED_SIGNALS) {
        process.on(name, () => void keeperRequest(o.stateDir, o.id, { op: 'signal', signal: SIGNALS[name], all: false, pid }).catch(() => undefined));
      }
      say('ok');
    });
    if (st.signal !== null) process.exit(128 + st.signal);
    process.exit(st.code ?? 0);
  } catch (e) {
    say(`error ${(e as Error).message}`);
    process.exit(1);
  }
}

/**
 * A process exec'd with pipes (the SDK): its stdin, stdout and stderr are streams of this
 * process, relayed to and from the guest with the channel's back-pressure; no signal of this
 * process is passed on. With a terminal the guest's pty is what stdout and stdin carry, stderr
 * ends at once, ending stdin sends ^D (as a user at a terminal), and resize reaches the guest
 * at the keeper's next look at the size (a quarter of a second).
 */
export async function pipedExec(stateDir: string, id: string, proc: Process): Promise<ExecProcess> {
  const { PassThrough, Writable } = require('node:stream') as typeof import('node:stream');
  const input = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const tty = proc.terminal === true;
  let size = proc.consoleSize === undefined ? undefined : { rows: proc.consoleSize.height, cols: proc.consoleSize.width };
  const stdin = !tty ? input : new Writable({
    write: (chunk: Buffer, _enc, done) => { if (input.write(chunk)) done(); else input.once('drain', () => done()); },
    final: (done) => { input.write(Buffer.from([4])); done(); },
    destroy: (e, done) => { input.destroy(); done(e); },
  });
  if (tty) stderr.end();
  let guestPid = 0;
  let resolveStarted!: () => void;
  const started = new Promise<void>((r) => { resolveStarted = r; });
  const finished = keeperExec(stateDir, id, proc, { stdin: input, stdout, stderr, ...(tty ? { winsize: () => size } : {}) }, (pid) => {
    guestPid = pid;
    resolveStarted();
  });
  finished.catch(() => resolveStarted());
  await started;
  if (guestPid === 0) {
    stdin.destroy();
    await finished;
    throw new Error(`exec into container ${id} ended before it started`);
  }
  return {
    pid: guestPid,
    stdio: { stdin, stdout, stderr },
    ...(tty ? { resize: (rows: number, cols: number) => { size = { rows, cols }; } } : {}),
    finish: async () => {
      try {
        return exitCode(await finished);
      } finally {
        stdout.end();
        stderr.end();
        stdin.destroy();
      }
    },
    kill: () => void keeperRequest(stateDir, id, { op: 'signal', signal: 9, all: false, pid: guestPid }).catch(() => undefined),
  };
}
