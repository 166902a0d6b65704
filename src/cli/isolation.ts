// The isolation levels the CLI offers create: namespaces, and the sentry (a process of its own).
import type { IsolationLevels } from '../container/supervisor';
import { seccompCacheDir } from '../container/seccomp';
import type { Context } from './context';

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
        cacheDir: seccompCacheDir(ctx.store.root),
      });
    },
  };
}
