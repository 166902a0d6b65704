// kill: signals through a pidfd, so a pid the kernel reused for another process is never hit.
import { closeSync, readdirSync, readlinkSync } from 'node:fs';
import { errnoCode, StockadeError } from '../errors';
import { pidfdOpen, pidfdSendSignal } from '../native/addon';
import type { ContainerId } from './id';
import { isSameLiveProcess, readProcessStat, waitGone } from './process-identity';
import { containerCgroups, signalCgroup } from './cgroups';
import { assertCanPerform } from './status';
import type { StateStore } from './state-store';

const SIGKILL = 9;

/** Signals the process if, once pinned by a pidfd, it is still the one that started at startTime (in mntNs, if given). */
export function signalProcess(pid: number, startTime: string, signal: number, mntNs = ''): boolean {
  let fd: number;
  try {
    fd = pidfdOpen(pid);
  } catch (e) {
    if (errnoCode(e) === 'ESRCH') return false;
    throw e;
  }
  try {
    if (!isSameLiveProcess(pid, startTime, mntNs)) return false;
    pidfdSendSignal(fd, signal);
    return true;
  } catch (e) {
    if (errnoCode(e) === 'ESRCH') return false;
    throw e;
  } finally {
    closeSync(fd);
  }
}

export async function forceKill(pid: number, startTime: string, mntNs = ''): Promise<void> {
  signalProcess(pid, startTime, SIGKILL, mntNs);
  if (!(await waitGone(pid, startTime, 5000, mntNs))) {
    throw new StockadeError('SYSTEM', `process ${pid} did not die after SIGKILL`, { pid });
  }
}

/** Every process in the pid namespace of `pid`, that process included. */
export function pidNamespaceMembers(pid: number): number[] {
  let ns: string;
  try {
    ns = readlinkSync(`/proc/${pid}/ns/pid`);
  } catch {
    return [];
  }
  const members: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (readlinkSync(`/proc/${name}/ns/pid`) === ns) members.push(Number(name));
    } catch { /* gone meanwhile */ }
  }
  return members;
}

export async function killContainer(store: StateStore, id: ContainerId, signal: number, all: boolean): Promise<void> {
  const record = store.read(id);
  const status = store.status(id, record);
  assertCanPerform('kill', status, id);
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
    throw new StockadeError('STATE_TRANSITION', `cannot kill container ${id}: it is stopped`, { id, from: 'stopped', operation: 'kill' });
  }
  // A frozen process holds a SIGKILL until thawed; as runc, the kill wins over the pause.
  if (signal === SIGKILL && status === 'paused') cgroups?.thaw();
}
