// Sockets: created by the kernel in the caller's network namespace; every address the workload
// gives is checked against the network policy (net-policy.ts) and used by the sentry itself.
//
//   workload thread                       sentry
//   connect(5, {10.0.0.1:80}) ----------> take fd 5 (pidfd_getfd): the same socket
//        (blocked)                        read the address once, check it against the policy
//                                         connect the taken socket to the bytes it checked
//                                         (O_NONBLOCK for the call: the sentry never waits)
//   0 <---------------------------------- now, or once the socket is writable (Sentry.later)
//
// A thread that rewrites the address after the check, or puts another socket at fd 5, changes
// nothing: the kernel never reads the workload's memory or fd table for the call again. So no
// socket call with an address is ever CONTINUEd under a policy other than `all`; sendmsg and
// sendmmsg, whose address is in memory, are always sent by the sentry then.
import {
  AF_INET, AF_INET6, AF_NETLINK, AF_UNIX, AT_FDCWD, EAFNOSUPPORT, EAGAIN, EBADF, EFAULT, EINTR, EINVAL, ENOENT, EPERM, EPROTONOSUPPORT,
  ESRCH, F_SETFL, O_DIRECTORY, O_NONBLOCK, O_PATH, POLLOUT, SOCK_TYPE_MASK, EOPNOTSUPP, ENAMETOOLONG, EACCES,
} from '../abi/linux/constants';
import {
  EALREADY, EINPROGRESS, EMSGSIZE, IOVEC_SIZE, IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_IP, IPPROTO_TCP, IPPROTO_UDP,
  IPPROTO_UDPLITE, MMSGHDR_SIZE, MSG_DONTWAIT, MSG_FASTOPEN, MSGHDR_SIZE, NETLINK_ROUTE, SCM_CREDENTIALS, SCM_RIGHTS,
  SO_DOMAIN, SOCK_DGRAM, SOCK_STREAM, SOCKADDR_IN_SIZE, SOL_SOCKET, UIO_MAXIOV,
} from '../abi/linux/net';
import { posix } from 'node:path';
import { continueBecause, intArg, uintArg, type Notification, type Reply } from './notification';
import type { Handler } from './handlers';
import type { Sentry } from './kernel';
import { NR, sayOnStderr } from './native';
import {
  isLoopback, judge, resolvConfServers, type IpAddr, type NetPolicy,
} from './net-policy';
import { Resolver } from './dns';
import { effectiveCapsOf, parseStatusIds, type ProcessIds } from './creds';
import { decodeSockaddr, describeSockaddr, SOCKADDR_MAX, unixSockaddr, type SockAddr } from './sockaddr';

/**
 * Creating a socket gives it no address: the kernel creates it in the caller's network namespace
 * (a fresh one under `stockade do`), and every address it is later given comes to the sentry.
 */
const CREATED = continueBecause('socket: created by the kernel in the container\'s network namespace; its addresses come to the sentry');
/** Policy `all`: the kernel answers, in the container's network namespace (the namespaces level's wall). */
const ALL = continueBecause('network policy all: the kernel answers in the container\'s network namespace');

const F_GETFL = 3;
/** pidfd_open(PIDFD_THREAD): a pidfd of the calling thread, not only of a thread-group leader (Linux 6.9). */
const PIDFD_THREAD = 0o200;
const MSG_NOSIGNAL = 0x4000;
const ENOBUFS = 105;
/** The most one send takes from the workload's memory: a datagram is at most 64 KiB over IP and
 * some hundreds over unix sockets; a stream takes a short count, as from a full socket buffer. */
const SEND_MAX = 4 << 20;
/** The most ancillary data one message carries (the kernel's optmem_max is 20 KiB by default). */
const CONTROL_MAX = 64 << 10;

interface NetState {
  readonly policy: NetPolicy;
  /** The container's resolvers (its /etc/resolv.conf), read at first need. */
  resolvers: IpAddr[] | undefined;
  resolver: Resolver | undefined;
}

const states = new WeakMap<Sentry, NetState>();

function state(s: Sentry): NetState {
  let st = states.get(s);
  if (st === undefined) {
    st = { policy: s.opts.network ?? { kind: 'all' }, resolvers: undefined, resolver: undefined };
    states.set(s, st);
  }
  return st;
}

