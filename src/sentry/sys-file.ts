// File-system syscalls, served by the sentry: every path is read once, resolved in the root, and operated on as the caller.
//
// The shape of every handler: read the path from the caller's memory (Sentry.readPath, which checks
// the notification is still live), find what it names (Sentry.target), take the caller's identity
// (Sentry.asCaller), then act on a descriptor the sentry opened with RESOLVE_IN_ROOT |
// RESOLVE_NO_MAGICLINKS. A second thread rewriting the path after the notification changes nothing:
// the sentry acts on its own copy, and on the object it opened, never on the path again.
import {
  AT_EMPTY_PATH, AT_EACCESS, EACCES, EFAULT, ENXIO, AT_FDCWD, AT_REMOVEDIR, AT_SYMLINK_FOLLOW, AT_SYMLINK_NOFOLLOW, E2BIG, EBADF, EBUSY, EEXIST, EISDIR,
  EINVAL, ELOOP, ENAMETOOLONG, ENOENT, ENOTDIR, EPERM, ERANGE, EXDEV, O_ACCMODE, O_CREAT, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK, O_PATH, O_TMPFILE, O_WRONLY, O_TRUNC, PATH_MAX,
  RESOLVE_BENEATH, RESOLVE_IN_ROOT, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG,
} from '../abi/linux/constants';
import { STAT_MODE, STAT_SIZE, STATFS_SIZE, STATX_SIZE } from '../abi/linux/structs';
import type { Sentry, Target } from './kernel';
import { NR } from './native';
import { continueBecause, intArg, uintArg, type Notification, type Reply } from './notification';
import type { Handler } from './handlers';
import { openGenerated, statGenerated, statxGenerated } from './procfs';
import { openInsteadOfKernel } from './owned-open';
import { openCallerFd } from './caller-fd';
import { lookupOrCreate, reopenAsCaller, type Lookup } from './open-as-caller';

const XATTR_NAME_MAX = 255;
const XATTR_SIZE_MAX = 65536;
const IN_DONT_FOLLOW = 0x02000000;
const AT_STATX_SYNC_TYPE = 0x6000;

const statBuf = Buffer.alloc(STATX_SIZE);
const dataBuf = Buffer.alloc(XATTR_SIZE_MAX);

/**
 * A device node reached by a path in the root opens in the caller itself. Opened by the sentry, a
 * terminal would become the sentry's (/dev/tty would name the sentry's own controlling terminal,
 * which it has none of), and the device cgroup, which allows or refuses a device's open, checks the
 * opener: the sentry is not in the container's device cgroup. Which nodes exist at all is the mount
 * namespace's (the root only, no procfs or sysfs) and the device cgroup's to decide, and the kernel
 * re-checks the caller's permissions. FIFOs and O_PATH opens are the sentry's (owned-open.ts).
 */
const OPEN_IN_CALLER = continueBecause('a device node opens in the caller (its device cgroup and mount namespace confine it)');

/**
 * The working directory is the caller's kernel state: the sentry checked that the path names a
 * directory the caller may search, and the kernel resolves it again inside the caller's root,
 * whose mount namespace holds nothing else, so the worst a swapped path can reach is another
 * directory in the same root.
 */
const CHDIR_IN_CALLER = continueBecause('the cwd is the caller\'s own: checked, then set by the kernel inside the root');

/**
 * An O_PATH open of an object the caller may not read (a 0000 file, a 0711 directory), of a symlink
 * itself (O_NOFOLLOW), of a device or a socket: the sentry serves O_PATH opens with a read-only open
 * of the object it pinned (NOTIF_ADDFD cannot install an O_PATH file), which these refuse, and
 * O_PATH asks for no permission. It grants no
 * access, only a name; the kernel opens it again inside the caller's root, whose mount namespace
 * holds no procfs or sysfs: what the caller could name there with its own search permission.
 */
const PATH_IN_CALLER = continueBecause('O_PATH of an object the sentry cannot open for reading (unreadable, a symlink, a device, a socket): no access, only a name; opened by the kernel inside the root');

/** getcwd reads no argument from the caller and reports only the caller's own view of its root. */
const GETCWD_IN_CALLER = continueBecause('reads nothing from the caller, reveals only its own root');

function fileType(): number {
  return statBuf.readUInt32LE(STAT_MODE) & S_IFMT;
}

function fstatEmpty(s: Sentry, fd: number): number {
  return s.k.sys(NR.newfstatat, fd, '', statBuf, AT_EMPTY_PATH);
}

/** Reads the path at `addr` and finds what it names; `emptyPath`: an empty path means dirfd itself. */
function targetOf(s: Sentry, n: Notification, dirfd: number, addr: bigint, emptyPath = false): Target | number {
  if (addr === 0n && emptyPath) return s.target(n, dirfd, '', true);
  const path = s.readPath(n, addr);
  if (typeof path === 'number') return path;
  return s.target(n, dirfd, path, emptyPath);
}

