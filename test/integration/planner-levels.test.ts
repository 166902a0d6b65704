// The planner serves create and run at the sentry and vm levels (docs/design/planner.md): their
// supervisors (the sentry and its watch, a VM's keeper) are started by the CLI call's front, not by
// the planner, so that they are the call's descendants (a subreaper above the call, as conmon and
// containerd's shims are, adopts them) and outlive the planner; a planner killed mid-create leaves
// none of them behind, and the call ends as the cold call would.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime, STOCKADE, integrationSkip, json, leftovers, parentOf, plannersOf, probeSpec, runProcesses, stopPlanners, waitFor } from './harness';
import { vmGone, vmSkip, vmTrace, VM_CALL } from './vm-helpers';

/** A Node started for the call would fail at once on this; the running planner never reads it (nor do the supervisors, started with environments of their own). */
const NO_COLD_NODE = { NODE_OPTIONS: '--require=/nonexistent/a-cold-node-fails-here' };

/**
 * A monitor as conmon is: a subreaper that runs one CLI call and then holds what it adopted until
 * its stdin ends. Resolves with the call's status and stderr once the call returned.
 */
async function underSubreaper(args: readonly string[], env: Readonly<Record<string, string>>): Promise<{ pid: number; status: number; stderr: string; end: () => Promise<void> }> {
  const addon = require.resolve('../../src/native/addon');
  // The call's environment is given to the call alone: the monitor is a Node too.
  const monitor = spawn(process.execPath, ['-e', `
    require(process.argv[1]).setChildSubreaper();
    const env = { ...process.env, ...JSON.parse(process.argv[2]) };
    // A file, not a pipe, for stderr: the container holds the call's stdio (a pipe would be waited on until it ends).
    const fs = require('fs');
    const errPath = require('path').join(require('os').tmpdir(), 'stockade-monitor-err-' + process.pid);
    const err = fs.openSync(errPath, 'w+');
    const r = require('child_process').spawnSync(process.argv[3], process.argv.slice(4), { stdio: ['ignore', 'ignore', err], env });
    fs.closeSync(err);
    const stderr = fs.readFileSync(errPath, 'utf8');
    fs.rmSync(errPath);
    console.log(JSON.stringify({ status: r.status, stderr }));
    process.stdin.resume();
    process.stdin.on('end', () => process.exit(0));
  `, addon, JSON.stringify(env), STOCKADE, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  let said = '';
  monitor.stdout?.on('data', (d: Buffer) => { said += d.toString(); });
  await waitFor(() => said.includes('\n') || monitor.exitCode !== null, 180_000);
  assert.ok(said.includes('\n'), `the monitor ended (${monitor.exitCode}) before its call did`);
  const r = json<{ status: number; stderr: string }>(said.trim());
  const exited = new Promise<void>((res) => monitor.once('exit', () => res()));
  return { pid: monitor.pid ?? 0, ...r, end: async () => { if (monitor.exitCode === null) monitor.stdin?.end(); await exited; } };
}

/** A createRuntime hook that kills its parent when that parent is a planner (the cold retry's Node it spares), noting it in `killed`. */
function plannerKiller(dir: string, killed: string): string {
  const hook = join(dir, 'kill-planner.sh');
  writeFileSync(hook, `#!/bin/sh\ncase "$(tr "\\0" " " < /proc/$PPID/cmdline)" in *stockade-planner*) echo $PPID >> ${killed}; kill -9 $PPID;; esac\nexit 0\n`, { mode: 0o755 });
  return hook;
}

function lines(path: string): number {
  try {
    return readFileSync(path, 'utf8').trim().split('\n').filter((l) => l !== '').length;
  } catch {
    return 0;
  }
}

describe('the planner at the sentry level', { skip: integrationSkip() }, () => {
  let rt: Runtime;
  before(() => {
    rt = new Runtime();
    mkdirSync(rt.root, { mode: 0o700 });
  });
  after(() => {
    stopPlanners(rt.root);
    rt.cleanup();
  });

  test('create is served: the sentry and its watch are the call\'s descendants, and outlive the planner', async () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'sleep', '100']));
    const base = ['--root', rt.root, '--log', rt.log, '--log-format', 'json', '--isolation', 'sentry'];
    const m = await underSubreaper([...base, 'create', '-b', b.dir, 'sup'], NO_COLD_NODE);
    try {
      assert.equal(m.status, 0, m.stderr);
      assert.equal(plannersOf(rt.root).length, 1, 'a planner served the create');
      const state = json<{ levelData?: { supervisor?: { pid: number } } }>(readFileSync(join(rt.root, 'sup', 'state.json'), 'utf8'));
      const sentry = state.levelData?.supervisor?.pid ?? 0;
      const watch = runProcesses('sentry-watch').find((p) => p.cmdline.includes('sentry-watch sup '))?.pid ?? 0;
      assert.ok(sentry > 0 && watch > 0, `sentry ${sentry}, watch ${watch}`);
      // The front that started them is gone: the subreaper above the call adopted them, as it adopts a cold call's.
      assert.equal(parentOf(sentry), m.pid, 'the sentry is the monitor\'s');
      assert.equal(parentOf(watch), m.pid, 'the watch is the monitor\'s');
      // The monitor (a Node) reaps none of what it adopted, as conmon would: it goes first, and init takes them.
      await m.end();
      stopPlanners(rt.root);
      await waitFor(() => plannersOf(rt.root).length === 0);
      assert.equal(rt.run(['start', 'sup']).status, 0);
      // A process exec'd into it joins its sentry, through a planner again: the sentry serves its calls.
      const r = rt.run(['exec', 'sup', '/bin/sh', '-c', 'ls /bin/sh; exit 3'], { env: NO_COLD_NODE });
      assert.equal(r.status, 3, r.stderr);
      assert.equal(r.stdout, '/bin/sh\n');
      assert.equal(json<{ status: string }>(rt.run(['state', 'sup']).stdout).status, 'running');
      assert.ok(parentOf(sentry) > 0 && parentOf(watch) > 0, 'the sentry and its watch run on');
      assert.equal(rt.run(['delete', '--force', 'sup']).status, 0);
      await waitFor(() => leftovers(rt, b).length === 0 && runProcesses('sentry-watch').every((p) => !p.cmdline.includes('sentry-watch sup ')));
    } finally {
      await m.end();
    }
  });

  test('run is served; a planner killed mid-create leaves no sentry, and the run ends as the cold run would', () => {
    const dir = join(rt.root, '..');
    const killed = join(dir, 'killed-sentry');
    const hook = plannerKiller(dir, killed);
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'ls /bin/sh; exit 5'], (s) => { s.hooks = { createRuntime: [{ path: hook }] }; }));
    // Once starting a planner, once with one that is running.
    for (const id of ['slost1', 'slost2']) {
      const r = rt.run(['--isolation', 'sentry', 'run', '-b', b.dir, id]);
      assert.equal(r.status, 5, r.stderr);
      assert.equal(r.stdout, '/bin/sh\n', 'the workload ran once');
      assert.equal(r.stderr, '');
      assert.deepEqual(rt.containerDirs(), []);
      assert.deepEqual(leftovers(rt, b), []);
    }
    assert.equal(lines(killed), 2, 'a planner was killed in each call');
    // Served, with no hook to kill it: no cold Node needed.
    const plain = rt.bundle(probeSpec(['/bin/sh', '-c', 'ls /bin/sh; exit 6']));
    const r = rt.run(['--isolation', 'sentry', 'run', '-b', plain.dir, 'sserved'], { env: NO_COLD_NODE });
    assert.equal(r.status, 6, r.stderr);
    assert.equal(r.stdout, '/bin/sh\n');
    assert.deepEqual(leftovers(rt, plain), []);
    assert.deepEqual(rt.logLines().filter((l) => l.level === 'error'), []);
  });
});

