// The status of a container whose workload is a host process: its init's liveness, its start socket and its freezer.
import { existsSync } from 'node:fs';
import { freezerStateOf } from '../cgroups';
import type { LevelContainer } from '../container/level';
import { isSameLiveProcess } from '../container/process-identity';
import type { Status } from '../container/status';

/**
 * The status as the kernel sees it now: the init alive with the recorded start time (and mount
 * namespace), the start socket there until start, the cgroup freezer. native/light/light.c
 * derives it the same way from the light record.
 */
export function hostStatus(c: LevelContainer): Status {
  const { record } = c;
  const alive = isSameLiveProcess(record.pid, record.pidStartTime, record.pidMntNs ?? '');
  if (!record.createdOk) return alive ? 'creating' : 'stopped';
  if (!alive) return 'stopped';
  if (existsSync(c.store.startSocket(c.id))) return 'created';
  if (freezerStateOf(record.cgroupPaths ?? []) === 'frozen') return 'paused';
  return 'running';
}
