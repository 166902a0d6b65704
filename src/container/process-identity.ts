// Identifies a process by pid, start time and mount namespace so a reused pid is never mistaken for the container.
import { readFileSync, readlinkSync } from 'node:fs';

export interface ProcessStat {
  state: string;
  ppid: number;
  startTime: string;
}

export function readProcessStat(pid: number): ProcessStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // comm may hold spaces and parentheses: fields resume after the last ')'.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = rest[0];
  const ppid = rest[1];
  const startTime = rest[19];
  if (state === undefined || ppid === undefined || startTime === undefined) return undefined;
  return { state, ppid: Number(ppid), startTime };
}

/**
 * The inode of the process's mount namespace (`/proc/PID/ns/mnt` reads `mnt:[N]`), or '' when it
 * cannot be read. Start times count in clock ticks (10 ms): a process the kernel starts in the same
 * tick under a reused pid has the same one, so a container's record pins its namespace too.
 */
export function readMountNamespace(pid: number): string {
  try {
    return /^mnt:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/mnt`))?.[1] ?? '';
  } catch {
    return '';
  }
}

/**
 * True when `pid` is alive (not a zombie) and is still the process that started at `startTime`
 * and, when `mntNs` is given, lives in that mount namespace.
 */
export function isSameLiveProcess(pid: number, startTime: string, mntNs = ''): boolean {
  if (pid <= 0) return false;
  const stat = readProcessStat(pid);
  if (stat === undefined || stat.startTime !== startTime || stat.state === 'Z' || stat.state === 'X') return false;
  return mntNs === '' || readMountNamespace(pid) === mntNs;
}

/** Polls until the process is gone or a zombie; false on timeout. */
export async function waitGone(pid: number, startTime: string, timeoutMs: number, mntNs = ''): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  while (isSameLiveProcess(pid, startTime, mntNs)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 20);
  }
  return true;
}
