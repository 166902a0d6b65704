// The container's network inside its VM: interfaces of its namespace wired to the guest's NICs, reached both ways; none; host networking refused.
//
// A network namespace made here with two veth pairs to the host stands for what Podman, Docker or
// a CNI plugin hands the container. One VM carries every check of the wired case (a second VM
// would add nothing to them); --network none needs a VM of its own.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyboxPath } from '../helpers/rootfs';
import { makeVethNetns, randomLoopback, type VethNetns } from '../helpers/net-scope';
import { Runtime, probeSpec, waitFor } from './harness';
import { vmGone, vmHostProcesses, vmSkip, vmTrace, VM_CALL } from './vm-helpers';

const skip = vmSkip();

const ip = (...args: string[]): string => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/**
 * A second veth pair into `ns`: one of makeVethNetns()'s, its namespace end moved into `ns` (which
 * drops its addresses: NET.2/24 is given back there). The host's end keeps NET.1/24.
 */
function addVeth(ns: string): { hostIf: string; nsIf: string; net: string; remove(): void } {
  const v = makeVethNetns();
  try {
    ip('-n', v.ns, 'link', 'set', v.nsIf, 'netns', ns);
    ip('-n', ns, 'addr', 'add', `${v.net}.2/24`, 'dev', v.nsIf);
    ip('-n', ns, 'link', 'set', v.nsIf, 'mtu', '1400', 'up');
  } catch (e) {
    v.remove();
    throw e;
  }
  return { hostIf: v.hostIf, nsIf: v.nsIf, net: v.net, remove: () => v.remove() };
}

/** GET http://host:port/ from the host, retried until it answers (the guest's server takes a moment). */
async function fetchText(host: string, port: number, ms = 60000): Promise<string> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      return await new Promise<string>((resolve, reject) => {
        const req = get({ host, port, path: '/', timeout: 5000 }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => { body += c; });
          res.on('end', () => resolve(body));
        });
        req.on('timeout', () => req.destroy(new Error('timed out')));
        req.on('error', reject);
      });
    } catch (e) {
      last = e;
      await new Promise((r) => setTimeout(r, 300));
    }
  }
  throw new Error(`http://${host}:${port}/ did not answer in ${ms} ms: ${String(last)}`);
}

/**
 * A nameserver in namespace `ns` on a loopback address of its own, port 53 (udp), as dockerd's
 * embedded DNS is at 127.0.0.11 in a user network's container: `name` is `address` (A), every
 * other name NXDOMAIN. Port 53 is what resolv.conf implies; it is bound in the test's own network
 * namespace, where nothing else can hold it.
 */
function loopbackNameserver(ns: string, at: string, name: string, address: string): ChildProcess {
  const script = `
    const d = require('dgram').createSocket('udp4');
    d.on('message', (q, from) => {
      let i = 12; const labels = [];
      while (q[i] !== 0) { labels.push(q.subarray(i + 1, i + 1 + q[i]).toString()); i += q[i] + 1; }
      const end = i + 5, qtype = q.readUInt16BE(i + 1), known = labels.join('.') === ${JSON.stringify(name)};
      const h = Buffer.alloc(12); q.copy(h, 0, 0, 2);
      h.writeUInt16BE(known ? 0x8180 : 0x8183, 2); h.writeUInt16BE(1, 4); h.writeUInt16BE(known && qtype === 1 ? 1 : 0, 6);
      const an = known && qtype === 1 ? Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ${address.split('.').join(', ')}]) : Buffer.alloc(0);
      d.send(Buffer.concat([h, q.subarray(12, end), an]), from.port, from.address);
      process.stdout.write('asked ' + labels.join('.') + '\\n');
    });
    const port = 53;
    d.bind(port, ${JSON.stringify(at)}, () => process.stdout.write('listening\\n'));`;
  return spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
}

function macOf(ns: string, dev: string): string {
  return (JSON.parse(ip('-j', '-n', ns, 'link', 'show', 'dev', dev)) as { address: string }[])[0]?.address ?? '';
}

