// Cgroups through the real CLI, on this host's layout and on cgroup v2 alone: limits in the host's
// files, pids, OOM, pause/resume, update, events, ps, kill --all, device rules, cleanup.
//
// The same assertions run twice: against the host as it is (v1 or hybrid here, v1 file names), and
// against a real cgroup v2 hierarchy: each CLI call in a mount namespace of its own where the v1
// hierarchies are gone and the cgroup2 file system is at /sys/fs/cgroup (Runtime's cgroup2Only),
// as on a host booted with cgroup v2 alone. A controller serves one hierarchy at a time, so on a
// hybrid host the v2 run has the controllers the host left to cgroup v2 and no others: a test that
// needs one it lacks skips, saying which.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { layoutFrom, parseProcCgroup, type Layout } from '../../src/cgroups/layout';
import { sharesToWeight } from '../../src/cgroups/resources';
import type { DeviceCgroup, Resources } from '../../src/oci/spec';
import { Runtime, cgroup2OnlySkip, integrationSkip, json, leftovers, probeSpec, waitFor } from './harness';

interface OciState { pid: number; status: string }
interface StatsEvent { type: string; id: string; data: { cpu: { usage: { total?: number } }; memory: { usage: { limit: number; usage?: number } }; pids: { current?: number; limit?: number } } }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** This process's view of the host's hierarchies (read after the harness moved it into its run cgroup). */
function hostLayoutNow(): Layout {
  return layoutFrom(readFileSync('/proc/self/mountinfo', 'utf8'), readFileSync('/proc/self/cgroup', 'utf8'));
}

/** One cgroup setup the suite runs against, and how to read a container's files on it from here. */
interface CgroupHost {
  readonly name: string;
  readonly skip: string | undefined;
  readonly version: 1 | 2;
  runtime(): Runtime;
  /** Why a test needing these controllers cannot run on this setup, or undefined. */
  lacks(...controllers: string[]): string | undefined;
}

const V2_NAME: Readonly<Record<string, string>> = { blkio: 'io', cpuacct: 'cpu' };

function hostSetup(): CgroupHost {
  const skip = integrationSkip();
  const layout = skip === undefined ? hostLayoutNow() : undefined;
  const version = layout === undefined || layout.mode === 'v2' ? 2 : 1;
  return {
    name: `this host's layout (${layout?.mode ?? 'unknown'})`,
    skip,
    version,
    runtime: () => new Runtime(),
    lacks: (...controllers) => {
      for (const c of controllers) {
        const there = version === 1 ? layout?.v1.some((h) => h.controllers.includes(c)) : layout?.unified?.controllers.includes(V2_NAME[c] ?? c);
        if (there !== true) return `no ${c} controller on this host`;
      }
      return undefined;
    },
  };
}

function v2OnlySetup(): CgroupHost {
  const skip = cgroup2OnlySkip();
  const layout = skip === undefined ? hostLayoutNow() : undefined;
  return {
    name: 'cgroup v2 alone (a mount namespace with only the cgroup2 file system at /sys/fs/cgroup)',
    skip,
    version: 2,
    runtime: () => new Runtime({ cgroup2Only: true }),
    lacks: (...controllers) => {
      for (const c of controllers) {
        const v2 = V2_NAME[c] ?? c;
        if (layout?.unified?.controllers.includes(v2) === true) continue;
        // A controller a v1 hierarchy holds cannot be enabled in cgroup v2 at the same time.
        if (layout?.v1.some((h) => h.controllers.includes(c)) === true) return `cgroup v2 ${v2} controller is bound to a v1 hierarchy on this host`;
        return `no ${v2} controller in cgroup v2 on this host`;
      }
      return undefined;
    },
  };
}

/** The container's directory for a controller, from the kernel's /proc/PID/cgroup rather than from stockade's record. */
function hostDir(pid: number, controller: string, version: 1 | 2): string {
  const layout = hostLayoutNow();
  const own = parseProcCgroup(readFileSync(`/proc/${pid}/cgroup`, 'utf8'));
  if (version === 2) {
    const path = own.get('');
    if (layout.unified === undefined || path === undefined) throw new Error(`pid ${pid} is in no cgroup v2 directory`);
    return join(layout.unified.mountpoint, path);
  }
  const h = layout.v1.find((x) => x.controllers.includes(controller));
  if (h === undefined) throw new Error(`no ${controller} hierarchy`);
  const path = own.get([...h.controllers].sort().join(','));
  if (path === undefined) throw new Error(`pid ${pid} is in no ${controller} cgroup`);
  return join(h.mountpoint, path);
}

