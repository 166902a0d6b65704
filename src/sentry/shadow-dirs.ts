// Directories of the trees the sentry owns (/proc, /sys), as the workload holds them: an empty copy of each listing in a tmpfs of the sentry's, never the real directory.
//
// Why: a directory descriptor is a place the kernel can start a path walk from, and the workload
// can make the kernel walk from any descriptor it holds: openat(dirfd, ...) and fchdir are the
// workload's, and a second thread can swap the descriptor (dup2) or the cwd (fchdir) between the
// sentry's check of a call and the kernel finishing it (CONTINUE). Were it the real procfs or sysfs,
// `..`, a name or a magic link from there would reach what the sentry claims to generate or hides
// (the host's /proc/version and meminfo, /sys/block). A shadow holds the listing's names, each an
// empty directory, an empty read-only file or a symlink that is never followed (the mount is
// nosymfollow): listing it with getdents is the kernel's, and every path from it reaches the sentry,
// which knows which directory of its tree each shadow stands for.
import {
  AT_EMPTY_PATH, AT_REMOVEDIR, EINTR, FSCONFIG_CMD_CREATE, FSCONFIG_SET_STRING, FSMOUNT_CLOEXEC, FSOPEN_CLOEXEC, MOUNT_ATTR_NODEV,
  MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, O_CLOEXEC, O_DIRECTORY, O_PATH, S_IFREG,
} from '../abi/linux/constants';
import { STAT_DEV, STAT_INO, STATX_INO_OFFSET, STATX_MNT_ID, STATX_MNT_ID_OFFSET } from '../abi/linux/structs';
import { NR, type RawSyscall } from './native';

const DT_DIR = 4;
const DT_LNK = 10;
/** Shadows kept at once per Sentry (a listing is read right after it is opened), and their entries at most in all. */
const LIVE = 32;
const LIVE_ENTRIES = 16384;
/** Shadows whose directory they stand for is remembered (a descriptor outliving its shadow's eviction). */
const REMEMBERED = 4096;
/** Entries of one listing at most (a /proc of more processes lists the first ones). */
const MAX_ENTRIES = LIVE_ENTRIES;

/**
 * A tmpfs for shadows: a detached mount of the caller's alone (fsopen, fsmount), nosymfollow,
 * noexec, nosuid, nodev, bounded in inodes and bytes (the shadows' names cost inodes and no pages;
 * a caller can write only into a placeholder a raced walk of the kernel's reached), 0700. Its
 * root's fd, or a negative errno. Needs CAP_SYS_ADMIN, and a thread not yet confined.
 */
export function mountShadowTmpfs(sys: RawSyscall): number {
  const fs = sys(NR.fsopen, 'tmpfs', FSOPEN_CLOEXEC);
  if (fs < 0) return fs;
  let r = 0;
  for (const [key, value] of [['mode', '0700'], ['nr_inodes', '65536'], ['size', '1m']]) {
    if (r >= 0) r = sys(NR.fsconfig, fs, FSCONFIG_SET_STRING, key, value, 0);
  }
  if (r >= 0) r = sys(NR.fsconfig, fs, FSCONFIG_CMD_CREATE, null, null, 0);
  const m = r < 0 ? r : sys(NR.fsmount, fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NOSYMFOLLOW);
  sys(NR.close, fs);
  return m;
}

export interface Entry {
  readonly name: string;
  readonly dir: boolean;
  readonly link: boolean;
}

/** The names in the directory open (O_RDONLY) as `fd`, read with getdents64; the fd is not closed. */
export function readListing(sys: RawSyscall, fd: number, buf: Buffer): Entry[] | number {
  const out: Entry[] = [];
  for (;;) {
    const r = sys(NR.getdents64, fd, buf, buf.length);
    if (r === -EINTR) continue;
    if (r < 0) return r;
    if (r === 0) return out;
    // struct linux_dirent64: u64 d_ino, s64 d_off, u16 d_reclen, u8 d_type, char d_name[]
    for (let off = 0; off < r;) {
      const reclen = buf.readUInt16LE(off + 16);
      const type = buf.readUInt8(off + 18);
      const end = buf.indexOf(0, off + 19);
      const name = buf.toString('utf8', off + 19, end < 0 || end > off + reclen ? off + reclen : end);
      off += reclen;
      if (name === '.' || name === '..') continue;
      if (out.length < MAX_ENTRIES) out.push({ name, dir: type === DT_DIR, link: type === DT_LNK });
    }
  }
}

function sameEntries(a: readonly Entry[], b: readonly Entry[]): boolean {
  return a.length === b.length && a.every((e, i) => {
    const f = b[i];
    return f !== undefined && e.name === f.name && e.dir === f.dir && e.link === f.link;
  });
}

/** The shadow directories of one Sentry, in a directory of its own of the sentry's tmpfs. */
export class ShadowDirs {
  readonly #sys: RawSyscall;
  readonly #root: number;
  readonly #name: string;
  #tree = -1;
  #mntId = -1n;
  #dev = -1n;
  #seq = 0;
  #liveEntries = 0;
  readonly #live: { name: string; path: string; entries: readonly Entry[] }[] = [];
  /** shadow directory's inode -> the directory of the container it stands for */
  readonly #standsFor = new Map<bigint, string>();
  readonly #statx = Buffer.alloc(256);
  readonly #stat = Buffer.alloc(144);

  /** `root`: the sentry's tmpfs (serve.ts makeShadowRoot); `name`: this Sentry's directory in it. */
  constructor(sys: RawSyscall, root: number, name: string) {
    this.#sys = sys;
    this.#root = root;
    this.#name = name;
  }

