// stockade-rbind: a VM share's bind, read-only on every mount below a read-only source (the attack:
// a write below a submount of a source the VM was given read-only, which `mount --rbind` and a
// remount let through).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rbindBinary } from '../../../src/vm/vmm';

const skip = process.getuid?.() !== 0 ? 'needs root (mounts in a mount namespace of its own)'
  : !existsSync(rbindBinary()) ? `${rbindBinary()} is not built` : undefined;

/** Runs SCRIPT in a private mount namespace with $R = stockade-rbind, $S = source, $D = target; returns its stdout. */
function inNamespace(script: string, source: string, target: string): string {
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', rbindBinary(), source, target], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('a read-only rbind is read-only on the source and on every mount below it; a read-write one is not', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-rbind-test-'));
  try {
    const src = join(dir, 'src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'data'), 'x');
    mkdirSync(join(dir, 'ro'));
    mkdirSync(join(dir, 'rw'));
    const try2 = 'touch "$D/new" 2>/dev/null && echo top-written || echo top-refused; touch "$D/sub/new" 2>/dev/null && echo sub-written || echo sub-refused; cat "$D/data"; echo';
    const setup = 'R=$1 S=$2 D=$3; mount -t tmpfs -o size=1m sub "$S/sub"';
    // The old way, for contrast: the submount stays writable.
    assert.equal(inNamespace(`${setup}; mount --rbind "$S" "$D"; mount -o remount,bind,ro "$D"; ${try2}`, src, join(dir, 'ro')), 'top-refused\nsub-written\nx\n');
    assert.equal(inNamespace(`${setup}; "$R" --ro "$S" "$D"; ${try2}`, src, join(dir, 'ro')), 'top-refused\nsub-refused\nx\n');
    assert.equal(inNamespace(`${setup}; "$R" "$S" "$D"; ${try2}`, src, join(dir, 'rw')), 'top-written\nsub-written\nx\n');
    const bad = spawnSync(rbindBinary(), ['--ro', join(dir, 'absent'), join(dir, 'ro')], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^stockade-rbind: open_tree .*absent: No such file or directory\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--ns: a tree cloned here is attached in another mount namespace only (a pod\'s later container into its running VM\'s share), read-only there, and --umount takes it out', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-rbind-ns-test-'));
  mkdirSync(join(dir, 'share'));
  mkdirSync(join(dir, 'src', 'sub'), { recursive: true });
  writeFileSync(join(dir, 'src', 'data'), 'from the host');
  // A mount namespace of its own in which the share is a tmpfs the host never sees (as the file server's).
  const server = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs t "$0/share" && mkdir "$0/share/in" && echo ready && exec sleep 60', dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = server.pid ?? 0;
  try {
    await new Promise<void>((resolve, reject) => {
      server.stdout?.once('data', () => resolve());
      server.once('exit', () => reject(new Error('the namespace\'s shell exited')));
    });
    const ns = `/proc/${pid}/ns/mnt`;
    const there = (cmd: string): string => spawnSync('nsenter', [`--mount=${ns}`, 'sh', '-c', cmd], { encoding: 'utf8' }).stdout;
    const r = spawnSync(rbindBinary(), ['--ns', ns, '--ro', join(dir, 'src'), join(dir, 'share', 'in')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(there(`cat "${dir}/share/in/data"; echo; touch "${dir}/share/in/new" 2>/dev/null && echo written || echo refused`), 'from the host\nrefused\n');
    // Not in this (the host's) namespace: nothing to clean up here, nothing seen here.
    assert.equal(existsSync(join(dir, 'share', 'in')), false);
    const u = spawnSync(rbindBinary(), ['--ns', ns, '--umount', join(dir, 'share', 'in')], { encoding: 'utf8' });
    assert.equal(u.status, 0, u.stderr);
    assert.equal(there(`ls "${dir}/share/in"`), '');
    const bad = spawnSync(rbindBinary(), ['--ns', '/proc/self/ns/absent', join(dir, 'src'), join(dir, 'share', 'in')], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^stockade-rbind: open \/proc\/self\/ns\/absent: No such file or directory\n$/);
    assert.equal(spawnSync(rbindBinary(), ['--umount', 'x'], { encoding: 'utf8' }).status, 2, '--umount needs --ns');
  } finally {
    server.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a jail in one run: several binds, a /proc, the chroot and the command; a bad step stops it before the command', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-rbind-jail-'));
  try {
    const jail = join(dir, 'j');
    for (const d of ['usr', 'proc', 'dev', 'share']) mkdirSync(join(jail, d), { recursive: true });
    for (const [link, target] of [['lib', 'usr/lib'], ['lib64', 'usr/lib64'], ['bin', 'usr/bin']] as const) symlinkSync(target, join(jail, link));
    writeFileSync(join(jail, 'dev', 'null'), '');
    const src = join(dir, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'data'), 'x');
    const steps = ['--ro', '/usr', join(jail, 'usr'), '--bind', '/dev/null', join(jail, 'dev', 'null'), src, join(jail, 'share'), '--proc', join(jail, 'proc'), '--chroot', jail];
    const probe = 'touch /usr/new 2>/dev/null && echo usr-written || echo usr-refused; echo > /dev/null && echo null-ok; touch /share/new && echo share-written; cat /share/data; echo; echo $$; grep -c " /usr " /proc/self/mountinfo';
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', '--pid', '--fork', rbindBinary(), ...steps, '--', '/usr/bin/sh', '-c', probe], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    // Its own /proc: the shell is pid 1 of the new pid namespace, as unshare --fork made it.
    assert.equal(r.stdout, 'usr-refused\nnull-ok\nshare-written\nx\n1\n1\n');
    const bad = spawnSync('unshare', ['--mount', '--propagation', 'private', rbindBinary(), '--ro', join(dir, 'absent'), join(jail, 'usr'), '--', '/usr/bin/touch', join(dir, 'ran')], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^stockade-rbind: open_tree .*absent: No such file or directory\n$/);
    assert.equal(existsSync(join(dir, 'ran')), false);
    const unknown = spawnSync(rbindBinary(), ['--rw', src, jail], { encoding: 'utf8' });
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /^usage: stockade-rbind /);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--idmap: the source\'s own file system only, seen through the map, nosuid and nodev; an id the map lacks owns nothing there; also from a pid namespace of its own (the template jail\'s)', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-rbind-test-'));
  try {
    const src = join(dir, 'src');
    mkdirSync(join(src, 'sub'), { recursive: true });
    writeFileSync(join(src, 'data'), 'x');
    mkdirSync(join(dir, 'mapped'));
    chmodSync(dir, 0o755);
    // On the disk root's (0) files are seen as 65534's; root itself is in no line of the map.
    const script = [
      'R=$1 S=$2 D=$3', 'mount -t tmpfs -o size=1m sub "$S/sub"',
      '"$R" --idmap "0 65534 1\n" "0 65534 1\n" "$S" "$D"',
      'stat -c "%u:%g" "$D/data"',
      'touch "$D/by-root" 2>/dev/null && echo root-made || echo root-refused',
      'setpriv --reuid=65534 --regid=65534 --clear-groups touch "$D/by-nobody" && echo nobody-made',
      'grep -c " $D .*nosuid,nodev" /proc/self/mountinfo',
      // The tmpfs on sub was not cloned: sub is the source's own, empty directory.
      'stat -f -c %T "$D/sub"',
    ].join('; ');
    for (const wrap of [[], ['--pid', '--fork']]) {
      rmSync(join(src, 'by-nobody'), { force: true });
      const r = spawnSync('unshare', ['--mount', '--propagation', 'private', ...wrap, 'sh', '-c', script, 'sh', rbindBinary(), src, join(dir, 'mapped')], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, '65534:65534\nroot-refused\nnobody-made\n1\n' + (spawnSync('stat', ['-f', '-c', '%T', dir], { encoding: 'utf8' }).stdout), wrap.join(' '));
      assert.equal(existsSync(join(src, 'by-root')), false);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
