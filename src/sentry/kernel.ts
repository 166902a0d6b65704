// The sentry: receives the workload's mediated syscalls, serves each with its handler, and answers the kernel.
//
//   workload thread             kernel                      sentry serving thread
//   openat("/etc/x") ------> filter: NOTIFY --------------> NOTIF_RECV (notification: id, pid, nr, args)
//        (blocked)                                          read the path from the caller's memory,
//                                                           NOTIF_ID_VALID (the caller is still waiting),
//                                                           resolve it in the root (RESOLVE_IN_ROOT),
//                                                           open it as the caller
//   fd 5 <------------------ installs fd, returns 5 <------ NOTIF_ADDFD with ADDFD_FLAG_SEND
//
// Every answer is one of: a value or errno (NOTIF_SEND), an fd (ADDFD|SEND), or CONTINUE where
// the kernel's own confinement makes that safe (each such handler says why).
import { AUDIT_ARCH_X86_64 } from '../abi/linux/syscalls-x86_64';
import {
  AT_EMPTY_PATH, AT_FDCWD, EACCES, EAGAIN, EFAULT, EINTR, EINVAL, ELOOP, ENOENT, EPERM, ENOSYS, ENOTDIR, EXDEV, O_ACCMODE, O_TRUNC, O_CLOEXEC, O_CREAT, O_DIRECTORY, O_NOCTTY, O_NOFOLLOW, O_PATH, O_TMPFILE, O_WRONLY, PATH_MAX, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS,
  RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS, S_IFDIR, S_IFMT, SECCOMP_USER_NOTIF_FLAG_CONTINUE,
} from '../abi/linux/constants';
import { STAT_DEV, STAT_SIZE, STATX_MNT_ID, STATX_MNT_ID_OFFSET, STATX_MODE, STATX_TYPE } from '../abi/linux/structs';
import { posix } from 'node:path';
import { abiOf, nativeArch, syscallNumber } from '../seccomp/arch';
import { sentrySyscallTable } from './syscalls';
import { effectiveCapsOf, parseStatusCreds, sameIds, threadCreds, type Creds, type ThreadCreds } from './creds';
import { NR, sayOnStderr, type SentryKernel } from './native';
import { decodeNotification, NOTIF_SIZE, type Notification, type Reply } from './notification';
import { HANDLERS, type Handler } from './handlers';
import { denialJudge, type Denial, type DenialJudge } from './denials';
import { DEFAULT_BLOCK_LIMIT_MS, type BlockingReport } from './blocking';
import { errnoName } from './table/render';
import { readListing, ShadowDirs, type Entry } from './shadow-dirs';
import type { NetPolicy } from './net-policy';
import type { Watch } from './poll';
import { containerCpuCount } from './procfs';
import { execLinksOf, type ExecLinks } from './exec-links';
import { FastContext } from './fast-path';


export interface SentryOptions {
  /** The workload's user, as the plan sets it; what its file operations are checked against. */
  readonly user: Creds;
  readonly hostname: string;
  readonly domainname: string;
  /** Told every mediated syscall with its outcome (`stockade trace`) while `enabled()` says so. */
  readonly trace?: TraceSink | undefined;
  /** The workload's root, already open (O_PATH); else opened from the first caller's /proc/PID/root. */
  readonly rootFd?: number | undefined;
  /** The mounts the sentry owns (/proc, /sys): paths under them resolve in these trees, not the root. */
  readonly mounts?: readonly SentryMount[] | undefined;
  /** Told each refusal the filter sent to be recorded (SentryProfileOptions.reportDenials), and the network policy's. */
  readonly denied?: ((d: SentryDenial) => void) | undefined;
  /**
   * The sentry's tmpfs for shadow directories (serve.ts makeShadowRoot) and this Sentry's
   * directory name in it. Without it, directories of the mounts the sentry owns are refused.
   */
  readonly shadowRoot?: { readonly fd: number; readonly name: string } | undefined;
  /** Where the workload may connect and send (net-policy.ts); absent: everywhere its network namespace reaches. */
  readonly network?: NetPolicy | undefined;
  /** How long an open handed to a thread of its own (a FIFO, a device) may wait; DEFAULT_BLOCK_LIMIT_MS. */
  readonly blockLimitMs?: number | undefined;
  /** Told each call that waited past that limit, or found no thread to wait on: the --log file. */
  readonly stuck?: ((s: StuckCall) => void) | undefined;
}

/** A call handed to a thread of its own (an open that may wait, sync) that could not be served as asked: it waited `waitedMs` and was answered EINTR, or no thread was left to wait on (EAGAIN). */
export interface StuckCall {
  readonly syscall: string;
  readonly pid: number;
  readonly waitedMs: number;
  readonly errno: number;
}

/** A mount the sentry owns: a clone of its tree, detached from the workload's mount namespace (native/init/sentry.c). */
export interface SentryMount {
  /** the destination in the container, absolute and normalized */
  readonly path: string;
  /** the clone's root, open in the sentry */
  readonly fd: number;
  /**
   * The writable clone of the tmpfs at `path` in the workload's namespace where the sentry puts
   * the links re-executing through /proc/PID/exe takes (exec-links.ts); no tree paths resolve in.
   */
  readonly execLinks?: boolean;
}

/** A refusal as recorded: the syscall, the errno the caller got, and the caller's pid on the host. */
export type SentryDenial = Denial & {
  readonly pid: number;
  /** A refusal of the network policy: the address refused and the rule that refused it. */
  readonly address?: string | undefined;
  readonly rule?: string | undefined;
};

export interface TraceSink {
  /** Checked per call, so that records are only built while someone reads them. */
  enabled(): boolean;
  record(r: TraceRecord): void;
}

export interface TraceRecord {
  readonly time: string;
  readonly pid: number;
  readonly syscall: string;
  /** the path arguments as the sentry read them, or the raw registers of a call without one */
  readonly args: readonly string[];
  /** a value, a negative errno, "fd N" (the number the caller got), "continue: why" or "denied: ERRNO" */
  readonly result: number | string;
}

/** Where a path names something: inside the workload's root, or one of the caller's own fds or cwd on the host's /proc. */
export interface Target {
  readonly inRoot: boolean;
  readonly path: string;
  /** A relative path from a cwd or dirfd in a tree the sentry owns (a shadow): the kernel must not walk it. */
  readonly fromOwned?: boolean;
  /** The path names one of the caller's own descriptors (/proc/self/fd/N, /dev/fd/N, /dev/std*): its number. */
  readonly callerFd?: CallerFd | undefined;
}

/** A caller's descriptor a path names: its number, and whether in the calling thread's table (/proc/thread-self/fd) or its process's. */
export interface CallerFd {
  readonly fd: number;
  readonly thread: boolean;
}

export interface SentryStats {
  notifications: number;
  continued: number;
  injected: number;
  errors: number;
  /** refusals the filter sent to be recorded */
  denied: number;
  /** opens handed to a thread of their own (blocking.ts), counted again as injected or errors once answered */
  handedOff: number;
  /** of the notifications, those the native fast path answered (fast-path.ts) */
  fast: number;
}

/** Every flag open(2) knows on x86_64 and aarch64, O_ACCMODE's four values included. */
const OPEN_FLAGS = 0o37777777;

