// The sentry level's driver: the host-process driver, with the sentry serving the workload's syscalls.
//
// The workload is a host process as at namespaces, so start, signal, pause, update, pids, stats,
// status and destroy are the host-process driver's; create and exec go through the sentry, which
// supervises the process (supervisor.ts) and whose watch kills the container if it dies (watch.ts).
// The registry hands the host-process driver in: the levels are siblings and import neither.
import type { LevelDriver } from '../container/level';
import { seccompCacheDir } from '../container/seccomp';
import type { SupervisedLevel } from '../container/supervisor';
import { StockadeError } from '../errors';
import type { Logger } from '../log/logger';

export interface SentryEnv {
  /** Where refusals are recorded (the --log file), and whether to debug. */
  readonly log: Logger;
  /** The state root: the compiled filters are cached below it. */
  readonly root: string;
}

/** STOCKADE_SENTRY_BLOCK_LIMIT_MS: how long the sentry lets an open wait for a FIFO's other end or a device (blocking.ts). */
function blockLimitMs(): number | undefined {
  const v = process.env['STOCKADE_SENTRY_BLOCK_LIMIT_MS'];
  if (v === undefined || v === '') return undefined;
  if (!/^[1-9]\d{0,8}$/.test(v)) throw new StockadeError('USAGE', `STOCKADE_SENTRY_BLOCK_LIMIT_MS must be a number of milliseconds from 1 to 999999999, not ${JSON.stringify(v)}`);
  return Number(v);
}

export function sentryDriver(env: SentryEnv, hostDriver: (supervised: () => SupervisedLevel) => LevelDriver): LevelDriver {
  return hostDriver(() => {
    // Required here, not above: the sentry brings its syscall table and its compiler, which a
    // call that only reads, signals or deletes a container never needs (each call's cost is
    // Node's start-up).
    const { sentryLevel } = require('./supervisor') as typeof import('./supervisor');
    return sentryLevel({
      log: env.log,
      traceAll: process.env['STOCKADE_SENTRY_TRACE'] === '1',
      blockLimitMs: blockLimitMs(),
      // STOCKADE_SENTRY_FAST=0: every call in JavaScript (fast-path.ts), for comparing the two.
      fastPath: process.env['STOCKADE_SENTRY_FAST'] !== '0',
      cacheDir: seccompCacheDir(env.root),
    });
  });
}
