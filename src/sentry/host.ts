// The sentry process's main thread: every listener of a container, or of a pod's containers,
// served from one ppoll wait.
//
// The container the process was started for comes first: its stockade-init sends the container's
// /proc and /sys clones at create, then its listener at start. Others join through the container's
// join socket (root's alone), from create on: `stockade exec`, or `create` of a container of the
// same pod, connects and sends a join message ("J", JSON) with one end of a socket pair whose other
// end stockade-init sends the new listener over.
// - A process exec'd into a container is served as a member of that container's group: the same
//   /proc and /sys, `stockade trace` and --log record. Its hand-off brings the listener alone.
// - A container of a pod (containerd's and CRI-O's sandbox annotations) becomes a group of its
//   own: its hand-off brings its own /proc and /sys clones, then its listener, and the join
//   message is followed by its own trace ("T") and join ("S") sockets, made by its create. So a
//   pod costs one sentry process, as a gVisor sandbox does.
import { AT_FDCWD, F_SETFL, O_NONBLOCK, PATH_MAX, POLLIN, SOCK_CLOEXEC } from '../abi/linux/constants';
import { parseContainerId } from '../container/id';
import { recvFd, type ReceivedFd } from '../native/addon';
import { HANDOFF } from '../native/protocol';
import type { Sentry, SentryDenial, SentryMount, SentryStats, StuckCall } from './kernel';
import { decodeReports, REPORT_SIZE } from './blocking';
import { NR, sayOnStderr, type RawSyscall } from './native';
import { Poller, type FastWait, type Watch } from './poll';
import type { FastServe } from './fast-path';
import type { FastLayout } from '../native/addon';
import { decodeNotification } from './notification';
import { sentryFor, type WorkloadIdentity } from './serve';
import { TraceReaders } from './trace-readers';
import { parseNetPolicy, type NetPolicy } from './net-policy';

/** The join message: "J" and this, as JSON (a capability mask is a decimal string: JSON has no bigint). */
export interface JoinRequest {
  readonly user: Omit<WorkloadIdentity['user'], 'caps'> & { readonly caps: string };
  readonly hostname: string;
  readonly domainname: string;
  /** The container's network policy (net-policy.ts), as text; absent: all. */
  readonly network?: string | undefined;
  /** Set when a whole container joins (a pod's), not a process exec'd into one: its id. */
  readonly container?: string | undefined;
}

/** What readlink(2) of a seccomp listener's fd says. */
const LISTENER_LINK = 'anon_inode:seccomp notify';

export interface HostOptions {
  readonly sys: RawSyscall;
  /** Records a refusal the workload of container `id` met (the --log file). */
  readonly denied?: ((id: string, d: SentryDenial) => void) | undefined;
  /** Told once the last listener is gone, before the host closes what it holds. */
  readonly onLast?: (() => void) | undefined;
  /** Told what serving a process (a listener) of container `id` came to, once it is gone. */
  readonly served?: ((id: string, stats: SentryStats) => void) | undefined;
  /** The pipe the threads of blocking opens report on (serve.ts prepareBlocking), or undefined. */
  readonly blockingReports?: number | undefined;
  /** How long an open handed to a thread of its own may wait. */
  readonly blockLimitMs?: number | undefined;
  /** Records an open of container `id` that waited past that limit or found no thread (the --log file). */
  readonly stuck?: ((id: string, s: StuckCall) => void) | undefined;
  /** The addon's wait that serves the common stats and opens natively (fast-path.ts); without it every call is JavaScript's. */
  readonly fast?: { readonly serve: FastServe; readonly layout: FastLayout } | undefined;
}

/** One container the host serves: the mounts its paths resolve in, its trace readers, where its exec'd processes join. */
export interface Group {
  readonly id: string;
  /** Filled by the container's own hand-off, before its first listener. */
  readonly mounts: SentryMount[];
  readonly trace: TraceReaders | undefined;
  /** A listening socket (non-blocking), or -1. */
  joinServer: number;
  readonly listeners: Set<number>;
  /** Hand-offs of processes exec'd into it, not yet complete. */
  pending: number;
  /** Its own hand-off is not complete: the container is created, not started. */
  starting: boolean;
  /** It had a listener once: its container started. */
  served: boolean;
}

