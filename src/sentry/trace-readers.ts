// The detached sentry's `stockade trace` readers, served by the thread that serves the workload.
//
// The detached sentry is one Node isolate and no event loop: its main thread waits for the next
// notification in ppoll(2) over the listener and these sockets, so a reader is accepted, written
// to and dropped between two notifications. A worker thread and an event loop for this alone
// would double the sentry's memory (a second isolate: about 14 MB per container).
import {
  EAGAIN, EINTR, F_SETFL, O_NONBLOCK, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, SOCK_CLOEXEC, SOCK_NONBLOCK,
} from '../abi/linux/constants';
import type { TraceRecord, TraceSink } from './kernel';
import { NR, type RawSyscall } from './native';

/** How far a reader may fall behind before it is dropped: the sentry never waits for a reader. */
export const TRACE_READER_BACKLOG = 4 << 20;

/** struct pollfd: int fd, short events, short revents. */
const POLLFD_SIZE = 8;

interface Reader {
  readonly fd: number;
  /** What the socket did not take yet, oldest first. */
  pending: Buffer[];
  pendingBytes: number;
}

export class TraceReaders implements TraceSink {
  readonly #sys: RawSyscall;
  /** The listening socket (non-blocking), or -1 once closed. */
  #server: number;
  readonly #readers: Reader[] = [];
  #pollfds = Buffer.alloc(0);

  /** `server`: a listening unix socket, which this object owns from now on. */
  constructor(sys: RawSyscall, server: number) {
    this.#sys = sys;
    this.#server = server;
    sys(NR.fcntl, server, F_SETFL, O_NONBLOCK);
  }

  enabled(): boolean {
    return this.#readers.length > 0;
  }

  record(r: TraceRecord): void {
    if (this.#readers.length === 0) return;
    const line = Buffer.from(`${JSON.stringify(r)}\n`);
    for (const reader of [...this.#readers]) {
      reader.pending.push(line);
      reader.pendingBytes += line.length;
      this.#flush(reader);
    }
  }

  /** Number of readers connected: for tests and stats. */
  get readers(): number {
    return this.#readers.length;
  }

  /**
   * Blocks until `listener` has a notification or has hung up, accepting, feeding and dropping
   * readers meanwhile. A signal (EINTR) only repeats the wait.
   */
  waitFor(listener: number): void {
    for (;;) {
      const fds = this.#pollSet(listener);
      const n = fds.length / POLLFD_SIZE;
      const r = this.#sys(NR.ppoll, fds, n, null, null, 0);
      if (r === -EINTR) continue;
      if (r < 0) throw new Error(`ppoll failed: errno ${-r}`);
      let listenerReady = false;
      for (let i = 0; i < n; i++) {
        const revents = fds.readInt16LE(i * POLLFD_SIZE + 6);
        if (revents === 0) continue;
        const fd = fds.readInt32LE(i * POLLFD_SIZE);
        if (i === 0) listenerReady = true;
        else if (fd === this.#server) this.#accept();
        else this.#serviceReader(fd, revents);
      }
      if (listenerReady) return;
    }
  }

  /** Ends every reader's stream (the container is gone) and stops listening. */
  close(): void {
    for (const reader of [...this.#readers]) {
      this.#flush(reader);
      this.#drop(reader);
    }
    if (this.#server >= 0) this.#sys(NR.close, this.#server);
    this.#server = -1;
  }

  /** The listener first, then the server, then each reader (asking for POLLOUT while it has pending data). */
  #pollSet(listener: number): Buffer {
    const n = 2 + this.#readers.length;
    if (this.#pollfds.length !== n * POLLFD_SIZE) this.#pollfds = Buffer.alloc(n * POLLFD_SIZE);
    const b = this.#pollfds;
    const set = (i: number, fd: number, events: number): void => {
      b.writeInt32LE(fd, i * POLLFD_SIZE);
      b.writeInt16LE(events, i * POLLFD_SIZE + 4);
      b.writeInt16LE(0, i * POLLFD_SIZE + 6);
    };
    set(0, listener, POLLIN);
    // A negative fd is skipped by the kernel: the server, once closed.
    set(1, this.#server, POLLIN);
    this.#readers.forEach((reader, i) => set(2 + i, reader.fd, reader.pendingBytes > 0 ? POLLOUT : 0));
    return b;
  }

  #accept(): void {
    for (;;) {
      const fd = this.#sys(NR.accept4, this.#server, null, null, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd === -EINTR) continue;
      // EAGAIN: none left. Any other failure is the connecting reader's (it went away): next time.
      if (fd < 0) return;
      this.#readers.push({ fd, pending: [], pendingBytes: 0 });
    }
  }

  #serviceReader(fd: number, revents: number): void {
    const reader = this.#readers.find((r) => r.fd === fd);
    if (reader === undefined) return;
    if (revents & (POLLHUP | POLLERR | POLLNVAL)) this.#drop(reader);
    else if (revents & POLLOUT) this.#flush(reader);
  }

  /** Writes what the reader's socket takes; a reader gone, or too far behind, is dropped. */
  #flush(reader: Reader): void {
    while (reader.pending.length > 0) {
      const head = reader.pending[0]!;
      const n = this.#sys(NR.write, reader.fd, head, head.length);
      if (n === -EINTR) continue;
      if (n === -EAGAIN) break;
      if (n < 0) {
        this.#drop(reader);
        return;
      }
      reader.pendingBytes -= n;
      if (n === head.length) reader.pending.shift();
      else reader.pending[0] = head.subarray(n);
    }
    if (reader.pendingBytes > TRACE_READER_BACKLOG) this.#drop(reader);
  }

  #drop(reader: Reader): void {
    const i = this.#readers.indexOf(reader);
    if (i < 0) return;
    this.#readers.splice(i, 1);
    this.#sys(NR.close, reader.fd);
  }
}
