// The N-API addon against the real kernel: locks, pidfds, reaping, fd passing, openat2 and error shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import {
  closeSync, constants as fsConstants, fstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, symlinkSync, writeFileSync,
  writeSync,
} from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  constants, flockAsync, flockSync, isSystemError, openat2, pidfdGetfd, pidfdOpen, pidfdSendSignal, recvFd, sendFd,
  socketpair, waitPidfd,
} from '../../../src/native/addon';

const WRAPPER = require.resolve('../../../src/native/addon');

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-addon-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs a node script that can require the wrapper as W; resolves with its stdout once it exits 0. */
async function runNode(script: string): Promise<string> {
  const child = spawn(process.execPath, ['-e', script], {
    env: { ...process.env, W: WRAPPER },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s; });
  child.stderr.setEncoding('utf8').on('data', (s: string) => { err += s; });
  const [code] = (await once(child, 'exit')) as [number | null];
  assert.equal(code, 0, `child failed: ${err}`);
  return out;
}

async function firstLine(child: ChildProcess): Promise<string> {
  const stdout = child.stdout;
  if (stdout === null) throw new Error('child has no stdout pipe');
  stdout.setEncoding('utf8');
  let buf = '';
  for await (const chunk of stdout) {
    buf += String(chunk);
    const nl = buf.indexOf('\n');
    if (nl >= 0) return buf.slice(0, nl);
  }
  throw new Error(`child closed stdout after ${JSON.stringify(buf)}`);
}

function pidOf(child: ChildProcess): number {
  if (child.pid === undefined) throw new Error('spawn failed');
  return child.pid;
}

function isCloexec(fd: number): boolean {
  const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
  if (flags === undefined) throw new Error(`no flags in fdinfo of ${fd}`);
  return (parseInt(flags, 8) & constants.O_CLOEXEC) !== 0;
}

test('the addon is loaded on first use, not on import', async () => {
  const out = await runNode(`
    const maps = () => require('fs').readFileSync('/proc/self/maps', 'utf8').includes('stockade_addon.node');
    const a = require(process.env.W);
    const before = maps();
    a.socketpair();
    console.log(JSON.stringify({ before, after: maps() }));`);
  assert.deepEqual(JSON.parse(out), { before: false, after: true });
});

test('errors carry code, negated errno and syscall, like Node system errors', async () => {
  const child = spawn('true');
  const reaped = pidOf(child);
  await once(child, 'exit');
  assert.throws(() => pidfdOpen(reaped), (e: unknown) => {
    if (!isSystemError(e, 'ESRCH')) return false;
    assert.equal(e.errno, -osConstants.errno.ESRCH);
    assert.equal(e.syscall, 'pidfd_open');
    assert.equal(e.message, 'ESRCH: no such process, pidfd_open');
    return true;
  });
  assert.throws(() => flockSync(9999, 'ex'), { code: 'EBADF', syscall: 'flock' });
});

