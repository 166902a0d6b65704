// kill at a host-process level: through a pidfd, so a pid the kernel reused for another process is never hit.
import { StockadeError } from '../errors';
import { containerCgroups, signalCgroup } from '../container/cgroups';
import { pidNamespaceMembers, signalProcess } from '../container/kill';
import type { LevelContainer, SignalRequest } from '../container/level';
import { readProcessStat } from '../container/process-identity';

const SIGKILL = 9;

export function signalHost(c: LevelContainer, req: SignalRequest): void {
  const { record, id } = c;
  const { signal, all, status } = req;
  const cgroups = containerCgroups(record);
  // The cgroup holds every process of the container, pid namespace or not.
  if (all && cgroups !== undefined) {
    signalCgroup(cgroups, signal);
    return;
  }
  if (all && record.ownPidNamespace && signal !== SIGKILL) {
    for (const member of pidNamespaceMembers(record.pid)) {
      const stat = readProcessStat(member);
      if (stat !== undefined) signalProcess(member, stat.startTime, signal);
    }
    return;
  }
  // With its own pid namespace, SIGKILL to init takes every process in the container with it.
  if (!signalProcess(record.pid, record.pidStartTime, signal, record.pidMntNs ?? '')) {
    throw new StockadeError('STATE_TRANSITION', `cannot kill container ${id}: container not running (it has just stopped)`, { id, from: 'stopped', operation: 'kill' });
  }
  // A frozen process holds a SIGKILL until thawed; as runc, the kill wins over the pause.
  if (signal === SIGKILL && status === 'paused') cgroups?.thaw();
}
