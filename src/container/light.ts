// The record the light entry (native/light/light.c) reads to start, kill and delete a container
// without starting Node. Written by create, in TypeScript, so every decision stays here: the C
// side only follows it, and sends anything it does not understand back to Node.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Spec } from '../oci/spec';
import type { ContainerId } from './id';
import { writeFileAtomic, type ContainerRecord, type StateStore } from './state-store';

/** The first line; the light entry ignores a record whose format it does not know. */
export const LIGHT_FORMAT = 'stockade-light 1';

/**
 * The record's lines after the first, "KEY VALUE", each key at most once but cgroup and thawed:
 *   act yes|no              whether the light entry may act on the container at all: its level's
 *                           registry entry says so (LevelEntry.light); every other key follows only with yes
 *   pid PID                 the container's init
 *   starttime T             field 22 of /proc/PID/stat, so a reused pid is not taken for it
 *   mntns NS                its mount namespace (optional), which a bystander started in the same tick lacks
 *   cgroup DIR              a cgroup directory of the container (host path)
 *   thawed FILE CONTENT     while FILE reads CONTENT the container is not paused
 * The C entry's key names come from here (STK_LIGHT_KEY_* in the generated header).
 */
export const LIGHT_KEYS = { act: 'act', pid: 'pid', starttime: 'starttime', mntns: 'mntns', cgroup: 'cgroup', thawed: 'thawed' } as const;

/** The `act` values: the C entry reads only the first (STK_LIGHT_ACT_YES). */
export const LIGHT_ACT = { yes: 'yes', no: 'no' } as const;

/** The record of a container the light entry must leave to Node whatever the call (its level's workload is no host process it can read). */
export const LIGHT_HANDS_OFF = `${LIGHT_FORMAT}\n${LIGHT_KEYS.act} ${LIGHT_ACT.no}\n`;

/**
 * The record's text, or undefined when the container must always go through Node: hooks that
 * run at start or after delete are run by the TypeScript side only, and so is the delete of a
 * container that shares the runtime's mount namespace. `mayAct`: the level declares the light
 * entry safe for it (LevelEntry.light); without, the record says so and nothing else.
 */
export function lightRecord(record: ContainerRecord, spec: Spec, mayAct: boolean): string | undefined {
  if (!mayAct) return LIGHT_HANDS_OFF;
  const hooks = spec.hooks ?? {};
  if ([hooks.startContainer, hooks.poststart, hooks.poststop].some((h) => (h ?? []).length > 0)) return undefined;
  if (record.pid <= 0 || record.pidStartTime === '') return undefined;
  // Its root is bound below the state directory in the host's namespace: only Node's delete
  // detaches it before removing the directory (the C one would walk into the bundle's root).
  if (record.ownMountNamespace === false) return undefined;
  const lines = [LIGHT_FORMAT, `${LIGHT_KEYS.act} ${LIGHT_ACT.yes}`, `${LIGHT_KEYS.pid} ${record.pid}`, `${LIGHT_KEYS.starttime} ${record.pidStartTime}`];
  if ((record.pidMntNs ?? '') !== '') lines.push(`${LIGHT_KEYS.mntns} ${record.pidMntNs ?? ''}`);
  for (const path of record.cgroupPaths) {
    lines.push(`${LIGHT_KEYS.cgroup} ${path}`);
    if (existsSync(join(path, 'freezer.state'))) lines.push(`${LIGHT_KEYS.thawed} ${join(path, 'freezer.state')} THAWED`);
    else if (existsSync(join(path, 'cgroup.freeze'))) lines.push(`${LIGHT_KEYS.thawed} ${join(path, 'cgroup.freeze')} 0`);
  }
  // A path the line format cannot carry sends the container to Node, rather than misread.
  if (lines.some((l) => l.includes('\n') || l.includes('\0'))) return undefined;
  return `${lines.join('\n')}\n`;
}

/** The record's name in the container's state directory (STK_LIGHT_RECORD for the C entry). */
export const LIGHT_RECORD = 'light';

export function writeLightRecord(store: StateStore, id: ContainerId, record: ContainerRecord, spec: Spec, mayAct: boolean): void {
  const path = join(store.dir(id), LIGHT_RECORD);
  const text = lightRecord(record, spec, mayAct);
  if (text === undefined) rmSync(path, { force: true });
  else writeFileAtomic(path, text);
}

/** Whether the light entry may act on the container: its record is there and says so (light-wait.ts asks before it execs the wait). */
export function lightMayAct(store: StateStore, id: ContainerId): boolean {
  let text: string;
  try {
    text = readFileSync(join(store.dir(id), LIGHT_RECORD), 'utf8');
  } catch {
    return false;
  }
  return text.startsWith(`${LIGHT_FORMAT}\n${LIGHT_KEYS.act} ${LIGHT_ACT.yes}\n`);
}
