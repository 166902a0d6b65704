// The sentry's own DNS: it resolves the host names a network policy allows (A and AAAA records)
// and allows connections to what they resolved to for the records' TTL.
//
// The workload resolves names itself, through the resolvers its policy names or its resolv.conf
// holds, and connects to an address; the sentry then asks those resolvers too. An address is
// allowed for a name while the sentry's own unexpired answer holds it, so a record that changes
// (DNS rebinding) moves the allowed address with it, and a name never grants loopback (judge).
//
// The queries go over UDP sockets made before the serving thread walled itself off (its own
// network namespace is empty, and its filter allows no new socket): they are in the sentry
// process's network namespace, the host's, from which the resolvers are asked. The A and AAAA
// queries go together and wait at most QUERY_TIMEOUT_MS for their answers, on the serving thread:
// a name's first use, and its first use after its TTL, costs the sentry that wait per resolver
// that does not answer (not the other calls' answers once cached).
import { AF_INET, AF_INET6, EINTR, POLLIN, SOCK_CLOEXEC, SOCK_NONBLOCK } from '../abi/linux/constants';
import { ECONNREFUSED, SOCK_DGRAM } from '../abi/linux/net';
import { encodeSockaddr } from './sockaddr';
import { formatIp, type IpAddr } from './net-policy';
import { NR, type RawSyscall } from './native';

const QUERY_TIMEOUT_MS = 1000;
/** How long a failed lookup (no answer, NXDOMAIN) is kept before the name is asked again. */
const NEGATIVE_TTL_S = 5;
/** The longest a record is kept, whatever its TTL says. */
const MAX_TTL_S = 3600;

const TYPE_A = 1;
const TYPE_AAAA = 28;
const TYPE_CNAME = 5;

export interface Answer {
  readonly addrs: readonly IpAddr[];
  /** When it expires (Date.now() milliseconds); an answer with TTL 0 holds for the call that asked. */
  readonly expires: number;
}

/** The resolver sockets, one per family, made by prepareResolverSockets before the thread is walled. */
let sockets: { v4: number; v6: number } | undefined;

