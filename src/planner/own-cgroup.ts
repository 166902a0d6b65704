// The planner's own cgroup: it leaves the cgroup of whoever started it (a test's, conmon's, a
// shell's scope) for `stockade-planner` at the top of each hierarchy, as a daemon's helper lives in
// the daemon's cgroup, not its client's. Lingering a minute in the caller's cgroup kept that cgroup
// from being removed (a test run's, a systemd scope's) and charged the planner's memory to it.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostLayout, parseProcCgroup } from '../cgroups/layout';

export const PLANNER_CGROUP = 'stockade-planner';

/**
 * Moves this process into PLANNER_CGROUP in every hierarchy it can write. True when it is then in
 * no caller's cgroup: in each hierarchy /proc/self/cgroup lists, either PLANNER_CGROUP or the root
 * (which no one removes). False when a hierarchy kept it where it was started: one its mount
 * namespace does not show (a caller in a namespace with cgroup2 alone mounted), or one it may not
 * write. A container's relative cgroupsPath goes below the cgroup of the call's caller either way:
 * each request carries it (setCallerCgroup).
 */
export function leaveCallerCgroup(): boolean {
  const layout = hostLayout();
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
    } catch { /* checked below */ }
  }
  for (const path of parseProcCgroup(readFileSync('/proc/self/cgroup', 'utf8')).values()) {
    if (path !== '/' && !path.endsWith(`/${PLANNER_CGROUP}`)) return false;
  }
  return true;
}