describe('the vm level: the container\'s network in its VM', { skip }, () => {
  let rt: Runtime;
  let a: VethNetns | undefined;
  let b: ReturnType<typeof addVeth> | undefined;
  /** The host's server: a process of its own (the CLI calls below block this one). */
  let server: ChildProcess | undefined;
  let nameserver: ChildProcess | undefined;
  let www = '';
  before(() => {
    rt = new Runtime();
  });
  after(() => {
    rt.cleanup();
    server?.kill('SIGKILL');
    nameserver?.kill('SIGKILL');
    if (www !== '') rmSync(www, { recursive: true, force: true });
    b?.remove();
    a?.remove();
  });

  test('two interfaces: the guest\'s NICs carry their names, MACs, MTUs, addresses and routes; a host server reached from the guest, the guest\'s server from the host on both; QEMU still jailed; nothing left on the interfaces', async () => {
    a = makeVethNetns();
    b = addVeth(a.ns);
    ip('-n', a.ns, 'route', 'add', 'default', 'via', `${a.net}.1`);
    ip('-n', a.ns, 'route', 'add', '192.0.2.0/24', 'via', `${b.net}.1`, 'metric', '7');
    // IPv6 too: an address (with its own prefix route, the kernel's) and a route through a gateway.
    const v6 = `fd42:${randomInt(0x10000).toString(16)}:${randomInt(0x10000).toString(16)}`;
    ip('-n', a.ns, '-6', 'addr', 'add', `${v6}::2/64`, 'dev', b.nsIf, 'nodad');
    ip('-n', a.ns, '-6', 'route', 'add', '2001:db8:5::/48', 'via', `${v6}::1`, 'dev', b.nsIf);
    const token = `host-${randomInt(1e9)}`;
    www = mkdtempSync(join(tmpdir(), 'stockade-vmnet-www-'));
    writeFileSync(join(www, 'index.html'), token);
    const port = randomInt(20000, 30000);
    server = spawn(busyboxPath(), ['httpd', '-f', '-p', `${a.net}.1:${port}`, '-h', www], { stdio: 'ignore' });
    assert.equal(await fetchText(`${a.net}.1`, port, 10000), token);
    // A nameserver on the namespace's loopback, as Docker's embedded DNS is (127.0.0.11; the client
    // tier's network-dns scenario has that one under Docker): one of the loopback addresses here.
    ip('-n', a.ns, 'link', 'set', 'lo', 'up');
    const resolver = randomLoopback();
    nameserver = loopbackNameserver(a.ns, resolver, 'srv.test', `${a.net}.1`);
    const asked: string[] = [];
    await new Promise<void>((resolve, reject) => {
      nameserver?.stdout?.setEncoding('utf8').on('data', (c: string) => {
        asked.push(...c.split('\n').filter((l) => l !== ''));
        if (asked.includes('listening')) resolve();
      });
      nameserver?.once('exit', (code) => reject(new Error(`the test's nameserver exited with ${code}`)));
    });
    writeFileSync(join(www, 'resolv.conf'), `nameserver ${resolver}\noptions ndots:0\n`);
    const guestToken = `guest-${randomInt(1e9)}`;
    const id = 'vm-net';
    const bundle = rt.bundle(probeSpec(['/bin/sh', '-c', `mkdir -p /tmp/www && echo ${guestToken} > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www`], (s) => {
      s.linux = { ...s.linux, namespaces: (s.linux?.namespaces ?? []).map((ns) => (ns.type === 'network' ? { type: 'network', path: `/run/netns/${a?.ns}` } : ns)) };
      s.root = { path: 'rootfs', readonly: false };
      s.mounts = [...(s.mounts ?? []), { destination: '/etc/resolv.conf', type: 'bind', source: join(www, 'resolv.conf'), options: ['rbind', 'ro'] }];
    }));
    const r = rt.run(['--isolation', 'vm', 'run', '-d', '--bundle', bundle.dir, id], VM_CALL);
    assert.equal(r.status, 0, r.stderr);
    const t = vmTrace(rt, id);
    try {
      // Reached from the host, through each interface.
      assert.equal((await fetchText(`${a.net}.2`, 8080)).trim(), guestToken);
      assert.equal((await fetchText(`${a.net}.3`, 8080)).trim(), guestToken);
      assert.equal((await fetchText(`${b.net}.2`, 8080)).trim(), guestToken);

      const x = rt.run(['exec', id, 'sh', '-c', `ip -o link; echo ==; ip -o addr; echo ==; ip route; echo ==; wget -q -O- http://${a.net}.1:${port}/`], VM_CALL);
      assert.equal(x.status, 0, x.stderr);
      const [links = '', addrs = '', routes = '', fetched = ''] = x.stdout.split('==\n');
      // The guest's own network (its kernel's), which the container shares: the namespace's interfaces, by name and MAC.
      const names = [...links.matchAll(/^\d+: ([^:@]+)[:@]/gm)].map((m) => m[1]).sort();
      assert.deepEqual(names, [a.nsIf, b.nsIf, 'lo'].sort(), links);
      assert.match(links, new RegExp(`${a.nsIf}:.* mtu 1500 .*link/ether ${macOf(a.ns, a.nsIf)}`));
      assert.match(links, new RegExp(`${b.nsIf}:.* mtu 1400 .*link/ether ${macOf(a.ns, b.nsIf)}`));
      assert.match(addrs, new RegExp(`${a.nsIf}\\s+inet ${a.net.replace(/\./g, '\\.')}\\.2/24`));
      assert.match(addrs, new RegExp(`${a.nsIf}\\s+inet ${a.net.replace(/\./g, '\\.')}\\.3/24`));
      assert.match(addrs, new RegExp(`${b.nsIf}\\s+inet ${b.net.replace(/\./g, '\\.')}\\.2/24`));
      assert.match(routes, new RegExp(`^default via ${a.net}\\.1 dev ${a.nsIf}`, 'm'));
      assert.match(routes, new RegExp(`^192\\.0\\.2\\.0/24 via ${b.net}\\.1 dev ${b.nsIf}\\s+metric 7`, 'm'));
      assert.match(addrs, new RegExp(`${b.nsIf}\\s+inet6 ${v6}::2/64 scope global`));
      const routes6 = rt.run(['exec', id, 'ip', '-6', 'route'], VM_CALL);
      assert.match(routes6.stdout, new RegExp(`^2001:db8:5::/48 via ${v6}::1 dev ${b.nsIf}`, 'm'), routes6.stdout + routes6.stderr);
      // A host server reached from the guest.
      assert.equal(fetched, token);
      // The namespace's loopback nameserver answers in the guest (the agent's listener, forwarded by the keeper
      // from the container's namespace): the name resolves to the nameserver's address for it.
      const dns = rt.run(['exec', id, 'nslookup', '-type=a', 'srv.test'], VM_CALL);
      assert.equal(dns.status, 0, dns.stdout + dns.stderr);
      assert.ok(dns.stdout.includes(resolver), dns.stdout);
      assert.match(dns.stdout, new RegExp(`Address:? ${a.net.replace(/\./g, '\\.')}\\.1\\b`), dns.stdout);
      // (Its output is read once this process's event loop turns: the CLI calls above block it.)
      await waitFor(() => asked.includes('asked srv.test'), 5000).catch(() => assert.fail(`the namespace's nameserver was not asked: ${asked.join(', ')}`));
      const unknown = rt.run(['exec', id, 'nslookup', '-type=a', 'nowhere.test'], VM_CALL);
      assert.notEqual(unknown.status, 0, 'an unknown name is NXDOMAIN, as the nameserver said');
      assert.match(unknown.stdout + unknown.stderr, /NXDOMAIN|can't find/i);

      // QEMU needed no network right: no capability, and a network namespace of its own with only lo.
      const qemu = vmHostProcesses(t).filter((p) => new RegExp(`^Uid:\\s+${t.vmmUid}\\s`, 'm').test(readFileSync(`/proc/${p}/status`, 'utf8'))
        && readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('virtio-net-device'));
      assert.equal(qemu.length, 1, `one QEMU with the network device: ${qemu.join(' ')}`);
      const q = qemu[0] as number;
      const status = readFileSync(`/proc/${q}/status`, 'utf8');
      assert.match(status, /^CapEff:\s+0+$/m);
      assert.match(status, /^CapBnd:\s+0+$/m);
      assert.notEqual(readlinkSync(`/proc/${q}/ns/net`), readlinkSync(`/proc/${t.keeper}/ns/net`));
      const qemuDevs = readFileSync(`/proc/${q}/net/dev`, 'utf8').split('\n').slice(2).map((l) => l.split(':')[0]?.trim()).filter((d) => d !== '');
      assert.deepEqual(qemuDevs, ['lo']);
      // The taps live in the container's namespace, next to the interfaces whose traffic they take.
      assert.match(ip('-n', a.ns, '-o', 'link'), /stk-tap0.*stk-tap1/s);
    } finally {
      rt.run(['kill', id, 'KILL']);
      rt.run(['delete', '--force', id], VM_CALL);
    }
    await vmGone(t);
    // The redirects left with the VM: the namespace's interfaces are as the client made them.
    await new Promise((r) => setTimeout(r, 500));
    const qdiscs = execFileSync('tc', ['-n', a.ns, 'qdisc', 'show'], { encoding: 'utf8' });
    assert.doesNotMatch(qdiscs, /ingress/, qdiscs);
    assert.doesNotMatch(ip('-n', a.ns, '-o', 'link'), /stk-tap/);
  });

  test('--network none (a namespace with only lo): the guest has only lo, and it is up', async () => {
    // A namespace with only lo: makeVethNetns()'s, its veth taken away.
    const v = makeVethNetns();
    const ns = v.ns;
    ip('-n', ns, 'link', 'del', v.nsIf);
    try {
      const serveOnLo = 'mkdir -p /tmp/w && echo lo-answers > /tmp/w/index.html && httpd -p 127.0.0.1:8081 -h /tmp/w && wget -q -O- http://127.0.0.1:8081/';
      const bundle = rt.bundle(probeSpec(['/bin/sh', '-c', `ls /sys/class/net; ip -o link show lo; ${serveOnLo}`], (s) => {
        s.root = { path: 'rootfs', readonly: false };
        s.linux = { ...s.linux, namespaces: (s.linux?.namespaces ?? []).map((n) => (n.type === 'network' ? { type: 'network', path: `/run/netns/${ns}` } : n)) };
      }));
      const r = rt.run(['--isolation', 'vm', 'run', '--bundle', bundle.dir, 'vm-none'], VM_CALL);
      assert.equal(r.status, 0, r.stderr);
      const [first, ...rest] = r.stdout.trim().split('\n');
      assert.equal(first, 'lo', r.stdout);
      assert.match(rest.join('\n'), /lo: <LOOPBACK,UP,LOWER_UP>/);
      assert.match(rest.join('\n'), /lo-answers/);
    } finally {
      v.remove();
    }
  });

  test('host networking refused at vm, in one line, nothing left: no network namespace, or the host\'s by path', () => {
    for (const [name, edit] of [
      ['no-netns', (s: ReturnType<typeof probeSpec>) => { s.linux = { ...s.linux, namespaces: (s.linux?.namespaces ?? []).filter((n) => n.type !== 'network') }; }],
      ['host-path', (s: ReturnType<typeof probeSpec>) => {
        s.linux = { ...s.linux, namespaces: (s.linux?.namespaces ?? []).map((n) => (n.type === 'network' ? { type: 'network', path: `/proc/${process.pid}/ns/net` } : n)) };
      }],
    ] as const) {
      const bundle = rt.bundle(probeSpec(['true'], edit));
      const r = rt.run(['--isolation', 'vm', 'create', '--bundle', bundle.dir, `vm-host-${name}`], VM_CALL);
      assert.notEqual(r.status, 0, name);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, /linux\.namespaces: .*host's network \(host networking\)/, r.stderr);
      assert.deepEqual(rt.containerDirs(), []);
    }
  });
});
