// The detached sentry process: one per container created to outlive its `create`; fd 3 is its socket to stockade-init.
import { DAEMON_SOCKET_FD, runDaemon, type DaemonConfig } from './supervisor';

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