// procfs takes an fd number only in its plain spelling: "/proc/self/fd/007" names nothing.
const FD_PATH = /^\/(?:dev\/fd|proc\/(self|thread-self)\/fd)\/(0|[1-9]\d{0,9})$/;
const STD_PATH = /^\/dev\/std(in|out|err)$/;
/** A caller's fd by its pid (or its thread's) in its own pid namespace, as #procView spells /proc/self. */
const OWN_FD_PATH = /^\/proc\/(\d+)(?:\/task\/(\d+))?\/fd\/(0|[1-9]\d{0,9})$/;
const PROC_SELF = /^\/proc\/(self|thread-self)(?=\/|$)/;
/**
 * What of sysfs a workload under the sentry may reach, as paths below /sys: the CPUs and NUMA nodes
 * (glibc's get_nprocs, Go, Java and libnuma read them), the cgroup mount a config may put there, the
 * transparent-hugepage settings (jemalloc, the JVM) and the container's own network interfaces.
 * The rest (DMI ids such as product_uuid, PCI and block devices, modules, firmware, power, debug and
 * security file systems) is host data a container has no use for: ENOENT. A listing (a shadow,
 * shadowOf) shows only these names.
 */
const SYS_VISIBLE: readonly string[] = [
  '/devices/system/cpu', '/devices/system/node', '/fs/cgroup', '/kernel/mm/transparent_hugepage',
  '/class/net', '/devices/virtual/net',
];

/** Whether a path below /sys (its rest after /sys, "/" for /sys itself) is one SYS_VISIBLE leads to or lies in. */
function sysVisible(rest: string): boolean {
  const p = rest.replace(/\/+$/, '');
  if (p === '') return true;
  return SYS_VISIBLE.some((v) => p === v || p.startsWith(`${v}/`) || v.startsWith(`${p}/`));
}

/** A CPU's directory below /sys, or a NUMA node's link to one: its number. */
const SYS_CPU = /^\/devices\/system\/(?:cpu|node\/node\d+)\/cpu(\d+)(?=\/|$)/;

const EXE_PATH = /^\/proc\/\d+(?:\/task\/\d+)?\/exe$/;
const NS_PATH = /^\/proc\/\d+(?:\/task\/\d+)?\/ns\/[a-z_]+$/;
const PROC_SELF_LINK = /^\/proc\/(mounts|net)(?=\/|$)/;

export class Sentry {
  readonly k: SentryKernel;
  readonly opts: SentryOptions;
  readonly creds: ThreadCreds;
  readonly stats: SentryStats = { notifications: 0, continued: 0, injected: 0, errors: 0, denied: 0, handedOff: 0, fast: 0 };
  readonly started = Date.now();
  /**
   * Calls answered later (a Later reply): what each waits for, and what answers it then. The
   * host waits on these with the listeners; each removes itself once it has answered.
   */
  readonly later = new Set<Watch>();
  /** The workload's root, opened from its first caller: every path resolves beneath it. */
  #rootFd = -1;
  /** Where re-executing through /proc/PID/exe leads the kernel (exec-links.ts); absent without a /proc of the sentry's. */
  readonly execLinks: ExecLinks | undefined;
  /** Set once any identity call was made: from then on each caller's ids are read from /proc. */
  #identityVaries = false;
  /** The caller's effective capabilities (or the errno capget gave), read for notification #capsId. */
  #callerCaps: bigint | number = 0n;
  #capsId = -1n;
  /** Whether NOTIF_ID_VALID held after #callerCaps was read. */
  #capsValid = false;
  readonly #capsBuf = Buffer.alloc(12);
  #capsLo = -1;
  #capsHi = -1;
  #capsLast = 0n;
  /** Directories of the owned trees as callers hold them (shadow-dirs.ts). */
  readonly #shadows: ShadowDirs | undefined;
  /** Whether a path of the call being served starts in an owned tree (a caller's shadow cwd or dirfd). */
  #startedOwned = false;
  /** The owned mount the last open() resolved in, if it did not resolve in the root. */
  #landedIn: string | undefined;
  /** Whether the last open() followed a /proc/PID/ns link (#openNamespace): to be looked at, never handed out. */
  #landedNamespace = false;
  /** The path arguments of the notification being served, as read, for its trace record. */
  #resolved: string[] = [];
  #tracing = false;
  /** The pid of the caller being served. */
  #caller = 0;
  /** A refusal of the call being served by its handler (refuse), for its trace record. */
  #refusal: string | undefined;
  /** Opens handed to threads of their own and not reported yet, by token: what their trace record needs. */
  readonly #pending = new Map<number, { readonly name: string; readonly args: readonly string[]; readonly opens: boolean }>();
  readonly #dispatch = new Map<number, { name: string; handler: Handler }>();
  readonly #judge: DenialJudge;
  /** The mounts the sentry owns, longest path first, with the ids that tell their files apart. */
  readonly #mounts: { readonly path: string; readonly fd: number; readonly mntId: bigint }[] = [];
  readonly #statx = Buffer.alloc(256);
  readonly #how = Buffer.alloc(24);
  readonly #link = Buffer.alloc(PATH_MAX);
  readonly #file = Buffer.alloc(8192);
  readonly #notif = Buffer.alloc(NOTIF_SIZE);
  /** What the native fast path may serve for this Sentry; undefined: nothing (no fast wait, or STOCKADE_SENTRY_FAST=0). */
  readonly #fast: FastContext | undefined;

  constructor(k: SentryKernel, opts: SentryOptions, handlers: Readonly<Record<string, Handler>> = HANDLERS) {
    this.k = k;
    this.opts = opts;
    this.creds = threadCreds(k.sys);
    this.#rootFd = opts.rootFd ?? -1;
    const arch = nativeArch();
    this.#judge = denialJudge(arch);
    let links: ExecLinks | undefined;
    for (const m of opts.mounts ?? []) {
      if (m.execLinks === true) links = execLinksOf(m, k.sys, m.fd);
      else this.#mounts.push({ path: m.path, fd: m.fd, mntId: this.#mountId(m.fd, '', AT_EMPTY_PATH) });
    }
    this.execLinks = links;
    this.#mounts.sort((a, b) => b.path.length - a.path.length);
    this.#shadows = opts.shadowRoot === undefined ? undefined : new ShadowDirs(k.sys, opts.shadowRoot.fd, opts.shadowRoot.name);
    for (const e of sentrySyscallTable()) {
      const nr = e.numbers[arch];
      if (nr === undefined || e.handler === null) continue;
      const h = handlers[e.handler];
      if (h !== undefined) this.#dispatch.set(nr, { name: e.name, handler: h });
    }
    this.#fast = this.#fastContext();
  }

