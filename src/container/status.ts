// Container statuses and the lifecycle transition table.
import { StockadeError } from '../errors';

export type Status = 'creating' | 'created' | 'running' | 'paused' | 'stopped';
export type Operation = 'start' | 'kill' | 'delete' | 'pause' | 'resume' | 'exec' | 'update';

/** Which statuses each operation may act on. `delete` of a live container needs --force except from created, as runc. */
const ALLOWED: Readonly<Record<Operation, readonly Status[]>> = {
  start: ['created'],
  kill: ['created', 'running', 'paused'],
  delete: ['created', 'stopped'],
  pause: ['running'],
  resume: ['paused'],
  exec: ['created', 'running'],
  update: ['created', 'running', 'paused'],
};

export function canPerform(op: Operation, from: Status): boolean {
  return ALLOWED[op].includes(from);
}

export function assertCanPerform(op: Operation, from: Status, id: string): void {
  if (!canPerform(op, from)) {
    throw new StockadeError('STATE_TRANSITION', `cannot ${op} container ${id}: it is ${from} (${op} needs ${ALLOWED[op].join(' or ')})`, { id, from, operation: op });
  }
}