/** Opens what a path names as O_PATH, as the caller; the descriptor, or a negative errno. */
function openPath(s: Sentry, n: Notification, dirfd: number, addr: bigint, nofollow: boolean, emptyPath = false): number {
  const t = targetOf(s, n, dirfd, addr, emptyPath);
  if (typeof t === 'number') return t;
  const r = s.asCaller(n, false);
  if (r < 0) return r;
  return s.open(t, O_PATH | (nofollow ? O_NOFOLLOW : 0), 0);
}

/** Runs `op` on an O_PATH descriptor of the path, then closes it. */
function withPath(s: Sentry, n: Notification, dirfd: number, addr: bigint, nofollow: boolean, op: (fd: number) => number, emptyPath = false): number {
  const fd = openPath(s, n, dirfd, addr, nofollow, emptyPath);
  if (fd < 0) return fd;
  const r = op(fd);
  s.close(fd);
  return r;
}

interface Parent {
  readonly fd: number;
  readonly base: string;
}

/**
 * The directory a path's last component lives in, opened O_PATH, and that component: what
 * creating, removing and renaming act on. The last component is looked up by the kernel in a
 * directory the sentry holds, one name with no slash, so it cannot lead out of the root.
 */
function parentOf(s: Sentry, n: Notification, dirfd: number, addr: bigint, creates: boolean): Parent | number {
  const t = targetOf(s, n, dirfd, addr);
  if (typeof t === 'number') return t;
  if (!t.inRoot) return -EXDEV;
  const p = t.path.replace(/\/+$/, '');
  if (p === '') return -EBUSY;
  const slash = p.lastIndexOf('/');
  const base = p.slice(slash + 1);
  if (base === '.' || base === '..') return -EINVAL;
  const r = s.asCaller(n, creates);
  if (r < 0) return r;
  const fd = s.open({ inRoot: true, path: slash <= 0 ? '/' : p.slice(0, slash) }, O_PATH | O_DIRECTORY, 0);
  return fd < 0 ? fd : { fd, base };
}

function withParent(s: Sentry, n: Notification, dirfd: number, addr: bigint, creates: boolean, op: (p: Parent) => number): number {
  const p = parentOf(s, n, dirfd, addr, creates);
  if (typeof p === 'number') return p;
  const r = op(p);
  s.close(p.fd);
  return r;
}

// ---- open ---------------------------------------------------------------------------------------

function openFile(s: Sentry, n: Notification, dirfd: number, addr: bigint, flags: number, mode: number, resolve: number): Reply {
  const path = s.readPath(n, addr);
  if (typeof path === 'number') return path;
  const cloexec = (flags & 0o2000000) !== 0;
  const creates = (flags & O_CREAT) !== 0 || (flags & O_TMPFILE) === O_TMPFILE;
  // The caller's own RESOLVE_BENEATH or RESOLVE_IN_ROOT confine it below its dirfd: the sentry
  // resolves below that directory too, with the caller's flags and its own.
  if ((resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT)) !== 0) {
    const dir = s.target(n, dirfd, '', true);
    if (typeof dir === 'number') return dir;
    // Beneath a directory of /proc or /sys the caller holds: a shadow, which only the sentry may walk.
    if (!dir.inRoot && s.ownedObject(dir.path)) return -EXDEV;
    const r = s.asCaller(n, creates);
    if (r < 0) return r;
    const dfd = s.open(dir, O_PATH | O_DIRECTORY, 0);
    if (dfd < 0) return dfd;
    // An absolute symlink below it leads to dfd itself with RESOLVE_IN_ROOT; RESOLVE_BENEATH refuses it.
    const absolute = (resolve & RESOLVE_IN_ROOT) !== 0 ? (text: string): string => text : undefined;
    const reply = openAt(s, n, (p, f, m) => s.openBeneath(dfd, p, f, m, resolve), path, flags, mode, cloexec, absolute);
    s.close(dfd);
    return reply;
  }
  const t = s.target(n, dirfd, path, false);
  if (typeof t === 'number') return t;
  const r = s.asCaller(n, creates);
  if (r < 0) return r;
  // The caller's own descriptor by its magic link: its object, taken from it (caller-fd.ts).
  if (t.callerFd !== undefined) return openCallerFd(s, n, t.callerFd, flags, mode, cloexec);
  // A process's executable, read (a program reading itself): see Sentry.openExe.
  if (t.inRoot && (flags & (O_ACCMODE | O_CREAT | O_TRUNC | O_PATH | O_TMPFILE)) === 0) {
    const exe = s.openExe(t.path);
    if (exe !== undefined) return exe < 0 ? exe : { kind: 'inject', fd: exe, cloexec };
  }
  return openAt(s, n, (p, f, m) => s.open({ inRoot: t.inRoot, path: p }, f, m), t.path, flags, mode, cloexec, (text) => text);
}