  /** The tmpfs's mount id: what a caller's cwd or dirfd shows when it is a shadow. */
  get mountId(): bigint {
    if (this.#mntId < 0n) {
      const r = this.#sys(NR.statx, this.#root, '', AT_EMPTY_PATH, STATX_MNT_ID, this.#statx);
      if (r >= 0) this.#mntId = this.#statx.readBigUInt64LE(STATX_MNT_ID_OFFSET);
    }
    return this.#mntId;
  }

  /** The container directory the shadow with inode `ino` stands for, if it is one. */
  standsFor(ino: bigint): string | undefined {
    return this.#standsFor.get(ino);
  }

  /** What a statx buffer of a caller's object (with STATX_MNT_ID) names, when it is a shadow. */
  standsForStatx(statx: Buffer): string | undefined {
    if (statx.readBigUInt64LE(STATX_MNT_ID_OFFSET) !== this.mountId) return undefined;
    return this.#standsFor.get(statx.readBigUInt64LE(STATX_INO_OFFSET));
  }

  /** What a struct stat of a caller's object names, when it is a shadow. */
  standsForStat(stat: Buffer): string | undefined {
    if (this.#dev < 0n) {
      const r = this.#sys(NR.newfstatat, this.#root, '', this.#stat, AT_EMPTY_PATH);
      if (r < 0) return undefined;
      this.#dev = this.#stat.readBigUInt64LE(STAT_DEV);
    }
    if (stat.readBigUInt64LE(STAT_DEV) !== this.#dev) return undefined;
    return this.#standsFor.get(stat.readBigUInt64LE(STAT_INO));
  }

  /**
   * A shadow of `entries` standing for the container directory `path`: an fd of it open O_RDONLY
   * (what the caller gets), or a negative errno. Made with the sentry's own identity.
   */
  make(entries: readonly Entry[], path: string): number {
    const sys = this.#sys;
    if (this.#tree < 0) {
      // 0700: a raced walk of the kernel's from a shadow ("..") takes a non-root caller no further.
      const made = sys(NR.mkdirat, this.#root, this.#name, 0o700);
      if (made < 0 && made !== -17 /* EEXIST */) return made;
      const t = this.#openat(this.#root, this.#name, O_PATH | O_DIRECTORY);
      if (t < 0) return t;
      this.#tree = t;
    }
    // The same directory listed the same way again (a static one of /sys, a process's own fds in a
    // loop): a new fd of the same shadow, one call instead of one per name.
    const same = this.#live.find((l) => l.path === path && sameEntries(l.entries, entries));
    if (same !== undefined) return this.#openat(this.#tree, same.name, O_DIRECTORY);
    while (this.#live.length >= LIVE || (this.#live.length > 0 && this.#liveEntries + entries.length > LIVE_ENTRIES)) this.#evict();
    this.#liveEntries += entries.length;
    const name = String(this.#seq++);
    let r = sys(NR.mkdirat, this.#tree, name, 0o555);
    if (r < 0) return r;
    this.#live.push({ name, path, entries });
    const dir = this.#openat(this.#tree, name, O_PATH | O_DIRECTORY);
    if (dir < 0) return dir;
    // tmpfs lists a directory newest first: made last to first, the shadow lists in the real order
    // (ps shows processes in the order /proc lists them).
    for (let i = entries.length - 1; i >= 0; i--) {
      const e = entries[i] as Entry;
      // A link stays a link for getdents' d_type; its text leads nowhere (nosymfollow anyway).
      r = e.dir ? sys(NR.mkdirat, dir, e.name, 0o555) : e.link ? sys(NR.symlinkat, '.', dir, e.name) : sys(NR.mknodat, dir, e.name, S_IFREG | 0o444, 0);
      if (r < 0 && r !== -17) break;
    }
    const fd = r < 0 && r !== -17 ? r : this.#openat(dir, '.', O_DIRECTORY);
    sys(NR.close, dir);
    if (fd < 0) return fd;
    const st = sys(NR.newfstatat, fd, '', this.#stat, AT_EMPTY_PATH);
    if (st < 0) {
      sys(NR.close, fd);
      return st;
    }
    this.#standsFor.set(this.#stat.readBigUInt64LE(STAT_INO), path);
    if (this.#standsFor.size > REMEMBERED) {
      const oldest = this.#standsFor.keys().next();
      if (oldest.done !== true) this.#standsFor.delete(oldest.value);
    }
    return fd;
  }

  /** Removes the oldest shadow: a caller still holding it lists nothing more, and its paths still lead where they did. */
  #evict(): void {
    const old = this.#live.shift();
    if (old === undefined) return;
    this.#liveEntries -= old.entries.length;
    const dir = this.#openat(this.#tree, old.name, O_PATH | O_DIRECTORY);
    if (dir >= 0) {
      for (const e of old.entries) this.#sys(NR.unlinkat, dir, e.name, e.dir ? AT_REMOVEDIR : 0);
      this.#sys(NR.close, dir);
    }
    // A name the caller made there (a socket it bound from its cwd) keeps the directory: it stays, and costs an inode.
    this.#sys(NR.unlinkat, this.#tree, old.name, AT_REMOVEDIR);
  }

  #openat(dirfd: number, path: string, flags: number): number {
    const how = Buffer.alloc(24);
    how.writeBigUInt64LE(BigInt(flags | O_CLOEXEC), 0);
    // RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS: one name below a directory of the sentry's.
    how.writeBigUInt64LE(0x08n | 0x02n | 0x04n, 16);
    return this.#sys(NR.openat2, dirfd, path, how, 24);
  }
}
