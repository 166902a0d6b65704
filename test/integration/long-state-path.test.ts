// A state path past sun_path's 107 bytes, as Docker's /var/run/docker/runtime-runc/moby/<64-hex id> is:
// create must still bind the start socket, and start reach it.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBundle, type Bundle } from '../helpers/rootfs';
import { STOCKADE, integrationSkip, probeSpec } from './harness';

describe('a long --root', { skip: integrationSkip() }, () => {
  const base = mkdtempSync(join(tmpdir(), 'stockade-long-'));
  chmodSync(base, 0o711);
  // Padded like Docker's runtime root, and an id of Docker's length.
  const root = join(base, 'var-run-docker', 'runtime-runc', 'moby');
  const id = 'f'.repeat(64);
  let bundle: Bundle | undefined;

  after(() => {
    spawnSync(STOCKADE, ['--root', root, 'delete', '--force', id]);
    bundle?.remove();
    rmSync(base, { recursive: true, force: true });
  });

  test('create and start with <root>/<id>/start.sock longer than 107 bytes', () => {
    mkdirSync(root, { recursive: true });
    assert.ok(Buffer.byteLength(join(root, id, 'start.sock')) > 107, 'the path is not long enough to test anything');
    bundle = makeBundle({ spec: probeSpec(['sh', '-c', 'echo started-$((40+2))']) });
    // Files, not pipes: the container keeps create's stdout and stderr open until it exits.
    const outPath = join(base, 'out');
    const errPath = join(base, 'err');
    const out = openSync(outPath, 'w+');
    const err = openSync(errPath, 'w+');
    try {
      const create = spawnSync(STOCKADE, ['--root', root, 'create', '--bundle', bundle.dir, id], { stdio: ['ignore', out, err], timeout: 30_000 });
      assert.equal(create.status, 0, readFileSync(errPath, 'utf8'));
      const start = spawnSync(STOCKADE, ['--root', root, 'start', id], { stdio: ['ignore', 'ignore', err], timeout: 30_000 });
      assert.equal(start.status, 0, readFileSync(errPath, 'utf8'));
    } finally {
      closeSync(out);
      closeSync(err);
    }
    const end = Date.now() + 10_000;
    while (!readFileSync(outPath, 'utf8').includes('started-42') && Date.now() < end) spawnSync('sleep', ['0.05']);
    assert.match(readFileSync(outPath, 'utf8'), /started-42/);
    const del = spawnSync(STOCKADE, ['--root', root, 'delete', '--force', id], { timeout: 30_000 });
    assert.equal(del.status, 0, del.stderr.toString());
  });

  // runc resolves a relative --root against the caller's cwd; Docker and scripts pass one.
  test('a relative --root: run -d, state, exec, delete from the directory it is relative to', () => {
    const id = 'relative-root';
    const b = makeBundle({ spec: probeSpec(['/bin/probe', 'sleep', '100']) });
    const cwd = join(base, 'rel');
    mkdirSync(cwd);
    const call = (args: string[]) => spawnSync(STOCKADE, ['--root', 'st', ...args], { cwd, encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      // Its stdio not pipes: the container would hold them open until it exits.
      const run = spawnSync(STOCKADE, ['--root', 'st', 'run', '--detach', '--bundle', b.dir, id], { cwd, timeout: 30_000, stdio: 'ignore' });
      assert.equal(run.status, 0);
      const state = call(['state', id]);
      assert.equal(state.status, 0, state.stderr);
      assert.equal((JSON.parse(state.stdout) as { status: string }).status, 'running');
      const ex = call(['exec', id, 'sh', '-c', 'echo in-$((40+2))']);
      assert.equal(ex.status, 0, ex.stderr);
      assert.match(ex.stdout, /in-42/);
      const del = call(['delete', '--force', id]);
      assert.equal(del.status, 0, del.stderr);
      assert.equal(spawnSync('ls', ['-A', join(cwd, 'st')], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l !== '' && !l.startsWith('.')).join(' '), '', 'a container directory is left in the relative root');
    } finally {
      call(['delete', '--force', id]);
      b.remove();
    }
  });

  test('exec -t with no console socket relays the terminal through a socket under the long root', () => {
    const execId = 'e'.repeat(64);
    const b = makeBundle({ spec: probeSpec(['/bin/probe', 'sleep', '100']) });
    try {
      const out = openSync(join(base, 'out-exec'), 'w+');
      try {
        const run = spawnSync(STOCKADE, ['--root', root, 'run', '--detach', '--bundle', b.dir, execId], { stdio: ['ignore', out, out], timeout: 30_000 });
        assert.equal(run.status, 0, readFileSync(join(base, 'out-exec'), 'utf8'));
      } finally {
        closeSync(out);
      }
      assert.ok(Buffer.byteLength(join(root, `.exec-tty-${execId}-00000000.sock`)) > 107, 'the relay path is not long enough to test anything');
      // script(1) gives exec a terminal; SHELL is pinned, as CI's is not ours to choose.
      const r = spawnSync('script', ['-qec', `exec ${STOCKADE} --root ${root} exec -t ${execId} sh -c 'tty; exit 4'`, '/dev/null'], {
        encoding: 'utf8', timeout: 30_000, env: { ...process.env, SHELL: '/bin/sh' },
      });
      assert.equal(r.status, 4, r.stdout + r.stderr);
      assert.match(r.stdout, /\/dev\/pts\/\d+/);
    } finally {
      spawnSync(STOCKADE, ['--root', root, 'delete', '--force', execId]);
      b.remove();
    }
  });
});
