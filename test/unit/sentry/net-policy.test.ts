// The network policy: parsing --allow-net and the annotation, matching addresses, the sentry's DNS messages and the socket addresses it decodes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatEndpoint, formatIp, judge, parseDest, parseIp, parseNetPolicy, policyNames, resolvConfServers, type IpAddr, type NetPolicy,
} from '../../../src/sentry/net-policy';
import { dnsQuery, parseAnswer } from '../../../src/sentry/dns';
import { decodeSockaddr, encodeSockaddr, unixSockaddr } from '../../../src/sentry/sockaddr';

const ip = (s: string): IpAddr => {
  const a = parseIp(s);
  assert.ok(a !== undefined, s);
  return a;
};

test('addresses: IPv4, IPv6 with ::, dotted tails and IPv4-mapped ones taken as IPv4; bad ones are none', () => {
  assert.deepEqual(parseIp('10.1.2.3'), { v6: false, value: 0x0a010203n });
  assert.deepEqual(parseIp('::1'), { v6: true, value: 1n });
  assert.deepEqual(parseIp('2001:db8::1'), { v6: true, value: (0x20010db8n << 96n) | 1n });
  assert.deepEqual(parseIp('::ffff:127.0.0.1'), { v6: false, value: 0x7f000001n });
  assert.deepEqual(parseIp('64:ff9b::1.2.3.4'), { v6: true, value: (0x64ff9bn << 96n) | 0x01020304n });
  for (const bad of ['256.1.1.1', '1.2.3', '1::2::3', '1:2:3:4:5:6:7:8:9', 'g::1', '', 'example.com', '1.2.3.4.5']) {
    assert.equal(parseIp(bad), undefined, bad);
  }
  assert.equal(formatIp(ip('2001:db8:0:0:1:0:0:1')), '2001:db8::1:0:0:1');
  assert.equal(formatIp(ip('::')), '::');
  assert.equal(formatEndpoint(ip('::1'), 53), '[::1]:53');
  assert.equal(formatEndpoint(ip('10.0.0.1'), 80), '10.0.0.1:80');
});

test('destinations: HOST[:PORT], CIDR[:PORT], [IPV6]:PORT, ports N and N-M', () => {
  assert.deepEqual(parseDest('example.com'), { kind: 'name', name: 'example.com', ports: undefined, text: 'example.com' });
  assert.deepEqual(parseDest('Example.COM.:443'), { kind: 'name', name: 'example.com', ports: { lo: 443, hi: 443 }, text: 'Example.COM.:443' });
  assert.deepEqual(parseDest('10.0.0.0/8:8000-8080'), { kind: 'cidr', v6: false, net: 0x0a000000n, bits: 8, ports: { lo: 8000, hi: 8080 }, text: '10.0.0.0/8:8000-8080' });
  // The host bits of a CIDR block are dropped, as ip route does.
  assert.equal((parseDest('10.1.2.3/16') as { net: bigint }).net, 0x0a010000n);
  assert.deepEqual(parseDest('[2001:db8::/32]:443'), { kind: 'cidr', v6: true, net: 0x20010db8n << 96n, bits: 32, ports: { lo: 443, hi: 443 }, text: '[2001:db8::/32]:443' });
  assert.deepEqual(parseDest('2001:db8::1'), { kind: 'cidr', v6: true, net: (0x20010db8n << 96n) | 1n, bits: 128, ports: undefined, text: '2001:db8::1' });
  assert.deepEqual(parseDest('443'), { kind: 'port', ports: { lo: 443, hi: 443 }, text: '443' });
  assert.deepEqual(parseDest('1000-2000'), { kind: 'port', ports: { lo: 1000, hi: 2000 }, text: '1000-2000' });
});

