// The isolation levels the CLI offers create: namespaces, and the sentry in this process or detached.
import type { IsolationLevels } from '../container/supervisor';
import type { Context } from './context';

export function isolationLevels(ctx: Context, defaultLevel: string = ctx.isolation): IsolationLevels {
  return {
    default: defaultLevel,
    level: (name) => {
      if (name !== 'sentry') return undefined;
      // Required here, not above: the sentry brings worker_threads, its syscall table and its
      // compiler, which a container at the namespaces level never needs (each call's cost is Node's start-up).
      const { sentryLevel } = require('../sentry/supervisor') as typeof import('../sentry/supervisor');
      return sentryLevel({
        onError: (m) => ctx.log.log('error', `sentry: ${m}`, {}),
        log: ctx.log,
        onStats: (st) => ctx.log.debug(`sentry: ${st.notifications} calls served, ${st.injected} fds injected, ${st.continued} continued, ${st.errors} errors, ${st.denied} denied`),
        trace: process.env['STOCKADE_SENTRY_TRACE'] === '1' ? (r) => process.stderr.write(`${JSON.stringify(r)}\n`) : undefined,
      });
    },
  };
}
