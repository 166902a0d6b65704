// The sentry's file handlers against a fake workload: its memory and listener are in-process, its root a temp directory, the syscalls real.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Sentry } from '../../../src/sentry/kernel';
import { HANDLERS } from '../../../src/sentry/handlers';
import { sentrySyscallTable } from '../../../src/sentry/syscalls';
import { ALL_CAPS, call, FakeWorkload, notification, unameOf } from './fake-workload';

const skip = process.getuid?.() !== 0 ? 'needs root (it acts as other users)' : process.arch !== 'x64' ? 'x86_64 syscall numbers' : false;

let dir = '';
let root = '';
let rootFd = -1;

before(() => {
  if (skip !== false) return;
  dir = mkdtempSync(join(tmpdir(), 'stockade-sentry-handlers-'));
  root = join(dir, 'root');
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(join(root, 'bin'));
  mkdirSync(join(root, 'home/user'), { recursive: true });
  writeFileSync(join(root, 'etc/hostname'), 'inside\n');
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:inside\n');
  writeFileSync(join(root, 'etc/secret'), 'only root\n', { mode: 0o600 });
  writeFileSync(join(root, 'bin/tool'), '#!/bin/sh\n', { mode: 0o755 });
  writeFileSync(join(root, 'bin/data'), 'not a program\n', { mode: 0o644 });
  chownSync(join(root, 'home/user'), 1000, 1000);
  symlinkSync('/../../../../../etc/passwd', join(root, 'escape-abs'));
  symlinkSync('../../../../../../etc/passwd', join(root, 'escape-rel'));
  symlinkSync('/proc/1/root/etc/passwd', join(root, 'escape-magic'));
  symlinkSync('etc/hostname', join(root, 'hostname-link'));
  // A directory outside the root with a file the sentry must never reach.
  writeFileSync(join(dir, 'outside'), 'host data\n');
  rootFd = openSync(root, 0o10000000 /* O_PATH */ | 0o200000 /* O_DIRECTORY */);
});

