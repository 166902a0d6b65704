// Opens served on the object the sentry pinned, never by the kernel walking the path again: O_PATH opens, FIFOs, and what is reached in or from a tree the sentry owns (/proc, /sys).
//
// The kernel walks a CONTINUEd open's path again, from the caller's memory, cwd or dirfd, after
// the sentry's check: a second thread can change what it walks (issue 21: `..` from the cwd /proc,
// a FIFO planted at /version, and the kernel opened procfs's own /version; issue 15, item 3: every
// CONTINUEd O_PATH and FIFO open). So these opens are the sentry's, on the object it resolved and
// pinned (O_PATH, as the caller), opened again as the caller through its own /proc/self/fd link:
//   - O_PATH: NOTIF_ADDFD cannot install an O_PATH file (the kernel's fget() refuses them), so the
//     caller gets a read-only open of the same object, which needs read permission where O_PATH
//     needs none (EACCES otherwise, the kernel's answer to a caller without it):
//     a directory O_RDONLY | O_DIRECTORY (of an owned tree: a shadow, shadow-dirs.ts), a regular
//     file O_RDONLY (without waiting on a lease), a FIFO O_RDONLY | O_NONBLOCK (never waits), the
//     /dev/null a masked path is bound to; a symlink (O_PATH | O_NOFOLLOW) ELOOP, as O_NOFOLLOW
//     answers without O_PATH; a device or a socket ENXIO, as their opens answer when there is
//     nothing to open (a device's open is the caller's device cgroup's to allow, which the sentry
//     is not in);
//   - a FIFO: opened at once when that cannot wait (O_NONBLOCK, or O_RDWR); otherwise on a thread
//     of its own, as the caller, which answers the caller when the other end comes (blocking.ts);
//   - a device node reached in an owned tree: only the /dev/null a masked path is bound to
//     (anything else EXDEV); in the root, a device opens in the caller (sys-file.ts says why).
import { EACCES, EISDIR, ELOOP, ENXIO, EXDEV, F_SETFL, O_ACCMODE, O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_PATH, O_RDWR, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG } from '../abi/linux/constants';
import { STAT_MODE, STAT_RDEV } from '../abi/linux/structs';
import type { Sentry } from './kernel';
import { NR } from './native';
import type { Notification, Reply } from './notification';
import { openGenerated } from './procfs';

const stat = Buffer.alloc(144);

/** /dev/null's device number as struct stat encodes it (major 1, minor 3). */
const DEV_NULL = 0x103n;

/**
 * Serves an open of the pinned object `pfd` (O_PATH, resolved as the caller; the thread holds the
 * caller's identity) with the caller's `flags`, on that object alone; takes `pfd` over.
 */
export function openInsteadOfKernel(s: Sentry, n: Notification, pfd: number, flags: number, cloexec: boolean): Reply {
  const r = s.k.sys(NR.newfstatat, pfd, '', stat, 0x1000 /* AT_EMPTY_PATH */);
  if (r < 0) {
    s.close(pfd);
    return r;
  }
  const type = stat.readUInt32LE(STAT_MODE) & S_IFMT;
  const asPath = (flags & O_PATH) !== 0;
  const reopen = (f: number): number => s.openHost(`/proc/self/fd/${pfd}`, f, 0);
  let open: number;
  // A directory opened for writing is EISDIR, as the kernel says; a shadow is read-only anyway.
  if (type === S_IFDIR && !asPath && (flags & O_ACCMODE) !== 0) open = -EISDIR;
  else if (type === S_IFDIR && s.landedIn !== undefined) open = s.shadowOf(pfd);
  else if (type === S_IFDIR) open = reopen(O_DIRECTORY | (asPath ? 0 : flags & ~(O_NOFOLLOW | O_ACCMODE)));
  else if (type === S_IFREG && asPath && (flags & O_DIRECTORY) === 0) {
    const generated = openGenerated(s, n.pid, pfd, stat, 0, cloexec);
    if (generated !== undefined) {
      s.close(pfd);
      return generated;
    }
    // A lease another process holds would make a read-only open wait for it to be broken (a write
    // lease), which an O_PATH open never does: O_NONBLOCK says EWOULDBLOCK instead, then it is put back.
    open = reopen(O_NONBLOCK);
    if (open >= 0 && s.k.sys(NR.fcntl, open, F_SETFL, 0) < 0) {
      s.close(open);
      open = -EACCES;
    }
  } else if (type === S_IFIFO && asPath) open = reopen(O_NONBLOCK);
  else if (type === S_IFIFO && ((flags & O_NONBLOCK) !== 0 || (flags & O_ACCMODE) === O_RDWR)) {
    open = reopen(flags & ~(O_NOFOLLOW | O_CREAT | O_EXCL));
  } else if (type === S_IFIFO) {
    // Opened for reading or writing alone, a FIFO waits for its other end: not on this thread.
    return s.handOff(n, pfd, flags & ~(O_NOFOLLOW | O_CREAT | O_EXCL), cloexec);
  } else if (type === S_IFCHR && stat.readBigUInt64LE(STAT_RDEV) === DEV_NULL && (flags & O_DIRECTORY) === 0) {
    open = reopen(asPath ? 0 : flags & ~(O_NOFOLLOW | O_CREAT | O_EXCL));
  } else if (type === S_IFLNK) open = -ELOOP;
  else if (asPath) open = -ENXIO;
  else open = -EXDEV;
  s.close(pfd);
  return open < 0 ? open : { kind: 'inject', fd: open, cloexec };
}