// ---- socket ------------------------------------------------------------------------------------

/** The inet protocols a socket may use under a policy: each takes its addresses from connect, bind and the sends alone. */
function inetProtocolOk(domain: number, type: number, protocol: number): boolean {
  if (type === SOCK_STREAM) return protocol === IPPROTO_IP || protocol === IPPROTO_TCP;
  if (type === SOCK_DGRAM) {
    return protocol === IPPROTO_IP || protocol === IPPROTO_UDP || protocol === IPPROTO_UDPLITE ||
      protocol === (domain === AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6);
  }
  return false;
}

/** AF_MAX on Linux 6.x: families at or past it are out of range before any is looked up. */
const AF_MAX = 46;
/** SOCK_PACKET + 1: types at or past it are out of range. */
const SOCK_MAX = 11;
const SOCK_FLAGS = 0o4000 /* SOCK_NONBLOCK */ | 0o2000000 /* SOCK_CLOEXEC */;

const socket: Handler = (s, n) => {
  const domain = intArg(n.args[0]);
  const rawType = intArg(n.args[1]);
  const type = rawType & SOCK_TYPE_MASK;
  const protocol = intArg(n.args[2]);
  // The kernel's argument checks, in its order (__sys_socket, __sock_create), before any family's
  // own: the filter sends here what it cannot judge (a bit no flag is, a type or family past the last).
  if ((rawType & ~(SOCK_TYPE_MASK | SOCK_FLAGS)) !== 0) return -EINVAL;
  if (domain < 0 || domain >= AF_MAX) return -EAFNOSUPPORT;
  if (type >= SOCK_MAX) return -EINVAL;
  if (domain !== AF_UNIX && domain !== AF_INET && domain !== AF_INET6 && domain !== AF_NETLINK) {
    return s.refuse(n, 'socket', EAFNOSUPPORT, `family ${domain}`, 'families: unix, inet, inet6 and netlink');
  }
  // A route socket lists addresses, links and routes; changing them needs CAP_NET_ADMIN over the
  // network namespace, which the kernel checks. The other netlink protocols reach the host
  // kernel's subsystems (netfilter, xfrm, uevents, ...): refused as a kernel without them would.
  if (domain === AF_NETLINK && protocol !== NETLINK_ROUTE) {
    return s.refuse(n, 'socket', EPROTONOSUPPORT, `netlink protocol ${protocol}`, 'netlink: NETLINK_ROUTE only');
  }
  // SCTP connects with setsockopt (SCTP_SOCKOPT_CONNECTX) and MPTCP opens subflows of its own:
  // addresses the sentry would never see. A kernel without them answers EPROTONOSUPPORT, and
  // programs fall back to TCP.
  if ((domain === AF_INET || domain === AF_INET6) && state(s).policy.kind !== 'all' && !inetProtocolOk(domain, type, protocol)) {
    return s.refuse(n, 'socket', EPROTONOSUPPORT, `inet type ${type} protocol ${protocol}`, 'network policy: TCP, UDP and ping sockets only');
  }
  return CREATED;
};

// ---- the socket and the address --------------------------------------------------------------

/**
 * pidfds of the threads that made socket calls, kept: a pidfd names one thread for good (a tid
 * reused later is another pid, and the old pidfd then fails with ESRCH), so keeping them is
 * safe and saves two calls per call. Bounded: the oldest go first.
 */
const pidfds = new Map<number, number>();
const PIDFDS_KEPT = 64;

function pidfdOf(s: Sentry, tid: number): number {
  const kept = pidfds.get(tid);
  if (kept !== undefined) return kept;
  const fd = s.onHost(() => s.k.sys(NR.pidfd_open, tid, PIDFD_THREAD));
  if (fd === -EINVAL) return processPidfd(s, tid);
  if (fd < 0) return fd;
  if (pidfds.size >= PIDFDS_KEPT) {
    const [oldest, ofd] = pidfds.entries().next().value as [number, number];
    pidfds.delete(oldest);
    s.close(ofd);
  }
  pidfds.set(tid, fd);
  return fd;
}

/**
 * Before Linux 6.9 (no PIDFD_THREAD): a pidfd of the thread's process, whose fd table its threads
 * share. Not kept: it names the process, not the thread, and a tid reused by another process's
 * thread must not reach this one's files (the NOTIF_ID_VALID after the take covers one call).
 */
