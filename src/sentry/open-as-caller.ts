// Opening an object the sentry has pinned, as the caller, and creating a file where nothing was: never waiting on the serving thread, never opening what a racing thread put in place.
import { posix } from 'node:path';
import {
  AT_EMPTY_PATH, EAGAIN, EEXIST, ELOOP, ENOENT, EXDEV, F_SETFL, O_APPEND, O_CREAT, O_DIRECT, O_DIRECTORY, O_EXCL, O_NOATIME, O_NOFOLLOW, O_NONBLOCK,
  O_PATH, PATH_MAX, S_IFLNK, S_IFMT, S_IFREG,
} from '../abi/linux/constants';
import { STAT_MODE, STAT_SIZE } from '../abi/linux/structs';
import type { Sentry } from './kernel';
import { NR } from './native';
import type { Notification, Reply } from './notification';

/** What F_SETFL can put back of the caller's flags once the sentry's O_NONBLOCK is taken off. */
const SETFL_FLAGS = O_APPEND | O_DIRECT | O_NOATIME;

/**
 * Opens `pfd` (the sentry's fd of an object of type `type`, O_PATH or not) again through the
 * sentry's own /proc/self/fd link, with the thread's identity, which is the caller's (asCaller ran):
 * the kernel's reopen checks the caller's permission on the inode and the mount's flags
 * (read-only, noexec, nodev) as its open of the path would have. A magic link never gives more:
 * the new file has the flags asked here, checked anew. Takes `pfd` over (closed, or handed on).
 *
 * A regular file opens with O_NONBLOCK: were another process to hold a lease on it, the open would
 * wait for the lease to be broken (up to fs.lease-break-time, 45 s here) with the serving thread,
 * and every other caller, behind it; O_NONBLOCK turns that wait into EWOULDBLOCK, and the open then
 * goes to a thread of its own, to wait there as the kernel's would (blocking.ts). The caller's own
 * file flags are put back with F_SETFL.
 */
export function reopenAsCaller(s: Sentry, n: Notification, pfd: number, type: number, flags: number, mode: number, cloexec: boolean): Reply {
  // O_NOFOLLOW would refuse the magic link itself; the object is already pinned.
  const f = flags & ~O_NOFOLLOW;
  const regular = type === S_IFREG;
  const fd = s.openHost(`/proc/self/fd/${pfd}`, regular ? f | O_NONBLOCK : f, mode);
  if (fd === -EAGAIN && regular && (flags & O_NONBLOCK) === 0) return s.handOff(n, pfd, f & ~(O_CREAT | O_EXCL), cloexec);
  s.close(pfd);
  if (fd < 0) return fd;
  if (regular && (flags & O_NONBLOCK) === 0) {
    const r = s.k.sys(NR.fcntl, fd, F_SETFL, flags & SETFL_FLAGS);
    if (r < 0) {
      s.close(fd);
      return r;
    }
  }
  return { kind: 'inject', fd, cloexec };
}

/** How a path is looked up and opened: in the root (or a mount the sentry owns), or beneath a directory the caller named. */
export type Lookup = (path: string, flags: number, mode: number) => number;

/** What lookupOrCreate found: the object there (an O_PATH fd, to be checked and opened), or the new file it created, or an errno. */
export type Found = { readonly pinned: number } | { readonly created: number } | number;

/** Rounds of "nothing there" then "something there" a racing thread can make an O_CREAT go through before it gives up. */
const CREATE_TRIES = 8;

/**
 * Pins what `path` names (O_PATH, with the caller's O_NOFOLLOW and O_DIRECTORY); where nothing is
 * and the caller asked O_CREAT, creates it. The create is exclusive (O_EXCL): it makes a new
 * regular file or fails, and never opens what a second thread put at the name after the lookup:
 * a FIFO would block the serving thread, a device would be opened outside the container's device
 * cgroup. Something there now is looked up again, and gets every check of a first lookup. A
 * dangling symlink is followed to the name it points at, where the kernel's O_CREAT creates the
 * file too (`absolute`: how an absolute link text is taken; undefined refuses it, EXDEV, as
 * RESOLVE_BENEATH does).
 */
export function lookupOrCreate(s: Sentry, lookup: Lookup, path: string, flags: number, mode: number, absolute: ((text: string) => string) | undefined): Found {
  let at = path;
  let links = 0;
  for (let tries = 0; ; tries++) {
    const pinned = lookup(at, O_PATH | (flags & (O_NOFOLLOW | O_DIRECTORY)), 0);
    if (pinned >= 0) return { pinned };
    if (pinned !== -ENOENT || (flags & O_CREAT) === 0) return pinned;
    const created = lookup(at, flags | O_EXCL, mode);
    if (created >= 0) return { created };
    // The caller's own O_EXCL, or no name to make (a missing directory above it): as the kernel says.
    if (created !== -EEXIST || (flags & O_EXCL) !== 0) return created;
    if (tries >= CREATE_TRIES) return -EAGAIN;
    const text = (flags & O_NOFOLLOW) === 0 ? danglingLink(s, lookup, at) : undefined;
    if (text === undefined) continue;
    if (++links > 40) return -ELOOP;
    if (text.startsWith('/')) {
      if (absolute === undefined) return -EXDEV;
      at = absolute(text);
    } else {
      // Joined, not normalized: a ".." in it is the kernel's to resolve, past symlinks as they are.
      const dir = posix.dirname(at);
      at = dir === '/' ? `/${text}` : `${dir}/${text}`;
    }
  }
}

const statBuf = Buffer.alloc(STAT_SIZE);
const linkBuf = Buffer.alloc(PATH_MAX);

/** The text of the symlink at `path` when there is one (the lookup that follows it found nothing). */
function danglingLink(s: Sentry, lookup: Lookup, path: string): string | undefined {
  const l = lookup(path, O_PATH | O_NOFOLLOW, 0);
  if (l < 0) return undefined;
  let text: string | undefined;
  if (s.k.sys(NR.newfstatat, l, '', statBuf, AT_EMPTY_PATH) >= 0 && (statBuf.readUInt32LE(STAT_MODE) & S_IFMT) === S_IFLNK) {
    const len = s.k.sys(NR.readlinkat, l, '', linkBuf, PATH_MAX);
    if (len > 0) text = linkBuf.toString('utf8', 0, len);
  }
  s.close(l);
  return text;
}
