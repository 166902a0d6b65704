// The in-container probe run on the host: every subcommand prints JSON that parses to what it claims.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isStaticElf, probePath } from '../../helpers/rootfs';

const probe = probePath();

function run(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): { status: number | null; json: unknown } {
  const r = spawnSync(probe, args, { encoding: 'utf8', env: opts.env ?? process.env, cwd: opts.cwd ?? '/' });
  const lines = r.stdout.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one JSON line from probe ${args.join(' ')}: ${JSON.stringify(r.stdout)}`);
  return { status: r.status, json: JSON.parse(lines[0] ?? '') };
}

function object(v: unknown): Record<string, unknown> {
  assert.ok(typeof v === 'object' && v !== null && !Array.isArray(v), `an object: ${JSON.stringify(v)}`);
  return v as Record<string, unknown>;
}

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-probe-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('probe is a static binary', () => {
  assert.ok(isStaticElf(probe));
});

test('report: identity, environment and process fields match the host', (t) => {
  const cwd = tempDir(t);
  const { status, json } = run(['report', '--sysctl', 'kernel.ostype', '--sysctl', 'kernel/osrelease', '--sysctl', 'no.such.key'], {
    env: { PROBE_MARK: 'a b=c', PATH: '/bin' },
    cwd,
  });
  assert.equal(status, 0);
  const r = object(json);
  assert.equal(typeof r['pid'], 'number');
  assert.equal(r['ppid'], process.pid);
  assert.equal(r['uid'], process.getuid?.());
  assert.equal(r['gid'], process.getgid?.());
  assert.equal(r['euid'], process.geteuid?.());
  assert.equal(r['egid'], process.getegid?.());
  assert.ok(Array.isArray(r['groups']) && r['groups'].every((g) => typeof g === 'number'));
  const mask = process.umask();
  assert.equal(r['umask'], mask);
  assert.equal(r['cwd'], cwd);
  assert.equal(r['hostname'], readFileSync('/proc/sys/kernel/hostname', 'utf8').trim());
  assert.equal(r['domainname'], readFileSync('/proc/sys/kernel/domainname', 'utf8').trim());
  assert.deepEqual(r['env'], ['PROBE_MARK=a b=c', 'PATH=/bin']);

  const caps = object(r['caps']);
  assert.deepEqual(Object.keys(caps).sort(), ['amb', 'bnd', 'eff', 'inh', 'prm']);
  const status_ = readFileSync('/proc/self/status', 'utf8');
  for (const [k, field] of [['bnd', 'CapBnd'], ['amb', 'CapAmb']] as const) {
    assert.match(String(caps[k]), /^[0-9a-f]{16}$/);
    assert.equal(caps[k], new RegExp(`^${field}:\\s+(\\w+)$`, 'm').exec(status_)?.[1]);
  }
  assert.equal(typeof r['noNewPrivs'], 'boolean');
  assert.equal(r['seccomp'], Number(/^Seccomp:\s+(\d+)$/m.exec(status_)?.[1]));

  const rlimits = object(r['rlimits']);
  assert.equal(Object.keys(rlimits).length, 16);
  for (const name of ['CPU', 'FSIZE', 'DATA', 'STACK', 'CORE', 'RSS', 'NPROC', 'NOFILE', 'MEMLOCK', 'AS', 'LOCKS',
    'SIGPENDING', 'MSGQUEUE', 'NICE', 'RTPRIO', 'RTTIME']) {
    const pair = rlimits[name];
    assert.ok(Array.isArray(pair) && pair.length === 2 && pair.every((v) => Number.isInteger(v) && v >= -1), name);
  }
  const nofile = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  assert.deepEqual(rlimits['NOFILE'], [Number(nofile?.[1]), Number(nofile?.[2])]);

  assert.equal(r['oomScoreAdj'], Number(readFileSync('/proc/self/oom_score_adj', 'utf8')));
  const fds = r['fds'];
  assert.ok(Array.isArray(fds));
  for (const fd of [0, 1, 2]) assert.ok(fds.includes(fd), `fd ${fd} listed`);

  const mounts = r['mounts'];
  assert.ok(Array.isArray(mounts) && mounts.length > 0);
  const proc = mounts.map(object).find((m) => m['mountpoint'] === '/proc');
  assert.ok(proc, '/proc is listed');
  assert.equal(proc['fstype'], 'proc');
  for (const key of ['source', 'options', 'superOptions', 'root']) assert.equal(typeof proc[key], 'string');
  assert.ok(Array.isArray(proc['propagation']));

  assert.deepEqual(r['sysctl'], {
    'kernel.ostype': 'Linux',
    'kernel/osrelease': readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    'no.such.key': null,
  });
  assert.deepEqual(r['tty'], [false, false, false]);
  assert.equal(r['ttyName'], null);
  assert.equal(typeof r['sid'], 'number');
  assert.equal(typeof r['pgid'], 'number');
  const ns = object(r['ns']);
  assert.match(String(ns['mnt']), /^mnt:\[\d+\]$/);
  assert.ok(Array.isArray(r['cgroup']));
});

test('exit N, sleep and usage errors', () => {
  assert.deepEqual(run(['exit', '3']), { status: 3, json: { exit: 3 } });
  assert.deepEqual(run(['sleep', '0.05']), { status: 0, json: { slept: 0.05 } });
  assert.equal(spawnSync(probe, []).status, 2);
  assert.equal(spawnSync(probe, ['nonsense', 'x']).status, 2);
  assert.equal(spawnSync(probe, ['report', '--bogus']).status, 2);
});

test('signal-exit reports ready, then the signal it got', async () => {
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR1'] as const) {
    const child = spawn(probe, ['signal-exit'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8');
    const ready = new Promise<void>((resolve) => {
      child.stdout.on('data', (s: string) => {
        out += s;
        if (out.includes('\n')) resolve();
      });
    });
    await ready;
    child.kill(signal);
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0);
    const lines = out.trim().split('\n').map((l) => JSON.parse(l) as unknown);
    assert.deepEqual(lines, [{ ready: true }, { signal: osConstants.signals[signal] }]);
  }
});

test('try-* report ok, errno and the errno name, and always exit 0', (t) => {
  const dir = tempDir(t);
  const ok = { status: 0, json: { ok: true, errno: 0, error: null } };
  assert.deepEqual(run(['try-write', join(dir, 'f')]), ok);
  assert.deepEqual(run(['try-write', join(dir, 'f'), 'content']), ok);
  assert.equal(readFileSync(join(dir, 'f'), 'utf8'), 'content');
  assert.deepEqual(run(['try-read', join(dir, 'f')]), ok);
  assert.deepEqual(run(['try-mkdir', join(dir, 'd')]), ok);
  assert.deepEqual(run(['try-mkdir', join(dir, 'd')]), { status: 0, json: { ok: false, errno: 17, error: 'EEXIST' } });
  assert.deepEqual(run(['try-read', join(dir, 'none')]), { status: 0, json: { ok: false, errno: 2, error: 'ENOENT' } });
  assert.deepEqual(run(['try-write', join(dir, 'none', 'f')]), { status: 0, json: { ok: false, errno: 2, error: 'ENOENT' } });
  assert.deepEqual(run(['try-write', '/proc/sys/kernel/ostype']).json, { ok: false, errno: 13, error: 'EACCES' });
  if (process.getuid?.() === 0) {
    assert.deepEqual(run(['try-mknod', join(dir, 'null')]), ok);
    const st = object(run(['stat', join(dir, 'null')]).json);
    assert.equal(st['type'], 'char');
    assert.equal(st['rdevMajor'], 1);
    assert.equal(st['rdevMinor'], 3);
  }
});

test('stat, readlink, ls and cat', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'text'), Buffer.from([0x61, 0xff, 0x62, 0xc3, 0xa9, 0x0a, 0x22, 0x01]), { mode: 0o640 });
  symlinkSync('text', join(dir, 'link'));

  const st = run(['stat', join(dir, 'text')]);
  assert.equal(st.status, 0);
  assert.deepEqual(st.json, {
    exists: true, type: 'file', mode: 0o640 & ~process.umask(), uid: process.getuid?.(), gid: process.getgid?.(),
    rdevMajor: 0, rdevMinor: 0, size: 8,
  });
  assert.equal(object(run(['stat', join(dir, 'link')]).json)['type'], 'symlink');
  assert.equal(object(run(['stat', dir]).json)['type'], 'dir');
  assert.deepEqual(run(['stat', join(dir, 'none')]), { status: 0, json: { exists: false, errno: 2, error: 'ENOENT' } });

  assert.deepEqual(run(['readlink', join(dir, 'link')]), { status: 0, json: { ok: true, target: 'text' } });
  assert.deepEqual(run(['readlink', join(dir, 'text')]), { status: 1, json: { ok: false, errno: 22, error: 'EINVAL' } });
  assert.deepEqual(run(['ls', dir]), { status: 0, json: { ok: true, names: ['link', 'text'] } });
  assert.deepEqual(run(['ls', join(dir, 'none')]), { status: 1, json: { ok: false, errno: 2, error: 'ENOENT' } });
  // Invalid UTF-8 comes out as U+FFFD, as TextDecoder reads it, so the output is always valid JSON.
  assert.deepEqual(run(['cat', join(dir, 'text')]), { status: 0, json: { ok: true, content: 'a\ufffdbé\n"\u0001' } });
  assert.deepEqual(run(['cat', join(dir, 'none')]), { status: 1, json: { ok: false, errno: 2, error: 'ENOENT' } });
});

const script = ['/usr/bin/script', '/bin/script'].find((p) => existsSync(p));

test('report on a terminal: tty, ttyName and a session of its own', { skip: script === undefined && 'no script(1)' }, () => {
  // script(1) runs the probe as a session leader on a fresh pty, as terminal: true does in a container.
  // SHELL is pinned and the probe exec'd: CI's SHELL may fork instead, leaving the probe outside the session lead.
  const out = execFileSync(script ?? 'script', ['-qc', `exec ${probe} report`, '/dev/null'], { encoding: 'utf8', env: { ...process.env, SHELL: '/bin/sh' } });
  const r = object(JSON.parse(out.trim()) as unknown);
  assert.deepEqual(r['tty'], [true, true, true]);
  assert.match(String(r['ttyName']), /^\/dev\/pts\/\d+$/);
  assert.equal(r['sid'], r['pid']);
  assert.equal(r['pgid'], r['pid']);
});
