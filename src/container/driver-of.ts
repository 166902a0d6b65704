// The driver a recorded container's verbs go through: the one its record names.
import type { ContainerId } from './id';
import type { LevelContainer, LevelDriver, Levels } from './level';
import type { ContainerRecord, StateStore } from './state-store';
import type { Status } from './status';

export interface Driven {
  readonly driver: LevelDriver;
  readonly container: LevelContainer;
}

/** The container as its level's driver takes it. */
export function driven(levels: Levels, store: StateStore, id: ContainerId, record: ContainerRecord): Driven {
  return { driver: levels.driver(record.level), container: { store, id, record, data: record.levelData } };
}

/** The container's status now, as its level sees it. */
export function statusOf(d: Driven): Promise<Status> {
  return d.driver.status(d.container);
}
