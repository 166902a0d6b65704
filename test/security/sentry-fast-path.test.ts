// The sentry's native fast path (native/addon/fastpath.c) makes the decisions the TypeScript handlers make: the same answers with it and without it, and the escapes it serves itself refused.
//
// test/fixtures/sentry-fastpath.c runs as the workload of `stockade do --isolation sentry`, with the
// fast path (the default) and with STOCKADE_SENTRY_FAST=0 (every call in TypeScript). The battery
// stats and opens paths of every kind the fast path serves or must hand over (symlinks in and out of
// the root, `..`, magic links, links into /proc, FIFOs, O_PATH, the caller's fds, devices) and prints
// what each got in terms that do not depend on the run: the two runs must print the same. The race
// swaps a symlink between a file and escapes while stat and open go through it natively; race-rel
// flips a relative path's start (a dirfd, the cwd) and rewrites a path being read; race-kill
// kills callers mid-call. The
// sentry's debug line ("N calls served (M natively)") shows the fast path served the calls.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { sentryNative } from '../../src/native/addon';
import { packageRoot } from '../../src/native/paths';
import { Runtime, integrationSkip, json, type Result } from '../integration/harness';

const FIXTURES = join(packageRoot(), 'test', 'fixtures');
const SOURCE = join(FIXTURES, 'sentry-fastpath.c');
const PROGRAM = join(FIXTURES, 'bin', 'sentry-fastpath');

function compilerSkip(): string | undefined {
  const r = spawnSync(process.env['CC'] ?? 'gcc', ['--version'], { stdio: 'ignore' });
  return r.status === 0 ? undefined : 'the workload is built with gcc -static, which is not available';
}

function fastPathSkip(): string | undefined {
  if (process.arch !== 'x64') return 'the native fast path serves the x86_64 ABI only';
  const sizes = sentryNative().notifSizes();
  return typeof sizes === 'number' ? `seccomp user notification is missing here (SECCOMP_GET_NOTIF_SIZES: ${sizes})` : undefined;
}

const skip = integrationSkip() ?? compilerSkip() ?? fastPathSkip();

/** Builds the workload when its source is newer, under a private name renamed into place. */
function buildProgram(): void {
  if (existsSync(PROGRAM) && statSync(PROGRAM).mtimeMs >= statSync(SOURCE).mtimeMs) return;
  mkdirSync(join(FIXTURES, 'bin'), { recursive: true });
  const tmp = `${PROGRAM}.${process.pid}.tmp`;
  try {
    execFileSync(process.env['CC'] ?? 'gcc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-o', tmp, SOURCE]);
    renameSync(tmp, PROGRAM);
  } finally {
    rmSync(tmp, { force: true });
  }
}

interface Run {
  readonly result: Result;
  /** The calls the sentry served, and of them those the fast path answered (its --debug line). */
  readonly served: number;
  readonly natively: number;
}

/** `stockade --debug do --isolation sentry --user USER -- sentry-fastpath ARGS`, with or without the fast path. */
function run(rt: Runtime, fast: boolean, user: string, args: readonly string[]): Run {
  const logBefore = existsSync(rt.log) ? readFileSync(rt.log, 'utf8').length : 0;
  const result = rt.run(['--debug', 'do', '--isolation', 'sentry', '--user', user, '--', PROGRAM, ...args], {
    timeout: 180_000, cwd: dirname(PROGRAM), env: fast ? {} : { STOCKADE_SENTRY_FAST: '0' },
  });
  assert.equal(result.signal, null, `stockade was killed; stderr: ${result.stderr.slice(-2000)}`);
  assert.equal(result.status, 0, `exit ${result.status ?? ''}; stdout: ${result.stdout.slice(0, 2000)} stderr: ${result.stderr.slice(-2000)}`);
  // One line per process served; the workload's is the one with calls.
  const lines = readFileSync(rt.log, 'utf8').slice(logBefore).split('\n');
  let served = 0;
  let natively = 0;
  for (const l of lines) {
    const m = /(\d+) calls served \((\d+) natively\)/.exec(l);
    if (m === null) continue;
    served += Number(m[1]);
    natively += Number(m[2]);
  }
  assert.ok(served > 0, `the sentry said what it served (--debug): ${lines.join('\n').slice(-2000)}`);
  return { result, served, natively };
}

