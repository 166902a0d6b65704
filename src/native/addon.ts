// Typed access to the N-API addon (native/addon/addon.c), loaded on first use.
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { StockadeError } from '../errors';
import { packageRoot } from './paths';

/**
 * What every addon function throws when its syscall fails, shaped like Node's own system errors:
 * `code` is the errno name ('ESRCH'), `errno` its negated value (as Node and libuv report it),
 * `syscall` the call that failed. Bad arguments throw TypeError/RangeError with ERR_INVALID_ARG_*.
 */
export interface AddonSystemError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;
}

export type LockOp = 'sh' | 'ex' | 'un';

export interface ChildExit {
  /** The exit status, or null when a signal ended the process. */
  readonly code: number | null;
  /** The number of the signal that ended the process, or null when it exited. */
  readonly signal: number | null;
}

export interface ReceivedFd {
  /** The received descriptor (close-on-exec), or null when the message carried none (EOF included). */
  readonly fd: number | null;
  readonly data: Buffer;
}

const CONSTANT_NAMES = [
  'AT_FDCWD', 'O_PATH', 'O_CLOEXEC', 'O_DIRECTORY', 'O_NOFOLLOW',
  'RESOLVE_NO_XDEV', 'RESOLVE_NO_MAGICLINKS', 'RESOLVE_NO_SYMLINKS', 'RESOLVE_BENEATH', 'RESOLVE_IN_ROOT',
] as const;

export type AddonConstants = Readonly<Record<(typeof CONSTANT_NAMES)[number], number>>;

/** What SECCOMP_GET_NOTIF_SIZES reports: the kernel's sizes of its notification structures. */
export interface NotifSizes {
  readonly notif: number;
  readonly resp: number;
  readonly data: number;
}

/** A raw syscall argument: an integer, the address of a buffer's bytes, a NUL-terminated copy of a
 *  string (freed after the call), or 0 for null and undefined. */
export type SyscallArg = number | bigint | string | Uint8Array | ArrayBufferView | ArrayBuffer | null | undefined;

/**
 * The sentry supervisor's hot path (native/addon/notify.c). None of these throws for a failed
 * syscall: each returns the negated errno instead (arguments of the wrong type throw TypeError, a
 * buffer too short RangeError). All work in a worker_thread.
 */
