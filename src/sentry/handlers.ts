// The sentry's handlers by table name (`family.syscall`), from one file per family.
import type { Sentry } from './kernel';
import type { Notification, Reply } from './notification';
import { FILE_HANDLERS } from './sys-file';
import { IDENTITY_HANDLERS } from './sys-identity';
import { PROCESS_HANDLERS } from './sys-process';
import { SOCKET_HANDLERS } from './sys-socket';
import { SYSTEM_HANDLERS } from './sys-system';

export type Handler = (s: Sentry, n: Notification) => Reply;

function family(name: string, handlers: Readonly<Record<string, Handler>>): [string, Handler][] {
  return Object.entries(handlers).map(([call, h]) => [`${name}.${call}`, h]);
}

export const HANDLERS: Readonly<Record<string, Handler>> = Object.freeze(Object.fromEntries([
  ...family('file', FILE_HANDLERS),
  ...family('identity', IDENTITY_HANDLERS),
  ...family('process', PROCESS_HANDLERS),
  ...family('socket', SOCKET_HANDLERS),
  ...family('system', SYSTEM_HANDLERS),
]));
