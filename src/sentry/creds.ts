// Whose file-system identity the sentry's thread acts with: its own for its bookkeeping, the caller's for the caller's operations.
import { NR, type RawSyscall } from './native';

/** The ids the kernel checks file access against (fsuid, fsgid, supplementary groups). */
export interface Creds {
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
}

function same(a: Creds, b: Creds): boolean {
  return a.uid === b.uid && a.gid === b.gid && a.groups.length === b.groups.length && a.groups.every((g, i) => g === b.groups[i]);
}

/**
 * setfsuid, setfsgid and setgroups made as raw syscalls change only the calling thread (glibc's
 * wrappers would change every thread of the process), so the sentry's worker thread can take the
 * caller's identity for one operation while Node's other threads keep root's. Leaving fsuid 0
 * also drops the thread's effective file capabilities (CAP_DAC_OVERRIDE, CAP_CHOWN, CAP_FOWNER...),
 * and returning to 0 restores them: the kernel does that part.
 */
export class ThreadCreds {
  readonly #sys: RawSyscall;
  readonly #own: Creds;
  #current: Creds;
  readonly #groupsBuf = Buffer.alloc(4 * 65536);

  constructor(sys: RawSyscall, own: Creds) {
    this.#sys = sys;
    this.#own = own;
    this.#current = own;
  }

  get current(): Creds {
    return this.#current;
  }

  /** The sentry's own identity: for reading /proc and other bookkeeping. */
  asSentry(): void {
    this.become(this.#own);
  }

  /** Returns 0, or a negative errno when the thread could not take `c`. */
  become(c: Creds): number {
    if (same(c, this.#current)) return 0;
    for (let i = 0; i < c.groups.length; i++) this.#groupsBuf.writeUInt32LE(c.groups[i] ?? 0, 4 * i);
    const r = this.#sys(NR.setgroups, c.groups.length, this.#groupsBuf);
    if (r < 0) return r;
    this.#sys(NR.setfsgid, c.gid);
    this.#sys(NR.setfsuid, c.uid);
    // setfsuid returns the previous value whether or not it changed anything: ask again to know.
    if (this.#sys(NR.setfsuid, -1) !== c.uid || this.#sys(NR.setfsgid, -1) !== c.gid) return -1;
    this.#current = c;
    return 0;
  }
}

/** Parses the Uid, Gid, Groups and Umask lines of /proc/PID/status. */
export function parseStatusCreds(status: string): { creds: Creds; umask: number } | undefined {
  let uid: number | undefined;
  let gid: number | undefined;
  let groups: number[] = [];
  let umask = 0o022;
  for (const line of status.split('\n')) {
    const tab = line.indexOf(':');
    if (tab < 0) continue;
    const key = line.slice(0, tab);
    const fields = line.slice(tab + 1).trim().split(/\s+/).filter((f) => f !== '');
    // Uid: real effective saved fs
    if (key === 'Uid') uid = Number(fields[3]);
    else if (key === 'Gid') gid = Number(fields[3]);
    else if (key === 'Groups') groups = fields.map(Number);
    else if (key === 'Umask') umask = parseInt(fields[0] ?? '22', 8);
  }
  if (uid === undefined || gid === undefined || Number.isNaN(uid) || Number.isNaN(gid)) return undefined;
  return { creds: { uid, gid, groups }, umask };
}