function processPidfd(s: Sentry, tid: number): number {
  const status = s.onHost(() => s.readHostFile(`/proc/${tid}/status`));
  if (typeof status === 'number') return status;
  const tgid = Number(/^Tgid:\s*(\d+)/m.exec(status)?.[1] ?? -1);
  if (tgid <= 0) return -ESRCH;
  return s.onHost(() => s.k.sys(NR.pidfd_open, tgid, 0));
}

/** The caller's fd `fd`, taken into the sentry (the same open file), or -errno. */
function take(s: Sentry, n: Notification, fd: number): number {
  if (fd < 0) return -EBADF;
  // The notification names a thread: its pidfd reaches its fd table, shared or not. As the caller
  // first (its own ids pass the kernel's ptrace check), else as the sentry (another user's).
  let pidfd = pidfdOf(s, n.pid);
  if (pidfd < 0) return pidfd === -ESRCH ? -ENOENT : pidfd;
  let sock = s.asSeen(() => s.k.sys(NR.pidfd_getfd, pidfd, fd, 0));
  if (!pidfds.has(n.pid)) s.close(pidfd);
  else if (sock === -ESRCH) {
    // A kept pidfd of a thread that is gone, whose tid this caller now has.
    s.close(pidfd);
    pidfds.delete(n.pid);
    pidfd = pidfdOf(s, n.pid);
    if (pidfd < 0) return pidfd === -ESRCH ? -ENOENT : pidfd;
    sock = s.asSeen(() => s.k.sys(NR.pidfd_getfd, pidfd, fd, 0));
    if (!pidfds.has(n.pid)) s.close(pidfd);
  }
  if (sock < 0) return sock;
  // The thread was still the caller once the fd was taken: no pid reused in between. A file
  // that is no socket gets ENOTSOCK from the call the sentry then makes on it, as from the kernel.
  if (!s.k.listener.idValid(n.id)) {
    s.close(sock);
    return -ENOENT;
  }
  return sock;
}

function sockInt(s: Sentry, sock: number, opt: number): number {
  const v = Buffer.alloc(4);
  const len = Buffer.alloc(4);
  len.writeUInt32LE(4, 0);
  const r = s.k.sys(NR.getsockopt, sock, SOL_SOCKET, opt, v, len);
  return r < 0 ? r : v.readInt32LE(0);
}

/** The address at `addr` (len bytes) read once from the caller: what the kernel would copy in. */
function readAddr(s: Sentry, n: Notification, addr: bigint, len: number): Buffer | number {
  if (len > SOCKADDR_MAX) return -EINVAL;
  if (len === 0) return Buffer.alloc(0);
  return s.readStruct(n, addr, len);
}

/** What the call is sent with once checked: the address's bytes (a unix path rewritten to what the sentry opened), and fds to close after. */
interface Checked {
  readonly name: Buffer | null;
  readonly hold: number[];
}

/** The network namespace the sentry process was started in (the host's, to the container), as readlink names it. */
let hostNet: string | undefined;

/** Notes the sentry's own network namespace: called before its serving thread leaves it for an empty one. */
export function noteHostNetwork(readlink: (path: string) => string | number): void {
  const r = readlink('/proc/thread-self/ns/net');
  hostNet = typeof r === 'string' ? r : undefined;
}

/** Whether the caller's network namespace is the host's, whose abstract unix names belong to the host (or unknown: taken as the host's). */
function inHostNet(s: Sentry, n: Notification): boolean {
  const own = s.onHost(() => s.readlinkHost(`/proc/${n.pid}/ns/net`));
  return hostNet === undefined || typeof own !== 'string' || own === hostNet;
}

function resolversOf(s: Sentry, st: NetState): IpAddr[] {
  if (st.resolvers !== undefined) return st.resolvers;
  const fd = s.onHost(() => s.open({ inRoot: true, path: '/etc/resolv.conf' }, 0, 0));
  const text = fd < 0 ? '' : s.readFd(fd);
  st.resolvers = typeof text === 'string' ? resolvConfServers(text) : [];
  return st.resolvers;
}

