// Seccomp actions <-> the 32-bit SECCOMP_RET_* values a filter returns.
import {
  SECCOMP_RET_ACTION_FULL, SECCOMP_RET_ALLOW, SECCOMP_RET_DATA, SECCOMP_RET_ERRNO, SECCOMP_RET_KILL_PROCESS,
  SECCOMP_RET_KILL_THREAD, SECCOMP_RET_LOG, SECCOMP_RET_TRACE, SECCOMP_RET_TRAP, SECCOMP_RET_USER_NOTIF,
} from './constants';
import type { SeccompAction } from './types';

export const ALLOW: SeccompAction = { kind: 'ALLOW' };
export const KILL_THREAD: SeccompAction = { kind: 'KILL_THREAD' };
export const KILL_PROCESS: SeccompAction = { kind: 'KILL_PROCESS' };
export const TRAP: SeccompAction = { kind: 'TRAP' };
export const LOG: SeccompAction = { kind: 'LOG' };
export const NOTIFY: SeccompAction = { kind: 'NOTIFY' };
export function errno(e: number): SeccompAction {
  return { kind: 'ERRNO', errno: e };
}
export function trace(data: number): SeccompAction {
  return { kind: 'TRACE', data };
}

export function actionValue(action: SeccompAction): number {
  switch (action.kind) {
    case 'ALLOW': return SECCOMP_RET_ALLOW;
    case 'ERRNO': return (SECCOMP_RET_ERRNO | (action.errno & SECCOMP_RET_DATA)) >>> 0;
    case 'KILL_THREAD': return SECCOMP_RET_KILL_THREAD;
    case 'KILL_PROCESS': return SECCOMP_RET_KILL_PROCESS;
    case 'TRAP': return SECCOMP_RET_TRAP;
    case 'TRACE': return (SECCOMP_RET_TRACE | (action.data & SECCOMP_RET_DATA)) >>> 0;
    case 'LOG': return SECCOMP_RET_LOG;
    case 'NOTIFY': return SECCOMP_RET_USER_NOTIF;
  }
}

/**
 * The action a return value stands for, read the way the kernel reads it (an unknown action
 * value is treated as KILL_PROCESS). TRAP's data is dropped: the compiler never sets it.
 */
export function actionOf(value: number): SeccompAction {
  const v = value >>> 0;
  const data = v & SECCOMP_RET_DATA;
  switch ((v & SECCOMP_RET_ACTION_FULL) >>> 0) {
    case SECCOMP_RET_ALLOW: return ALLOW;
    case SECCOMP_RET_ERRNO: return errno(data);
    case SECCOMP_RET_KILL_THREAD: return KILL_THREAD;
    case SECCOMP_RET_TRAP: return TRAP;
    case SECCOMP_RET_TRACE: return trace(data);
    case SECCOMP_RET_LOG: return LOG;
    case SECCOMP_RET_USER_NOTIF: return NOTIFY;
    default: return KILL_PROCESS;
  }
}

export function actionsEqual(a: SeccompAction, b: SeccompAction): boolean {
  return actionValue(a) === actionValue(b);
}

/** "ERRNO(1)", "ALLOW": for messages and test output. */
export function formatAction(action: SeccompAction): string {
  switch (action.kind) {
    case 'ERRNO': return `ERRNO(${action.errno})`;
    case 'TRACE': return `TRACE(${action.data})`;
    default: return action.kind;
  }
}
