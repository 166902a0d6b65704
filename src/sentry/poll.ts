// One wait over several fds for a thread with no event loop (the sentry process's main thread).
import { EINTR, POLLIN } from '../abi/linux/constants';
import { NR, type RawSyscall } from './native';

/** An fd to wait on, and what to do once it is ready (revents: what ppoll reported). */
export interface Watch {
  readonly fd: number;
  readonly events: number;
  ready(revents: number): void;
}

/** struct pollfd: int fd, short events, short revents. */
const POLLFD_SIZE = 8;

export class Poller {
  readonly #sys: RawSyscall;
  #fds = Buffer.alloc(0);
  readonly #one = Buffer.alloc(POLLFD_SIZE);
  /** struct timespec of zero: ppoll returns at once. */
  readonly #now = Buffer.alloc(16);
  readonly #timeout = Buffer.alloc(16);

  constructor(sys: RawSyscall) {
    this.#sys = sys;
  }

  /** Whether `fd` has something to read (or has hung up) now, without waiting. */
  readable(fd: number): boolean {
    this.#one.writeInt32LE(fd, 0);
    this.#one.writeInt16LE(POLLIN, 4);
    this.#one.writeInt16LE(0, 6);
    let r: number;
    do r = this.#sys(NR.ppoll, this.#one, 1, this.#now, null, 0);
    while (r === -EINTR);
    return r > 0;
  }

  /**
   * Blocks until at least one watch is ready (a signal only repeats the wait), then calls each
   * ready one in order. With `timeoutMs`, gives up after that long: false when nothing was ready.
   */
  once(watches: readonly Watch[], timeoutMs?: number): boolean {
    const n = watches.length;
    if (this.#fds.length < n * POLLFD_SIZE) this.#fds = Buffer.alloc(n * POLLFD_SIZE);
    const b = this.#fds;
    watches.forEach((w, i) => {
      b.writeInt32LE(w.fd, i * POLLFD_SIZE);
      b.writeInt16LE(w.events, i * POLLFD_SIZE + 4);
      b.writeInt16LE(0, i * POLLFD_SIZE + 6);
    });
    let timeout: Buffer | null = null;
    if (timeoutMs !== undefined) {
      timeout = this.#timeout;
      timeout.writeBigInt64LE(BigInt(Math.floor(timeoutMs / 1000)), 0);
      timeout.writeBigInt64LE(BigInt((timeoutMs % 1000) * 1_000_000), 8);
    }
    let r: number;
    // A signal repeats the wait for what is left of the timeout: ppoll writes that back into it.
    do r = this.#sys(NR.ppoll, b, n, timeout, null, 0);
    while (r === -EINTR);
    if (r < 0) throw new Error(`ppoll failed: errno ${-r}`);
    for (let i = 0; i < n && r > 0; i++) {
      const revents = b.readInt16LE(i * POLLFD_SIZE + 6);
      if (revents !== 0) watches[i]!.ready(revents);
    }
    return r > 0;
  }
}
