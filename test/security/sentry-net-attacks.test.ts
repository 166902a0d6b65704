// Attacks on the sentry's network wall, run as the workload of `stockade do --allow-net ...`: an address rewritten after the check, an fd swapped under it, DNS rebinding, a record that changes, unix paths and abstract names out of the container, raw, packet and netlink sockets.
//
// The attacker is test/fixtures/net-attack.c, built here with gcc -static (under `do` the host
// root is the container's root, so the binary is visible inside); the peers it reaches are
// listeners and a DNS server of the test's own (test/helpers/net-peers.ts), on loopback and, for
// addresses that are not loopback, in a network namespace the test makes with ip netns and veth.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sentryNative } from '../../src/native/addon';
import { Runtime, has, integrationSkip, json, type Result } from '../integration/harness';
import { Peers } from '../helpers/net-peers';
import { makeVethNetns, type VethNetns } from '../helpers/net-scope';
import { NET_ATTACK, buildNetAttack, netAttackCompilerSkip } from '../helpers/net-attack';

const ATTACK = NET_ATTACK;

function notificationSkip(): string | undefined {
  const sizes = sentryNative().notifSizes();
  return typeof sizes === 'number' ? `seccomp user notification is missing here (SECCOMP_GET_NOTIF_SIZES: ${sizes})` : undefined;
}

const skip = integrationSkip() ?? netAttackCompilerSkip() ?? notificationSkip();
const netnsSkip = skip ?? (has('ip') ? undefined : 'the non-loopback tests make a network namespace with ip (iproute2), which is not installed');

const buildAttack = buildNetAttack;

/** `stockade do ARGS -- CMD...`; with trace, the sentry's records come on stderr. */
function sandbox(rt: Runtime, doArgs: readonly string[], cmd: readonly string[], opts: { trace?: boolean } = {}): Result {
  const before = process.env['STOCKADE_SENTRY_TRACE'];
  if (opts.trace === true) process.env['STOCKADE_SENTRY_TRACE'] = '1';
  else delete process.env['STOCKADE_SENTRY_TRACE'];
  try {
    return rt.run(['do', ...doArgs, '--', ...cmd], { timeout: 120_000 });
  } finally {
    if (before === undefined) delete process.env['STOCKADE_SENTRY_TRACE'];
    else process.env['STOCKADE_SENTRY_TRACE'] = before;
  }
}

function report<T>(r: Result, what: string): T {
  assert.equal(r.signal, null, `${what}: stockade was killed (${r.signal ?? ''}); stderr: ${r.stderr.slice(-2000)}`);
  assert.equal(r.status, 0, `${what}: exit ${r.status ?? ''}; stdout: ${r.stdout.slice(0, 1000)} stderr: ${r.stderr.slice(-2000)}`);
  return json<T>(r.stdout.trim().split('\n').pop() ?? '');
}

interface Race { iters: number; good: number; bad: number; other: number; errors: Record<string, number> }
interface Connected { ok: boolean; peer?: number; error?: string; first?: string }

/** The sentry's network policy through `do --allow-net`: the host's network, the sentry's wall. */
const allow = (...dests: string[]): string[] => ['--isolation', 'sentry', ...dests.flatMap((d) => ['--allow-net', d])];

const ITERS = '3000';

