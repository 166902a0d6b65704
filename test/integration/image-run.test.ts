// stockade pull / images / rmi / run --image through the real CLI, on images the test builds from busybox-static.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { listMountsUnder } from '../helpers/cleanup';
import { Runtime, integrationSkip, runProcesses, waitFor } from './harness';
import { busyboxLayer, dockerArchive, layerTar, ociLayout } from '../unit/image/build';

/** A Node started for the call fails at once on this NODE_OPTIONS, which the running planner never reads: a call that succeeds with it was served. */
const NO_NODE = { STOCKADE_PLANNER: 'on', NODE_OPTIONS: '--require=/nonexistent/a-cold-node-fails-here' };

const skip = integrationSkip() ?? (existsSync('/bin/busybox') ? undefined : 'busybox-static is not installed');

/** What a run --image left behind: containers, mounts, bundles, in-use marks, init processes. */
function leftovers(rt: Runtime): string[] {
  const found: string[] = [];
  for (const d of rt.containerDirs()) found.push(`state dir ${d}`);
  for (const m of listMountsUnder(rt.root)) found.push(`mount ${m.mountpoint}`);
  for (const sub of ['run', 'in-use', 'tmp']) {
    const dir = join(rt.root, '.images', sub);
    if (existsSync(dir)) for (const f of readdirSync(dir)) found.push(`.images/${sub}/${f}`);
  }
  for (const p of runProcesses('stockade-init')) found.push(`process ${p.pid} ${p.cmdline}`);
  return found;
}