test('bad destinations: a one-line error that names the destination', () => {
  for (const bad of ['0', '70000', '10-5', 'example.com:0', 'example.com:99999', 'example.com:http', '10.0.0.0/33', '1.2.3.4/x',
    'exa_mple!.com', '-bad.com', 'a..b', '[::1', 'x:1:2', 'dns=nothing', 'host:1-', '1.2.3.999']) {
    assert.throws(() => parseNetPolicy(bad, '--allow-net'), (e: Error) => e.message.startsWith('--allow-net: ') && e.message.includes(JSON.stringify(bad.replace(/^dns=.*/, bad))) && !e.message.includes('\n'), bad);
  }
  assert.throws(() => parseNetPolicy('  ', 'x'), /is empty/);
});

test('policies: all, none, and lists separated by commas or spaces with resolvers and localhost', () => {
  assert.deepEqual(parseNetPolicy('all'), { kind: 'all' });
  assert.deepEqual(parseNetPolicy(' none '), { kind: 'none' });
  const p = parseNetPolicy('example.com:443, 10.0.0.0/8 dns=1.1.1.1 localhost:8080');
  assert.equal(p.kind, 'allow');
  if (p.kind !== 'allow') return;
  assert.deepEqual(p.resolvers, [ip('1.1.1.1')]);
  assert.deepEqual(p.rules.map((r) => r.kind), ['name', 'cidr', 'cidr', 'cidr']);
  assert.deepEqual(policyNames(p), ['example.com']);
  assert.equal(p.text, 'example.com:443,10.0.0.0/8,dns=1.1.1.1,localhost:8080');
});

const none = (): readonly IpAddr[] => [];

test('judge: none is loopback only; all is everything', () => {
  const n: NetPolicy = { kind: 'none' };
  assert.equal(judge(n, ip('127.0.0.1'), 80, [], none).allowed, true);
  assert.equal(judge(n, ip('127.3.4.5'), 80, [], none).allowed, true);
  assert.equal(judge(n, ip('::1'), 80, [], none).allowed, true);
  assert.equal(judge(n, ip('10.0.0.1'), 80, [], none).allowed, false);
  // 0.0.0.0 reaches the host's own loopback services too: no exception for it.
  assert.equal(judge(n, ip('0.0.0.0'), 80, [], none).allowed, false);
  assert.equal(judge({ kind: 'all' }, ip('8.8.8.8'), 53, [], none).allowed, true);
});

test('judge: CIDRs with and without ports, port ranges (never loopback), the refusal names the policy', () => {
  const p = parseNetPolicy('10.0.0.0/8:443,192.168.1.7,2001:db8::/32,5000-5010');
  assert.deepEqual(judge(p, ip('10.9.9.9'), 443, [], none), { allowed: true, rule: '10.0.0.0/8:443' });
  assert.deepEqual(judge(p, ip('10.9.9.9'), 80, [], none), { allowed: false, rule: 'not in 10.0.0.0/8:443,192.168.1.7,2001:db8::/32,5000-5010' });
  assert.equal(judge(p, ip('192.168.1.7'), 1, [], none).allowed, true);
  assert.equal(judge(p, ip('192.168.1.8'), 1, [], none).allowed, false);
  assert.equal(judge(p, ip('2001:db8:1::5'), 22, [], none).allowed, true);
  assert.equal(judge(p, ip('2001:db9::5'), 22, [], none).allowed, false);
  assert.equal(judge(p, ip('93.184.216.34'), 5005, [], none).allowed, true);
  // A port range opens every address but the host's own: loopback only when listed.
  assert.equal(judge(p, ip('127.0.0.1'), 5005, [], none).allowed, false);
  assert.equal(judge(p, ip('0.0.0.0'), 5005, [], none).allowed, false);
  // An IPv4-mapped address on an IPv6 socket is the IPv4 address.
  assert.equal(judge(p, ip('::ffff:10.1.1.1'), 443, [], none).allowed, true);
});