describe('the sentry\'s network wall', { skip }, () => {
  let rt: Runtime;
  let peers: Peers;
  let good = 0;
  let bad = 0;
  let goodUdp = 0;
  let badUdp = 0;

  before(async () => {
    buildAttack();
    rt = new Runtime();
    peers = new Peers();
    good = await peers.tcp('127.0.0.1');
    bad = await peers.tcp('127.0.0.1');
    goodUdp = await peers.udp('127.0.0.1');
    badUdp = await peers.udp('127.0.0.1');
  });

  after(() => {
    peers.stop();
    rt.cleanup();
  });

  test('a connect whose address a second thread rewrites after the check reaches only the address checked', () => {
    const r = report<Race>(sandbox(rt, allow(`127.0.0.1:${good}`), [ATTACK, 'race-connect', '127.0.0.1', String(good), '127.0.0.1', String(bad), ITERS]), 'race-connect');
    assert.equal(r.bad, 0, `connected to the denied port ${r.bad} times: ${JSON.stringify(r)}`);
    assert.ok(r.good > 0, `the allowed port was never reached: ${JSON.stringify(r)}`);
    // The only refusals are the policy's, of the reads that caught the denied address.
    assert.deepEqual(Object.keys(r.errors).filter((e) => e !== 'EPERM'), [], JSON.stringify(r));
  });

  test('an fd swapped for another socket after the check: the sentry connected the socket it took', () => {
    const r = report<Race>(sandbox(rt, allow(`127.0.0.1:${good}`), [ATTACK, 'race-fdswap', '127.0.0.1', String(good), '127.0.0.1', String(bad), ITERS]), 'race-fdswap');
    assert.equal(r.bad, 0, `a socket reached the denied port ${r.bad} times: ${JSON.stringify(r)}`);
  });

  test('sendto and sendmsg whose address is rewritten after the check send only where the policy allows', async () => {
    const before = (await peers.counts()).counts[`127.0.0.1:${badUdp}`] ?? 0;
    const to = report<Race>(sandbox(rt, allow(`127.0.0.1:${goodUdp}`), [ATTACK, 'race-sendto', '127.0.0.1', String(goodUdp), '127.0.0.1', String(badUdp), ITERS]), 'race-sendto');
    const msg = report<Race>(sandbox(rt, allow(`127.0.0.1:${goodUdp}`), [ATTACK, 'race-sendmsg', '127.0.0.1', String(goodUdp), '127.0.0.1', String(badUdp), ITERS]), 'race-sendmsg');
    // Datagrams on loopback arrive before the sandbox is gone; give the peer a moment to count them.
    await new Promise((r) => setTimeout(r, 300));
    const c = (await peers.counts()).counts;
    assert.equal((c[`127.0.0.1:${badUdp}`] ?? 0) - before, 0, `the denied port got datagrams: ${JSON.stringify({ to, msg, c })}`);
    assert.ok((c[`127.0.0.1:${goodUdp}`] ?? 0) > 0, `the allowed port got nothing: ${JSON.stringify({ to, msg, c })}`);
    assert.ok(to.good > 0 && msg.good > 0, JSON.stringify({ to, msg }));
  });

  test('allowed and denied: TCP connect blocking and not, UDP sendto, with the errno a local firewall gives', () => {
    const a = allow(`127.0.0.1:${good}`, `127.0.0.1:${goodUdp}`);
    const ok = report<Connected>(sandbox(rt, a, [ATTACK, 'connect', '127.0.0.1', String(good)]), 'connect');
    assert.deepEqual(ok, { ok: true, peer: good });
    const no = report<Connected>(sandbox(rt, a, [ATTACK, 'connect', '127.0.0.1', String(bad)]), 'connect denied');
    assert.deepEqual(no, { ok: false, error: 'EPERM' });
    // A non-blocking socket keeps its semantics: EINPROGRESS, then the result by SO_ERROR.
    const nb = report<Connected>(sandbox(rt, a, [ATTACK, 'connect-nb', '127.0.0.1', String(good)]), 'connect-nb');
    assert.equal(nb.ok, true, JSON.stringify(nb));
    assert.ok(nb.first === 'EINPROGRESS' || nb.first === '0', JSON.stringify(nb));
    // A connect refused by the peer leaves the socket as the kernel's would: a second connect
    // tries again (ECONNREFUSED again, not ECONNABORTED) and a connected one says EISCONN.
    const closed = report<Record<string, string>>(sandbox(rt, allow('127.0.0.1:1'), [ATTACK, 'connect-twice', '127.0.0.1', '1']), 'connect-twice refused');
    assert.deepEqual(closed, { first: 'ECONNREFUSED', second: 'ECONNREFUSED' });
    const twice = report<Record<string, string>>(sandbox(rt, a, [ATTACK, 'connect-twice', '127.0.0.1', String(good)]), 'connect-twice');
    assert.deepEqual(twice, { first: '0', second: 'EISCONN' });
    const udpOk = report<Connected>(sandbox(rt, a, [ATTACK, 'udp', '127.0.0.1', String(goodUdp)]), 'udp');
    assert.deepEqual(udpOk, { ok: true });
    const udpNo = report<Connected>(sandbox(rt, a, [ATTACK, 'udp', '127.0.0.1', String(badUdp)]), 'udp denied');
    assert.deepEqual(udpNo, { ok: false, error: 'EPERM' });
    // IPv4 UDP sends to an AF_UNSPEC address as to AF_INET: judged as such.
    const unspecNo = report<Connected>(sandbox(rt, a, [ATTACK, 'udp-unspec', '127.0.0.1', String(badUdp)]), 'udp AF_UNSPEC denied');
    assert.deepEqual(unspecNo, { ok: false, error: 'EPERM' });
    const unspecOk = report<Connected>(sandbox(rt, a, [ATTACK, 'udp-unspec', '127.0.0.1', String(goodUdp)]), 'udp AF_UNSPEC allowed');
    assert.deepEqual(unspecOk, { ok: true });
  });

  test('IPv6: a CIDR of its own, and an IPv4-mapped address judged as the IPv4 address it is', async () => {
    const six = await peers.tcp('::1');
    const a = allow(`[::1]:${six}`, `127.0.0.1:${good}`);
    assert.deepEqual(report<Connected>(sandbox(rt, a, [ATTACK, 'connect6', '::1', String(six)]), 'connect6'), { ok: true });
    assert.deepEqual(report<Connected>(sandbox(rt, allow(`127.0.0.1:${good}`), [ATTACK, 'connect6', '::1', String(six)]), 'connect6 denied'), { ok: false, error: 'EPERM' });
    // ::ffff:127.0.0.1 on an IPv6 socket is 127.0.0.1 on the wire: the IPv4 rule decides.
    assert.deepEqual(report<Connected>(sandbox(rt, a, [ATTACK, 'connect6', '::ffff:127.0.0.1', String(good)]), 'mapped'), { ok: true });
    assert.deepEqual(report<Connected>(sandbox(rt, a, [ATTACK, 'connect6', '::ffff:127.0.0.1', String(bad)]), 'mapped denied'), { ok: false, error: 'EPERM' });
  });

  test('each refusal is a --log line (JSON) and a trace record naming the address and the rule', () => {
    const r = sandbox(rt, allow(`127.0.0.1:${good}`), [ATTACK, 'connect', '127.0.0.1', String(bad)], { trace: true });
    assert.deepEqual(report<Connected>(r, 'connect'), { ok: false, error: 'EPERM' });
    const lines = rt.logLines() as ({ level: string; msg: string; address?: string; rule?: string; syscall?: string; errno?: string })[];
    const line = lines.find((l) => l.address === `127.0.0.1:${bad}`);
    assert.ok(line !== undefined, `no --log line names 127.0.0.1:${bad}: ${JSON.stringify(lines.slice(-5))}`);
    assert.equal(line.level, 'warning');
    assert.equal(line.syscall, 'connect');
    assert.equal(line.errno, 'EPERM');
    assert.match(line.rule ?? '', new RegExp(`not in 127\\.0\\.0\\.1:${good}`));
    const traced = r.stderr.split('\n').filter((l) => l.includes('"syscall":"connect"') && l.includes('denied: EPERM'));
    assert.ok(traced.some((l) => l.includes(`127.0.0.1:${bad}`)), `no trace record of the refusal: ${r.stderr.slice(-2000)}`);
  });

  test('--network host without --allow-net is today\'s wall: everything the host reaches (policy all)', () => {
    const r = report<Connected>(sandbox(rt, ['--isolation', 'sentry', '--network', 'host'], [ATTACK, 'connect', '127.0.0.1', String(bad)]), 'connect all');
    assert.deepEqual(r, { ok: true, peer: bad });
  });

  test('raw, packet and netlink sockets other than route stay refused; SCTP and MPTCP under a policy', () => {
    type Sockets = { results: Record<string, string> };
    const r = report<Sockets>(sandbox(rt, allow(`127.0.0.1:${good}`), [ATTACK, 'sockets']), 'sockets').results;
    assert.equal(r['packet'], 'EPERM');
    assert.equal(r['packet_dgram'], 'EPERM');
    assert.equal(r['raw_inet'], 'EPERM');
    assert.equal(r['raw_icmp'], 'EPERM');
    assert.equal(r['netlink_route'], '0', 'route dumps (ip addr, getifaddrs) keep working');
    for (const p of ['netlink_audit', 'netlink_netfilter', 'netlink_uevent', 'netlink_xfrm', 'netlink_generic', 'netlink_sock_diag']) {
      assert.equal(r[p], 'EPROTONOSUPPORT', p);
    }
    assert.equal(r['mptcp'], 'EPROTONOSUPPORT');
    assert.equal(r['sctp'], 'EPROTONOSUPPORT');
    assert.equal(r['tcp'], '0');
    assert.equal(r['unix'], '0');
  });

  test('source routes, which send to their first hop and not to the address checked, are refused', () => {
    const r = report<Record<string, string>>(sandbox(rt, allow(`127.0.0.1:${goodUdp}`), [ATTACK, 'source-route', '127.0.0.1', String(goodUdp)]), 'source-route');
    assert.deepEqual(r, { ip_options: 'EPERM', ipv6_rthdr: 'EPERM', retopts: 'EPERM' });
  });

  describe('unix sockets', () => {
    let dir = '';
    let server: Server | undefined;
    let abstract: ChildProcess | undefined;
    const abstractName = `stockade-net-test-${process.pid}`;

    before(async () => {
      // A socket of the host's, in a directory the container does not have (do gives it a fresh /tmp).
      dir = mkdtempSync(join(tmpdir(), 'sn-unix-'));
      server = createServer((c) => c.end('HOST-SOCKET'));
      await new Promise<void>((res) => server?.listen(join(dir, 's.sock'), res));
      // Node cannot name an abstract socket (libuv takes the name up to its first NUL): python can.
      if (!has('python3')) return;
      abstract = spawn('python3', ['-c', [
        'import socket, sys',
        's = socket.socket(socket.AF_UNIX)',
        `s.bind('\\0${abstractName}')`,
        's.listen(16)',
        'print("ready", flush=True)',
        'while True:',
        '    c, _ = s.accept(); c.sendall(b"HOST-ABSTRACT"); c.close()',
      ].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((res) => abstract?.stdout?.once('data', () => res()));
    });

    after(() => {
      server?.close();
      abstract?.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });

    test('a unix socket path through a symlink out of the root reaches nothing of the host', () => {
      // The workload makes the links in its own /tmp, then connects through them. The sentry
      // resolves them in the container's root; its own mount namespace (the host's) has the socket.
      const sock = join(dir, 's.sock');
      const r = sandbox(rt, allow(`127.0.0.1:${good}`), ['/bin/sh', '-c', [
        `${ATTACK} symlink ${sock} /tmp/abs >/dev/null`,
        `${ATTACK} symlink ../../../../../../..${sock} /tmp/rel >/dev/null`,
        `${ATTACK} symlink /proc/1/root${sock} /tmp/magic >/dev/null`,
        `for p in /tmp/abs /tmp/rel /tmp/magic ${sock}; do ${ATTACK} unix $p; done`,
      ].join('; ')]);
      assert.equal(r.status, 0, r.stderr);
      const results = r.stdout.trim().split('\n').map((l) => json<{ ok: boolean; data?: string; error?: string }>(l));
      assert.equal(results.length, 4, r.stdout);
      for (const x of results) assert.equal(x.ok, false, `reached the host's socket: ${r.stdout}`);
    });

    test('a unix peer of a connect or send the sentry performs under a policy sees the caller\'s uid and gid, not the sentry\'s root', () => {
      interface Cred { pid: number; uid: number; gid: number }
      interface Peer { child: number; status: number; uid: number; gid: number; peercred: Cred; passcred: Cred }
      const user = ['--user', '1000:1000'];
      const n = report<Peer>(sandbox(rt, ['--isolation', 'namespaces', '--network', 'host', ...user], [ATTACK, 'peercred']), 'peercred (namespaces)');
      const s = report<Peer>(sandbox(rt, [...allow(`127.0.0.1:${good}`), ...user], [ATTACK, 'peercred']), 'peercred (sentry)');
      const outcomes = `namespaces ${JSON.stringify(n)}, sentry ${JSON.stringify(s)}`;
      assert.equal(n.status, 0, outcomes);
      assert.equal(s.status, 0, outcomes);
      const ids = (c: Cred): number[] => [c.uid, c.gid];
      // The uid a root daemon trusts: the caller's, as the kernel gives it at the namespaces level.
      assert.deepEqual(ids(n.peercred), [1000, 1000], outcomes);
      assert.deepEqual(ids(s.peercred), ids(n.peercred), outcomes);
      assert.deepEqual(ids(s.passcred), ids(n.passcred), outcomes);
      assert.equal(n.peercred.pid, n.child, outcomes);
      // The kernel records the connecting task's pid, and the sentry is in no pid namespace of the
      // container's: the pid a peer there reads is 0, never another process's (docs/design/sentry.md).
      assert.deepEqual([s.peercred.pid, s.passcred.pid], [0, 0], outcomes);
    });

    test('an abstract unix name of the host\'s network namespace is refused under a policy', { skip: has('python3') ? undefined : 'the abstract listener is python3\'s' }, () => {
      // The name is there, and the host's network reaches it (policy all: the wall of today).
      const all = report<{ ok: boolean; data?: string }>(
        sandbox(rt, ['--isolation', 'sentry', '--network', 'host'], [ATTACK, 'unix', `@${abstractName}`]), 'abstract, all');
      assert.deepEqual(all, { ok: true, data: 'HOST-ABSTRACT' });
      const r = report<{ ok: boolean; data?: string; error?: string }>(
        sandbox(rt, allow(`127.0.0.1:${good}`), [ATTACK, 'unix', `@${abstractName}`]), 'abstract');
      assert.deepEqual(r, { ok: false, error: 'EPERM' });
    });
  });

  describe('names', () => {
    let DNS = '';
    let dnsPeers: Peers;

    before(async () => {
      dnsPeers = new Peers();
      DNS = await dnsPeers.dns([{ 'rebind.test': { a: ['127.0.0.1'], ttl: 60 } }]);
    });

    after(() => dnsPeers.stop());

    test('DNS rebinding: an allowed name that resolves to loopback does not open loopback', async () => {
      const steps = [{ resolve: 'rebind.test' }, { connect: '127.0.0.1', port: good }];
      const r = sandbox(rt, allow(`rebind.test:${good}`, `dns=${DNS}`), [process.execPath, '-e', WORKLOAD, DNS, JSON.stringify(steps)]);
      const out = report<Step[]>(r, 'rebind');
      assert.deepEqual(out[0], { resolved: ['127.0.0.1'] }, 'the workload resolved through the resolver its policy names');
      assert.deepEqual(out[1], { ip: '127.0.0.1', ok: false, error: 'EPERM' });
      // A name never grants loopback: the sentry need not even ask (the workload's one query).
      assert.equal((await dnsPeers.counts()).queries, 1);
    });
  });
});

/** A node program run as the workload: steps of resolve (through argv[1]'s resolver), connect and sleep; prints what each gave. */
const WORKLOAD = String.raw`
const dns = require('dns'), net = require('net');
const r = new dns.promises.Resolver(); r.setServers([process.argv[1]]);
const conn = (ip, port) => new Promise((res) => {
  const c = net.connect(port, ip);
  c.on('data', (d) => { res({ ip, ok: true, data: String(d).trim() }); c.destroy(); });
  c.on('error', (e) => res({ ip, ok: false, error: e.code }));
});
(async () => {
  const out = [];
  for (const s of JSON.parse(process.argv[2])) {
    if (s.resolve) { try { out.push({ resolved: await r.resolve4(s.resolve) }); } catch (e) { out.push({ resolveError: e.code }); } }
    else if (s.connect) out.push(await conn(s.connect, s.port));
    else if (s.sleep) await new Promise((x) => setTimeout(x, s.sleep));
  }
  console.log(JSON.stringify(out));
})();
`;

type Step = { resolved?: string[]; resolveError?: string; ip?: string; ok?: boolean; data?: string; error?: string };

/**
 * Addresses that are not loopback: a network namespace of the test's own, joined to the host's by
 * a veth pair (host side .1, the namespace's .2 and .3), with the peers listening inside.
 */
describe('the sentry\'s network wall, to addresses that are not loopback', { skip: netnsSkip }, () => {
  let net = '';
  let DNS = '';
  let rt: Runtime;
  let veth: VethNetns | undefined;
  let inside: Peers;
  let dns: Peers;
  let port = 0;
  let udp = 0;
  let other = 0;

  before(async () => {
    buildAttack();
    rt = new Runtime();
    veth = makeVethNetns();
    net = veth.net;
    inside = new Peers(veth.ns);
    port = await inside.tcp('0.0.0.0');
    other = await inside.tcp('0.0.0.0');
    udp = await inside.udp(`${net}.2`);
    dns = new Peers();
    DNS = await dns.dns([{ 'moving.test': { a: [`${net}.2`], ttl: 1 } }, { 'moving.test': { a: [`${net}.3`], ttl: 1 } }]);
  });

  after(() => {
    inside?.stop();
    dns?.stop();
    veth?.remove();
    rt?.cleanup();
  });

  test('CIDR, host:port and port ranges: allowed and denied TCP and UDP', async () => {
    const a = allow(`${net}.2:${port}`, `${net}.0/24:${udp}`, `${other}-${other}`);
    const cases: [string, string, string, Connected][] = [
      ['connect', `${net}.2`, String(port), { ok: true, peer: port }],
      ['connect', `${net}.3`, String(port), { ok: false, error: 'EPERM' }],
      ['connect', `${net}.3`, String(other), { ok: true, peer: other }],
      ['udp', `${net}.2`, String(udp), { ok: true }],
      ['udp', `${net}.2`, String(udp + 1 === port ? udp + 2 : udp + 1), { ok: false, error: 'EPERM' }],
    ];
    for (const [cmd, host, p, want] of cases) {
      assert.deepEqual(report<Connected>(sandbox(rt, a, [ATTACK, cmd, host, p]), `${cmd} ${host}:${p}`), want, `${cmd} ${host}:${p}`);
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await inside.counts()).counts[`${net}.2:${udp}`], 1);
  });

  test('a blocking connect that takes seconds does not stall the sentry: the caller\'s other threads are served meanwhile', () => {
    // .9 is on the veth's network and no one has it: ARP gives up after some 3 s.
    const r = report<{ opens_ms: number; connect: string; connect_ms: number }>(
      sandbox(rt, allow(`${net}.9:${port}`), [ATTACK, 'stall', `${net}.9`, String(port)]), 'stall');
    assert.ok(r.connect_ms > 1000, `the connect did not wait: ${JSON.stringify(r)}`);
    assert.ok(['EHOSTUNREACH', 'ETIMEDOUT'].includes(r.connect), JSON.stringify(r));
    assert.ok(r.opens_ms < r.connect_ms / 2 && r.opens_ms < 1000, `50 opens waited for the connect: ${JSON.stringify(r)}`);
  });

  test('an allowed name whose record changes: the old address is refused once its TTL is over, the new one allowed', () => {
    const steps = [
      { resolve: 'moving.test' },
      { connect: `${net}.2`, port },
      { connect: `${net}.3`, port },
      { resolve: 'next.control.test' },
      { sleep: 1500 },
      { resolve: 'moving.test' },
      { connect: `${net}.3`, port },
      { connect: `${net}.2`, port },
    ];
    const out = report<Step[]>(sandbox(rt, allow(`moving.test:${port}`, `dns=${DNS}`), [process.execPath, '-e', WORKLOAD, DNS, JSON.stringify(steps)]), 'moving');
    assert.deepEqual(out[0], { resolved: [`${net}.2`] });
    assert.equal(out[1]?.ok, true, JSON.stringify(out));
    assert.deepEqual(out[2], { ip: `${net}.3`, ok: false, error: 'EPERM' });
    assert.deepEqual(out[4], { resolved: [`${net}.3`] });
    assert.equal(out[5]?.ok, true, JSON.stringify(out));
    assert.deepEqual(out[6], { ip: `${net}.2`, ok: false, error: 'EPERM' });
  });
});