/** Why a 2MB hugetlb limit cannot be set here, or undefined. */
function hugepages2MB(): string | undefined {
  return existsSync('/sys/kernel/mm/hugepages/hugepages-2048kB') ? undefined : 'no 2MB huge pages on this machine';
}

/**
 * Makes /nodev in a bundle's root file system: char 1:250, a minor the mem driver does not have.
 * Opening it fails either way, but where: the device cgroup refuses it first (EPERM), and only an
 * open the rules let through reaches the driver, which answers ENXIO. No device has to exist.
 */
function deviceNode(rootfs: string): void {
  const r = spawnSync('mknod', ['-m', '666', join(rootfs, 'nodev'), 'c', '1', '250'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mknod: ${r.stderr}`);
}

// Prints the shell's error for an open of /nodev for reading, then for writing.
const DEVICE_PROBE = 'echo "read: $( (exec 3</nodev) 2>&1 )"; echo "write: $( (exec 4>/nodev) 2>&1 )"';
const REACHED = /No such device or address/;
const REFUSED = /Operation not permitted/;

function cgroupSuite(host: CgroupHost): void {
  describe(`cgroups: ${host.name}`, { skip: host.skip ?? false }, () => {
    let rt: Runtime;
    before(() => { rt = host.runtime(); });
    after(() => rt.cleanup());
    const v = host.version;
    const file = (pid: number, controller: string, v1Name: string, v2Name: string): string =>
      readFileSync(join(hostDir(pid, controller, v), v === 1 ? v1Name : v2Name), 'utf8').trim();

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
    const recordedPaths = (id: string): string[] =>
      json<{ cgroupPaths: string[] }>(readFileSync(join(rt.root, id, 'state.json'), 'utf8')).cgroupPaths.map((p) => rt.hostCgroupPath(p));
    /** Whether the kernel has the container's cgroup frozen, read from the kernel's files rather than from stockade's state. */
    const frozen = (pid: number): boolean => (v === 1
      ? file(pid, 'freezer', 'freezer.state', '') === 'FROZEN'
      : /^frozen 1$/m.test(file(pid, 'freezer', '', 'cgroup.events')));

    test('memory, pids and cpu limits are in the container\'s cgroup files on the host; delete removes every directory', { skip: host.lacks('memory', 'pids', 'cpu') ?? false }, () => {
      const pid = start('lim', 'sleep 100', { memory: { limit: 64 << 20, reservation: 32 << 20 }, pids: { limit: 20 }, cpu: { shares: 512, quota: 50000, period: 100000 } });
      assert.equal(file(pid, 'memory', 'memory.limit_in_bytes', 'memory.max'), String(64 << 20));
      assert.equal(file(pid, 'memory', 'memory.soft_limit_in_bytes', 'memory.low'), String(32 << 20));
      assert.equal(file(pid, 'pids', 'pids.max', 'pids.max'), '20');
      // v2: runc's conversion of shares to weight, whose reference points the unit tests hold.
      assert.equal(file(pid, 'cpu', 'cpu.shares', 'cpu.weight'), v === 1 ? '512' : String(sharesToWeight(512)));
      if (v === 1) {
        assert.equal(file(pid, 'cpu', 'cpu.cfs_quota_us', ''), '50000');
        assert.equal(file(pid, 'cpu', 'cpu.cfs_period_us', ''), '100000');
      } else {
        assert.equal(file(pid, 'cpu', '', 'cpu.max'), '50000 100000');
      }
      // Default cgroupsPath: the id, below the runtime's own cgroup (v1) or next to it (v2).
      assert.match(hostDir(pid, 'memory', v), /\/lim$/);
      const paths = recordedPaths('lim');
      assert.ok(paths.includes(hostDir(pid, 'memory', v)) && paths.includes(hostDir(pid, 'pids', v)), paths.join(' '));
      assert.equal(rt.run(['delete', '--force', 'lim']).status, 0);
      for (const p of paths) assert.ok(!existsSync(p), `${p} is left behind`);
    });

    test('a pids limit stops a fork loop', { skip: host.lacks('pids') ?? false }, async () => {
      // busybox sh gives up at the first refused fork, so the loop runs in a subshell and init then
      // replaces itself with a sleep (exec needs no fork).
      const pid = start('forks', '(for i in $(seq 40); do sleep 100 & done) 2>/dev/null; exec sleep 100', { pids: { limit: 10 } });
      await sleep(800);
      const current = Number(file(pid, 'pids', 'pids.current', 'pids.current'));
      assert.ok(current >= 8 && current <= 10, `pids.current ${current}`);
      assert.match(file(pid, 'pids', 'pids.events', 'pids.events'), /^max [1-9]\d*$/m, 'pids.events counts refused forks');
      assert.deepEqual(statsOf('forks').data.pids, { current, limit: 10 });
      assert.equal(json<OciState>(rt.run(['state', 'forks']).stdout).status, 'running');
      assert.equal(rt.run(['delete', '--force', 'forks']).status, 0);
    });

    test('pause freezes the container (the kernel\'s freezer says frozen, no cpu progress) and resume thaws it', { skip: (v === 1 ? host.lacks('freezer', 'cpuacct') : undefined) ?? false }, async () => {
      const pid = start('busy', 'while :; do :; done');
      assert.equal(rt.run(['pause', 'busy']).status, 0);
      assert.ok(frozen(pid), 'the kernel does not have the cgroup frozen');
      assert.equal(json<OciState>(rt.run(['state', 'busy']).stdout).status, 'paused');
      const a = statsOf('busy').data.cpu.usage.total ?? 0;
      await sleep(300);
      const b = statsOf('busy').data.cpu.usage.total ?? 0;
      assert.equal(b, a, 'a paused container used cpu');
      const again = rt.run(['pause', 'busy']);
      assert.equal(again.status, 1);
      assert.match(again.stderr, /^stockade: cannot pause container busy: it is paused \(pause needs running\)\n$/);
      assert.equal(rt.run(['resume', 'busy']).status, 0);
      assert.ok(!frozen(pid), 'the kernel still has the cgroup frozen');
      assert.equal(json<OciState>(rt.run(['state', 'busy']).stdout).status, 'running');
      await sleep(300);
      assert.ok((statsOf('busy').data.cpu.usage.total ?? 0) > b, 'a resumed container made no progress');
      // A paused container dies on delete --force (SIGKILL waits for a thaw otherwise).
      assert.equal(rt.run(['pause', 'busy']).status, 0);
      const d = rt.run(['delete', '--force', 'busy']);
      assert.equal(d.status, 0, d.stderr);
    });

    if (v === 2) {
      test('v2 controllers are handed down from the mount to the container\'s parent, not enabled in the container: a hugetlb limit', { skip: host.lacks('hugetlb') ?? hugepages2MB() ?? false }, () => {
        const pid = start('huge', 'sleep 100', { hugepageLimits: [{ pageSize: '2MB', limit: 4 << 20 }] });
        const dir = hostDir(pid, 'hugetlb', 2);
        assert.equal(readFileSync(join(dir, 'hugetlb.2MB.max'), 'utf8').trim(), String(4 << 20));
        assert.match(readFileSync(join(dirname(dir), 'cgroup.subtree_control'), 'utf8'), /\bhugetlb\b/);
        assert.equal(readFileSync(join(dir, 'cgroup.subtree_control'), 'utf8').trim(), '', 'a leaf hands nothing down, so processes may join it');
        const paths = recordedPaths('huge');
        assert.equal(rt.run(['delete', '--force', 'huge']).status, 0);
        for (const p of paths) assert.ok(!existsSync(p), `${p} is left behind`);
      });
    }

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

    test('update: flags with size suffixes, and Docker\'s --resources - JSON on stdin; the stored config follows', { skip: host.lacks('memory', 'pids', 'cpu') ?? false }, () => {
      const pid = start('upd', 'sleep 100', { memory: { limit: 64 << 20 }, pids: { limit: 50 } });
      const r = rt.run(['update', '--memory', '32m', '--pids-limit', '30', '--cpu-share', '256', 'upd']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(file(pid, 'memory', 'memory.limit_in_bytes', 'memory.max'), String(32 << 20));
      assert.equal(file(pid, 'pids', 'pids.max', 'pids.max'), '30');
      assert.equal(file(pid, 'cpu', 'cpu.shares', 'cpu.weight'), v === 1 ? '256' : String(sharesToWeight(256)));
      const docker = JSON.stringify({ memory: { limit: 48 << 20, swap: null, reservation: null }, cpu: { shares: null, quota: 20000, period: 100000 }, pids: null, blockIO: { weight: null } });
      const j = rt.run(['update', '--resources', '-', 'upd'], { input: docker });
      assert.equal(j.status, 0, j.stderr);
      assert.equal(file(pid, 'memory', 'memory.limit_in_bytes', 'memory.max'), String(48 << 20));
      assert.equal(v === 1 ? file(pid, 'cpu', 'cpu.cfs_quota_us', '') : file(pid, 'cpu', '', 'cpu.max'), v === 1 ? '20000' : '20000 100000');
      const stored = json<{ linux: { resources: Resources } }>(readFileSync(join(rt.root, 'upd', 'config.json'), 'utf8')).linux.resources;
      assert.deepEqual(stored.memory, { limit: 48 << 20 });
      assert.deepEqual(stored.pids, { limit: 30 });
      assert.deepEqual(stored.cpu, { shares: 256, quota: 20000, period: 100000 });
      assert.match(rt.run(['update', '--memory', 'lots', 'upd']).stderr, /--memory: invalid size "lots"/);
      assert.equal(rt.run(['delete', '--force', 'upd']).status, 0);
    });

    test('update of cpuset.cpus to a CPU the host lacks: one line naming the field and the kernel\'s refusal', { skip: host.lacks('cpuset') ?? false }, () => {
      start('upd-cpus', 'sleep 100');
      const bad = rt.run(['update', '--cpuset-cpus', '99', 'upd-cpus']);
      assert.equal(bad.status, 1);
      assert.equal(bad.stderr, 'stockade: linux.resources.cpu.cpus: cannot set cpuset.cpus to "99": Numerical result out of range\n');
      assert.equal(rt.run(['delete', '--force', 'upd-cpus']).status, 0);
    });

    test('events --stats prints one runc-shaped JSON object with the container\'s limits and usage', { skip: host.lacks('memory', 'pids') ?? false }, () => {
      start('ev', 'sleep 100 & sleep 100', { memory: { limit: 32 << 20 }, pids: { limit: 9 } });
      const ev = statsOf('ev');
      assert.equal(ev.type, 'stats');
      assert.equal(ev.id, 'ev');
      assert.equal(ev.data.memory.usage.limit, 32 << 20);
      assert.ok((ev.data.memory.usage.usage ?? 0) > 0);
      assert.deepEqual(ev.data.pids, { current: 2, limit: 9 });
      assert.deepEqual(Object.keys(ev.data).sort(), ['blkio', 'cpu', 'hugetlb', 'memory', 'pids']);
      assert.equal(rt.run(['delete', '--force', 'ev']).status, 0);
    });

    test('ps lists the pids of the container\'s cgroup, as JSON and as a table', async () => {
      const pid = start('ps', 'sleep 100 & exec sleep 101');
      // The kernel's own list of the cgroup's processes, not stockade's.
      const procs = (): number[] => readFileSync(join(hostDir(pid, 'pids', v), 'cgroup.procs'), 'utf8').trim().split('\n').map(Number).sort((a, b) => a - b);
      await waitFor(() => procs().length === 2);
      const pids = json<number[]>(rt.run(['ps', '--format', 'json', 'ps']).stdout);
      assert.deepEqual([...pids].sort((a, b) => a - b), procs());
      // The host's ps(1) prints the table (procps: UID PID ...; busybox: PID USER ...): the header says where PID is.
      const table = rt.run(['ps', 'ps']).stdout.trimEnd().split('\n');
      const at = (table[0] ?? '').trim().split(/\s+/).indexOf('PID');
      assert.ok(at >= 0, `no PID column: ${table[0] ?? ''}`);
      assert.deepEqual(table.slice(1).map((l) => Number(l.trim().split(/\s+/)[at])).sort((a, b) => a - b), procs());
      const custom = rt.run(['ps', 'ps', '-o', 'pid,comm']).stdout.trimEnd().split('\n');
      assert.deepEqual(custom.slice(1).map((l) => l.trim().split(/\s+/)[1]), ['sleep', 'sleep']);
      assert.equal(rt.run(['delete', '--force', 'ps']).status, 0);
    });

    test('an OOM kill is reported by events, which ends when the container stops', { skip: host.lacks('memory') ?? false }, async () => {
      const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'sleep 1; dd if=/dev/zero of=/dev/null bs=64M count=1; sleep 1'], (s) => {
        s.linux!.resources = { memory: { limit: 16 << 20, swap: 16 << 20 } };
      }));
      assert.equal(rt.run(['create', '--bundle', b.dir, 'oom']).status, 0);
      const events = rt.spawn(['events', '--interval', '300ms', 'oom']);
      let output = '';
      events.stdout?.on('data', (d: Buffer) => { output += d.toString(); });
      const exited = new Promise<number | null>((r) => events.on('exit', r));
      // Started once events watches (its first stats line): events refuses a container that has
      // stopped already, and on a slow machine (a TCG guest) its Node took longer than the workload.
      await waitFor(() => output.includes('"type":"stats"'), 60_000);
      assert.equal(rt.run(['start', 'oom']).status, 0);
      const code = await Promise.race([exited, sleep(15_000).then(() => 'timeout' as const)]);
      assert.equal(code, 0, `events did not end with the container: ${output}`);
      const lines = output.trim().split('\n').map((l) => json<{ type: string; id: string }>(l));
      assert.ok(lines.some((l) => l.type === 'oom' && l.id === 'oom'), output);
      assert.ok(lines.some((l) => l.type === 'stats'));
      assert.equal(rt.run(['delete', 'oom']).status, 0);
    });

    test('kill --all signals every process in the cgroup, where a plain kill reaches only init (no pid namespace of its own)', async () => {
      // Each process records the USR1 it gets in /dev/shm (a tmpfs of the container's, seen here
      // through the init's root); a USR1 kills nothing, so what happens after init is out of play.
      const catcher = 'trap "echo $$ >> /dev/shm/got" USR1; echo $$ >> /dev/shm/up; while :; do sleep 0.05; done';
      const b = rt.bundle(probeSpec(['/bin/sh', '-c', `sh -c '${catcher}' & sh -c '${catcher}' & exec sh -c '${catcher}'`], (s) => {
        s.linux!.namespaces = s.linux!.namespaces!.filter((n) => n.type !== 'pid');
      }));
      assert.equal(rt.run(['create', '--bundle', b.dir, 'all']).status, 0);
      assert.equal(rt.run(['start', 'all']).status, 0);
      const init = json<OciState>(rt.run(['state', 'all']).stdout).pid;
      const lines = (name: string): number[] => {
        try {
          return readFileSync(`/proc/${init}/root/dev/shm/${name}`, 'utf8').trim().split('\n').filter((l) => l !== '').map(Number).sort((a, b) => a - b);
        } catch {
          return [];
        }
      };
      await waitFor(() => lines('up').length === 3);
      const up = lines('up');
      assert.ok(up.includes(init), `init ${init} is one of the catchers ${up.join(' ')}`);
      assert.equal(rt.run(['kill', 'all', 'USR1']).status, 0);
      await waitFor(() => lines('got').length >= 1);
      await sleep(200);
      assert.deepEqual(lines('got'), [init], 'a plain kill reaches init alone');
      assert.equal(rt.run(['kill', '--all', 'all', 'USR1']).status, 0);
      await waitFor(() => lines('got').length >= 4);
      assert.deepEqual(lines('got'), [...up, init].sort((a, b) => a - b), 'kill --all reached every catcher once more');
      const paths = recordedPaths('all');
      assert.equal(rt.run(['kill', '--all', 'all', 'KILL']).status, 0);
      await waitFor(() => json<number[]>(rt.run(['ps', '--format', 'json', 'all']).stdout).length === 0);
      assert.equal(rt.run(['delete', 'all']).status, 0);
      for (const p of paths) assert.ok(!existsSync(p), `${p} is left behind`);
    });

    test('device rules: a write to a device the rules deny is refused in the container, a read they allow reaches the driver', () => {
      // Without rules both opens reach the driver, so a refusal below is the rules'.
      const open = rt.bundle(probeSpec(['/bin/sh', '-c', DEVICE_PROBE]));
      deviceNode(open.rootfs);
      const o = rt.run(['run', '--bundle', open.dir, 'dev-open']);
      assert.equal(o.status, 0, o.stderr);
      const [oRead, oWrite] = o.stdout.split('\n');
      assert.match(oRead ?? '', REACHED, o.stdout);
      assert.match(oWrite ?? '', REACHED, o.stdout);
      const rules: DeviceCgroup[] = [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 250, access: 'r' }];
      const b = rt.bundle(probeSpec(['/bin/sh', '-c', DEVICE_PROBE], (s) => { s.linux!.resources = { devices: rules }; }));
      deviceNode(b.rootfs);
      const r = rt.run(['run', '--bundle', b.dir, 'dev-deny']);
      assert.equal(r.status, 0, r.stderr);
      const [read, write] = r.stdout.split('\n');
      assert.match(read ?? '', REACHED, `the allowed read: ${r.stdout}`);
      assert.match(write ?? '', REFUSED, `the denied write: ${r.stdout}`);
      assert.ok(!rt.logLines().some((l) => l.msg.includes('devices')), 'no warning about device rules');
    });

    const BAD: { name: string; resources: Resources; error: RegExp; lacks?: string[] }[] = v === 1 ? [
      { name: 'cpuset.cpus out of range', resources: { cpu: { cpus: '99' } }, error: /^stockade: linux\.resources\.cpu\.cpus: cannot set cpuset\.cpus to "99": Numerical result out of range\n$/, lacks: ['cpuset'] },
      { name: 'memory limit too low to start', resources: { memory: { limit: 4096 } }, error: /^stockade: linux\.resources\.memory\.limit: the container was killed for lack of memory while it was being set up/, lacks: ['memory'] },
      { name: 'a v2 key for a v1 controller', resources: { unified: { 'memory.max': '1' } }, error: /^stockade: linux\.resources\.unified\["memory\.max"\]: / },
      { name: 'swappiness out of range', resources: { memory: { swappiness: 200 } }, error: /^stockade: linux\.resources\.memory\.swappiness: 200 is out of range/, lacks: ['memory'] },
      { name: 'a controller this host lacks', resources: { network: { classID: 7 } }, error: /^stockade: linux\.resources\.network\.classID: the net_cls cgroup controller is not available on this host\n$/ },
    ] : [
      { name: 'a v1-only controller', resources: { network: { classID: 7 } }, error: /^stockade: linux\.resources\.network\.classID: the net_cls controller does not exist in cgroup v2\n$/ },
      { name: 'a unified key that is no file name', resources: { unified: { '../cgroup.procs': '1' } }, error: /^stockade: linux\.resources\.unified\["\.\.\/cgroup\.procs"\]: not a cgroup file name\n$/ },
      { name: 'a unified key naming no file', resources: { unified: { 'cgroup.nosuchfile': '1' } }, error: /^stockade: linux\.resources\.unified\["cgroup\.nosuchfile"\]: cannot set cgroup\.nosuchfile: no such cgroup file\n$/ },
      { name: 'memory limit too low to start', resources: { memory: { limit: 4096 } }, error: /^stockade: linux\.resources\.memory\.limit: /, lacks: ['memory'] },
    ];
    for (const c of BAD) {
      test(`bad limit: ${c.name} -> one-line error, no state dir, no cgroup dir`, { skip: host.lacks(...(c.lacks ?? [])) ?? false }, () => {
        const id = `bad-${c.name.replace(/\W+/g, '-')}`;
        const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'sleep 100'], (s) => { s.linux!.resources = c.resources; }));
        const r = rt.run(['create', '--bundle', b.dir, id]);
        assert.equal(r.status, 1);
        assert.match(r.stderr, c.error);
        assert.equal(r.stderr.split('\n').length, 2, r.stderr);
        assert.deepEqual(leftovers(rt, b), []);
        // No directory of that name below this run's cgroup (where relative cgroup paths go) in any hierarchy.
        const layout = hostLayoutNow();
        for (const h of [...layout.v1, ...(layout.unified === undefined ? [] : [layout.unified])]) {
          const d = join(h.mountpoint, h.ownPath);
          const found = spawnSync('find', [d, '-maxdepth', '6', '-type', 'd', '-name', id], { encoding: 'utf8' }).stdout.trim();
          assert.equal(found, '', `${found} is left behind`);
        }
      });
    }
  });
}

cgroupSuite(hostSetup());
cgroupSuite(v2OnlySetup());
