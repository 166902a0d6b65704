// One test process's marks on the host: a tag in its environment and a cgroup of its own, so what
// a run made can be told from what other runs, and other users of stockade, have on the host.
//
// Container ids live in a state root of each test's own (mkdtemp), but a container's default
// cgroup is its id below the runtime's own cgroup: two runs that both create "c1" from the same
// cgroup would share /sys/fs/cgroup/<controller>/c1. Moving the test process into a cgroup of its
// own (stockade-test-TAG) puts every container it creates below that cgroup, as two services on one
// host are kept apart. The tag in the environment is inherited by everything a test starts
// (the CLI, stockade-init, the sentry), which marks those processes even where they sit in a
// cgroup of their own (an absolute cgroupsPath).
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { layoutFrom, parseProcCgroup } from '../../src/cgroups/layout';
import { processesWithCmdline, type ProcessEntry } from './cleanup';

export const RUN_ENV = 'STOCKADE_TEST_RUN';
/** Unique per test process and per host: its pid (unique while it runs) and random bytes. */
export const RUN_TAG = `${process.pid}-${randomBytes(3).toString('hex')}`;
process.env[RUN_ENV] = RUN_TAG;
// The vm pool (src/vm/pool.ts) off unless a test asks for it (vm-pool.test.ts): a waiting VM per
// state root would warm behind every vm test's back, and the tests of the template and cold paths
// would find their containers' VMs handed over instead of restored.
process.env['STOCKADE_VM_POOL'] ??= '0';
/** The name of this run's cgroup, in every hierarchy. */
export const RUN_CGROUP = `stockade-test-${RUN_TAG}`;

interface Moved { readonly made: string[]; readonly back: string; readonly version: 1 | 2; readonly top: string }
let moved: Moved[] | undefined;

/**
 * Moves this process into a cgroup of its own, below its current one, in every mounted hierarchy:
 * `stockade-test-TAG` (v1), `stockade-test-TAG/self` (the unified side of a hybrid host), or
 * `stockade-test-TAG/runner` on a pure v2 host, where relative container cgroups go next to the
 * runtime's own. Root only; nothing without cgroups.
 * At exit the process moves back and the cgroups go (a cgroup something still holds stays, with a
 * line on stderr naming it).
 */
export function enterRunCgroup(): void {
  if (moved !== undefined) return;
  moved = [];
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return;
  const layout = layoutFrom(readFileSync('/proc/self/mountinfo', 'utf8'), readFileSync('/proc/self/cgroup', 'utf8'));
  const hierarchies = [...layout.v1, ...(layout.unified === undefined ? [] : [layout.unified])];
  for (const h of hierarchies) {
    const back = join(h.mountpoint, h.ownPath);
    const top = join(back, RUN_CGROUP);
    // In cgroup v2 the process sits in a leaf of the run's cgroup, never in the run's cgroup itself:
    // a v2 cgroup holding processes cannot hand controllers down, and the cgroup-v2-only runs
    // (runV2Runner) need stockade-test-TAG to hand them down to their containers.
    const leaf = h.version === 2 ? join(top, layout.mode === 'v2' ? 'runner' : 'self') : top;
    const made: string[] = [];
    for (const d of [top, leaf]) {
      if (existsSync(d)) continue;
      mkdirSync(d);
      made.push(d);
      // A new v1 cpuset starts with no cpus and mems, and nothing can join it until both are set.
      if (h.version === 1 && h.controllers.includes('cpuset')) {
        for (const f of ['cpuset.cpus', 'cpuset.mems']) writeFileSync(join(d, f), readFileSync(join(back, f), 'utf8').trim());
      }
    }
    writeFileSync(join(leaf, 'cgroup.procs'), String(process.pid));
    moved.push({ made, back, version: h.version, top });
  }
  process.on('exit', leaveRunCgroup);
}

function leaveRunCgroup(): void {
  for (const m of moved ?? []) {
    try {
      writeFileSync(join(m.back, 'cgroup.procs'), String(process.pid));
    } catch { /* the original cgroup is gone: nothing to return to */ }
    for (const d of [...m.made].reverse()) {
      try {
        rmdirSync(d);
      } catch (e) {
        process.stderr.write(`test run cgroup ${d} left behind: ${(e as Error).message}\n`);
      }
    }
  }
}

/**
 * For a cgroup-v2-only view of this host (a private mount namespace with the cgroup2 mount at
 * /sys/fs/cgroup): this run's cgroup for the runtime to sit in, as a path of the unified
 * hierarchy (`/…/stockade-test-TAG/v2/runner`), and the unified mount in this process's view. On a
 * pure v2 host a relative container cgroup goes next to the runtime's own, so containers land in
 * `…/stockade-test-TAG/v2/ID`, inside this run's cgroup. Undefined without a unified hierarchy.
 */
export function runV2Runner(): { path: string; mount: string } | undefined {
  enterRunCgroup();
  const layout = layoutFrom(readFileSync('/proc/self/mountinfo', 'utf8'), readFileSync('/proc/self/cgroup', 'utf8'));
  const u = layout.unified;
  const entry = moved?.find((m) => m.version === 2);
  if (u === undefined || entry === undefined) return undefined;
  const runner = join(entry.top, 'v2', 'runner');
  for (const d of [join(entry.top, 'v2'), runner]) {
    if (existsSync(d)) continue;
    mkdirSync(d);
    entry.made.push(d);
  }
  return { path: runner.slice(u.mountpoint.length), mount: u.mountpoint };
}

/** Whether process `pid` belongs to this run: in this run's cgroup (or below), or started with its tag. */
export function isRunProcess(pid: number): boolean {
  try {
    for (const path of parseProcCgroup(readFileSync(`/proc/${pid}/cgroup`, 'utf8')).values()) {
      if (path.split('/').includes(RUN_CGROUP)) return true;
    }
    return readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(`${RUN_ENV}=${RUN_TAG}`);
  } catch {
    return false;
  }
}

/**
 * Processes of this test run (in its cgroup or started with its tag, as isRunProcess says) whose
 * command line contains substring: another run's or another user's are none of its business.
 */
export function runProcesses(substring: string): ProcessEntry[] {
  return processesWithCmdline(substring).filter((p) => isRunProcess(p.pid));
}

/**
 * Processes whose command line contains `marker`, a string no one else's command line holds: a
 * directory this run made (mkdtemp), a VM's drawn uid as `--reuid=N`. For processes that carry
 * neither the run's cgroup nor its tag (a jailed QEMU, a client daemon's containers, both given
 * a cgroup and an environment of their own), the marker is what keeps the look to this run's.
 */
export function processesMarked(marker: string): ProcessEntry[] {
  if (marker.length < 8) throw new Error(`processesMarked: "${marker}" is too short to be this run's alone`);
  return processesWithCmdline(marker);
}
