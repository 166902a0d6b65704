// Where a process that works for a container (its sentry) goes so that what it uses is the container's: the container's CPU and memory cgroups.
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { StockadeError } from '../errors';
import { hierarchyOf, hostLayout, type Layout } from './layout';

/**
 * The controllers whose limits must count a container's helper: the CPU it burns for the workload
 * (cpu quota and shares, cpuacct's count, the CPUs cpuset allows) and the memory it holds.
 * Not pids: a sentry is a Node process of some seven threads and starts a thread per blocking open,
 * which would take the workload's own task budget (a container at `pids.max` could not open a FIFO).
 * Not devices or freezer: the device cgroup checks the opener, and the sentry opens no device for
 * the workload; pausing stops the callers, and so the calls.
 */
const CHARGED = ['cpu', 'cpuacct', 'cpuset', 'memory'];

/**
 * Of a container's cgroup directories, those a helper joins to be charged as the container: every
 * v1 hierarchy that holds a controller of CHARGED, and the unified one where it holds cpu or memory
 * (pure v2; on a hybrid host only if those controllers are bound there). On a pure v2 host the
 * container's one directory counts the helper's threads against `pids.max` too: one tree holds all.
 */
export function chargedDirs(paths: readonly string[], layout: Layout = hostLayout()): string[] {
  const out: string[] = [];
  for (const p of paths) {
    const h = hierarchyOf(layout, p);
    if (h === undefined) continue;
    if (h.controllers.some((c) => CHARGED.includes(c))) out.push(p);
  }
  return out;
}

/**
 * Moves process `pid` (all its threads) into `dirs`; throws naming the directory it could not join.
 * Its memory then counts in the container's OOM choice too: in a small container the OOM killer
 * may take the sentry (the larger process), which stops the whole container (fail closed). Making
 * it the last choice (oom_score_adj below 0) needs CAP_SYS_RESOURCE, which a runtime in a
 * container (as here) may lack.
 */
export function joinCharged(pid: number, dirs: readonly string[]): void {
  for (const dir of dirs) {
    try {
      writeFileSync(join(dir, 'cgroup.procs'), `${pid}\n`);
    } catch (e) {
      throw new StockadeError('CGROUP_FAILED', `cannot move the sentry (pid ${pid}) into the container's cgroup ${dir}: ${(e as Error).message}`, { path: dir }, { cause: e });
    }
  }
}
