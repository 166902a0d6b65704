// Lets tests assert that a run left nothing behind: no mount, process or fd of its own.
import { readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';

export interface MountEntry {
  readonly mountpoint: string;
  readonly fstype: string;
  readonly source: string;
}

// mountinfo writes space, tab, newline and backslash as \ooo.
function unescapeMountinfo(field: string): string {
  return field.replace(/\\([0-3][0-7]{2})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** This process's mount table, from /proc/self/mountinfo. */
export function listMounts(): MountEntry[] {
  const mounts: MountEntry[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    // id parent maj:min root mountpoint options [optional fields...] - fstype source superoptions
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    const mountpoint = fields[4];
    const fstype = fields[dash + 1];
    const source = fields[dash + 2];
    if (dash < 0 || mountpoint === undefined || fstype === undefined || source === undefined) continue;
    mounts.push({ mountpoint: unescapeMountinfo(mountpoint), fstype, source: unescapeMountinfo(source) });
  }
  return mounts;
}

/** Mounts at or below path (resolved through symlinks, as the kernel reports mountpoints). */
export function listMountsUnder(path: string): MountEntry[] {
  let base: string;
  try {
    base = realpathSync(path);
  } catch {
    base = resolve(path);
  }
  const prefix = base === '/' ? '/' : `${base}/`;
  return listMounts().filter((m) => m.mountpoint === base || m.mountpoint.startsWith(prefix));
}

export interface ProcessEntry {
  readonly pid: number;
  readonly ppid: number;
  /** R, S, D, Z, T, ... as in /proc/PID/stat. */
  readonly state: string;
  /** argv joined with spaces. */
  readonly cmdline: string;
}

// The comm field may hold spaces and parentheses, so the fields after it are found from the last ')'.
function readStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = rest[0];
    const ppid = Number(rest[1]);
    return state === undefined ? undefined : { state, ppid };
  } catch {
    return undefined;
  }
}

/**
 * Live processes (other than this one) whose command line contains substring. A zombie has an
 * empty command line, so it is not listed; a process exiting meanwhile is skipped.
 */
export function processesWithCmdline(substring: string): ProcessEntry[] {
  const found: ProcessEntry[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    if (pid === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0$/, '').split('\0').join(' ');
    } catch {
      continue;
    }
    if (!cmdline.includes(substring)) continue;
    const stat = readStat(pid);
    if (stat !== undefined) found.push({ pid, ppid: stat.ppid, state: stat.state, cmdline });
  }
  return found;
}

export interface OpenFd {
  readonly fd: number;
  /** What /proc/PID/fd/N points at: a path, 'pipe:[...]', 'socket:[...]', 'anon_inode:[pidfd]', ... */
  readonly target: string;
}

/** The fds open in a process (this one by default), without the one used to list them. */
export function listOpenFds(pid: number = process.pid): OpenFd[] {
  const dir = `/proc/${pid}/fd`;
  const fds: OpenFd[] = [];
  for (const name of readdirSync(dir)) {
    try {
      fds.push({ fd: Number(name), target: readlinkSync(`${dir}/${name}`) });
    } catch {
      // readdirSync's own directory fd is closed by now, and so is anything closed meanwhile.
    }
  }
  return fds.sort((a, b) => a.fd - b.fd);
}
