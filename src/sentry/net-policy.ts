// The sentry's network policy: where a workload may connect and send, parsed from `do --allow-net`
// and the dev.stockade.network annotation, and matched against the addresses the sentry reads.
//
// A policy is one of:
//   all             today's wall: any address the container's network namespace reaches
//   none            loopback only (127.0.0.0/8, ::1)
//   DEST[,DEST...]  only these destinations (and the resolvers, on port 53), where DEST is
//                     HOST[:PORT]      a name the sentry resolves itself (its A and AAAA records,
//                                      for their TTL), or an address
//                     CIDR[:PORT]      10.0.0.0/8, [2001:db8::/32]:443 (an IPv6 one with a port
//                                      in brackets)
//                     N or N-M         a port or a range of ports, at any address
//                     dns=ADDR         a resolver: DNS (port 53) may go there, and the sentry asks
//                                      it for the names above; without one, the container's
//                                      /etc/resolv.conf names them
//                   PORT is N or N-M. Loopback is reachable only when listed.
import { StockadeError } from '../errors';

/** An IP address: IPv4 as a 32-bit value, IPv6 as 128 bits (an IPv4-mapped one taken as IPv4). */
export interface IpAddr {
  readonly v6: boolean;
  readonly value: bigint;
}

export interface PortRange {
  readonly lo: number;
  readonly hi: number;
}

export type NetRule =
  | { readonly kind: 'cidr'; readonly v6: boolean; readonly net: bigint; readonly bits: number; readonly ports: PortRange | undefined; readonly text: string }
  | { readonly kind: 'name'; readonly name: string; readonly ports: PortRange | undefined; readonly text: string }
  | { readonly kind: 'port'; readonly ports: PortRange; readonly text: string };

export type NetPolicy =
  | { readonly kind: 'all' }
  | { readonly kind: 'none' }
  | { readonly kind: 'allow'; readonly rules: readonly NetRule[]; readonly resolvers: readonly IpAddr[]; readonly text: string };

export const DNS_PORT = 53;

/** A policy's text: "all", "none", or destinations separated by commas or white space. */
export function parseNetPolicy(text: string, where = '--allow-net'): NetPolicy {
  const t = text.trim();
  if (t === 'all') return { kind: 'all' };
  if (t === 'none') return { kind: 'none' };
  const items = t.split(/[\s,]+/).filter((s) => s !== '');
  if (items.length === 0) throw policyError(where, text, 'is empty: give all, none or destinations');
  const rules: NetRule[] = [];
  const resolvers: IpAddr[] = [];
  for (const item of items) {
    if (item.startsWith('dns=')) {
      const a = parseIp(item.slice(4));
      if (a === undefined) throw policyError(where, item, 'names no IP address after dns=');
      resolvers.push(a);
      continue;
    }
    // "localhost" means loopback, which a name otherwise never grants (judge).
    const local = /^localhost(?::(.+))?$/.exec(item);
    if (local !== null) {
      const port = local[1];
      for (const lo of ['127.0.0.0/8', '::1']) {
        const dest = port === undefined ? lo : lo.includes(':') ? `[${lo}]:${port}` : `${lo}:${port}`;
        rules.push({ ...parseDest(dest, where), text: item });
      }
      continue;
    }
    rules.push(parseDest(item, where));
  }
  return { kind: 'allow', rules, resolvers, text: items.join(',') };
}

function policyError(where: string, item: string, why: string): StockadeError {
  return new StockadeError('USAGE', `${where}: ${JSON.stringify(item)} ${why}`, { field: where });
}

