// What `do` and an attached `run` become once their container runs: stockade-light's `wait`
// (native/light/light.c), which passes signals on to the container, reaps stockade-init, deletes
// the container and exits with its status, as this process would have. A Node process waiting for
// a container holds 12 to 15 MB for as long as it runs; the C one a few hundred KB.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { constants } from 'node:os';
import type { LogFormat } from '../log/logger';
import { execBlocked, holdSignals, releaseSignals } from '../native/addon';
import { flushTiming, mark } from '../log/timing';
import { packageRoot } from '../native/paths';
import type { ContainerId } from './id';
import { lightMayAct } from './light';
import { FORWARDED } from './signal-forward';
import type { StateStore } from './state-store';

/**
 * Makes the caller's process become the wait (path, args as execve takes them). In the planner the
 * caller is the front, which execs it; resolves only when it could not (the caller then waits itself).
 */
export type WaitBecomer = (path: string, args: readonly string[]) => Promise<void>;

let becomer: WaitBecomer | undefined;

/** The planner's for the request it serves; undefined restores exec'ing this process. */
export function setWaitBecomer(b: WaitBecomer | undefined): void {
  becomer = b;
}

/**
 * Told, just before a run releases its container, what would finish that run were the process that
 * drives it lost from then on: the wait's argv (path first), or none for a detached run (it is
 * done once started). The planner passes it to its front, which must then never run the call again.
 */
export type RunStarting = (then: readonly string[] | undefined) => void;

let starting: RunStarting | undefined;

/** The planner's, for the request it serves. */
export function setRunStarting(s: RunStarting | undefined): void {
  starting = s;
}

/** What run calls before it starts its container (the planner's front keeps it). */
export function runStarting(then: readonly string[] | undefined): void {
  starting?.(then);
}

/** stockade-light's wait for a container whose stockade-init (helperPid) is the caller's child. */
export function lightWaitArgs(id: ContainerId, helperPid: number, keep: boolean, globals: readonly string[]): string[] {
  const light = join(packageRoot(), 'build', 'Release', 'stockade-light');
  return [light, ...globals, 'wait', ...(keep ? ['--keep'] : []), id, String(helperPid)];
}

/** The global flags stockade-light takes and passes on to Node's delete when it needs it. */
export function lightGlobals(root: string, log: { readonly path: string; readonly format: LogFormat } | undefined): string[] {
  return ['--root', root, ...(log === undefined ? [] : ['--log', log.path, '--log-format', log.format])];
}

export interface LightWait {
  readonly store: StateStore;
  readonly id: ContainerId;
  /** stockade-init, a child of this process: it exits with the container's status. */
  readonly helperPid: number;
  /** Leave the container there once it has stopped (run --keep). */
  readonly keep: boolean;
  readonly globals: readonly string[];
  /** Whether stockade-init is still unreaped: Node may reap it while the loop turns. */
  readonly helperRunning: () => boolean;
}

/**
 * Becomes stockade-light's wait, when it can: the light entry is built, not turned off
 * (STOCKADE_LIGHT=off), and the container's light record lets it act (its level allows the
 * light entry, and no hooks that Node must run).
 * Resolves only when it does not (the caller then waits itself); never once it has.
 */
export async function waitInLight(w: LightWait): Promise<void> {
  if (process.env['STOCKADE_LIGHT'] === 'off') return;
  const args = lightWaitArgs(w.id, w.helperPid, w.keep, w.globals);
  const light = args[0] ?? '';
  if (!existsSync(light) || !lightMayAct(w.store, w.id)) return;
  if (becomer !== undefined) {
    if (w.helperRunning()) await becomer(light, args);
    return;
  }
  const signals = FORWARDED.map((s) => constants.signals[s]);
  // Signals from here on are held for the wait; those Node caught before are still in its loop,
  // and one turn of it forwards them (an attached run's SIGTERM was lost under load without it).
  holdSignals(signals);
  await new Promise((r) => setImmediate(r));
  if (!w.helperRunning()) {
    releaseSignals();
    return;
  }
  try {
    // The held signals stay pending across the execve: the wait forwards them.
    mark('exec light wait');
    flushTiming();
    execBlocked(light, args, signals);
  } catch {
    // Not replaced: this process waits, as it did before there was a light entry.
    releaseSignals();
  }
}
