// OCI lifecycle hooks through the real CLI: each kind at its point, in its namespace, with its state and env.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Hook, HookName, Spec } from '../../src/oci/spec';
import { Runtime, alive, integrationSkip, json, leftovers, probeSpec } from './harness';

const skip = integrationSkip();

interface HookRecord {
  ns: string;
  uptime: number;
  state: { ociVersion: string; id: string; status: string; pid: number; bundle: string; annotations?: Record<string, string> };
  env: string[];
}

const ENV_PATH = 'PATH=/usr/sbin:/usr/bin:/sbin:/bin';
// Everything through shell builtins where it matters: `read < /proc/self/...` runs in the hook's
// own process, so it reads the hook's pid as the mounted /proc numbers it (before pivot_root a
// createContainer hook sees the host's /proc from inside the container's pid namespace), and the
// environ of that pid is the hook's environment as execve gave it, before the shell adds PWD.
const RECORDER = [
  'set -e',
  'name=$1; out=$2',
  'read -r self _rest < /proc/self/stat',
  'read -r up _idle < /proc/uptime',
  'readlink /proc/self/ns/mnt > "$out/$name.ns"',
  'echo "$up" > "$out/$name.uptime"',
  'cat > "$out/$name.state"',
  'cat "/proc/$self/environ" > "$out/$name.env"',
  'echo "$name" >> "$out/order"',
].join('\n');

function recorder(name: string, out: string, timeout?: number): Hook {
  const hook: Hook = { path: '/bin/sh', args: ['sh', '-c', RECORDER, 'sh', name, out], env: [ENV_PATH, `HOOK_NAME=${name}`] };
  if (timeout !== undefined) hook.timeout = timeout;
  return hook;
}

function shell(script: string, timeout?: number): Hook {
  const hook: Hook = { path: '/bin/sh', args: ['sh', '-c', script], env: [ENV_PATH] };
  if (timeout !== undefined) hook.timeout = timeout;
  return hook;
}

function readRecord(out: string, name: string): HookRecord {
  const path = (ext: string): string => join(out, `${name}.${ext}`);
  assert.ok(existsSync(path('state')), `hook ${name} did not run`);
  return {
    ns: readFileSync(path('ns'), 'utf8').trim(),
    uptime: Number(readFileSync(path('uptime'), 'utf8').trim()),
    state: json<HookRecord['state']>(readFileSync(path('state'), 'utf8')),
    env: readFileSync(path('env'), 'utf8').split('\0').filter((e) => e !== ''),
  };
}

function order(out: string): string[] {
  return existsSync(join(out, 'order')) ? readFileSync(join(out, 'order'), 'utf8').trim().split('\n') : [];
}

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A probe spec with the given hooks and a host directory `out` bound at /hookout. */
function hookedSpec(rt: Runtime, args: string[], hooks: (out: string) => Spec['hooks']): { bundle: ReturnType<Runtime['bundle']>; out: string } {
  let out = '';
  const bundle = rt.bundle(({ dir }) => {
    out = join(dir, 'hookout');
    mkdirSync(out);
    return probeSpec(args, (s) => {
      s.annotations = { 'org.example.hooks': 'yes' };
      s.mounts = [...(s.mounts ?? []), { destination: '/hookout', type: 'bind', source: out, options: ['rbind', 'rw'] }];
      const h = hooks(out);
      if (h !== undefined) s.hooks = h;
    });
  });
  return { bundle, out };
}

function warnings(rt: Runtime): string[] {
  return rt.logLines().filter((l) => l.level === 'warning').map((l) => l.msg);
}

