// The sentry process: one per container, or per pod, started by the create (or do, or run) of its
// first container; fd 3 is its socket to stockade-init. It serves on its main thread (runDaemon).
import { closeSync, readlinkSync } from 'node:fs';
import { AT_FDCWD } from '../abi/linux/constants';
import { Logger } from '../log/logger';
import { sentryNative } from '../native/addon';
import { giveBack, ownPageCacheMappings } from '../native/working-set';
import { DAEMON_JOIN_FD, DAEMON_SOCKET_FD, DAEMON_TRACE_FD, logDenial, logStuck, type DaemonConfig } from './daemon-config';
import { SentryHost } from './host';
import { NR, sayOnStderr } from './native';
import { confineThisThread, makeShadowRoot, prepareBlocking, prepareToServe, wallThisThread } from './serve';
import { TraceReaders } from './trace-readers';
import { prepareResolverSockets } from './dns';
import { parseNetPolicy, policyNames } from './net-policy';
import { noteHostNetwork } from './sys-socket';

/** How long the sentry waits with nothing to do before it gives back the pages it touched. */
const IDLE_MS = 1000;

/**
 * V8's full collection (--expose-gc, among the sentry's flags in supervisor.ts): with no event
 * loop, V8 never runs the idle-time collection that would free what serving left behind.
 */
const collectGarbage = (globalThis as { gc?: () => void }).gc;

/**
 * Run by the sentry process: serves on its main thread until the container (and any of its pod
 * that joined) is gone, and says whether it served (0) or could not (1, said on stderr: sentry.log,
 * or the terminal of a do). No worker thread and no event loop (SentryHost): `stockade trace` readers,
 * processes exec'd into the container and containers of its pod are taken between two
 * notifications, refusals written to a --log file opened before the thread is confined.
 */
function runDaemon(config: DaemonConfig, fds: { readonly handoff: number; readonly trace: number; readonly join: number }): number {
  const sys = sentryNative().syscall;
  const log = config.log === undefined ? undefined : Logger.held(config.log.path, config.log.format, config.debug === true);
  // Made before the thread confines itself (below), which may make neither a pipe nor a signal handler.
  const blockingReports = prepareBlocking();
  const host = new SentryHost({
    sys,
    denied: log === undefined ? undefined : (id, d) => logDenial(log, id, d),
    stuck: log === undefined ? undefined : (id, s) => logStuck(log, id, s),
    blockingReports,
    blockLimitMs: config.blockLimitMs,
    // An exec that finds no join socket is told the container is gone, not left waiting.
    onLast: () => void sys(NR.unlinkat, AT_FDCWD, config.joinSocket, 0),
    fast: config.fastPath === false ? undefined : { serve: sentryNative().fastServe, layout: sentryNative().fastLayout() },
    served: (id, st) => log?.debug(`sentry: ${id}: ${st.notifications} calls served (${st.fast} natively), ${st.injected} fds injected, ${st.continued} continued, ${st.handedOff} handed to threads, ${st.errors} errors, ${st.denied} denied`),
  });
  let trace: TraceReaders | undefined = new TraceReaders(sys, fds.trace, config.traceAll === true ? 2 : -1);
  let joinServer = fds.join;
  let handoff = fds.handoff;
  try {
    // Node's code and data (its binary, its libraries) held only in the page cache: start-up
    // touched far more of it than serving does. Read while the thread may still open files.
    const code = ownPageCacheMappings();
    prepareToServe(config.cacheDir);
    makeShadowRoot();
    const network = config.network === undefined ? undefined : parseNetPolicy(config.network);
    // The sentry's own DNS sockets, for the names a policy allows: made in the sentry's network
    // namespace before the thread leaves it for an empty one.
    if (network !== undefined && policyNames(network).length > 0) prepareResolverSockets(sys);
    if (network !== undefined) noteHostNetwork((path) => { try { return readlinkSync(path); } catch { return -1; } });
    wallThisThread();
    confineThisThread();
    // The container's mounts arrive at create, its listener at start; joins are taken meanwhile.
    // From here the host owns the sockets.
    const who = { user: { ...config.user, caps: BigInt(config.user.caps) }, hostname: config.hostname, domainname: config.domainname, network };
    const group = host.container(config.id, handoff, who, trace, joinServer);
    handoff = -1;
    trace = undefined;
    joinServer = -1;
    // Given back once before the first call and again after each burst of calls, a sentry idles
    // for most of its life: measured, the sentry of an idle container then keeps 4 MB of Node's
    // binary mapped where giving back only once idle left 6 (what runs after that last give-back
    // maps more of it again when it has run less often before).
    giveBack(sys, code);
    host.run({
      afterMs: IDLE_MS,
      then: () => {
        collectGarbage?.();
        giveBack(sys, code);
      },
    });
    if (!group.served) {
      sayOnStderr('stockade-init closed the sentry socket without sending a listener');
      return 1;
    }
    return 0;
  } finally {
    host.close();
    if (joinServer >= 0) closeSync(joinServer);
    trace?.close();
    if (handoff >= 0) closeSync(handoff);
  }
}

/**
 * Exercises what the sentry runs before any workload reaches it, so that the build's code cache
 * (src/tools/gen-code-cache.ts) holds it compiled: what serving needs, made.
 */
export function warmUp(): void {
  prepareToServe();
}

if (require.main === module) {
  const arg = process.argv[2];
  if (arg === undefined) {
    process.stderr.write('usage: stockade-sentryd CONFIG_JSON (started by stockade create, with its socket to stockade-init as fd 3, its trace and join sockets listening as fds 4 and 5)\n');
    process.exit(2);
  }
  let status = 1;
  try {
    status = runDaemon(JSON.parse(arg) as DaemonConfig, { handoff: DAEMON_SOCKET_FD, trace: DAEMON_TRACE_FD, join: DAEMON_JOIN_FD });
  } catch (e) {
    sayOnStderr((e as Error).message);
  }
  // Straight to exit_group: the thread is confined by now, and Node's own exit (atexit) restores
  // the stdio fds' modes through calls its filter refuses, and aborts when they fail.
  sentryNative().syscall(NR.exit_group, status);
}
