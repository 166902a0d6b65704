// The detached sentry process: one per container created to outlive its `create`; fd 3 is its
// socket to stockade-init. It serves on its main thread (see runDaemon).
import { closeSync, rmSync } from 'node:fs';
import { AT_FDCWD } from '../abi/linux/constants';
import { Logger } from '../cli/log';
import { sentryNative, unixListen } from '../native/addon';
import { DAEMON_SOCKET_FD, logDenial, recordMounts, type DaemonConfig } from './daemon-config';
import { SentryHost } from './host';
import type { SentryDenial, SentryMount } from './kernel';
import { NR } from './native';
import { confineThisThread, receiveHandoff, wallThisThread } from './serve';
import { TraceReaders } from './trace-readers';

/**
 * Run by the detached sentry process: serves on its main thread until the container is gone, and
 * says whether it served (0) or could not (1, said on stderr: sentry.log). No worker thread and no
 * event loop (SentryHost): `stockade trace` readers and processes exec'd into the container are
 * taken between two notifications, refusals written to a --log file opened before the thread is
 * confined.
 */
function runDaemon(config: DaemonConfig, socketFd: number): number {
  const sys = sentryNative().syscall;
  const log = config.log === undefined ? undefined : Logger.held(config.log.path, config.log.format);
  let trace: TraceReaders | undefined;
  let joinServer = -1;
  let host: SentryHost | undefined;
  let mounts: readonly SentryMount[] = [];
  try {
    // Both sockets are root's alone from the moment they exist, whatever umask create ran with: a
    // joined process is served as the identity its join names, and a trace shows every path.
    const umask = process.umask(0o177);
    try {
      if (config.traceSocket !== undefined) {
        rmSync(config.traceSocket, { force: true });
        trace = new TraceReaders(sys, unixListen(config.traceSocket, 16));
      }
      if (config.joinSocket !== undefined) {
        rmSync(config.joinSocket, { force: true });
        joinServer = unixListen(config.joinSocket, 16);
      }
    } finally {
      process.umask(umask);
    }
    wallThisThread();
    const handoff = receiveHandoff(socketFd);
    if ('failed' in handoff) {
      process.stderr.write(`stockade sentry: ${handoff.failed}\n`);
      return 1;
    }
    mounts = handoff.mounts;
    recordMounts(config.mountsRecord, mounts);
    const hooks = { trace, denied: log === undefined ? undefined : (d: SentryDenial) => logDenial(log, config.id, d) };
    const joinSocket = config.joinSocket;
    host = new SentryHost({
      sys, hooks, mounts, trace, joinServer,
      // An exec that finds no join socket is told the container is gone, not left waiting.
      onLast: joinSocket === undefined ? undefined : () => void sys(NR.unlinkat, AT_FDCWD, joinSocket, 0),
    });
    joinServer = -1;
    host.add(handoff.listener, { user: { ...config.user, caps: BigInt(config.user.caps) }, hostname: config.hostname, domainname: config.domainname });
    confineThisThread();
    host.run();
    return 0;
  } finally {
    host?.close();
    if (joinServer >= 0) closeSync(joinServer);
    trace?.close();
    for (const m of mounts) sys(NR.close, m.fd);
    closeSync(socketFd);
  }
}

const arg = process.argv[2];
if (arg === undefined) {
  process.stderr.write('usage: stockade-sentryd CONFIG_JSON (started by stockade create, with its socket as fd 3)\n');
  process.exit(2);
}
try {
  process.exit(runDaemon(JSON.parse(arg) as DaemonConfig, DAEMON_SOCKET_FD));
} catch (e) {
  process.stderr.write(`stockade sentry: ${(e as Error).message}\n`);
  process.exit(1);
}
