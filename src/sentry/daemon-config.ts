// What the runtime and its sentry process share: the sentry's configuration, its private
// sockets and its record of refusals. Kept apart from supervisor.ts so that the sentry process
// loads none of the runtime's own machinery (child processes, cgroups).
import { rmSync } from 'node:fs';
import type { Logger, LogFormat } from '../log/logger';
import { unixListen } from '../native/addon';
import type { Creds } from './creds';
import type { SentryDenial, StuckCall } from './kernel';
import { errnoName } from './table/render';

/** The sentry process's socket to stockade-init. */
export const DAEMON_SOCKET_FD = 3;
/**
 * Its listening sockets, made by the runtime before it starts the sentry, so that they are there
 * once `create` returns: `stockade trace` and `exec` right after it find them.
 */
export const DAEMON_TRACE_FD = 4;
export const DAEMON_JOIN_FD = 5;

/**
 * V8 flags of the sentry process, which serves on one thread and runs no event loop (its code
 * cache is made under the same flags: V8 takes a cache only from a run with the flags it has):
 * - a young generation of 1 MB (V8 grows it to 4 MB under a workload's calls, and without an
 *   event loop nothing ever shrinks it back);
 * - no helper threads for V8's compilers and garbage collector: the serving thread does that work
 *   itself, between two calls, as it does everything else;
 * - gc() exposed, which the sentry calls when it idles (daemon.ts).
 */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--single-threaded', '--expose-gc'];

/** What the sentry process is started with (JSON, its only argument). */
export interface DaemonConfig {
  /** The caller's identity, its capability mask as a decimal string (JSON has no bigint). */
  readonly user: Omit<Creds, 'caps'> & { readonly caps: string };
  readonly hostname: string;
  readonly domainname: string;
  /**
   * Where processes exec'd into the container, and containers of its pod, join this sentry
   * (SentryHost): listening as DAEMON_JOIN_FD, unlinked once the sentry is done.
   */
  readonly joinSocket: string;
  /** Every traced call as a JSON line on stderr too (STOCKADE_SENTRY_TRACE=1). */
  readonly traceAll?: boolean | undefined;
  readonly id: string;
  /** The --log file refusals are recorded in, when `create` had one. */
  readonly log?: { readonly path: string; readonly format: LogFormat } | undefined;
  /** The state root's cache of compiled filters, where the sentry finds its refusal judge's. */
  readonly cacheDir?: string | undefined;
  /** --debug: what each process it served came to, as a debug line of the --log file. */
  readonly debug?: boolean | undefined;
  /** The network policy (net-policy.ts: the dev.stockade.network annotation), as text; absent: all. */
  readonly network?: string | undefined;
  /** How long an open handed to a thread of its own may wait (blocking.ts DEFAULT_BLOCK_LIMIT_MS). */
  readonly blockLimitMs?: number | undefined;
  /** false: every call served in JavaScript, none by the native fast path (STOCKADE_SENTRY_FAST=0; fast-path.ts). */
  readonly fastPath?: boolean | undefined;
}

/** One refusal as a --log line (JSON lines with --log-format json): what the workload tried and what it got. */
export function logDenial(log: Logger, id: string, d: SentryDenial): void {
  if (d.address !== undefined) {
    // A refusal of the network policy: what was refused and by which rule.
    log.log('warning', `sentry: ${id} denied ${d.syscall} to ${d.address} (${errnoName(d.errno)}) to pid ${d.pid}: ${d.rule ?? ''}`,
      { container: id, syscall: d.syscall, errno: errnoName(d.errno), pid: d.pid, address: d.address, rule: d.rule });
    return;
  }
  log.log('warning', `sentry: ${id} denied ${d.syscall} (${errnoName(d.errno)}) to pid ${d.pid}`,
    { container: id, syscall: d.syscall, errno: errnoName(d.errno), pid: d.pid });
}

/** An open that waited past its limit, or found no thread to wait on, as a --log line. */
export function logStuck(log: Logger, id: string, s: StuckCall): void {
  const what = s.waitedMs > 0 ? `waited ${s.waitedMs} ms for a FIFO or device and was answered ${errnoName(s.errno)}`
    : `found no thread to wait on and was answered ${errnoName(s.errno)}`;
  log.log('warning', `sentry: ${id} ${s.syscall} of pid ${s.pid} ${what}`,
    { container: id, syscall: s.syscall, errno: errnoName(s.errno), pid: s.pid, waitedMs: s.waitedMs });
}

/**
 * A listening socket at `path` (any one there replaced) that only root may connect to, whatever
 * the umask: a sentry serves a joined process or container as the identity its join names, and a
 * trace shows every path the workload touches.
 */
export function privateSocket(path: string): number {
  rmSync(path, { force: true });
  const umask = process.umask(0o177);
  try {
    return unixListen(path, 16);
  } finally {
    process.umask(umask);
  }
}