/** Makes the sentry's resolver sockets in the network namespace the thread is in now. */
export function prepareResolverSockets(sys: RawSyscall): void {
  if (sockets !== undefined) return;
  const v4 = sys(NR.socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  const v6 = sys(NR.socket, AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockets = { v4, v6 };
}

/** A query for `name`'s records of `type`: its bytes and its id. */
export function dnsQuery(name: string, type: number, id: number): Buffer {
  const labels = name.split('.').filter((l) => l !== '');
  const q = Buffer.alloc(12 + labels.reduce((n, l) => n + 1 + Buffer.byteLength(l), 0) + 1 + 4);
  q.writeUInt16BE(id, 0);
  q.writeUInt16BE(0x0100, 2); // a standard query, recursion desired
  q.writeUInt16BE(1, 4);
  let at = 12;
  for (const l of labels) {
    at = q.writeUInt8(Buffer.byteLength(l), at);
    at += q.write(l, at);
  }
  at = q.writeUInt8(0, at);
  at = q.writeUInt16BE(type, at);
  q.writeUInt16BE(1, at); // class IN
  return q;
}

/** A name at `at` of message `m` (compression pointers followed, at most 32): the name and where it ends, or undefined. */
function readName(m: Buffer, at: number): { name: string; end: number } | undefined {
  const labels: string[] = [];
  let end = -1;
  for (let jumps = 0; jumps < 32;) {
    if (at >= m.length) return undefined;
    const len = m[at] ?? 0;
    if (len === 0) {
      return { name: labels.join('.').toLowerCase(), end: end < 0 ? at + 1 : end };
    }
    if ((len & 0xc0) === 0xc0) {
      if (at + 1 >= m.length) return undefined;
      if (end < 0) end = at + 2;
      at = ((len & 0x3f) << 8) | (m[at + 1] ?? 0);
      jumps++;
      continue;
    }
    if (at + 1 + len > m.length) return undefined;
    labels.push(m.toString('latin1', at + 1, at + 1 + len));
    at += 1 + len;
  }
  return undefined;
}

/**
 * The addresses an answer to `query` gives for `name` (following CNAMEs the answer holds), and
 * the least TTL among the records used; undefined for anything that is not that answer.
 */
export function parseAnswer(m: Buffer, id: number, name: string, type: number): { addrs: IpAddr[]; ttl: number } | undefined {
  if (m.length < 12 || m.readUInt16BE(0) !== id || (m.readUInt16BE(2) & 0x8000) === 0) return undefined;
  const rcode = m.readUInt16BE(2) & 0xf;
  const qd = m.readUInt16BE(4);
  const an = m.readUInt16BE(6);
  let at = 12;
  if (qd !== 1) return undefined;
  const q = readName(m, at);
  if (q === undefined || q.name !== name || q.end + 4 > m.length || m.readUInt16BE(q.end) !== type) return undefined;
  at = q.end + 4;
  if (rcode !== 0) return { addrs: [], ttl: NEGATIVE_TTL_S };
  const owners = new Set([name]);
  const addrs: IpAddr[] = [];
  let ttl = MAX_TTL_S;
  for (let i = 0; i < an; i++) {
    const r = readName(m, at);
    if (r === undefined || r.end + 10 > m.length) return undefined;
    const rtype = m.readUInt16BE(r.end);
    const rttl = m.readUInt32BE(r.end + 4);
    const rdlen = m.readUInt16BE(r.end + 8);
    const data = r.end + 10;
    if (data + rdlen > m.length) return undefined;
    at = data + rdlen;
    if (!owners.has(r.name)) continue;
    if (rtype === TYPE_CNAME) {
      const target = readName(m, data);
      if (target !== undefined) owners.add(target.name);
      ttl = Math.min(ttl, rttl);
    } else if (rtype === type && rtype === TYPE_A && rdlen === 4) {
      addrs.push({ v6: false, value: BigInt(m.readUInt32BE(data)) });
      ttl = Math.min(ttl, rttl);
    } else if (rtype === type && rtype === TYPE_AAAA && rdlen === 16) {
      const v = BigInt(`0x${m.toString('hex', data, data + 16)}`);
      addrs.push(v >> 32n === 0xffffn ? { v6: false, value: v & 0xffffffffn } : { v6: true, value: v });
      ttl = Math.min(ttl, rttl);
    }
  }
  return { addrs, ttl: addrs.length === 0 ? NEGATIVE_TTL_S : ttl };
}

/** The sentry's cache of what each allowed name resolves to. */
export class Resolver {
  readonly #sys: RawSyscall;
  readonly #cache = new Map<string, Answer>();
  readonly #buf = Buffer.alloc(4096);
  readonly #pollfd = Buffer.alloc(8);
  readonly #timeout = Buffer.alloc(16);
  readonly #idBuf = Buffer.alloc(2);
  /** Told each query that went unanswered, for stderr (sentry.log). */
  readonly #said: (m: string) => void;

  constructor(sys: RawSyscall, said: (m: string) => void) {
    this.#sys = sys;
    this.#said = said;
  }

  /** The addresses `name` resolves to now: the cached answer while it holds, else a fresh one from `servers`. */
  lookup(name: string, servers: readonly IpAddr[]): readonly IpAddr[] {
    const now = Date.now();
    const cached = this.#cache.get(name);
    if (cached !== undefined && cached.expires > now) return cached.addrs;
    const addrs: IpAddr[] = [];
    let ttl = MAX_TTL_S;
    let answered = false;
    for (const server of servers) {
      const got = this.#ask(server, name, [TYPE_A, TYPE_AAAA]);
      for (const a of got) {
        addrs.push(...a.addrs);
        if (a.addrs.length > 0) ttl = Math.min(ttl, a.ttl);
      }
      answered = got.length > 0;
      if (answered) break;
    }
    if (!answered) this.#said(`dns: no resolver of ${servers.map(formatIp).join(', ') || '(none)'} answered for ${name}`);
    // What was just asked holds for the call that asked, whatever its TTL.
    const answer = { addrs, expires: Date.now() + (addrs.length === 0 ? NEGATIVE_TTL_S : ttl) * 1000 };
    this.#cache.set(name, answer);
    return addrs;
  }

  /**
   * One query per type to one resolver, sent together and waited for together, at most
   * QUERY_TIMEOUT_MS in all: the answers that came (none when the resolver did not answer).
   */
  #ask(server: IpAddr, name: string, types: readonly number[]): { addrs: IpAddr[]; ttl: number }[] {
    const fd = server.v6 ? sockets?.v6 : sockets?.v4;
    if (fd === undefined || fd < 0) return [];
    const sys = this.#sys;
    // Connected: the socket takes datagrams from that resolver alone.
    const to = encodeSockaddr(server, 53);
    if (sys(NR.connect, fd, to, to.length) < 0) return [];
    // Whatever an earlier, timed-out query left behind is not this one's answer.
    while (sys(NR.read, fd, this.#buf, this.#buf.length) > 0);
    const waiting = new Map<number, number>();
    for (const type of types) {
      // getrandom(2) made by the thread itself: node:crypto's randomBytes would load the whole
      // crypto module into every sentry process at its start, for two bytes a query.
      if (sys(NR.getrandom, this.#idBuf, 2, 0) !== 2) return [];
      const id = this.#idBuf.readUInt16BE(0);
      const q = dnsQuery(name, type, id);
      if (waiting.has(id)) continue;
      const w = sys(NR.write, fd, q, q.length);
      // The first query's ICMP port unreachable, reported to this write: no resolver there.
      if (w === -ECONNREFUSED) return [];
      if (w === q.length) waiting.set(id, type);
    }
    const got: { addrs: IpAddr[]; ttl: number }[] = [];
    const deadline = Date.now() + QUERY_TIMEOUT_MS;
    while (waiting.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      this.#pollfd.writeInt32LE(fd, 0);
      this.#pollfd.writeInt16LE(POLLIN, 4);
      this.#pollfd.writeInt16LE(0, 6);
      this.#timeout.writeBigInt64LE(BigInt(Math.floor(left / 1000)), 0);
      this.#timeout.writeBigInt64LE(BigInt((left % 1000) * 1_000_000), 8);
      const r = sys(NR.ppoll, this.#pollfd, 1, this.#timeout, null, 0);
      if (r === -EINTR) continue;
      if (r <= 0) break;
      const n = sys(NR.read, fd, this.#buf, this.#buf.length);
      // ICMP port unreachable: no resolver there, no answer to wait for.
      if (n === -ECONNREFUSED) break;
      if (n < 12) continue;
      const id = this.#buf.readUInt16BE(0);
      const type = waiting.get(id);
      if (type === undefined) continue;
      const a = parseAnswer(this.#buf.subarray(0, n), id, name, type);
      if (a === undefined) continue;
      waiting.delete(id);
      got.push(a);
    }
    return got;
  }
}
