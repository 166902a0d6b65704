// The sentry's generated /proc against a fake workload: a clone of this host's procfs as the /proc the sentry owns, the test process as the caller.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { sentryNative } from '../../../src/native/addon';
import { Sentry } from '../../../src/sentry/kernel';
import { SYSCALLS_X86_64 } from '../../../src/abi/linux/syscalls-x86_64';
import { ALL_CAPS, call, FakeWorkload, unameOf } from './fake-workload';

const skip = process.getuid?.() !== 0 ? 'needs root (open_tree of /proc)' : process.arch !== 'x64' ? 'x86_64 syscall numbers' : false;

const AT_FDCWD = BigInt.asUintN(64, -100n);
const OPEN_TREE_CLONE = 1;
const AT_RECURSIVE = 0x8000;
const O_CLOEXEC = 0o2000000;

let dir = '';
let rootFd = -1;
let procFd = -1;

before(() => {
  if (skip !== false) return;
  dir = mkdtempSync(join(tmpdir(), 'stockade-sentry-procfs-'));
  mkdirSync(join(dir, 'etc'));
  // As in an image: /etc/mtab leads into /proc, which the root itself leaves empty.
  symlinkSync('../proc/self/mounts', join(dir, 'etc/mtab'));
  rootFd = openSync(dir, 0o10000000 /* O_PATH */ | 0o200000 /* O_DIRECTORY */);
  // A detached clone of the host's procfs, as stockade-init hands the sentry one.
  procFd = sentryNative().syscall(SYSCALLS_X86_64['open_tree'] ?? -1, -100, '/proc', OPEN_TREE_CLONE | AT_RECURSIVE | O_CLOEXEC);
  assert.ok(procFd >= 0, `open_tree: errno ${-procFd}`);
});

