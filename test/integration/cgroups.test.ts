// Cgroups through the real CLI: limits on the host's files, pids and OOM enforced, pause/resume, update, events, ps, cleanup.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostLayout, managerFor } from '../../src/cgroups';
import { parseProcCgroup } from '../../src/cgroups/layout';
import type { Resources } from '../../src/oci/spec';
import { Runtime, integrationSkip, json, leftovers, probeSpec } from './harness';

const skip = integrationSkip();
const layout = (): ReturnType<typeof hostLayout> => hostLayout();
/** This host's tests speak v1 file names; the v2 path is covered by the unit tests on fake trees. */
const v1Skip = skip ?? (process.platform === 'linux' && layout().mode === 'v2' ? 'these assertions read cgroup v1 files' : undefined);

interface OciState { pid: number; status: string }
interface StatsEvent { type: string; id: string; data: { cpu: { usage: { total?: number } }; memory: { usage: { limit: number; usage?: number } }; pids: { current?: number; limit?: number } } }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The container's directory for a v1 controller, from the kernel's /proc/PID/cgroup rather than from stockade's record. */
function hostDir(pid: number, controller: string): string {
  const h = layout().v1.find((x) => x.controllers.includes(controller));
  if (h === undefined) throw new Error(`no ${controller} hierarchy`);
  const path = parseProcCgroup(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).get([...h.controllers].sort().join(','));
  if (path === undefined) throw new Error(`pid ${pid} is in no ${controller} cgroup`);
  return join(h.mountpoint, path);
}

const file = (pid: number, controller: string, name: string): string => readFileSync(join(hostDir(pid, controller), name), 'utf8').trim();

