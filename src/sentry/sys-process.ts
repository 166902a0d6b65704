// execve and execveat: the sentry checks what would run; the kernel runs it inside the container's confinement.
import { AT_EMPTY_PATH, AT_EACCESS, AT_FDCWD, AT_SYMLINK_NOFOLLOW, EACCES, EINVAL, ELOOP, ENOENT, O_NOFOLLOW, O_PATH, S_IFLNK, S_IFMT, S_IFREG, X_OK } from '../abi/linux/constants';
import type { Sentry } from './kernel';
import { NR } from './native';
import { continueBecause, intArg, uintArg, type Notification, type Reply } from './notification';
import type { Handler } from './handlers';

/**
 * The one place the design allows the kernel to act on a path after the sentry: an exec cannot be
 * performed by another process on the caller's behalf. The sentry has checked that the path names
 * a regular file the caller may execute; the kernel resolves it again in the caller's mount
 * namespace, which holds only the container's root, and the new program keeps the filter, the
 * namespaces, the cgroup and no_new_privs (no setuid or file-capability gain). A path swapped
 * after the check can only name another file in the same root, which the caller could exec anyway.
 */
const EXEC_IN_CALLER = continueBecause('exec: checked, then performed by the kernel inside the root under the same filter and no_new_privs');

/**
 * An exec of /proc/PID/exe: the caller's path now names an exec link, "/proc/N" -> the program's
 * path in the root (exec-links.ts), which the kernel walks as it walks any exec's path. A path
 * swapped after the rewrite is any other path of the caller's namespace, as above.
 */
const REEXEC_IN_CALLER = continueBecause('exec of /proc/PID/exe: the path rewritten to an exec link to the program\'s path in the root, then performed by the kernel as any exec');

const statBuf = Buffer.alloc(144);
const namedBuf = Buffer.alloc(144);

/** Whether the object `fd` holds is a regular file the caller may execute: 0, or the errno an exec gets. */
function executable(s: Sentry, fd: number): number {
  const res = s.k.sys(NR.newfstatat, fd, '', statBuf, AT_EMPTY_PATH);
  if (res < 0) return res;
  const type = statBuf.readUInt32LE(24) & S_IFMT;
  if (type === S_IFLNK) return -ELOOP;
  if (type !== S_IFREG) return -EACCES;
  return s.k.sys(NR.faccessat2, fd, '', X_OK, AT_EMPTY_PATH | AT_EACCESS);
}

/**
 * execve of /proc/PID/exe (`link`, with /proc/self made the caller's pid), which the kernel could
 * not walk in a namespace without procfs. The program the link names, opened as the caller (the
 * kernel's ptrace check on PID applies), must be one the caller may execute, and reachable in
 * the root by the path procfs gives for it (not deleted, not outside the root): the sentry checks
 * that path leads to the same file, links it under a name that fits in the caller's string
 * (`room` bytes), writes that name over the string and lets the kernel exec it.
 */
function reexec(s: Sentry, n: Notification, addr: bigint, link: string, room: number): Reply {
  const links = s.execLinks;
  const fd = s.openExe(link);
  if (links === undefined || fd === undefined) return -ELOOP;
  if (fd < 0) return fd;
  let res = executable(s, fd);
  const where = res < 0 ? res : s.readExeLink(link) ?? -ENOENT;
  if (typeof where === 'number' || !where.startsWith('/') || where.endsWith(' (deleted)')) {
    s.close(fd);
    return typeof where === 'number' ? where : -ENOENT;
  }
  // The path procfs gave must still lead to that very file: it is what the kernel will walk.
  const named = s.open({ inRoot: true, path: where }, O_PATH, 0);
  res = named < 0 ? named : s.k.sys(NR.newfstatat, named, '', namedBuf, AT_EMPTY_PATH);
  if (named >= 0) s.close(named);
  s.k.sys(NR.newfstatat, fd, '', statBuf, AT_EMPTY_PATH);
  s.close(fd);
  const same = res >= 0 && s.kernelMayFinish() && statBuf.subarray(0, 16).equals(namedBuf.subarray(0, 16)); // st_dev, st_ino
  if (!same) return -ENOENT;
  const alias = s.onHost(() => links.linkTo(where));
  if (typeof alias === 'number') return alias;
  // A relative path ("exe" from a /proc/self directory) may leave no room: refused as before.
  if (Buffer.byteLength(alias) > room) return -EACCES;
  const w = s.rewriteString(n, addr, alias);
  return w < 0 ? w : REEXEC_IN_CALLER;
}

function exec(s: Sentry, n: Notification, dirfd: number, addr: bigint, flags: number): Reply {
  if ((flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) !== 0) return -EINVAL;
  const path = addr === 0n ? '' : s.readPath(n, addr);
  if (typeof path === 'number') return path;
  const t = s.target(n, dirfd, path, (flags & AT_EMPTY_PATH) !== 0);
  if (typeof t === 'number') return t;
  const r = s.asCaller(n, false);
  if (r < 0) return r;
  // ASCII only: then the string's length is the bytes the caller's string holds, all the rewrite may cover.
  if (t.inRoot && s.execLinks !== undefined && s.isExeLink(t.path) && (flags & AT_SYMLINK_NOFOLLOW) === 0 && /^[\x01-\x7f]*$/.test(path)) {
    return reexec(s, n, addr, t.path, path.length);
  }
  const fd = s.open(t, O_PATH | ((flags & AT_SYMLINK_NOFOLLOW) !== 0 ? O_NOFOLLOW : 0), 0);
  if (fd < 0) return fd;
  // Nothing of /proc or /sys is a program, and from a directory of them the kernel's walk would not be the sentry's.
  if (!s.kernelMayFinish()) {
    s.close(fd);
    return -EACCES;
  }
  const res = executable(s, fd);
  s.close(fd);
  return res < 0 ? res : EXEC_IN_CALLER;
}

export const PROCESS_HANDLERS: Readonly<Record<string, Handler>> = {
  execve: (s, n) => exec(s, n, AT_FDCWD, n.args[0], 0),
  execveat: (s, n) => exec(s, n, intArg(n.args[0]), n.args[1], uintArg(n.args[4])),
};
