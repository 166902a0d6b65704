// Opening a caller's own descriptor by its magic link (/proc/self/fd/N, /dev/fd/N, /dev/std*): the caller's object, taken from the caller, opened again as the caller.
//
// The kernel opens /proc/self/fd/N by following the link to the object fd N holds and opening that
// object anew, with a fresh permission check against its inode: an O_PATH fd, which needs no right
// to the object, does not become a readable one unless the caller may read it. The sentry does the
// same, and never by path: it takes the object itself with pidfd_getfd (whatever fd N holds at that
// instant; a second thread moving fds around changes which object, never whose rights), checks it
// like any other open (its type, the files of /proc the sentry makes, O_EXCL, O_DIRECTORY), and
// opens it as the caller (open-as-caller.ts). FIFOs and devices, whose opens may wait, are opened by
// a thread of their own (blocking.ts).
import {
  AT_EMPTY_PATH, EBADF, EEXIST, EINVAL, ELOOP, ENOENT, ENOTDIR, ENXIO, EPERM, F_GETFL, O_ACCMODE, O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_NONBLOCK,
  O_PATH, O_RDWR, O_TMPFILE, O_WRONLY, PIDFD_THREAD, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG,
} from '../abi/linux/constants';
import { STAT_MODE, STAT_SIZE } from '../abi/linux/structs';
import type { CallerFd, Sentry } from './kernel';
import { NR } from './native';
import type { Notification, Reply } from './notification';
import { openGenerated } from './procfs';
import { reopenAsCaller } from './open-as-caller';
import { openInsteadOfKernel } from './owned-open';

const statBuf = Buffer.alloc(STAT_SIZE);

/**
 * Opens the caller's fd `c` with `flags`, as the caller (the thread has the caller's identity:
 * asCaller ran, with its umask when `flags` create).
 */
export function openCallerFd(s: Sentry, n: Notification, c: CallerFd, flags: number, mode: number, cloexec: boolean): Reply {
  const taken = takeCallerFd(s, n.pid, c);
  // No such fd: procfs has no such name.
  if (taken < 0) return taken === -EBADF ? -ENOENT : taken;
  return openTaken(s, n, taken, flags, mode, cloexec);
}

/** The file the caller's fd holds, as an fd of the sentry's, or a negative errno (EBADF: none). */
function takeCallerFd(s: Sentry, pid: number, c: CallerFd): number {
  // /proc/self/fd is the thread group's table (its leader's), /proc/thread-self/fd the thread's own:
  // they differ only for a thread made without CLONE_FILES.
  let pidfd = s.k.sys(NR.pidfd_open, pid, c.thread ? PIDFD_THREAD : 0);
  // Without PIDFD_THREAD only a thread group's leader has a pidfd: a caller that is another thread
  // of its process (ENOENT, or EINVAL before Linux 6.9) is taken by its process's.
  if (pidfd < 0 && !c.thread) {
    const tgid = tgidOf(s, pid);
    pidfd = typeof tgid === 'number' && tgid > 0 ? s.k.sys(NR.pidfd_open, tgid, 0) : -EINVAL;
  }
  if (pidfd < 0) return pidfd;
  // pidfd_getfd wants ptrace's right over the caller: the caller's own ids may not have it.
  const fd = s.asSeen(() => s.k.sys(NR.pidfd_getfd, pidfd, c.fd, 0));
  s.close(pidfd);
  return fd;
}

/** The thread group a thread `pid` (in the sentry's pid namespace) belongs to. */
function tgidOf(s: Sentry, pid: number): number | undefined {
  const status = s.asSeen(() => s.readHostFile(`/proc/${pid}/status`));
  if (typeof status === 'number') return undefined;
  const m = /^Tgid:\s*(\d+)$/m.exec(status);
  return m === null ? undefined : Number(m[1]);
}

