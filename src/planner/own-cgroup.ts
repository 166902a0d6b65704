// The planner's own cgroup: it leaves the cgroup of whoever started it (a test's, conmon's, a
// shell's scope) for `stockade-planner` at the top of each hierarchy, as a daemon's helper lives in
// the daemon's cgroup, not its client's. Lingering a minute in the caller's cgroup kept that cgroup
// from being removed (a test run's, a systemd scope's) and charged the planner's memory to it.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostLayout } from '../cgroups/layout';

export const PLANNER_CGROUP = 'stockade-planner';

/**
 * Moves this process into PLANNER_CGROUP in every hierarchy it can write, and returns the
 * directories it joined. A container's relative cgroupsPath still goes below the cgroup of the
 * call's caller: each request carries it (setCallerCgroup).
 */
export function leaveCallerCgroup(): string[] {
  const layout = hostLayout();
  const joined: string[] = [];
  for (const h of [...layout.v1, ...(layout.unified === undefined ? [] : [layout.unified])]) {
    const dir = join(h.mountpoint, PLANNER_CGROUP);
    try {
      if (!existsSync(dir)) {
        mkdirSync(dir);
        // A new v1 cpuset has no cpus or mems, and nothing joins it until both are set.
        if (h.version === 1 && h.controllers.includes('cpuset')) {
          for (const f of ['cpuset.cpus', 'cpuset.mems']) writeFileSync(join(dir, f), readFileSync(join(h.mountpoint, f), 'utf8').trim());
        }
      }
      writeFileSync(join(dir, 'cgroup.procs'), String(process.pid));
      joined.push(dir);
    } catch { /* a hierarchy it cannot write (rootless): it stays where it was started there */ }
  }
  return joined;
}