/**
 * Opens `path` as `lookup` resolves it, as the caller (asCaller ran). First the object, without
 * opening it: an O_PATH descriptor has no side effects on a FIFO, a tape or a terminal. What is
 * opened then is exactly what was looked at, through that descriptor, after the checks of its type;
 * what O_CREAT creates is a new file, never something a racing thread put there (open-as-caller.ts).
 */
function openAt(s: Sentry, n: Notification, lookup: Lookup, path: string, flags: number, mode: number, cloexec: boolean,
  absolute: ((text: string) => string) | undefined): Reply {
  if ((flags & O_TMPFILE) === O_TMPFILE) {
    // O_TMPFILE names a directory (it holds O_DIRECTORY) and makes a new file: nothing there is opened.
    const fd = lookup(path, flags, mode);
    return fd < 0 ? fd : { kind: 'inject', fd, cloexec };
  }
  const found = lookupOrCreate(s, lookup, path, flags, mode, absolute);
  if (typeof found === 'number') return found;
  if ('created' in found) return { kind: 'inject', fd: found.created, cloexec };
  const pfd = found.pinned;
  // A namespace file, which stat and access may look at, is not handed out.
  if (s.landedNamespace) {
    s.close(pfd);
    return -ELOOP;
  }
  // Not finished by the kernel, which would walk the path again: served on the pinned object. But
  // the open served is a read-only one, which an object the caller may not read refuses (EACCES),
  // and a symlink itself (ELOOP), a device or a socket (ENXIO) have none to give, where O_PATH asks
  // for no permission and opens anything: such an object is the kernel's to open (PATH_IN_CALLER).
  // glibc's fchmodat(AT_SYMLINK_NOFOLLOW) and lchmod open a symlink so, and tar calls them.
  if ((flags & O_PATH) !== 0) {
    const mayFinish = s.kernelMayFinish();
    const reply = openInsteadOfKernel(s, n, pfd, flags, cloexec);
    return (reply === -EACCES || reply === -ELOOP || reply === -ENXIO) && mayFinish ? PATH_IN_CALLER : reply;
  }
  const r2 = fstatEmpty(s, pfd);
  if (r2 < 0) {
    s.close(pfd);
    return r2;
  }
  const type = fileType();
  if (type === S_IFLNK) {
    s.close(pfd);
    return -ELOOP;
  }
  if (type !== S_IFREG && type !== S_IFDIR) {
    if (type === S_IFIFO || !s.kernelMayFinish()) return openInsteadOfKernel(s, n, pfd, flags, cloexec);
    s.close(pfd);
    return OPEN_IN_CALLER;
  }
  // A directory of /proc or /sys: the caller gets its shadow, never the real one.
  if (type === S_IFDIR && s.landedIn !== undefined) return openInsteadOfKernel(s, n, pfd, flags, cloexec);
  // A file of the /proc the sentry owns that it generates (procfs.ts): its content, not the host's.
  if (type === S_IFREG) {
    const generated = openGenerated(s, n.pid, pfd, statBuf, flags, cloexec);
    if (generated !== undefined) {
      s.close(pfd);
      return generated;
    }
  }
  return reopenAsCaller(s, n, pfd, type, flags, mode, cloexec);
}

// ---- metadata -----------------------------------------------------------------------------------

function statInto(s: Sentry, n: Notification, dirfd: number, addr: bigint, out: bigint, flags: number): number {
  const nofollow = (flags & AT_SYMLINK_NOFOLLOW) !== 0;
  const t = targetOf(s, n, dirfd, addr, (flags & AT_EMPTY_PATH) !== 0);
  if (typeof t === 'number') return t;
  let r = s.asCaller(n, false);
  if (r < 0) return r;
  if (!t.inRoot && !nofollow) {
    // The caller's own fd (fstat, as glibc makes it: newfstatat(fd, "", AT_EMPTY_PATH)): one step.
    r = s.onHost(() => s.k.sys(NR.newfstatat, AT_FDCWD, t.path, statBuf, 0));
    // A shadow of an owned directory: what it stands for.
    const owned = r < 0 ? undefined : s.shadowStat(statBuf);
    if (owned !== undefined) {
      const fd = s.open({ inRoot: true, path: owned }, O_PATH, 0);
      if (fd < 0) return fd;
      r = fstatEmpty(s, fd);
      s.close(fd);
    }
  } else {
    const fd = s.open(t, O_PATH | (nofollow ? O_NOFOLLOW : 0), 0);
    if (fd < 0) return fd;
    r = fstatEmpty(s, fd);
    if (r >= 0) statGenerated(s, fd, statBuf);
    s.close(fd);
  }
  if (r < 0) return r;
  return s.writeBack(n, out, statBuf, STAT_SIZE);
}

