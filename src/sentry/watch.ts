// A sentry container dies with its sentry: create leaves stockade-light's sentry-watch beside it.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, StockadeError } from '../errors';
import { pidfdOpen } from '../native/addon';
import { packageRoot } from '../native/paths';
import type { ContainerId } from '../container/id';
import { isSameLiveProcess } from '../container/process-identity';
import type { GuardTarget, ProcessRef } from '../container/supervisor';
import type { SupervisorSpawner } from '../native/supervisor-spawner';

/** The watch's program: the light entry, which every build makes beside stockade-init. */
export function watchBinary(): string {
  return join(packageRoot(), 'build', 'Release', 'stockade-light');
}

/** A pidfd of `p`, checked once it pins the process to be the one `p` names. */
function pinned(p: ProcessRef, what: string, id: ContainerId): number {
  let fd: number;
  try {
    fd = pidfdOpen(p.pid);
  } catch (e) {
    if (errnoCode(e) !== 'ESRCH') throw e;
    fd = -1;
  }
  if (fd < 0 || !isSameLiveProcess(p.pid, p.startTime)) {
    if (fd >= 0) closeSync(fd);
    throw new StockadeError('SYSTEM', `container ${id}: its ${what} (pid ${p.pid}) exited during create`, { id, pid: p.pid });
  }
  return fd;
}

/**
 * Starts the watch (native/light/watch.c) that kills the container once `server`, the process
 * serving its calls, exits: a workload whose supervisor is gone gets ENOSYS for every mediated
 * call, and must not run on like that. The watch holds pidfds of both processes and fds of the
 * state and cgroup directories, so nothing it acts on can be a reused pid or a later container
 * of the same id; it leaves when the sentry does, or once the container is deleted. Its few
 * words go to sentry.log in the state directory. Throws (create then fails and cleans up) when
 * the watch cannot be started: a sentry container is never left without one.
 */
export function watchSupervisor(server: ProcessRef, target: GuardTarget): void {
  const { program, held, cgroups, log } = watchFds(server, target);
  try {
    // Its own session, like the sentry's: a signal to the caller's process group is not one to it.
    const watch = spawn(program, watchArgs(target, cgroups), {
      detached: true,
      stdio: ['ignore', 'ignore', log, ...held.slice(0, 3), ...cgroups],
      env: {},
    });
    watch.unref();
    // A failed exec is also reported as an event, which must not take this process down: the pid says it.
    watch.once('error', () => undefined);
    if (watch.pid === undefined) {
      throw new StockadeError('SYSTEM', `container ${target.id}: cannot start the watch of its sentry (${program})`, { id: target.id });
    }
  } finally {
    for (const fd of held) closeSync(fd);
  }
}

/** The watch's program and what it holds: pidfds of both processes, the state and cgroup directories, its log. */
function watchFds(server: ProcessRef, target: GuardTarget): { program: string; held: number[]; cgroups: number[]; log: number } {
  const program = watchBinary();
  if (!existsSync(program)) {
    throw new StockadeError('UNSUPPORTED', `${program} is not built (it watches a sentry container's sentry): run npm run build`, { path: program });
  }
  const held: number[] = [];
  try {
    held.push(pinned(server, 'sentry', target.id));
    held.push(pinned(target.init, 'init', target.id));
    held.push(openSync(target.stateDir, 'r'));
    const cgroups = target.cgroupPaths.map((p) => openSync(p, 'r'));
    held.push(...cgroups);
    const log = openSync(join(target.stateDir, 'sentry.log'), 'a', 0o600);
    held.push(log);
    return { program, held, cgroups, log };
  } catch (e) {
    for (const fd of held) closeSync(fd);
    throw e;
  }
}

function watchArgs(target: GuardTarget, cgroups: readonly number[]): string[] {
  return ['sentry-watch', target.id, target.ownPidNamespace ? 'pidns' : 'shared', String(cgroups.length)];
}

/**
 * watchSupervisor for a call a planner serves: the same watch, started by the call's front
 * (supervisor-spawner.ts), so that it is the call's descendant and outlives the planner.
 */
export async function watchSupervisorRemote(spawnRemote: SupervisorSpawner, server: ProcessRef, target: GuardTarget): Promise<void> {
  const { program, held, cgroups, log } = watchFds(server, target);
  try {
    await spawnRemote({
      command: program,
      args: watchArgs(target, cgroups),
      detached: true,
      stdio: ['ignore', 'ignore', log, ...held.slice(0, 3), ...cgroups],
      env: {},
    });
  } catch {
    throw new StockadeError('SYSTEM', `container ${target.id}: cannot start the watch of its sentry (${program})`, { id: target.id });
  } finally {
    for (const fd of held) closeSync(fd);
  }
}
