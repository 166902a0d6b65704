// The network policy as users give it: `do --allow-net` and a bundle's dev.stockade.network annotation, good and bad.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { NET_ATTACK, buildNetAttack, netAttackCompilerSkip } from '../helpers/net-attack';
import { Runtime, has, integrationSkip, json, leftovers, probeSpec, type Result } from './harness';
import { Peers } from '../helpers/net-peers';
import type { Spec } from '../../src/oci/spec';

const ATTACK = NET_ATTACK;
const skip = integrationSkip() ?? netAttackCompilerSkip();

const NET = 'dev.stockade.network';

/** One line on stderr that says `re`, a non-zero exit, the --log file saying it too, nothing left. */
function refused(rt: Runtime, r: Result, re: RegExp): void {
  assert.notEqual(r.status, 0, r.stdout);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0] ?? '', re);
  assert.ok(rt.logLines().some((l) => l.level === 'error' && re.test(l.msg)), JSON.stringify(rt.logLines().slice(-3)));
  assert.deepEqual(leftovers(rt), []);
}

describe('the network policy, as users give it', { skip }, () => {
  let rt: Runtime;
  let peers: Peers;
  let port = 0;

  before(async () => {
    buildNetAttack();
    rt = new Runtime();
    peers = new Peers();
    port = await peers.tcp('127.0.0.1');
  });

  after(() => {
    peers.stop();
    rt.cleanup();
  });

  test('do --allow-net: a bad destination, the namespaces level, --network none: one line each, nothing made', () => {
    refused(rt, rt.run(['do', '--allow-net', 'example.com:0', '--', 'true']), /do: --allow-net: "example\.com:0" has no port or range of ports within 1-65535/);
    refused(rt, rt.run(['do', '--allow-net', '10.0.0.0/40', '--', 'true']), /"10\.0\.0\.0\/40" is not a CIDR block/);
    refused(rt, rt.run(['do', '--isolation', 'namespaces', '--allow-net', '1.2.3.4', '--', 'true']), /--allow-net needs --isolation sentry/);
    refused(rt, rt.run(['do', '--network', 'none', '--allow-net', '1.2.3.4', '--', 'true']), /--allow-net with --network none reaches nothing/);
  });

  test('a bad annotation, or one the namespaces level cannot keep: the config\'s error, named, nothing left', () => {
    const bad = rt.bundle(probeSpec(['/bin/probe', 'exit', '0'], (s) => {
      s.annotations = { 'dev.stockade.isolation': 'sentry', [NET]: 'example.com:http' };
    }));
    refused(rt, rt.run(['run', '-b', bad.dir, 'net-bad']), /config\.json: annotations\["dev\.stockade\.network"\]: "example\.com:http" has no port/);
    const ns = rt.bundle(probeSpec(['/bin/probe', 'exit', '0'], (s) => {
      s.annotations = { 'dev.stockade.isolation': 'namespaces', [NET]: 'none' };
    }));
    refused(rt, rt.run(['run', '-b', ns.dir, 'net-ns']), /annotations\["dev\.stockade\.network"\]: a network policy needs isolation sentry/);
  });

  test('under a policy the sentry sends: sendmmsg sends each datagram it allows and stops at the first it refuses', async () => {
    const good = await peers.udp('127.0.0.1');
    const bad = await peers.udp('127.0.0.1');
    const r = rt.run(['do', '--allow-net', `127.0.0.1:${good}`, '--', ATTACK, 'sendmmsg', '127.0.0.1', String(good), String(bad)]);
    assert.equal(r.status, 0, r.stderr);
    // As the kernel: the count sent, each one's msg_len written back; alone, the refusal's errno.
    assert.deepEqual(json(r.stdout.trim()), { sent: 2, lens: [3, 5, 0], alone: 'EPERM' });
    await new Promise((res) => setTimeout(res, 200));
    const c = (await peers.counts()).counts;
    assert.equal(c[`127.0.0.1:${good}`], 2);
    assert.equal(c[`127.0.0.1:${bad}`], undefined);
  });

  test('unix sockets under a policy work as without: SCM_RIGHTS, a datagram by path, bind and connect by a relative path through a symlink', { skip: has('python3') ? undefined : 'the program is python3' }, () => {
    const program = [
      'import socket, os, json',
      'out = {}',
      'a, b = socket.socketpair()',
      'r, w = os.pipe()',
      "socket.send_fds(a, [b'fd'], [w])",
      'msg, fds, flags, addr = socket.recv_fds(b, 10, 1)',
      "os.write(fds[0], b'through')",
      "out['scm_rights'] = os.read(r, 10).decode()",
      'srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      "srv.bind('/var/tmp/d.sock')",
      'cli = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)',
      "cli.sendto(b'dgram', '/var/tmp/d.sock')",
      "out['dgram'] = srv.recv(10).decode()",
      "os.chdir('/var/tmp')",
      "st = socket.socket(socket.AF_UNIX); st.bind('s.sock'); st.listen(1)",
      "os.symlink('/var/tmp/s.sock', '/var/tmp/l.sock')",
      "c = socket.socket(socket.AF_UNIX); c.connect('l.sock')",
      "conn, _ = st.accept(); c.sendall(b'stream'); out['stream'] = conn.recv(10).decode()",
      'print(json.dumps(out))',
    ].join('\n');
    const want = { scm_rights: 'through', dgram: 'dgram', stream: 'stream' };
    for (const args of [['--allow-net', `127.0.0.1:${port}`], ['--isolation', 'sentry']]) {
      const r = rt.run(['do', ...args, '--', 'python3', '-c', program], { cwd: '/' });
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
      assert.deepEqual(json(r.stdout.trim()), want, args.join(' '));
    }
  });

  test('a bundle with the annotation none, on the host\'s network: loopback only, both ways', () => {
    const spec = (args: string[]): (p: { rootfs: string }) => Spec => (p) => {
      copyFileSync(ATTACK, join(p.rootfs, 'net-attack'));
      return probeSpec(['/net-attack', ...args], (s) => {
        s.annotations = { 'dev.stockade.isolation': 'sentry', [NET]: 'none' };
        s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'network');
      });
    };
    const run = (id: string, args: string[]): unknown => {
      const r = rt.run(['run', '-b', rt.bundle(spec(args)).dir, id]);
      assert.equal(r.status, 0, r.stderr);
      return json(r.stdout.trim());
    };
    assert.deepEqual(run('none-lo', ['connect', '127.0.0.1', String(port)]), { ok: true, peer: port });
    assert.deepEqual(run('none-out', ['connect', '192.0.2.1', '80']), { ok: false, error: 'EPERM' });
    assert.deepEqual(run('none-any', ['connect', '0.0.0.0', String(port)]), { ok: false, error: 'EPERM' });
    // Listening on the host's network would open a port to it: EACCES, as for a privileged port.
    assert.deepEqual(run('none-bind', ['bind', '0.0.0.0', '18999']), { ok: false, error: 'EACCES' });
    assert.deepEqual(run('none-bind-lo', ['bind', '127.0.0.1', '0']), { ok: true });
    assert.ok(rt.logLines().some((l) => /denied connect to 192\.0\.2\.1:80 \(EPERM\).*none \(loopback only\)/.test(l.msg)), JSON.stringify(rt.logLines().slice(-5)));
    assert.deepEqual(leftovers(rt), []);
  });
});