describe('the planner at the vm level', { skip: vmSkip() }, () => {
  let rt: Runtime;
  before(() => {
    rt = new Runtime();
    mkdirSync(rt.root, { mode: 0o700 });
  });
  after(() => {
    stopPlanners(rt.root);
    rt.cleanup();
  });

  test('a planner killed mid-create (the keeper started, the VM not yet): no keeper left, the run ends as the cold run would', () => {
    const dir = join(rt.root, '..');
    const killed = join(dir, 'killed-vm');
    const hook = plannerKiller(dir, killed);
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'echo once; exit 5'], (s) => { s.hooks = { createRuntime: [{ path: hook }] }; }));
    const r = rt.run(['--isolation', 'vm', 'run', '-b', b.dir, 'vlost'], VM_CALL);
    assert.equal(r.status, 5, r.stderr);
    assert.equal(r.stdout, 'once\n');
    assert.equal(r.stderr, '');
    assert.equal(lines(killed), 1, 'the planner was killed');
    assert.deepEqual(rt.containerDirs(), []);
    assert.deepEqual(runProcesses('stockade-vmkeeper'), [], 'no keeper left');
  });

  test('create is served: the keeper is the call\'s descendant and outlives the planner', async () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'sleep', '1000']));
    const base = ['--root', rt.root, '--log', rt.log, '--log-format', 'json', '--isolation', 'vm'];
    const m = await underSubreaper([...base, 'run', '-d', '-b', b.dir, 'vsup'], NO_COLD_NODE);
    let trace;
    try {
      assert.equal(m.status, 0, m.stderr);
      assert.ok(plannersOf(rt.root).length >= 1, 'a planner served the run');
      trace = vmTrace(rt, 'vsup');
      assert.equal(parentOf(trace.keeper), m.pid, 'the keeper is the monitor\'s');
      // The monitor (a Node) reaps none of what it adopted, as conmon would: it goes first, and init takes them.
      await m.end();
      stopPlanners(rt.root);
      await waitFor(() => plannersOf(rt.root).length === 0);
      assert.equal(json<{ status: string }>(rt.run(['state', 'vsup']).stdout).status, 'running');
      const r = rt.run(['exec', 'vsup', '/bin/sh', '-c', 'echo in; exit 2'], VM_CALL);
      assert.equal(r.status, 2, r.stderr);
      assert.equal(r.stdout, 'in\n');
      // A detached exec is served: its stand-in is started by the front too.
      const d = rt.run(['exec', '-d', 'vsup', '/bin/probe', 'sleep', '1'], { ...VM_CALL, env: NO_COLD_NODE });
      assert.equal(d.status, 0, d.stderr);
      assert.equal(rt.run(['delete', '--force', 'vsup'], VM_CALL).status, 0);
      await vmGone(trace);
    } finally {
      if (rt.containerDirs().includes('vsup')) rt.run(['delete', '--force', 'vsup'], VM_CALL);
      await m.end();
    }
  });

  test('an attached run is served, its status passed on; the front releases the workload', () => {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'echo ran; exit 7']));
    const r = rt.run(['--isolation', 'vm', 'run', '-b', b.dir, 'vrun'], { ...VM_CALL, env: NO_COLD_NODE });
    assert.equal(r.status, 7, r.stderr);
    assert.equal(r.stdout, 'ran\n');
    assert.deepEqual(rt.containerDirs(), []);
    assert.deepEqual(runProcesses('stockade-vmkeeper'), []);
  });
});