/** One destination of --allow-net: HOST[:PORT], CIDR[:PORT], [IPV6-OR-CIDR]:PORT, N or N-M. */
export function parseDest(item: string, where = '--allow-net'): NetRule {
  if (/^\d+(?:-\d+)?$/.test(item)) return { kind: 'port', ports: parsePorts(item, where, item), text: item };
  let host = item;
  let portText: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(.+))?$/.exec(item);
  if (bracket !== null) {
    host = bracket[1] ?? '';
    portText = bracket[2];
  } else if ((item.match(/:/g) ?? []).length === 1) {
    const at = item.indexOf(':');
    host = item.slice(0, at);
    portText = item.slice(at + 1);
  }
  const ports = portText === undefined ? undefined : parsePorts(portText, where, item);
  const slash = host.indexOf('/');
  if (slash >= 0) {
    const a = parseIp(host.slice(0, slash));
    const bitsText = host.slice(slash + 1);
    const bits = /^\d{1,3}$/.test(bitsText) ? Number(bitsText) : -1;
    if (a === undefined || bits < 0 || bits > (a.v6 ? 128 : 32)) throw policyError(where, item, 'is not a CIDR block (ADDR/BITS)');
    return { kind: 'cidr', v6: a.v6, net: maskOf(a.value, bits, a.v6), bits, ports, text: item };
  }
  const a = parseIp(host);
  if (a !== undefined) return { kind: 'cidr', v6: a.v6, net: a.value, bits: a.v6 ? 128 : 32, ports, text: item };
  if (!isHostName(host)) throw policyError(where, item, 'is not a host name, an address, a CIDR block or a port');
  return { kind: 'name', name: host.toLowerCase().replace(/\.$/, ''), ports, text: item };
}

function parsePorts(text: string, where: string, item: string): PortRange {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  const lo = m === null ? -1 : Number(m[1]);
  const hi = m === null ? -1 : m[2] === undefined ? lo : Number(m[2]);
  if (lo < 1 || hi > 65535 || hi < lo) throw policyError(where, item, 'has no port or range of ports within 1-65535');
  return { lo, hi };
}

/** RFC 1123 names: letters, digits and hyphens in dot-separated labels of at most 63. */
function isHostName(s: string): boolean {
  const n = s.replace(/\.$/, '');
  return n.length > 0 && n.length <= 253 && n.split('.').every((l) => /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?$/.test(l)) && !/^\d+$/.test(n.split('.').pop() ?? '');
}

function maskOf(value: bigint, bits: number, v6: boolean): bigint {
  const width = v6 ? 128n : 32n;
  const keep = bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << (width - BigInt(bits));
  return value & keep;
}