function statxInto(s: Sentry, n: Notification): number {
  const [a0, a1, a2, a3, a4] = n.args;
  const flags = uintArg(a2);
  const sync = flags & AT_STATX_SYNC_TYPE;
  const r = withPath(s, n, intArg(a0), a1, (flags & AT_SYMLINK_NOFOLLOW) !== 0,
    (fd) => {
      const st = s.k.sys(NR.statx, fd, '', AT_EMPTY_PATH | sync, uintArg(a3), statBuf);
      if (st >= 0) statxGenerated(s, fd, statBuf);
      return st;
    }, (flags & AT_EMPTY_PATH) !== 0);
  return r < 0 ? r : s.writeBack(n, a4, statBuf, STATX_SIZE);
}

function access(s: Sentry, n: Notification, dirfd: number, addr: bigint, mode: number, flags: number): number {
  // AT_EACCESS: the sentry's thread carries the caller's ids as its fs ids; its real ids are root's.
  return withPath(s, n, dirfd, addr, (flags & AT_SYMLINK_NOFOLLOW) !== 0,
    (fd) => (mode === 0 ? 0 : s.k.sys(NR.faccessat2, fd, '', mode, AT_EMPTY_PATH | AT_EACCESS)), (flags & AT_EMPTY_PATH) !== 0);
}

function readlink(s: Sentry, n: Notification, dirfd: number, addr: bigint, out: bigint, size: number): number {
  if (size <= 0) return -EINVAL;
  const len = Math.min(size, PATH_MAX);
  const path = addr === 0n ? -EFAULT : s.readPath(n, addr);
  if (typeof path === 'number') return path;
  const t = s.target(n, dirfd, path, true);
  if (typeof t === 'number') return t;
  let r = s.asCaller(n, false);
  if (r < 0) return r;
  const shadow = t.inRoot ? undefined : s.shadowLink(t.path);
  if (path === '') {
    // The object dirfd (or the cwd) holds: its text if it is a symlink (an O_PATH | O_NOFOLLOW
    // fd of one), else ENOENT, as the kernel says; never the text of the /proc link that names it.
    if (shadow !== undefined) return -ENOENT;
    const fd = s.open(t, O_PATH, 0);
    if (fd < 0) return fd;
    r = s.k.sys(NR.readlinkat, fd, '', dataBuf, len);
    s.close(fd);
  } else if (shadow !== undefined) {
    // The fd of a shadow of /proc or /sys reads as the directory it stands for, as procfs's would.
    r = Math.min(dataBuf.write(shadow, 0), len);
  } else if (!t.inRoot) r = s.onHost(() => s.k.sys(NR.readlinkat, AT_FDCWD, t.path, dataBuf, len));
  else {
    const fd = s.open(t, O_PATH | O_NOFOLLOW, 0);
    if (fd < 0) return fd;
    r = s.k.sys(NR.readlinkat, fd, '', dataBuf, len);
    s.close(fd);
    // readlinkat(fd, "") says ENOENT for an fd that is not a symlink; readlink(path) says EINVAL.
    if (r === -ENOENT) r = -EINVAL;
  }
  if (r < 0) return r;
  const w = s.writeBack(n, out, dataBuf, r);
  return w < 0 ? w : r;
}

function statfs(s: Sentry, n: Notification, dirfd: number, addr: bigint, out: bigint): number {
  const r = withPath(s, n, dirfd, addr, false, (fd) => s.k.sys(NR.fstatfs, fd, statBuf), addr === 0n);
  return r < 0 ? r : s.writeBack(n, out, statBuf, STATFS_SIZE);
}

// ---- changing the tree --------------------------------------------------------------------------

function mkdirAt(s: Sentry, n: Notification, dirfd: number, addr: bigint, mode: number): number {
  const r = withParent(s, n, dirfd, addr, true, (p) => s.k.sys(NR.mkdirat, p.fd, p.base, mode));
  // "/", "." and "..": what mkdir says of a directory that is there.
  return r === -EINVAL || r === -EBUSY ? -EEXIST : r;
}

function mknodAt(s: Sentry, n: Notification, dirfd: number, addr: bigint, mode: number): number {
  const type = mode & S_IFMT;
  // Regular files and FIFOs only: a device node would reach past the device cgroup's list of
  // what may be opened only if mknod were allowed, and sockets are made by bind.
  if (type !== 0 && type !== S_IFREG && type !== S_IFIFO) return -EPERM;
  return withParent(s, n, dirfd, addr, true, (p) => s.k.sys(NR.mknodat, p.fd, p.base, mode, 0));
}

function unlinkAt(s: Sentry, n: Notification, dirfd: number, addr: bigint, flags: number): number {
  if ((flags & ~AT_REMOVEDIR) !== 0) return -EINVAL;
  return withParent(s, n, dirfd, addr, false, (p) => s.k.sys(NR.unlinkat, p.fd, p.base, flags));
}

function renameAt(s: Sentry, n: Notification, od: number, oa: bigint, nd: number, na: bigint, flags: number): number {
  const from = parentOf(s, n, od, oa, false);
  if (typeof from === 'number') return from;
  const r = withParent(s, n, nd, na, true, (to) => s.k.sys(NR.renameat2, from.fd, from.base, to.fd, to.base, flags));
  s.close(from.fd);
  return r;
}

