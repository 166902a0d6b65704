// One wait over several fds for a thread with no event loop (the detached sentry's main thread).
import { EINTR } from '../abi/linux/constants';
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

  constructor(sys: RawSyscall) {
    this.#sys = sys;
  }

  /** Blocks until at least one watch is ready (a signal only repeats the wait), then calls each ready one in order. */
  once(watches: readonly Watch[]): void {
    const n = watches.length;
    if (this.#fds.length < n * POLLFD_SIZE) this.#fds = Buffer.alloc(n * POLLFD_SIZE);
    const b = this.#fds;
    watches.forEach((w, i) => {
      b.writeInt32LE(w.fd, i * POLLFD_SIZE);
      b.writeInt16LE(w.events, i * POLLFD_SIZE + 4);
      b.writeInt16LE(0, i * POLLFD_SIZE + 6);
    });
    let r: number;
    do r = this.#sys(NR.ppoll, b, n, null, null, 0);
    while (r === -EINTR);
    if (r < 0) throw new Error(`ppoll failed: errno ${-r}`);
    for (let i = 0; i < n; i++) {
      const revents = b.readInt16LE(i * POLLFD_SIZE + 6);
      if (revents !== 0) watches[i]!.ready(revents);
    }
  }
}
