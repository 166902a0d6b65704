// execve and execveat: the sentry checks what would run; the kernel runs it inside the container's confinement.
import { AT_EMPTY_PATH, AT_EACCESS, AT_FDCWD, AT_SYMLINK_NOFOLLOW, EACCES, EINVAL, ELOOP, O_NOFOLLOW, O_PATH, S_IFLNK, S_IFMT, S_IFREG, X_OK } from '../abi/linux/constants';
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

const statBuf = Buffer.alloc(144);

function exec(s: Sentry, n: Notification, dirfd: number, addr: bigint, flags: number): Reply {
  if ((flags & ~(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) !== 0) return -EINVAL;
  const path = addr === 0n ? '' : s.readPath(n, addr);
  if (typeof path === 'number') return path;
  const t = s.target(n, dirfd, path, (flags & AT_EMPTY_PATH) !== 0);
  if (typeof t === 'number') return t;
  const r = s.asCaller(n, false);
  if (r < 0) return r;
  const fd = s.open(t, O_PATH | ((flags & AT_SYMLINK_NOFOLLOW) !== 0 ? O_NOFOLLOW : 0), 0);
  if (fd < 0) return fd;
  // Nothing of /proc or /sys is a program, and from a directory of them the kernel's walk would not be the sentry's.
  if (!s.kernelMayFinish()) {
    s.close(fd);
    return -EACCES;
  }
  let res = s.k.sys(NR.newfstatat, fd, '', statBuf, AT_EMPTY_PATH);
  const type = statBuf.readUInt32LE(24) & S_IFMT;
  if (res >= 0 && type === S_IFLNK) res = -ELOOP;
  else if (res >= 0 && type !== S_IFREG) res = -EACCES;
  else if (res >= 0) res = s.k.sys(NR.faccessat2, fd, '', X_OK, AT_EMPTY_PATH | AT_EACCESS);
  s.close(fd);
  return res < 0 ? res : EXEC_IN_CALLER;
}

export const PROCESS_HANDLERS: Readonly<Record<string, Handler>> = {
  execve: (s, n) => exec(s, n, AT_FDCWD, n.args[0], 0),
  execveat: (s, n) => exec(s, n, intArg(n.args[0]), n.args[1], uintArg(n.args[4])),
};