test('bad arguments throw TypeError or RangeError before any syscall', () => {
  assert.throws(() => flockSync(0, 'xx' as 'ex'), { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => pidfdOpen('1' as unknown as number), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  assert.throws(() => pidfdOpen(1.5), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => pidfdOpen(0), { name: 'RangeError' });
  assert.throws(() => openat2(constants.AT_FDCWD, '/etc\0/passwd', 0), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => openat2(constants.AT_FDCWD, 'x'.repeat(5000), 0), { code: 'ENAMETOOLONG' });
  assert.throws(() => pidfdSendSignal(0, 'SIGNOPE' as NodeJS.Signals), { code: 'SIGNAL_INVALID' });
});

test('flock excludes another process; flockAsync waits without freezing the event loop', async (t) => {
  const file = join(tempDir(t), 'lock');
  writeFileSync(file, '');
  const holder = spawn(process.execPath, ['-e', `
    const a = require(process.env.W);
    const fd = require('fs').openSync(process.env.F, 'r');
    a.flockSync(fd, 'ex');
    process.stdout.write('locked\\n');
    process.stdin.once('data', () => process.exit(0));`], {
    env: { ...process.env, W: WRAPPER, F: file },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  t.after(() => holder.kill('SIGKILL'));
  assert.equal(await firstLine(holder), 'locked');

  const fd = openSync(file, 'r');
  t.after(() => closeSync(fd));
  assert.throws(() => flockSync(fd, 'ex', true), { code: 'EAGAIN', syscall: 'flock' });
  assert.throws(() => flockSync(fd, 'sh', true), { code: 'EAGAIN' });

  let acquired = false;
  const waiting = flockAsync(fd, 'ex').then(() => { acquired = true; });
  let ticks = 0;
  const timer = setInterval(() => { ticks++; }, 10);
  await sleep(150);
  clearInterval(timer);
  assert.equal(acquired, false, 'the lock is still held by the other process');
  assert.ok(ticks >= 5, `timers kept running while flockAsync waited (${ticks} ticks)`);

  holder.stdin?.write('release\n');
  await waiting;
  assert.equal(acquired, true);
  // Held now by this process, so a second open file description cannot take it.
  const other = openSync(file, 'r');
  t.after(() => closeSync(other));
  assert.throws(() => flockSync(other, 'sh', true), { code: 'EAGAIN' });
  flockSync(fd, 'un');
  flockSync(other, 'sh', true);
  flockSync(other, 'un');
});

test('pidfd: open, probe with signal 0, signal, then ESRCH once reaped', async (t) => {
  const child = spawn('sleep', ['30'], { stdio: 'ignore' });
  t.after(() => child.kill('SIGKILL'));
  const pidfd = pidfdOpen(pidOf(child));
  t.after(() => closeSync(pidfd));
  assert.ok(isCloexec(pidfd));
  pidfdSendSignal(pidfd, 0);
  pidfdSendSignal(pidfd, 'SIGTERM');
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  assert.equal(code, null);
  assert.equal(signal, 'SIGTERM');
  // The pidfd still names the dead process, never whatever reuses its pid.
  assert.throws(() => pidfdSendSignal(pidfd, osConstants.signals.SIGTERM), { code: 'ESRCH', syscall: 'pidfd_send_signal' });
});

test('pidfdGetfd duplicates another process\'s fd', async (t) => {
  const child = spawn('sleep', ['30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  t.after(() => child.kill('SIGKILL'));
  const pidfd = pidfdOpen(pidOf(child));
  t.after(() => closeSync(pidfd));
  // sleep's stdout is one end of the socket pair whose other end is child.stdout here.
  const stolen = pidfdGetfd(pidfd, 1);
  let open = true;
  // Left open, the stolen end would keep child.stdout from ever seeing EOF, and the test runner alive.
  t.after(() => { if (open) closeSync(stolen); });
  assert.ok(isCloexec(stolen));
  assert.ok(fstatSync(stolen).isSocket());
  const read = once(child.stdout, 'data');
  writeSync(stolen, 'through the stolen fd');
  closeSync(stolen);
  open = false;
  assert.equal(String((await read)[0]), 'through the stolen fd');
  assert.throws(() => pidfdGetfd(pidfd, 999), { code: 'EBADF', syscall: 'pidfd_getfd' });
});

test('waitPidfd reaps an adopted child: exit code and signal', async () => {
  // A subreaper of its own, so orphans of other tests never land on the test runner.
  const out = await runNode(`
    const a = require(process.env.W);
    const { execFileSync } = require('child_process');
    a.setChildSubreaper();
    // sh exits at once; its background job is re-parented to this process. The job's output goes
    // elsewhere, or execFileSync would wait for it to close the pipe.
    const orphan = (cmd) => Number(execFileSync('sh', ['-c', cmd + ' >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' }));
    (async () => {
      const exited = a.pidfdOpen(orphan("sh -c 'sleep 0.1; exit 7'"));
      const killed = a.pidfdOpen(orphan('sleep 30'));
      const first = a.waitPidfd(exited);
      a.pidfdSendSignal(killed, 'SIGKILL');
      const results = [await first, await a.waitPidfd(killed)];
      let again;
      try { await a.waitPidfd(exited); } catch (e) { again = e.code; }
      console.log(JSON.stringify({ results, again }));
    })();`);
  assert.deepEqual(JSON.parse(out), {
    results: [{ code: 7, signal: null }, { code: null, signal: osConstants.signals.SIGKILL }],
    again: 'ECHILD',
  });
});

test('waitPidfd rejects with ECHILD for a process that is not our child', async (t) => {
  const self = pidfdOpen(process.pid);
  t.after(() => closeSync(self));
  await assert.rejects(waitPidfd(self), { code: 'ECHILD', syscall: 'waitid', errno: -osConstants.errno.ECHILD });
});

test('sendFd/recvFd pass an fd and data over a socketpair', (t) => {
  const [a, b] = socketpair();
  t.after(() => { closeSync(b); });
  assert.ok(isCloexec(a) && isCloexec(b));
  const file = join(tempDir(t), 'payload');
  writeFileSync(file, 'the file behind the fd');
  const fd = openSync(file, 'r');

  sendFd(a, fd, Buffer.from('meta'));
  closeSync(fd);
  const got = recvFd(b);
  assert.equal(got.data.toString(), 'meta');
  if (got.fd === null) throw new Error('no fd received');
  assert.ok(isCloexec(got.fd));
  const buf = Buffer.alloc(64);
  const n = readSync(got.fd, buf, 0, buf.length, 0);
  assert.equal(buf.toString('utf8', 0, n), 'the file behind the fd');
  closeSync(got.fd);

  sendFd(a, 0);
  const empty = recvFd(b);
  assert.deepEqual([...empty.data], [0], 'an empty message travels as one NUL byte');
  if (empty.fd === null) throw new Error('no fd received');
  closeSync(empty.fd);

  closeSync(a);
  const eof = recvFd(b);
  assert.equal(eof.fd, null);
  assert.equal(eof.data.length, 0);
  assert.throws(() => sendFd(b, 0), { code: 'EPIPE', syscall: 'sendmsg' });
});

test('openat2 RESOLVE_IN_ROOT keeps .., absolute paths and absolute symlinks inside the root', (t) => {
  const root = tempDir(t);
  mkdirSync(join(root, 'etc'));
  mkdirSync(join(root, 'deep', 'er'), { recursive: true });
  writeFileSync(join(root, 'etc', 'passwd'), 'inside the root\n');
  symlinkSync('/etc/passwd', join(root, 'abs'));
  symlinkSync('../../../../../../etc/passwd', join(root, 'deep', 'er', 'rel'));

  const { AT_FDCWD, O_PATH, O_DIRECTORY, RESOLVE_IN_ROOT, RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS, RESOLVE_NO_MAGICLINKS } =
    constants;
  const rootFd = openat2(AT_FDCWD, root, O_PATH | O_DIRECTORY);
  t.after(() => closeSync(rootFd));
  assert.ok(isCloexec(rootFd), 'O_CLOEXEC is always added');

  const readIn = (path: string): string => {
    const fd = openat2(rootFd, path, 0, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    try {
      return readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  };
  for (const path of ['../../etc/passwd', '/etc/passwd', 'abs', 'deep/er/rel', '/../abs']) {
    assert.equal(readIn(path), 'inside the root\n', path);
  }

  assert.throws(() => openat2(rootFd, '../../etc/passwd', 0, 0, RESOLVE_BENEATH), { code: 'EXDEV', syscall: 'openat2' });
  assert.throws(() => openat2(rootFd, 'abs', 0, 0, RESOLVE_NO_SYMLINKS), { code: 'ELOOP' });
  assert.throws(() => openat2(AT_FDCWD, '/proc/self/exe', 0, 0, RESOLVE_NO_MAGICLINKS), { code: 'ELOOP' });
  assert.throws(() => openat2(rootFd, 'missing', 0, 0, RESOLVE_IN_ROOT), (e: unknown) => {
    if (!isSystemError(e, 'ENOENT')) return false;
    assert.equal(e.errno, -osConstants.errno.ENOENT);
    return true;
  });
  // The kernel refuses a mode without O_CREAT rather than ignoring it.
  assert.throws(() => openat2(rootFd, 'etc/passwd', 0, 0o644), { code: 'EINVAL' });
});

test('constants match the kernel ABI', () => {
  assert.equal(constants.RESOLVE_NO_XDEV, 0x01);
  assert.equal(constants.RESOLVE_NO_MAGICLINKS, 0x02);
  assert.equal(constants.RESOLVE_NO_SYMLINKS, 0x04);
  assert.equal(constants.RESOLVE_BENEATH, 0x08);
  assert.equal(constants.RESOLVE_IN_ROOT, 0x10);
  assert.equal(constants.AT_FDCWD, -100);
  assert.equal(constants.O_DIRECTORY, fsConstants.O_DIRECTORY);
  assert.equal(constants.O_NOFOLLOW, fsConstants.O_NOFOLLOW);
  assert.ok(Object.isFrozen(constants));
});
