// An image config applied to a process as Docker applies it: Entrypoint + Cmd, Env, WorkingDir, User.
import { closeSync, constants as fsc, lstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { O_CLOEXEC, O_DIRECTORY, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS } from '../abi/linux/constants';
import { StockadeError } from '../errors';
import { openat2 } from '../native/addon';
import type { ImageConfig } from './manifest';

export interface ImageProcess {
  args: string[];
  env: string[];
  cwd: string;
  user: { uid: number; gid: number; additionalGids?: number[] };
}

/** Docker's PATH for an image that sets none. */
const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** How much of /etc/passwd or /etc/group is read: past it the rest is not looked at. */
const READ_IN_ROOT_MAX = 1024 * 1024;
/** The piece read at a time: more than those files hold in an image. */
const READ_PIECE = 16 * 1024;

/**
 * Reads a small file of the container's root, resolving every symlink inside that root
 * (RESOLVE_IN_ROOT): an image's /etc/passwd -> /host/file names the rootfs's own file, never the host's.
 */
function readInRoot(rootfs: string, path: string): string | undefined {
  const dirfd = openSync(rootfs, fsc.O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  let fd: number;
  try {
    fd = openat2(dirfd, path, fsc.O_RDONLY | O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
  } catch {
    return undefined;
  } finally {
    closeSync(dirfd);
  }
  try {
    // Read in pieces up to the bound: a zeroed 1 MiB for each of /etc/passwd and /etc/group cost
    // a sandbox's create 30 ms of page faults and collection (the files are a few hundred bytes).
    const pieces: Buffer[] = [];
    let total = 0;
    while (total < READ_IN_ROOT_MAX) {
      const piece = Buffer.allocUnsafe(Math.min(READ_PIECE, READ_IN_ROOT_MAX - total));
      const n = readSync(fd, piece, 0, piece.length, null);
      if (n === 0) break;
      pieces.push(piece.subarray(0, n));
      total += n;
    }
    return Buffer.concat(pieces, total).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

function passwd(rootfs: string): PasswdEntry[] {
  return (readInRoot(rootfs, 'etc/passwd') ?? '').split('\n').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 7 || !/^\d+$/.test(f[2] ?? '') || !/^\d+$/.test(f[3] ?? '')) return [];
    return [{ name: f[0] ?? '', uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '' }];
  });
}

function groups(rootfs: string): GroupEntry[] {
  return (readInRoot(rootfs, 'etc/group') ?? '').split('\n').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 4 || !/^\d+$/.test(f[2] ?? '')) return [];
    return [{ name: f[0] ?? '', gid: Number(f[2]), members: (f[3] ?? '').split(',').filter((m) => m !== '') }];
  });
}

const ID_MAX = 0xffffffff - 1;

function numeric(s: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n <= ID_MAX ? n : undefined;
}

/** User as Docker reads it: "", "uid", "name", "uid:gid", "name:group"; names from the image's files. */
export function resolveUser(spec: string, rootfs: string): { uid: number; gid: number; additionalGids: number[]; home: string } {
  const [u = '', g] = spec.split(':', 2);
  const users = passwd(rootfs);
  let uid = 0;
  let gid = 0;
  let home = '/';
  let name: string | undefined;
  if (u !== '') {
    const n = numeric(u);
    const entry = n !== undefined ? users.find((e) => e.uid === n) : users.find((e) => e.name === u);
    if (entry === undefined && n === undefined) throw new StockadeError('IMAGE_INVALID', `user ${JSON.stringify(u)} is not in the image's /etc/passwd`, { user: spec });
    uid = n ?? entry?.uid ?? 0;
    gid = entry?.gid ?? 0;
    home = entry?.home || '/';
    name = entry?.name;
  } else {
    const root = users.find((e) => e.uid === 0);
    home = root?.home || '/';
    name = root?.name;
  }
  const all = groups(rootfs);
  if (g !== undefined && g !== '') {
    const n = numeric(g);
    const entry = n !== undefined ? undefined : all.find((e) => e.name === g);
    if (n === undefined && entry === undefined) throw new StockadeError('IMAGE_INVALID', `group ${JSON.stringify(g)} is not in the image's /etc/group`, { user: spec });
    gid = n ?? entry?.gid ?? 0;
  }
  // Supplementary groups: those that list the user by name, as Docker adds them.
  const additionalGids = name === undefined ? [] : [...new Set(all.filter((e) => e.members.includes(name) && e.gid !== gid).map((e) => e.gid))];
  return { uid, gid, additionalGids, home };
}

export interface ProcessOverrides {
  /** Replaces the image's Cmd (the Entrypoint stays), as `docker run IMAGE CMD...`. */
  cmd?: readonly string[] | undefined;
  /** KEY=VALUE, over the image's Env. */
  env?: readonly string[] | undefined;
}

function envKey(kv: string): string {
  const i = kv.indexOf('=');
  return i < 0 ? kv : kv.slice(0, i);
}

export function imageProcess(config: ImageConfig, rootfs: string, overrides: ProcessOverrides = {}): ImageProcess {
  const cmd = overrides.cmd !== undefined && overrides.cmd.length > 0 ? [...overrides.cmd] : config.cmd ?? [];
  const args = [...(config.entrypoint ?? []), ...cmd];
  if (args.length === 0) throw new StockadeError('USAGE', 'the image has no Entrypoint or Cmd: give a command after --');
  const user = resolveUser(config.user, rootfs);
  const env = new Map<string, string>();
  const put = (kv: string): void => { env.set(envKey(kv), kv); };
  put(DEFAULT_PATH);
  put(`HOME=${user.home}`);
  for (const kv of config.env) put(kv);
  for (const kv of overrides.env ?? []) put(kv.includes('=') ? kv : `${kv}=${process.env[kv] ?? ''}`);
  const cwd = config.workingDir === '' ? '/' : config.workingDir.startsWith('/') ? config.workingDir : `/${config.workingDir}`;
  return {
    args,
    env: [...env.values()],
    cwd,
    user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length > 0 ? { additionalGids: user.additionalGids } : {}) },
  };
}

/**
 * Makes WorkingDir when the image lacks it, as Docker does (root-owned, 0755). Nothing runs in
 * the new root yet, so an lstat walk holds; a symlink on the way is refused rather than
 * followed (Docker would resolve it inside the root: create such a directory in the image).
 */
export function ensureWorkingDir(rootfs: string, cwd: string): void {
  const parts = cwd.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new StockadeError('IMAGE_INVALID', `WorkingDir ${JSON.stringify(cwd)} has a ".." component`, { cwd });
  let path = rootfs;
  for (const part of parts) {
    path = join(path, part);
    let st;
    try {
      st = lstatSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      mkdirSync(path, { mode: 0o755 });
      continue;
    }
    if (!st.isDirectory()) {
      throw new StockadeError('IMAGE_INVALID', `WorkingDir ${JSON.stringify(cwd)} goes through ${path.slice(rootfs.length)}, which is ${st.isSymbolicLink() ? 'a symlink' : 'not a directory'}`, { cwd });
    }
  }
}