/**
 * Checks the address `raw` of `syscall` against the policy and says what to send the call with:
 * an inet address as read, a unix path as the socket or directory the sentry resolved in the
 * container's root (its /proc/self/fd link, which the kernel follows to that very object).
 */
function check(s: Sentry, n: Notification, syscall: string, raw: Buffer, forBind: boolean): Checked | number {
  const st = state(s);
  let a = decodeSockaddr(raw);
  if (typeof a === 'number') return a;
  // IPv4 UDP and UDP-Lite send to an AF_UNSPEC address as to AF_INET (BSD's old leniency, in
  // udp_sendmsg), and IPv4 bind takes AF_UNSPEC with INADDR_ANY as AF_INET; connect takes it as a
  // disconnect, and IPv6 sends as no address. Sends and binds judge the bytes as the IPv4 address
  // they may be (refusing, at worst, a send the v6 socket would have made to its connected peer).
  if (a.kind === 'unspec' && syscall !== 'connect' && raw.length >= SOCKADDR_IN_SIZE) {
    a = { kind: 'inet', ip: { v6: false, value: BigInt(raw.readUInt32BE(4)) }, port: raw.readUInt16BE(2) };
  }
  const where = describeSockaddr(a);
  s.traceArg(where);
  switch (a.kind) {
    case 'inet': {
      if (forBind) {
        // `none` is loopback only, both ways: a port on another address would be open to the network.
        if (st.policy.kind === 'none' && a.port !== 0 && !isLoopback(a.ip)) return s.refuse(n, syscall, EACCES, where, 'none (loopback only)');
        return { name: raw, hold: [] };
      }
      const v = judge(st.policy, a.ip, a.port, resolversOf(s, st), (name) => lookup(s, st, name));
      if (!v.allowed) return s.refuse(n, syscall, EPERM, where, v.rule);
      return { name: raw, hold: [] };
    }
    case 'unix-path':
      return unixPath(s, n, a, forBind);
    case 'unix-abstract':
      // An abstract name lives in the network namespace: in the host's, it reaches the host's
      // daemons (containerd-shim's, CVE-2020-15257), which no policy but `all` lists.
      if (inHostNet(s, n)) return s.refuse(n, syscall, EPERM, where, 'abstract unix names of the host\'s network namespace');
      return { name: raw, hold: [] };
    default:
      // AF_UNSPEC disconnects; a netlink address names the kernel or a multicast group of the
      // caller's namespace; any other family the socket's kernel code refuses (EAFNOSUPPORT, EINVAL).
      return { name: raw, hold: [] };
  }
}

function lookup(s: Sentry, st: NetState, name: string): readonly IpAddr[] {
  st.resolver ??= new Resolver(s.k.sys, sayOnStderr);
  const policy = st.policy;
  const servers = policy.kind === 'allow' && policy.resolvers.length > 0 ? policy.resolvers : resolversOf(s, st);
  return st.resolver.lookup(name, servers);
}

/**
 * A unix socket path, resolved as the caller in the container's root like any other path: to
 * connect or send, the socket itself (O_PATH); to bind, its directory, and the name in it.
 */
function unixPath(s: Sentry, n: Notification, a: SockAddr & { kind: 'unix-path' }, forBind: boolean): Checked | number {
  const as = s.asCaller(n, forBind);
  if (as < 0) return as;
  let path = a.path;
  let base = '';
  if (forBind) {
    base = posix.basename(path);
    if (base === '' || base === '.' || base === '..' || path.endsWith('/')) return -EINVAL;
    path = posix.dirname(path);
  }
  const t = s.target(n, AT_FDCWD, path, false);
  if (typeof t === 'number') return t;
  const fd = s.open(t, O_PATH | (forBind ? O_DIRECTORY : 0), 0);
  if (fd < 0) return fd;
  const name = unixSockaddr(forBind ? `/proc/self/fd/${fd}/${base}` : `/proc/self/fd/${fd}`);
  if (name === undefined) {
    s.close(fd);
    return -ENAMETOOLONG;
  }
  return { name, hold: [fd] };
}

function release(s: Sentry, c: Checked): void {
  for (const fd of c.hold) s.close(fd);
}

