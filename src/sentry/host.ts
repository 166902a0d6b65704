// The detached sentry's main thread: every listener of one container, served from one ppoll wait.
//
// The container's own listener comes first, from create. A process exec'd into the container
// later joins the same sentry: `stockade exec` connects to the join socket and sends, with the
// exec'd process's identity, one end of a socket pair whose other end stockade-init sends that
// process's listener over. So an exec'd process is served by the sentry that owns the container's
// /proc and /sys, traced by `stockade trace` and recorded in the same --log, and costs no process.
import { AT_FDCWD, F_SETFL, O_NONBLOCK, PATH_MAX, POLLIN, SOCK_CLOEXEC } from '../abi/linux/constants';
import { recvFd, type ReceivedFd } from '../native/addon';
import type { Sentry, SentryMount } from './kernel';
import { NR, type RawSyscall } from './native';
import { Poller, type Watch } from './poll';
import { sentryFor, type ServeHooks, type WorkloadIdentity } from './serve';
import type { TraceReaders } from './trace-readers';

/** The join message: "J" and this, as JSON (a capability mask is a decimal string: JSON has no bigint). */
export interface JoinRequest {
  readonly user: Omit<WorkloadIdentity['user'], 'caps'> & { readonly caps: string };
  readonly hostname: string;
  readonly domainname: string;
}

/** What readlink(2) of a seccomp listener's fd says. */
const LISTENER_LINK = 'anon_inode:seccomp notify';

export interface HostOptions {
  readonly sys: RawSyscall;
  readonly hooks: ServeHooks;
  readonly mounts: readonly SentryMount[];
  readonly trace?: TraceReaders | undefined;
  /** A listening socket exec'd processes join through (see above); the host owns it. */
  readonly joinServer?: number | undefined;
  /** Told once the last listener is gone, before the join socket closes: the container is gone. */
  readonly onLast?: (() => void) | undefined;
}

export class SentryHost {
  readonly #o: HostOptions;
  readonly #poller: Poller;
  readonly #listeners = new Map<number, Sentry>();
  /** Accepted join connections, waiting for their message. */
  readonly #joins = new Set<number>();
  /** Hand-off sockets of joined execs, waiting for stockade-init's listener; each with its process's identity. */
  readonly #handoffs = new Map<number, WorkloadIdentity>();
  #joinServer: number;
  readonly #link = Buffer.alloc(64);

