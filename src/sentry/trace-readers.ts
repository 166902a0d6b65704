// The sentry process's `stockade trace` readers, served by the thread that serves the workload.
//
// The sentry process is one Node isolate and no event loop: its main thread waits for the next
// notification in ppoll(2) over its listeners and these sockets (SentryHost), so a reader is
// accepted, written to and dropped between two notifications. A worker thread and an event loop
// for this alone would double the sentry's memory (a second isolate: about 9 MB per container).
import {
  EAGAIN, EINTR, F_SETFL, O_NONBLOCK, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, SOCK_CLOEXEC, SOCK_NONBLOCK,
} from '../abi/linux/constants';
import type { TraceRecord, TraceSink } from './kernel';
import { NR, type RawSyscall } from './native';
import type { Watch } from './poll';

/** How far a reader may fall behind before it is dropped: the sentry never waits for a reader. */
export const TRACE_READER_BACKLOG = 4 << 20;

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

  /** Where every record goes too, readers or not (STOCKADE_SENTRY_TRACE=1: the sentry's stderr); -1: nowhere. */
  readonly #always: number;

  /** `server`: a listening unix socket, which this object owns from now on. */
  constructor(sys: RawSyscall, server: number, always = -1) {
    this.#sys = sys;
    this.#server = server;
    this.#always = always;
    sys(NR.fcntl, server, F_SETFL, O_NONBLOCK);
  }

  enabled(): boolean {
    return this.#readers.length > 0 || this.#always >= 0;
  }

  record(r: TraceRecord): void {
    if (!this.enabled()) return;
    const line = Buffer.from(`${JSON.stringify(r)}\n`);
    // Blocking, as a debugging aid: this is the sentry's own stderr, not a reader it must not wait for.
    if (this.#always >= 0) this.#sys(NR.write, this.#always, line, line.length);
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

  /** What to wait on: the server for new readers, each reader for its hang-up, and for room while it has pending lines. */
  watches(): Watch[] {
    const out: Watch[] = [];
    if (this.#server >= 0) out.push({ fd: this.#server, events: POLLIN, ready: () => this.#accept() });
    for (const reader of this.#readers) {
      out.push({ fd: reader.fd, events: reader.pendingBytes > 0 ? POLLOUT : 0, ready: (revents) => this.#service(reader, revents) });
    }
    return out;
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

  #accept(): void {
    for (;;) {
      const fd = this.#sys(NR.accept4, this.#server, null, null, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd === -EINTR) continue;
      // EAGAIN: none left. Any other failure is the connecting reader's (it went away): next time.
      if (fd < 0) return;
      this.#readers.push({ fd, pending: [], pendingBytes: 0 });
    }
  }

  #service(reader: Reader, revents: number): void {
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
