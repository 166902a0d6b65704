// What every command receives: the state store, the logger, and the global flags.
import type { StateStore } from '../container/state-store';
import type { Logger } from '../log/logger';

export interface Context {
  store: StateStore;
  log: Logger;
  systemdCgroup: boolean;
  isolation: string;
}

export interface Command {
  summary: string;
  usage: string;
  run(argv: string[], ctx: Context): Promise<number>;
}