export interface SentryNative {
  /** SECCOMP_GET_NOTIF_SIZES, or -errno where the kernel has no user notification. */
  notifSizes(): NotifSizes | number;
  /** Waits for a notification and reads it into buf (at least `notif` bytes, zeroed here): u64 id,
   *  u32 pid, u32 flags, then struct seccomp_data (i32 nr, u32 arch, u64 ip, u64 args[6]).
   *  0, 1 when every task under the filter has exited, -ENOENT when the notification vanished
   *  before it was read (try again), or another -errno. EINTR is retried. */
  notifRecv(listener: number, buf: Uint8Array): number;
  /** SECCOMP_IOCTL_NOTIF_SEND: error is 0 or a negative errno; flags may be
   *  SECCOMP_USER_NOTIF_FLAG_CONTINUE. 0, or -ENOENT when the task is gone, or -errno. */
  notifSend(listener: number, id: bigint, val: bigint, error: number, flags: number): number;
  /** SECCOMP_IOCTL_NOTIF_ADDFD: the new fd's number in the task, or -errno. With send
   *  (SECCOMP_ADDFD_FLAG_SEND) the kernel also answers the notification with it, atomically. */
  notifAddfd(listener: number, id: bigint, srcfd: number, newfdFlags: number, send: boolean): number;
  /** SECCOMP_IOCTL_NOTIF_ID_VALID: the notification's task still waits for an answer. */
  notifIdValid(listener: number, id: bigint): boolean;
  /** SECCOMP_IOCTL_NOTIF_SET_FLAGS (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, Linux 6.6): 0 or -errno. */
  notifSetFlags(listener: number, flags: number): number;
  /** process_vm_readv of len bytes into buf: the bytes read (short at unmapped memory) or -errno.
   *  `caps` (12 bytes or more): first receives thread pid's effective capabilities (u32 low, u32 high)
   *  and 0, or -errno, as an int32 at byte 8 (capget). */
  memRead(pid: number, addr: bigint, buf: Uint8Array, len: number, caps?: Uint8Array): number;
  /** The NUL-terminated string at addr, read a page at a time; its NUL must lie within max bytes
   *  (else -ENAMETOOLONG); -EFAULT on a bad address. Decoded as UTF-8, so a path whose bytes are
   *  not UTF-8 comes back changed (U+FFFD). */
  memReadString(pid: number, addr: bigint, max: number, caps?: Uint8Array): string | number;
  /** process_vm_writev of len bytes of data: the bytes written or -errno. */
  memWrite(pid: number, addr: bigint, data: Uint8Array, len: number): number;
  /** syscall(2) on this thread: the result, or -errno. EINTR is not retried. */
  syscall(nr: number, a0?: SyscallArg, a1?: SyscallArg, a2?: SyscallArg, a3?: SyscallArg, a4?: SyscallArg,
    a5?: SyscallArg): number;
  /** sendmsg(2) of `data` (one iovec) on fd to `name` (a sockaddr, or null) with `control`
   *  (ancillary data, or null): the bytes sent or -errno. EINTR is retried. */
  sendMessage(fd: number, data: Uint8Array, name: Uint8Array | null, control: Uint8Array | null, flags: number): number;
  /** Sets no_new_privs and loads `program` (struct sock_filter[]) as a seccomp filter on the
   *  calling thread only: 0 or -errno. */
  confineThread(program: Buffer): number;
  /** The fd the reports of blocking opens come on (non-blocking), or -errno; installs the threads'
   *  tick signal. Once per process, before the serving thread confines itself. */
  blockingInit(): number;
  /** Hands an open that may block to a thread of its own, which answers the notification itself
   *  (native/addon/blocking.c; the request's layout is src/sentry/blocking.ts's): 0, the request's
   *  src fd the thread's from then on, or -errno (-EAGAIN: too many wait already). */
  blockingOpen(listener: number, request: Buffer, groups: Buffer): number;
  /** ppoll over `pollfds` that serves the stats and opens of fast-path listeners itself
   *  (native/addon/fastpath.c; src/sentry/fast-path.ts): the pollfds left with revents, or -errno;
   *  a notification it leaves to JavaScript is in `out` (its listener at 0, -1 for none). */
  fastServe(pollfds: Buffer, nfds: number, timeout: Buffer | null, busyTimeout: Buffer | null, contexts: readonly Buffer[], out: Buffer): number;
  /** The layout of a fast-path context and its flag bits (fastpath.c, struct fast_ctx). */
  fastLayout(): FastLayout;
}

/** Offsets of struct fast_ctx (native/addon/fastpath.c) and its flag bits. */
export interface FastLayout {
  readonly listener: number;
  readonly root: number;
  readonly flags: number;
  readonly capsLo: number;
  readonly capsHi: number;
  readonly nDevs: number;
  readonly devs: number;
  readonly maxDevs: number;
  readonly nMnts: number;
  readonly ownLo: number;
  readonly permittedLo: number;
  readonly inheritableLo: number;
  readonly heldLo: number;
  readonly mntIds: number;
  readonly served: number;
  readonly injected: number;
  readonly errors: number;
  readonly mounts: number;
  readonly enabled: number;
  readonly stat: number;
  readonly open: number;
  readonly hasMounts: number;
  readonly relative: number;
  readonly notifOffset: number;
  readonly outSize: number;
}

const SENTRY_FUNCTIONS = [
  'notifSizes', 'notifRecv', 'notifSend', 'notifAddfd', 'notifIdValid', 'notifSetFlags', 'memRead',
  'memReadString', 'memWrite', 'syscall', 'sendMessage', 'confineThread', 'blockingInit', 'blockingOpen',
  'fastServe', 'fastLayout',
] as const satisfies readonly (keyof SentryNative)[];

