// The container's cgroups as the lifecycle uses them: found from the record, emptied and removed on delete.
import { managerFromPaths, type CgroupManager } from '../cgroups';
import { StockadeError } from '../errors';
import type { ContainerRecord } from './state-store';

const SIGKILL = 9;

/** The manager for a recorded container, or undefined when it was placed in no cgroup. */
export function containerCgroups(record: ContainerRecord): CgroupManager | undefined {
  return managerFromPaths(record.cgroupPaths ?? []);
}

/** The container's cgroups, or a one-line error for commands that cannot work without them. */
export function requireCgroups(record: ContainerRecord, operation: string): CgroupManager {
  const cg = containerCgroups(record);
  if (cg === undefined) throw new StockadeError('UNSUPPORTED', `cannot ${operation} container ${record.id}: it has no cgroups`, { id: record.id, operation });
  return cg;
}

/**
 * Sends `signal` to every process in the cgroups. A frozen task takes no signal until thawed, so
 * a SIGKILL thaws the group after sending (the processes die instead of waiting for a resume).
 */
export function signalCgroup(cg: CgroupManager, signal: number): number {
  let sent = 0;
  // Straight from cgroup.procs to kill(2): a pid can only be reused after the process is reaped,
  // and the window is as small as runc's own signalAllProcesses leaves it.
  for (const pid of cg.pids()) {
    try {
      process.kill(pid, signal);
      sent++;
    } catch { /* exited meanwhile */ }
  }
  if (signal === SIGKILL && cg.freezerState() !== 'thawed' && cg.freezerState() !== undefined) cg.thaw();
  return sent;
}

/** SIGKILLs whatever is left in the cgroups and waits until they are empty. */
export async function emptyCgroup(cg: CgroupManager, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    if (cg.freezerState() === 'frozen' || cg.freezerState() === 'freezing') cg.thaw();
    if (cg.pids().length === 0) return;
    signalCgroup(cg, SIGKILL);
    if (Date.now() > deadline) {
      throw new StockadeError('CGROUP_FAILED', `processes ${cg.pids().join(', ')} are still in the container's cgroups after SIGKILL`, {});
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

/** Kills what is left in the container's cgroups and removes the directories. */
export async function removeContainerCgroups(record: ContainerRecord): Promise<void> {
  const cg = containerCgroups(record);
  if (cg === undefined) return;
  await emptyCgroup(cg);
  await cg.destroy();
}
