// Opens the kernel must not finish: an object reached in, or from, a tree the sentry owns (/proc, /sys), served by the sentry itself.
//
// The sentry lets the kernel finish an O_PATH open and the open of a FIFO or a device node
// (CONTINUE): NOTIF_ADDFD cannot install an O_PATH file, and a FIFO or a terminal must not be opened
// by the sentry. But the kernel walks the path again, from the caller's cwd or dirfd in the
// caller's mount namespace. From a directory of an owned tree, or to an object that is only in
// one, that walk would be a different one from the sentry's (issue 21: `..` from the cwd /proc, a
// FIFO planted at /version, and the kernel opened procfs's own /version). So such an open is the
// sentry's, on the object it resolved and pinned, as the caller:
//   - a directory of an owned tree: a shadow of it (shadow-dirs.ts); of the root: read-only;
//   - a regular file: read-only (an O_PATH open asks for no read permission; this one does);
//   - a FIFO, only when opening it cannot block (O_NONBLOCK, or O_RDWR, which never waits);
//   - the /dev/null a masked path is bound to;
//   - anything else: EXDEV, "the kernel cannot finish this here", never a blocking open in the sentry.
import { EISDIR, EXDEV, O_ACCMODE, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK, O_PATH, O_RDWR, S_IFCHR, S_IFDIR, S_IFIFO, S_IFMT, S_IFREG } from '../abi/linux/constants';
import { STAT_MODE, STAT_RDEV } from '../abi/linux/structs';
import type { Sentry } from './kernel';
import { NR } from './native';
import type { Notification, Reply } from './notification';
import { openGenerated } from './procfs';

const stat = Buffer.alloc(144);

/** /dev/null's device number as struct stat encodes it (major 1, minor 3). */
const DEV_NULL = 0x103n;

/**
 * Serves an open of the pinned object `pfd` (O_PATH, resolved as the caller) that the kernel may
 * not finish, with the caller's `flags`; closes `pfd`.
 */
export function openInsteadOfKernel(s: Sentry, n: Notification, pfd: number, flags: number, cloexec: boolean): Reply {
  const r = s.k.sys(NR.newfstatat, pfd, '', stat, 0x1000 /* AT_EMPTY_PATH */);
  if (r < 0) {
    s.close(pfd);
    return r;
  }
  const type = stat.readUInt32LE(STAT_MODE) & S_IFMT;
  const asPath = (flags & O_PATH) !== 0;
  let open: number;
  // A directory opened for writing is EISDIR, as the kernel says; a shadow is read-only anyway.
  if (type === S_IFDIR && !asPath && (flags & O_ACCMODE) !== 0) open = -EISDIR;
  else if (type === S_IFDIR && s.landedIn !== undefined) open = s.shadowOf(pfd);
  else if (type === S_IFDIR) open = s.openHost(`/proc/self/fd/${pfd}`, O_DIRECTORY | (asPath ? 0 : flags & ~(O_NOFOLLOW | O_ACCMODE)), 0);
  else if (type === S_IFREG && asPath && (flags & O_DIRECTORY) === 0) {
    const generated = openGenerated(s, n.pid, pfd, stat, 0, cloexec);
    if (generated !== undefined) {
      s.close(pfd);
      return generated;
    }
    open = s.openHost(`/proc/self/fd/${pfd}`, 0, 0);
  } else if (type === S_IFIFO && !asPath && ((flags & O_NONBLOCK) !== 0 || (flags & O_ACCMODE) === O_RDWR)) {
    open = s.openHost(`/proc/self/fd/${pfd}`, flags & ~O_NOFOLLOW, 0);
  } else if (type === S_IFCHR && stat.readBigUInt64LE(STAT_RDEV) === DEV_NULL && (flags & O_DIRECTORY) === 0) {
    open = s.openHost(`/proc/self/fd/${pfd}`, asPath ? 0 : flags & ~O_NOFOLLOW, 0);
  } else open = -EXDEV;
  s.close(pfd);
  return open < 0 ? open : { kind: 'inject', fd: open, cloexec };
}