describe('cgroups', { skip: v1Skip }, () => {
  let rt: Runtime;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  function start(id: string, script: string, resources: Resources = {}): number {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', script], (s) => { s.linux!.resources = resources; }));
    const c = rt.run(['create', '--bundle', b.dir, id]);
    assert.equal(c.status, 0, c.stderr);
    assert.equal(rt.run(['start', id]).status, 0);
    return json<OciState>(rt.run(['state', id]).stdout).pid;
  }
  const statsOf = (id: string): StatsEvent => {
    const r = rt.run(['events', '--stats', id]);
    assert.equal(r.status, 0, r.stderr);
    return json<StatsEvent>(r.stdout);
  };
  const recordedPaths = (id: string): string[] => json<{ cgroupPaths: string[] }>(readFileSync(join(rt.root, id, 'state.json'), 'utf8')).cgroupPaths;

  test('memory, pids and cpu limits are in the container\'s cgroup files on the host; delete removes every directory', () => {
    const pid = start('lim', 'sleep 100', { memory: { limit: 64 << 20, reservation: 32 << 20 }, pids: { limit: 20 }, cpu: { shares: 512, quota: 50000, period: 100000 } });
    assert.equal(file(pid, 'memory', 'memory.limit_in_bytes'), String(64 << 20));
    assert.equal(file(pid, 'memory', 'memory.soft_limit_in_bytes'), String(32 << 20));
    assert.equal(file(pid, 'pids', 'pids.max'), '20');
    assert.equal(file(pid, 'cpu', 'cpu.shares'), '512');
    assert.equal(file(pid, 'cpu', 'cpu.cfs_quota_us'), '50000');
    assert.equal(file(pid, 'cpu', 'cpu.cfs_period_us'), '100000');
    // Default cgroupsPath: the id, below the runtime's own cgroup in each hierarchy (nested for memory here).
    assert.match(hostDir(pid, 'memory'), /\/lim$/);
    const paths = recordedPaths('lim');
    assert.ok(paths.includes(hostDir(pid, 'memory')) && paths.includes(hostDir(pid, 'pids')), paths.join(' '));
    assert.equal(rt.run(['delete', '--force', 'lim']).status, 0);
    for (const p of paths) assert.ok(!existsSync(p), `${p} is left behind`);
  });

  test('a pids limit stops a fork loop', async () => {
    // busybox sh gives up at the first refused fork, so the loop runs in a subshell and init then
    // replaces itself with a sleep (exec needs no fork).
    const pid = start('forks', '(for i in $(seq 40); do sleep 100 & done) 2>/dev/null; exec sleep 100', { pids: { limit: 10 } });
    await sleep(800);
    const current = Number(file(pid, 'pids', 'pids.current'));
    assert.ok(current >= 8 && current <= 10, `pids.current ${current}`);
    assert.match(file(pid, 'pids', 'pids.events'), /^max [1-9]\d*$/, 'pids.events counts refused forks');
    assert.deepEqual(statsOf('forks').data.pids, { current, limit: 10 });
    assert.equal(json<OciState>(rt.run(['state', 'forks']).stdout).status, 'running');
    assert.equal(rt.run(['delete', '--force', 'forks']).status, 0);
  });

  test('pause freezes the container (no cpu progress, state paused) and resume thaws it', async () => {
    start('busy', 'while :; do :; done');
    assert.equal(rt.run(['pause', 'busy']).status, 0);
    assert.equal(json<OciState>(rt.run(['state', 'busy']).stdout).status, 'paused');
    const a = statsOf('busy').data.cpu.usage.total ?? 0;
    await sleep(300);
    const b = statsOf('busy').data.cpu.usage.total ?? 0;
    assert.equal(b, a, 'a paused container used cpu');
    const again = rt.run(['pause', 'busy']);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /^stockade: cannot pause container busy: it is paused \(pause needs running\)\n$/);
    assert.equal(rt.run(['resume', 'busy']).status, 0);
    assert.equal(json<OciState>(rt.run(['state', 'busy']).stdout).status, 'running');
    await sleep(300);
    assert.ok((statsOf('busy').data.cpu.usage.total ?? 0) > b, 'a resumed container made no progress');
    // A paused container dies on delete --force (SIGKILL waits for a thaw otherwise).
    assert.equal(rt.run(['pause', 'busy']).status, 0);
    const d = rt.run(['delete', '--force', 'busy']);
    assert.equal(d.status, 0, d.stderr);
  });

  test('pause and resume refuse the wrong states, naming from and to', () => {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'sleep 100']));
    assert.equal(rt.run(['create', '--bundle', b.dir, 'idle']).status, 0);
    const p = rt.run(['pause', 'idle']);
    assert.equal(p.status, 1);
    assert.match(p.stderr, /^stockade: cannot pause container idle: it is created \(pause needs running\)\n$/);
    assert.equal(rt.run(['start', 'idle']).status, 0);
    assert.match(rt.run(['resume', 'idle']).stderr, /^stockade: cannot resume container idle: it is running \(resume needs paused\)\n$/);
    assert.equal(rt.run(['kill', 'idle', 'KILL']).status, 0);
    assert.equal(rt.run(['delete', 'idle']).status, 0);
  });

  test('update: flags with size suffixes, and Docker\'s --resources - JSON on stdin; the stored config follows', () => {
    const pid = start('upd', 'sleep 100', { memory: { limit: 64 << 20 }, pids: { limit: 50 } });
    const r = rt.run(['update', '--memory', '32m', '--pids-limit', '30', '--cpu-share', '256', 'upd']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(file(pid, 'memory', 'memory.limit_in_bytes'), String(32 << 20));
    assert.equal(file(pid, 'pids', 'pids.max'), '30');
    assert.equal(file(pid, 'cpu', 'cpu.shares'), '256');
    const docker = JSON.stringify({ memory: { limit: 48 << 20, swap: null, reservation: null }, cpu: { shares: null, quota: 20000, period: 100000 }, pids: null, blockIO: { weight: null } });
    const j = rt.run(['update', '--resources', '-', 'upd'], { input: docker });
    assert.equal(j.status, 0, j.stderr);
    assert.equal(file(pid, 'memory', 'memory.limit_in_bytes'), String(48 << 20));
    assert.equal(file(pid, 'cpu', 'cpu.cfs_quota_us'), '20000');
    const stored = json<{ linux: { resources: Resources } }>(readFileSync(join(rt.root, 'upd', 'config.json'), 'utf8')).linux.resources;
    assert.deepEqual(stored.memory, { limit: 48 << 20 });
    assert.deepEqual(stored.pids, { limit: 30 });
    assert.deepEqual(stored.cpu, { shares: 256, quota: 20000, period: 100000 });
    const bad = rt.run(['update', '--cpuset-cpus', '99', 'upd']);
    assert.equal(bad.status, 1);
    assert.equal(bad.stderr, 'stockade: linux.resources.cpu.cpus: cannot set cpuset.cpus to "99": Numerical result out of range\n');
    assert.match(rt.run(['update', '--memory', 'lots', 'upd']).stderr, /--memory: invalid size "lots"/);
    assert.equal(rt.run(['delete', '--force', 'upd']).status, 0);
  });

  test('events --stats prints one runc-shaped JSON object; ps lists the container\'s pids as JSON and as a table', () => {
    const pid = start('ev', 'sleep 100 & sleep 100', { memory: { limit: 32 << 20 }, pids: { limit: 9 } });
    const ev = statsOf('ev');
    assert.equal(ev.type, 'stats');
    assert.equal(ev.id, 'ev');
    assert.equal(ev.data.memory.usage.limit, 32 << 20);
    assert.ok((ev.data.memory.usage.usage ?? 0) > 0);
    assert.deepEqual(ev.data.pids, { current: 2, limit: 9 });
    assert.deepEqual(Object.keys(ev.data).sort(), ['blkio', 'cpu', 'hugetlb', 'memory', 'pids']);
    const pids = json<number[]>(rt.run(['ps', '--format', 'json', 'ev']).stdout);
    assert.equal(pids.length, 2);
    assert.ok(pids.includes(pid));
    const table = rt.run(['ps', 'ev']).stdout.trimEnd().split('\n');
    assert.match(table[0] ?? '', /\bPID\b/);
    assert.equal(table.length, 3);
    assert.ok(table.some((l) => l.split(/\s+/)[1] === String(pid)));
    const custom = rt.run(['ps', 'ev', '-o', 'pid,comm']).stdout.trimEnd().split('\n');
    assert.deepEqual(custom.slice(1).map((l) => l.trim().split(/\s+/)[1]), ['sleep', 'sleep']);
    assert.equal(rt.run(['delete', '--force', 'ev']).status, 0);
  });

  test('an OOM kill is reported by events, which ends when the container stops', async () => {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'sleep 1; dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 1'], (s) => {
      s.linux!.resources = { memory: { limit: 16 << 20, swap: 16 << 20 } };
    }));
    assert.equal(rt.run(['create', '--bundle', b.dir, 'oom']).status, 0);
    const events = rt.spawn(['events', '--interval', '300ms', 'oom']);
    let output = '';
    events.stdout?.on('data', (d: Buffer) => { output += d.toString(); });
    const exited = new Promise<number | null>((r) => events.on('exit', r));
    await sleep(200);
    assert.equal(rt.run(['start', 'oom']).status, 0);
    const code = await Promise.race([exited, sleep(15_000).then(() => 'timeout' as const)]);
    assert.equal(code, 0, `events did not end with the container: ${output}`);
    const lines = output.trim().split('\n').map((l) => json<{ type: string; id: string }>(l));
    assert.ok(lines.some((l) => l.type === 'oom' && l.id === 'oom'), output);
    assert.ok(lines.some((l) => l.type === 'stats'));
    assert.equal(rt.run(['delete', 'oom']).status, 0);
  });

  test('kill --all signals every process in the cgroup, with no pid namespace of its own', async () => {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'sleep 100 & sleep 100 & wait'], (s) => {
      s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'pid');
      s.linux!.resources = { pids: { limit: 10 } };
    }));
    assert.equal(rt.run(['create', '--bundle', b.dir, 'all']).status, 0);
    assert.equal(rt.run(['start', 'all']).status, 0);
    await sleep(200);
    const before = json<number[]>(rt.run(['ps', '--format', 'json', 'all']).stdout);
    assert.equal(before.length, 3);
    assert.equal(rt.run(['kill', '--all', 'all', 'KILL']).status, 0);
    await sleep(300);
    assert.deepEqual(json<number[]>(rt.run(['ps', '--format', 'json', 'all']).stdout), []);
    const paths = recordedPaths('all');
    assert.equal(rt.run(['delete', 'all']).status, 0);
    for (const p of paths) assert.ok(!existsSync(p), `${p} is left behind`);
  });

  const BAD: { name: string; resources: Resources; error: RegExp }[] = [
    { name: 'cpuset.cpus out of range', resources: { cpu: { cpus: '99' } }, error: /^stockade: linux\.resources\.cpu\.cpus: cannot set cpuset\.cpus to "99": Numerical result out of range\n$/ },
    { name: 'memory limit too low to start', resources: { memory: { limit: 4096 } }, error: /^stockade: linux\.resources\.memory\.limit: the container was killed for lack of memory while it was being set up/ },
    { name: 'a v2 key for a v1 controller', resources: { unified: { 'memory.max': '1' } }, error: /^stockade: linux\.resources\.unified\["memory\.max"\]: / },
    { name: 'swappiness out of range', resources: { memory: { swappiness: 200 } }, error: /^stockade: linux\.resources\.memory\.swappiness: 200 is out of range/ },
    { name: 'a controller this host lacks', resources: { network: { classID: 7 } }, error: /^stockade: linux\.resources\.network\.classID: the net_cls cgroup controller is not available on this host\n$/ },
  ];
  for (const c of BAD) {
    test(`bad limit: ${c.name} -> one-line error, no state dir, no cgroup dir`, () => {
      const id = `bad-${c.name.replace(/\W+/g, '-')}`;
      const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'sleep 100'], (s) => { s.linux!.resources = c.resources; }));
      const would = managerFor(undefined, id)?.paths ?? [];
      const r = rt.run(['create', '--bundle', b.dir, id]);
      assert.equal(r.status, 1);
      assert.match(r.stderr, c.error);
      assert.equal(r.stderr.split('\n').length, 2, r.stderr);
      assert.deepEqual(leftovers(rt, b), []);
      for (const p of would) assert.ok(!existsSync(p), `${p} is left behind`);
    });
  }
});