/** The binding exactly as the C side exports it. */
interface Binding extends SentryNative {
  flock(fd: number, op: LockOp, nonblock?: boolean): void;
  flockAsync(fd: number, op: 'sh' | 'ex'): Promise<void>;
  pidfdOpen(pid: number): number;
  pidfdSendSignal(pidfd: number, signal: number): void;
  pidfdGetfd(pidfd: number, targetfd: number): number;
  waitPidfd(pidfd: number): Promise<ChildExit>;
  setChildSubreaper(): void;
  socketpair(): [number, number];
  sendFd(socketFd: number, fd: number, data?: Uint8Array): void;
  recvFd(socketFd: number, maxData?: number): ReceivedFd;
  openat2(dirfd: number, path: string, flags: number, mode?: number, resolve?: number): number;
  unixListen(path: string, backlog?: number): number;
  unixConnect(path: string): number;
  accept(socketFd: number): number;
  peerCred(socketFd: number): [number, number, number];
  peerPidfd(socketFd: number): number;
  setWinsize(fd: number, rows: number, cols: number): void;
  setOnlcr(fd: number, on: boolean): boolean;
  takeCookedInput(fd: number): [Buffer, boolean];
  readAvailable(fd: number, max: number): Buffer;
  openPty(): [number, number, string];
  getWinsize(fd: number): [number, number];
  mallocTrim(): boolean;
  execBlocked(path: string, args: readonly string[], signals: readonly number[]): never;
  holdSignals(signals: readonly number[]): void;
  releaseSignals(): void;
  bpfDeviceProgLoad(insns: Buffer, license: string): number;
  bpfCgroupDeviceAttach(cgroupFd: number, progFd: number): number;
  bpfCgroupDevicePrograms(cgroupFd: number): number[];
  constants: AddonConstants;
}

const FUNCTIONS = [
  'flock', 'flockAsync', 'pidfdOpen', 'pidfdSendSignal', 'pidfdGetfd', 'waitPidfd',
  'setChildSubreaper', 'socketpair', 'sendFd', 'recvFd', 'openat2', 'unixListen', 'unixConnect', 'accept', 'peerCred', 'peerPidfd', 'setWinsize', 'setOnlcr', 'takeCookedInput', 'readAvailable', 'openPty', 'getWinsize',
  'mallocTrim', 'execBlocked', 'holdSignals', 'releaseSignals', 'bpfDeviceProgLoad', 'bpfCgroupDeviceAttach', 'bpfCgroupDevicePrograms', ...SENTRY_FUNCTIONS,
] as const;

let loaded: Binding | undefined;

/** Where the build puts the addon; STOCKADE_ADDON overrides it, as STOCKADE_INIT does for the helper. */
export function addonPath(): string {
  return process.env['STOCKADE_ADDON'] ?? join(packageRoot(), 'build', 'Release', 'stockade_addon.node');
}

// Loaded lazily: most CLI calls (state, list, spec) never need it, and each call's cost is Node's start-up.
function binding(): Binding {
  if (loaded !== undefined) return loaded;
  const path = addonPath();
  if (!existsSync(path)) {
    throw new StockadeError('UNSUPPORTED', `the native addon is not built (${path}); run npm run build`, { path });
  }
  const mod: { exports: unknown } = { exports: {} };
  try {
    process.dlopen(mod, path);
  } catch (e) {
    throw new StockadeError('UNSUPPORTED', `cannot load the native addon ${path}: ${String(e)}`, { path }, { cause: e });
  }
  loaded = checked(mod.exports, path);
  return loaded;
}

// A stale build missing a function should fail here by name, not later as "x is not a function".
function checked(exports: unknown, path: string): Binding {
  if (typeof exports !== 'object' || exports === null) {
    throw new StockadeError('UNSUPPORTED', `the native addon ${path} exports nothing`, { path });
  }
  const record = exports as Record<string, unknown>;
  for (const name of FUNCTIONS) {
    if (typeof record[name] !== 'function') {
      throw new StockadeError('UNSUPPORTED', `the native addon ${path} lacks ${name}; rebuild it`, { path, name });
    }
  }
  if (typeof record['constants'] !== 'object' || record['constants'] === null) {
    throw new StockadeError('UNSUPPORTED', `the native addon ${path} lacks constants; rebuild it`, { path });
  }
  return exports as Binding;
}

function signalNumber(signal: number | NodeJS.Signals): number {
  if (typeof signal === 'number') return signal;
  const n = osConstants.signals[signal];
  if (n === undefined) throw new StockadeError('SIGNAL_INVALID', `unknown signal ${String(signal)}`, { signal });
  return n;
}

/** True for an error thrown by the addon (or by Node's own fs calls) for a failed syscall. */
export function isSystemError(e: unknown, code?: string): e is AddonSystemError {
  if (!(e instanceof Error)) return false;
  const fields = e as Error & { code?: unknown; errno?: unknown; syscall?: unknown };
  if (typeof fields.code !== 'string' || typeof fields.errno !== 'number' || typeof fields.syscall !== 'string') {
    return false;
  }
  return code === undefined || fields.code === code;
}

/**
 * flock(2) on an fd. With nonblock, a held lock throws EAGAIN (EWOULDBLOCK) at once; without it
 * this blocks the event loop until the lock is free, so use flockAsync where another process may
 * hold the lock for long.
 */