describe('the sentry\'s native fast path decides as the TypeScript handlers do', { skip }, () => {
  let rt: Runtime;
  let secretDir: string;
  let secret: string;
  before(() => {
    buildProgram();
    rt = new Runtime();
    secretDir = mkdtempSync(join(tmpdir(), 'stockade-fastpath-secret-'));
    secret = join(secretDir, 'secret');
    writeFileSync(secret, 'HOST-SECRET');
  });
  after(() => {
    rt.cleanup();
    rmSync(secretDir, { recursive: true, force: true });
  });

  for (const user of ['1000:1000', '0']) {
    test(`the battery of stats and opens gets the same answers with the fast path and without it (--user ${user})`, () => {
      const fast = run(rt, true, user, ['battery']);
      const slow = run(rt, false, user, ['battery']);
      const a = fast.result.stdout.split('\n');
      const b = slow.result.stdout.split('\n');
      const differ = a.map((l, i) => (l === b[i] ? undefined : `fast: ${l}\n  ts: ${b[i] ?? ''}`)).filter((x) => x !== undefined);
      assert.deepEqual(differ, [], `the fast path answered otherwise than TypeScript:\n${differ.slice(0, 30).join('\n')}`);
      assert.equal(a.length, b.length);
      // The runs differ in who answered: most calls natively with it, none without it.
      assert.equal(slow.natively, 0, 'STOCKADE_SENTRY_FAST=0 serves every call in TypeScript');
      assert.ok(fast.natively > 300, `the fast path served the battery's stats and opens: ${fast.natively} of ${fast.served}`);
      const out = fast.result.stdout;
      // What the answers are, beside being equal: `..` stays in the root, magic links are refused,
      // a link of the root's into /proc is followed into the sentry's /proc (by TypeScript).
      for (const want of [
        'stat /../../../../tmp/a -> =a', 'open-r /tmp/up -> =a', 'stat /tmp/l -> =a', 'lstat /tmp/l -> =l',
        'open-r /tmp/magic -> ELOOP', 'stat /tmp/magic -> ELOOP', 'open-nofollow /tmp/l -> ELOOP', 'open-dir /tmp/a -> ENOTDIR',
        'stat /tmp/loop -> ELOOP', 'stat /tmp/a/x -> ENOTDIR', 'stat  -> ENOENT', 'open-r /tmp/fd0 -> ELOOP',
        'fstatat-fd-abs /tmp/d -> =a', 'size after trunc 0',
      ]) assert.ok(out.includes(`${want}\n`) || out.includes(`${want} `), `"${want}" in:\n${out}`);
      assert.match(out, /open-r \/tmp\/pl -> file 0444 flags 00 cloexec 1 "Name:_sentry-fastpat/, 'a link into /proc reads the sentry\'s /proc');
      assert.match(out, /open-rdwr \/tmp\/fifo -> =fifo/, 'a FIFO is opened (by TypeScript, on the object it pinned)');
      if (user !== '0') assert.match(out, /open-r \/tmp\/sec -> EACCES/, 'a file the caller may not read is refused to it');
      assert.ok(!out.includes('HOST-SECRET'));
    });
  }

  test('a symlink swapped between a file and escapes (/.., /proc/self/root, /proc/1/root, /proc/self/fd/0, /proc/self/cwd) while stat and open go through it natively: never the host\'s file', () => {
    const st = statSync(secret);
    const r = run(rt, true, '0', ['race-stat', '20000', String(st.dev), String(st.ino), secret]);
    const counts = json<{ counts: Record<string, number> }>(r.result.stdout.trim()).counts;
    const shown = JSON.stringify(counts);
    assert.equal(counts['host'], undefined, `a stat or open through the swapped link reached the host's file: ${shown}`);
    assert.deepEqual(Object.keys(counts).filter((k) => !['stat:a', 'open:a', 'ELOOP', 'ENOENT', 'EACCES'].includes(k)), [], shown);
    assert.ok((counts['stat:a'] ?? 0) > 0 && (counts['open:a'] ?? 0) > 0 && (counts['ELOOP'] ?? 0) > 0, `both the file and the magic links were met, so the race ran: ${shown}`);
    assert.ok(r.natively > 20_000, `the stats and opens went through the fast path: ${r.natively} of ${r.served}`);
  });
  test('a relative path\'s start (fd 7, the cwd) flipped between /proc/self, /proc and /tmp, and an absolute path rewritten between a file and escapes, while the fast path serves them: never the host\'s file', () => {
    const st = statSync(secret);
    const r = run(rt, true, '0', ['race-rel', '3000', String(st.dev), String(st.ino), secret]);
    const counts = json<{ counts: Record<string, number> }>(r.result.stdout.trim()).counts;
    const shown = JSON.stringify(counts);
    assert.equal(counts['host'], undefined, `a call whose start or path was swapped reached the host's file: ${shown}`);
    // "other" and ENXIO: /proc/self/fd/0, the caller's stdin (a socket under the harness: ENXIO to open).
    assert.deepEqual(Object.keys(counts).filter((k) => !/^(?:[a-z-]+:(?:a|other)|ELOOP|ENOENT|EACCES|ENOTDIR|EXDEV|ENXIO)$/.test(k)), [], shown);
    assert.ok((counts['openat:a'] ?? 0) > 0 && (counts['stat-racy:a'] ?? 0) > 0 && (counts['ELOOP'] ?? 0) > 0, `the flips were met both ways: ${shown}`);
    assert.ok(r.natively > 1000, `calls went through the fast path: ${r.natively} of ${r.served}`);
  });
  test('callers killed mid-call while the fast path serves them (stale notification ids, a dead caller\'s ADDFD): the sentry serves on, rightly, and leaks no fd into the survivor', () => {
    const r = run(rt, true, '1000:1000', ['race-kill', '300']);
    const out = json<{ counts: Record<string, number>; fd_before: number; fd_after: number }>(r.result.stdout.trim());
    assert.deepEqual(out.counts, { 'open:a': 1000 }, JSON.stringify(out));
    assert.equal(out.fd_after, out.fd_before, `an fd was left in the caller: ${JSON.stringify(out)}`);
    assert.ok(r.natively > 1000, `the calls went through the fast path: ${r.natively} of ${r.served}`);
  });
});
