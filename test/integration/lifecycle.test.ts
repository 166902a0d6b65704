// The OCI lifecycle through the real CLI: create, start, state, list, kill, delete, run.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, openSync, closeSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { parseContainerId } from '../../src/container/id';
import type { LevelContainer } from '../../src/container/level';
import { StateStore } from '../../src/container/state-store';
import { releaseStart } from '../../src/namespaces/start';
import { Runtime, STOCKADE, alive, integrationSkip, json, leftovers, probeSpec, waitFor } from './harness';

const skip = integrationSkip();

interface OciState { ociVersion: string; id: string; pid: number; status: string; bundle: string; created: string; owner: string; annotations?: Record<string, string> }

describe('lifecycle', { skip }, () => {
  let rt: Runtime;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  test('create, start, state, kill, delete as runc clients drive it', async () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'signal-exit'], (s) => { s.annotations = { 'org.example': 'yes' }; }));
    const pidFile = join(b.dir, 'pid');
    const c = rt.run(['create', '--bundle', b.dir, '--pid-file', pidFile, 'c1']);
    assert.equal(c.status, 0, c.stderr);
    const created = json<OciState>(rt.run(['state', 'c1']).stdout);
    assert.equal(created.status, 'created');
    assert.equal(created.id, 'c1');
    assert.equal(created.bundle, b.dir);
    assert.equal(created.ociVersion, '1.3.0');
    assert.deepEqual(created.annotations, { 'org.example': 'yes' });
    assert.equal(Number(readFileSync(pidFile, 'utf8')), created.pid);
    assert.ok(alive(created.pid));

    assert.equal(rt.run(['start', 'c1']).status, 0);
    const running = json<OciState>(rt.run(['state', 'c1']).stdout);
    assert.equal(running.status, 'running');
    const again = rt.run(['start', 'c1']);
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /cannot start container c1: it is running/);

    const list = json<OciState[]>(rt.run(['list', '--format', 'json']).stdout);
    assert.deepEqual(list.map((s) => [s.id, s.status]), [['c1', 'running']]);
    assert.equal(rt.run(['list', '-q']).stdout, 'c1\n');
    assert.match(rt.run(['list']).stdout, /^ID\s+PID\s+STATUS\s+BUNDLE\s+CREATED\s+OWNER\nc1\s+\d+\s+running\s/);

    const refused = rt.run(['delete', 'c1']);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /not stopped: running/);

    assert.equal(rt.run(['kill', 'c1', 'TERM']).status, 0);
    await waitFor(() => !alive(running.pid));
    assert.equal(json<OciState>(rt.run(['state', 'c1']).stdout).status, 'stopped');
    // In runc's words, which containerd's runc shim reads as "already finished" (CRI kills every
    // task whose init has exited); any other words make it retry the kill for ever.
    const late = rt.run(['kill', 'c1', 'KILL']);
    assert.notEqual(late.status, 0);
    assert.match(late.stderr, /cannot kill container c1: container not running/);
    assert.equal(rt.run(['delete', 'c1']).status, 0);
    assert.deepEqual(leftovers(rt, b), []);
    assert.match(rt.run(['state', 'c1']).stderr, /container c1 does not exist/);
  });

  test('run passes the exit status through and removes the container', () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'exit', '42']));
    const r = rt.run(['run', '--bundle', b.dir, 'r1']);
    assert.equal(r.status, 42, r.stderr);
    assert.deepEqual(rt.containerDirs(), []);
  });

  test('run streams stdio and --keep leaves a stopped container', () => {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'read x; echo "got $x"; echo err >&2']));
    const r = rt.run(['run', '--keep', '--bundle', b.dir, 'k1'], { input: 'hello\n' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'got hello\n');
    assert.equal(r.stderr, 'err\n');
    assert.equal(json<OciState>(rt.run(['state', 'k1']).stdout).status, 'stopped');
    assert.equal(rt.run(['delete', 'k1']).status, 0);
  });

  test('run --detach returns at once; delete --force kills it', async () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'sleep', '100']));
    const r = rt.run(['run', '-d', '--bundle', b.dir, 'd1']);
    assert.equal(r.status, 0, r.stderr);
    const s = json<OciState>(rt.run(['state', 'd1']).stdout);
    assert.equal(s.status, 'running');
    assert.equal(rt.run(['delete', '--force', 'd1']).status, 0);
    assert.equal(alive(s.pid), false);
    assert.deepEqual(leftovers(rt, b, 'probe sleep 100'), []);
    assert.equal(rt.run(['delete', '--force', 'd1']).status, 0, 'a forced delete of a gone container succeeds');
  });

  test('a created container can be deleted without --force', () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'sleep', '100']));
    assert.equal(rt.run(['create', '--bundle', b.dir, 'cd1']).status, 0);
    const s = json<OciState>(rt.run(['state', 'cd1']).stdout);
    assert.equal(rt.run(['delete', 'cd1']).status, 0);
    assert.equal(alive(s.pid), false);
  });

  test('an attached run forwards SIGTERM to the container', async () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'signal-exit']));
    const child = rt.spawn(['run', '--bundle', b.dir, 'sig1']);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    await waitFor(() => out.includes('ready'));
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    assert.equal(code, 0);
    assert.match(out, /"signal":15/);
  });

  test('start from a caller whose event loop is held up just after it asks: the container starts all the same', async () => {
    // stockade-init drops a connection that says nothing for 5 s (it must not hold up the real
    // start). The SDK's 50 sandboxes at once on a loaded host held their process's event loop
    // longer than that between an asynchronous connect and its callback: the write met EPIPE.
    const b = rt.bundle(probeSpec(['/bin/probe', 'signal-exit']));
    assert.equal(rt.run(['create', '--bundle', b.dir, 'held']).status, 0);
    const store = new StateStore(rt.root);
    const id = parseContainerId('held');
    const c: LevelContainer = { store, id, record: store.read(id), data: undefined };
    const started = releaseStart(c, undefined);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 6000);
    await started;
    assert.equal(json<OciState>(rt.run(['state', 'held']).stdout).status, 'running');
    assert.equal(rt.run(['delete', '--force', 'held']).status, 0);
  });

  test('kill --all reaches every process of the container and a plain kill init alone; signals by number', async () => {
    // A KILL to init would take the whole pid namespace with it, kill --all or not: each process
    // here instead records the USR1 it gets in /dev/shm (seen through the init's root), and lives on.
    const catcher = 'trap "echo $$ >> /dev/shm/got" USR1; echo $$ >> /dev/shm/up; while :; do sleep 0.05; done';
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', `sh -c '${catcher}' & sh -c '${catcher}' & exec sh -c '${catcher}'`]));
    assert.equal(rt.run(['run', '-d', '--bundle', b.dir, 'ka']).status, 0);
    const s = json<OciState>(rt.run(['state', 'ka']).stdout);
    const lines = (name: string): number[] => {
      try {
        return readFileSync(`/proc/${s.pid}/root/dev/shm/${name}`, 'utf8').trim().split('\n').filter((l) => l !== '').map(Number).sort((x, y) => x - y);
      } catch {
        return [];
      }
    };
    await waitFor(() => lines('up').length === 3);
    const up = lines('up');
    assert.equal(up[0], 1, 'init is pid 1 of the container\'s namespace');
    assert.equal(rt.run(['kill', 'ka', '10']).status, 0);
    await waitFor(() => lines('got').length >= 1);
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(lines('got'), [1], 'a plain kill (signal 10, SIGUSR1) reaches init alone');
    assert.equal(rt.run(['kill', '--all', 'ka', 'USR1']).status, 0);
    await waitFor(() => lines('got').length >= 4);
    assert.deepEqual(lines('got'), [1, ...up].sort((x, y) => x - y), 'kill --all reached every process once more');
    assert.equal(rt.run(['kill', '--all', 'ka', '9']).status, 0);
    await waitFor(() => !alive(s.pid));
    assert.equal(rt.run(['delete', 'ka']).status, 0);
  });

  test('--preserve-fds passes exactly the named fds, and no other fd of the caller leaks', () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'report']));
    const fd3 = openSync(b.configPath, 'r');
    const fd4 = openSync(b.configPath, 'r');
    try {
      const kept = rt.run(['run', '--preserve-fds', '1', '--bundle', b.dir, 'pf1'], { extraFds: [fd3, fd4] });
      assert.equal(kept.status, 0, kept.stderr);
      assert.deepEqual(json<{ fds: number[] }>(kept.stdout).fds, [0, 1, 2, 3]);
      const none = rt.run(['run', '--bundle', b.dir, 'pf2'], { extraFds: [fd3, fd4] });
      assert.equal(none.status, 0, none.stderr);
      assert.deepEqual(json<{ fds: number[] }>(none.stdout).fds, [0, 1, 2]);
    } finally {
      closeSync(fd3);
      closeSync(fd4);
    }
  });

  test('two commands on one id at once: one create wins, one start wins', async () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'sleep', '100']));
    const finish = (args: string[]): Promise<{ code: number | null; err: string }> => new Promise((res) => {
      const c = rt.spawn(args);
      let err = '';
      c.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
      c.stdout?.resume();
      c.on('exit', (code) => res({ code, err }));
    });
    for (let round = 0; round < 3; round++) {
      const id = `race${round}`;
      const creates = await Promise.all([finish(['create', '-b', b.dir, id]), finish(['create', '-b', b.dir, id])]);
      assert.deepEqual(creates.map((c) => c.code).sort(), [0, 1], JSON.stringify(creates));
      assert.match(creates.find((c) => c.code === 1)?.err ?? '', /already exists/);
      const starts = await Promise.all([finish(['start', id]), finish(['start', id])]);
      assert.deepEqual(starts.map((c) => c.code).sort(), [0, 1], JSON.stringify(starts));
      assert.match(starts.find((c) => c.code === 1)?.err ?? '', /cannot start container race\d: it is running/);
      assert.equal(rt.run(['delete', '--force', id]).status, 0);
    }
    assert.deepEqual(leftovers(rt, b, 'probe sleep 100'), []);
  });

  test('an attached run of a terminal container without --console-socket gets the caller\'s terminal', () => {
    const b = rt.bundle(probeSpec(['/bin/sh'], (s) => { s.process!.terminal = true; }));
    // script(1) gives stockade a pty as a user's shell would; it runs the command with $SHELL -c,
    // which is pinned because CI's login shell is not ours to choose.
    const r = spawnSync('script', ['-qec', `exec ${STOCKADE} --root ${rt.root} run -b ${b.dir} tty1`, '/dev/null'], {
      input: 'tty; echo "pid $$"; exit 3\n', encoding: 'utf8', timeout: 20_000, env: { ...process.env, SHELL: '/bin/sh' },
    });
    assert.equal(r.status, 3, r.stdout + r.stderr);
    assert.match(r.stdout, /\/dev\/pts\/0/);
    assert.match(r.stdout, /pid 1\r/);
    assert.deepEqual(rt.containerDirs(), []);
  });

  test('spec writes a config.json that runs as is, under the default seccomp profile; a second spec refuses to overwrite', () => {
    const b = rt.bundle(probeSpec(['/bin/true']));
    rmSync(b.configPath);
    assert.equal(rt.run(['spec', '--bundle', b.dir]).status, 0);
    const written = json<{ process: { terminal: boolean; args: string[] }; linux: { seccomp?: { defaultAction: string } } }>(readFileSync(b.configPath, 'utf8'));
    assert.equal(written.linux.seccomp?.defaultAction, 'SCMP_ACT_ERRNO');
    const again = rt.run(['spec', '--bundle', b.dir]);
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /config\.json already exists/);
    written.process.terminal = false;
    written.process.args = ['/bin/sh', '-c', 'grep ^Seccomp: /proc/self/status'];
    b.writeSpec(written);
    const r = rt.run(['run', '--bundle', b.dir, 'spec1']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Seccomp:\s+2/);
  });
});
