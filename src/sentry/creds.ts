// Whose file-system identity the sentry's thread acts with: its own for its bookkeeping, the caller's for the caller's operations.
import { NR, type RawSyscall } from './native';

/** What the kernel checks file access against: fsuid, fsgid, supplementary groups and effective capabilities. */
export interface Creds {
  readonly uid: number;
  readonly gid: number;
  readonly groups: readonly number[];
  /** The effective capability set, one bit per CAP_* number. */
  readonly caps: bigint;
}

/** Whether two identities have the same fs ids and groups (capabilities aside). */
export function sameIds(a: Omit<Creds, 'caps'>, b: Omit<Creds, 'caps'>): boolean {
  return a.uid === b.uid && a.gid === b.gid && a.groups.length === b.groups.length && a.groups.every((g, i) => g === b.groups[i]);
}

function same(a: Creds, b: Creds): boolean {
  return a.caps === b.caps && sameIds(a, b);
}

const CAPABILITY_VERSION_3 = 0x20080522;

/** The calling thread's capability sets (capget with pid 0). */
export function threadCaps(sys: RawSyscall): { effective: bigint; permitted: bigint; inheritable: bigint } {
  const header = Buffer.alloc(8);
  header.writeUInt32LE(CAPABILITY_VERSION_3, 0);
  const data = Buffer.alloc(24);
  const r = sys(NR.capget, header, data);
  if (r < 0) throw new Error(`capget failed: errno ${-r}`);
  const set = (off: number): bigint => BigInt(data.readUInt32LE(off)) | (BigInt(data.readUInt32LE(12 + off)) << 32n);
  return { effective: set(0), permitted: set(4), inheritable: set(8) };
}

const capHeader = Buffer.alloc(8);
const capData = Buffer.alloc(24);

/**
 * The effective capability set of thread `tid` (in the sentry's pid namespace) as the kernel
 * holds it now, or a negative errno: capget(2) of another task needs no privilege and reads that
 * thread's own credentials, which only the thread itself can change (while it waits in a
 * notified call, they cannot change at all). What the kernel made of an execve (a non-root uid
 * loses its effective set, ambient capabilities come in, no_new_privs keeps setuid bits and file
 * capabilities from adding any), of set*id, capset and prctl, is all in this one number.
 */
export function effectiveCapsOf(sys: RawSyscall, tid: number): bigint | number {
  capHeader.writeUInt32LE(CAPABILITY_VERSION_3, 0);
  capHeader.writeInt32LE(tid, 4);
  const r = sys(NR.capget, capHeader, capData);
  if (r < 0) return r;
  return BigInt(capData.readUInt32LE(0)) | (BigInt(capData.readUInt32LE(12)) << 32n);
}

/**
 * setfsuid, setfsgid and setgroups made as raw syscalls change only the calling thread (glibc's
 * wrappers would change every thread of the process), so the sentry's serving thread can take the
 * caller's identity for one operation while Node's other threads keep root's. Leaving fsuid 0
 * also drops the thread's effective file capabilities (CAP_DAC_OVERRIDE, CAP_CHOWN, CAP_FOWNER...),
 * and returning to 0 restores them: the kernel does that part.
 */
export class ThreadCreds {
  readonly #sys: RawSyscall;
  readonly #own: Creds;
  #current: Creds;
  readonly #groupsBuf = Buffer.alloc(4 * 65536);
  readonly #capHeader = Buffer.alloc(8);
  /** capset's data for each effective set the thread has taken: a served call switches twice. */
  readonly #capData = new Map<bigint, Buffer>();
  readonly #permitted: bigint;
  readonly #inheritable: bigint;

  /** `own` is the sentry's identity; its capabilities are the thread's as they are now. */
  constructor(sys: RawSyscall, own: Omit<Creds, 'caps'>) {
    this.#sys = sys;
    const caps = threadCaps(sys);
    this.#permitted = caps.permitted;
    this.#inheritable = caps.inheritable;
    this.#own = { ...own, caps: caps.effective };
    // Unknown until the first switch: the thread's groups are the process's.
    this.#current = { ...this.#own, groups: [-1] };
  }