function linkAt(s: Sentry, n: Notification, od: number, oa: bigint, nd: number, na: bigint, flags: number): number {
  if ((flags & ~(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) !== 0) return -EINVAL;
  if ((flags & (AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) !== 0) {
    // The source as an object: linked through the descriptor the sentry opened.
    const src = openPath(s, n, od, oa, false, (flags & AT_EMPTY_PATH) !== 0);
    if (src < 0) return src;
    // AT_EMPTY_PATH asks for CAP_DAC_READ_SEARCH (ENOENT without it); following a link does not,
    // and an O_TMPFILE file is linked into place through /proc/self/fd/N that way. So the caller's
    // AT_SYMLINK_FOLLOW follows the sentry's own link to the object, as the caller, and only the
    // caller's AT_EMPTY_PATH is checked as AT_EMPTY_PATH.
    const byLink = (flags & AT_EMPTY_PATH) === 0;
    const r = withParent(s, n, nd, na, true, (to) => (byLink
      ? s.k.sys(NR.linkat, AT_FDCWD, `/proc/thread-self/fd/${src}`, to.fd, to.base, AT_SYMLINK_FOLLOW)
      : s.k.sys(NR.linkat, src, '', to.fd, to.base, AT_EMPTY_PATH)));
    s.close(src);
    return r;
  }
  const from = parentOf(s, n, od, oa, false);
  if (typeof from === 'number') return from;
  const r = withParent(s, n, nd, na, true, (to) => s.k.sys(NR.linkat, from.fd, from.base, to.fd, to.base, 0));
  s.close(from.fd);
  return r;
}

function symlinkAt(s: Sentry, n: Notification, targetAddr: bigint, nd: number, na: bigint): number {
  // The link's text is stored, not resolved: it is resolved in the root whenever it is followed.
  const text = s.readPath(n, targetAddr);
  if (typeof text === 'number') return text;
  return withParent(s, n, nd, na, true, (p) => s.k.sys(NR.symlinkat, text, p.fd, p.base));
}

function chmodAt(s: Sentry, n: Notification, dirfd: number, addr: bigint, mode: number, flags: number): number {
  const nofollow = (flags & AT_SYMLINK_NOFOLLOW) !== 0;
  return withPath(s, n, dirfd, addr, nofollow,
    (fd) => s.k.sys(NR.fchmodat2, fd, '', mode, AT_EMPTY_PATH | (nofollow ? AT_SYMLINK_NOFOLLOW : 0)), (flags & AT_EMPTY_PATH) !== 0);
}

function chownAt(s: Sentry, n: Notification, dirfd: number, addr: bigint, uid: number, gid: number, flags: number): number {
  return withPath(s, n, dirfd, addr, (flags & AT_SYMLINK_NOFOLLOW) !== 0,
    (fd) => s.k.sys(NR.fchownat, fd, '', uid, gid, AT_EMPTY_PATH), (flags & AT_EMPTY_PATH) !== 0);
}

function truncatePath(s: Sentry, n: Notification, addr: bigint, length: bigint): number {
  return withPath(s, n, AT_FDCWD, addr, false, (pfd) => {
    const r = fstatEmpty(s, pfd);
    if (r < 0) return r;
    const type = fileType();
    if (type === S_IFDIR) return -EISDIR;
    if (type !== S_IFREG) return -EINVAL;
    // O_NONBLOCK: a lease on the file answers EWOULDBLOCK at once, where the open would wait for
    // it to be broken with the serving thread (open-as-caller.ts).
    const fd = s.openHost(`/proc/self/fd/${pfd}`, O_WRONLY | O_NONBLOCK, 0);
    if (fd < 0) return fd;
    const t = s.k.sys(NR.ftruncate, fd, length);
    s.close(fd);
    return t;
  });
}

/** utimensat's two timespecs from what each older call passes; null means "now". */
function timesFrom(s: Sentry, n: Notification, addr: bigint, kind: 'timespec' | 'timeval' | 'utimbuf'): Buffer | null | number {
  if (addr === 0n) return null;
  const len = kind === 'utimbuf' ? 16 : 32;
  const raw = s.readStruct(n, addr, len);
  if (typeof raw === 'number') return raw;
  if (kind === 'timespec') return raw;
  const ts = Buffer.alloc(32);
  for (let i = 0; i < 2; i++) {
    if (kind === 'utimbuf') {
      ts.writeBigInt64LE(raw.readBigInt64LE(8 * i), 16 * i);
    } else {
      ts.writeBigInt64LE(raw.readBigInt64LE(16 * i), 16 * i);
      ts.writeBigInt64LE(raw.readBigInt64LE(16 * i + 8) * 1000n, 16 * i + 8);
    }
  }
  return ts;
}

function utimesAt(s: Sentry, n: Notification, dirfd: number, addr: bigint, times: Buffer | null | number, flags: number): number {
  if (typeof times === 'number') return times;
  if ((flags & ~(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) !== 0) return -EINVAL;
  return withPath(s, n, dirfd, addr, (flags & AT_SYMLINK_NOFOLLOW) !== 0,
    (fd) => s.k.sys(NR.utimensat, fd, '', times, AT_EMPTY_PATH | (flags & AT_SYMLINK_NOFOLLOW)), addr === 0n || (flags & AT_EMPTY_PATH) !== 0);
}

// ---- extended attributes --------------------------------------------------------------------------

/**
 * The xattr calls take a path, so they go through the sentry's own /proc/self/fd link to the
 * object it opened. On a symlink itself (the l* calls) that link leads to the symlink's target's
 * magic link instead: those calls answer only for non-symlinks for now.
 */
function xattrName(s: Sentry, n: Notification, addr: bigint): string | number {
  const name = s.readPath(n, addr);
  if (typeof name === 'number') return name === -ENAMETOOLONG ? -ERANGE : name;
  return name.length > XATTR_NAME_MAX ? -ERANGE : name;
}

function getxattr(s: Sentry, n: Notification, target: Target | number, nameAddr: bigint, out: bigint, size: number): number {
  if (typeof target === 'number') return target;
  const name = xattrName(s, n, nameAddr);
  if (typeof name === 'number') return name;
  const len = Math.min(size, XATTR_SIZE_MAX);
  const r = onObject(s, n, target, (path) => s.k.sys(NR.getxattr, path, name, len === 0 ? null : dataBuf, len));
  if (r < 0 || len === 0) return r;
  const w = s.writeBack(n, out, dataBuf, r);
  return w < 0 ? w : r;
}

function setxattr(s: Sentry, n: Notification, target: Target | number, nameAddr: bigint, valueAddr: bigint, size: number, flags: number): number {
  if (typeof target === 'number') return target;
  const name = xattrName(s, n, nameAddr);
  if (typeof name === 'number') return name;
  if (size > XATTR_SIZE_MAX) return -E2BIG;
  const value = size === 0 ? Buffer.alloc(0) : s.readStruct(n, valueAddr, size);
  if (typeof value === 'number') return value;
  return onObject(s, n, target, (path) => s.k.sys(NR.setxattr, path, name, value, size, flags));
}

function listxattr(s: Sentry, n: Notification, target: Target | number, out: bigint, size: number): number {
  if (typeof target === 'number') return target;
  const len = Math.min(size, XATTR_SIZE_MAX);
  const r = onObject(s, n, target, (path) => s.k.sys(NR.listxattr, path, len === 0 ? null : dataBuf, len));
  if (r < 0 || len === 0) return r;
  const w = s.writeBack(n, out, dataBuf, r);
  return w < 0 ? w : r;
}

function removexattr(s: Sentry, n: Notification, target: Target | number, nameAddr: bigint): number {
  if (typeof target === 'number') return target;
  const name = xattrName(s, n, nameAddr);
  if (typeof name === 'number') return name;
  return onObject(s, n, target, (path) => s.k.sys(NR.removexattr, path, name));
}

/** Runs op on a host path that leads to the object the target names, as the caller. */
function onObject(s: Sentry, n: Notification, t: Target, op: (hostPath: string) => number): number {
  const r = s.asCaller(n, false);
  if (r < 0) return r;
  const fd = s.open(t, O_PATH, 0);
  if (fd < 0) return fd;
  const res = op(`/proc/self/fd/${fd}`);
  s.close(fd);
  return res;
}

function pathTarget(s: Sentry, n: Notification, addr: bigint): Target | number {
  return targetOf(s, n, AT_FDCWD, addr);
}

function fdTarget(s: Sentry, n: Notification, fd: number): Target | number {
  return fd < 0 ? -EBADF : s.target(n, fd, '', true);
}

// ---- inotify ------------------------------------------------------------------------------------

function inotifyAddWatch(s: Sentry, n: Notification): number {
  const [a0, a1, a2] = n.args;
  const mask = uintArg(a2);
  const pidfd = s.k.sys(NR.pidfd_open, n.pid, 0);
  if (pidfd < 0) return pidfd;
  // The caller's inotify instance, taken for the one call; the watch lands in it.
  const ifd = s.k.sys(NR.pidfd_getfd, pidfd, intArg(a0), 0);
  s.close(pidfd);
  if (ifd < 0) return ifd === -EBADF ? -EBADF : ifd;
  const r = withPath(s, n, AT_FDCWD, a1, (mask & IN_DONT_FOLLOW) !== 0,
    (fd) => s.k.sys(NR.inotify_add_watch, ifd, `/proc/self/fd/${fd}`, mask & ~IN_DONT_FOLLOW));
  s.close(ifd);
  return r;
}

// ---- the table's file family ------------------------------------------------------------------------

const a = (n: Notification, i: 0 | 1 | 2 | 3 | 4 | 5): bigint => n.args[i];

export const FILE_HANDLERS: Readonly<Record<string, Handler>> = {
  open: (s, n) => openFile(s, n, AT_FDCWD, a(n, 0), uintArg(a(n, 1)), uintArg(a(n, 2)), 0),
  openat: (s, n) => openFile(s, n, intArg(a(n, 0)), a(n, 1), uintArg(a(n, 2)), uintArg(a(n, 3)), 0),
  creat: (s, n) => openFile(s, n, AT_FDCWD, a(n, 0), O_CREAT | O_WRONLY | O_TRUNC, uintArg(a(n, 1)), 0),
  openat2: (s, n) => {
    const size = Number(a(n, 3));
    if (size < 24) return -EINVAL;
    const how = s.readStruct(n, a(n, 2), 24);
    if (typeof how === 'number') return how;
    const flags = how.readBigUInt64LE(0);
    const mode = how.readBigUInt64LE(8);
    if (flags > 0xffffffffn || mode > 0o7777n) return -EINVAL;
    return openFile(s, n, intArg(a(n, 0)), a(n, 1), Number(flags), Number(mode), Number(how.readBigUInt64LE(16)));
  },

  stat: (s, n) => statInto(s, n, AT_FDCWD, a(n, 0), a(n, 1), 0),
  lstat: (s, n) => statInto(s, n, AT_FDCWD, a(n, 0), a(n, 1), AT_SYMLINK_NOFOLLOW),
  newfstatat: (s, n) => statInto(s, n, intArg(a(n, 0)), a(n, 1), a(n, 2), uintArg(a(n, 3))),
  statx: statxInto,
  access: (s, n) => access(s, n, AT_FDCWD, a(n, 0), uintArg(a(n, 1)), 0),
  faccessat: (s, n) => access(s, n, intArg(a(n, 0)), a(n, 1), uintArg(a(n, 2)), 0),
  faccessat2: (s, n) => access(s, n, intArg(a(n, 0)), a(n, 1), uintArg(a(n, 2)), uintArg(a(n, 3))),
  readlink: (s, n) => readlink(s, n, AT_FDCWD, a(n, 0), a(n, 1), intArg(a(n, 2))),
  readlinkat: (s, n) => readlink(s, n, intArg(a(n, 0)), a(n, 1), a(n, 2), intArg(a(n, 3))),
  statfs: (s, n) => statfs(s, n, AT_FDCWD, a(n, 0), a(n, 1)),

  getcwd: (s, n) => {
    // A cwd that is a shadow of /proc or /sys (fchdir to a directory fd of them): the kernel would
    // name the sentry's tmpfs; the caller's name for it is the directory it stands for.
    const owned = s.shadowCwd(n);
    if (owned === undefined) return GETCWD_IN_CALLER;
    const b = Buffer.from(`${owned}\0`);
    if (b.length > uintArg(a(n, 1))) return -ERANGE;
    const w = s.writeBack(n, a(n, 0), b, b.length);
    return w < 0 ? w : b.length;
  },
  chdir: (s, n) => {
    const d = openPath(s, n, AT_FDCWD, a(n, 0), false);
    // From a shadow cwd the kernel's walk would not be the sentry's, and only the kernel can chdir.
    if (d >= 0 && s.startedOwned) {
      s.close(d);
      return -EXDEV;
    }
    if (d < 0) return d;
    const st = fstatEmpty(s, d);
    s.close(d);
    if (st < 0) return st;
    if (fileType() !== S_IFDIR) return -ENOTDIR;
    return CHDIR_IN_CALLER;
  },
  chroot: () => -EPERM,

  mkdir: (s, n) => mkdirAt(s, n, AT_FDCWD, a(n, 0), uintArg(a(n, 1))),
  mkdirat: (s, n) => mkdirAt(s, n, intArg(a(n, 0)), a(n, 1), uintArg(a(n, 2))),
  mknod: (s, n) => mknodAt(s, n, AT_FDCWD, a(n, 0), uintArg(a(n, 1))),
  mknodat: (s, n) => mknodAt(s, n, intArg(a(n, 0)), a(n, 1), uintArg(a(n, 2))),
  unlink: (s, n) => unlinkAt(s, n, AT_FDCWD, a(n, 0), 0),
  rmdir: (s, n) => unlinkAt(s, n, AT_FDCWD, a(n, 0), AT_REMOVEDIR),
  unlinkat: (s, n) => unlinkAt(s, n, intArg(a(n, 0)), a(n, 1), uintArg(a(n, 2))),
  rename: (s, n) => renameAt(s, n, AT_FDCWD, a(n, 0), AT_FDCWD, a(n, 1), 0),
  renameat: (s, n) => renameAt(s, n, intArg(a(n, 0)), a(n, 1), intArg(a(n, 2)), a(n, 3), 0),
  renameat2: (s, n) => renameAt(s, n, intArg(a(n, 0)), a(n, 1), intArg(a(n, 2)), a(n, 3), uintArg(a(n, 4))),
  link: (s, n) => linkAt(s, n, AT_FDCWD, a(n, 0), AT_FDCWD, a(n, 1), 0),
  linkat: (s, n) => linkAt(s, n, intArg(a(n, 0)), a(n, 1), intArg(a(n, 2)), a(n, 3), uintArg(a(n, 4))),
  symlink: (s, n) => symlinkAt(s, n, a(n, 0), AT_FDCWD, a(n, 1)),
  symlinkat: (s, n) => symlinkAt(s, n, a(n, 0), intArg(a(n, 1)), a(n, 2)),

  chmod: (s, n) => chmodAt(s, n, AT_FDCWD, a(n, 0), uintArg(a(n, 1)), 0),
  fchmodat: (s, n) => chmodAt(s, n, intArg(a(n, 0)), a(n, 1), uintArg(a(n, 2)), 0),
  fchmodat2: (s, n) => chmodAt(s, n, intArg(a(n, 0)), a(n, 1), uintArg(a(n, 2)), uintArg(a(n, 3))),
  fchmod: (s, n) => chmodAt(s, n, intArg(a(n, 0)), 0n, uintArg(a(n, 1)), AT_EMPTY_PATH),
  chown: (s, n) => chownAt(s, n, AT_FDCWD, a(n, 0), intArg(a(n, 1)), intArg(a(n, 2)), 0),
  lchown: (s, n) => chownAt(s, n, AT_FDCWD, a(n, 0), intArg(a(n, 1)), intArg(a(n, 2)), AT_SYMLINK_NOFOLLOW),
  fchownat: (s, n) => chownAt(s, n, intArg(a(n, 0)), a(n, 1), intArg(a(n, 2)), intArg(a(n, 3)), uintArg(a(n, 4))),
  fchown: (s, n) => chownAt(s, n, intArg(a(n, 0)), 0n, intArg(a(n, 1)), intArg(a(n, 2)), AT_EMPTY_PATH),
  truncate: (s, n) => truncatePath(s, n, a(n, 0), a(n, 1)),
  utime: (s, n) => utimesAt(s, n, AT_FDCWD, a(n, 0), timesFrom(s, n, a(n, 1), 'utimbuf'), 0),
  utimes: (s, n) => utimesAt(s, n, AT_FDCWD, a(n, 0), timesFrom(s, n, a(n, 1), 'timeval'), 0),
  futimesat: (s, n) => utimesAt(s, n, intArg(a(n, 0)), a(n, 1), timesFrom(s, n, a(n, 2), 'timeval'), 0),
  utimensat: (s, n) => utimesAt(s, n, intArg(a(n, 0)), a(n, 1), timesFrom(s, n, a(n, 2), 'timespec'), uintArg(a(n, 3))),

  getxattr: (s, n) => getxattr(s, n, pathTarget(s, n, a(n, 0)), a(n, 1), a(n, 2), Number(a(n, 3))),
  lgetxattr: (s, n) => getxattr(s, n, pathTarget(s, n, a(n, 0)), a(n, 1), a(n, 2), Number(a(n, 3))),
  setxattr: (s, n) => setxattr(s, n, pathTarget(s, n, a(n, 0)), a(n, 1), a(n, 2), Number(a(n, 3)), uintArg(a(n, 4))),
  lsetxattr: (s, n) => setxattr(s, n, pathTarget(s, n, a(n, 0)), a(n, 1), a(n, 2), Number(a(n, 3)), uintArg(a(n, 4))),
  fsetxattr: (s, n) => setxattr(s, n, fdTarget(s, n, intArg(a(n, 0))), a(n, 1), a(n, 2), Number(a(n, 3)), uintArg(a(n, 4))),
  listxattr: (s, n) => listxattr(s, n, pathTarget(s, n, a(n, 0)), a(n, 1), Number(a(n, 2))),
  llistxattr: (s, n) => listxattr(s, n, pathTarget(s, n, a(n, 0)), a(n, 1), Number(a(n, 2))),
  removexattr: (s, n) => removexattr(s, n, pathTarget(s, n, a(n, 0)), a(n, 1)),
  lremovexattr: (s, n) => removexattr(s, n, pathTarget(s, n, a(n, 0)), a(n, 1)),
  fremovexattr: (s, n) => removexattr(s, n, fdTarget(s, n, intArg(a(n, 0))), a(n, 1)),

  inotify_add_watch: inotifyAddWatch,
  sync: (s, n) => {
    // syncfs of the workload's root, not a flush of every file system on the host; on a thread of
    // its own (blocking.ts): it waits for the writeback of the whole file system, which a workload
    // that just wrote a lot makes long, and every other caller would wait behind it.
    // syncfs takes a file that is open, not the O_PATH fd the sentry holds of the root (EBADF):
    // the root opened as the sentry, its own, for the one call (a directory's open does not wait).
    const root = s.onHost(() => s.openHost(`/proc/self/fd/${s.rootFd}`, O_DIRECTORY, 0));
    if (root < 0) return root;
    return s.handOff(n, root, 0, false, 'syncfs');
  },
};
