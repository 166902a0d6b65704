// The one place cgroup files are read and written: errors become one line naming the OCI field.
import { closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { StockadeError, errnoCode } from '../errors';

// Node 20 exposes errno names but not strerror's words, which are what runc's errors show.
const STRERROR: Readonly<Record<string, string>> = {
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
    // As runc: O_TRUNC without O_CREAT, so a missing file is ENOENT rather than a new file.
    const fd = openSync(join(dir, file), constants.O_WRONLY | constants.O_TRUNC);
    try {
      writeSync(fd, value);
    } finally {
      closeSync(fd);
    }
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
    return readFileSync(join(dir, file), 'utf8').trim();
  } catch (e) {
    const code = errnoCode(e);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENODEV' || code === 'EOPNOTSUPP') return undefined;
    throw e;
  }
}

export function hasCgroupFile(dir: string, file: string): boolean {
  return existsSync(join(dir, file));
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
  while (!existsSync(p)) {
    missing.unshift(p);
    const parent = join(p, '..');
    if (parent === p) break;
    p = parent;
  }
  for (const m of missing) {
    try {
      mkdirSync(m);
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
    entries = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
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
  if (!existsSync(dir)) return;
  let children: string[] = [];
  try {
    children = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  } catch { /* gone meanwhile */ }
  for (const c of children) await removeCgroupDir(join(dir, c), timeoutMs);
  const deadline = Date.now() + timeoutMs;
  for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
    try {
      rmdirSync(dir);
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
  const entries = readdirSync(dir, { withFileTypes: true });
  if (entries.some((e) => !e.isFile())) return false;
  for (const e of entries) unlinkSync(join(dir, e.name));
  return true;
}
