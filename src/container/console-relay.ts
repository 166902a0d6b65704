// An attached run of a terminal container without --console-socket: stockade takes the pty master itself and relays it.
import { closeSync, rmSync, writeSync } from 'node:fs';
import { StockadeError } from '../errors';
import { accept, readAvailable, recvFd, setOnlcr, setWinsize, takeCookedInput, unixListen } from '../native/addon';

/** ^D: VEOF of a fresh pty (the container's, as the kernel makes it). */
const VEOF_DEFAULT = 0x04;

export class ConsoleRelay {
  readonly path: string;
  #listenFd: number;

  private constructor(path: string, fd: number) {
    this.path = path;
    this.#listenFd = fd;
  }

  static listen(path: string): ConsoleRelay {
    rmSync(path, { force: true });
    return new ConsoleRelay(path, unixListen(path));
  }

  /** The pty master, which stockade-init sent before it reported ready. */
  receiveMaster(): number {
    const conn = accept(this.#listenFd);
    try {
      const { fd } = recvFd(conn);
      if (fd === null) throw new StockadeError('SYSTEM', 'the container sent no pty master over the console socket');
      return fd;
    } finally {
      closeSync(conn);
      this.close();
    }
  }

  close(): void {
    if (this.#listenFd >= 0) {
      closeSync(this.#listenFd);
      this.#listenFd = -1;
      rmSync(this.path, { force: true });
    }
  }
}

/** A relay of the caller's terminal to a pty master: `finished` once the master is read to its end. */
export interface TerminalRelay {
  finished: Promise<void>;
  /** Stops relaying and gives the caller's terminal back as it was. */
  stop: () => void;
}

/** Relays the caller's terminal to `master`, which it takes (closes) in any case. */
export type TerminalRelayer = (master: number) => TerminalRelay;

let relayer: TerminalRelayer | undefined;

/** The planner's for the request it serves (its front relays the caller's terminal); undefined restores this process's own. */
export function setTerminalRelayer(r: TerminalRelayer | undefined): void {
  relayer = r;
}

/**
 * Relays stdin to the pty and the pty to stdout until the container's side closes (EIO on the
 * master). The caller's terminal goes raw meanwhile and follows window size changes.
 */
export function relayTerminal(master: number): TerminalRelay {
  if (relayer !== undefined) return relayer(master);
  const stdin = process.stdin;
  const raw = stdin.isTTY && !stdin.isRaw;
  // Typed ahead while the caller's terminal was still cooked: given to the command as typed, an
  // end of file as the container terminal's own (^D, its VEOF), not as the NUL raw mode makes of it.
  const early = raw ? takeCookedInput(0) : undefined;
  if (raw) stdin.setRawMode(true);
  // The container's pty has made each "\n" the program wrote "\r\n" already (as it does for a
  // client's --console-socket), so the caller's terminal must not add another carriage return:
  // libuv's raw mode keeps ONLCR, and a newline arrived as "\r\r\n". Cleared here, not on the
  // pty, so that output written before the relay took the master is no different.
  const onlcr = process.stdout.isTTY ? setOnlcr(1, false) : false;
  const resize = (): void => {
    if (process.stdout.isTTY) setWinsize(master, process.stdout.rows, process.stdout.columns);
  };
  resize();
  process.stdout.on('resize', resize);
  const onInput = (chunk: Buffer): void => {
    try {
      writeSync(master, chunk);
    } catch { /* the container has gone; its output side ends the relay */ }
  };
  if (early !== undefined && (early.data.length > 0 || early.eof)) onInput(early.eof ? Buffer.concat([early.data, Buffer.from([VEOF_DEFAULT])]) : early.data);
  stdin.on('data', onInput);
  let output: import('node:tty').ReadStream | undefined;
  const finished = new Promise<void>((resolve) => {
    output = readMaster(master, (chunk) => process.stdout.write(chunk), resolve);
    output.on('close', () => resolve());
  });
  const stop = (): void => {
    stdin.off('data', onInput);
    stdin.pause();
    if (raw) stdin.setRawMode(false);
    if (onlcr) setOnlcr(1, true);
    process.stdout.off('resize', resize);
    output?.destroy();
  };
  return { finished, stop };
}

/**
 * How much of a master is read after libuv's end: more than a pty's buffers hold (a 4 KiB line
 * discipline buffer and 64 KiB of flip buffers), and a bound should the sandbox have reopened the
 * slave and keep writing.
 */
const PTY_REST_MAX = 1 << 20;

/**
 * Reads a pty master to the end of its output: EIO, once every slave fd is closed. libuv ends a
 * master's read early: an epoll wake-up with POLLHUP (the slave closed) and a short read is its
 * end of file, while the kernel may still hold what the slave wrote last (a worker moves it to the
 * master's read buffer in pieces). So at that end the rest is read here, without blocking, before
 * `end` is called: a command's last lines were lost under load (a spawn's "got hello"; 4 of 10
 * runs of 100 KB written right before exit came short). The fd is the stream's: closed with it.
 */
function readMaster(master: number, data: (b: Buffer) => void, end: () => void): import('node:tty').ReadStream {
  // Required here: only a container with a terminal needs it, and loading it costs every `run` time.
  const { ReadStream } = require('node:tty') as typeof import('node:tty');
  const reader = new ReadStream(master);
  reader.on('data', data);
  reader.on('end', () => {
    // The stream's handle closes the fd after 'end', not before: it is still the master here.
    let rest: Buffer;
    try {
      rest = readAvailable(master, PTY_REST_MAX);
    } catch {
      rest = Buffer.alloc(0);
    }
    if (rest.length > 0) data(rest);
    end();
  });
  // EIO: every slave closed and all of it read (n_tty reads what it holds before it fails). That
  // is the end of output, not an error of the reader's; by now the fd is closed, so nothing more is read.
  reader.on('error', () => end());
  return reader;
}

/** How long a write to a full pty waits before it is tried again (the master is non-blocking). */
const PTY_RETRY_MS = 10;
/** A terminal's end-of-file character (VEOF, ^D): what ending a pty's input sends. */
const VEOF = Buffer.from([4]);

/**
 * A pty master as a piped exec's stdio (the SDK's spawn with a terminal): stdout reads it, stdin
 * writes it, stderr ends at once (the process's stderr is the pty). Ending stdin sends ^D, as a
 * user at a terminal ends input. The fd is the read stream's: closed with it, and not written after.
 */
export function ptyPipes(master: number): {
  stdio: import('./level').ExecPipes;
  resize: (rows: number, cols: number) => void;
  /** Settles once the master is read to its end (or closed): all the output is in stdout by then. */
  read: Promise<void>;
} {
  const { PassThrough, Writable } = require('node:stream') as typeof import('node:stream');
  const { write } = require('node:fs') as typeof import('node:fs');
  const stdout = new PassThrough();
  let readToEnd = (): void => undefined;
  const read = new Promise<void>((resolve) => { readToEnd = resolve; });
  const reader = readMaster(master, (b) => {
    if (!stdout.write(b)) {
      reader.pause();
      stdout.once('drain', () => reader.resume());
    }
  }, () => {
    stdout.end();
    readToEnd();
  });
  let closed = false;
  reader.once('close', () => {
    closed = true;
    readToEnd();
  });
  stdout.once('close', () => reader.destroy());
  const writeAll = (b: Buffer, done: (e?: Error | null) => void): void => {
    if (closed || b.length === 0) return done();
    write(master, b, 0, b.length, null, (e, n) => {
      if (e !== null && (e as NodeJS.ErrnoException).code === 'EAGAIN') {
        setTimeout(() => writeAll(b, done), PTY_RETRY_MS);
        return;
      }
      if (e !== null) return done(e);
      writeAll(b.subarray(n), done);
    });
  };
  const stdin = new Writable({
    write: (chunk: Buffer, _enc, done) => writeAll(chunk, done),
    final: (done) => writeAll(VEOF, done),
  });
  const stderr = new PassThrough();
  stderr.end();
  return {
    stdio: { stdin, stdout, stderr },
    resize: (rows, cols) => { if (!closed) setWinsize(master, rows, cols); },
    read,
  };
}