/** Whether the workload's open socket is blocking (its O_NONBLOCK is the file's, shared with the taken fd). */
function blocking(s: Sentry, sock: number): { blocking: boolean; flags: number } {
  const fl = s.k.sys(NR.fcntl, sock, F_GETFL, 0);
  return { blocking: fl >= 0 && (fl & O_NONBLOCK) === 0, flags: fl };
}

/**
 * Answers the call once `fd` is ready for `events`, with `finish`'s result (a value or -errno, or
 * undefined to wait again); the sentry serves others meanwhile. `fd` is closed once answered.
 */
function later(s: Sentry, n: Notification, fd: number, events: number, what: string, finish: () => number | undefined): Reply {
  const w = {
    fd, events,
    ready: () => {
      const r = finish();
      if (r === undefined) return;
      s.later.delete(w);
      s.close(fd);
      s.k.listener.send(n.id, r < 0 ? 0n : BigInt(r), r < 0 ? r : 0, 0);
    },
  };
  s.later.add(w);
  return { kind: 'later', what };
}

/**
 * Who the caller is to a unix peer: its process's real and effective ids, groups and effective
 * capabilities (read from /proc, then the caller checked to be still waiting), for the calls the
 * sentry makes on a unix socket (Sentry.creds.asProcess); undefined for any other socket.
 */
function peerIds(s: Sentry, n: Notification, sock: number): ProcessIds | undefined | number {
  if (sockInt(s, sock, SO_DOMAIN) !== AF_UNIX) return undefined;
  const status = s.asSeen(() => s.readHostFile(`/proc/${n.pid}/status`));
  if (typeof status === 'number') return status;
  const caps = s.k.callerCaps?.(n.pid) ?? effectiveCapsOf(s.k.sys, n.pid);
  if (typeof caps === 'number') return caps;
  const ids = parseStatusIds(status, caps);
  if (ids === undefined) return -EINVAL;
  return s.k.listener.idValid(n.id) ? ids : -ENOENT;
}

/** Runs the sentry's own call on the caller's socket as the caller's process when it is a unix socket (peerIds). */
function asPeer(s: Sentry, ids: ProcessIds | undefined, op: () => number): number {
  return ids === undefined ? op() : s.creds.asProcess(ids, op);
}

// ---- connect and bind --------------------------------------------------------------------------

const connect: Handler = (s, n) => {
  if (state(s).policy.kind === 'all') return ALL;
  const sock = take(s, n, intArg(n.args[0]));
  if (sock < 0) return sock;
  const raw = readAddr(s, n, n.args[1], uintArg(n.args[2]));
  if (typeof raw === 'number') return closing(s, sock, raw);
  const c = check(s, n, 'connect', raw, false);
  if (typeof c === 'number') return closing(s, sock, c);
  // A unix peer reads who connected (SO_PEERCRED): the caller's ids, not the sentry's.
  const ids = peerIds(s, n, sock);
  if (typeof ids === 'number') {
    release(s, c);
    return closing(s, sock, ids);
  }
  // The taken socket shares the workload's file: for a blocking one, O_NONBLOCK is set for each
  // call alone, so the sentry starts the connection and answers when it is made.
  const b = blocking(s, sock);
  const once = (): number => {
    if (b.blocking) s.k.sys(NR.fcntl, sock, F_SETFL, b.flags | O_NONBLOCK);
    let r: number;
    do r = asPeer(s, ids, () => s.k.sys(NR.connect, sock, c.name, c.name?.length ?? 0));
    while (r === -EINTR);
    if (b.blocking) s.k.sys(NR.fcntl, sock, F_SETFL, b.flags);
    return r;
  };
  const r = once();
  // A non-blocking caller gets EINPROGRESS, as from the kernel, and polls its socket itself.
  if (!b.blocking || (r !== -EINPROGRESS && r !== -EALREADY)) {
    release(s, c);
    return closing(s, sock, r);
  }
  // Once the socket is writable, the same connect again finishes it as the kernel's blocking
  // connect does after its wait: 0 and the socket connected, or the error, the socket reset
  // (an error read with SO_ERROR instead would leave it "connecting": the next connect would
  // get ECONNABORTED). EALREADY: not done yet.
  const finish = (): number | undefined => {
    const again = once();
    if (again === -EALREADY || again === -EINPROGRESS) return undefined;
    release(s, c);
    return again;
  };
  // Over loopback the handshake is done by the time connect returns: answer now, not after
  // another turn of the host's wait.
  if (writableNow(s, sock)) {
    const now = finish();
    if (now !== undefined) return closing(s, sock, now);
  }
  return later(s, n, sock, POLLOUT, 'connect in progress', finish);
};

