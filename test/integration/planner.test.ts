// The planner (docs/design/planner.md): a call through the resident planner says, exits, logs and
// leaves on disk exactly what the cold call does; and the faults a planner can meet (killed
// mid-call, a stale socket, an older build, two fronts starting one, a full disk, another user)
// still end the call as a user expects, with nothing left behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, copyFileSync, existsSync, openSync, mkdirSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/native/paths';
import { layoutFrom } from '../../src/cgroups/layout';
import { PLANNER_SOCKET } from '../../src/planner/protocol';
import { CASES } from './bad-input-cases';
import { Runtime, STOCKADE, integrationSkip, leftovers, leftoversGone, parentOf, plannersOf, probeSpec, runProcesses, stopPlanners, type Result } from './harness';
import { RUN_CGROUP, RUN_ENV } from '../helpers/run-scope';

const skip = integrationSkip();
const ON = { STOCKADE_PLANNER: 'on' };
const OFF = { STOCKADE_PLANNER: 'off' };
/** A Node started for the call fails at once on this NODE_OPTIONS, which the running planner never reads: a call that succeeds with it was served. */
const NO_NODE = { ...ON, NODE_OPTIONS: '--require=/nonexistent/a-cold-node-fails-here' };

/** Node code that first becomes nobody (the binary is loaded already, wherever it lives). */
const AS_NOBODY = 'process.setgroups([]); process.setgid(65534); process.setuid(65534);';

/**
 * Whether this process's orphans go to init, not to a subreaper above it (a service manager, a
 * client's monitor): the case of a planner started under conmon needs a caller whose do.
 */
function orphansGoToInit(): boolean {
  const r = spawnSync('/bin/sh', ['-c', '( sleep 0.3; read -r _pid _comm _state ppid _rest < /proc/self/stat; echo "$ppid" ) &'], { encoding: 'utf8' });
  return r.stdout.trim() === '1';
}

async function until(check: () => boolean, ms = 10_000, what = (): string => ''): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What a call shows a user and leaves in the log, with the two runtimes' own paths made alike. */
function seen(rt: Runtime, r: Result, logFrom: number): unknown {
  const norm = (s: string): string => s.split(rt.root).join('ROOT').split(rt.log).join('LOG');
  const log = rt.logLines().slice(logFrom).map((l) => {
    const { time: _t, ...rest } = l as { time?: string };
    return norm(JSON.stringify(rest));
  });
  return { status: r.status, signal: r.signal, stdout: norm(r.stdout), stderr: norm(r.stderr), log, dirs: rt.containerDirs() };
}

/** A container's state directory as compared: its files, and state.json without what differs per process. */
function stateOf(rt: Runtime, id: string): unknown {
  const dir = join(rt.root, id);
  if (!existsSync(dir)) return undefined;
  const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as Record<string, unknown>;
  for (const k of ['pid', 'pidStartTime', 'pidMntNs', 'created']) if (k in state) state[k] = typeof state[k];
  return { files: readdirSync(dir).sort(), state, config: readFileSync(join(dir, 'config.json'), 'utf8') };
}

