// The light entry (native/light/light.c): start, kill and delete of a plain container without Node,
// and every other case handed to Node. Run with PATH emptied, a call that still succeeds did not
// start Node; one that fails with "cannot run node" went to Node, as it had to.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/native/paths';
import { RUN_TAG } from '../helpers/run-scope';
import { Runtime, alive, integrationSkip, json, leftovers, probeSpec, waitFor } from './harness';

const LIGHT = join(packageRoot(), 'build', 'Release', 'stockade-light');
const skip = integrationSkip() ?? (existsSync(LIGHT) ? undefined : `the light entry is not built (${LIGHT}): run npm run build`);

interface Ran { status: number | null; stdout: string; stderr: string }

/** The light entry alone, with no node on PATH unless `withNode`. */
function light(rt: Runtime, args: string[], opts: { withNode?: boolean; env?: Record<string, string> } = {}): Ran {
  const env = { ...process.env, ...opts.env };
  if (opts.withNode !== true) env['PATH'] = '/nonexistent';
  const r = spawnSync(LIGHT, ['--root', rt.root, '--log', rt.log, '--log-format', 'json', ...args], { env, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const WENT_TO_NODE = /cannot run node/;

function statusOf(rt: Runtime, id: string): string {
  return json<{ status: string }>(rt.run(['state', id]).stdout).status;
}

function pidOf(rt: Runtime, id: string): number {
  return json<{ pid: number }>(rt.run(['state', id]).stdout).pid;
}

describe('light entry', { skip }, () => {
  let rt: Runtime;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  test('start, kill and delete of a plain container run without Node', async () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'signal-exit']));
    assert.equal(rt.run(['create', '--bundle', b.dir, 'l1']).status, 0);
    assert.ok(existsSync(join(rt.root, 'l1', 'light')));
    const started = light(rt, ['start', 'l1']);
    assert.equal(started.status, 0, started.stderr);
    assert.equal(statusOf(rt, 'l1'), 'running');
    const pid = pidOf(rt, 'l1');

    // A second start is refused by Node, which words the error.
    assert.match(light(rt, ['start', 'l1']).stderr, WENT_TO_NODE);
    const again = light(rt, ['start', 'l1'], { withNode: true });
    assert.notEqual(again.status, 0);
    assert.match(again.stderr, /cannot start container l1: it is running/);

    const logged = rt.logLines().length;
    const killed = light(rt, ['kill', 'l1', 'term']);
    assert.equal(killed.status, 0, killed.stderr);
    await waitFor(() => !alive(pid));
    const deleted = light(rt, ['delete', 'l1']);
    assert.equal(deleted.status, 0, deleted.stderr);
    assert.deepEqual(leftovers(rt, b), []);
    assert.equal(rt.logLines().length, logged, 'a call that succeeds logs nothing');
  });

  test('delete --force kills a running container and removes its cgroups', async () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'sleep', '100'], (s) => {
      s.linux = { ...s.linux, cgroupsPath: `/stockade-light-test-${RUN_TAG}`, resources: { pids: { limit: 50 } } };
    }));
    assert.equal(rt.run(['create', '--bundle', b.dir, 'l2']).status, 0);
    const cgroups = (json<{ cgroupPaths: string[] }>(readFileSync(join(rt.root, 'l2', 'state.json'), 'utf8'))).cgroupPaths;
    assert.ok(cgroups.length > 0 && cgroups.every((p) => existsSync(p)));
    assert.equal(light(rt, ['start', 'l2']).status, 0);
    const pid = pidOf(rt, 'l2');

    // Without --force a running container is Node's to refuse.
    const refused = light(rt, ['delete', 'l2'], { withNode: true });
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /not stopped: running/);

    const forced = light(rt, ['delete', '--force', 'l2']);
    assert.equal(forced.status, 0, forced.stderr);
    // containerd's shim follows every delete with a forced one: for a container already gone, success.
    const again = light(rt, ['delete', '--force', 'l2']);
    assert.equal(again.status, 0, again.stderr);
    assert.match(light(rt, ['delete', 'l2']).stderr, WENT_TO_NODE);
    assert.ok(!alive(pid));
    assert.deepEqual(cgroups.filter((p) => existsSync(p)), []);
    assert.deepEqual(leftovers(rt, b), []);
  });

  test('every signal form kill accepts is delivered as its number, by the light entry and by Node; the forms it refuses deliver nothing', async () => {
    // The init records each signal it gets, by number, in /dev/shm (seen here through its root).
    const trapped = [1, 10, 12, 15, 34, 35, 62, 64];
    const traps = trapped.map((n) => `trap "echo ${n} >> /dev/shm/got" ${n};`).join(' ');
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', `${traps} echo up > /dev/shm/up; while :; do sleep 0.05; done`]));
    assert.equal(rt.run(['run', '--detach', '--bundle', b.dir, 'l3']).status, 0);
    const pid = pidOf(rt, 'l3');
    const got = (): string[] => {
      try {
        return readFileSync(`/proc/${pid}/root/dev/shm/got`, 'utf8').split('\n').filter((l) => l !== '');
      } catch {
        return [];
      }
    };
    await waitFor(() => existsSync(`/proc/${pid}/root/dev/shm/up`));
    const expected: string[] = [];
    const delivered = async (sig: string, n: number, send: () => Ran): Promise<void> => {
      const r = send();
      assert.equal(r.status, 0, `${sig}: ${r.stderr}`);
      expected.push(String(n));
      await waitFor(() => got().length >= expected.length);
      assert.deepEqual(got(), expected, `${sig} arrived as signal ${n}`);
    };
    // Every form parseSignal and the light entry take: a name in any case, with or without SIG, a
    // number (an RT one too), RTMIN/RTMAX alone and with an offset, with or without SIG; no signal
    // at all is SIGTERM.
    const direct: [string, number][] = [['usr1', 10], ['SIGUSR2', 12], ['Hup', 1], ['sigHup', 1], ['10', 10], ['35', 35], ['64', 64]];
    for (const [sig, n] of direct) await delivered(sig, n, () => light(rt, ['kill', 'l3', sig]));
    await delivered('(none)', 15, () => light(rt, ['kill', 'l3']));
    const rtForms: [string, number][] = [['RTMIN+1', 35], ['SIGRTMAX-2', 62], ['rtmin', 34], ['SIGRTMAX', 64], ['sigrtmin+1', 35]];
    for (const [sig] of rtForms) assert.match(light(rt, ['kill', 'l3', sig]).stderr, WENT_TO_NODE, `${sig} goes to Node`);
    assert.deepEqual(got(), expected, 'the light entry delivered none of the RT names it handed on');
    for (const [sig, n] of rtForms) await delivered(sig, n, () => rt.run(['kill', 'l3', sig]));
    // The same forms through Node's own kill (STOCKADE_LIGHT=off sends every call there).
    const viaNode = (...sig: string[]) => (): Ran => light(rt, ['kill', 'l3', ...sig], { withNode: true, env: { STOCKADE_LIGHT: 'off' } });
    for (const [sig, n] of [...direct, ...rtForms]) await delivered(`${sig} (Node)`, n, viaNode(sig));
    await delivered('(none) (Node)', 15, viaNode());
    // Signal 0 sends nothing and says the container runs, both ways.
    assert.equal(light(rt, ['kill', 'l3', '0']).status, 0);
    assert.equal(viaNode('0')().status, 0);
    assert.match(light(rt, ['kill', '--all', 'l3', 'KILL']).stderr, WENT_TO_NODE);
    // Refused by both: unknown names, numbers out of range, signs, RT offsets out of range.
    for (const bad of ['SIGNOPE', '65', '+10', '-0', '10x', 'RTMIN+40', 'SIGRTMAX+1', 'SIG']) {
      for (const [how, send] of [['light entry', () => light(rt, ['kill', 'l3', bad], { withNode: true })], ['Node', viaNode(bad)]] as const) {
        const r = send();
        assert.notEqual(r.status, 0, `${bad} (${how})`);
        assert.match(r.stderr, /unknown signal|flag|usage/i, `${bad} (${how}): ${r.stderr}`);
      }
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(got(), expected, 'a refused signal delivered nothing');
    assert.equal(light(rt, ['kill', 'l3', 'KILL']).status, 0);
    await waitFor(() => !alive(pid));
    assert.equal(light(rt, ['delete', 'l3']).status, 0);
    assert.deepEqual(leftovers(rt, b), []);
  });

  test('a paused container, hooks, unknown flags and STOCKADE_LIGHT=off go to Node', async () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'sleep', '100']));
    assert.equal(rt.run(['run', '--detach', '--bundle', b.dir, 'l4']).status, 0);
    assert.equal(rt.run(['pause', 'l4']).status, 0);
    // A frozen task holds SIGKILL until thawed: Node thaws it after sending.
    assert.match(light(rt, ['kill', 'l4', 'KILL']).stderr, WENT_TO_NODE);
    assert.match(light(rt, ['delete', '--force', 'l4']).stderr, WENT_TO_NODE);
    assert.equal(light(rt, ['delete', '--force', 'l4'], { withNode: true }).status, 0);

    const hooked = rt.bundle(probeSpec(['/bin/probe', 'exit', '0'], (s) => {
      s.hooks = { poststart: [{ path: '/bin/sh', args: ['sh', '-c', 'true'] }] };
    }));
    assert.equal(rt.run(['create', '--bundle', hooked.dir, 'l5']).status, 0);
    assert.ok(!existsSync(join(rt.root, 'l5', 'light')), 'a container with poststart hooks has no light record');
    assert.match(light(rt, ['start', 'l5']).stderr, WENT_TO_NODE);
    assert.equal(light(rt, ['start', 'l5'], { withNode: true }).status, 0);
    assert.equal(rt.run(['delete', '--force', 'l5']).status, 0);

    const plain = rt.bundle(probeSpec(['/bin/probe', 'exit', '0']));
    assert.equal(rt.run(['create', '--bundle', plain.dir, 'l6']).status, 0);
    assert.match(light(rt, ['--debug', 'start', 'l6']).stderr, WENT_TO_NODE);
    assert.match(light(rt, ['start', 'l6'], { env: { STOCKADE_LIGHT: 'off' } }).stderr, WENT_TO_NODE);
    assert.match(light(rt, ['start', 'l6', 'extra']).stderr, WENT_TO_NODE);
    assert.match(light(rt, ['start', 'no-such']).stderr, WENT_TO_NODE);
    assert.match(light(rt, ['start', '../l6']).stderr, WENT_TO_NODE);
    assert.equal(light(rt, ['start', 'l6']).status, 0);
    assert.equal(light(rt, ['delete', '--force', 'l6']).status, 0);
    assert.deepEqual(leftovers(rt), []);
  });

  test('a container whose level does not declare the light entry safe goes to Node for every call', async () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'sleep', '100']));
    assert.equal(rt.run(['create', '--bundle', b.dir, 'l8']).status, 0);
    const path = join(rt.root, 'l8', 'light');
    const record = readFileSync(path, 'utf8').split('\n');
    assert.equal(record[1], 'act yes', 'create names whether the light entry may act, first');
    // What create writes for such a level has nothing but `act no`; with every other key still
    // there, `act` alone is shown to decide.
    writeFileSync(path, [record[0], 'act no', ...record.slice(2)].join('\n'));
    for (const args of [['start', 'l8'], ['kill', 'l8', 'KILL'], ['delete', '--force', 'l8']]) {
      assert.match(light(rt, args).stderr, WENT_TO_NODE, args.join(' '));
    }
    assert.equal(statusOf(rt, 'l8'), 'created');
    assert.equal(light(rt, ['start', 'l8'], { withNode: true }).status, 0);
    assert.equal(statusOf(rt, 'l8'), 'running');
    assert.equal(light(rt, ['delete', '--force', 'l8'], { withNode: true }).status, 0);
    assert.deepEqual(leftovers(rt), []);
  });

  test('an exec that fails at start is reported by Node, word for word as without the light entry', () => {
    const results: Ran[] = [];
    const logged = rt.logLines().length;
    for (const env of [{}, { STOCKADE_LIGHT: 'off' }]) {
      const b = rt.bundle(probeSpec(['/bin/vanishing']));
      writeFileSync(join(b.rootfs, 'bin', 'vanishing'), readFileSync(join(b.rootfs, 'bin', 'probe')), { mode: 0o755 });
      assert.equal(rt.run(['create', '--bundle', b.dir, 'l7']).status, 0);
      // Gone between create and start: only the exec at start can find out.
      spawnSync('rm', [join(b.rootfs, 'bin', 'vanishing')]);
      results.push(light(rt, ['start', 'l7'], { withNode: true, env }));
      assert.equal(rt.run(['delete', '--force', 'l7']).status, 0);
    }
    const [viaLight, viaNode] = results;
    assert.equal(viaLight?.status, 1);
    assert.equal(viaLight?.stderr, viaNode?.stderr);
    assert.match(viaLight?.stderr ?? '', /^stockade: exec: exec "\/bin\/vanishing": No such file or directory \(ENOENT\)\n$/);
    const errors = rt.logLines().slice(logged).filter((l) => l.level === 'error').map((l) => l.msg);
    assert.equal(errors.length, 2);
    assert.equal(errors[0], errors[1]);
  });

  test('a pid the kernel gave to another process is never signalled', async () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'sleep', '100']));
    assert.equal(rt.run(['create', '--bundle', b.dir, 'l8']).status, 0);
    // Point the record at a live process that is not the container, as a reused pid would be.
    const bystander = spawn('sleep', ['100'], { stdio: 'ignore' });
    try {
      const path = join(rt.root, 'l8', 'light');
      const forged = readFileSync(path, 'utf8').replace(/^pid \d+$/m, `pid ${bystander.pid ?? 0}`);
      writeFileSync(path, forged);
      assert.match(light(rt, ['kill', 'l8', 'KILL']).stderr, WENT_TO_NODE);
      assert.match(light(rt, ['delete', '--force', 'l8']).stderr, WENT_TO_NODE);
      assert.ok(alive(bystander.pid ?? 0), 'the bystander is untouched');
    } finally {
      bystander.kill('SIGKILL');
    }
    assert.equal(rt.run(['delete', '--force', 'l8']).status, 0);
    assert.deepEqual(leftovers(rt, b), []);
  });
  test('wait (what do and an attached run become): a malformed call gets its usage, a helper that is not its child an error', () => {
    let r = light(rt, ['wait']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^usage: stockade-light .* wait \[--keep\] ID HELPER_PID\n$/);
    r = light(rt, ['wait', '--keep', 'l9', '1']);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'stockade: wait for stockade-init (pid 1): No child processes\n');
  });

  test('an attached run whose container leaves processes behind: its wait hands the delete to Node, and still exits with the container\'s status', async () => {
    // No pid namespace of its own: the background sleep outlives the container's init.
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'sleep 100 & echo "$!"; exit 3'], (s) => {
      s.linux = { ...s.linux, namespaces: (s.linux?.namespaces ?? []).filter((n) => n.type !== 'pid') };
    }));
    const r = rt.run(['run', '--bundle', b.dir, 'l9']);
    assert.equal(r.status, 3, r.stderr);
    const left = Number(r.stdout.trim());
    assert.ok(left > 0, r.stdout);
    await waitFor(() => !alive(left), 5000);
    assert.deepEqual(leftovers(rt, b), []);
  });
});
