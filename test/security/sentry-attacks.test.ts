// Attacks on the sentry itself, run as the workload of `stockade do --isolation sentry`: races on the path it read, symlinks, magic links, /proc/self/exe, denied calls, leaked fds, dying callers.
//
// The attacker is test/fixtures/sentry-attack.c, built here with gcc -static into test/fixtures/bin
// (under `do` the host root is the container's root, so the binary is visible inside). The escape
// marker is a file in the host's /tmp: the container has a fresh /tmp, so only a resolution that
// left the container's mount namespace (the sentry's own, the host's) can read it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { sentryNative } from '../../src/native/addon';
import { initBinary, packageRoot } from '../../src/native/paths';
import { Runtime, integrationSkip, json, leftovers, type Result } from '../integration/harness';

const FIXTURES = join(packageRoot(), 'test', 'fixtures');
const SOURCE = join(FIXTURES, 'sentry-attack.c');
const ATTACK = join(FIXTURES, 'bin', 'sentry-attack');
const SECRET = 'HOST-SECRET';

function compilerSkip(): string | undefined {
  const r = spawnSync(process.env['CC'] ?? 'gcc', ['--version'], { stdio: 'ignore' });
  return r.status === 0 ? undefined : 'the attacker is built with gcc -static, which is not available';
}

function notificationSkip(): string | undefined {
  const sizes = sentryNative().notifSizes();
  return typeof sizes === 'number' ? `seccomp user notification is missing here (SECCOMP_GET_NOTIF_SIZES: ${sizes})` : undefined;
}

const skip = integrationSkip() ?? compilerSkip() ?? notificationSkip();

/** Builds the attacker when its source is newer, under a private name renamed into place (as build.sh does). */
function buildAttack(): string {
  if (existsSync(ATTACK) && statSync(ATTACK).mtimeMs >= statSync(SOURCE).mtimeMs) return ATTACK;
  mkdirSync(join(FIXTURES, 'bin'), { recursive: true });
  const tmp = `${ATTACK}.${process.pid}.tmp`;
  try {
    execFileSync(process.env['CC'] ?? 'gcc', ['-static', '-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-o', tmp, SOURCE]);
    renameSync(tmp, ATTACK);
  } finally {
    rmSync(tmp, { force: true });
  }
  return ATTACK;
}

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

type Level = 'sentry' | 'namespaces';

/** `stockade do --isolation LEVEL -- sentry-attack ARGS`; with trace, the sentry's records come on stderr. */
function attack(rt: Runtime, level: Level, args: readonly string[], opts: { trace?: boolean; timeout?: number } = {}): Result {
  const before = process.env['STOCKADE_SENTRY_TRACE'];
  if (opts.trace === true) process.env['STOCKADE_SENTRY_TRACE'] = '1';
  else delete process.env['STOCKADE_SENTRY_TRACE'];
  try {
    // The attacker's directory as the working directory: wherever the checkout is, `do` shows the
    // container its working directory, bound back read-only even below the fresh /tmp, /var/tmp or /run.
    return rt.run(['do', '--isolation', level, '--', ATTACK, ...args], { timeout: opts.timeout ?? 120_000, cwd: dirname(ATTACK) });
  } finally {
    if (before === undefined) delete process.env['STOCKADE_SENTRY_TRACE'];
    else process.env['STOCKADE_SENTRY_TRACE'] = before;
  }
}

/** The attacker's one JSON line, after checking it ran to its end and was not killed. */
function report<T>(r: Result, what: string): T {
  assert.equal(r.signal, null, `${what}: stockade was killed (${r.signal ?? ''}); stderr: ${r.stderr.slice(-2000)}`);
  assert.equal(r.status, 0, `${what}: exit ${r.status ?? ''}; stdout: ${r.stdout.slice(0, 1000)} stderr: ${r.stderr.slice(-2000)}`);
  return json<T>(r.stdout.trim());
}

interface Race { iters: number; counts: Record<string, number>; seq?: string }
interface Opened { path: string; ok: boolean; error?: string; type?: 'dir' | 'file'; content?: string; names?: string[] }
interface TraceRecord { pid: number; syscall: string; args: string[]; result: number | string }