describe('planner', { skip }, () => {
  let cold: Runtime;
  let warm: Runtime;
  before(() => {
    cold = new Runtime();
    warm = new Runtime();
    // A root that does not exist yet is made by a cold call; the planner serves roots that do.
    mkdirSync(cold.root, { mode: 0o700 });
    mkdirSync(warm.root, { mode: 0o700 });
  });
  after(() => {
    stopPlanners(warm.root);
    cold.cleanup();
    warm.cleanup();
  });

  test('a call is served by the planner: the front spawns stockade-init and never becomes Node', async () => {
    const b = warm.bundle(probeSpec(['/bin/probe', 'sleep', '100']));
    assert.equal(warm.run(['run', '-d', '-b', b.dir, 'served'], { env: ON }).status, 0);
    const planners = plannersOf(warm.root);
    assert.equal(planners.length, 1, 'one planner started for the root');
    const child = warm.spawn(['exec', 'served', '/bin/probe', 'sleep', '2'], ON);
    const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
    after(() => { warm.run(['delete', '--force', 'served']); });
    // The front is the exec's stockade-init's parent, and stays the light entry, not node.
    let initParent: string | undefined;
    await until(() => {
      const init = runProcesses('stockade-init').find((p) => p.ppid === child.pid);
      if (init !== undefined) initParent = readlinkSync(`/proc/${init.ppid}/exe`);
      return initParent !== undefined;
    });
    assert.match(initParent ?? '', /stockade-light$/);
    assert.equal(await exited, 0);
    // The verbs on one container are served too: a Node started for them would fail at once on its
    // NODE_OPTIONS, which the running planner never reads.
    // A cold call fails with that NODE_OPTIONS; a streaming events is one.
    for (const args of [['pull'], ['events', 'served']]) assert.match(warm.run(args, { env: NO_NODE, timeout: 10_000 }).stderr, /a-cold-node-fails-here/, args.join(' '));
    const specDir = join(warm.root, '..', 'served-spec');
    mkdirSync(specDir);
    for (const args of [['state', 'served'], ['ps', '--format', 'json', 'served'], ['pause', 'served'], ['resume', 'served'], ['update', '--pids-limit', '60', 'served'],
      ['update', '--resources', '-', 'served'], ['events', '--stats', 'served'], ['list'], ['features'], ['spec', '--bundle', specDir]]) {
      const r = warm.run(args, { env: NO_NODE, input: '{"pids":{"limit":70}}' });
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    assert.ok(existsSync(join(specDir, 'config.json')));
    assert.match(warm.run(['events', '--stats', 'served']).stdout, /"pids":\{"current":\d+,"limit":70\}/, 'the resources on stdin reached the container');
    assert.deepEqual(plannersOf(warm.root), planners, 'the same planner served every call');
    assert.equal(warm.run(['delete', '--force', 'served']).status, 0);
  });

  test('the planner is the default; it sits in a cgroup of its own and carries none of its caller\'s environment', () => {
    stopPlanners(warm.root);
    const b = warm.bundle(probeSpec(['/bin/probe', 'exit', '3']));
    const { STOCKADE_PLANNER: _mode, ...env } = process.env;
    const r = spawnSync(STOCKADE, ['--root', warm.root, 'run', '-b', b.dir, 'dflt'], { env, encoding: 'utf8' });
    assert.equal(r.status, 3, r.stderr);
    const planners = plannersOf(warm.root);
    assert.equal(planners.length, 1, 'a call with STOCKADE_PLANNER unset started a planner');
    const pid = planners[0] ?? -1;
    const cgroup = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    // The caller's cgroup (this run's) stays removable: the planner lives in stockade-planner.
    assert.ok(!cgroup.includes(RUN_CGROUP), cgroup);
    assert.match(cgroup, /\/stockade-planner$/m);
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    assert.ok(!environ.some((e) => e.startsWith(`${RUN_ENV}=`)), 'the run\'s tag is not in the planner\'s environment');
    // STOCKADE_PLANNER=off: the cold call, in Node, asks no planner (none starts for a new root).
    const offRoot = join(warm.root, '..', 'off-root');
    mkdirSync(offRoot, { mode: 0o700 });
    const off = spawnSync(STOCKADE, ['--root', offRoot, 'run', '-b', b.dir, 'dflt'], { env: { ...env, ...OFF }, encoding: 'utf8' });
    assert.equal(off.status, 3, off.stderr);
    assert.deepEqual(plannersOf(offRoot), []);
  });

  test('a caller in another cgroup is served, and its container goes below the caller\'s cgroup as a cold call puts it', async () => {
    // A cgroup beside this run's, in every hierarchy; the calls join it before they exec stockade.
    const layout = layoutFrom(readFileSync('/proc/self/mountinfo', 'utf8'), readFileSync('/proc/self/cgroup', 'utf8'));
    const dirs = [...layout.v1, ...(layout.unified === undefined ? [] : [layout.unified])].map((h) => {
      const d = join(h.mountpoint, h.ownPath, 'planner-other');
      mkdirSync(d, { recursive: true });
      if (h.version === 1 && h.controllers.includes('cpuset')) {
        for (const f of ['cpuset.cpus', 'cpuset.mems']) writeFileSync(join(d, f), readFileSync(join(h.mountpoint, h.ownPath, f), 'utf8').trim());
      }
      return d;
    });
    const inOther = (args: string[], env: Record<string, string>): ReturnType<typeof spawn> =>
      spawn('/bin/sh', ['-c', 'for d in $DIRS; do echo $$ > "$d/cgroup.procs"; done; exec "$@"', 'sh', STOCKADE, '--root', warm.root, ...args],
        { env: { ...process.env, ...env, DIRS: dirs.join(' ') }, stdio: ['ignore', 'pipe', 'pipe'] });
    const done = (c: ReturnType<typeof spawn>): Promise<number | null> => new Promise((res) => c.once('exit', (code) => res(code)));
    const b = warm.bundle(probeSpec(['/bin/probe', 'sleep', '100']));
    try {
      assert.equal(warm.run(['run', '-d', '-b', b.dir, 'cg-first'], { env: ON }).status, 0);
      const planners = plannersOf(warm.root);
      assert.equal(planners.length, 1);
      const cgroupOf = (id: string): string => {
        const { pid } = JSON.parse(warm.run(['state', id]).stdout) as { pid: number };
        return readFileSync(`/proc/${pid}/cgroup`, 'utf8').split(id).join('ID');
      };
      assert.equal(await done(inOther(['run', '-d', '-b', b.dir, 'cg-warm'], ON)), 0);
      assert.equal(await done(inOther(['run', '-d', '-b', b.dir, 'cg-cold'], OFF)), 0);
      assert.equal(cgroupOf('cg-warm'), cgroupOf('cg-cold'));
      assert.match(cgroupOf('cg-warm'), /planner-other\/ID$/m);
      // Served: the exec's stockade-init is the front's child, and no other planner came.
      const child = inOther(['exec', 'cg-warm', '/bin/probe', 'sleep', '2'], ON);
      let initParent: string | undefined;
      await until(() => {
        const init = runProcesses('stockade-init').find((p) => p.ppid === child.pid);
        if (init !== undefined) initParent = readlinkSync(`/proc/${init.ppid}/exe`);
        return initParent !== undefined;
      });
      assert.match(initParent ?? '', /stockade-light$/);
      assert.equal(await done(child), 0);
      assert.deepEqual(plannersOf(warm.root), planners);
    } finally {
      for (const id of ['cg-first', 'cg-warm', 'cg-cold']) warm.run(['delete', '--force', id]);
      for (const d of dirs) rmdirSync(d);
    }
  });

  test('each command says, exits, logs and records the same through the planner and without it', () => {
    const b = cold.bundle(probeSpec(['/bin/probe', 'sleep', '100']));
    const echo = cold.bundle(probeSpec(['/bin/probe', 'exit', '3']));
    // What differs between two runs of one container: its pids and its creation time.
    const runOwn = (s: string): string => s.replace(/"pid": \d+/g, '"pid": PID').replace(/"created": "[^"]*"/g, '"created": TIME');
    const pidList = (s: string): string => s.replace(/\d+/g, 'PID');
    const listJson = (s: string): string => s.replace(/"pid":\d+/g, '"pid":PID').replace(/"created":"[^"]*"/g, '"created":TIME');
    // The table's columns are as wide as their widest cell: its pids and times are masked cell by cell.
    const listTable = (s: string): string => s.split('\n').map((l, i) => {
      const cells = l.split(/\s+/);
      return i === 0 || cells.length < 5 ? cells.join(' ') : [cells[0], 'PID', cells[2], cells[3], 'TIME', ...cells.slice(5)].join(' ');
    }).join('\n');
    // update --resources - reads the caller's stdin (in the planner, the front reads it and sends it on).
    const steps: { args: string[]; state?: string; mask?: (stdout: string) => string; input?: string }[] = [
      { args: ['create', '-b', b.dir, 'cmp1'], state: 'cmp1' },
      { args: ['start', 'cmp1'] },
      { args: ['exec', 'cmp1', '/bin/probe', 'exit', '7'] },
      { args: ['exec', 'cmp1', '/bin/probe', 'readlink', '/nonexistent'] },
      { args: ['exec', '-d', 'cmp1', '/bin/probe', 'sleep', '1'] },
      { args: ['exec', 'cmp1', '/no/such/program'] },
      { args: ['exec', 'cmp1'] },
      { args: ['exec', 'ghost', '/bin/probe', 'exit', '0'] },
      { args: ['kill', 'cmp1', 'KILL'] },
      { args: ['run', '-b', echo.dir, 'cmp2'] },
      { args: ['run', '--keep', '-b', echo.dir, 'cmp3'], state: 'cmp3' },
      { args: ['run', '-d', '-b', b.dir, 'cmp4'], state: 'cmp4' },
      { args: ['state', 'cmp4'], mask: runOwn },
      { args: ['state', 'ghost'] },
      { args: ['ps', '--format', 'json', 'cmp4'], mask: pidList },
      { args: ['pause', 'cmp4'] },
      { args: ['state', 'cmp4'], mask: runOwn },
      { args: ['pause', 'cmp4'] },
      { args: ['resume', 'cmp4'] },
      { args: ['resume', 'ghost'] },
      { args: ['update', '--pids-limit', '50', 'cmp4'], state: 'cmp4' },
      { args: ['update', 'cmp4'] },
      { args: ['update', '--memory', 'lots', 'cmp4'] },
      { args: ['update', '--resources', '-', 'cmp4'], input: '{"pids":{"limit":40},"cpu":{"shares":512}}', state: 'cmp4' },
      { args: ['update', '-r', '-', '--pids-limit', '30', 'cmp4'], input: '{"pids":{"limit":40}}', state: 'cmp4' },
      { args: ['update', '-r', '-', 'cmp4'], input: 'not json' },
      { args: ['update', '-r', '-', 'cmp4'], input: '' },
      { args: ['update', '-r', '-', 'cmp4'], input: '{"pids":{"limit":"many"}}' },
      { args: ['update', '-r', '-', 'ghost'], input: '{}' },
      { args: ['events', '--stats', 'cmp4'], mask: pidList },
      { args: ['events', '--stats', 'ghost'] },
      { args: ['events', '--stats', '--interval', '0s', 'cmp4'] },
      { args: ['events', '--stats', 'cmp4', 'cmp1'] },
      { args: ['run', '-d', '--keep', '-b', b.dir, 'cmp5'] },
      { args: ['list'], mask: listTable },
      { args: ['list', '--format', 'json'], mask: listJson },
      { args: ['list', '-q'] },
      { args: ['list', '--format', 'xml'] },
      { args: ['features'] },
      { args: ['features', '--syscalls', '--format', 'json'] },
      { args: ['features', '--format', 'json'] },
      { args: ['spec', '--bundle', 'SPEC'] },
      { args: ['spec', '--rootless', '--bundle', 'SPEC'] },
      { args: ['spec', '--bundle', 'SPEC/none'] },
      { args: ['create', '-b', b.dir, 'cmp4'] },
      { args: ['create', '--help'] },
    ];
    const results = [cold, warm].map((rt) => {
      const env = rt === warm ? ON : OFF;
      // spec writes where it is told: a dot name in the root, which no container's id may be.
      const spec = join(rt.root, '.spec');
      mkdirSync(spec);
      const out = steps.map((s) => {
        const from = rt.logLines().length;
        const r = rt.run(s.args.map((a) => a.replace(/^SPEC/, spec)), { env, ...(s.input === undefined ? {} : { input: s.input }) });
        const masked = s.mask === undefined ? r : { ...r, stdout: s.mask(r.stdout) };
        return { args: s.args.join(' '), ...(seen(rt, masked, from) as object), state: s.state === undefined ? undefined : stateOf(rt, s.state) };
      });
      out.push({ args: 'spec wrote', written: readFileSync(join(spec, 'config.json'), 'utf8') } as never);
      // The ids are the same on both sides, and so are their cgroups: one side is gone before the other starts.
      for (const id of rt.containerDirs()) rt.run(['delete', '--force', id], { env });
      return out;
    });
    assert.deepEqual(results[1], results[0]);
  });

  test('do is served by the planner: it says, exits, logs and leaves the same as without it', () => {
    // Served, not cold: a Node started for the call would fail at once on this NODE_OPTIONS, which
    // the running planner never reads (and the front becomes the wait, never Node).
    const noNode = { ...ON, NODE_OPTIONS: '--require=/nonexistent/a-cold-node-fails-here' };
    assert.notEqual(warm.run(['pull'], { env: noNode }).status, 0, 'a cold call fails with that NODE_OPTIONS');
    // The id is the calling process's pid and a random part: alike once masked.
    const own = (s: string): string => s.replace(/do-\d+-[0-9a-f]+/g, 'do-ID');
    const calls: string[][] = [
      ['do', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3'],
      ['do', '-T', '--env', 'A=1', '--', 'sh', '-c', 'echo "A=$A $(id -u)"; test -t 0 || echo "no tty"'],
      ['do', '--', 'sh', '-c', 'kill -TERM $$'],
      ['do', '--timeout', '1', '--', 'sleep', '30'],
      ['do', '--', '/no/such/program'],
      ['do', '--cwd', '/nonexistent', '--', 'true'],
      ['do', '--memory', '1k', '--', 'true'],
      // Another level, said in do's own options: not asked (cold on both sides, as the sentry's would be).
      ['do', '--isolation', 'nowhere', '--', 'true'],
      ['do', '--bogus', '--', 'true'],
      ['do'],
      ['do', '--help'],
    ];
    const results = [cold, warm].map((rt) => calls.map((args) => {
      const from = rt.logLines().length;
      const notAsked = args.includes('--isolation');
      const r = rt.run(args, { env: rt === warm ? (notAsked ? ON : noNode) : OFF });
      const s = seen(rt, { ...r, stdout: own(r.stdout), stderr: own(r.stderr) }, from) as { status: number; log: string[] };
      return { args: args.join(' '), ...s, log: s.log.map(own) };
    }));
    assert.deepEqual(results[1], results[0]);
    // The statuses themselves: the command's, 128+N for signal N, 124 for its time run out; each bad input refused.
    const statuses = (results[1] ?? []).map((r) => r.status);
    assert.deepEqual(statuses.slice(0, 4), [3, 0, 143, 124]);
    assert.ok(statuses.slice(4, -1).every((n) => n !== 0), String(statuses));
    assert.deepEqual(warm.containerDirs(), []);
  });

  test('update --resources - meets a stdin it cannot read, or none, as the cold call meets it', () => {
    const dir = openSync(cold.root, 'r');
    try {
      const cases = [
        // A directory as stdin: the read fails (EISDIR), worded as Node's readFileSync words it.
        { name: 'a directory', stdin: dir, shell: '', said: /cannot read --resources -: EISDIR: illegal operation on a directory, read$/m },
        // fd 0 closed: Node opens /dev/null there at its start, so the cold call reads it empty.
        { name: 'closed', stdin: 'ignore' as const, shell: '<&-', said: /--resources \(stdin\): not JSON/ },
      ];
      for (const c of cases) {
        const [coldSide, warmSide] = [cold, warm].map((rt) => {
          const env = { ...process.env, ...(rt === warm ? NO_NODE : OFF) };
          const r = spawnSync('/bin/sh', ['-c', `exec "$@" ${c.shell}`, 'sh', STOCKADE, '--root', rt.root, 'update', '-r', '-', 'ghost'], { stdio: [c.stdin, 'pipe', 'pipe'], env, encoding: 'utf8' });
          return { status: r.status, stdout: r.stdout, stderr: r.stderr };
        });
        assert.deepEqual(warmSide, coldSide, c.name);
        assert.equal(coldSide?.status, 1, c.name);
        assert.match(coldSide?.stderr ?? '', c.said, c.name);
      }
    } finally {
      closeSync(dir);
    }
  });

  test('the bad inputs meet the same errors through the planner and without it', () => {
    let n = 0;
    for (const c of CASES) {
      const id = `pbad${n++}`;
      let bundleDir = '/nonexistent';
      let bundle;
      if (c.config !== undefined) {
        bundle = cold.bundle(probeSpec(['/bin/probe', 'report']));
        bundleDir = bundle.dir;
        if (typeof c.config === 'string') writeFileSync(bundle.configPath, c.config);
        else bundle.writeSpec(probeSpec(['/bin/probe', 'report'], c.config));
      }
      const both = [cold, warm].map((rt) => {
        const env = rt === warm ? ON : OFF;
        c.setup?.(rt, bundleDir, id);
        const from = rt.logLines().length;
        const r = rt.run(c.args.map((a) => (a === 'BUNDLE' ? bundleDir : a === 'ID' ? id : a)), { env });
        const s = seen(rt, r, from);
        for (const d of rt.containerDirs()) rt.run(['delete', '--force', d], { env: OFF });
        return s;
      });
      assert.deepEqual(both[1], both[0], c.name);
      assert.notEqual((both[0] as { status: number }).status, 0, c.name);
      assert.deepEqual(leftovers(warm, bundle), [], c.name);
    }
  });
});

describe('planner: list', { skip }, () => {
  test('list removes what a killed do left, at either level it runs, through the planner as without it', async () => {
    const [cold, warm] = [new Runtime(), new Runtime()];
    mkdirSync(warm.root, { mode: 0o711 });
    try {
      const sides = [];
      for (const rt of [cold, warm]) {
        // do is not served: its container is made by a cold call, tied to the process that made it.
        // Both at once: a do sweeps too, and would remove what the other left.
        const dos = ['namespaces', 'sentry'].map((level) => rt.spawn(['do', '--isolation', level, '--', 'sleep', '100'], OFF));
        await until(() => {
          const ids = rt.containerDirs();
          return ids.length === 2 && ids.every((id) => rt.run(['state', id], { env: OFF }).stdout.includes('"running"'));
        }, 30_000, () => `two do containers running: ${JSON.stringify(rt.containerDirs())}`);
        await Promise.all(dos.map((child) => {
          const exited = new Promise((res) => child.once('exit', res));
          child.kill('SIGKILL');
          return exited;
        }));
        assert.equal(rt.containerDirs().length, 2, 'each do left its container');
        const from = rt.logLines().length;
        const r = rt.run(['--debug', 'list', '-q'], { env: rt === warm ? NO_NODE : OFF });
        const norm = (t: string): string => t.split(rt.root).join('ROOT').split(rt.log).join('LOG').replace(/do-\d+-[0-9a-f]+/g, 'do-ID').replace(/\d+/g, 'N');
        const log = rt.logLines().slice(from).map((l) => {
          const { time: _t, ...rest } = l as { time?: string };
          return norm(JSON.stringify(rest));
        }).sort();
        sides.push({ status: r.status, stdout: r.stdout, stderr: norm(r.stderr), log, dirs: rt.containerDirs() });
        await leftoversGone(rt);
      }
      assert.deepEqual(sides[1], sides[0]);
      assert.deepEqual(sides[0], { status: 0, stdout: '', stderr: '', log: (sides[0] as { log: string[] }).log, dirs: [] });
      assert.equal((sides[0] as { log: string[] }).log.filter((l) => l.includes('left behind by stockade do')).length, 2, 'both containers were swept');
    } finally {
      stopPlanners(warm.root);
      cold.cleanup();
      warm.cleanup();
    }
  });
});

describe('planner faults', { skip }, () => {
  let rt: Runtime;
  before(() => {
    rt = new Runtime();
    mkdirSync(rt.root, { mode: 0o700 });
  });
  after(() => {
    stopPlanners(rt.root);
    rt.cleanup();
  });

  test('a planner killed mid-call: the call ends as the cold call would, and nothing of the first attempt is left', () => {
    // A createRuntime hook that kills its parent when that parent is the planner (the cold retry's Node it spares).
    const hook = join(rt.root, '..', 'kill-planner.sh');
    const killed = join(rt.root, '..', 'killed');
    writeFileSync(hook, `#!/bin/sh\ncase "$(tr "\\0" " " < /proc/$PPID/cmdline)" in *stockade-planner*) echo $PPID >> ${killed}; kill -9 $PPID;; esac\nexit 0\n`, { mode: 0o755 });
    const b = rt.bundle(probeSpec(['/bin/probe', 'exit', '5'], (s) => { s.hooks = { createRuntime: [{ path: hook }] }; }));
    // Twice: once starting a planner, once with one that is running.
    for (const id of ['lost1', 'lost2']) {
      const r = rt.run(['run', '-b', b.dir, id], { env: ON });
      assert.equal(r.status, 5, r.stderr);
      assert.equal(r.stderr, '');
      assert.deepEqual(rt.containerDirs(), []);
      assert.deepEqual(leftovers(rt, b), []);
    }
    assert.equal(readFileSync(killed, 'utf8').trim().split('\n').length, 2, 'a planner was killed in each call');
    assert.deepEqual(rt.logLines().filter((l) => l.level === 'error'), []);
  });

  test('a planner killed once the workload was released: it ran once, and the run ends as it would have', () => {
    // A poststart hook, run by the planner after the front released the workload, kills the planner.
    const hook = join(rt.root, '..', 'kill-planner-started.sh');
    const killed = join(rt.root, '..', 'killed-started');
    // Every poststart also leaves a line in `ran`: a run done again would run its hooks again.
    const ran = join(rt.root, '..', 'ran');
    writeFileSync(hook, `#!/bin/sh\necho ran >> ${ran}\ncase "$(tr "\\0" " " < /proc/$PPID/cmdline)" in *stockade-planner*) echo $PPID >> ${killed}; kill -9 $PPID;; esac\nexit 0\n`, { mode: 0o755 });
    const withHook = (s: Parameters<NonNullable<Parameters<typeof probeSpec>[1]>>[0]): void => { s.hooks = { poststart: [{ path: hook }] }; };
    // Attached: one line of output (one run), its status, and the container deleted as run does.
    // A workload that is done before the front hears of the loss, and one still running then (the
    // front becomes the wait).
    const quick = rt.bundle(probeSpec(['/bin/probe', 'try-read', '/'], withHook));
    const slow = rt.bundle(probeSpec(['/bin/sh', '-c', '/bin/probe try-read /; /bin/probe sleep 1 >/dev/null; exit 4'], withHook));
    for (const [id, b, status] of [['started1', quick, 0], ['started2', slow, 4]] as const) {
      const r = rt.run(['run', '-b', b.dir, id], { env: ON });
      assert.equal(r.status, status, r.stderr);
      assert.equal(r.stdout.trim().split('\n').length, 1, `the workload ran once: ${JSON.stringify(r.stdout)}`);
      assert.equal(r.stderr, '');
      assert.deepEqual(rt.containerDirs(), []);
      assert.deepEqual(leftovers(rt, b), []);
    }
    // Detached: the run is done once started; the container runs, once.
    const sleeper = rt.bundle(probeSpec(['/bin/probe', 'sleep', '100'], withHook));
    const r = rt.run(['run', '-d', '-b', sleeper.dir, 'started3'], { env: ON });
    assert.equal(r.status, 0, r.stderr);
    const state = JSON.parse(rt.run(['state', 'started3']).stdout) as { status: string; pid: number };
    assert.equal(state.status, 'running');
    assert.deepEqual(rt.containerDirs(), ['started3'], 'no second container');
    assert.equal(rt.run(['delete', '--force', 'started3']).status, 0);
    assert.equal(readFileSync(killed, 'utf8').trim().split('\n').length, 3, 'a planner was killed in each call');
    assert.equal(readFileSync(ran, 'utf8').trim().split('\n').length, 3, 'each run started its container once');
    assert.deepEqual(rt.logLines().filter((l) => l.level === 'error'), []);
  });

  test('a planner killed while its front reads update\'s stdin: the cold retry reads the same bytes', async () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'sleep', '100']));
    assert.equal(rt.run(['run', '-d', '-b', b.dir, 'stdin1'], { env: ON }).status, 0);
    try {
      const [planner] = plannersOf(rt.root);
      assert.ok(planner !== undefined);
      // A FIFO as stdin, written in two parts: between them the front waits in the pipe's read.
      const fifo = join(rt.root, '..', 'resources.fifo');
      assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
      const child = spawn('/bin/sh', ['-c', 'exec "$@" < "$FIFO"', 'sh', STOCKADE, '--root', rt.root, 'update', '--resources', '-', 'stdin1'],
        { env: { ...process.env, ...ON, FIFO: fifo }, stdio: ['ignore', 'pipe', 'pipe'] });
      let said = '';
      child.stderr?.on('data', (d: Buffer) => { said += d.toString(); });
      const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
      const w = openSync(fifo, 'w');
      writeFileSync(w, '{"pids":');
      const wchan = (): string => { try { return readFileSync(`/proc/${child.pid}/wchan`, 'utf8'); } catch { return ''; } };
      await until(() => wchan().endsWith('pipe_read'), 10_000, () => `the front waits in ${wchan()}`);
      process.kill(planner, 'SIGKILL');
      writeFileSync(w, '{"limit":44}}');
      closeSync(w);
      assert.equal(await exited, 0, said);
      assert.equal(said, '');
      assert.match(rt.run(['events', '--stats', 'stdin1']).stdout, /"pids":\{"current":\d+,"limit":44\}/);
    } finally {
      rt.run(['delete', '--force', 'stdin1']);
    }
  });

  test('a stale socket is replaced; a socket another user listens on is not asked', async () => {
    stopPlanners(rt.root);
    const sock = join(rt.root, PLANNER_SOCKET);
    rmSync(sock, { force: true });
    // Stale: the socket of a listener that is gone (killed: its socket file stays).
    const gone = spawnSync(process.execPath, ['-e', "require('net').createServer().listen(process.argv[1], () => process.kill(process.pid, 'SIGKILL'))", sock]);
    assert.equal(gone.signal, 'SIGKILL');
    assert.ok(existsSync(sock));
    const b = rt.bundle(probeSpec(['/bin/probe', 'exit', '0']));
    assert.equal(rt.run(['run', '-b', b.dir, 'stale1'], { env: ON }).status, 0);
    assert.equal(plannersOf(rt.root).length, 1);
    // The planner answers no other user, even one the socket's mode and the root's would let in.
    chmodSync(sock, 0o666);
    chmodSync(rt.root, 0o711);
    const asked = spawnSync(process.execPath, ['-e', `${AS_NOBODY}
      let got = 0;
      require('net').connect(process.argv[1]).on('data', (d) => { got += d.length; }).on('close', () => console.log(got)).on('error', (e) => console.log(e.code));`, sock], { encoding: 'utf8' });
    chmodSync(rt.root, 0o700);
    assert.equal(asked.stdout.trim(), "0", `no HELLO for another uid: ${JSON.stringify(asked)}`);
    // Another user's listener at the path: SO_PEERCRED tells the front, which starts a planner of its own.
    stopPlanners(rt.root);
    await until(() => plannersOf(rt.root).length === 0);
    rmSync(sock, { force: true });
    chmodSync(rt.root, 0o777);
    const fake = spawn(process.execPath, ['-e', `${AS_NOBODY}
      require('net').createServer(() => console.log('asked')).listen(process.argv[1], () => console.log('up'));`, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
    let said = '';
    fake.stdout.on('data', (d: Buffer) => { said += d.toString(); });
    try {
      await until(() => said.includes('up'));
      const r = rt.run(['run', '-b', b.dir, 'stale2'], { env: ON });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(plannersOf(rt.root).length, 1, 'a planner of this user serves the root');
      assert.ok(!said.includes('asked'), 'the front sent nothing to another user\'s socket');
    } finally {
      fake.kill('SIGKILL');
      chmodSync(rt.root, 0o700);
    }
  });

  test('a planner of another build is refused and replaced', async () => {
    stopPlanners(rt.root);
    await until(() => plannersOf(rt.root).length === 0);
    // The same code as another file: its build id (the bundle's identity) differs from the front's.
    // Only the older planner's socket: a stale one would let the front start its own first.
    rmSync(join(rt.root, PLANNER_SOCKET), { force: true });
    const older = join(packageRoot(), 'dist-test', 'stockade-planner-older.js');
    copyFileSync(join(packageRoot(), 'dist', 'stockade-planner.js'), older);
    const old = spawn('node', [older, realpathSync(rt.root)], { env: { ...process.env, STOCKADE_PLANNER_SERVE: realpathSync(rt.root) }, stdio: 'ignore', detached: true });
    try {
      await until(() => existsSync(join(rt.root, PLANNER_SOCKET)) && plannersOf(rt.root).includes(old.pid ?? -1));
      const b = rt.bundle(probeSpec(['/bin/probe', 'exit', '0']));
      assert.equal(rt.run(['run', '-b', b.dir, 'older1'], { env: ON }).status, 0);
      await until(() => old.exitCode !== null || old.signalCode !== null);
      // The next call is served by a planner of this build.
      assert.equal(rt.run(['run', '-b', b.dir, 'older2'], { env: ON }).status, 0);
      await until(() => plannersOf(rt.root).length === 1, 20_000, () => `waiting for one planner of ${rt.root}: ${JSON.stringify(plannersOf(rt.root))}, socket ${existsSync(join(rt.root, PLANNER_SOCKET))}`);
      assert.notEqual(plannersOf(rt.root)[0], old.pid);
    } finally {
      old.kill('SIGKILL');
      rmSync(older, { force: true });
    }
  });

  test('two fronts starting a planner at once: both calls succeed, one planner stays', async () => {
    stopPlanners(rt.root);
    await until(() => plannersOf(rt.root).length === 0);
    const b = rt.bundle(probeSpec(['/bin/probe', 'exit', '0']));
    const calls = ['twin1', 'twin2'].map((id) => new Promise<number | null>((res) => rt.spawn(['run', '-b', b.dir, id], ON).once('exit', (code) => res(code))));
    assert.deepEqual(await Promise.all(calls), [0, 0]);
    assert.equal(plannersOf(rt.root).length, 1);
    assert.deepEqual(rt.containerDirs(), []);
  });

  test('a full disk under the state root: the same error as the cold call, nothing left', () => {
    const disk = new Runtime();
    mkdirSync(disk.root);
    assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', disk.root]).status, 0);
    try {
      const b = disk.bundle(probeSpec(['/bin/probe', 'exit', '0']));
      // A planner first, while there is room; then the disk fills.
      assert.equal(disk.run(['run', '-b', b.dir, 'room'], { env: ON }).status, 0);
      assert.equal(plannersOf(disk.root).length, 1);
      spawnSync('dd', ['if=/dev/zero', `of=${join(disk.root, '.fill')}`, 'bs=4k']);
      const [c, w] = [OFF, ON].map((env) => {
        const from = disk.logLines().length;
        const r = disk.run(['create', '-b', b.dir, 'full'], { env });
        return seen(disk, r, from);
      });
      assert.deepEqual(w, c);
      assert.notEqual((c as { status: number }).status, 0);
      assert.match((c as { stderr: string }).stderr, /ENOSPC|no space/i);
      assert.deepEqual(leftovers(disk, b).filter((l) => l !== `mount ${disk.root}`), []);
    } finally {
      stopPlanners(disk.root);
      spawnSync('umount', ['-l', disk.root]);
      disk.cleanup();
    }
  });

  test('a planner whose root is removed leaves within seconds, not after its idle minute', async () => {
    const gone = new Runtime();
    mkdirSync(gone.root, { mode: 0o700 });
    try {
      const b = gone.bundle(probeSpec(['/bin/probe', 'exit', '0']));
      assert.equal(gone.run(['run', '-b', b.dir, 'rooted']).status, 0);
      const real = realpathSync(gone.root);
      const [pid] = plannersOf(gone.root);
      assert.ok(pid !== undefined, 'a planner served the root');
      rmSync(real, { recursive: true, force: true });
      await until(() => parentOf(pid) === 0 || readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '), 6000, () => `planner ${pid} of a removed root still there`);
    } finally {
      gone.cleanup();
    }
  });

  test('a planner started under a client\'s subreaper (as conmon is) is replaced at the next start made outside it; the subreaper keeps no child', {
    skip: orphansGoToInit() ? false : 'this test process\'s orphans go to a subreaper above it, not to init',
  }, async () => {
    stopPlanners(rt.root);
    await until(() => plannersOf(rt.root).length === 0);
    const b = rt.bundle(probeSpec(['/bin/probe', 'exit', '0']));
    // A monitor as conmon is: a subreaper that runs the runtime's create, then, its container over,
    // waits for every child it has (adopted ones too) before it exits.
    const addon = require.resolve('../../src/native/addon');
    const monitor = spawn(process.execPath, ['-e', `
      require(process.argv[1]).setChildSubreaper();
      const r = require('child_process').spawnSync(process.argv[2], process.argv.slice(3), { stdio: ['ignore', 'ignore', 'inherit'] });
      console.log('created', r.status);
      const fs = require('fs');
      // Its own children only (adopted ones too), not zombies, nor the ps that lists them.
      const children = () => require('child_process').execFileSync('ps', ['-o', 'stat=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' })
        .split('\\n').map((l) => l.trim().split(/\\s+/)).filter(([st, comm]) => st !== '' && !st.startsWith('Z') && comm !== 'ps');
      process.stdin.resume();
      process.stdin.on('end', () => { const t = setInterval(() => { if (children().length === 0) { clearInterval(t); process.exit(0); } }, 100); });
    `, addon, STOCKADE, '--root', rt.root, 'create', '-b', b.dir, 'adopted'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((res) => monitor.once('exit', (code) => res(code)));
    try {
      let said = '';
      monitor.stdout?.on('data', (d: Buffer) => { said += d.toString(); });
      await until(() => said.includes('created'), 20_000, () => said);
      assert.match(said, /created 0/);
      const [first] = plannersOf(rt.root);
      assert.ok(first !== undefined, 'the create started a planner');
      assert.equal(parentOf(first), monitor.pid, 'the planner started under the monitor is its child once the front is gone');
      // The start, made by this process (as podman makes it, outside conmon), replaces it.
      assert.equal(rt.run(['start', 'adopted']).status, 0);
      await until(() => {
        const now = plannersOf(rt.root);
        return now.length === 1 && now[0] !== first && parentOf(now[0] ?? 0) === 1;
      }, 15_000, () => `planners ${JSON.stringify(plannersOf(rt.root).map((p) => [p, parentOf(p)]))}`);
      assert.equal(rt.run(['delete', '--force', 'adopted']).status, 0);
      // The monitor's container is over: it exits, holding no planner.
      monitor.stdin?.end();
      const end = Promise.race([exited, new Promise<'stuck'>((res) => setTimeout(() => res('stuck'), 10_000))]);
      assert.equal(await end, 0, 'the monitor exits once its container is over');
    } finally {
      monitor.kill('SIGKILL');
    }
  });

  test('an idle planner leaves, with its socket', async () => {
    stopPlanners(rt.root);
    await until(() => plannersOf(rt.root).length === 0);
    rmSync(join(rt.root, PLANNER_SOCKET), { force: true });
    const b = rt.bundle(probeSpec(['/bin/probe', 'exit', '0']));
    assert.equal(rt.run(['run', '-b', b.dir, 'idle1'], { env: { ...ON, STOCKADE_PLANNER_IDLE_MS: '500' } }).status, 0);
    assert.equal(plannersOf(rt.root).length, 1);
    await until(() => plannersOf(rt.root).length === 0 && !existsSync(join(rt.root, PLANNER_SOCKET)));
  });
});
