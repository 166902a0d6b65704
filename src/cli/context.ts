// What every command receives: the state store, the logger, and the global flags.
import type { Levels } from '../container/level';
import type { StateStore } from '../container/state-store';
import type { Logger } from '../log/logger';

export interface Context {
  store: StateStore;
  log: Logger;
  systemdCgroup: boolean;
  /** --isolation: the level of a container whose config names none. */
  isolation: string;
  /** The registry of levels, with --isolation as its default: every verb's driver. */
  levels: Levels;
}

export interface Command {
  summary: string;
  usage: string;
  run(argv: string[], ctx: Context): Promise<number>;
}
