// The one place cgroup files are read and written: errors become one line naming the OCI field.
import { closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StockadeError, errnoCode } from '../errors';

/**
 * The file operations cgroup code performs, each failing as node:fs does (an Error whose `code`
 * is the errno name). The host's file system by default; a test puts another kernel's cgroup file
 * system here (a VM's, reached through its agent) to run the managers against it.
 */
export interface CgroupFs {
  readFile(path: string): string;
  /** Opens without O_CREAT and with O_TRUNC, as runc: a missing file is ENOENT. */
  writeFile(path: string, value: string): void;
  exists(path: string): boolean;
  mkdir(path: string): void;
  rmdir(path: string): void;
  unlink(path: string): void;
  /** Names of the subdirectories of PATH. */
  subdirs(path: string): string[];
  /** Names of every entry of PATH, with whether each is a regular file. */
  entries(path: string): { name: string; file: boolean }[];
}

export const hostCgroupFs: CgroupFs = {
  readFile: (path) => readFileSync(path, 'utf8'),
  writeFile: (path, value) => {
    const fd = openSync(path, constants.O_WRONLY | constants.O_TRUNC);
    try {
      writeSync(fd, value);
    } finally {
      closeSync(fd);
    }
  },
  exists: (path) => existsSync(path),
  mkdir: (path) => mkdirSync(path),
  rmdir: (path) => rmdirSync(path),
  unlink: (path) => unlinkSync(path),
  subdirs: (path) => readdirSync(path, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name),
  entries: (path) => readdirSync(path, { withFileTypes: true }).map((d) => ({ name: d.name, file: d.isFile() })),
};

let fsNow: CgroupFs = hostCgroupFs;

/** Puts `fs` in place of the host's file system for every cgroup operation; returns what was there. */
export function setCgroupFs(fs: CgroupFs): CgroupFs {
  const before = fsNow;
  fsNow = fs;
  return before;
}

/** The file system cgroup operations go to now (the host's unless a test replaced it). */
export function cgroupFs(): CgroupFs {
  return fsNow;
}

// Node 20 exposes errno names but not strerror's words, which are what runc's errors show
// (and what a shell prints, so a test reading another kernel's files through one maps them back).
export const STRERROR: Readonly<Record<string, string>> = {
  EINVAL: 'Invalid argument',
  ERANGE: 'Numerical result out of range',
  EBUSY: 'Device or resource busy',
  ENOSPC: 'No space left on device',
  EPERM: 'Operation not permitted',
  EACCES: 'Permission denied',
  ENOENT: 'No such file or directory',
  EOPNOTSUPP: 'Operation not supported',
  ENOTSUP: 'Operation not supported',
  ENODEV: 'No such device',
  ENXIO: 'No such device or address',
  EEXIST: 'File exists',
  ENOTDIR: 'Not a directory',
  EROFS: 'Read-only file system',
  EAGAIN: 'Resource temporarily unavailable',
  ENOTEMPTY: 'Directory not empty',
};

export function strerror(e: unknown): string {
  const code = errnoCode(e);
  if (code !== undefined && STRERROR[code] !== undefined) return STRERROR[code];
  return e instanceof Error ? e.message : String(e);
}

/** Writes `value` to DIR/FILE; `field` is the OCI field the value came from, for the error. */
export function writeCgroupFile(dir: string, file: string, value: string, field: string): void {
  try {
    fsNow.writeFile(join(dir, file), value);
  } catch (e) {
    const code = errnoCode(e);
    // A missing file means the controller (or this knob of it) is absent, not that the value was bad.
    const why = code === 'ENOENT' ? `${file} does not exist in ${dir} (the controller or this setting is not available on this host)` : strerror(e);
    throw new StockadeError('CGROUP_FAILED', `${field}: cannot set ${file} to ${JSON.stringify(value)}: ${why}`, { field, path: join(dir, file), errno: code }, { cause: e });
  }
}

/** The trimmed content of DIR/FILE, or undefined when it does not exist. */
export function readCgroupFile(dir: string, file: string): string | undefined {
  try {
    return fsNow.readFile(join(dir, file)).trim();
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENODEV' || code === 'EOPNOTSUPP') return undefined;
    throw e;
  }
}

export function hasCgroupFile(dir: string, file: string): boolean {
  return fsNow.exists(join(dir, file));
}

/** `key value` lines (memory.stat, cpu.stat, memory.events) as bigints. */
export function readKeyValues(dir: string, file: string): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of (readCgroupFile(dir, file) ?? '').split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k !== undefined && v !== undefined && /^\d+$/.test(v)) out.set(k, BigInt(v));
  }
  return out;
}

/** A single number; "max" and absent read as undefined. */
export function readUint(dir: string, file: string): bigint | undefined {
  const v = readCgroupFile(dir, file);
  return v !== undefined && /^\d+$/.test(v) ? BigInt(v) : undefined;
}

/**
 * Makes DIR and any missing parents; returns the directories it made, outermost first, so a
 * failed create removes exactly those and nothing that was there before.
 */
export function makeCgroupDir(dir: string): string[] {
  const made: string[] = [];
  const missing: string[] = [];
  let p = dir;
  while (!fsNow.exists(p)) {
    missing.unshift(p);
    const parent = join(p, '..');
    if (parent === p) break;
    p = parent;
  }
  for (const m of missing) {
    try {
      fsNow.mkdir(m);
      made.push(m);
    } catch (e) {
      if (errnoCode(e) === 'EEXIST') continue;
      throw new StockadeError('CGROUP_FAILED', `cannot create cgroup ${m}: ${strerror(e)}`, { path: m }, { cause: e });
    }
  }
  return made;
}

/** Every pid in DIR's cgroup.procs and in those of the cgroups below it. */
export function cgroupProcs(dir: string): number[] {
  const pids: number[] = [];
  const text = readCgroupFile(dir, 'cgroup.procs');
  if (text === undefined) return pids;
  for (const l of text.split('\n')) if (/^\d+$/.test(l)) pids.push(Number(l));
  let entries: string[];
  try {
    entries = fsNow.subdirs(dir);
  } catch {
    return pids;
  }
  for (const e of entries) pids.push(...cgroupProcs(join(dir, e)));
  return pids;
}

/**
 * Removes DIR and the cgroups below it, deepest first. A cgroup whose last process has just died
 * stays busy for a moment, so EBUSY is retried for up to `timeoutMs`.
 */
export async function removeCgroupDir(dir: string, timeoutMs = 2000): Promise<void> {
  if (!fsNow.exists(dir)) return;
  let children: string[] = [];
  try {
    children = fsNow.subdirs(dir);
  } catch { /* gone meanwhile */ }
  for (const c of children) await removeCgroupDir(join(dir, c), timeoutMs);
  const deadline = Date.now() + timeoutMs;
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    try {
      fsNow.rmdir(dir);
      return;
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'ENOENT') return;
      // cgroupfs never answers ENOTEMPTY (its control files go with the directory); a plain
      // directory tree standing in for it in tests does, and its files are removed here.
      if (code === 'ENOTEMPTY' && removePlainFiles(dir)) continue;
      if (code !== 'EBUSY' || Date.now() > deadline) {
        throw new StockadeError('CGROUP_FAILED', `cannot remove cgroup ${dir}: ${strerror(e)}`, { path: dir }, { cause: e });
      }
    }
    await new Promise((r) => setTimeout(r, delay));
  }
}

function removePlainFiles(dir: string): boolean {
  const entries = fsNow.entries(dir);
  if (entries.some((e) => !e.file)) return false;
  for (const e of entries) fsNow.unlink(join(dir, e.name));
  return true;
}