describe('hooks', { skip }, () => {
  let rt: Runtime;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  test('every hook runs in order, at its point, in its namespace, with its state and only its env', async () => {
    const { bundle, out } = hookedSpec(rt, ['/bin/probe', 'signal-exit'], (o) => ({
      prestart: [recorder('prestart', o)],
      createRuntime: [recorder('createRuntime', o), recorder('createRuntime2', o)],
      createContainer: [recorder('createContainer', o, 10)],
      startContainer: [recorder('startContainer', '/hookout', 10)],
      poststart: [recorder('poststart', o)],
      poststop: [recorder('poststop', o)],
    }));
    const hostNs = readlinkSync('/proc/self/ns/mnt');

    const c = rt.run(['create', '--bundle', bundle.dir, 'h1']);
    assert.equal(c.status, 0, c.stderr);
    const { pid } = json<{ pid: number }>(rt.run(['state', 'h1']).stdout);
    const containerNs = readlinkSync(`/proc/${pid}/ns/mnt`);
    assert.notEqual(containerNs, hostNs);
    assert.deepEqual(order(out), ['prestart', 'createRuntime', 'createRuntime2', 'createContainer']);

    const s = rt.run(['start', 'h1']);
    assert.equal(s.status, 0, s.stderr);
    assert.deepEqual(order(out).slice(4), ['startContainer', 'poststart']);

    assert.equal(rt.run(['kill', 'h1', 'TERM']).status, 0);
    await waitFor(() => !alive(pid));
    assert.equal(rt.run(['delete', 'h1']).status, 0);
    assert.deepEqual(order(out).slice(6), ['poststop']);
    assert.deepEqual(leftovers(rt, bundle), []);

    const expected: Record<string, { ns: string; status: string }> = {
      prestart: { ns: hostNs, status: 'creating' },
      createRuntime: { ns: hostNs, status: 'creating' },
      createRuntime2: { ns: hostNs, status: 'creating' },
      createContainer: { ns: containerNs, status: 'creating' },
      startContainer: { ns: containerNs, status: 'created' },
      poststart: { ns: hostNs, status: 'running' },
      poststop: { ns: hostNs, status: 'stopped' },
    };
    let last = 0;
    for (const name of order(out)) {
      const r = readRecord(out, name);
      const want = expected[name];
      assert.ok(want !== undefined, name);
      assert.equal(r.ns, want.ns, `${name} ran in the wrong mount namespace`);
      assert.equal(r.state.status, want.status, `${name} state status`);
      assert.equal(r.state.pid, pid, `${name} state pid`);
      assert.equal(r.state.id, 'h1');
      assert.equal(r.state.bundle, bundle.dir);
      assert.equal(r.state.ociVersion, '1.3.0');
      assert.deepEqual(r.state.annotations, { 'org.example.hooks': 'yes' });
      assert.deepEqual(r.env, [ENV_PATH, `HOOK_NAME=${name}`], `${name} env`);
      assert.ok(r.uptime >= last, `${name} ran before the hook listed ahead of it`);
      last = r.uptime;
    }
    assert.deepEqual(warnings(rt), []);
  });

  test('a failing createRuntime hook fails create, names the hook and leaves nothing behind', () => {
    const { bundle, out } = hookedSpec(rt, ['/bin/probe', 'signal-exit'], (o) => ({
      createRuntime: [recorder('first', o), shell('echo boom >&2; exit 3')],
      createContainer: [recorder('never', o)],
    }));
    const r = rt.run(['create', '--bundle', bundle.dir, 'h2']);
    assert.notEqual(r.status, 0);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /hooks\.createRuntime\[1\] \(\/bin\/sh\): exit status 3: boom/);
    assert.deepEqual(order(out), ['first']);
    assert.deepEqual(leftovers(rt, bundle), []);
  });

  test('a createRuntime hook that cannot be executed fails create', () => {
    const { bundle } = hookedSpec(rt, ['/bin/true'], () => ({ createRuntime: [{ path: '/nonexistent/hook' }] }));
    const r = rt.run(['create', '--bundle', bundle.dir, 'h3']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /hooks\.createRuntime\[0\] \(\/nonexistent\/hook\): cannot run: .*ENOENT/);
    assert.deepEqual(leftovers(rt, bundle), []);
  });

  test('a createContainer hook past its timeout is killed and fails create', () => {
    const marker = 'stockade-hook-timeout-marker';
    const { bundle } = hookedSpec(rt, ['/bin/probe', 'signal-exit'], () => ({
      createContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'sleep 30; true', marker], env: [ENV_PATH], timeout: 1 }],
    }));
    const started = Date.now();
    const r = rt.run(['create', '--bundle', bundle.dir, 'h4']);
    assert.notEqual(r.status, 0);
    assert.ok(Date.now() - started < 10_000, 'create waited for the hook past its timeout');
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /hooks\.createContainer\[0\] \(\/bin\/sh\): timed out after 1s/);
    assert.deepEqual(leftovers(rt, bundle, marker), []);
  });

  test('a failing createContainer hook fails create with its status', () => {
    const { bundle } = hookedSpec(rt, ['/bin/probe', 'signal-exit'], () => ({
      createContainer: [shell('true'), shell('echo not today; exit 7')],
    }));
    const r = rt.run(['create', '--bundle', bundle.dir, 'h5']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /hooks\.createContainer\[1\] \(\/bin\/sh\): exit status 7: not today/);
    assert.deepEqual(leftovers(rt, bundle), []);
  });

  test('a failing startContainer hook fails start and the container ends stopped', async () => {
    const { bundle, out } = hookedSpec(rt, ['/bin/probe', 'signal-exit'], (o) => ({
      startContainer: [shell('exit 4')],
      poststart: [recorder('poststart', o)],
    }));
    assert.equal(rt.run(['create', '--bundle', bundle.dir, 'h6']).status, 0);
    const { pid } = json<{ pid: number }>(rt.run(['state', 'h6']).stdout);
    const s = rt.run(['start', 'h6']);
    assert.notEqual(s.status, 0);
    assert.equal(s.stderr.trim().split('\n').length, 1, s.stderr);
    assert.match(s.stderr, /hooks\.startContainer\[0\] \(\/bin\/sh\): exit status 4/);
    await waitFor(() => !alive(pid));
    assert.equal(json<{ status: string }>(rt.run(['state', 'h6']).stdout).status, 'stopped');
    assert.deepEqual(order(out), [], 'poststart ran after a failed start');
    assert.equal(rt.run(['delete', 'h6']).status, 0);
    assert.deepEqual(leftovers(rt, bundle), []);
  });

  test('a startContainer hook that cannot be executed fails start with its errno', async () => {
    const { bundle } = hookedSpec(rt, ['/bin/probe', 'signal-exit'], () => ({ startContainer: [{ path: '/nonexistent/hook' }] }));
    assert.equal(rt.run(['create', '--bundle', bundle.dir, 'h9']).status, 0);
    const { pid } = json<{ pid: number }>(rt.run(['state', 'h9']).stdout);
    const s = rt.run(['start', 'h9']);
    assert.notEqual(s.status, 0);
    assert.match(s.stderr, /hooks\.startContainer\[0\] \(\/nonexistent\/hook\): cannot run: .*ENOENT/);
    await waitFor(() => !alive(pid));
    assert.equal(rt.run(['delete', 'h9']).status, 0);
    assert.deepEqual(leftovers(rt, bundle), []);
  });

  test('failing poststart and poststop hooks only warn', async () => {
    const { bundle } = hookedSpec(rt, ['/bin/probe', 'signal-exit'], () => ({
      poststart: [shell('exit 5')],
      poststop: [shell('echo gone >&2; exit 6')],
    }));
    assert.equal(rt.run(['create', '--bundle', bundle.dir, 'h7']).status, 0);
    const { pid } = json<{ pid: number }>(rt.run(['state', 'h7']).stdout);
    const s = rt.run(['start', 'h7']);
    assert.equal(s.status, 0, s.stderr);
    assert.equal(json<{ status: string }>(rt.run(['state', 'h7']).stdout).status, 'running');
    assert.ok(warnings(rt).some((w) => /hooks\.poststart\[0\] \(\/bin\/sh\): exit status 5/.test(w)), JSON.stringify(warnings(rt)));
    const d = rt.run(['delete', '--force', 'h7']);
    assert.equal(d.status, 0, d.stderr);
    assert.ok(warnings(rt).some((w) => /hooks\.poststop\[0\] \(\/bin\/sh\): exit status 6: gone/.test(w)), JSON.stringify(warnings(rt)));
    await waitFor(() => !alive(pid));
    assert.deepEqual(leftovers(rt, bundle), []);
  });

  test('run goes through every hook, poststop included when it removes the container', () => {
    const names: HookName[] = ['createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'];
    const { bundle, out } = hookedSpec(rt, ['/bin/true'], (o) => Object.fromEntries(
      names.map((n) => [n, [recorder(n, n === 'startContainer' ? '/hookout' : o)]]),
    ));
    const r = rt.run(['run', '--bundle', bundle.dir, 'h8']);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(order(out), names);
    assert.equal(readRecord(out, 'poststop').state.status, 'stopped');
    assert.deepEqual(leftovers(rt, bundle), []);
  });
});
