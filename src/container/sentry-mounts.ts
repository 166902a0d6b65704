// Where a container's sentry holds the mounts it owns (/proc, /sys), for the sentry of a process exec'd into it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The record the container's sentry writes once it holds its mounts (src/sentry/supervisor.ts). */
export const SENTRY_MOUNTS_RECORD = 'sentry.json';

/** Where a container's detached sentry takes processes exec'd into it (src/sentry/host.ts). */
export const SENTRY_JOIN_SOCKET = 'sentry.sock';

export interface MountsRecord {
  readonly pid: number;
  readonly mounts: readonly { readonly path: string; readonly fd: number }[];
}

/**
 * Each owned mount with the host path of the sentry's fd of it (/proc/PID/fd/N), which
 * stockade-init opens before joining the container and clones inside it (TAG_SENTRY_MOUNT). None
 * when the sentry holds none yet (a container created, not started): the exec'd process then has
 * no /proc or /sys, as the workload's own namespace has none.
 */
export function sentryMountSources(stateDir: string, debug?: (m: string) => void): { path: string; source: string }[] {
  let rec: MountsRecord;
  try {
    rec = JSON.parse(readFileSync(join(stateDir, SENTRY_MOUNTS_RECORD), 'utf8')) as MountsRecord;
  } catch {
    debug?.('exec: the container\'s sentry holds no mounts yet: the exec\'d process gets no /proc or /sys');
    return [];
  }
  if (!Number.isInteger(rec.pid) || !Array.isArray(rec.mounts)) return [];
  return rec.mounts
    .filter((m) => (m.path === '/proc' || m.path === '/sys') && Number.isInteger(m.fd))
    .map((m) => ({ path: m.path, source: `/proc/${rec.pid}/fd/${m.fd}` }));
}