/** A hand-off socket stockade-init sends over: a container's own (its mounts, then its listener), or an exec'd process's (its listener). */
interface Handoff {
  readonly kind: 'container' | 'exec';
  readonly group: Group;
  readonly who: WorkloadIdentity;
}

export class SentryHost {
  readonly #o: HostOptions;
  readonly #poller: Poller;
  readonly #groups = new Set<Group>();
  readonly #listeners = new Map<number, { readonly sentry: Sentry; readonly group: Group }>();
  /** Accepted join connections, waiting for their message, with the group whose socket they came in by. */
  readonly #joins = new Map<number, Group>();
  readonly #handoffs = new Map<number, Handoff>();
  readonly #link = Buffer.alloc(64);
  readonly #reports = Buffer.alloc(REPORT_SIZE * 64);

  constructor(o: HostOptions) {
    this.#o = o;
    this.#poller = new Poller(o.sys);
  }

  /**
   * A container to serve, whose stockade-init sends its mounts and then its listener over
   * `handoff`, to be served as `who`. The host owns the hand-off socket, the trace readers and
   * the join server (a listening socket, or -1) from now on: joins are taken at once.
   */
  container(id: string, handoff: number, who: WorkloadIdentity, trace: TraceReaders | undefined, joinServer: number): Group {
    // Accepted only once ppoll says a connection is queued; should it be gone by then, no wait.
    if (joinServer >= 0) this.#o.sys(NR.fcntl, joinServer, F_SETFL, O_NONBLOCK);
    const g: Group = { id, mounts: [], trace, joinServer, listeners: new Set(), pending: 0, starting: true, served: false };
    this.#groups.add(g);
    this.#handoffs.set(handoff, { kind: 'container', group: g, who });
    return g;
  }

  /** Serves `listener` (owned by the host from now on) as `who`, a process of `group`. */
  add(group: Group, listener: number, who: WorkloadIdentity): void {
    let sentry: Sentry;
    try {
      sentry = sentryFor(listener, who, {
        trace: group.trace, denied: (d) => this.#o.denied?.(group.id, d), stuck: (s) => this.#o.stuck?.(group.id, s), blockLimitMs: this.#o.blockLimitMs,
        fast: this.#o.fast !== undefined,
      }, group.mounts);
    } catch (e) {
      this.#o.sys(NR.close, listener);
      throw e;
    }
    this.#listeners.set(listener, { sentry, group });
    group.listeners.add(listener);
    group.served = true;
  }

  /**
   * Serves until every container is gone (no listener left, none waiting for its start); then
   * closes what it holds. With `idle`, calls `idle.then` once whenever nothing has come for
   * `idle.afterMs` since the last thing that did.
   */
  run(idle?: { readonly afterMs: number; then(): void }): void {
    let busy = true;
    while (this.#groups.size > 0) {
      if (this.#poller.once(this.#watches(), busy ? idle?.afterMs : undefined, this.#fastWait(idle?.afterMs))) {
        busy = true;
        continue;
      }
      busy = false;
      idle?.then();
    }
    this.#o.onLast?.();
    this.close();
  }

