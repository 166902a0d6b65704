// An attached run of a terminal container without --console-socket: stockade takes the pty master itself and relays it.
import { closeSync, rmSync, writeSync } from 'node:fs';
import { StockadeError } from '../errors';
import { accept, recvFd, setOnlcr, setWinsize, unixListen } from '../native/addon';

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

/**
 * Relays stdin to the pty and the pty to stdout until the container's side closes (EIO on the
 * master). The caller's terminal goes raw meanwhile and follows window size changes.
 */
export function relayTerminal(master: number): { finished: Promise<void>; stop: () => void } {
  const stdin = process.stdin;
  const raw = stdin.isTTY && !stdin.isRaw;
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
  stdin.on('data', onInput);
  // Required here: only a container with a terminal needs it, and loading it costs every `run` time.
  const { ReadStream } = require('node:tty') as typeof import('node:tty');
  const output = new ReadStream(master);
  const finished = new Promise<void>((resolve) => {
    output.on('data', (chunk: Buffer) => process.stdout.write(chunk));
    // Once every slave fd is closed, reading the master fails with EIO: that is the end of output.
    output.on('error', () => resolve());
    output.on('end', () => resolve());
    output.on('close', () => resolve());
  });
  const stop = (): void => {
    stdin.off('data', onInput);
    stdin.pause();
    if (raw) stdin.setRawMode(false);
    if (onlcr) setOnlcr(1, true);
    process.stdout.off('resize', resize);
    output.destroy();
  };
  return { finished, stop };
}