  /**
   * The native fast path's context (fast-path.ts), when the host waits with the addon's fastServe
   * (not with STOCKADE_SENTRY_FAST=0). It serves a call only where this Sentry would answer it with
   * the file handlers as they are: a table that serves stat or open otherwise (a test's), or a
   * refusal the filter records for them, keeps those calls here.
   */
  #fastContext(): FastContext | undefined {
    const seam = this.k.fast;
    const abi = abiOf(nativeArch());
    // The addon serves the x86_64 ABI alone, as answer() does.
    if (seam === undefined || abi === undefined || nativeArch() !== 'SCMP_ARCH_X86_64') return undefined;
    const served = (names: readonly string[]): boolean => names.every((name) => {
      const nr = syscallNumber(abi, name);
      const own = HANDLERS[`file.${name}`];
      return nr !== undefined && own !== undefined && !this.#judge.records(nr) && this.#dispatch.get(nr)?.handler === own;
    });
    // Devices whose files this Sentry rewrites (procfs.ts) or stands in for (shadows): their stats and opens stay here.
    const devs: bigint[] = [];
    const st = Buffer.alloc(STAT_SIZE);
    for (const fd of [...this.#mounts.map((m) => m.fd), ...(this.opts.shadowRoot === undefined ? [] : [this.opts.shadowRoot.fd])]) {
      if (this.k.sys(NR.newfstatat, fd, '', st, AT_EMPTY_PATH) < 0) return undefined;
      devs.push(st.readBigUInt64LE(STAT_DEV));
    }
    // Where a relative path's start is JavaScript's (#ownedStart): the owned trees and the shadows, by mount id.
    const mntIds = [...this.#mounts.map((m) => m.mntId), ...(this.#shadows === undefined ? [] : [this.#shadows.mountId])];
    return new FastContext(seam, this.#mounts.map((m) => m.path), devs, mntIds.every((m) => m >= 0n) ? mntIds : undefined, this.creds.capSets, {
      stat: served(['stat', 'lstat', 'newfstatat']), open: served(['open', 'openat']),
    });
  }