  close(): void {
    const sys = this.#o.sys;
    for (const fd of [...this.#listeners.keys(), ...this.#joins.keys()]) sys(NR.close, fd);
    for (const fd of [...this.#handoffs.keys()]) this.#dropHandoff(fd);
    this.#listeners.clear();
    this.#joins.clear();
    for (const g of [...this.#groups]) this.#closeGroup(g);
  }

  /** The fast path's part of the next wait: the contexts of the listeners it may serve now. */
  #fastWait(busyMs: number | undefined): FastWait | undefined {
    const fast = this.#o.fast;
    if (fast === undefined) return undefined;
    const contexts: Buffer[] = [];
    for (const { sentry } of this.#listeners.values()) {
      const c = sentry.fastContext();
      if (c !== undefined) contexts.push(c);
    }
    return { serve: fast.serve, layout: fast.layout, contexts, busyMs, handover: (fd, notif) => this.#handover(fd, notif) };
  }

  /** A notification the fast path received and left to its Sentry: answered as serveNext would. */
  #handover(fd: number, notif: Buffer): void {
    const l = this.#listeners.get(fd);
    if (l === undefined) return;
    guarded(() => l.sentry.answer(decodeNotification(notif)), () => this.#dropListener(fd))(0);
  }

  #watches(): Watch[] {
    const out: Watch[] = [];
    // First: a report of a listener that hangs up in the same wait still finds its Sentry.
    const reports = this.#o.blockingReports;
    if (reports !== undefined) out.push({ fd: reports, events: POLLIN, ready: guarded(() => this.#blockingReports(reports)) });
    for (const [fd, { sentry }] of this.#listeners) {
      out.push({ fd, events: POLLIN, ready: guarded(() => { if (!sentry.serveNext()) this.#dropListener(fd); }, () => this.#dropListener(fd)) });
      // Calls a handler answers later (a blocking connect): waited on with the listeners.
      for (const w of sentry.later) out.push({ fd: w.fd, events: w.events, ready: guarded((revents: number) => w.ready(revents)) });
    }
    for (const g of this.#groups) {
      if (g.joinServer >= 0) out.push({ fd: g.joinServer, events: POLLIN, ready: () => this.#accept(g) });
      if (g.trace !== undefined) out.push(...g.trace.watches());
    }
    for (const fd of this.#joins.keys()) out.push({ fd, events: POLLIN, ready: guarded(() => this.#join(fd)) });
    for (const fd of this.#handoffs.keys()) out.push({ fd, events: POLLIN, ready: guarded(() => this.#handoff(fd), () => this.#dropHandoff(fd)) });
    return out;
  }

  /** What the threads of blocking opens answered (blocking.ts), each to the Sentry of the listener it came from. */
  #blockingReports(fd: number): void {
    for (;;) {
      const n = this.#o.sys(NR.read, fd, this.#reports, this.#reports.length);
      if (n <= 0) return;
      for (const r of decodeReports(this.#reports, n)) this.#listeners.get(r.key)?.sentry.finished(r);
      if (n < this.#reports.length) return;
    }
  }

  #dropListener(fd: number): void {
    const l = this.#listeners.get(fd);
    this.#listeners.delete(fd);
    this.#o.sys(NR.close, fd);
    if (l === undefined) return;
    // Calls answered later whose callers are gone with the listener: their sockets go too.
    for (const w of l.sentry.later) this.#o.sys(NR.close, w.fd);
    l.sentry.later.clear();
    this.#o.served?.(l.group.id, l.sentry.statsNow());
    l.group.listeners.delete(fd);
    this.#closeIfGone(l.group);
  }

  /** A container is gone once its last process is, and no hand-off for it is under way. */
  #closeIfGone(g: Group): void {
    if (g.listeners.size === 0 && g.pending === 0 && !g.starting) this.#closeGroup(g);
  }

  #closeGroup(g: Group): void {
    if (!this.#groups.delete(g)) return;
    g.trace?.close();
    if (g.joinServer >= 0) this.#o.sys(NR.close, g.joinServer);
    g.joinServer = -1;
    for (const m of g.mounts) this.#o.sys(NR.close, m.fd);
  }

  #accept(g: Group): void {
    const fd = this.#o.sys(NR.accept4, g.joinServer, null, null, SOCK_CLOEXEC);
    // A client that went away before it was accepted: nothing to do.
    if (fd >= 0) this.#joins.set(fd, g);
  }

  /**
   * A join message: "J", an identity, and the socket a listener will come over. A container's
   * (JoinRequest.container) is followed on the same connection by its trace socket ("T") and its
   * join socket ("S").
   */
  #join(conn: number): void {
    const group = this.#joins.get(conn);
    this.#joins.delete(conn);
    const sys = this.#o.sys;
    const received = receive(conn, JOIN_MAX);
    const req = received.data[0] === 0x4a /* J */ ? parseJoin(received.data.toString('utf8', 1)) : undefined;
    if (received.fd === null || req === undefined || group === undefined || !this.#groups.has(group)) {
      if (received.fd !== null) sys(NR.close, received.fd);
      sys(NR.close, conn);
      return;
    }
    if (req.container === undefined) {
      sys(NR.close, conn);
      group.pending++;
      this.#handoffs.set(received.fd, { kind: 'exec', group, who: req.who });
      return;
    }
    const trace = receive(conn, 1);
    const join = receive(conn, 1);
    sys(NR.close, conn);
    if (trace.fd === null || trace.data.toString() !== 'T' || join.fd === null || join.data.toString() !== 'S') {
      for (const fd of [received.fd, trace.fd, join.fd]) if (fd !== null) sys(NR.close, fd);
      return;
    }
    this.container(req.container, received.fd, req.who, new TraceReaders(sys, trace.fd), join.fd);
  }

  /**
   * One message of stockade-init's hand-off: a mount the sentry is to own ("M" and its path; a
   * container's own hand-off only, at create; "X", the exec links' tmpfs, after /proc's), or the listener ("L", at start or exec), which
   * completes it. End of file: stockade-init went away before it loaded the filter (the create,
   * start or exec says why).
   */
  #handoff(fd: number): void {
    const h = this.#handoffs.get(fd);
    if (h === undefined) return;
    let received = receive(fd, 1 + PATH_MAX);
    // The mounts come together, at create: all of them are the group's before any exec's listener is taken.
    while (received.fd !== null && (received.data[0] === HANDOFF.MOUNT || received.data[0] === HANDOFF.EXEC_LINKS) && h.kind === 'container') {
      h.group.mounts.push(received.data[0] === HANDOFF.MOUNT
        ? { path: received.data.toString('utf8', 1), fd: received.fd }
        : { path: '/proc', fd: received.fd, execLinks: true });
      if (!this.#poller.readable(fd)) return;
      received = receive(fd, 1 + PATH_MAX);
    }
    const isListener = received.data.length === 1 && received.data[0] === HANDOFF.LISTENER;
    if (received.fd === null || !isListener || !this.#isListener(received.fd)) {
      if (received.fd !== null) this.#o.sys(NR.close, received.fd);
      this.#dropHandoff(fd);
      return;
    }
    this.#endHandoff(fd, h);
    if (!this.#groups.has(h.group)) {
      this.#o.sys(NR.close, received.fd);
      return;
    }
    this.add(h.group, received.fd, h.who);
  }

  #endHandoff(fd: number, h: Handoff): void {
    this.#handoffs.delete(fd);
    this.#o.sys(NR.close, fd);
    if (h.kind === 'exec') h.group.pending--;
    else h.group.starting = false;
  }

  #dropHandoff(fd: number): void {
    const h = this.#handoffs.get(fd);
    if (h === undefined) return;
    this.#endHandoff(fd, h);
    this.#closeIfGone(h.group);
  }

  /** Whether fd is a seccomp listener: the host serves nothing else. */
  #isListener(fd: number): boolean {
    const n = this.#o.sys(NR.readlinkat, AT_FDCWD, `/proc/self/fd/${fd}`, this.#link, this.#link.length);
    return n === LISTENER_LINK.length && this.#link.toString('utf8', 0, n) === LISTENER_LINK;
  }
}

/**
 * One listener, join or hand-off that fails is said on stderr (sentry.log) and given up
 * (`giveUp`), not the sentry: it still serves the container's other processes.
 */
function guarded(ready: (revents: number) => void, giveUp?: () => void): (revents: number) => void {
  return (revents) => {
    try {
      ready(revents);
    } catch (e) {
      sayOnStderr((e as Error).message);
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

/** Whether a joining container names itself with an id the runtime takes (container/id.ts). */
function validId(id: unknown): id is string {
  try {
    parseContainerId(typeof id === 'string' ? id : undefined);
    return true;
  } catch {
    return false;
  }
}

/** A join request's identity and, for a container, its id; undefined when it is not one. */
export function parseJoin(text: string): { who: WorkloadIdentity; container?: string } | undefined {
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
  if (j.container !== undefined && !validId(j.container)) return undefined;
  const caps = BigInt(u.caps);
  if (caps >= 1n << 64n) return undefined;
  if (j.network !== undefined && typeof j.network !== 'string') return undefined;
  let network: NetPolicy | undefined;
  try {
    network = j.network === undefined ? undefined : parseNetPolicy(j.network);
  } catch {
    return undefined;
  }
  const base = { user: { uid: u.uid, gid: u.gid, groups: u.groups, caps }, hostname: j.hostname, domainname: j.domainname };
  const who: WorkloadIdentity = network === undefined ? base : { ...base, network };
  return j.container === undefined ? { who } : { who, container: j.container };
}
