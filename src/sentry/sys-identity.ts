// Identity calls: decided by the kernel's own capability checks, recorded by the sentry.
import { continueBecause } from './notification';
import type { Handler } from './handlers';

/**
 * set*id, setgroups and capset change only the caller's own credentials, from integer arguments
 * (setgroups' list is read by the kernel once, and any list needs CAP_SETGID), and the kernel
 * allows a change only within what the caller's capabilities and no_new_privs permit. The
 * sentry's part is to stop assuming the plan's ids: from the first such call it reads each
 * caller's ids before acting as it. (Its capabilities the sentry reads at every call, with
 * capget: Sentry.asCaller.)
 */
const IDENTITY_IN_CALLER = continueBecause('the caller\'s own credentials: the kernel checks its capabilities; the sentry now reads ids per caller');

const identity: Handler = (s) => {
  s.identityChanged();
  return IDENTITY_IN_CALLER;
};

export const IDENTITY_HANDLERS: Readonly<Record<string, Handler>> = Object.fromEntries(
  ['setuid', 'setgid', 'setreuid', 'setregid', 'setresuid', 'setresgid', 'setfsuid', 'setfsgid', 'setgroups', 'capset']
    .map((name) => [name, identity]),
);
