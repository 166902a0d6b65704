// Identifies a process by pid and start time so a reused pid is never mistaken for the container.
import { readFileSync } from 'node:fs';

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

/** True when `pid` is alive (not a zombie) and is still the process that started at `startTime`. */
export function isSameLiveProcess(pid: number, startTime: string): boolean {
  if (pid <= 0) return false;
  const stat = readProcessStat(pid);
  return stat !== undefined && stat.startTime === startTime && stat.state !== 'Z' && stat.state !== 'X';
}

/** Polls until the process is gone or a zombie; false on timeout. */
export async function waitGone(pid: number, startTime: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  while (isSameLiveProcess(pid, startTime)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 20);
  }
  return true;
}