after(() => {
  if (rootFd >= 0) closeSync(rootFd);
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

function setup(user = { uid: 0, gid: 0, groups: [] as number[], caps: ALL_CAPS }): { w: FakeWorkload; s: Sentry } {
  const w = new FakeWorkload();
  w.caps = user.caps;
  const s = new Sentry(w.kernel(), { user, hostname: 'box', domainname: '', rootFd });
  s.init();
  return { w, s };
}


const AT_FDCWD = BigInt.asUintN(64, -100n);
const O_RDONLY = 0n;

function lastError(w: FakeWorkload): number {
  const r = w.replies.at(-1);
  assert.ok(r !== undefined, 'the sentry answered');
  return r.error;
}

test('open of a path in the root injects the root\'s file', { skip }, () => {
  const { w, s } = setup();
  call(s, 'openat', AT_FDCWD, w.put('/etc/hostname'), O_RDONLY);
  assert.equal(w.injected.length, 1);
  assert.equal(w.injected[0]?.content, 'inside\n');
  assert.equal(w.reads, 1, 'the path is read from the caller once');
});

test('.. and symlinks cannot leave the root: what they name is inside it', { skip }, () => {
  for (const path of ['/../../../../../etc/passwd', '/escape-abs', '/escape-rel', 'escape-rel-missing']) {
    const { w, s } = setup();
    call(s, 'open', w.put(path), O_RDONLY);
    if (w.injected.length === 1) assert.equal(w.injected[0]?.content, 'root:x:0:0:inside\n', path);
    else assert.notEqual(lastError(w), 0, path);
  }
});

test('a magic link inside the root is refused, not followed to the host', { skip }, () => {
  const { w, s } = setup();
  call(s, 'open', w.put('/escape-magic'), O_RDONLY);
  assert.equal(w.injected.length, 0);
  assert.notEqual(lastError(w), 0);
});

test('O_CREAT makes the file in the root with the caller\'s umask; O_CLOEXEC reaches the injected fd', { skip }, () => {
  const { w, s } = setup();
  call(s, 'openat', AT_FDCWD, w.put('/etc/new-file'), 0o100n | 0o1n | 0o2000000n, 0o666n);
  assert.equal(w.injected.length, 1);
  assert.equal(w.injected[0]?.cloexec, true);
  assert.ok(existsSync(join(root, 'etc/new-file')));
  const umask = process.umask();
  assert.equal(statSync(join(root, 'etc/new-file')).mode & 0o777, 0o666 & ~umask);
});

test('stat writes the root\'s file\'s metadata into the caller', { skip }, () => {
  const { w, s } = setup();
  const out = w.alloc(144);
  call(s, 'newfstatat', AT_FDCWD, w.put('/hostname-link'), out, 0n);
  assert.equal(lastError(w), 0);
  const st = statSync(join(root, 'etc/hostname'), { bigint: true });
  assert.equal(w.at(out).readBigUInt64LE(8), st.ino);
  assert.equal(w.at(out).readBigInt64LE(48), st.size);
  // lstat: the link itself
  const out2 = w.alloc(144);
  call(s, 'newfstatat', AT_FDCWD, w.put('/hostname-link'), out2, 0x100n);
  assert.equal(w.at(out2).readBigUInt64LE(8), lstatSync(join(root, 'hostname-link'), { bigint: true }).ino);
});

test('readlink writes the link\'s text; access answers for the caller\'s ids', { skip }, () => {
  const { w, s } = setup();
  const out = w.alloc(256);
  call(s, 'readlink', w.put('/hostname-link'), out, 256n);
  assert.equal(w.replies.at(-1)?.value, BigInt('etc/hostname'.length));
  assert.equal(w.at(out).toString('utf8', 0, 12), 'etc/hostname');
  const user = setup({ uid: 1000, gid: 1000, groups: [], caps: 0n });
  call(user.s, 'access', user.w.put('/etc/secret'), 4n /* R_OK */);
  assert.equal(lastError(user.w), -13);
  call(user.s, 'access', user.w.put('/etc/hostname'), 4n);
  assert.equal(lastError(user.w), 0);
});

test('the caller\'s identity decides: a user cannot open root\'s 0600 file, root can', { skip }, () => {
  const user = setup({ uid: 1000, gid: 1000, groups: [], caps: 0n });
  call(user.s, 'open', user.w.put('/etc/secret'), O_RDONLY);
  assert.equal(user.w.injected.length, 0);
  assert.equal(lastError(user.w), -13);
  const r = setup();
  call(r.s, 'open', r.w.put('/etc/secret'), O_RDONLY);
  assert.equal(r.w.injected[0]?.content, 'only root\n');
  // A file the user creates is the user's.
  call(user.s, 'open', user.w.put('/home/user/mine'), 0o100n | 0o1n, 0o600n);
  assert.equal(statSync(join(root, 'home/user/mine')).uid, 1000);
});

test('O_PATH and FIFO opens are the sentry\'s: the object it checked, read-only, as the caller; only an unreadable object\'s O_PATH is the kernel\'s', { skip }, () => {
  const O_PATH = 0o10000000n;
  const O_NONBLOCK = 0o4000n;
  const CONTINUE = 1;
  if (!existsSync(join(root, 'fifo'))) execFileSync('mkfifo', [join(root, 'fifo')]);
  const r = setup();
  call(r.s, 'openat', AT_FDCWD, r.w.put('/etc/hostname'), O_PATH);
  assert.equal(r.w.injected.at(-1)?.content, 'inside\n');
  assert.equal(r.w.injected.at(-1)?.writable, false);
  call(r.s, 'openat', AT_FDCWD, r.w.put('/fifo'), O_NONBLOCK);
  call(r.s, 'openat', AT_FDCWD, r.w.put('/fifo'), O_PATH);
  assert.equal(r.w.injected.length, 3);
  assert.ok(r.w.replies.every((x) => x.flags !== CONTINUE), 'nothing was left to the kernel');
  // O_PATH needs no read permission, the read-only open the sentry serves does: an object the caller
  // may not read is the one O_PATH open left to the kernel, which grants no access (PATH_IN_CALLER).
  const user = setup({ uid: 1000, gid: 1000, groups: [], caps: 0n });
  call(user.s, 'openat', AT_FDCWD, user.w.put('/etc/secret'), O_PATH);
  assert.equal(user.w.injected.length, 0);
  assert.equal(user.w.replies.at(-1)?.flags, CONTINUE);
  // A path that names nothing the caller may reach is refused by the sentry, not left to the kernel.
  call(user.s, 'openat', AT_FDCWD, user.w.put('/etc/missing'), O_PATH);
  assert.equal(lastError(user.w), -2);
  // A symlink itself (O_PATH | O_NOFOLLOW, as glibc's fchmodat opens one) has no readable open: the kernel's too.
  call(r.s, 'openat', AT_FDCWD, r.w.put('/hostname-link'), O_PATH | 0o400000n);
  assert.equal(r.w.replies.at(-1)?.flags, CONTINUE);
});

test('mkdir, symlink, rename, unlink and rmdir act inside the root', { skip }, () => {
  const { w, s } = setup();
  call(s, 'mkdir', w.put('/work'), 0o755n);
  assert.equal(lastError(w), 0);
  assert.ok(statSync(join(root, 'work')).isDirectory());
  call(s, 'symlink', w.put('/etc/hostname'), w.put('/work/link'));
  assert.equal(readlinkSync(join(root, 'work/link')), '/etc/hostname');
  call(s, 'rename', w.put('/work/link'), w.put('/../../work/renamed'));
  assert.equal(lastError(w), 0);
  assert.ok(existsSync(join(root, 'work/renamed')), 'the .. stopped at the root');
  call(s, 'unlink', w.put('/work/renamed'));
  call(s, 'rmdir', w.put('/work'));
  assert.equal(lastError(w), 0);
  assert.ok(!existsSync(join(root, 'work')));
  call(s, 'mknod', w.put('/dev-node'), BigInt(0o020000 | 0o600), 0x0103n);
  assert.equal(lastError(w), -1, 'device nodes are refused');
});

test('chmod acts on the object the path names inside the root', { skip }, () => {
  const { w, s } = setup();
  writeFileSync(join(root, 'etc/modes'), '');
  chmodSync(join(root, 'etc/modes'), 0o600);
  call(s, 'chmod', w.put('/etc/modes'), 0o640n);
  assert.equal(lastError(w), 0);
  assert.equal(statSync(join(root, 'etc/modes')).mode & 0o777, 0o640);
});

test('a caller gone before the answer gets nothing done', { skip }, () => {
  const { w, s } = setup();
  w.gone = true;
  call(s, 'mkdir', w.put('/never'), 0o755n);
  assert.ok(!existsSync(join(root, 'never')));
  assert.equal(w.injected.length, 0);
});

test('execve: a program continues in the kernel, a non-program is refused', { skip }, () => {
  const { w, s } = setup();
  call(s, 'execve', w.put('/bin/tool'), 0n, 0n);
  assert.equal(w.replies.at(-1)?.flags, 1, 'SECCOMP_USER_NOTIF_FLAG_CONTINUE');
  call(s, 'execve', w.put('/bin/data'), 0n, 0n);
  assert.equal(lastError(w), -13);
  call(s, 'execve', w.put('/bin/missing'), 0n, 0n);
  assert.equal(lastError(w), -2);
});

test('uname reports the container\'s host name and no host build string', { skip }, () => {
  const { w, s } = setup();
  const fields = unameOf(s, w);
  const field = (i: number): string => fields[i] ?? '';
  assert.equal(field(0), 'Linux');
  assert.equal(field(1), 'box');
  assert.match(field(2), /^\d+\.\d+\.0-stockade$/);
  assert.equal(field(3), '#1 SMP stockade sentry');
});

test('a syscall with no handler is answered ENOSYS, not left waiting', { skip }, () => {
  const { w, s } = setup();
  // A number no handler serves, as a newer kernel's call would be.
  s.answer(notification(9999));
  assert.equal(lastError(w), -38);
});

test('the table and the handlers agree: a call the table says is served has a handler, and only those', () => {
  const arch = 'SCMP_ARCH_X86_64';
  for (const e of sentrySyscallTable()) {
    if (e.numbers[arch] === undefined || e.handler === null) continue;
    const has = HANDLERS[e.handler] !== undefined;
    if (e.support === 'none') assert.equal(has, false, `${e.name}: a handler exists but the table says none`);
    else assert.equal(has, true, `${e.name}: the table says ${e.support} but there is no handler ${e.handler}`);
  }
});

test('a root caller without CAP_DAC_OVERRIDE cannot read through the sentry what it could not read itself', { skip }, () => {
  writeFileSync(join(root, 'etc/users-only'), 'private\n', { mode: 0o600 });
  chownSync(join(root, 'etc/users-only'), 1000, 1000);
  const weak = setup({ uid: 0, gid: 0, groups: [], caps: 0n });
  call(weak.s, 'open', weak.w.put('/etc/users-only'), O_RDONLY);
  assert.equal(weak.w.injected.length, 0);
  assert.equal(lastError(weak.w), -13);
  const strong = setup();
  call(strong.s, 'open', strong.w.put('/etc/users-only'), O_RDONLY);
  assert.equal(strong.w.injected[0]?.content, 'private\n');
});

test('every Sentry on a thread switches identity through the one ThreadCreds of that thread', { skip }, () => {
  // Each answer leaves the thread with its caller's identity: a second ThreadCreds would not know it.
  const a = setup({ uid: 1000, gid: 1000, groups: [], caps: 0n });
  const b = setup();
  assert.equal(a.s.creds, b.s.creds);
  a.s.answer(notification('open', a.w.put('/etc/secret'), O_RDONLY));
  assert.equal(lastError(a.w), -13, 'the user cannot read root\'s 0600 file');
  assert.equal(b.s.creds.current.uid, 1000, 'the thread kept the user\'s identity');
  call(b.s, 'open', b.w.put('/etc/secret'), O_RDONLY);
  assert.equal(b.w.injected[0]?.content, 'only root\n', 'root, served next on the same thread, can');
});
