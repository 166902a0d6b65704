// Serving workloads on the calling thread, in steps: what serving needs is made, the thread walls
// itself off, the mounts and listeners arrive from stockade-init, a Sentry is made per listener,
// and the thread confines itself. The sentry process does these on its main thread (daemon.ts,
// SentryHost).
import { CLONE_FS, CLONE_NEWIPC, CLONE_NEWNET, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP } from '../abi/linux/constants';
import { sentryNative, type FastLayout } from '../native/addon';
import { Sentry, type SentryDenial, type SentryMount, type SentryOptions, type StuckCall, type TraceSink } from './kernel';
import { encodeRequest } from './blocking';
import { compileSentryThreadFilter } from './confine';
import { denialJudge } from './denials';
import { nativeArch } from '../seccomp/arch';
import { sentrySyscallTable } from './syscalls';
import { NR, sayOnStderr, type SentryKernel } from './native';
import { mountShadowTmpfs } from './shadow-dirs';
import type { NetPolicy } from './net-policy';

/** Who the workload runs as, and the names uname reports: what a Sentry serving it is made with. */
export interface WorkloadIdentity {
  readonly user: SentryOptions['user'];
  readonly hostname: string;
  readonly domainname: string;
  /** Where the workload may connect and send; absent: everywhere (policy `all`). */
  readonly network?: NetPolicy | undefined;
}

export interface ServeHooks {
  readonly trace?: TraceSink | undefined;
  readonly denied?: ((d: SentryDenial) => void) | undefined;
  readonly stuck?: ((s: StuckCall) => void) | undefined;
  /** How long an open handed to a thread of its own may wait (blocking.ts). */
  readonly blockLimitMs?: number | undefined;
  /** Whether the native fast path may serve this listener's common stats and opens (fast-path.ts). */
  readonly fast?: boolean | undefined;
}

/**
 * The pipe the threads that perform blocking opens report on (blocking.ts), and their tick
 * signal: made before the thread confines itself, which may make neither.
 */
export function prepareBlocking(): number {
  const fd = sentryNative().blockingInit();
  if (fd < 0) throw new Error(`cannot prepare the sentry's blocking opens: errno ${-fd}`);
  return fd;
}

/**
 * umask and cwd become this thread's alone: the sentry sets the caller's umask before creating
 * files. And the sentry needs no network and no System V IPC: this thread gets empty namespaces of
 * both (namespaces are per thread), so a sentry subverted past its own filter reaches neither.
 */
export function wallThisThread(): void {
  const native = sentryNative();
  const unshared = native.syscall(NR.unshare, CLONE_FS);
  if (unshared < 0) throw new Error(`unshare(CLONE_FS) failed: errno ${-unshared}`);
  const walled = native.syscall(NR.unshare, CLONE_NEWNET | CLONE_NEWIPC);
  if (walled < 0) throw new Error(`unshare(CLONE_NEWNET | CLONE_NEWIPC) failed: errno ${-walled}`);
}

let threadFilter: Buffer | undefined;
let layout: FastLayout | undefined;

/** The native fast path's context layout (fast-path.ts), asked once. */
function fastLayout(): FastLayout {
  layout ??= sentryNative().fastLayout();
  return layout;
}

/** This thread's own filter (confine.ts), compiled once. */
function sentryThreadFilter(): Buffer {
  threadFilter ??= compileSentryThreadFilter().program;
  return threadFilter;
}

/**
 * Makes what serving needs and takes milliseconds to make (the refusal judge compiles the whole
 * sentry filter; the syscall table; this thread's own filter), so that it is made while
 * stockade-init sets the container up, not once the listener has arrived and the workload waits
 * at its first call.
 */
export function prepareToServe(cacheDir?: string): void {
  denialJudge(nativeArch(), cacheDir);
  sentrySyscallTable();
  sentryThreadFilter();
}

let shadowRoot = -1;
let shadows = 0;

/**
 * The tmpfs the sentry's Sentries keep their shadow directories in (shadow-dirs.ts): a detached
 * mount of the sentry's alone, nosymfollow, noexec, nosuid, nodev, bounded in inodes. Made before
 * the thread confines itself, which takes fsopen away. Without it the sentry hands out no
 * directory of the trees it owns (EACCES): fail closed.
 */
export function makeShadowRoot(): void {
  if (shadowRoot >= 0) return;
  const m = mountShadowTmpfs(sentryNative().syscall);
  if (m < 0) {
    sayOnStderr(`no tmpfs for shadow directories (errno ${-m}): directories of /proc and /sys will be refused`);
    return;
  }
  shadowRoot = m;
}

/** Bounds what this thread may do from now on (confine.ts). */
export function confineThisThread(): void {
  const native = sentryNative();
  // The addon learns the notification sizes once, with seccomp(2): before the thread may not.
  native.notifSizes();
  const confined = native.confineThread(sentryThreadFilter());
  if (confined < 0) throw new Error(`cannot confine the sentry's thread: errno ${-confined}`);
}

/** A Sentry serving `listener` from this thread, which makes its own calls. */
export function sentryFor(listener: number, who: WorkloadIdentity, hooks: ServeHooks, mounts: readonly SentryMount[]): Sentry {
  const native = sentryNative();
  // The workload's thread and the sentry hand the CPU to each other directly (Linux 6.6): a
  // round trip without a pass through the scheduler's run queue.
  native.notifSetFlags(listener, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
  const kernel: SentryKernel = {
    listener: {
      recv: (buf) => native.notifRecv(listener, buf),
      send: (id, value, error, flags) => native.notifSend(listener, id, value, error, flags),
      addfd: (id, fd, newfdFlags, send) => native.notifAddfd(listener, id, fd, newfdFlags, send),
      idValid: (id) => native.notifIdValid(listener, id),
    },
    memory: {
      read: (pid, addr, buf, len, caps) => native.memRead(pid, addr, buf, len, caps),
      readString: (pid, addr, max, caps) => native.memReadString(pid, addr, max, caps),
      write: (pid, addr, d, len) => native.memWrite(pid, addr, d, len),
    },
    sys: native.syscall,
    sendMessage: native.sendMessage,
    // Reports name the listener by its fd here: the host finds this Sentry by it.
    blocking: (r) => {
      const { request, groups } = encodeRequest(r, listener);
      return native.blockingOpen(listener, request, groups);
    },
    fast: hooks.fast === true ? { layout: fastLayout(), listener } : undefined,
  };
  const sentry = new Sentry(kernel, {
    user: who.user, hostname: who.hostname, domainname: who.domainname, trace: hooks.trace, mounts, denied: hooks.denied,
    shadowRoot: shadowRoot < 0 ? undefined : { fd: shadowRoot, name: String(shadows++) },
    network: who.network,
    stuck: hooks.stuck, blockLimitMs: hooks.blockLimitMs,
  });
  sentry.init();
  return sentry;
}