function openTaken(s: Sentry, n: Notification, taken: number, flags: number, mode: number, cloexec: boolean): Reply {
  const refuse = (errno: number): Reply => {
    s.close(taken);
    return errno;
  };
  // What the kernel answers for the name itself, before the object: the link exists; it is a link.
  if ((flags & (O_CREAT | O_EXCL)) === (O_CREAT | O_EXCL)) return refuse(-EEXIST);
  if ((flags & O_NOFOLLOW) !== 0 && (flags & O_PATH) === 0) return refuse(-ELOOP);
  // An O_PATH file cannot be installed in the caller (NOTIF_ADDFD takes only files that can be read
  // or written): the object's read-only open, as for any O_PATH open (owned-open.ts). The link
  // itself (O_PATH | O_NOFOLLOW) is not an object the caller can be given.
  if ((flags & O_PATH) !== 0) return (flags & O_NOFOLLOW) !== 0 ? refuse(-ELOOP) : openInsteadOfKernel(s, n, taken, flags, cloexec);
  const st = s.k.sys(NR.newfstatat, taken, '', statBuf, AT_EMPTY_PATH);
  if (st < 0) return refuse(st);
  const type = statBuf.readUInt32LE(STAT_MODE) & S_IFMT;
  if ((flags & O_TMPFILE) === O_TMPFILE) {
    if (type !== S_IFDIR) return refuse(-ENOTDIR);
    // A new unnamed file in the caller's directory, made as the caller there.
    const fd = s.openBeneath(taken, '.', flags, mode, 0);
    s.close(taken);
    return fd < 0 ? fd : { kind: 'inject', fd, cloexec };
  }
  if (type === S_IFLNK) return refuse(-ELOOP);
  if ((flags & O_DIRECTORY) !== 0 && type !== S_IFDIR) return refuse(-ENOTDIR);
  switch (type) {
    case S_IFREG:
    case S_IFDIR: {
      // A file of the /proc the sentry owns that it generates (procfs.ts): its content, not the host's.
      if (type === S_IFREG) {
        const generated = openGenerated(s, n.pid, taken, statBuf, flags, cloexec);
        if (generated !== undefined) {
          s.close(taken);
          return generated;
        }
      }
      return reopenAsCaller(s, n, taken, type, flags & ~O_CREAT, mode, cloexec);
    }
    case S_IFIFO:
      // Opened for reading or writing alone, a FIFO waits for its other end: not on this thread.
      if ((flags & O_NONBLOCK) === 0 && (flags & O_ACCMODE) !== O_RDWR) return s.handOff(n, taken, flags & ~O_CREAT, cloexec);
      return reopenAsCaller(s, n, taken, type, flags & ~O_CREAT, mode, cloexec);
    case S_IFCHR:
    case S_IFBLK: {
      // The device cgroup checks the opener, and the sentry is not in the container's device cgroup: a
      // device is opened again only with the access the caller's own open of it was allowed.
      const held = s.k.sys(NR.fcntl, taken, F_GETFL, 0);
      if (held < 0) return refuse(held);
      if (!within(flags & O_ACCMODE, held)) return refuse(-EPERM);
      // A device's open may wait (a terminal for carrier) and is the device's to act on: a thread of its own.
      return s.handOff(n, taken, flags & ~O_CREAT, cloexec);
    }
    default:
      // Sockets, and what has no type (eventfd, epoll and the other anonymous files): no open.
      return refuse(-ENXIO);
  }
}

/** Whether access `want` (O_RDONLY, O_WRONLY, O_RDWR) is within what file flags `held` were opened for. */
function within(want: number, held: number): boolean {
  if ((held & O_PATH) !== 0) return false;
  const h = held & O_ACCMODE;
  const reads = (m: number): boolean => m === 0 || m === O_RDWR;
  const writes = (m: number): boolean => m === O_WRONLY || m === O_RDWR;
  return (!reads(want) || reads(h)) && (!writes(want) || writes(h));
}