const pollfd = Buffer.alloc(8);
const zero = Buffer.alloc(16);

/** Whether `fd` is writable (or failed) now, without waiting. */
function writableNow(s: Sentry, fd: number): boolean {
  pollfd.writeInt32LE(fd, 0);
  pollfd.writeInt16LE(POLLOUT, 4);
  pollfd.writeInt16LE(0, 6);
  return s.k.sys(NR.ppoll, pollfd, 1, zero, null, 0) > 0;
}

function closing(s: Sentry, sock: number, r: number): number {
  s.close(sock);
  return r;
}

const bind: Handler = (s, n) => {
  if (state(s).policy.kind === 'all') return ALL;
  const sock = take(s, n, intArg(n.args[0]));
  if (sock < 0) return sock;
  const raw = readAddr(s, n, n.args[1], uintArg(n.args[2]));
  if (typeof raw === 'number') return closing(s, sock, raw);
  const c = check(s, n, 'bind', raw, true);
  if (typeof c === 'number') return closing(s, sock, c);
  const r = s.k.sys(NR.bind, sock, c.name, c.name?.length ?? 0);
  release(s, c);
  return closing(s, sock, r);
}

// ---- sends ---------------------------------------------------------------------------------------

/** One message to send, as read from the caller: its bytes, its checked address, its ancillary data. */
interface Message {
  readonly data: Buffer;
  readonly to: Checked;
  readonly control: Buffer | null;
  /** fds taken for SCM_RIGHTS, closed after the send */
  readonly fds: number[];
}

/** Reads `len` bytes at `addr` of the caller, at most SEND_MAX. */
function readData(s: Sentry, n: Notification, addr: bigint, len: number): Buffer | number {
  const take = Math.min(len, SEND_MAX);
  if (take === 0) return Buffer.alloc(0);
  return s.readStruct(n, addr, take);
}

/**
 * Ancillary data for the sentry's own send: fds passed with SCM_RIGHTS are the caller's, taken
 * into the sentry so the kernel passes the same files. Credentials (SCM_CREDENTIALS) the sentry
 * cannot send as the caller: refused, as the kernel refuses credentials not the sender's.
 */
function rebuildControl(s: Sentry, n: Notification, control: Buffer, fds: number[]): Buffer | number {
  const out = Buffer.from(control);
  for (let at = 0; at + 16 <= out.length;) {
    const len = Number(out.readBigUInt64LE(at));
    if (len < 16 || at + len > out.length) return -EINVAL;
    const level = out.readInt32LE(at + 8);
    const type = out.readInt32LE(at + 12);
    if (level === SOL_SOCKET && type === SCM_CREDENTIALS) return -EPERM;
    if (level === SOL_SOCKET && type === SCM_RIGHTS) {
      for (let i = at + 16; i + 4 <= at + len; i += 4) {
        // Any file may be passed, not only a socket: taken as the sentry, as `take` does.
        const file = s.onHost(() => takeFile(s, n, out.readInt32LE(i)));
        if (file < 0) return file === -ESRCH ? -ENOENT : file;
        fds.push(file);
        out.writeInt32LE(file, i);
      }
    }
    at += (len + 7) & ~7;
  }
  return out;
}

/** SOL_IP's IP_RETOPTS and SOL_IPV6's routing headers: per-message source routes. */
const SOURCE_ROUTES: readonly (readonly [number, number])[] = [[0, 7], [41, 57], [41, 5]];

/**
 * Ancillary data of an inet send, as given, unless it carries a source route, which would send
 * the packet to its first hop rather than to the address checked: EPERM, as setsockopt's.
 */
function routeFree(control: Buffer): Buffer | number {
  for (let at = 0; at + 16 <= control.length;) {
    const len = Number(control.readBigUInt64LE(at));
    if (len < 16 || at + len > control.length) return -EINVAL;
    const level = control.readInt32LE(at + 8);
    const type = control.readInt32LE(at + 12);
    if (SOURCE_ROUTES.some(([l, t]) => l === level && t === type)) return -EPERM;
    at += (len + 7) & ~7;
  }
  return control;
}

