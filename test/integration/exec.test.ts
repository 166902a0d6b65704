// exec through the real CLI: the process lands in the init's namespaces with the identity, limits and stdio asked for.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runProcesses } from '../helpers/run-scope';
import { startConsoleReceiver } from '../helpers/console-receiver';
import { Runtime, STOCKADE, alive, freezerUnavailable, integrationSkip, json, probeSpec, waitFor } from './harness';

const skip = integrationSkip();

interface Report {
  pid: number; ppid: number; uid: number; gid: number; groups: number[]; cwd: string; env: string[];
  caps: { bnd: string; eff: string; inh: string; prm: string; amb: string };
  noNewPrivs: boolean; seccomp: number; rlimits: Record<string, [number, number]>; fds: number[];
  tty: boolean[]; ns: Record<string, string | null>;
}
interface OciState { pid: number; status: string }

const NS_NAMES = ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'time', 'user', 'uts'] as const;
const capBit = (n: number): bigint => 1n << BigInt(n);

function hostNamespaces(pid: number): Record<string, string> {
  return Object.fromEntries(NS_NAMES.map((n) => [n, readlinkSync(`/proc/${pid}/ns/${n}`)]));
}

describe('exec', { skip }, () => {
  let rt: Runtime;
  let initPid = 0;
  before(() => {
    rt = new Runtime();
    const b = rt.bundle(probeSpec(['/bin/probe', 'sleep', '600'], (s) => {
      s.process!.env = ['PATH=/bin', 'FROM_CONFIG=1', 'TERM=xterm'];
      s.process!.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 512, hard: 768 }];
      s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['swapon'], action: 'SCMP_ACT_ERRNO' }] };
    }));
    assert.equal(rt.run(['create', '--bundle', b.dir, 'e1']).status, 0);
    assert.equal(rt.run(['start', 'e1']).status, 0);
    initPid = json<OciState>(rt.run(['state', 'e1']).stdout).pid;
  });
  after(() => rt.cleanup());

  const state = (id: string): OciState => json<OciState>(rt.run(['state', id]).stdout);
  // Scoped to the container's mount namespace, which a helper joins: other tests on the host run their own.
  const helpers = (): string[] => {
    const mnt = readlinkSync(`/proc/${initPid}/ns/mnt`);
    return runProcesses('stockade-init').filter((p) => {
      try {
        return readlinkSync(`/proc/${p.pid}/ns/mnt`) === mnt;
      } catch {
        return false;
      }
    }).map((p) => `${p.pid} ${p.cmdline}`);
  };

  test('the process joins every namespace of the init and gets the config\'s process attributes', () => {
    const r = rt.run(['exec', 'e1', '/bin/probe', 'report']);
    assert.equal(r.status, 0, r.stderr);
    const rep = json<Report>(r.stdout);
    assert.deepEqual(rep.ns, hostNamespaces(initPid));
    assert.notEqual(rep.pid, 1, 'a new process beside the init');
    assert.equal(rep.ppid, 0, 'its parent, stockade-init, stays outside the pid namespace');
    assert.equal(rep.uid, 0);
    assert.equal(rep.cwd, '/');
    assert.deepEqual(rep.env, ['PATH=/bin', 'FROM_CONFIG=1', 'TERM=xterm', 'HOME=/root'], 'HOME from /etc/passwd, as runc sets it');
    assert.deepEqual(rep.rlimits['NOFILE'], [512, 768]);
    assert.equal(rep.noNewPrivs, true);
    assert.equal(rep.seccomp, 2, 'the container\'s seccomp filter');
    assert.equal(BigInt(`0x${rep.caps.bnd}`) & capBit(21), 0n, 'CAP_SYS_ADMIN stays out, as in the config');
    assert.deepEqual(rep.fds, [0, 1, 2]);
    assert.deepEqual(rep.tty, [false, false, false]);
    assert.equal(state('e1').status, 'running');
  });

  test('flags set user, groups, cwd, env, capabilities and no_new_privs', () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'sleep', '600'], (s) => {
      s.process!.noNewPrivileges = false;
      s.process!.env = ['PATH=/usr/bin', 'KEEP=1'];
    }));
    assert.equal(rt.run(['run', '-d', '--bundle', b.dir, 'e2']).status, 0);
    const r = rt.run(['exec', '--user', '1000:1000', '-g', '10', '--additional-gids', '20', '--cwd', '/home/test',
      '-e', 'PATH=/bin', '--env', 'NEW=a b', '--cap', 'CAP_NET_RAW', '-c', 'SYS_TIME', '--no-new-privs', 'e2', '/bin/probe', 'report']);
    assert.equal(r.status, 0, r.stderr);
    const rep = json<Report>(r.stdout);
    assert.equal(rep.uid, 1000);
    assert.equal(rep.gid, 1000);
    assert.deepEqual([...rep.groups].sort((a, b) => a - b), [10, 20]);
    assert.equal(rep.cwd, '/home/test');
    assert.deepEqual(rep.env, ['PATH=/bin', 'KEEP=1', 'NEW=a b', 'HOME=/home/test']);
    const bnd = BigInt(`0x${rep.caps.bnd}`);
    assert.notEqual(bnd & capBit(13), 0n, 'CAP_NET_RAW added to the bounding set');
    assert.notEqual(bnd & capBit(25), 0n, 'CAP_SYS_TIME added to the bounding set');
    assert.equal(rep.noNewPrivs, true);

    const root = json<Report>(rt.run(['exec', '-u', '0', '--cap', 'CAP_SYS_TIME', 'e2', '/bin/probe', 'report']).stdout);
    assert.notEqual(BigInt(`0x${root.caps.eff}`) & capBit(25), 0n, 'root holds an added capability in its effective set');
    assert.equal(root.noNewPrivs, false, 'the config\'s no_new_privs without the flag');
    assert.equal(rt.run(['delete', '-f', 'e2']).status, 0);
  });

  test('the exit status passes through: a code as it is, a signal as 128+N', () => {
    assert.equal(rt.run(['exec', 'e1', '/bin/sh', '-c', 'exit 7']).status, 7);
    assert.equal(rt.run(['exec', 'e1', '/bin/sh', '-c', 'kill -9 $$']).status, 137);
    const out = rt.run(['exec', 'e1', '/bin/sh', '-c', 'echo out; echo err >&2']);
    assert.equal(out.status, 0);
    assert.equal(out.stdout, 'out\n');
    assert.equal(out.stderr, 'err\n');
  });

  test('an attached exec passes signals on to the process', async () => {
    const child = rt.spawn(['exec', 'e1', '/bin/probe', 'signal-exit']);
    let stdout = '';
    child.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    await waitFor(() => stdout.includes('ready'));
    child.kill('SIGUSR1');
    assert.equal(await exited, 0);
    assert.match(stdout, /"signal": ?10\b/);
  });

  test('a ^C to the caller\'s process group reaches the process once, and its status still comes back', async () => {
    // detached: its own process group, as a shell gives a foreground job, so the group can be signalled.
    const child = spawn(STOCKADE, ['--root', rt.root, 'exec', 'e1', '/bin/probe', 'signal-exit'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    await waitFor(() => stdout.includes('ready'));
    process.kill(-(child.pid ?? 0), 'SIGINT');
    assert.equal(await exited, 0, stderr);
    assert.match(stdout, /"signal": ?2\b/);
    assert.equal(stderr, '');
  });

  test('--detach returns at once and --pid-file gets the host pid', async () => {
    const pidFile = join(rt.root, '..', 'exec.pid');
    const r = rt.run(['exec', '--detach', '--pid-file', pidFile, 'e1', '/bin/probe', 'sleep', '30']);
    assert.equal(r.status, 0, r.stderr);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    assert.ok(alive(pid), `process ${pid} runs`);
    assert.equal(readlinkSync(`/proc/${pid}/ns/pid`), readlinkSync(`/proc/${initPid}/ns/pid`));
    assert.deepEqual(helpers(), [], 'no stockade-init stays behind a detached exec');
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !alive(pid));
  });

  test('--tty sends the pty master to --console-socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stockade-exec-console-'));
    const sock = join(dir, 'console.sock');
    const receiver = await startConsoleReceiver(sock);
    try {
      const r = rt.run(['exec', '-d', '-t', '--console-socket', sock, 'e1', '/bin/sh', '-c', 'tty; /bin/probe report']);
      assert.equal(r.status, 0, r.stderr);
      await waitFor(() => receiver.output().includes("'"));
      const output = receiver.output();
      assert.match(output, /\/dev\/pts\/\d+/);
      assert.match(output, /"tty": ?\[true, ?true, ?true\]/);
    } finally {
      receiver.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    // runc's rules for a console socket.
    const attached = rt.run(['exec', '-t', '--console-socket', sock, 'e1', '/bin/true']);
    assert.notEqual(attached.status, 0);
    assert.match(attached.stderr, /--console-socket needs both --detach and --tty/);
    const noSocket = rt.run(['exec', '-d', '-t', 'e1', '/bin/true']);
    assert.notEqual(noSocket.status, 0);
    assert.match(noSocket.stderr, /cannot allocate a tty when detaching without --console-socket/);
  });

  test('--process FILE replaces the process; missing fields come from the config, flags go over it', () => {
    const file = join(rt.root, '..', 'process.json');
    writeFileSync(file, JSON.stringify({ args: ['/bin/probe', 'report'], cwd: '/tmp', user: { uid: 1000, gid: 100 }, env: ['ONLY=file'], terminal: false }));
    const r = rt.run(['exec', '--process', file, '-e', 'EXTRA=flag', 'e1']);
    assert.equal(r.status, 0, r.stderr);
    const rep = json<Report>(r.stdout);
    assert.equal(rep.cwd, '/tmp');
    assert.equal(rep.uid, 1000);
    assert.equal(rep.gid, 100);
    assert.deepEqual(rep.env, ['ONLY=file', 'EXTRA=flag', 'HOME=/home/test']);
    assert.deepEqual(rep.rlimits['NOFILE'], [512, 768], 'rlimits from the config');
    assert.equal(rep.noNewPrivs, true, 'no_new_privs from the config');

    writeFileSync(file, JSON.stringify({ cwd: '/', user: { uid: 0, gid: 0 } }));
    const bad = rt.run(['exec', '--process', file, 'e1']);
    assert.notEqual(bad.status, 0);
    assert.equal(bad.stderr.trim().split('\n').length, 1);
    assert.match(bad.stderr, /process\.json: args: is required/);
  });

  test('a created container takes an exec and stays created', () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'report']));
    assert.equal(rt.run(['create', '--bundle', b.dir, 'e3']).status, 0);
    const created = state('e3');
    const r = rt.run(['exec', 'e3', '/bin/probe', 'report']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(json<Report>(r.stdout).ns, hostNamespaces(created.pid));
    assert.deepEqual(state('e3'), created);
    assert.equal(rt.run(['delete', '-f', 'e3']).status, 0);
  });

  test('a container in a user namespace: the user namespace is joined first, then the rest', () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'sleep', '600'], (s) => {
      s.linux!.namespaces!.push({ type: 'user' });
      s.linux!.uidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
      s.linux!.gidMappings = [{ containerID: 0, hostID: 200000, size: 65536 }];
    }));
    spawnSync('chown', ['-R', '-h', '200000:200000', b.rootfs]);
    const started = rt.run(['run', '-d', '--bundle', b.dir, 'e4']);
    assert.equal(started.status, 0, started.stderr);
    const pid = state('e4').pid;
    const r = rt.run(['exec', '-u', '1000', 'e4', '/bin/probe', 'report']);
    assert.equal(r.status, 0, r.stderr);
    const rep = json<Report>(r.stdout);
    assert.deepEqual(rep.ns, hostNamespaces(pid));
    assert.equal(rep.uid, 1000);
    assert.equal(rt.run(['delete', '-f', 'e4']).status, 0);
  });

  test('a --no-pivot container: the joined mount namespace shows the container\'s root', () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'sleep', '600']));
    assert.equal(rt.run(['run', '-d', '--no-pivot', '--bundle', b.dir, 'e5']).status, 0);
    const r = rt.run(['exec', 'e5', '/bin/probe', 'report']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(json<Report>(r.stdout).ns, hostNamespaces(state('e5').pid));
    assert.equal(rt.run(['delete', '-f', 'e5']).status, 0);
  });

  test('--preserve-fds passes fds 3.. and nothing else', () => {
    const path = join(rt.root, '..', 'preserved');
    writeFileSync(path, '');
    const fd = openSync(path, 'r');
    try {
      const r = rt.run(['exec', '--preserve-fds', '1', 'e1', '/bin/probe', 'report'], { extraFds: [fd] });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(json<Report>(r.stdout).fds, [0, 1, 2, 3]);
    } finally {
      closeSync(fd);
    }
  });

  test('failures: one line, non-zero, logged, and nothing changed or left behind', async () => {
    const before = state('e1');
    const cases: { args: string[]; error: RegExp }[] = [
      { args: ['exec', 'e1', '/bin/nonexistent'], error: /\/bin\/nonexistent.*(no such file|not found|ENOENT)/i },
      { args: ['exec', 'e1', 'nonexistent-in-path'], error: /nonexistent-in-path.*not found in \$PATH/ },
      { args: ['exec', 'e1', '/etc/passwd'], error: /\/etc\/passwd.*(permission denied|EACCES)/i },
      { args: ['exec', '--cwd', '/does/not/exist', 'e1', '/bin/true'], error: /\/does\/not\/exist/ },
      { args: ['exec', '-u', 'root', 'e1', '/bin/true'], error: /--user must be UID or UID:GID/ },
      { args: ['exec', '-e', 'NOEQUALS', 'e1', '/bin/true'], error: /--env must be NAME=value/ },
      { args: ['exec', '--cap', 'CAP_BOGUS', 'e1', '/bin/true'], error: /unknown capability "CAP_BOGUS"/ },
      { args: ['exec', 'e1'], error: /expects a command/ },
      { args: ['exec', 'nosuch', '/bin/true'], error: /container nosuch does not exist/ },
    ];
    for (const c of cases) {
      const logBefore = rt.logLines().length;
      const r = rt.run(c.args);
      assert.notEqual(r.status, 0, `${c.args.join(' ')} fails`);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, `one line: ${r.stderr}`);
      assert.match(r.stderr, c.error);
      const logged = rt.logLines().slice(logBefore).filter((l) => l.level === 'error');
      assert.equal(logged.length, 1, `--log has the error of ${c.args.join(' ')}`);
      assert.deepEqual(helpers(), [], 'no stockade-init left behind');
    }
    assert.deepEqual(state('e1'), before, 'the container is untouched');
    assert.deepEqual(rt.containerDirs().filter((d) => d === 'e1'), ['e1']);
    assert.deepEqual(readdirSync(rt.root).filter((n) => n.startsWith('.exec-tty')), [], 'no console socket left');
  });

  test('a paused container refuses exec unless --ignore-paused; then the process runs once resumed', { skip: freezerUnavailable() }, async () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'sleep', '600']));
    assert.equal(rt.run(['run', '-d', '--bundle', b.dir, 'p1']).status, 0);
    const paused = rt.run(['pause', 'p1']);
    assert.equal(paused.status, 0, paused.stderr);
    const refused = rt.run(['exec', 'p1', '/bin/true']);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /cannot exec in paused container p1 \(use --ignore-paused to override\)/);
    // Frozen with the container until it is resumed; resume needs the lock exec must not keep.
    const child = spawn(STOCKADE, ['--root', rt.root, 'exec', '--ignore-paused', 'p1', '/bin/sh', '-c', 'echo thawed'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout?.on('data', (d: Buffer) => { stdout += d.toString(); });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(stdout, '', 'nothing runs while the container is paused');
    assert.equal(rt.run(['resume', 'p1']).status, 0);
    assert.equal(await exited, 0);
    assert.equal(stdout, 'thawed\n');
    assert.equal(rt.run(['delete', '-f', 'p1']).status, 0);
  });

  test('exec into a stopped container is refused', () => {
    const b = rt.bundle(probeSpec(['/bin/true']));
    assert.equal(rt.run(['run', '-d', '--bundle', b.dir, 's1']).status, 0);
    for (let i = 0; i < 100 && state('s1').status !== 'stopped'; i++) spawnSync('sleep', ['0.05']);
    const r = rt.run(['exec', 's1', '/bin/true']);
    assert.notEqual(r.status, 0);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    assert.match(r.stderr, /cannot exec container s1: it is stopped/);
    assert.ok(rt.logLines().some((l) => l.level === 'error' && /cannot exec container s1/.test(l.msg)));
    assert.equal(state('s1').status, 'stopped');
    assert.equal(rt.run(['delete', 's1']).status, 0);
  });
});