export function flockSync(fd: number, op: LockOp, nonblock = false): void {
  binding().flock(fd, op, nonblock);
}

/** The same as flockSync, under the syscall's own name. */
export const flock = flockSync;

/**
 * flock(2) that waits on a thread of its own. The lock lands on fd's open file description, so
 * closing fd before the promise settles leaves the lock taken and then dropped.
 */
export function flockAsync(fd: number, op: 'sh' | 'ex'): Promise<void> {
  return binding().flockAsync(fd, op);
}

/** pidfd_open(2): a close-on-exec fd that keeps naming this process even after its pid is reused. */
export function pidfdOpen(pid: number): number {
  return binding().pidfdOpen(pid);
}

/** pidfd_send_signal(2); signal 0 only checks that the process is alive and signalable. */
export function pidfdSendSignal(pidfd: number, signal: number | NodeJS.Signals): void {
  binding().pidfdSendSignal(pidfd, signalNumber(signal));
}

/** pidfd_getfd(2): a close-on-exec copy of another process's fd (needs ptrace access to it). */
export function pidfdGetfd(pidfd: number, targetfd: number): number {
  return binding().pidfdGetfd(pidfd, targetfd);
}

/**
 * Waits for and reaps the process behind pidfd: waitid(P_PIDFD, WEXITED) on a thread of its own.
 * The process must be our child (spawned by stockade-init and adopted through setChildSubreaper);
 * otherwise it rejects with ECHILD. Never use it on a child of child_process: libuv reaps those,
 * and whichever waits second loses the status.
 */
export function waitPidfd(pidfd: number): Promise<ChildExit> {
  return binding().waitPidfd(pidfd);
}

/** prctl(PR_SET_CHILD_SUBREAPER, 1): orphaned descendants are re-parented to this process. */
export function setChildSubreaper(): void {
  binding().setChildSubreaper();
}

/** A connected AF_UNIX stream socket pair, both ends close-on-exec. */
export function socketpair(): [number, number] {
  return binding().socketpair();
}

/**
 * Sends one fd with SCM_RIGHTS and data over a unix socket. An empty data is sent as one NUL byte,
 * because a stream socket carries no ancillary data without a payload byte.
 */
export function sendFd(socketFd: number, fd: number, data: Uint8Array = Buffer.alloc(0)): void {
  binding().sendFd(socketFd, fd, data);
}

/**
 * Receives one message (blocking unless the socket is non-blocking) with at most one fd and up to
 * maxData bytes (default 4096). More than one fd, or a truncated message, closes what came and
 * throws EPROTO or EMSGSIZE.
 */
export function recvFd(socketFd: number, maxData?: number): ReceivedFd {
  return maxData === undefined ? binding().recvFd(socketFd) : binding().recvFd(socketFd, maxData);
}

/**
 * openat2(2). O_CLOEXEC is always added. mode must be 0 unless flags hold O_CREAT or O_TMPFILE
 * (the kernel answers EINVAL otherwise); resolve takes the RESOLVE_* constants.
 */
export function openat2(dirfd: number, path: string, flags: number, mode = 0, resolve = 0): number {
  return binding().openat2(dirfd, path, flags, mode, resolve);
}

/** A listening AF_UNIX stream socket bound at path (any length), close-on-exec. */
export function unixListen(path: string, backlog = 1): number {
  return binding().unixListen(path, backlog);
}

/** An AF_UNIX stream socket connected to path (any length), blocking, close-on-exec. */
export function unixConnect(path: string): number {
  return binding().unixConnect(path);
}

/** accept4(2), blocking, close-on-exec: for a connection known to be queued already. */
export function accept(socketFd: number): number {
  return binding().accept(socketFd);
}

/** SO_PEERCRED of a connected unix socket: who connected, as the kernel recorded it at connect. */
export function peerCred(socketFd: number): { pid: number; uid: number; gid: number } {
  const [pid, uid, gid] = binding().peerCred(socketFd);
  return { pid, uid, gid };
}

/** A pidfd (close-on-exec) of the process at the other end of a connected unix socket: SO_PEERPIDFD, or before Linux 6.5 pidfd_open of SO_PEERCRED's pid. */
export function peerPidfd(socketFd: number): number {
  return binding().peerPidfd(socketFd);
}