test('judge: DNS goes to the policy\'s resolvers, else resolv.conf\'s, on port 53 only', () => {
  const named = parseNetPolicy('example.com,dns=9.9.9.9');
  assert.equal(judge(named, ip('9.9.9.9'), 53, [ip('8.8.8.8')], none).allowed, true);
  assert.equal(judge(named, ip('8.8.8.8'), 53, [ip('8.8.8.8')], none).allowed, false);
  assert.equal(judge(named, ip('9.9.9.9'), 80, [], none).allowed, false);
  const unnamed = parseNetPolicy('example.com');
  assert.equal(judge(unnamed, ip('8.8.8.8'), 53, [ip('8.8.8.8')], none).allowed, true);
  assert.equal(judge(unnamed, ip('1.1.1.1'), 53, [ip('8.8.8.8')], none).allowed, false);
  // A resolver on loopback (systemd-resolved's 127.0.0.53) is reachable on port 53 alone.
  assert.equal(judge(unnamed, ip('127.0.0.53'), 53, [ip('127.0.0.53')], none).allowed, true);
  assert.equal(judge(unnamed, ip('127.0.0.53'), 80, [ip('127.0.0.53')], none).allowed, false);
});

test('judge: a name allows what it resolves to now, at its ports, and never loopback (rebinding)', () => {
  const p = parseNetPolicy('api.example.com:443,localhost:8080');
  let answer: IpAddr[] = [ip('93.184.216.34')];
  const asked: string[] = [];
  const lookup = (name: string): readonly IpAddr[] => {
    asked.push(name);
    return answer;
  };
  assert.deepEqual(judge(p, ip('93.184.216.34'), 443, [], lookup), { allowed: true, rule: 'api.example.com:443' });
  assert.equal(judge(p, ip('93.184.216.34'), 80, [], lookup).allowed, false);
  assert.equal(judge(p, ip('93.184.216.35'), 443, [], lookup).allowed, false);
  answer = [ip('127.0.0.1'), ip('::1')];
  const before = asked.length;
  assert.equal(judge(p, ip('127.0.0.1'), 443, [], lookup).allowed, false);
  assert.equal(asked.length, before, 'loopback is never looked up');
  // localhost is loopback by name, listed: allowed.
  assert.deepEqual(judge(p, ip('127.0.0.1'), 8080, [], lookup), { allowed: true, rule: 'localhost:8080' });
  assert.deepEqual(judge(p, ip('::1'), 8080, [], lookup), { allowed: true, rule: 'localhost:8080' });
});

test('resolv.conf: the nameserver lines, zones dropped, anything else ignored', () => {
  assert.deepEqual(resolvConfServers('# c\nnameserver 10.0.0.2\nsearch x\nnameserver fe80::1%eth0\n nameserver   1.1.1.1 \nnameserver bogus\n'),
    [ip('10.0.0.2'), ip('fe80::1'), ip('1.1.1.1')]);
});

/** An answer as a resolver writes it: the question, then records (name as a pointer to the question's, or a name). */
function answerFor(q: Buffer, records: { type: number; ttl: number; data: Buffer; owner?: Buffer }[], rcode = 0): Buffer {
  const head = Buffer.from(q.subarray(0, 12));
  head.writeUInt16BE(0x8180 | rcode, 2);
  head.writeUInt16BE(records.length, 6);
  const parts = [head, q.subarray(12)];
  for (const r of records) {
    const rr = Buffer.alloc(10);
    rr.writeUInt16BE(r.type, 0);
    rr.writeUInt16BE(1, 2);
    rr.writeUInt32BE(r.ttl, 4);
    rr.writeUInt16BE(r.data.length, 8);
    parts.push(r.owner ?? Buffer.from([0xc0, 12]), rr, r.data);
  }
  return Buffer.concat(parts);
}