/** Any of the caller's fds (not only a socket), taken. */
function takeFile(s: Sentry, n: Notification, fd: number): number {
  const pidfd = pidfdOf(s, n.pid);
  if (pidfd < 0) return pidfd;
  const r = s.k.sys(NR.pidfd_getfd, pidfd, fd, 0);
  if (!pidfds.has(n.pid)) s.close(pidfd);
  return r;
}

/** struct msghdr at `addr`, read and checked: a Message, or -errno. */
function readMsghdr(s: Sentry, n: Notification, addr: bigint, syscall: string, domain: number): Message | number {
  const h = s.readStruct(n, addr, MSGHDR_SIZE);
  if (typeof h === 'number') return h;
  const nameAddr = h.readBigUInt64LE(0);
  const nameLen = h.readUInt32LE(8);
  const iovAddr = h.readBigUInt64LE(16);
  const iovLen = h.readBigUInt64LE(24);
  const controlAddr = h.readBigUInt64LE(32);
  const controlLen = h.readBigUInt64LE(40);
  if (iovLen > BigInt(UIO_MAXIOV)) return -EMSGSIZE;
  const iov = iovLen === 0n ? Buffer.alloc(0) : s.readStruct(n, iovAddr, Number(iovLen) * IOVEC_SIZE);
  if (typeof iov === 'number') return iov;
  const parts: Buffer[] = [];
  let total = 0;
  for (let i = 0; i < Number(iovLen) && total < SEND_MAX; i++) {
    const base = iov.readBigUInt64LE(i * IOVEC_SIZE);
    const len = iov.readBigUInt64LE(i * IOVEC_SIZE + 8);
    if (len > BigInt(SEND_MAX)) return -EMSGSIZE;
    const part = readData(s, n, base, Math.min(Number(len), SEND_MAX - total));
    if (typeof part === 'number') return part === -ENOENT ? part : -EFAULT;
    parts.push(part);
    total += part.length;
  }
  let control: Buffer | null = null;
  const fds: number[] = [];
  if (controlLen > 0n && controlAddr !== 0n) {
    if (controlLen > BigInt(CONTROL_MAX)) return -ENOBUFS;
    const c = s.readStruct(n, controlAddr, Number(controlLen));
    if (typeof c === 'number') return c;
    let rebuilt = domain === AF_UNIX ? rebuildControl(s, n, c, fds) : routeFree(c);
    if (rebuilt === -EPERM && domain !== AF_UNIX) rebuilt = s.refuse(n, syscall, EPERM, 'a source route (ancillary data)', 'source routes send past the network policy');
    if (typeof rebuilt === 'number') {
      for (const fd of fds) s.close(fd);
      return rebuilt;
    }
    control = rebuilt;
  }
  let to: Checked = { name: null, hold: [] };
  if (nameAddr !== 0n && nameLen > 0) {
    const raw = readAddr(s, n, nameAddr, nameLen);
    const c = typeof raw === 'number' ? raw : check(s, n, syscall, raw, false);
    if (typeof c === 'number') {
      for (const fd of fds) s.close(fd);
      return c;
    }
    to = c;
  }
  return { data: Buffer.concat(parts), to, control, fds };
}

function done(s: Sentry, m: Message): void {
  release(s, m.to);
  for (const fd of m.fds) s.close(fd);
}

/** Sends `m` on the taken socket without waiting: the bytes sent or -errno (EAGAIN when it would block). */
function sendNow(s: Sentry, sock: number, m: Message, flags: number, ids: ProcessIds | undefined): number {
  const send = s.k.sendMessage;
  if (send === undefined) return -EOPNOTSUPP;
  // MSG_NOSIGNAL: a broken pipe is the caller's EPIPE, not a signal to the sentry. On a unix
  // socket as the caller's process: a receiver with SO_PASSCRED reads the sender's ids.
  return asPeer(s, ids, () => send(sock, m.data, m.to.name, m.control, flags | MSG_DONTWAIT | MSG_NOSIGNAL));
}

/**
 * Sends the messages `msgs` gives (one for sendto and sendmsg), the first at once or, for a
 * blocking socket that is full, once it is writable; later ones only while they go at once
 * (sendmmsg returns how many went). `answer` turns the count sent and the last result into the call's.
 */
