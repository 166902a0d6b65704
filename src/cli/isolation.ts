// The isolation levels the CLI offers create: namespaces, and the sentry (a process of its own).
import type { IsolationLevels } from '../container/supervisor';
import { seccompCacheDir } from '../container/seccomp';
import type { Context } from './context';
import { StockadeError } from '../errors';

/** STOCKADE_SENTRY_BLOCK_LIMIT_MS: how long the sentry lets an open wait for a FIFO's other end or a device (blocking.ts). */
function blockLimitMs(): number | undefined {
  const v = process.env['STOCKADE_SENTRY_BLOCK_LIMIT_MS'];
  if (v === undefined || v === '') return undefined;
  if (!/^[1-9]\d{0,8}$/.test(v)) throw new StockadeError('USAGE', `STOCKADE_SENTRY_BLOCK_LIMIT_MS must be a number of milliseconds from 1 to 999999999, not ${JSON.stringify(v)}`);
  return Number(v);
}

export function isolationLevels(ctx: Context, defaultLevel: string = ctx.isolation): IsolationLevels {
  return {
    default: defaultLevel,
    level: (name) => {
      if (name !== 'sentry') return undefined;
      // Required here, not above: the sentry brings its syscall table and its compiler, which a
      // container at the namespaces level never needs (each call's cost is Node's start-up).
      const { sentryLevel } = require('../sentry/supervisor') as typeof import('../sentry/supervisor');
      return sentryLevel({
        log: ctx.log,
        traceAll: process.env['STOCKADE_SENTRY_TRACE'] === '1',
        blockLimitMs: blockLimitMs(),
        cacheDir: seccompCacheDir(ctx.store.root),
      });
    },
  };
}
