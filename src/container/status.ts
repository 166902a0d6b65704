// Container statuses and the lifecycle transition table.
import { StockadeError } from '../errors';

/** In this order, bit i of a status mask is STATUSES[i] (the C entry's masks, generated from ALLOWED). */
export const STATUSES = ['creating', 'created', 'running', 'paused', 'stopped'] as const;
export type Status = (typeof STATUSES)[number];
export type Operation = 'start' | 'kill' | 'delete' | 'pause' | 'resume' | 'exec' | 'update';

/**
 * Which statuses each operation may act on. `delete` of a live container needs --force except from
 * created, as runc. The C entry (native/light/light.c) takes its start, kill and delete rules from
 * this table, through the generated header.
 */
export const ALLOWED: Readonly<Record<Operation, readonly Status[]>> = {
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
    // Killing a container that has stopped is routine for containerd's runc shim (CRI kills a task
    // whose init has exited, to be sure its other processes are gone): the shim takes runc's words
    // "container not running" for "already finished" and anything else for a failure it retries forever.
    const needs = `${op} needs ${ALLOWED[op].join(' or ')}`;
    const why = op === 'kill' && from === 'stopped' ? `container not running (it is stopped; ${needs})` : `it is ${from} (${needs})`;
    throw new StockadeError('STATE_TRANSITION', `cannot ${op} container ${id}: ${why}`, { id, from, operation: op });
  }
}