  constructor(o: HostOptions) {
    this.#o = o;
    this.#poller = new Poller(o.sys);
    this.#joinServer = o.joinServer ?? -1;
    // Accepted only once ppoll says a connection is queued; should it be gone by then, no wait.
    if (this.#joinServer >= 0) o.sys(NR.fcntl, this.#joinServer, F_SETFL, O_NONBLOCK);
  }

  /** Serves `listener` (owned by the host from now on) as `who`. */
  add(listener: number, who: WorkloadIdentity): void {
    let sentry: Sentry;
    try {
      sentry = sentryFor(listener, who, this.#o.hooks, this.#o.mounts);
    } catch (e) {
      this.#o.sys(NR.close, listener);
      throw e;
    }
    this.#listeners.set(listener, sentry);
  }

  /** Serves until every listener is gone; then closes what it still holds. */
  run(): void {
    while (this.#listeners.size > 0) this.#poller.once(this.#watches());
    this.#o.onLast?.();
    this.close();
  }

  close(): void {
    const sys = this.#o.sys;
    for (const fd of [...this.#listeners.keys(), ...this.#joins, ...this.#handoffs.keys()]) sys(NR.close, fd);
    this.#listeners.clear();
    this.#joins.clear();
    this.#handoffs.clear();
    if (this.#joinServer >= 0) sys(NR.close, this.#joinServer);
    this.#joinServer = -1;
  }

  #watches(): Watch[] {
    const out: Watch[] = [];
    for (const [fd, sentry] of this.#listeners) {
      out.push({ fd, events: POLLIN, ready: guarded(() => { if (!sentry.serveNext()) this.#drop(this.#listeners, fd); }, () => this.#drop(this.#listeners, fd)) });
    }
    if (this.#joinServer >= 0) out.push({ fd: this.#joinServer, events: POLLIN, ready: () => this.#accept() });
    for (const fd of this.#joins) out.push({ fd, events: POLLIN, ready: guarded(() => this.#join(fd)) });
    for (const [fd, who] of this.#handoffs) out.push({ fd, events: POLLIN, ready: guarded(() => this.#handoff(fd, who)) });
    if (this.#o.trace !== undefined) out.push(...this.#o.trace.watches());
    return out;
  }

  #drop(set: Map<number, unknown> | Set<number>, fd: number): void {
    set.delete(fd);
    this.#o.sys(NR.close, fd);
  }

  #accept(): void {
    const fd = this.#o.sys(NR.accept4, this.#joinServer, null, null, SOCK_CLOEXEC);
    // A client that went away before it was accepted: nothing to do.
    if (fd >= 0) this.#joins.add(fd);
  }

  /** A join message: "J", the exec'd process's identity, and the socket its listener will come over. */
  #join(conn: number): void {
    this.#joins.delete(conn);
    const received = receive(conn, JOIN_MAX);
    this.#o.sys(NR.close, conn);
    if (received.fd === null) return;
    const who = received.data[0] === 0x4a /* J */ ? parseJoin(received.data.toString('utf8', 1)) : undefined;
    if (who === undefined) this.#o.sys(NR.close, received.fd);
    else this.#handoffs.set(received.fd, who);
  }

  /** stockade-init's hand-off for a joined exec: the listener alone ("L"), as the sentry holds the mounts already. */
  #handoff(fd: number, who: WorkloadIdentity): void {
    this.#handoffs.delete(fd);
    const received = receive(fd, 1 + PATH_MAX);
    this.#o.sys(NR.close, fd);
    // None: stockade-init went away before it loaded the filter; the exec says why.
    if (received.fd === null) return;
    if (received.data.toString() !== 'L' || !this.isListener(received.fd)) {
      this.#o.sys(NR.close, received.fd);
      return;
    }
    this.add(received.fd, who);
  }

  /** Whether fd is a seccomp listener: the host serves nothing else. */
  isListener(fd: number): boolean {
    const n = this.#o.sys(NR.readlinkat, AT_FDCWD, `/proc/self/fd/${fd}`, this.#link, this.#link.length);
    return n === LISTENER_LINK.length && this.#link.toString('utf8', 0, n) === LISTENER_LINK;
  }
}

/**
 * One listener, join or hand-off that fails is said on stderr (sentry.log) and given up
 * (`giveUp`), not the sentry: it still serves the container's other processes.
 */
function guarded(ready: () => void, giveUp?: () => void): () => void {
  return () => {
    try {
      ready();
    } catch (e) {
      process.stderr.write(`stockade sentry: ${(e as Error).message}\n`);
      giveUp?.();
    }
  };
}

/** The most a join message may hold: an identity with every supplementary group a kernel allows, as JSON. */
const JOIN_MAX = 1 << 20;

/** One message and the fd it carries, if any; a failed read reads as none. */
function receive(fd: number, max: number): ReceivedFd {
  try {
    return recvFd(fd, max);
  } catch {
    return { fd: null, data: Buffer.alloc(0) };
  }
}

const isId = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 0xffffffff;

/** A join request's identity, or undefined when it is not one. */
export function parseJoin(text: string): WorkloadIdentity | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const j = parsed as Partial<JoinRequest>;
  const u = j.user;
  if (typeof u !== 'object' || u === null || !isId(u.uid) || !isId(u.gid) || !Array.isArray(u.groups) || !u.groups.every(isId) ||
      typeof u.caps !== 'string' || !/^\d{1,20}$/.test(u.caps) || typeof j.hostname !== 'string' || typeof j.domainname !== 'string') {
    return undefined;
  }
  const caps = BigInt(u.caps);
  if (caps >= 1n << 64n) return undefined;
  return { user: { uid: u.uid, gid: u.gid, groups: u.groups, caps }, hostname: j.hostname, domainname: j.domainname };
}
