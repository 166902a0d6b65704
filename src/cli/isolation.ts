// The isolation levels the CLI offers create: namespaces, and the sentry in this process or detached.
import type { IsolationLevels } from '../container/supervisor';
import { sentryLevel } from '../sentry/supervisor';
import type { Context } from './context';

export function isolationLevels(ctx: Context, defaultLevel: string = ctx.isolation): IsolationLevels {
  return {
    default: defaultLevel,
    level: (name) => (name === 'sentry' ? sentryLevel({
      onError: (m) => ctx.log.log('error', `sentry: ${m}`, {}),
      log: ctx.log,
      onStats: (st) => ctx.log.debug(`sentry: ${st.notifications} calls served, ${st.injected} fds injected, ${st.continued} continued, ${st.errors} errors, ${st.denied} denied`),
      trace: process.env['STOCKADE_SENTRY_TRACE'] === '1' ? (r) => process.stderr.write(`${JSON.stringify(r)}\n`) : undefined,
    }) : undefined),
  };
}
