// What every keeper does as the local stand-in for a workload (keeper.ts for a VM's, pod-member.ts for a pod's later container).
import { closeSync, write, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FORWARDED_SIGNALS, SIGNALS } from '../abi/linux/constants';
import type { ExitStatus } from './agent-client';
import type { Socket } from 'node:net';
import { FRAME, KEEPER_STATUS_FD, MAX_FRAME, encodeFrame } from './keeper-wire';

/** What the keeper exits with when the VM failed under the workload (the reason is in keeper.log). */
export const KEEPER_VM_FAILED = 255;

export const SIGNAL_NAMES = new Map<number, string>(Object.entries(SIGNALS).map(([k, v]) => [v, k]));

/** Writes to an fd in the thread pool (a pipe, fifo, file or tty alike), in order, never blocking the loop. */
export class FdWriter {
  #tail: Promise<void> = Promise.resolve();
  #broken = false;
  constructor(readonly fd: number) {}
  write(chunk: Buffer): Promise<void> {
    this.#tail = this.#tail.then(() => this.#writeAll(chunk));
    return this.#tail;
  }
  async #writeAll(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length && !this.#broken) {
      off += await new Promise<number>((resolve) => {
        write(this.fd, chunk, off, chunk.length - off, null, (err, n) => {
          if (err !== null) {
            // EAGAIN on a non-blocking fd: try again shortly; anything else (EPIPE) ends the stream.
            if (err.code === 'EAGAIN') setTimeout(() => resolve(0), 5);
            else {
              this.#broken = true;
              resolve(0);
            }
          } else resolve(n);
        });
      });
    }
  }
  drained(): Promise<void> {
    return this.#tail;
  }
}

/** Exits with the workload's status: by the same signal when it died of one, so a parent's wait (conmon, the shim, `run`) sees what the workload did. */
export async function exitAs(st: ExitStatus): Promise<never> {
  if (st.signal !== null) {
    for (const name of FORWARDED_SIGNALS) process.removeAllListeners(name);
    const name = SIGNAL_NAMES.get(st.signal);
    if (name !== undefined && name !== 'SIGSTOP' && name !== 'SIGTSTP' && name !== 'SIGCONT' && name !== 'SIGCHLD' && name !== 'SIGWINCH' && name !== 'SIGURG') {
      process.kill(process.pid, name as NodeJS.Signals);
      await new Promise((r) => setTimeout(r, 1000));
    }
    process.exit(128 + st.signal);
  }
  process.exit(st.code ?? 0);
}

/** Moves this process into the container's cgroups: everything it starts from now on is in them too. */
export function joinCgroups(paths: readonly string[]): void {
  for (const dir of paths) writeFileSync(join(dir, 'cgroup.procs'), `${process.pid}\n`);
}

export function tellCreate(line: string): void {
  try {
    writeFileSync(KEEPER_STATUS_FD, `${line}\n`);
    closeSync(KEEPER_STATUS_FD);
  } catch { /* create is gone: it cleans up on its own */ }
}

/**
 * A host pty for the workload's terminal: the master goes to the client's --console-socket, as
 * runc's init sends its own; the keeper relays the slave. The guest's own line discipline does
 * the terminal's work: the host side passes bytes as they are.
 */
export function openHostTerminal(consoleSocket: string): { slave: import('node:tty').ReadStream; fd: number } {
  const { openPty, sendFd, unixConnect, setOnlcr } = require('../native/addon') as typeof import('../native/addon');
  const pty = openPty();
  const { ReadStream } = require('node:tty') as typeof import('node:tty');
  const slave = new ReadStream(pty.slave);
  slave.setRawMode(true);
  setOnlcr(pty.slave, false);
  slave.pause();
  const conn = unixConnect(consoleSocket);
  try {
    sendFd(conn, pty.master, Buffer.from(pty.name));
  } finally {
    closeSync(conn);
    closeSync(pty.master);
  }
  return { slave, fd: pty.slave };
}

/** The client sizes the host pty's master; the guest's pty follows (polled: the keeper is not the pty's session leader, so no SIGWINCH). */
export function followWindow(slave: number, resize: (rows: number, cols: number) => void): void {
  const { getWinsize } = require('../native/addon') as typeof import('../native/addon');
  let last = '';
  const poll = (): void => {
    try {
      const ws = getWinsize(slave);
      const key = `${ws.rows}x${ws.cols}`;
      if (key !== last && ws.rows > 0 && ws.cols > 0) resize(ws.rows, ws.cols);
      last = key;
    } catch { /* the pty is gone */ }
  };
  poll();
  setInterval(poll, 250).unref();
}

/** A process's output to the keeper client's socket, in frames; credit goes back to the guest once the socket took it. */
export function sender(sock: Socket, kind: typeof FRAME.STDOUT | typeof FRAME.STDERR): (c: Buffer) => Promise<void> {
  return (c: Buffer): Promise<void> => {
    if (sock.destroyed) return Promise.resolve();
    const parts: Buffer[] = [];
    for (let o = 0; o < c.length; o += MAX_FRAME) parts.push(encodeFrame(kind, c.subarray(o, o + MAX_FRAME)));
    return new Promise((resolve) => {
      if (sock.write(Buffer.concat(parts))) resolve();
      else {
        sock.once('drain', () => resolve());
        sock.once('close', () => resolve());
      }
    });
  };
}
