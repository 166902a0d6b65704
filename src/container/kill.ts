// kill: the lifecycle's verb, and the pidfd-based signalling every host process gets (a reused pid is never hit).
import { closeSync, readdirSync, readlinkSync } from 'node:fs';
import { errnoCode, StockadeError } from '../errors';
import { pidfdOpen, pidfdSendSignal } from '../native/addon';
import type { ContainerId } from './id';
import { isSameLiveProcess, waitGone } from './process-identity';
import { driven, statusOf } from './driver-of';
import type { Levels } from './level';
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

/** Sends `signal` to the container's init, or with `all` to every process of it. */
export async function killContainer(store: StateStore, levels: Levels, id: ContainerId, signal: number, all: boolean): Promise<void> {
  const d = driven(levels, store, id, store.read(id));
  const status = await statusOf(d);
  assertCanPerform('kill', status, id);
  await d.driver.signal(d.container, { signal, all, status });
}