/** An IPv4 or IPv6 address in its text form (no zone), or undefined. */
export function parseIp(s: string): IpAddr | undefined {
  const v4 = parseV4(s);
  if (v4 !== undefined) return { v6: false, value: v4 };
  if (!/^[0-9A-Fa-f:.]+$/.test(s) || !s.includes(':')) return undefined;
  let text = s;
  // A dotted IPv4 tail (::ffff:1.2.3.4) is two 16-bit groups.
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted !== null) {
    const x = parseV4(dotted[1] ?? '');
    if (x === undefined) return undefined;
    text = `${s.slice(0, dotted.index)}${(x >> 16n).toString(16)}:${(x & 0xffffn).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const group = (h: string): bigint[] | undefined => {
    if (h === '') return [];
    const out: bigint[] = [];
    for (const g of h.split(':')) {
      if (!/^[0-9A-Fa-f]{1,4}$/.test(g)) return undefined;
      out.push(BigInt(`0x${g}`));
    }
    return out;
  };
  const head = group(halves[0] ?? '');
  const rest = halves.length === 2 ? group(halves[1] ?? '') : [];
  if (head === undefined || rest === undefined) return undefined;
  const right = rest;
  const fill = 8 - head.length - right.length;
  if (halves.length === 1 ? fill !== 0 : fill < 1) return undefined;
  const words = [...head, ...Array<bigint>(fill).fill(0n), ...right];
  const value = words.reduce((acc, w) => (acc << 16n) | w, 0n);
  // ::ffff:a.b.c.d is IPv4 on an IPv6 socket: matched as the IPv4 address it is.
  if (value >> 32n === 0xffffn) return { v6: false, value: value & 0xffffffffn };
  return { v6: true, value };
}

function parseV4(s: string): bigint | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (m === null) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n);
}

export function formatIp(a: IpAddr): string {
  if (!a.v6) return [24n, 16n, 8n, 0n].map((s) => ((a.value >> s) & 0xffn).toString()).join('.');
  const words = [...Array(8).keys()].map((i) => Number((a.value >> BigInt(112 - 16 * i)) & 0xffffn));
  // The longest run of zero words, at least two, becomes "::" (RFC 5952).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j === i ? i + 1 : j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

export function formatEndpoint(a: IpAddr, port: number): string {
  return a.v6 ? `[${formatIp(a)}]:${port}` : `${formatIp(a)}:${port}`;
}

export function isLoopback(a: IpAddr): boolean {
  return a.v6 ? a.value === 1n : a.value >> 24n === 127n;
}

/** The unspecified address (0.0.0.0, ::): a connect there reaches the host's own loopback. */
export function isUnspecified(a: IpAddr): boolean {
  return a.value === 0n;
}

function inRange(p: number, r: PortRange | undefined): boolean {
  return r === undefined || (p >= r.lo && p <= r.hi);
}

function inCidr(a: IpAddr, r: { v6: boolean; net: bigint; bits: number }): boolean {
  return a.v6 === r.v6 && maskOf(a.value, r.bits, a.v6) === r.net;
}

/** What the names of a policy resolve to now: the addresses of each name's unexpired records. */
export type NameLookup = (name: string) => readonly IpAddr[];

/** A decision: allowed, with the rule that allowed it; or refused, with the reason (for the log). */
export type Verdict = { readonly allowed: true; readonly rule: string } | { readonly allowed: false; readonly rule: string };

/**
 * Whether `policy` lets the workload reach (addr, port). `resolvers` are the container's own
 * (its resolv.conf), used when the policy names none. `lookup` says what each name resolves to
 * now; a name never grants loopback or the unspecified address, so a record rebound there
 * reaches nothing the policy did not list itself.
 */
export function judge(policy: NetPolicy, addr: IpAddr, port: number, resolvers: readonly IpAddr[], lookup: NameLookup): Verdict {
  if (policy.kind === 'all') return { allowed: true, rule: 'all' };
  const local = isLoopback(addr) || isUnspecified(addr);
  if (policy.kind === 'none') return local && !isUnspecified(addr) ? { allowed: true, rule: 'none (loopback)' } : { allowed: false, rule: 'none (loopback only)' };
  for (const r of policy.rules) {
    if (r.kind === 'port' && inRange(port, r.ports) && !local) return { allowed: true, rule: r.text };
    if (r.kind === 'cidr' && inRange(port, r.ports) && inCidr(addr, r)) return { allowed: true, rule: r.text };
  }
  const dns = policy.resolvers.length > 0 ? policy.resolvers : resolvers;
  if (port === DNS_PORT && dns.some((d) => d.v6 === addr.v6 && d.value === addr.value)) return { allowed: true, rule: `dns=${formatIp(addr)}` };
  if (!local) {
    for (const r of policy.rules) {
      if (r.kind !== 'name' || !inRange(port, r.ports)) continue;
      if (lookup(r.name).some((a) => a.v6 === addr.v6 && a.value === addr.value)) return { allowed: true, rule: r.text };
    }
  }
  return { allowed: false, rule: `not in ${policy.text}` };
}

/** The names a policy resolves (none for all and none). */
export function policyNames(policy: NetPolicy): string[] {
  return policy.kind === 'allow' ? [...new Set(policy.rules.flatMap((r) => (r.kind === 'name' ? [r.name] : [])))] : [];
}

/** The resolvers a resolv.conf names (its nameserver lines). */
export function resolvConfServers(text: string): IpAddr[] {
  const out: IpAddr[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    const a = m === null ? undefined : parseIp((m[1] ?? '').replace(/%.*$/, ''));
    if (a !== undefined) out.push(a);
  }
  return out;
}
