// What every keeper does as the local stand-in for a workload (keeper.ts for a VM's, pod-member.ts for a pod's later container).
import { closeSync, write, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FORWARDED_SIGNALS, SIGNALS } from '../abi/linux/constants';
import type { ExitStatus } from './agent-client';
import { KEEPER_STATUS_FD } from './keeper-wire';

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