describe('images through the CLI', { skip }, () => {
  let rt: Runtime;
  let layout: string;
  before(async () => {
    rt = new Runtime();
    const top = await layerTar([
      { name: 'srv/', type: 'directory', uid: 1000, gid: 1000 },
      { name: 'srv/greeting', body: 'from the top layer\n' },
      { name: 'etc/', type: 'directory' },
      { name: 'etc/.wh.motd', body: '' },
      { name: 'bin/su-copy', body: 'x', mode: 0o4755 },
    ]);
    const base = await layerTar([{ name: 'etc/', type: 'directory' }, { name: 'etc/motd', body: 'hidden by a whiteout\n' }]);
    layout = ociLayout(join(rt.root, '..', 'layout'), {
      layers: [{ data: await busyboxLayer(), gzip: true }, { data: base }, { data: top, gzip: true }],
      config: { Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo "$(id -u):$(id -g) $(pwd) $GREETING $HOME"; cat greeting'], Env: ['GREETING=hello', 'PATH=/bin'], WorkingDir: '/srv', User: 'alice' },
      tag: 'v1',
    }).dir;
  });
  after(() => rt.cleanup());

  test('pull, images, run --image with the image config applied, rmi', () => {
    const ref = `oci:${layout}:v1`;
    const pulled = rt.run(['pull', ref]);
    assert.equal(pulled.status, 0, pulled.stderr);
    assert.match(pulled.stdout, new RegExp(`^${ref} [a-f0-9]{12}\\n$`));
    const list = rt.run(['images']);
    assert.match(list.stdout, /^REFERENCE\s+IMAGE ID\s+PLATFORM\s+LAYERS\s+SIZE\s+PULLED\n/);
    assert.match(list.stdout, new RegExp(`${ref}\\s+[a-f0-9]{12}\\s+linux/amd64\\s+3\\s`));

    const r = rt.run(['run', '--image', ref, 'img-one']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '1000:1000 /srv hello /home/alice\nfrom the top layer\n');
    assert.deepEqual(leftovers(rt), []);

    // A command after -- replaces Cmd and keeps the Entrypoint; --env adds to Env; the whiteout hides motd;
    // the root is nosuid and no_new_privs is set, so the image's setuid file raises nothing.
    const o = rt.run(['run', '--image', ref, '--env', 'GREETING=bye', '--', 'echo $GREETING; ls /etc; grep " / / " /proc/self/mountinfo | grep -c nosuid; grep NoNewPrivs /proc/self/status']);
    assert.equal(o.status, 0, o.stderr);
    assert.equal(o.stdout, 'bye\ngroup\npasswd\n1\nNoNewPrivs:\t1\n');
    assert.deepEqual(leftovers(rt), []);

    // Writes go to the container's upper dir and go with it: the next container sees the image as it was.
    const w = rt.run(['run', '--image', ref, '--', 'echo changed > new; mv greeting old; ls']);
    assert.equal(w.stdout, 'new\nold\n', w.stderr);
    const again = rt.run(['run', '--image', ref, '--', 'ls; cat greeting']);
    assert.equal(again.stdout, 'greeting\nfrom the top layer\n');

    // The exit status is the command's.
    assert.equal(rt.run(['run', '--image', ref, '--', 'exit 7']).status, 7);

    const rm = rt.run(['rmi', ref]);
    assert.equal(rm.status, 0, rm.stderr);
    assert.equal(rt.run(['images', '-q']).stdout, '');
    assert.deepEqual(readdirSync(join(rt.root, '.images', 'snapshots')), []);
    assert.deepEqual(readdirSync(join(rt.root, '.images', 'blobs', 'sha256')), []);
    const gone = rt.run(['rmi', ref]);
    assert.equal(gone.status, 1);
    assert.match(gone.stderr, /^stockade: no image "oci:.*:v1" in the store\n$/);
    assert.match(readFileSync(rt.log, 'utf8'), /"code":"IMAGE_NOT_FOUND"/);
  });

  test('run --image pulls an image the store lacks (a docker archive), and removes everything on a failed start', async () => {
    const file = join(rt.root, '..', 'img.tar');
    await dockerArchive(file, { layers: [{ data: await busyboxLayer() }], config: { Cmd: ['/bin/echo', 'from the archive'], WorkingDir: '/made/here' } });
    const r = rt.run(['run', '--image', `docker-archive:${file}`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'from the archive\n');
    const wd = rt.run(['run', '--image', `docker-archive:${file}`, '--', '/bin/pwd']);
    assert.equal(wd.stdout, '/made/here\n', wd.stderr);
    const bad = rt.run(['run', '--image', `docker-archive:${file}`, '--', '/no/such/program']);
    assert.notEqual(bad.status, 0);
    assert.deepEqual(leftovers(rt), []);
    const user = rt.run(['run', '--image', `oci:${layout}:v1`, '--env', 'X=1', 'img-x', '--', 'true']);
    assert.equal(user.status, 0, user.stderr);
  });

  test('run --image at the sentry level', () => {
    const r = rt.run(['--isolation', 'sentry', 'run', '--image', `oci:${layout}:v1`, '--', 'echo "$GREETING $(id -u)"; cat greeting; ls /etc']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'hello 1000\nfrom the top layer\ngroup\npasswd\n');
    assert.deepEqual(leftovers(rt), []);
  });

  test('a run --image served by the planner, its front killed outright: the planner ends the run, its container and overlay with it', async () => {
    const ref = `oci:${layout}:v1`;
    assert.equal(rt.run(['pull', ref]).status, 0);
    const child = rt.spawn(['run', '--image', ref, 'img-front-killed', '--', 'sleep 100'], NO_NODE);
    await waitFor(() => rt.run(['state', 'img-front-killed']).stdout.includes('"running"'), 15_000);
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    // The front was the workload's only tie to its caller; the planner takes its loss as the
    // workload's end, deletes the container (killing the sleep) and then removes the overlay.
    await waitFor(() => leftovers(rt).length === 0 && listMountsUnder(rt.root).length === 0, 15_000);
    assert.notEqual(rt.run(['state', 'img-front-killed']).status, 0);
    assert.equal(rt.run(['rmi', ref]).status, 0);
  });

  test('a cold run --image killed outright: its overlay is removed by the next pull or rmi once the container is deleted', async () => {
    const ref = `oci:${layout}:v1`;
    assert.equal(rt.run(['pull', ref]).status, 0);
    const child = rt.spawn(['run', '--image', ref, 'img-killed', '--', 'sleep 100'], { STOCKADE_PLANNER: 'off' });
    await waitFor(() => rt.run(['state', 'img-killed']).stdout.includes('"running"'), 15_000);
    child.kill('SIGKILL');
    // 'exit', not 'close': the container's sleep holds the client's stdout and stderr, so they
    // close only when it ends, 100 s later (this test took 100 s in CI for that alone).
    await new Promise((r) => child.on('exit', r));
    assert.ok(listMountsUnder(rt.root).length > 0, 'the overlay outlived its owner');
    const del = rt.run(['delete', '--force', 'img-killed']);
    assert.equal(del.status, 0, del.stderr);
    assert.equal(rt.run(['rmi', ref]).status, 0);
    assert.deepEqual(leftovers(rt), []);
  });

  test('run --image, images and rmi say, exit, log and leave the same through the planner and without it', () => {
    const ref = `oci:${layout}:v1`;
    // Fresh roots on both sides: each pulls the image into its own store on its first run.
    const [warm, cold] = [new Runtime(), new Runtime()];
    mkdirSync(warm.root, { mode: 0o711 });
    try {
      const cases = [
        ['run', '--image', ref, 'cmp-img1'],
        ['run', '--image', ref, '--env', 'GREETING=bye', 'cmp-img2', '--', 'echo $GREETING; exit 3'],
        ['run', '--image', ref, 'cmp-img3', '--', '/no/such/program'],
        ['run', '--image', `oci:${layout}:nope`, 'cmp-img4'],
        ['run', '--image', ref, 'a', 'b'],
        ['run', '--image', ref, 'bad/id'],
        ['images'], ['images', '-q'], ['images', '--format', 'json'], ['images', '--format', 'xml'],
        ['rmi', ref], ['rmi', ref], ['rmi'],
      ];
      const [served, unserved] = ([[warm, NO_NODE], [cold, { STOCKADE_PLANNER: 'off' }]] as const).map(([r, env]) => cases.map((args) => {
        const from = r.logLines().length;
        const res = r.run(args, { env });
        const norm = (t: string): string => t.split(r.root).join('ROOT');
        const log = r.logLines().slice(from).map((l) => {
          const { time: _t, ...rest } = l as { time?: string };
          return norm(JSON.stringify(rest));
        });
        // When each store pulled its image differs; the rest of images' lines may not.
        const stdout = res.stdout.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, 'TIME');
        return { args: args.join(' '), status: res.status, stdout, stderr: norm(res.stderr), log, left: leftovers(r).map(norm) };
      }));
      assert.deepEqual(served, unserved);
      assert.equal(served?.[1]?.stdout, 'bye\n');
    } finally {
      warm.cleanup();
      cold.cleanup();
    }
  });

  test('a run --image whose planner was lost: the cold retry removes the container and its overlay first', async () => {
    const ref = `oci:${layout}:v1`;
    // What a planner lost after it mounted the overlay leaves behind, made here by a cold run killed outright.
    const child = rt.spawn(['run', '--image', ref, 'img-lost', '--', 'sleep 100'], { STOCKADE_PLANNER: 'off' });
    await waitFor(() => rt.run(['state', 'img-lost']).stdout.includes('"running"'), 15_000);
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    assert.ok(listMountsUnder(rt.root).length > 0, 'the overlay outlived its owner');
    // The front sets this when it runs the call cold after losing its planner (native/light/planner.c).
    const r = rt.run(['run', '--image', ref, 'img-lost', '--', 'echo again'], { env: { STOCKADE_PLANNER: 'off', STOCKADE_PLANNER_LOST: 'img-lost' } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'again\n');
    assert.deepEqual(leftovers(rt), []);
  });

  test('a front killed while its run --image pulls: the planner fails the run, removes what it made, and serves the next call', async () => {
    const fresh = new Runtime();
    mkdirSync(fresh.root, { mode: 0o711 });
    try {
      // A layer large enough that its pull is seen under way.
      const data = await layerTar([{ name: 'data/', type: 'directory' }, ...Array.from({ length: 16 }, (_, i) => ({ name: `data/f${i}`, body: randomBytes(1 << 20) }))]);
      const big = ociLayout(join(fresh.root, '..', 'big'), { layers: [{ data: await busyboxLayer(), gzip: true }, { data, gzip: true }], config: { Cmd: ['/bin/sh', '-c', ':'] }, tag: 'v1' }).dir;
      const served = (): boolean => /container ghost does not exist/.test(fresh.run(['state', 'ghost'], { env: NO_NODE }).stderr);
      assert.ok(served(), 'a planner serves the root');
      const child = fresh.spawn(['run', '--image', `oci:${big}:v1`, 'img-front-killed'], { STOCKADE_PLANNER: 'on' });
      const exited = new Promise((r) => child.once('exit', r));
      const store = join(fresh.root, '.images');
      await waitFor(() => ['tmp', 'blobs/sha256', 'snapshots'].some((d) => existsSync(join(store, d)) && readdirSync(join(store, d)).length > 0), 15_000);
      child.kill('SIGKILL');
      await exited;
      // It finishes the pull it began, then has no front to spawn stockade-init: the run fails there
      // and goes as a failed run goes (it once waited for the front's answer for ever, busy).
      await waitFor(served, 30_000);
      await waitFor(() => leftovers(fresh).length === 0, 10_000);
    } finally {
      fresh.cleanup();
    }
  });

  test('bad input: one line, non-zero, nothing left', () => {
    for (const [args, pattern] of [
      [['pull'], /pull: needs exactly one image reference/],
      [['pull', 'oci:/nonexistent/layout'], /oci-layout .*does not exist/],
      [['run', '--image', `oci:${layout}:nope`], /no image tagged "nope"/],
      [['run', '--image', `oci:${layout}:v1`, 'a', 'b'], /at most one container id/],
      [['run', '--image', `oci:${layout}:v1`, 'bad/id'], /container id/i],
      [['pull', '--platform', 'linux', `oci:${layout}:v1`], /--platform must be OS\/ARCH/],
      [['rmi'], /needs at least one image/],
    ] as const) {
      const r = rt.run([...args]);
      assert.equal(r.status, 1, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, pattern);
    }
    assert.deepEqual(leftovers(rt), []);
  });
});