after(() => {
  if (rootFd >= 0) closeSync(rootFd);
  if (procFd >= 0) closeSync(procFd);
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

function setup(user = { uid: 0, gid: 0, groups: [] as number[], caps: ALL_CAPS }): { w: FakeWorkload; s: Sentry } {
  const w = new FakeWorkload();
  w.caps = user.caps;
  const s = new Sentry(w.kernel(), { user, hostname: 'box', domainname: '', rootFd, mounts: [{ path: '/proc', fd: procFd }] });
  s.init();
  return { w, s };
}


/** What the caller reads from `path` under the sentry; throws on a refusal. */
function read(path: string, flags = 0n): string {
  const { w, s } = setup();
  call(s, 'openat', AT_FDCWD, w.put(path), flags);
  const got = w.injected[0];
  assert.ok(got !== undefined, `${path}: opened (errno ${w.replies.at(-1)?.error ?? '?'})`);
  return got.content ?? '';
}

function errorOf(path: string, flags: bigint): number {
  const { w, s } = setup();
  call(s, 'openat', AT_FDCWD, w.put(path), flags, 0o644n);
  assert.equal(w.injected.length, 0, path);
  return w.replies.at(-1)?.error ?? 0;
}

function kb(info: string, key: string): number {
  const m = new RegExp(`^${key.replace(/[()]/g, '\\$&')}:\\s+(\\d+) kB$`, 'm').exec(info);
  assert.ok(m !== null, `${key} in meminfo`);
  return Number(m[1]);
}

/** The CPUs this process may run on, as the kernel lists them. */
function allowedCpus(): number {
  const list = /^Cpus_allowed_list:\s*(.*)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '';
  return list.split(',').reduce((n, part) => {
    const [a = 0, b = a] = part.split('-').map(Number);
    return n + b - a + 1;
  }, 0);
}

test('a generated file is a sealed memfd, read-only, regular, mode 0444, installed like any open', { skip }, () => {
  const { w, s } = setup();
  call(s, 'openat', AT_FDCWD, w.put('/proc/version'), BigInt(O_CLOEXEC));
  const got = w.injected[0];
  assert.ok(got !== undefined);
  assert.match(got.path, /^\/memfd:stockade:\/proc\/version/);
  assert.equal(got.mode, 0o100444);
  assert.equal(got.writable, false);
  assert.equal(got.cloexec, true);
});

test('cpuinfo: one entry per CPU the caller may use, with the fields programs parse, none of the host\'s bugs or microcode', { skip }, () => {
  const info = read('/proc/cpuinfo');
  const n = allowedCpus();
  assert.deepEqual(info.match(/^processor\t: \d+$/gm), Array.from({ length: n }, (_, i) => `processor\t: ${i}`));
  if (/^vendor_id/m.test(readFileSync('/proc/cpuinfo', 'utf8'))) {
    assert.equal(info.match(/^flags\t+: .+$/gm)?.length, n);
    assert.equal(info.match(/^model name\t: .+$/gm)?.length, n);
  }
  assert.doesNotMatch(info, /^(microcode|bugs|power management)\b/m);
});

test('meminfo: totals no larger than the host\'s, free and available consistent', { skip }, () => {
  const info = read('/proc/meminfo');
  const host = readFileSync('/proc/meminfo', 'utf8');
  const total = kb(info, 'MemTotal');
  assert.ok(total > 0 && total <= kb(host, 'MemTotal'));
  assert.ok(kb(info, 'MemFree') <= kb(info, 'MemAvailable'));
  assert.ok(kb(info, 'MemAvailable') <= total);
  assert.ok(kb(info, 'Cached') <= total - kb(info, 'MemFree'));
  assert.ok(kb(info, 'SwapFree') <= kb(info, 'SwapTotal'));
  for (const line of info.trim().split('\n')) assert.match(line, /^[\w()]+:\s+\d+( kB)?$/, line);
});

test('version and sys/kernel say what uname says, never the host kernel\'s build', { skip }, () => {
  const { w, s } = setup();
  const fields = unameOf(s, w);
  const field = (i: number): string => fields[i] ?? '';
  const version = read('/proc/version');
  assert.equal(version, `Linux version ${field(2)} (stockade@sentry) ${field(3)}\n`);
  const host = readFileSync('/proc/version', 'utf8').trim();
  assert.ok(!version.includes(release()), 'not the host\'s release');
  assert.ok(!version.includes(host.slice(host.indexOf('#'))), 'not the host\'s build string');
  assert.equal(read('/proc/sys/kernel/osrelease'), `${field(2)}\n`);
  assert.equal(read('/proc/sys/kernel/hostname'), 'box\n');
  assert.equal(read('/proc/sys/kernel/ngroups_max'), '65536\n');
});

test('uptime, stat and loadavg: the container\'s time, btime where uptime starts, no host load', { skip }, () => {
  const [up = '', idle = ''] = read('/proc/uptime').trim().split(' ');
  assert.match(up, /^\d+\.\d\d$/);
  assert.match(idle, /^\d+\.\d\d$/);
  const stat = read('/proc/stat');
  const btime = Number(/^btime (\d+)$/m.exec(stat)?.[1]);
  assert.ok(Math.abs(btime + Number(up) - Date.now() / 1000) < 3, `btime ${btime} + uptime ${up} is now`);
  assert.equal(stat.match(/^cpu\d+ /gm)?.length, allowedCpus());
  assert.match(stat, /^cpu {2}\d+ 0 \d+ \d+ 0 0 0 0 0 0$/m);
  assert.match(read('/proc/loadavg'), /^0\.00 0\.00 0\.00 \d+\/\d+ 0\n$/);
  for (const line of read('/proc/filesystems').trim().split('\n')) assert.match(line, /^(nodev)?\t\w+$/, line);
});

test('per process: cgroup is the root of the container\'s view, stat\'s start time counts from the container\'s start', { skip }, () => {
  assert.equal(read('/proc/self/cgroup'), '0::/\n');
  assert.equal(read(`/proc/${process.pid}/cgroup`), '0::/\n');
  const stat = read('/proc/self/stat');
  assert.ok(stat.startsWith(`${process.pid} (`), stat);
  const fields = (s: string): string[] => s.slice(s.lastIndexOf(')') + 2).trim().split(' ');
  const mine = Number(fields(stat)[19]);
  const host = Number(fields(readFileSync('/proc/self/stat', 'utf8'))[19]);
  const init = Number(fields(readFileSync('/proc/1/stat', 'utf8'))[19]);
  assert.equal(mine, host - init);
  // A real file of the process passes through as the kernel gives it.
  assert.equal(read('/proc/self/cmdline'), readFileSync('/proc/self/cmdline', 'utf8'));
});

test('mounts: no option naming a host path, /proc and /sys listed; /etc/mtab leads to the same file', { skip }, () => {
  const mounts = read('/proc/self/mounts');
  assert.doesNotMatch(mounts, /(lowerdir|upperdir|workdir)=/);
  for (const line of mounts.trim().split('\n')) assert.doesNotMatch(line.split(' ')[0] ?? '', /^\//, line);
  assert.match(mounts, /^proc \/proc proc /m);
  // The mount table read here is the test host's, where another run may mount or unmount between
  // two reads: the three names are compared within one window in which the table held still.
  let same: [string, string, string] = ['', '', ''];
  for (let i = 0; i < 20; i++) {
    const first = read('/proc/self/mounts');
    same = [first, read('/etc/mtab'), read('/proc/mounts')];
    if (read('/proc/self/mounts') === first) break;
  }
  assert.equal(same[1], same[0]);
  assert.equal(same[2], same[0]);
  const info = read('/proc/self/mountinfo');
  for (const line of info.trim().split('\n')) assert.equal(line.split(' ')[3], '/', line);
});

test('writing is refused: EACCES, and EROFS under /proc/sys; O_EXCL says the file exists', { skip }, () => {
  assert.equal(errorOf('/proc/cpuinfo', 1n /* O_WRONLY */), -13);
  assert.equal(errorOf('/proc/meminfo', 2n /* O_RDWR */), -13);
  assert.equal(errorOf('/proc/self/mounts', 0o1000n /* O_TRUNC */), -13);
  assert.equal(errorOf('/proc/sys/kernel/hostname', 0o1101n /* O_WRONLY|O_CREAT|O_TRUNC */), -30);
  assert.equal(errorOf('/proc/version', 0o301n /* O_WRONLY|O_CREAT|O_EXCL */), -17);
});

test('stat and statx of a generated file: a regular file, read-only', { skip }, () => {
  const { w, s } = setup();
  const out = w.alloc(144);
  call(s, 'newfstatat', AT_FDCWD, w.put('/proc/sys/kernel/hostname'), out, 0n);
  assert.equal(w.replies.at(-1)?.error, 0);
  assert.equal(w.at(out).readUInt32LE(24), 0o100444);
  const sx = w.alloc(256);
  call(s, 'statx', AT_FDCWD, w.put('/proc/sys/kernel/hostname'), 0n, 0xfffn, sx);
  assert.equal(w.replies.at(-1)?.error, 0);
  assert.equal(w.at(sx).readUInt16LE(0x1c), 0o100444);
  // A file the sentry passes through keeps the kernel's answer.
  const dirOut = w.alloc(144);
  call(s, 'newfstatat', AT_FDCWD, w.put('/proc/self'), dirOut, 0n);
  assert.equal(w.at(dirOut).readUInt32LE(24) & 0o170000, 0o040000);
});

test('sysinfo agrees with meminfo and uptime', { skip }, () => {
  const { w, s } = setup();
  const out = w.alloc(112);
  call(s, 'sysinfo', out);
  const b = w.at(out);
  const unit = BigInt(b.readUInt32LE(104) || 1);
  const total = b.readBigUInt64LE(32) * unit;
  assert.equal(total / 1024n, BigInt(kb(read('/proc/meminfo'), 'MemTotal')));
  assert.ok(Math.abs(Number(b.readBigInt64LE(0)) - Number(read('/proc/uptime').split(' ')[0])) <= 1);
  assert.equal(b.readBigUInt64LE(8), 0n, 'no host load');
});

test('without a /proc of its own the sentry generates nothing: the path resolves in the root as before', { skip }, () => {
  const w = new FakeWorkload();
  const s = new Sentry(w.kernel(), { user: { uid: 0, gid: 0, groups: [], caps: ALL_CAPS }, hostname: 'box', domainname: '', rootFd });
  s.init();
  call(s, 'openat', AT_FDCWD, w.put('/proc/cpuinfo'), 0n);
  assert.equal(w.replies.at(-1)?.error, -2);
});