function sendAll(s: Sentry, n: Notification, sock: number, flags: number, count: number,
  next: (i: number) => Message | number, wrote: (i: number, r: number) => void, answer: (sent: number, last: number) => number): Reply {
  const ids = peerIds(s, n, sock);
  if (typeof ids === 'number') return closing(s, sock, ids);
  const b = blocking(s, sock);
  const wait = b.blocking && (flags & MSG_DONTWAIT) === 0;
  let sent = 0;
  // A message that would block a blocking socket is kept, its unix path held, until there is room.
  let pending: Message | undefined;
  const step = (): number | undefined => {
    let last = 0;
    while (sent < count) {
      const m = pending ?? next(sent);
      pending = undefined;
      if (typeof m === 'number') return answer(sent, m);
      last = sendNow(s, sock, m, flags, ids);
      if (last === -EAGAIN && sent === 0 && wait) {
        pending = m;
        return undefined;
      }
      done(s, m);
      if (last < 0) break;
      wrote(sent, last);
      sent++;
    }
    return answer(sent, last);
  };
  const r = step();
  if (r !== undefined) return closing(s, sock, r);
  return later(s, n, sock, POLLOUT, 'send waits for room', step);
}

const sendto: Handler = (s, n) => {
  if (state(s).policy.kind === 'all') return ALL;
  const flags = uintArg(n.args[3]);
  const sock = take(s, n, intArg(n.args[0]));
  if (sock < 0) return sock;
  // MSG_FASTOPEN connects as it sends: the answer of a kernel whose TCP Fast Open client is off.
  if ((flags & MSG_FASTOPEN) !== 0) return closing(s, sock, -EOPNOTSUPP);
  const raw = readAddr(s, n, n.args[4], uintArg(n.args[5]));
  if (typeof raw === 'number') return closing(s, sock, raw);
  const to = check(s, n, 'sendto', raw, false);
  if (typeof to === 'number') return closing(s, sock, to);
  const data = readData(s, n, n.args[1], uintArg(n.args[2]));
  if (typeof data === 'number') {
    release(s, to);
    return closing(s, sock, data);
  }
  const m: Message = { data, to, control: null, fds: [] };
  return sendAll(s, n, sock, flags, 1, () => m, () => undefined, (_sent, last) => last);
};

const sendmsg: Handler = (s, n) => {
  if (state(s).policy.kind === 'all') return ALL;
  const flags = uintArg(n.args[2]);
  const sock = take(s, n, intArg(n.args[0]));
  if (sock < 0) return sock;
  if ((flags & MSG_FASTOPEN) !== 0) return closing(s, sock, -EOPNOTSUPP);
  const domain = sockInt(s, sock, SO_DOMAIN);
  return sendAll(s, n, sock, flags, 1, () => readMsghdr(s, n, n.args[1], 'sendmsg', domain), () => undefined, (_sent, last) => last);
};

const sendmmsg: Handler = (s, n) => {
  if (state(s).policy.kind === 'all') return ALL;
  const flags = uintArg(n.args[3]);
  const vlen = Math.min(uintArg(n.args[2]), UIO_MAXIOV);
  const sock = take(s, n, intArg(n.args[0]));
  if (sock < 0) return sock;
  if ((flags & MSG_FASTOPEN) !== 0) return closing(s, sock, -EOPNOTSUPP);
  const domain = sockInt(s, sock, SO_DOMAIN);
  const base = n.args[1];
  const len = Buffer.alloc(4);
  return sendAll(s, n, sock, flags, vlen,
    (i) => readMsghdr(s, n, base + BigInt(i * MMSGHDR_SIZE), 'sendmmsg', domain),
    (i, r) => {
      len.writeUInt32LE(r, 0);
      s.writeBack(n, base + BigInt(i * MMSGHDR_SIZE + MSGHDR_SIZE), len, 4);
    },
    // As the kernel: the count sent, or the first message's error when none went.
    (sent, last) => (sent > 0 ? sent : last));
};

export const SOCKET_HANDLERS: Readonly<Record<string, Handler>> = {
  socket,
  connect,
  bind,
  sendto,
  sendmsg,
  sendmmsg,
};

