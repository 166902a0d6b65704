// Who the command of `stockade do` is on the host: never root unless asked, so that what only root may read stays unread.
import { statSync } from 'node:fs';
import type { MountIdmap } from './plan';

/** The identity a command started by root itself runs as: nobody and nogroup, as Debian numbers them. */
export const DO_NOBODY = { uid: 65534, gid: 65534 } as const;

export interface DoIdentity {
  /** The host uid and gid the command runs as (no user namespace: these are what the kernel checks). */
  uid: number;
  gid: number;
  /** How it was chosen: --user; the user who ran sudo; the caller, not root; nobody, for root itself. */
  source: 'user' | 'sudo' | 'caller' | 'nobody';
  /** Whose ownership a writable --bind writes with: the caller, or the user who ran sudo. */
  owner: { uid: number; gid: number };
}

function id(value: string | undefined): number | undefined {
  return value !== undefined && /^\d{1,10}$/.test(value) && Number(value) <= 0xfffffffe ? Number(value) : undefined;
}

/**
 * The command's identity: --user's when given (root too, on purpose); else the caller's when it
 * is not root; else, for root started through sudo, the user who ran it (SUDO_UID, SUDO_GID);
 * else nobody. Root's files (/etc/shadow, /root, host keys) are then out of its reach as they
 * are out of that user's, by the kernel's own checks.
 */
export function doIdentity(
  user: { uid: number; gid: number } | undefined,
  env: NodeJS.ProcessEnv = process.env,
  caller: { uid: number; gid: number } = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 },
): DoIdentity {
  const sudoUid = caller.uid === 0 ? id(env.SUDO_UID) : undefined;
  const sudoGid = id(env.SUDO_GID);
  const owner = sudoUid !== undefined && sudoUid !== 0 && sudoGid !== undefined ? { uid: sudoUid, gid: sudoGid } : caller;
  if (user !== undefined) return { ...user, source: 'user', owner };
  if (caller.uid !== 0) return { ...caller, source: 'caller', owner };
  if (owner.uid !== 0) return { ...owner, source: 'sudo', owner };
  return { ...DO_NOBODY, source: 'nobody', owner };
}

/**
 * The id map of a writable --bind: files the command writes there land owned by the caller (root,
 * started by root), and the caller's files there are the command's, where the command's own ids
 * differ from the caller's (nobody for root). None when they are the same or --user chose them.
 */
export function doBindIdmap(identity: DoIdentity): MountIdmap | undefined {
  if (identity.source === 'user' || (identity.owner.uid === identity.uid && identity.owner.gid === identity.gid)) return undefined;
  return { uidMap: `${identity.owner.uid} ${identity.uid} 1\n`, gidMap: `${identity.owner.gid} ${identity.gid} 1\n` };
}

/**
 * Whether `uid`:`gid` (no supplementary groups: the command has none) may search every directory
 * from / down to `dir` and `dir` itself, by the mode bits (ACLs aside). `mappedUnder` are the
 * roots of id-mapped binds, below which the caller's files count as the command's.
 */
export function canReach(dir: string, identity: DoIdentity, mappedUnder: readonly string[] = []): boolean {
  if (identity.uid === 0) return true;
  const parts = dir.split('/').filter((p) => p !== '');
  for (let i = 0; i <= parts.length; i++) {
    const path = `/${parts.slice(0, i).join('/')}`;
    const st = statSync(path, { throwIfNoEntry: false });
    if (st === undefined) return false;
    const mapped = mappedUnder.some((m) => path === m || path.startsWith(m === '/' ? '/' : `${m}/`));
    // Through an id map only the caller's ids are mapped: anyone else's count as no one's.
    const uid = !mapped ? st.uid : st.uid === identity.owner.uid ? identity.uid : -1;
    const gid = !mapped ? st.gid : st.gid === identity.owner.gid ? identity.gid : -1;
    const bits = uid === identity.uid ? (st.mode >> 6) & 7 : gid === identity.gid ? (st.mode >> 3) & 7 : st.mode & 7;
    if ((bits & 1) === 0) return false;
  }
  return true;
}