  /**
   * What the fast path may serve before the next wait: only while the thread already holds the
   * identity asCaller would take (the plan's ids; the capabilities are compared per call in C),
   * no trace record is wanted, and the root is open.
   */
  fastContext(): Buffer | undefined {
    const f = this.#fast;
    if (f === undefined) return undefined;
    const cur = this.creds.current;
    const enabled = this.#rootFd >= 0 && !this.#identityVaries && this.opts.trace?.enabled() !== true && sameIds(this.opts.user, cur);
    return f.set({ enabled, root: this.#rootFd, caps: cur.caps });
  }

  /** The stats with the fast path's counts added. */
  statsNow(): SentryStats {
    const c = this.#fast?.counts;
    if (c === undefined) return { ...this.stats };
    const s = this.stats;
    return { ...s, notifications: s.notifications + c.served, injected: s.injected + c.injected, errors: s.errors + c.errors, fast: c.served };
  }

  /** The sentry's own identity: its thread's groups are cleared once, so switching back is exact. */
  init(): void {
    this.creds.asSentry();
  }

  get rootFd(): number {
    return this.#rootFd;
  }

  /** Opens the caller's root the first time: the workload's init, pivoted into its root, makes the first call. */
  #ensureRoot(pid: number): number {
    if (this.#rootFd >= 0) return 0;
    const fd = this.asSeen(() => this.openHost(`/proc/${pid}/root`, O_PATH | O_DIRECTORY, 0));
    if (fd < 0) return fd;
    this.#rootFd = fd;
    return 0;
  }

  /**
   * Receives one notification (RECV blocks until there is one) and answers it: false once every
   * process under the filter is gone. A caller killed before its notification was read costs a
   * turn, not a wait: RECV then fails with ENOENT at once.
   */
  serveNext(): boolean {
    const r = this.k.listener.recv(this.#notif);
    if (r === 1) return false;
    if (r === -ENOENT || r === -EINTR) return true;
    if (r < 0) throw new Error(`seccomp listener: receive failed: errno ${-r}`);
    this.answer(decodeNotification(this.#notif));
    return true;
  }

  /** Serves one notification and sends its answer. */
  answer(n: Notification): void {
    this.stats.notifications++;
    this.#caller = n.pid;
    this.#startedOwned = false;
    this.#landedIn = undefined;
    this.#tracing = this.opts.trace?.enabled() === true;
    // A refusal is judged before any handler: the handler serving a call's other arguments never sees it.
    const denial = this.#judge.judge(n);
    const entry = denial === undefined && n.arch === AUDIT_ARCH_X86_64 ? this.#dispatch.get(n.nr) : undefined;
    let reply: Reply;
    if (denial !== undefined) {
      this.stats.denied++;
      reply = -denial.errno;
      this.opts.denied?.({ ...denial, pid: n.pid });
    } else if (entry === undefined) reply = -ENOSYS;
    else {
      const r = this.#ensureRoot(n.pid);
      reply = r < 0 ? r : this.#run(entry.handler, n);
    }
    // The thread keeps the caller's identity for the next call, which is most often the same
    // caller's: two capset calls fewer per served call (a third of a stat here). What needs the
    // sentry's own identity takes it: reading a caller's memory and /proc entries falls back to it
    // when refused (asSeen), bookkeeping asks for it (onHost). The answer needs no identity.
    const l = this.k.listener;
    let injectedAs = -1;
    if (typeof reply === 'number') {
      if (reply < 0) this.stats.errors++;
      l.send(n.id, reply < 0 ? 0n : BigInt(reply), reply < 0 ? reply : 0, 0);
    } else if (reply.kind === 'later') {
      // Answered by the watch the handler left in `later`.
    } else if (reply.kind === 'continue') {
      this.stats.continued++;
      l.send(n.id, 0n, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE);
    } else if (reply.kind === 'pending') {
      // A thread of its own answers it (blocking.ts); its report comes to finished().
      this.stats.handedOff++;
      this.#pending.set(reply.token, { name: entry?.name ?? `syscall_${n.nr}`, args: this.#tracing ? this.#resolved : [], opens: reply.opens });
      this.#resolved = [];
      return;
    } else {
      this.stats.injected++;
      // With ADDFD_FLAG_SEND the install and the answer are one step: the caller never sees a half-done open.
      const r = l.addfd(n.id, reply.fd, reply.cloexec ? O_CLOEXEC : 0, true);
      this.k.sys(NR.close, reply.fd);
      if (r < 0) l.send(n.id, 0n, r, 0);
      injectedAs = r;
    }
    if (this.#tracing) {
      const name = entry?.name ?? denial?.syscall ?? `syscall_${n.nr}`;
      const result = denial !== undefined ? `denied: ${errnoName(denial.errno)}` : this.#refusal ?? reply;
      this.opts.trace?.record(traceRecord(n, name, this.#resolved, result, injectedAs));
      this.#resolved = [];
    }
    this.#refusal = undefined;
  }

  /**
   * A refusal a handler decides (the network policy): counted and recorded as the filter's are
   * (--log, `stockade trace`), naming what was refused and the rule. Returns -errno, the answer.
   */
  refuse(n: Notification, syscall: string, errno: number, address: string, rule: string): number {
    this.stats.denied++;
    this.opts.denied?.({ syscall, errno, pid: n.pid, address, rule });
    if (this.#tracing) this.#refusal = `denied: ${errnoName(errno)} ${address} (${rule})`;
    return -errno;
  }

  /** An argument as the handler read it (an address), for the call's trace record. */
  traceArg(text: string): void {
    if (this.#tracing) this.#resolved.push(text);
  }

  #run(handler: Handler, n: Notification): Reply {
    try {
      return handler(this, n);
    } catch (e) {
      // A handler bug must not leave the caller hanging, nor the sentry dead.
      this.stats.errors++;
      sayOnStderr((e as Error).stack ?? String(e));
      return -ENOSYS;
    }
  }

  // ---- the caller's memory ---------------------------------------------------------------------

  /** A path argument: read once from the caller's memory, then the caller checked to be still waiting. */
  readPath(n: Notification, addr: bigint): string | number {
    if (addr === 0n) return -EFAULT;
    const caps = this.#capsInto(n);
    const s = this.asSeen(() => this.k.memory.readString(n.pid, addr, PATH_MAX, caps));
    this.#capsRead(n, caps);
    if (!this.k.listener.idValid(n.id)) return -ENOENT;
    this.#capsValid = true;
    if (this.#tracing && typeof s === 'string') this.#resolved.push(s);
    return s;
  }

  readStruct(n: Notification, addr: bigint, len: number): Buffer | number {
    if (addr === 0n) return -EFAULT;
    const b = Buffer.alloc(len);
    const caps = this.#capsInto(n);
    const r = this.asSeen(() => this.k.memory.read(n.pid, addr, b, len, caps));
    this.#capsRead(n, caps);
    if (!this.k.listener.idValid(n.id)) return -ENOENT;
    this.#capsValid = true;
    return r === len ? b : r < 0 ? r : -EFAULT;
  }

  /**
   * Writes a result into the caller's memory. The caller is blocked in the call until the answer,
   * so its pid cannot be reused before it: the check covers a caller killed meanwhile.
   */
  writeBack(n: Notification, addr: bigint, data: Uint8Array, len: number): number {
    if (addr === 0n) return -EFAULT;
    if (!this.k.listener.idValid(n.id)) return -ENOENT;
    // A caller that is not dumpable (prctl, an execute-only binary) refuses process_vm_writev to
    // its own ids: the answer is the sentry's to write, so it writes as itself then.
    const r = this.asSeen(() => this.k.memory.write(n.pid, addr, data, len));
    return r === len ? 0 : r < 0 ? r : -EFAULT;
  }

  // ---- paths -----------------------------------------------------------------------------------

  /**
   * Where (dirfd, path) of the caller leads. An absolute path resolves in the root; a relative one
   * is joined to the caller's cwd or dirfd as the caller sees it (from /proc, read by the sentry).
   * `/dev/fd/N`, `/dev/std*` and `/proc/self/fd/N` are the caller's own fds; other `/proc/self`
   * paths name the caller's pid in its own pid namespace.
   */
  target(n: Notification, dirfd: number, path: string, emptyPath: boolean): Target | number {
    if (path === '') {
      if (!emptyPath) return -ENOENT;
      return { inRoot: false, path: dirfd === AT_FDCWD ? `/proc/${n.pid}/cwd` : `/proc/${n.pid}/fd/${dirfd}` };
    }
    let abs = path;
    let fromOwned = false;
    if (path[0] !== '/') {
      const link = dirfd === AT_FDCWD ? `/proc/${n.pid}/cwd` : `/proc/${n.pid}/fd/${dirfd}`;
      // The start is an object, not a name: a shadow of an owned directory (what a caller holds of
      // /proc and /sys) says by its inode which directory it stands for, and the walk is the
      // sentry's alone. Anything else the caller reaches in the root, named by its path there.
      const owned = this.#mounts.length === 0 ? undefined : this.#ownedStart(link);
      if (typeof owned === 'number') return owned;
      let base: string | number;
      if (owned !== undefined) {
        base = owned;
        fromOwned = true;
        this.#startedOwned = true;
      } else {
        base = this.asSeen(() => this.readlinkHost(link));
        if (typeof base === 'number') return dirfd === AT_FDCWD ? base : -9 /* EBADF */;
        if (base[0] !== '/') return -ENOTDIR;
        if (base.endsWith(' (deleted)')) return -ENOENT;
      }
      abs = base === '/' ? `/${path}` : `${base}/${path}`;
    }
    const fd = FD_PATH.exec(abs);
    if (fd !== null) return callerFdTarget(n.pid, Number(fd[2]), fd[1] === 'thread-self');
    const std = STD_PATH.exec(abs);
    if (std !== null) return callerFdTarget(n.pid, std[1] === 'in' ? 0 : std[1] === 'out' ? 1 : 2, false);
    // /dev/fd is the runtime's link to /proc/self/fd, which the sentry resolves per caller.
    if (abs === '/dev/fd' || abs.startsWith('/dev/fd/')) abs = `/proc/self/fd${abs.slice(7)}`;
    const view = this.#procView(n.pid, abs);
    if (typeof view === 'number') return view;
    return this.#ownFd(n.pid, view) ?? { inRoot: true, path: view, fromOwned };
  }

  /**
   * /proc/PID/fd/N or /proc/PID/task/TID/fd/N where PID (and TID) are the caller's own, in its pid
   * namespace: the caller's descriptor, as /proc/self/fd/N is. Another process's fds stay links the
   * sentry does not follow.
   */
  #ownFd(pid: number, path: string): Target | undefined {
    const m = OWN_FD_PATH.exec(path);
    if (m === null) return undefined;
    const ids = this.nsIds(pid);
    if (typeof ids === 'number' || String(ids.tgid) !== m[1]) return undefined;
    if (m[2] !== undefined && String(ids.tid) !== m[2]) return undefined;
    return callerFdTarget(pid, Number(m[3]), m[2] !== undefined);
  }

  /**
   * The owned directory a caller's cwd or fd (a host /proc link) stands for, when it is a shadow;
   * undefined when it is not in an owned tree; a negative errno when it is in one in a way the
   * sentry cannot name (a shadow it no longer remembers, or the real tree, which no caller is given).
   */
  #ownedStart(link: string): string | number | undefined {
    const mask = STATX_MNT_ID | STATX_TYPE;
    let r = this.k.sys(NR.statx, AT_FDCWD, link, 0, mask, this.#statx);
    // The caller's cwd or fd through the host's /proc: refused to another caller's ids (asSeen).
    if (r === -EPERM || r === -EACCES) r = this.onHost(() => this.k.sys(NR.statx, AT_FDCWD, link, 0, mask, this.#statx));
    if (r < 0) return undefined;
    const mnt = this.#statx.readBigUInt64LE(STATX_MNT_ID_OFFSET);
    if (this.#shadows !== undefined && mnt === this.#shadows.mountId) return this.#shadows.standsForStatx(this.#statx) ?? -EXDEV;
    // A directory of the real trees, which no caller is given; a file of them (/proc/self/status
    // open) is the caller's object like any other, and no place to start a walk.
    const dir = (this.#statx.readUInt16LE(STATX_MODE) & S_IFMT) === S_IFDIR;
    return dir && this.#mounts.some((m) => m.mntId === mnt) ? -EXDEV : undefined;
  }

  /** The owned directory a caller's fd or cwd (a host /proc link) stands for, when it is a shadow. */
  shadowLink(link: string): string | undefined {
    if (this.#shadows === undefined) return undefined;
    const r = this.#ownedStart(link);
    return typeof r === 'string' ? r : undefined;
  }

  /** The owned directory a caller's cwd stands for, when it is a shadow (getcwd answers it). */
  shadowCwd(n: Notification): string | undefined {
    if (this.#shadows === undefined) return undefined;
    const r = this.#ownedStart(`/proc/${n.pid}/cwd`);
    return typeof r === 'string' ? r : undefined;
  }

  /** Whether the caller's fd or cwd at `hostPath` is a shadow or otherwise in an owned tree. */
  ownedObject(hostPath: string): boolean {
    return this.#mounts.length > 0 && this.#ownedStart(hostPath) !== undefined;
  }

  /** What a struct stat of a caller's object stands for, when it is a shadow. */
  shadowStat(stat: Buffer): string | undefined {
    return this.#shadows?.standsForStat(stat);
  }

  /** Whether a path of the call being served starts in an owned tree: the kernel must not walk it. */
  get startedOwned(): boolean {
    return this.#startedOwned;
  }

  /** The owned mount (its path) the last open() resolved in; undefined for the root. */
  get landedIn(): string | undefined {
    return this.#landedIn;
  }

  /** Whether the last open() followed a /proc/PID/ns link: stat and access may look at it, no open hands it out. */
  get landedNamespace(): boolean {
    return this.#landedNamespace;
  }

  /**
   * Whether the kernel may finish the call being served (CONTINUE): only if no path of it starts
   * in a tree the sentry owns or resolved in one. The kernel walks the caller's mount namespace,
   * where those trees are not mounted, from the caller's own cwd or dirfd.
   */
  kernelMayFinish(): boolean {
    return !this.#startedOwned && this.#landedIn === undefined;
  }

  /**
   * A shadow of the owned directory `pfd` (an O_PATH fd the sentry resolved in an owned tree): the
   * listing read as the caller (its permission to read the directory is checked), the shadow made
   * as the sentry. The fd to hand the caller, or a negative errno.
   */
  shadowOf(pfd: number): number {
    const shadows = this.#shadows;
    const mount = this.#landedIn;
    if (shadows === undefined || mount === undefined) return -EACCES;
    const dir = this.openHost(`/proc/self/fd/${pfd}`, O_DIRECTORY, 0);
    if (dir < 0) return dir;
    const listing = readListing(this.k.sys, dir, this.#file);
    this.close(dir);
    if (typeof listing === 'number') return listing;
    // The directory's path in its tree: the tree is detached, so it reads from the tree's root.
    const inTree = this.readlinkHost(`/proc/self/fd/${pfd}`);
    if (typeof inTree === 'number') return inTree;
    const path = inTree === '/' ? mount : `${mount}${inTree}`;
    // Of /sys a listing shows only the names a lookup finds (SYS_VISIBLE): a program that walks
    // what it lists must not meet ENOENT for a name it was just given.
    const base = inTree === '/' ? '' : inTree;
    const shown = mount === '/sys' ? listing.filter((e) => this.#sysVisible(`${base}/${e.name}`)) : listing;
    return this.onHost(() => shadows.make(this.#withOwnFd(shown, path), path));
  }

  /**
   * procfs lists a process's fds when they are read, so the caller's own /proc/self/fd shows the
   * directory's fd too; a shadow is listed as it was made, before the caller has that fd. It is the
   * lowest free number (NOTIF_ADDFD installs there), so it is put in where procfs would show it.
   */
  #withOwnFd(listing: Entry[], path: string): Entry[] {
    const m = /^\/proc\/(\d+)(?:\/task\/\d+)?\/fd$/.exec(path);
    if (m === null) return listing;
    const ids = this.nsIds(this.#caller);
    if (typeof ids === 'number' || String(ids.tgid) !== m[1]) return listing;
    const held = new Set(listing.map((e) => Number(e.name)));
    let free = 0;
    while (held.has(free)) free++;
    const at = listing.findIndex((e) => Number(e.name) > free);
    const own: Entry = { name: String(free), dir: false, link: true };
    return at < 0 ? [...listing, own] : [...listing.slice(0, at), own, ...listing.slice(at)];
  }

  /** `abs` with /proc/self and /proc/thread-self naming the caller `pid` in its own pid namespace. */
  #procView(pid: number, abs: string): string | number {
    // procfs's own links to the reader's entry, which for the sentry (in no pid namespace of the
    // container's procfs) lead nowhere: taken as the caller's.
    const viaSelf = PROC_SELF_LINK.exec(abs);
    if (viaSelf !== null) abs = `/proc/self/${viaSelf[1] ?? ''}${abs.slice(viaSelf[0].length)}`;
    const self = PROC_SELF.exec(abs);
    if (self === null) return abs;
    const ids = this.nsIds(pid);
    if (typeof ids === 'number') return ids;
    const at = self[1] === 'self' ? `/proc/${ids.tgid}` : `/proc/${ids.tgid}/task/${ids.tid}`;
    return at + abs.slice(self[0].length);
  }

  /**
   * Opens a target with the sentry's thread (as the caller, once `asCaller` ran): an fd, or a
   * negative errno. A path under a mount the sentry owns resolves in that mount's tree; any other
   * in the root.
   */
  open(t: Target, flags: number, mode: number): number {
    this.#landedIn = undefined;
    this.#landedNamespace = false;
    if (!t.inRoot) {
      // The caller's fd or cwd: a shadow is the directory it stands for, and an entry of a shadow
      // (what a raced walk of the kernel's could give) is nothing the sentry acts on. With
      // O_NOFOLLOW, the link /proc/PID/fd/N itself (lstat of /proc/self/fd/N).
      const owned = this.#shadows === undefined || (flags & O_NOFOLLOW) !== 0 ? undefined : this.#ownedStart(t.path);
      if (typeof owned === 'string') return this.open({ inRoot: true, path: owned }, flags, mode);
      if (typeof owned === 'number') return owned;
      // Followed as the sentry only ever to pin the object (O_PATH grants no access): opening a
      // caller's fd is openCallerFd's, as the caller.
      return (flags & O_PATH) === 0 ? -EACCES : this.onHost(() => this.openHost(t.path, flags, mode));
    }
    if ((flags & O_NOFOLLOW) === 0) {
      const ns = this.#openNamespace(t.path, flags);
      if (ns !== undefined) return ns;
    }
    const at = this.#route(t.path);
    const r = this.#openRouted(at, flags, mode);
    if (r !== -ENOENT || at.fd !== this.#rootFd || this.#mounts.length === 0) return r;
    // The kernel walks the root alone: a symlink of the root's into an owned mount
    // (/etc/mtab -> ../proc/self/mounts) ends in the root's empty mountpoint. Follow it here.
    const real = this.#throughLinks(t.path, (flags & O_NOFOLLOW) === 0);
    const view = real === undefined ? undefined : this.#procView(this.#caller, real);
    if (typeof view !== 'string') return r;
    const there = this.#route(view);
    return there.fd === this.#rootFd ? r : this.#openRouted(there, flags, mode);
  }

  /** Opens what #route found: in /sys through #openSys, elsewhere by the kernel within that tree. */
  #openRouted(at: { fd: number; rest: string; sys?: boolean }, flags: number, mode: number): number {
    this.#landedIn = at.fd === this.#rootFd ? undefined : this.#mounts.find((m) => m.fd === at.fd)?.path;
    if (at.sys === true) return this.#openSys(at.fd, at.rest, flags, mode);
    return this.#openat2(at.fd, at.rest, flags, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
  }

  /**
   * Which tree a path of the container resolves in: an owned mount's, with the rest of the path,
   * or the root. Only what cannot cross a symlink is taken by name: repeated slashes, "." and a
   * ".." right at the mount's root (its mountpoint is a directory, no link). Anything else,
   * "/proc/1/root/.." included, the kernel resolves in the tree the prefix names.
   */
  #route(path: string): { fd: number; rest: string; sys?: boolean } {
    if (this.#mounts.length === 0) return { fd: this.#rootFd, rest: path };
    const p = path.replace(/\/(?:\.?\/)+/g, '/').replace(/^\/\.$/, '/');
    for (const m of this.#mounts) {
      if (p !== m.path && !p.startsWith(`${m.path}/`)) continue;
      const rest = p.slice(m.path.length);
      const up = /^(?:\/\.\.?(?=\/|$))+/.exec(rest);
      if (up !== null && up[0].includes('..')) return this.#route(`${posix.dirname(m.path)}/${rest.slice(up[0].length)}`);
      return { fd: m.fd, rest: rest === '' ? '/' : rest, sys: m.path === '/sys' };
    }
    return { fd: this.#rootFd, rest: path };
  }

  /**
   * Whether the caller sees a path below /sys: what SYS_VISIBLE names, and of the CPUs as many as
   * the container has (cpuinfo's count, /sys/devices/system/cpu/online's "0-N"): a program that
   * counts the cpuN directories (hwloc, lscpu, the JVM) must find the same number.
   */
  #sysVisible(rest: string): boolean {
    if (!sysVisible(rest)) return false;
    const cpu = SYS_CPU.exec(rest);
    return cpu === null || Number(cpu[1]) < containerCpuCount(this, this.#caller);
  }

  /**
   * Opens a path of sysfs, of which the workload sees only what SYS_VISIBLE names: sysfs is full of
   * links (a CPU's `subsystem`, a NIC's `device`) that lead elsewhere in it, so the sentry follows
   * them itself, component by component, and checks where the path really is before the kernel,
   * told to follow no link at all, opens it.
   */
  #openSys(fd: number, rest: string, flags: number, mode: number): number {
    const w = this.#walk(fd, rest, (flags & O_NOFOLLOW) === 0, (p) => (this.#sysVisible(p) ? undefined : -ENOENT));
    if (typeof w === 'number') return w;
    return this.#sysVisible(w.at) ? this.#openat2(fd, w.at, flags, mode, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS) : -ENOENT;
  }

  /**
   * Walks `path` in the tree `fd` one component at a time, following symlinks itself (at most 40;
   * the last one only with `followLast`), and shows `enter` each path it reaches: a negative errno
   * fails the walk, 'stop' ends it there with the components not walked yet. What it reaches
   * holds no symlink, so ".." is taken by name.
   */
  #walk(fd: number, path: string, followLast: boolean, enter: (p: string) => number | 'stop' | undefined):
    { at: string; rest: string[]; stopped: boolean } | number {
    const todo = path.split('/').reverse();
    let done = '';
    let links = 0;
    while (todo.length > 0) {
      const c = todo.pop() as string;
      if (c === '' || c === '.') continue;
      if (c === '..') {
        done = done.slice(0, done.lastIndexOf('/'));
        continue;
      }
      const next = `${done}/${c}`;
      const e = enter(next);
      if (typeof e === 'number') return e;
      if (e === 'stop') return { at: next, rest: todo.reverse(), stopped: true };
      if (!followLast && todo.every((x) => x === '' || x === '.')) return { at: next, rest: [], stopped: false };
      const at = this.#openat2(fd, next, O_PATH | O_NOFOLLOW, 0, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS);
      if (at < 0) return at;
      const len = this.k.sys(NR.readlinkat, at, '', this.#link, PATH_MAX);
      this.close(at);
      if (len < 0) {
        done = next;
        continue;
      }
      if (++links > 40) return -ELOOP;
      const target = this.#link.toString('utf8', 0, len);
      if (target.startsWith('/')) done = '';
      todo.push(...target.split('/').reverse());
    }
    return { at: done === '' ? '/' : done, rest: [], stopped: false };
  }

  /**
   * The path with the root's symlinks followed by the sentry, component by component, up to the
   * first component inside an owned mount (the rest resolves in that tree); undefined when no
   * symlink leads into one, when a component is missing, or past 40 links (ELOOP's limit).
   * Walks only after a cheap check shows the path has a symlink at all.
   */
  #throughLinks(path: string, followLast: boolean): string | undefined {
    // "/tmp/../proc" reaches an owned mount through the root, as a symlink may.
    if (!/(?:^|\/)\.\.(?:\/|$)/.test(path)) {
      const probe = this.#openat2(this.#rootFd, path, O_PATH, 0, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS);
      if (probe >= 0) this.close(probe);
      if (probe !== -ELOOP) return undefined;
    }
    const w = this.#walk(this.#rootFd, path, followLast, (p) => (this.#route(p).fd !== this.#rootFd ? 'stop' : undefined));
    return typeof w === 'number' || !w.stopped ? undefined : [w.at, ...w.rest].join('/');
  }

  /**
   * A read-only fd of the executable /proc/PID/exe names (PID in the container), or undefined when
   * `path` is not such a link or the sentry owns no procfs. The one magic link the sentry follows:
   * the last component, from the pid's directory in the container's own procfs, as the caller (the
   * kernel's ptrace check on the process applies). Never for writing (CVE-2019-5736).
   */
  openExe(path: string): number | undefined {
    const dir = this.#exeDir(path);
    if (dir === undefined || dir < 0) return dir;
    const fd = this.#openat2(dir, 'exe', 0 /* O_RDONLY */, 0, 0);
    this.close(dir);
    return fd;
  }

  /** Whether a path (with /proc/self made the caller's pid) is a process's /proc/PID/exe link. */
  isExeLink(path: string): boolean {
    return EXE_PATH.test(path);
  }

  /**
   * What /proc/PID/exe says (PID in the container), as the caller: the executable's path in the
   * root for a process of the container (the kernel writes a path of another mount namespace
   * from that namespace's root); undefined when `path` is no such link.
   */
  readExeLink(path: string): string | number | undefined {
    const dir = this.#exeDir(path);
    if (dir === undefined || dir < 0) return dir;
    const len = this.k.sys(NR.readlinkat, dir, 'exe', this.#link, PATH_MAX);
    this.close(dir);
    return len < 0 ? len : this.#link.toString('utf8', 0, len);
  }

  /** The pid's directory of /proc/PID/exe in the container's procfs (O_PATH), as the caller. */
  #exeDir(path: string): number | undefined {
    if (!EXE_PATH.test(path)) return undefined;
    const at = this.#route(path.slice(0, -'/exe'.length));
    if (at.fd === this.#rootFd) return undefined;
    return this.#openat2(at.fd, at.rest, O_PATH | O_DIRECTORY, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
  }

  /**
   * Writes `text` and a NUL over the caller's string at `addr`, through /proc/TID/mem as the
   * sentry: a path the caller passed often lies in read-only memory (busybox's "/proc/self/exe"),
   * which process_vm_writev cannot write and a debugger's write (FOLL_FORCE) copies privately.
   * Only into a private mapping or one the caller may write itself (the kernel's FOLL_FORCE rule),
   * so it changes nothing but the caller's own memory. 0 or a negative errno.
   */
  rewriteString(n: Notification, addr: bigint, text: string): number {
    const data = Buffer.from(`${text}\0`, 'utf8');
    const fd = this.onHost(() => this.openHost(`/proc/${n.pid}/mem`, O_WRONLY | O_CLOEXEC, 0));
    if (fd < 0) return fd;
    // The open took the memory of whatever task had that tid: still waiting in this call after
    // it, it was the caller (a caller killed before, whose tid went to another task, is not).
    const r = this.k.listener.idValid(n.id) ? this.k.sys(NR.pwrite64, fd, data, data.length, addr) : -ENOENT;
    this.close(fd);
    return r === data.length ? 0 : r < 0 ? r : -EFAULT;
  }

  /**
   * /proc/PID/ns/NAME followed (stat, access, an open), from the pid's directory in the
   * container's own procfs, as the caller (the kernel's ptrace check on the process applies): the
   * namespace file, whose inode programs compare to learn whether two processes share a namespace
   * (`test -e /proc/self/ns/user`, `-ef`). Looked at only: an open of one stays refused (ELOOP,
   * sys-file.ts openAt), as a namespace fd serves setns and NS_GET_* ioctls, which no program in a
   * sentry container may use. No flag that writes or creates. Undefined when
   * `path` is no such link; a negative errno when it is one the caller may not follow.
   */
  #openNamespace(path: string, flags: number): number | undefined {
    if (!NS_PATH.test(path)) return undefined;
    if ((flags & (O_ACCMODE | O_CREAT | O_TMPFILE | O_TRUNC)) !== 0) return -EACCES;
    const slash = path.lastIndexOf('/');
    const at = this.#route(path.slice(0, slash));
    if (at.fd === this.#rootFd) return undefined;
    const dir = this.#openat2(at.fd, at.rest, O_PATH | O_DIRECTORY, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    if (dir < 0) return dir;
    const fd = this.#openat2(dir, path.slice(slash + 1), flags, 0, 0);
    this.close(dir);
    this.#landedNamespace = fd >= 0;
    return fd;
  }

  /** statx's mount id of (dirfd, path), or a negative errno. */
  #mountId(dirfd: number, path: string, flags: number): bigint {
    const r = this.k.sys(NR.statx, dirfd, path, flags, STATX_MNT_ID, this.#statx);
    return r < 0 ? BigInt(r) : this.#statx.readBigUInt64LE(STATX_MNT_ID_OFFSET);
  }

  /** Opens a host path (the workload's entries in the host's /proc), following magic links as the host does. */
  openHost(path: string, flags: number, mode: number): number {
    return this.#openat2(AT_FDCWD, path, flags, mode, 0);
  }

  openBeneath(dirfd: number, path: string, flags: number, mode: number, resolve: number): number {
    return this.#openat2(dirfd, path, flags, mode, resolve | RESOLVE_NO_MAGICLINKS);
  }

  #openat2(dirfd: number, path: string, flags: number, mode: number, resolve: number): number {
    const how = this.#how;
    // openat2 refuses what open(2) ignores: unknown flags, a mode without O_CREAT or O_TMPFILE,
    // and flags besides O_CLOEXEC, O_DIRECTORY and O_NOFOLLOW with O_PATH.
    let f = (flags & OPEN_FLAGS) | O_CLOEXEC;
    if ((f & O_PATH) !== 0) f &= O_PATH | O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW;
    else f |= O_NOCTTY; // never a controlling terminal: the sentry is not the process that asked
    const creates = (f & O_CREAT) !== 0 || (f & O_TMPFILE) === O_TMPFILE;
    how.writeBigUInt64LE(BigInt(f), 0);
    how.writeBigUInt64LE(BigInt(creates ? mode & 0o7777 : 0), 8);
    how.writeBigUInt64LE(BigInt(resolve), 16);
    let r: number;
    // EAGAIN: a scoped lookup (RESOLVE_IN_ROOT, _BENEATH) met a rename or mount during "..", and
    // the kernel asks to be called again (openat2(2)); a few times, as a lease break also says EAGAIN.
    let again = 8;
    do r = this.k.sys(NR.openat2, dirfd, path, how, 24);
    while (r === -EINTR || (r === -EAGAIN && (resolve & (RESOLVE_IN_ROOT | RESOLVE_BENEATH)) !== 0 && again-- > 0));
    return r;
  }

  /**
   * Runs `op` on a caller's own objects through the host's /proc (its memory, cwd, fds, status)
   * with the thread's identity as it is, usually that caller's, and again as the sentry when the
   * kernel refuses it (EPERM, EACCES): its ptrace check passes on equal ids without a capability,
   * but another caller's ids, or a non-dumpable caller, want the sentry's CAP_SYS_PTRACE.
   */
  asSeen<T>(op: () => T): T {
    const r = op();
    return r === -EPERM || r === -EACCES ? this.onHost(op) : r;
  }

  /**
   * Runs `op` as the sentry: the caller's own fds and cwd are reached through the host's
   * /proc/PID, whose entries the kernel guards with a ptrace check the caller's ids need not pass
   * (a non-dumpable caller, or one without CAP_SYS_PTRACE) although the objects are its own.
   */
  onHost<T>(op: () => T): T {
    const caller = this.creds.current;
    this.creds.asSentry();
    try {
      return op();
    } finally {
      this.creds.become(caller);
    }
  }

  close(fd: number): void {
    this.k.sys(NR.close, fd);
  }

  readlinkHost(path: string): string | number {
    const r = this.k.sys(NR.readlinkat, AT_FDCWD, path, this.#link, PATH_MAX);
    if (r < 0) return r;
    return this.#link.toString('utf8', 0, r);
  }

  /** A host file (/proc/PID/status, a cgroup's), read whole with the thread's identity as it is. */
  readHostFile(path: string): string | number {
    const fd = this.openHost(path, 0, 0);
    return fd < 0 ? fd : this.readFd(fd);
  }

  /** Everything `fd` holds from its offset to its end, as text; the fd is closed either way. */
  readFd(fd: number): string | number {
    const parts: Buffer[] = [];
    for (;;) {
      const r = this.k.sys(NR.read, fd, this.#file, this.#file.length);
      if (r === -EINTR) continue;
      if (r < 0) {
        this.close(fd);
        return r;
      }
      if (r === 0) break;
      parts.push(Buffer.from(this.#file.subarray(0, r)));
    }
    this.close(fd);
    return Buffer.concat(parts).toString('utf8');
  }

  /** The caller's process and thread ids in its own pid namespace (the last NStgid and NSpid fields). */
  nsIds(pid: number): { tgid: number; tid: number } | number {
    const status = this.asSeen(() => this.readHostFile(`/proc/${pid}/status`));
    if (typeof status === 'number') return status;
    const last = (key: string): number | undefined => {
      const m = new RegExp(`^${key}:\\s*(.*)$`, 'm').exec(status);
      const v = m?.[1]?.trim().split(/\s+/).pop();
      return v === undefined ? undefined : Number(v);
    };
    const tgid = last('NStgid');
    const tid = last('NSpid');
    if (tgid === undefined || tid === undefined) return -EINVAL;
    return { tgid, tid };
  }

  // ---- opens that may block ---------------------------------------------------------------------

  /**
   * Hands the open of `src` (an fd of the sentry's, taken over) with `flags` to a thread of its own,
   * as the identity the serving thread holds now (the caller's: asCaller ran), which answers the
   * caller itself; or refuses it (EAGAIN) when no thread can take it.
   */
  handOff(n: Notification, src: number, flags: number, cloexec: boolean, op: 'open' | 'syncfs' = 'open'): Reply {
    const token = nextToken();
    const creds = this.creds.current;
    const r = this.k.blocking?.({
      id: n.id, pid: n.pid, src, flags, cloexec, token, limitMs: this.opts.blockLimitMs ?? DEFAULT_BLOCK_LIMIT_MS,
      creds: { ...creds, groups: creds.groups.filter((g) => g >= 0) }, op,
    }) ?? -EAGAIN;
    if (r >= 0) return { kind: 'pending', token, opens: op === 'open' };
    this.close(src);
    const name = this.#dispatch.get(n.nr)?.name ?? `syscall_${n.nr}`;
    this.opts.stuck?.({ syscall: name, pid: n.pid, waitedMs: 0, errno: -r });
    return r;
  }

  /** A thread's report on an open it was handed: counted, traced, and logged when it waited past its limit. */
  finished(rep: BlockingReport): void {
    const p = this.#pending.get(rep.token);
    if (p === undefined) return;
    this.#pending.delete(rep.token);
    if (rep.outcome !== 'gone') {
      if (rep.result < 0) this.stats.errors++;
      else if (p.opens) this.stats.injected++;
    }
    if (rep.outcome === 'limit') this.opts.stuck?.({ syscall: p.name, pid: rep.pid, waitedMs: rep.waitedMs, errno: -rep.result });
    if (this.opts.trace?.enabled() === true) {
      const result = rep.outcome === 'gone' ? `gone after ${rep.waitedMs} ms` : rep.result >= 0 && p.opens ? `fd ${rep.result}` : rep.result;
      this.opts.trace.record({ time: new Date().toISOString(), pid: rep.pid, syscall: p.name, args: p.args, result });
    }
  }

  // ---- identity --------------------------------------------------------------------------------

  /** An identity call was made: callers' ids can no longer be assumed to be the plan's. */
  identityChanged(): void {
    this.#identityVaries = true;
  }

  /**
   * Reads the caller's effective capabilities for notification `n` (capget), once per
   * notification, unless a read of its memory brought them (#capsInto): the NOTIF_ID_VALID check
   * that follows says the thread read is still the caller (not a task that reused its id).
   */
  #takeCallerCaps(n: Notification): void {
    if (this.#capsId === n.id) return;
    this.#capsId = n.id;
    this.#capsValid = false;
    this.#callerCaps = this.k.callerCaps?.(n.pid) ?? effectiveCapsOf(this.k.sys, n.pid);
  }

  /**
   * The buffer a read of the caller's memory fills first with its capabilities (one call into the
   * addon instead of two: the call costs more than the capget), while this notification's are not
   * read yet; undefined when they are, or when a test's seam gives them.
   */
  #capsInto(n: Notification): Buffer | undefined {
    if (this.#capsId === n.id || this.k.callerCaps !== undefined) return undefined;
    this.#capsBuf.writeInt32LE(1, 8);
    return this.#capsBuf;
  }

  /** Takes what a read given #capsInto's buffer left there (status 1: not filled, read them now). */
  #capsRead(n: Notification, buf: Buffer | undefined): void {
    const status = buf === undefined ? 1 : buf.readInt32LE(8);
    if (buf !== undefined && status !== 1) {
      this.#capsId = n.id;
      this.#capsValid = false;
      const lo = buf.readUInt32LE(0);
      const hi = buf.readUInt32LE(4);
      // Mostly the same set call after call: the bigint of the last one.
      if (status < 0) this.#callerCaps = status;
      else if (lo === this.#capsLo && hi === this.#capsHi) this.#callerCaps = this.#capsLast;
      else {
        this.#capsLo = lo;
        this.#capsHi = hi;
        this.#capsLast = BigInt(lo) | (BigInt(hi) << 32n);
        this.#callerCaps = this.#capsLast;
      }
    }
    this.#takeCallerCaps(n);
  }

  /**
   * Takes the caller's file-system identity for the operation that follows, and its umask when
   * the operation creates files. Returns 0 or a negative errno.
   *
   * The capabilities are the calling thread's effective set as the kernel holds it at this call
   * (capget), never the config's: a uid-1000 workload given Docker's capabilities holds none
   * after its execve, and the sentry must not lend it any. The ids are the plan's until the first
   * identity call (set*id, setgroups: the only ways they change, no_new_privs keeping setuid
   * bits from acting), then read from the caller's /proc status at each call.
   */
  asCaller(n: Notification, creates: boolean): number {
    this.#takeCallerCaps(n);
    let ids: Omit<Creds, 'caps'> = this.opts.user;
    if (this.#identityVaries || creates) {
      const status = this.asSeen(() => this.readHostFile(`/proc/${n.pid}/status`));
      if (typeof status === 'number') return status;
      const parsed = parseStatusCreds(status);
      if (parsed === undefined) return -EINVAL;
      if (this.#identityVaries) {
        ids = parsed.creds;
        this.#capsValid = false;
      }
      // The serving thread unshared CLONE_FS, so this umask is its thread's alone.
      if (creates) this.k.sys(NR.umask, parsed.umask);
    }
    const caps = this.#callerCaps;
    if (typeof caps === 'number') return caps;
    // What was read of the caller is its own only if it still waits in this call.
    if (!this.#capsValid && !this.k.listener.idValid(n.id)) return -ENOENT;
    this.#capsValid = true;
    return this.creds.become({ uid: ids.uid, gid: ids.gid, groups: ids.groups, caps });
  }
}

let tokens = 0;

/** Tokens are the process's, not a Sentry's: a late report of a listener gone, whose fd number a new one took, matches nothing. */
function nextToken(): number {
  tokens = (tokens + 1) >>> 0;
  return tokens;
}

function callerFdTarget(pid: number, fd: number, thread: boolean): Target {
  return { inRoot: false, path: `/proc/${pid}/fd/${fd}`, callerFd: { fd, thread } };
}

function traceRecord(n: Notification, name: string, paths: readonly string[], reply: Reply | string, injectedAs: number): TraceRecord {
  const result = typeof reply === 'number' || typeof reply === 'string' ? reply : reply.kind === 'continue' ? `continue: ${reply.why}`
    : reply.kind === 'later' ? `later: ${reply.what}` : reply.kind === 'pending' ? 'pending' : injectedAs >= 0 ? `fd ${injectedAs}` : injectedAs;
  const args = paths.length > 0 ? paths : n.args.map((a) => `0x${a.toString(16)}`);
  return { time: new Date().toISOString(), pid: n.pid, syscall: name, args, result };
}