// EACCES: /proc/1 is the init `do` puts in front of the command, which the workload may not trace.
const REFUSED = new Set(['ELOOP', 'EXDEV', 'ENOENT', 'EACCES']);
const sum = (c: Record<string, number>, keys: (k: string) => boolean): number => Object.entries(c).filter(([k]) => keys(k)).reduce((n, [, v]) => n + v, 0);
const show = (x: unknown): string => JSON.stringify(x);

describe('attacks on the sentry (stockade do --isolation sentry)', { skip }, () => {
  let rt: Runtime;
  let secretDir: string;
  let secret: string;
  before(() => {
    buildAttack();
    rt = new Runtime();
    secretDir = mkdtempSync(join(tmpdir(), 'stockade-sentry-secret-'));
    secret = join(secretDir, 'secret');
    writeFileSync(secret, SECRET);
    // The marker means something only if the container cannot see the host's /tmp at all.
    for (const level of ['sentry', 'namespaces'] as const) {
      const seen = report<{ results: Opened[] }>(attack(rt, level, ['open-paths', secret]), `sanity (${level})`);
      assert.equal(seen.results[0]?.ok, false, `${level}: the host's ${secret} is visible in the container, so it cannot mark an escape`);
    }
  });
  after(() => {
    rt.cleanup();
    rmSync(secretDir, { recursive: true, force: true });
  });

  // ---- 1. the path rewritten by a second thread after the notification ------------------------

  // The same for the opens the kernel used to finish (issue 15, item 3): an O_PATH open and a FIFO's
  // were checked, then CONTINUEd, and the kernel read the path again; now the sentry opens the
  // object it checked and installs it, so what the caller gets is what the sentry read, every time.
  for (const [mode, a, iters] of [['file', '/tmp/a', 20_000], ['opath', '/tmp/a', 10_000], ['fifo', '/tmp/fifo', 10_000]] as const) {
    test(`path rewritten by a second thread (${a} <-> /tmp/b, ${mode} open) after the notification: every fd is of the path the sentry read, opened by the sentry`, () => {
      const r = attack(rt, 'sentry', ['race-open', mode, a, '/tmp/b', String(iters)], { trace: true });
      const race = report<Race>(r, `race-open ${mode}`);
      const records = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as TraceRecord);
      const start = records.findIndex((x) => x.args[0] === '/race-start');
      const end = records.findIndex((x) => x.args[0] === '/race-end');
      assert.ok(start >= 0 && end > start, 'the trace holds the loop');
      const pid = records[start]?.pid;
      const opens = records.slice(start + 1, end).filter((x) => x.pid === pid && (x.syscall === 'openat' || x.syscall === 'open'));
      assert.equal(opens.length, iters, 'one trace record per open of the loop');
      const seq = race.seq ?? '';
      const mismatches: string[] = [];
      opens.forEach((o, i) => {
        const got = seq[i];
        const read = o.args[0];
        const want = read === '/tmp/a' ? 'a' : read === '/tmp/b' ? 'b' : read === '/tmp/fifo' ? 'f' : 'E';
        // A path torn mid-rewrite names nothing: it must be refused, whatever the caller's buffer says now.
        // "fd N" is an open the sentry made and installed; "continue: ..." would be the kernel's own.
        if (got !== want || (want !== 'E') !== String(o.result).startsWith('fd ')) mismatches.push(`#${i}: sentry read ${show(read)} -> ${show(o.result)}, the caller got ${got ?? '?'}`);
      });
      const counts = show(race.counts);
      assert.deepEqual(mismatches.slice(0, 20), [], `the caller got another file than the sentry read (${mismatches.length} of ${iters}); counts ${counts}`);
      const first = mode === 'fifo' ? 'fifo' : 'a';
      assert.ok((race.counts[first] ?? 0) > 0 && (race.counts['b'] ?? 0) > 0, `both paths were seen, so the race ran: ${counts}`);
    });
  }

  test('path rewritten by a second thread to the magic link /proc/self/root/tmp/b after the check: each open reads "a" or is refused', () => {
    const iters = 20_000;
    const flip = ['race-open', 'file', '/tmp/a', '/proc/self/root/tmp/b', String(iters)];
    const s = report<Race>(attack(rt, 'sentry', flip), 'race-open (sentry)');
    const n = report<Race>(attack(rt, 'namespaces', flip), 'race-open (namespaces)');
    const outcomes = `sentry ${show(s.counts)}, namespaces ${show(n.counts)}`;
    // Under namespaces the kernel follows the magic link (inside the container): "b" is what a
    // re-resolution after the sentry's check would read.
    assert.ok((n.counts['b'] ?? 0) > 0, `the kernel alone follows the link: ${outcomes}`);
    assert.equal(s.counts['b'], undefined, `the kernel re-resolved the rewritten path after the sentry refused it: ${outcomes}`);
    assert.deepEqual(Object.keys(s.counts).filter((k) => k !== 'a' && !REFUSED.has(k)), [], outcomes);
    assert.ok((s.counts['a'] ?? 0) > 0 && (s.counts['ELOOP'] ?? 0) > 0, `both paths were read by the sentry, so the race ran: ${outcomes}`);
  });

  // These opens were once checked, then CONTINUEd (the kernel read the path again from the caller's
  // memory); now the sentry opens what it checked. Either way the rewritten path must not reach a
  // magic link: the sentry resolves with RESOLVE_NO_MAGICLINKS.
  for (const [mode, checked, note] of [
    ['opath', '/tmp/a', 'an O_PATH open'],
    ['fifo', '/tmp/fifo', 'a FIFO open'],
  ] as const) {
    test(`path rewritten by a second thread after the check of ${note}: never the magic link /proc/self/root/tmp/b`, () => {
      const s = report<Race>(attack(rt, 'sentry', ['race-open', mode, checked, '/proc/self/root/tmp/b', '20000']), `race-open ${mode}`);
      const counts = show(s.counts);
      assert.ok(sum(s.counts, (k) => k === 'a' || k === 'fifo') > 0, `the checked path was opened, so the race ran: ${counts}`);
      assert.equal(s.counts['b'], undefined, `the caller got an fd of /tmp/b through /proc/self/root, which the sentry refuses: ${counts}`);
    });
  }

  // ---- 2. a symlink swapped during resolution ----------------------------------------------------

  test('symlink swapped during resolution (to /../.. out of the root, to /proc/self/root and /proc/2/root, to /proc/self/fd/0): only in-root files, never a magic link or the host', () => {
    // Pid 2 is the attacker itself, under do's init (pid 1, which it may not trace: the open-paths
    // test below meets its EACCES).
    const bad = [
      `/../../../../../../..${secret}`, secret, '/proc/self/root/tmp/m', '/proc/2/root/tmp/m', '/proc/self/fd/0',
      '../../../../../../../../tmp/d', `/proc/self/root${secret}`, '/proc/thread-self/root/tmp/m',
    ];
    const s = report<Race>(attack(rt, 'sentry', ['race-symlink', '20000', ...bad]), 'race-symlink (sentry)');
    // The control: under namespaces alone the kernel does follow the magic link when the swap
    // lands mid-open, which shows the race is one that matters. Whether a run of the race hits
    // that moment depends on scheduling (on a loaded machine one in several runs does not), so
    // the control runs up to three times; the sentry's run is judged on its one run, every open.
    const n: Race = { iters: 0, counts: {} };
    for (let i = 0; i < 3 && (n.counts['magic'] ?? 0) === 0; i++) {
      const one = report<Race>(attack(rt, 'namespaces', ['race-symlink', '20000', ...bad]), 'race-symlink (namespaces)');
      n.iters += one.iters;
      for (const [k, v] of Object.entries(one.counts)) n.counts[k] = (n.counts[k] ?? 0) + v;
    }
    const outcomes = `sentry ${show(s.counts)}, namespaces ${show(n.counts)}`;
    assert.ok(!Object.keys(s.counts).some((k) => k.startsWith(SECRET)) && !Object.keys(n.counts).some((k) => k.startsWith(SECRET)), `the host's /tmp was read: ${outcomes}`);
    // "a" and "dotdot" (../.. stays in the root) are files of the root; the magic links are refused.
    assert.deepEqual(Object.keys(s.counts).filter((k) => k !== 'a' && k !== 'dotdot' && !REFUSED.has(k)), [], outcomes);
    assert.ok((s.counts['a'] ?? 0) > 0 && (s.counts['dotdot'] ?? 0) > 0 && (s.counts['ELOOP'] ?? 0) > 0, `every kind of target was met: ${outcomes}`);
    assert.ok((n.counts['magic'] ?? 0) > 0, `the kernel alone follows /proc/self/root inside the container: ${outcomes}`);
  });

  // ---- 3. `..` and magic links out of the root ------------------------------------------------------

  test('.. and magic links out of the root: /.. stays at the root, /proc/*/root, /proc/self/cwd, /proc/self/fd/N/.. and /dev/fd/N/.. are refused', () => {
    // "%d": an fd of /tmp the attacker holds; "@": relative to a cwd of /tmp.
    const dotdot = ['/../../../../etc/hostname', `/../../../../..${secret}`, `@../../../../../..${secret}`, '@../../../../etc/hostname'];
    const magic = ['/proc/1/root/..', `/proc/1/root${secret}`, `/proc/self/root${secret}`, '/proc/self/root/etc/hostname', '/proc/thread-self/root/etc/hostname',
      '/proc/self/cwd/../..', '/proc/1/cwd', '/proc/self/fd/%d/..', '/proc/self/fd/%d/../..', '/dev/fd/%d/../..', '/proc/self/ns/mnt', '/proc/1/fd/0'];
    const s = report<{ results: Opened[] }>(attack(rt, 'sentry', ['open-paths', ...dotdot, ...magic]), 'open-paths (sentry)').results;
    const n = report<{ results: Opened[] }>(attack(rt, 'namespaces', ['open-paths', ...dotdot, ...magic]), 'open-paths (namespaces)').results;
    const line = (o: Opened): string => `${o.path}: ${o.ok ? `${o.type ?? ''} ${o.content ?? (o.names ?? []).slice(0, 5).join(',')}` : o.error ?? ''}`;
    const table = `sentry:\n${s.map(line).join('\n')}\nnamespaces:\n${n.map(line).join('\n')}`;
    assert.ok(![...s, ...n].some((o) => (o.content ?? '').startsWith(SECRET)), `the host's /tmp was read:\n${table}`);
    const hostname = readFileSync('/etc/hostname', 'utf8').slice(0, 47).replace(/[\n"\\\x00-\x1f]/g, '_');
    for (const i of [0, 3]) {
      assert.equal(s[i]?.content, hostname, `/.. stops at the root:\n${table}`);
      assert.equal(n[i]?.content, hostname, table);
    }
    for (const i of [1, 2]) assert.equal(s[i]?.error, 'ENOENT', table);
    // /proc/1/fd/0 is pid 1's fd 0: under do that is its init's (the attacker is pid 2), which it may
    // not trace, so both levels refuse it alike; were it the caller's own, the sentry would open it
    // as the kernel does (caller-fd.ts). The other links are refused.
    const ownFd = (o: Opened): boolean => o.path === '/proc/1/fd/0';
    for (const o of s.slice(dotdot.length).filter((x) => !ownFd(x))) assert.ok(!o.ok && REFUSED.has(o.error ?? ''), `the sentry followed a magic link:\n${table}`);
    assert.deepEqual(s.filter(ownFd).map((o) => o.error ?? o.content), n.filter(ownFd).map((o) => o.error ?? o.content), table);
    // The kernel alone follows them, inside the container: what the sentry's RESOLVE_NO_MAGICLINKS
    // removes (/proc/1 is do's init, which the workload may not trace: EACCES at both levels).
    const followed = n.slice(dotdot.length).filter((o) => o.ok).map((o) => o.path);
    for (const p of ['/proc/self/cwd/../..', '/proc/self/root/etc/hostname']) assert.ok(followed.includes(p), `namespaces follows ${p}:\n${table}`);
  });

  // ---- 4. /proc/self/exe (the CVE-2019-5736 shape) ------------------------------------------------------

  test('CVE-2019-5736 shape: /proc/self/exe, /proc/PID/exe and a child\'s /proc/PPID/exe opened for writing are refused; the binaries are unchanged', () => {
    const hashes = [ATTACK, initBinary()].map((p) => [p, sha256(p)] as const);
    interface Try { path: string; mode: string; ok: boolean; error: string | null }
    interface Exe { write: Try[]; read: Try[]; child: { results: Try[] } | null; child_via_proc_self_exe: { results: Try[] } | null; busybox_status: string }
    const s = report<Exe>(attack(rt, 'sentry', ['exe']), 'exe (sentry)');
    const n = report<Exe>(attack(rt, 'namespaces', ['exe']), 'exe (namespaces)');
    const outcomes = `sentry ${show(s)}\nnamespaces ${show(n)}`;
    const writes = [...s.write, ...(s.child?.results ?? []), ...(s.child_via_proc_self_exe?.results ?? [])];
    assert.ok(s.child !== null, `the child re-executed by its path ran: ${outcomes}`);
    assert.deepEqual(writes.filter((w) => w.ok), [], `a writable fd of an executable: ${outcomes}`);
    assert.notEqual(s.busybox_status, 'exit 0', `busybox sh appended to its parent's executable: ${outcomes}`);
    for (const [p, h] of hashes) assert.equal(sha256(p), h, `${p} is unchanged`);
  });

  interface Exe { read: { ok: boolean; error: string | null }[]; exec_by_name: string; exec_proc_self_exe: string; exec_proc_pid_exe: string }

  test('legitimate use of /proc/self/exe: a program reads its own executable as under namespaces', () => {
    const s = report<Exe>(attack(rt, 'sentry', ['exe']), 'exe (sentry)');
    const n = report<Exe>(attack(rt, 'namespaces', ['exe']), 'exe (namespaces)');
    const pick = (e: Exe): unknown => ({ read: e.read.map((r) => r.ok ? 'ok' : r.error), byName: e.exec_by_name });
    assert.ok(n.read.length > 0 && n.read.every((r) => r.ok), show(n));
    assert.deepEqual(pick(s), pick(n));
  });

  test('legitimate use of /proc/self/exe: re-executing through it works as under namespaces', () => {
    const s = report<Exe>(attack(rt, 'sentry', ['exe']), 'exe (sentry)');
    const n = report<Exe>(attack(rt, 'namespaces', ['exe']), 'exe (namespaces)');
    assert.equal(n.exec_proc_self_exe, 'exit 0');
    assert.deepEqual([s.exec_proc_self_exe, s.exec_proc_pid_exe], [n.exec_proc_self_exe, n.exec_proc_pid_exe]);
  });

  // ---- 5. every DENIED call --------------------------------------------------------------------------

  test('every DENIED call, made by a real program under the sentry, gets the table\'s errno and nothing is killed', () => {
    interface Cond { index: number; op: string; value: string; valueTwo: string }
    interface Rule { when: Cond[]; class: string; errno: number | null }
    interface Entry { name: string; class: string; errno: number | null; rules: Rule[] }
    const features = rt.run(['features', '--syscalls', '--format', 'json']);
    assert.equal(features.status, 0, features.stderr);
    const table = new Map(json<{ syscalls: Entry[] }>(features.stdout).syscalls.map((e) => [e.name, e]));
    // The arguments the attacker passes where a rule reads them.
    const args: Record<string, bigint[]> = {
      'socket:AF_PACKET': [17n, 3n, 0n], 'socket:AF_INET,SOCK_RAW': [2n, 3n, 1n], 'socket:AF_NETLINK,NETLINK_AUDIT': [16n, 3n, 9n],
      'clone:CLONE_NEWNS': [0x20000n | 17n], 'clone:CLONE_NEWUSER': [0x10000000n | 17n], 'personality:READ_IMPLIES_EXEC': [0x0400000n],
    };
    const verdict = (e: Entry, a: bigint[]): { class: string; errno: number | null } => {
      for (const r of e.rules) {
        const holds = r.when.every((c) => {
          const v = a[c.index] ?? 0n;
          return c.op === 'MASKED_EQ' ? (v & BigInt(c.value)) === BigInt(c.valueTwo) : c.op === 'EQ' ? v === BigInt(c.value) : false;
        });
        if (holds) return r;
      }
      return e;
    };
    const r = attack(rt, 'sentry', ['denied']);
    const got = report<{ results: Record<string, number> }>(r, 'denied').results;
    const wrong: string[] = [];
    for (const [key, errno] of Object.entries(got)) {
      const name = key.split(':')[0] ?? key;
      const e = table.get(name);
      if (e === undefined) { wrong.push(`${key}: not in the table`); continue; }
      const v = verdict(e, args[key] ?? []);
      // chroot is MEDIATED so that the sentry, which resolves against one root, answers EPERM itself.
      const want = name === 'chroot' ? { class: 'MEDIATED', errno: 1 } : { class: 'DENIED', errno: v.errno };
      if (v.class !== want.class || errno !== want.errno) wrong.push(`${key}: got errno ${errno}, the table says ${v.class} ${v.errno ?? ''}`);
    }
    assert.equal(Object.keys(got).length, 35, show(got));
    assert.deepEqual(wrong, [], show(got));
  });

  // ---- 6. leaked fds and the sentry's process --------------------------------------------------------

  test('leaked fd: the workload holds only 0, 1, 2 (and its own), no listener, sentry socket or sync fd, and reaches no process outside', () => {
    interface Fds { pid: number; dirfd: number; fds: { fd: number; target: string }[]; proc_pids: number[]; kill_all: string; kill_reaches: number[] }
    const d = report<Fds>(attack(rt, 'sentry', ['fds']), 'fds');
    assert.deepEqual(d.fds.map((x) => x.fd).sort((a, b) => a - b), [0, 1, 2, d.dirfd].sort((a, b) => a - b), show(d.fds));
    // 0, 1 and 2 are the test's own pipes, passed through; nothing above them may be a socket or a listener.
    assert.deepEqual(d.fds.filter((x) => x.fd > 2 && /anon_inode|socket:|seccomp/.test(x.target)), [], show(d.fds));
    // Pid 1 is the init in front of the command (`do`), pid 2 the attacker.
    assert.deepEqual(d.proc_pids, [1, d.pid], 'the sentry\'s process is not in the container\'s /proc');
    assert.equal(d.kill_all, 'ESRCH', 'kill(-1, 0) reaches nobody');
    assert.deepEqual(d.kill_reaches.filter((p) => p !== 1), [], 'no pid but the init answers kill(pid, 0)');
    // A process started later, under a shell, holds no more.
    const sh = rt.run(['do', '--isolation', 'sentry', '--', '/bin/sh', '-c', `${ATTACK} fds; exit 0`]);
    const f = report<Fds>(sh, 'fds under sh');
    assert.deepEqual(f.fds.map((x) => x.fd).sort((a, b) => a - b), [0, 1, 2, f.dirfd].sort((a, b) => a - b), show(f.fds));
    assert.deepEqual(f.kill_reaches.filter((p) => !f.proc_pids.includes(p)), [], show(f));
  });

  // ---- 7. callers killed while their calls are pending -------------------------------------------------

  test('callers SIGKILLed while their opens are pending do not wedge the sentry: a fresh open works and do exits', () => {
    // A wedged sentry keeps do from exiting: the call's timeout kills it and report() fails on that.
    const r = attack(rt, 'sentry', ['kill-storm', '400'], { timeout: 90_000 });
    const k = report<{ rounds: number; killed: number; after: string }>(r, 'kill-storm');
    assert.ok(k.killed > 0, show(k));
    assert.equal(k.after, 'a', `the open after the storm: ${show(k)}`);
    assert.deepEqual(leftovers(rt), []);
  });
});
