// One wait over several fds for a thread with no event loop (the sentry process's main thread).
import { EINTR, POLLIN } from '../abi/linux/constants';
import { NR, type RawSyscall } from './native';
import type { FastServe } from './fast-path';
import type { FastLayout } from '../native/addon';

/**
 * A wait that serves the fast path's listeners natively (fast-path.ts): their contexts, and who
 * answers a notification the native side hands back.
 */
export interface FastWait {
  readonly serve: FastServe;
  readonly layout: FastLayout;
  readonly contexts: readonly Buffer[];
  /** What the next waits are limited to once a call was served: the host's idle time. */
  readonly busyMs: number | undefined;
  /** A notification received on `listener` that the native side left to JavaScript: the struct seccomp_notif. */
  handover(listener: number, notif: Buffer): void;
}

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
  readonly #busy = Buffer.alloc(16);
  #out = Buffer.alloc(0);

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
   * With `fast` (and a context in it), the wait is the addon's, which serves its listeners' stats
   * and opens itself until something else is ready or a notification needs JavaScript.
   */
  once(watches: readonly Watch[], timeoutMs?: number, fast?: FastWait): boolean {
    const n = watches.length;
    if (this.#fds.length < n * POLLFD_SIZE) this.#fds = Buffer.alloc(n * POLLFD_SIZE);
    const b = this.#fds;
    watches.forEach((w, i) => {
      b.writeInt32LE(w.fd, i * POLLFD_SIZE);
      b.writeInt16LE(w.events, i * POLLFD_SIZE + 4);
      b.writeInt16LE(0, i * POLLFD_SIZE + 6);
    });
    const timeout = timeoutMs === undefined ? null : timespec(this.#timeout, timeoutMs);
    if (fast !== undefined && fast.contexts.length > 0) return this.#fastOnce(watches, timeout, fast);
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

  #fastOnce(watches: readonly Watch[], timeout: Buffer | null, fast: FastWait): boolean {
    const n = watches.length;
    const b = this.#fds;
    if (this.#out.length < fast.layout.outSize) this.#out = Buffer.alloc(fast.layout.outSize);
    const busy = fast.busyMs === undefined ? null : timespec(this.#busy, fast.busyMs);
    const r = fast.serve(b, n, timeout, busy, fast.contexts, this.#out);
    if (r < 0) throw new Error(`ppoll failed: errno ${-r}`);
    const listener = this.#out.readInt32LE(0);
    if (listener >= 0) {
      fast.handover(listener, this.#out.subarray(fast.layout.notifOffset));
      return true;
    }
    for (let i = 0; i < n; i++) {
      const revents = b.readInt16LE(i * POLLFD_SIZE + 6);
      if (revents !== 0) watches[i]!.ready(revents);
    }
    return r > 0;
  }
}

/** `ms` as a struct timespec in `b`. */
function timespec(b: Buffer, ms: number): Buffer {
  b.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), 0);
  b.writeBigInt64LE(BigInt((ms % 1000) * 1_000_000), 8);
  return b;
}
