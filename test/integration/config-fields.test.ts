// Each config.json field, applied and then checked from inside the container by the probe.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startConsoleReceiver, until } from '../helpers/console-receiver';
import { Runtime, integrationSkip, json, leftovers, probeSpec } from './harness';

const skip = integrationSkip();

interface Mount { mountpoint: string; fstype: string; source: string; options: string; propagation: string[] }
interface Report {
  pid: number; uid: number; gid: number; euid: number; groups: number[]; umask: number; cwd: string;
  hostname: string; domainname: string; env: string[];
  caps: { bnd: string; eff: string; inh: string; prm: string; amb: string };
  noNewPrivs: boolean; rlimits: Record<string, [number, number]>; oomScoreAdj: number; fds: number[];
  mounts: Mount[]; sysctl: Record<string, string>; tty: boolean[]; ns: Record<string, string>;
}

const capBit = (n: number): bigint => 1n << BigInt(n);
const hex = (v: bigint): string => v.toString(16).padStart(16, '0');

describe('config.json fields take effect', { skip }, () => {
  let rt: Runtime;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  test('process, identity, limits, mounts, paths and devices in one container', () => {
    const hostDir = mkdtempSync(join(tmpdir(), 'stockade-bindsrc-'));
    writeFileSync(join(hostDir, 'data'), 'from the host');
    try {
      const b = rt.bundle(probeSpec(['/bin/probe', 'report', '--sysctl', 'net.ipv4.ip_forward', '--sysctl', 'kernel.msgmax'], (s) => {
        s.hostname = 'box1';
        s.domainname = 'example.org';
        s.root = { path: 'rootfs', readonly: true };
        const p = s.process!;
        p.user = { uid: 1000, gid: 1000, additionalGids: [10, 20], umask: 0o027 };
        p.cwd = '/home/test';
        p.env = ['PATH=/bin', 'FOO=bar baz'];
        p.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 1000, hard: 2000 }, { type: 'RLIMIT_CORE', soft: 0, hard: 0 }];
        p.capabilities = { bounding: ['CAP_KILL', 'CAP_CHOWN', 'CAP_NET_RAW'], effective: ['CAP_KILL'], permitted: ['CAP_KILL', 'CAP_CHOWN'], inheritable: ['CAP_KILL'], ambient: ['CAP_KILL'] };
        p.noNewPrivileges = true;
        p.oomScoreAdj = 500;
        s.mounts!.push(
          { destination: '/mnt/scratch', type: 'tmpfs', source: 'tmpfs', options: ['size=1m', 'nodev', 'nosuid'] },
          { destination: '/mnt/host', type: 'bind', source: hostDir, options: ['rbind', 'ro'] },
        );
        s.linux!.sysctl = { 'net.ipv4.ip_forward': '1', 'kernel.msgmax': '4096' };
        s.linux!.devices = [{ path: '/dev/mynull', type: 'c', major: 1, minor: 3, fileMode: 0o640, uid: 1000, gid: 1000 }];
        s.linux!.maskedPaths = ['/proc/keys', '/proc/acpi', '/proc/does-not-exist'];
        s.linux!.readonlyPaths = ['/proc/sys'];
      }));
      const r = rt.run(['run', '--bundle', b.dir, 'f1']);
      assert.equal(r.status, 0, r.stderr);
      const rep = json<Report>(r.stdout);
      assert.equal(rep.pid, 1, 'own pid namespace');
      assert.equal(rep.hostname, 'box1');
      assert.equal(rep.domainname, 'example.org');
      assert.equal(rep.uid, 1000);
      assert.equal(rep.euid, 1000);
      assert.equal(rep.gid, 1000);
      assert.deepEqual([...rep.groups].sort((a, b) => a - b), [10, 20]);
      assert.equal(rep.umask, 0o027);
      assert.equal(rep.cwd, '/home/test');
      assert.deepEqual(rep.env, ['PATH=/bin', 'FOO=bar baz', 'HOME=/home/test'], 'HOME from /etc/passwd for uid 1000, as runc sets it');
      assert.deepEqual(rep.rlimits['NOFILE'], [1000, 2000]);
      assert.deepEqual(rep.rlimits['CORE'], [0, 0]);
      // CAP_CHOWN 0, CAP_KILL 5, CAP_NET_RAW 13
      assert.equal(rep.caps.bnd, hex(capBit(0) | capBit(5) | capBit(13)));
      assert.equal(rep.caps.eff, hex(capBit(5)));
      // After execve a non-root process keeps only its ambient set as permitted (capabilities(7)).
      assert.equal(rep.caps.prm, hex(capBit(5)));
      assert.equal(rep.caps.inh, hex(capBit(5)));
      assert.equal(rep.caps.amb, hex(capBit(5)));
      assert.equal(rep.noNewPrivs, true);
      assert.equal(rep.oomScoreAdj, 500);
      assert.deepEqual(rep.sysctl, { 'net.ipv4.ip_forward': '1', 'kernel.msgmax': '4096' });
      const mount = (mp: string): Mount | undefined => rep.mounts.filter((m) => m.mountpoint === mp).at(-1);
      assert.match(mount('/')?.options ?? '', /^ro\b/, 'readonly root');
      assert.equal(mount('/mnt/scratch')?.fstype, 'tmpfs');
      assert.match(mount('/mnt/scratch')?.options ?? '', /nosuid,nodev/);
      assert.match(mount('/mnt/host')?.options ?? '', /^ro\b/);
      assert.equal(mount('/proc')?.fstype, 'proc');
      assert.match(mount('/proc/sys')?.options ?? '', /^ro\b/, 'readonly path');
      assert.ok(mount('/proc/keys') !== undefined, 'masked file covered');
      assert.equal(mount('/proc/acpi')?.fstype, 'tmpfs', 'masked directory covered');
      assert.ok(rep.mounts.every((m) => !m.mountpoint.startsWith(rt.root)), 'no host state path visible');
      assert.deepEqual(rep.fds, [0, 1, 2]);

      // The same rootfs, asked about single paths.
      const look = (args: string[]): Record<string, unknown> => {
        b.writeSpec(probeSpec(['/bin/probe', ...args], (s) => {
          s.root = { path: 'rootfs', readonly: true };
          s.mounts!.push({ destination: '/mnt/host', type: 'bind', source: hostDir, options: ['rbind', 'ro'] });
          s.linux!.devices = [{ path: '/dev/mynull', type: 'c', major: 1, minor: 3, fileMode: 0o640, uid: 1000, gid: 1000 }];
          s.linux!.maskedPaths = ['/proc/keys'];
        }));
        const res = rt.run(['run', '--bundle', b.dir, 'f2']);
        assert.equal(res.status, 0, res.stderr);
        return json<Record<string, unknown>>(res.stdout);
      };
      assert.equal(look(['cat', '/mnt/host/data'])['content'] ?? look(['cat', '/mnt/host/data'])['data'], 'from the host');
      assert.equal(look(['try-write', '/mnt/host/new'])['error'], 'EROFS');
      assert.equal(look(['try-write', '/etc/new'])['error'], 'EROFS');
      const dev = look(['stat', '/dev/mynull']);
      assert.equal(dev['type'], 'char');
      assert.equal(dev['rdevMajor'], 1);
      assert.equal(dev['rdevMinor'], 3);
      assert.equal((dev['mode'] as number) & 0o777, 0o640);
      assert.equal(dev['uid'], 1000);
      assert.equal(look(['stat', '/proc/keys'])['type'], 'char', 'masked /proc/keys is /dev/null');
      for (const d of ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty']) {
        assert.equal(look(['stat', d])['type'], 'char', d);
      }
      assert.equal(look(['readlink', '/dev/fd'])['target'], '/proc/self/fd');
      assert.deepEqual(leftovers(rt, b), []);
    } finally {
      rmSync(hostDir, { recursive: true, force: true });
    }
  });

  test('a user namespace maps container root to an unprivileged host uid', () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'report'], (s) => {
      s.linux!.namespaces!.push({ type: 'user' });
      s.linux!.uidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      s.linux!.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
    }));
    chownRootfs(b.rootfs, 200000);
    const r = rt.run(['run', '--bundle', b.dir, 'u1']);
    assert.equal(r.status, 0, r.stderr);
    const rep = json<Report>(r.stdout);
    assert.equal(rep.uid, 0);
    assert.notEqual(rep.ns['user'], readlinkSync('/proc/self/ns/user'));
  });

  test('joining an existing namespace by path', () => {
    const host = spawn('unshare', ['--uts', '--net', 'sleep', '30'], { stdio: 'ignore' });
    try {
      spawnSync('sleep', ['0.2']);
      const b = rt.bundle(probeSpec(['/bin/probe', 'report'], (s) => {
        s.linux!.namespaces = s.linux!.namespaces!.map((ns) => (ns.type === 'network' ? { type: 'network', path: `/proc/${host.pid}/ns/net` } : ns));
      }));
      const r = rt.run(['run', '--bundle', b.dir, 'j1']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(json<Report>(r.stdout).ns['net'], readlinkSync(`/proc/${host.pid}/ns/net`));
    } finally {
      host.kill('SIGKILL');
    }
  });

  test('--no-pivot moves the root and chroots', () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'report']));
    const r = rt.run(['run', '--no-pivot', '--bundle', b.dir, 'np1']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(json<Report>(r.stdout).pid, 1);
  });

  test('rootfsPropagation is applied to the container root', () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'report'], (s) => { s.linux!.rootfsPropagation = 'private'; }));
    const r = rt.run(['run', '--bundle', b.dir, 'rp1']);
    assert.equal(r.status, 0, r.stderr);
    const root = json<Report>(r.stdout).mounts.find((m) => m.mountpoint === '/');
    assert.deepEqual(root?.propagation, []);
  });

  test('terminal: true sends the pty master over --console-socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stockade-console-'));
    const sock = join(dir, 'console.sock');
    const receiver = await startConsoleReceiver(sock);
    try {
      const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'tty; /bin/probe report'], (s) => { s.process!.terminal = true; }));
      const r = rt.run(['run', '--console-socket', sock, '--bundle', b.dir, 't1']);
      assert.equal(r.status, 0, r.stderr);
      await until(() => receiver.output().includes("'"));
      const output = receiver.output();
      assert.match(output, /\/dev\/pts\/0/);
      assert.match(output, /"tty": ?\[true, ?true, ?true\]/);
    } finally {
      receiver.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
  test('tmpcopyup: a tmpfs starts with what the image held there, and writes stay in it', () => {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'cat /srv/data/a /srv/data/sub/b; readlink /srv/data/link; echo new > /srv/data/a; cat /srv/data/a'], (s) => {
      s.root = { path: 'rootfs', readonly: true };
      s.mounts!.push({ destination: '/srv/data', type: 'tmpfs', source: 'tmpfs', options: ['tmpcopyup', 'size=1m'] });
    }));
    mkdirSync(join(b.rootfs, 'srv', 'data', 'sub'), { recursive: true });
    writeFileSync(join(b.rootfs, 'srv', 'data', 'a'), 'A\n');
    writeFileSync(join(b.rootfs, 'srv', 'data', 'sub', 'b'), 'B\n');
    symlinkSync('/etc/passwd', join(b.rootfs, 'srv', 'data', 'link'));
    const r = rt.run(['run', '--bundle', b.dir, 'cu1']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'A\nB\n/etc/passwd\nnew\n');
    assert.equal(readFileSync(join(b.rootfs, 'srv', 'data', 'a'), 'utf8'), 'A\n', 'the image is unchanged');
  });
});

function chownRootfs(dir: string, id: number): void {
  spawnSync('chown', ['-R', '-h', `${id}:${id}`, dir]);
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'home', 'test'), { recursive: true });
}