const label = (name: string): Buffer => Buffer.concat([...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);

test('DNS: a query and its answer; CNAMEs followed; the least TTL; another id or question is no answer', () => {
  const q = dnsQuery('api.example.com', 1, 0x1234);
  assert.equal(q.readUInt16BE(0), 0x1234);
  assert.equal(q.readUInt16BE(4), 1);
  const a = answerFor(q, [
    { type: 5, ttl: 300, data: label('edge.cdn.net') },
    { type: 1, ttl: 60, data: Buffer.from([93, 184, 216, 34]), owner: label('edge.cdn.net') },
    // A record for a name the chain does not lead to is not taken.
    { type: 1, ttl: 60, data: Buffer.from([6, 6, 6, 6]), owner: label('evil.net') },
  ]);
  assert.deepEqual(parseAnswer(a, 0x1234, 'api.example.com', 1), { addrs: [ip('93.184.216.34')], ttl: 60 });
  assert.equal(parseAnswer(a, 0x1235, 'api.example.com', 1), undefined);
  assert.equal(parseAnswer(a, 0x1234, 'other.example.com', 1), undefined);
  assert.equal(parseAnswer(q, 0x1234, 'api.example.com', 1), undefined, 'a query is no answer');
  assert.equal(parseAnswer(a.subarray(0, a.length - 3), 0x1234, 'api.example.com', 1), undefined, 'cut short');
  const nx = answerFor(q, [], 3);
  assert.deepEqual(parseAnswer(nx, 0x1234, 'api.example.com', 1), { addrs: [], ttl: 5 });
  const q6 = dnsQuery('v6.test', 28, 7);
  const a6 = answerFor(q6, [{ type: 28, ttl: 10, data: Buffer.from('20010db8000000000000000000000001', 'hex') }]);
  assert.deepEqual(parseAnswer(a6, 7, 'v6.test', 28), { addrs: [ip('2001:db8::1')], ttl: 10 });
  // A compression loop ends.
  const loop = Buffer.from(answerFor(q, []));
  loop.writeUInt16BE(1, 6);
  const looped = Buffer.concat([loop, Buffer.from([0xc0, loop.length]), Buffer.alloc(10)]);
  assert.equal(parseAnswer(looped, 0x1234, 'api.example.com', 1), undefined);
});

test('socket addresses: decoded as the kernel reads them; short ones EINVAL', () => {
  assert.deepEqual(decodeSockaddr(encodeSockaddr(ip('10.0.0.1'), 8080)), { kind: 'inet', ip: ip('10.0.0.1'), port: 8080 });
  assert.deepEqual(decodeSockaddr(encodeSockaddr(ip('2001:db8::1'), 443)), { kind: 'inet', ip: ip('2001:db8::1'), port: 443 });
  // sockaddr_in6 without sin6_scope_id (24 bytes) is what the kernel takes too.
  assert.deepEqual(decodeSockaddr(encodeSockaddr(ip('2001:db8::1'), 443).subarray(0, 24)), { kind: 'inet', ip: ip('2001:db8::1'), port: 443 });
  assert.equal(decodeSockaddr(encodeSockaddr(ip('2001:db8::1'), 443).subarray(0, 23)), -22);
  assert.equal(decodeSockaddr(encodeSockaddr(ip('10.0.0.1'), 1).subarray(0, 15)), -22);
  const mapped = encodeSockaddr(ip('2001:db8::1'), 80);
  Buffer.from('00000000000000000000ffff7f000001', 'hex').copy(mapped, 8);
  assert.deepEqual(decodeSockaddr(mapped), { kind: 'inet', ip: ip('127.0.0.1'), port: 80 });
  assert.deepEqual(decodeSockaddr(unixSockaddr('/run/x.sock') as Buffer), { kind: 'unix-path', path: '/run/x.sock' });
  assert.deepEqual(decodeSockaddr(Buffer.from([1, 0, 0, 0x61, 0x62])), { kind: 'unix-abstract', name: 'ab' });
  assert.deepEqual(decodeSockaddr(Buffer.from([1, 0])), { kind: 'unix-unnamed' });
  assert.deepEqual(decodeSockaddr(Buffer.from([0, 0, 1, 2])), { kind: 'unspec' });
  assert.equal(unixSockaddr('x'.repeat(108)), undefined);
});