  get current(): Creds {
    return this.#current;
  }

  /** The capability sets every switch is made of: the sentry's own effective set, and the permitted and inheritable sets capset keeps. */
  get capSets(): { readonly own: bigint; readonly permitted: bigint; readonly inheritable: bigint } {
    return { own: this.#own.caps, permitted: this.#permitted, inheritable: this.#inheritable };
  }

  /** The sentry's own identity: for reading /proc and other bookkeeping. */
  asSentry(): void {
    this.become(this.#own);
  }

  /** Returns 0, or a negative errno when the thread could not take `c`. */
  become(c: Creds): number {
    if (same(c, this.#current)) return 0;
    // Only the capabilities differ (a root caller with fewer of them, as every served call of a
    // root workload): the fs ids stay, so setting the effective set exactly is the whole switch.
    // One syscall each way instead of seven: this runs twice per served call.
    if (sameIds(c, this.#current)) {
      const r = this.#setCaps(c.caps & this.#permitted);
      if (r < 0) return r;
      this.#current = { ...this.#current, caps: c.caps };
      return 0;
    }
    // Changing ids takes CAP_SETUID and CAP_SETGID, which a caller's set may lack: first back to the sentry's.
    if (this.#current.caps !== this.#own.caps) {
      const r = this.#setCaps(this.#own.caps);
      if (r < 0) return r;
      this.#current = { ...this.#current, caps: this.#own.caps };
    }
    for (let i = 0; i < c.groups.length; i++) this.#groupsBuf.writeUInt32LE(c.groups[i] ?? 0, 4 * i);
    const r = this.#sys(NR.setgroups, c.groups.length, this.#groupsBuf);
    if (r < 0) return r;
    this.#sys(NR.setfsgid, c.gid);
    this.#sys(NR.setfsuid, c.uid);
    // setfsuid returns the previous value whether or not it changed anything: ask again to know.
    if (this.#sys(NR.setfsuid, -1) !== c.uid || this.#sys(NR.setfsgid, -1) !== c.gid) return -1;
    // After the fs ids, which clear or restore the file capabilities themselves: the caller's
    // effective set exactly (a root caller without CAP_DAC_OVERRIDE must not read through the
    // sentry what it could not read itself). The permitted set stays the sentry's, to come back.
    const caps = this.#setCaps(c.caps & this.#permitted);
    if (caps < 0) return caps;
    this.#current = c;
    return 0;
  }

  /**
   * Runs `op` with the thread's real and effective ids (and groups, and effective capabilities)
   * those of a caller's process, then takes the sentry's own back: for the calls whose result
   * records who made them rather than who may touch a file. A unix socket connected by the sentry
   * gives its peer SO_PEERCRED's uid and gid from the connector's effective ids, and a message it
   * sends carries SCM_CREDENTIALS' uid and gid from its real ids. Raw setres*id change this thread
   * alone; the saved uid stays 0, so the thread keeps its permitted capabilities and may go back.
   * Returns op's result, or a negative errno when the thread could not take `p`.
   */
  asProcess<T>(p: ProcessIds, op: () => T): T | number {
    let r = this.become(this.#own);
    if (r < 0) return r;
    for (let i = 0; i < p.groups.length; i++) this.#groupsBuf.writeUInt32LE(p.groups[i] ?? 0, 4 * i);
    r = this.#sys(NR.setgroups, p.groups.length, this.#groupsBuf);
    if (r >= 0) r = this.#sys(NR.setresgid, p.rgid, p.egid, -1);
    if (r >= 0) r = this.#sys(NR.setresuid, p.ruid, p.euid, -1);
    // The effective set is cleared by an effective uid other than 0 and kept by 0: the caller's exactly.
    if (r >= 0) r = this.#setCaps(p.caps & this.#permitted);
    try {
      return r < 0 ? r : op();
    } finally {
      // The sentry's effective set first (within the permitted set, which the saved uid 0 kept: no
      // privilege needed), for a root caller's effective uid 0 leaves the caller's set in place; then
      // back to 0, which the saved uid still is, and the groups and gids follow.
      const back = [this.#setCaps(this.#own.caps), this.#sys(NR.setresuid, this.#own.uid, this.#own.uid, -1),
        this.#sys(NR.setresgid, this.#own.gid, this.#own.gid, -1)];
      this.#current = { ...this.#own, groups: [-1] };
      if (back.some((b) => b < 0) || this.become(this.#own) < 0) throw new Error('the sentry could not take its own identity back');
    }
  }

  #setCaps(effective: bigint): number {
    this.#capHeader.writeUInt32LE(CAPABILITY_VERSION_3, 0);
    this.#capHeader.writeInt32LE(0, 4);
    let d = this.#capData.get(effective);
    if (d === undefined) {
      d = Buffer.alloc(24);
      for (let i = 0; i < 2; i++) {
        const shift = BigInt(32 * i);
        d.writeUInt32LE(Number((effective >> shift) & 0xffffffffn), 12 * i);
        d.writeUInt32LE(Number((this.#permitted >> shift) & 0xffffffffn), 12 * i + 4);
        d.writeUInt32LE(Number((this.#inheritable >> shift) & 0xffffffffn), 12 * i + 8);
      }
      // A handful of distinct sets in practice (the sentry's, the plan's, a caller's that changed).
      if (this.#capData.size < 64) this.#capData.set(effective, d);
    }
    return this.#sys(NR.capset, this.#capHeader, d);
  }
}

/**
 * The thread's one ThreadCreds: what it knows of the thread's identity is only right while every
 * switch goes through it, and a thread that serves several listeners (the detached sentry) has a
 * Sentry for each. Keyed by the syscall function, so a test's fake kernel gets its own. It must
 * first be asked for while the thread has its own identity: that is what it returns to.
 */
const perThread = new WeakMap<RawSyscall, ThreadCreds>();

export function threadCreds(sys: RawSyscall): ThreadCreds {
  let c = perThread.get(sys);
  if (c === undefined) {
    c = new ThreadCreds(sys, { uid: 0, gid: 0, groups: [] });
    perThread.set(sys, c);
  }
  return c;
}

/** A process's real and effective ids and groups, and its thread's effective capabilities: who it is to a peer. */
export interface ProcessIds {
  readonly ruid: number;
  readonly euid: number;
  readonly rgid: number;
  readonly egid: number;
  readonly groups: readonly number[];
  readonly caps: bigint;
}

/** The real and effective ids of /proc/PID/status (Uid and Gid: real, effective, saved, fs). */
export function parseStatusIds(status: string, caps: bigint): ProcessIds | undefined {
  const ids = (key: string): number[] | undefined => {
    const m = new RegExp(`^${key}:\\s*(\\d+)\\s+(\\d+)`, 'm').exec(status);
    return m === null ? undefined : [Number(m[1]), Number(m[2])];
  };
  const u = ids('Uid');
  const g = ids('Gid');
  if (u === undefined || g === undefined) return undefined;
  const groups = (/^Groups:(.*)$/m.exec(status)?.[1] ?? '').trim().split(/\s+/).filter((f) => f !== '').map(Number);
  return { ruid: u[0] ?? 0, euid: u[1] ?? 0, rgid: g[0] ?? 0, egid: g[1] ?? 0, groups, caps };
}

/** Parses the Uid, Gid, Groups and Umask lines of /proc/PID/status. */
export function parseStatusCreds(status: string): { creds: Creds; umask: number } | undefined {
  let caps = 0n;
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
    else if (key === 'CapEff') caps = BigInt(`0x${fields[0] ?? '0'}`);
  }
  if (uid === undefined || gid === undefined || Number.isNaN(uid) || Number.isNaN(gid)) return undefined;
  return { creds: { uid, gid, groups, caps }, umask };
}