/** Sets a terminal's window size (TIOCSWINSZ), e.g. on a container's pty master. */
export function setWinsize(fd: number, rows: number, cols: number): void {
  binding().setWinsize(fd, rows, cols);
}

/** A new pty pair, both ends close-on-exec: master, slave and the slave's name. */
export function openPty(): { master: number; slave: number; name: string } {
  const [master, slave, name] = binding().openPty();
  return { master, slave, name };
}

/** A terminal's window size (TIOCGWINSZ). */
export function getWinsize(fd: number): { rows: number; cols: number } {
  const [rows, cols] = binding().getWinsize(fd);
  return { rows, cols };
}

/** Sets or clears ONLCR on a terminal (tcsetattr); whether it was set before. */
export function setOnlcr(fd: number, on: boolean): boolean {
  return binding().setOnlcr(fd, on);
}

/**
 * The lines a terminal in canonical mode holds already, and whether an end of file followed them,
 * taken before it is made raw (which would turn a pending end of file into a NUL byte).
 */
export function takeCookedInput(fd: number): { data: Buffer; eof: boolean } {
  const [data, eof] = binding().takeCookedInput(fd);
  return { data, eof };
}

/**
 * What an fd holds now, up to `max` bytes, read without blocking (poll before each read) whatever
 * its flags; ends at EIO or end of file. A pty master's rest once its slave closed (ptyPipes).
 */
export function readAvailable(fd: number, max: number): Buffer {
  return binding().readAvailable(fd, max);
}

/**
 * From now on `signals` are taken from Node's handlers and held (noted, or kept pending on this
 * thread), for execBlocked to carry across its execv: Node's handlers only note a signal for the
 * event loop, which an execv ends. Signals Node caught before are still in its loop.
 */
export function holdSignals(signals: readonly number[]): void {
  binding().holdSignals(signals);
}

/** Gives the held signals back to Node's handlers, and those that came meanwhile with them. */
export function releaseSignals(): void {
  binding().releaseSignals();
}

/**
 * Becomes another program (execv) with `signals` blocked, so that none sent meanwhile is lost or
 * kills the process between the two: the new program unblocks them once it handles them. Returns
 * only by throwing (the execv failed; the mask is restored).
 */
export function execBlocked(path: string, args: readonly string[], signals: readonly number[]): never {
  return binding().execBlocked(path, args, signals);
}

/**
 * bpf(BPF_PROG_LOAD) of a BPF_PROG_TYPE_CGROUP_DEVICE program (struct bpf_insn[]): a close-on-exec
 * fd. A program the verifier refuses throws with the verifier's log in the message.
 */
export function bpfDeviceProgLoad(insns: Buffer, license = 'Apache-2.0'): number {
  return binding().bpfDeviceProgLoad(insns, license);
}

/**
 * Attaches a device program to the cgroup2 directory open at cgroupFd (BPF_CGROUP_DEVICE,
 * BPF_F_ALLOW_MULTI), then detaches the device programs attached there before it: the rules are
 * replaced, and never absent in between. Returns how many it detached.
 */
export function bpfCgroupDeviceAttach(cgroupFd: number, progFd: number): number {
  return binding().bpfCgroupDeviceAttach(cgroupFd, progFd);
}

/** The ids of the device programs attached to the cgroup2 directory open at cgroupFd. */
export function bpfCgroupDevicePrograms(cgroupFd: number): number[] {
  return binding().bpfCgroupDevicePrograms(cgroupFd);
}

/** malloc_trim(0): malloc's free memory back to the kernel; whether any went back. */
export function mallocTrim(): boolean {
  return binding().mallocTrim();
}

let sentry: SentryNative | undefined;

/**
 * The addon's own functions for the sentry's loop, not wrapped: each property is the native
 * function itself, so a call costs no more than the N-API call. Loads the addon (in a
 * worker_thread too: it is context-aware).
 */
export function sentryNative(): SentryNative {
  if (sentry !== undefined) return sentry;
  const b = binding();
  const out: Partial<Record<keyof SentryNative, unknown>> = {};
  for (const name of SENTRY_FUNCTIONS) out[name] = b[name];
  sentry = Object.freeze(out as SentryNative);
  return sentry;
}

/** The constants the addon's callers need that node:fs does not export. Reading one loads the addon. */
export const constants: AddonConstants = Object.freeze(
  Object.defineProperties(
    {} as AddonConstants,
    Object.fromEntries(CONSTANT_NAMES.map((name) => [name, { enumerable: true, get: (): number => binding().constants[name] }])),
  ),
);
