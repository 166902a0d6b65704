// The links re-executing through /proc/self/exe takes: "/proc/N/exe" -> a program's path in the root, in the tmpfs at /proc of the workload's namespace.
//
// execve("/proc/self/exe") (busybox applets, Go programs, runc's re-exec) is finished by the
// kernel, which reads the path again from the caller's memory and walks it in the caller's mount
// namespace. That namespace holds no procfs under the sentry (a magic link there would let a racing
// thread send the kernel's walk of any CONTINUEd call anywhere), only this tmpfs, which
// stockade-init mounted read-only there and whose writable clone the sentry holds
// (native/init/sentry.c exec_links). For such an exec the sentry finds the program's path in the
// root, puts a link to it here, "/proc/N/exe" with N a letter or two, and writes that over the caller's
// path (sys-process.ts): no longer than "/proc/1/exe", the shortest path it replaces.
//
// A link leads to a path of the root only, which the kernel walks from the caller's root with
// the caller's rights: nothing a caller could not name itself. A path the workload gives the
// sentry under /proc resolves in the procfs clone, so it never sees the links but through the
// kernel's walk of a path the sentry wrote.
import { EEXIST } from '../abi/linux/constants';
import { NR, type RawSyscall } from './native';

/** At most this many links at once: the oldest is reused after. */
const LINKS_MAX = 702; // a-z, then aa-zz

/** The i-th name (from 0): a, b, ... z, aa, ab, ...: short first, as the shortest path rewritten ("/proc/1/exe") leaves one letter. */
function nameOf(i: number): string {
  return i < 26 ? String.fromCharCode(97 + i) : nameOf(Math.floor(i / 26) - 1) + String.fromCharCode(97 + (i % 26));
}

/** Each container's links, by its hand-off record of the tmpfs (host.ts): every process of the container has a Sentry of its own. */
const byMount = new WeakMap<object, ExecLinks>();

/**
 * The exec links of the tmpfs `mount` stands for: one set for all the sentries of a container's
 * processes (its own and those exec'd into it), which share that tmpfs. Each with a set of its own
 * started at "a" again and found the name taken (EEXIST): a process exec'd into a container could
 * not re-exec once the container had.
 */
export function execLinksOf(mount: object, sys: RawSyscall, dir: number): ExecLinks {
  let links = byMount.get(mount);
  if (links === undefined) {
    links = new ExecLinks(sys, dir);
    byMount.set(mount, links);
  }
  return links;
}

export class ExecLinks {
  readonly #sys: RawSyscall;
  readonly #dir: number;
  /** Target path -> the name of its directory, oldest use first (a Map keeps insertion order). */
  readonly #byTarget = new Map<string, string>();

  constructor(sys: RawSyscall, dir: number) {
    this.#sys = sys;
    this.#dir = dir;
  }

  /**
   * The path in the workload's namespace ("/proc/N/exe") of a link to `target`, an absolute path
   * in the root, made or reused; a negative errno when it could not be made. Named like the link
   * it stands for, so a program whose argv[0] is the very string rewritten (a shell's `exec
   * /proc/self/exe`) still sees "exe" as its name. Made as the sentry.
   */
  linkTo(target: string): string | number {
    const have = this.#byTarget.get(target);
    if (have !== undefined) {
      this.#byTarget.delete(target);
      this.#byTarget.set(target, have);
      return `/proc/${have}/exe`;
    }
    let name: string;
    let r: number;
    if (this.#byTarget.size < LINKS_MAX) {
      name = nameOf(this.#byTarget.size);
      r = this.#sys(NR.mkdirat, this.#dir, name, 0o711);
      if (r >= 0 || r === -EEXIST) r = this.#sys(NR.symlinkat, target, this.#dir, `${name}/exe`);
    } else {
      // The oldest link is replaced, atomically: an exec in flight through it (seconds old by
      // now) finds the new program, which the kernel checks as it would any path of the root.
      const [oldest, old] = this.#byTarget.entries().next().value as [string, string];
      this.#byTarget.delete(oldest);
      name = old;
      this.#sys(NR.unlinkat, this.#dir, `${name}/new`, 0);
      r = this.#sys(NR.symlinkat, target, this.#dir, `${name}/new`);
      if (r >= 0) r = this.#sys(NR.renameat2, this.#dir, `${name}/new`, this.#dir, `${name}/exe`, 0);
    }
    if (r < 0) return r;
    this.#byTarget.set(target, name);
    return `/proc/${name}/exe`;
  }
}
