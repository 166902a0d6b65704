// Passes the signals an attached caller receives (run, exec) on to the process it waits for, as runc's signal handler does.
import { constants } from 'node:os';
import { FORWARDED_SIGNALS } from '../abi/linux/constants';
import { signalProcess } from './kill';

export const FORWARDED: readonly NodeJS.Signals[] = FORWARDED_SIGNALS;

/** Where the caller's signals arrive: this process, or (in the planner) the front that asked. */
export interface SignalSource {
  on(sig: NodeJS.Signals, handler: (sig: NodeJS.Signals) => void): void;
  off(sig: NodeJS.Signals, handler: (sig: NodeJS.Signals) => void): void;
}

let source: SignalSource = process;

/** The planner's source for the request it serves; undefined restores this process's own signals. */
export function setSignalSource(s: SignalSource | undefined): void {
  source = s ?? process;
}

export interface SignalForwarder {
  /** From now on signals go to `pid` if it is still the process that started at `startTime`
   *  (a pidfd makes a reused pid harmless); those that came before are delivered first. */
  to(pid: number, startTime: string): void;
  stop(): void;
}

/**
 * Takes the forwarded signals over from now, before there is a process to send them to: a ^C
 * while the process is being set up must neither kill the caller (leaving the process without
 * anyone to report its status) nor be lost.
 */
export function signalForwarder(): SignalForwarder {
  let target: { pid: number; startTime: string } | undefined;
  const pending: NodeJS.Signals[] = [];
  const send = (sig: NodeJS.Signals): void => {
    if (target === undefined) return;
    try {
      signalProcess(target.pid, target.startTime, constants.signals[sig]);
    } catch { /* the process is going away; its exit status tells the rest */ }
  };
  const forward = (sig: NodeJS.Signals): void => {
    if (target === undefined) pending.push(sig);
    else send(sig);
  };
  const from = source;
  for (const sig of FORWARDED) from.on(sig, forward);
  return {
    to(pid, startTime) {
      target = { pid, startTime };
      for (const sig of pending.splice(0)) send(sig);
    },
    stop() {
      for (const sig of FORWARDED) from.off(sig, forward);
    },
  };
}

/** Forwards to a process that already runs; returns the function that stops it. */
export function forwardSignals(pid: number, startTime: string): () => void {
  const f = signalForwarder();
  f.to(pid, startTime);
  return () => f.stop();
}
