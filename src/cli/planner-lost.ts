// The cold path's half of a lost planner: the container a planner had taken for this call is removed first.
import { parseContainerId } from '../container/id';
import type { Levels } from '../container/level';
import type { StateStore } from '../container/state-store';

/** Set by the C front (native/light/planner.c) when the planner it asked was lost mid-call: the id it had taken. */
export const PLANNER_LOST_ENV = 'STOCKADE_PLANNER_LOST';

/**
 * The front that asked a planner lost it after the planner had taken a container id for this call
 * (src/planner/, PLANNER_LOST_ENV): that container is removed, quietly, before the call is done
 * again here from the start, so the call ends as if the planner had never been asked.
 */
export async function undoLostPlanner(store: StateStore, levels: Levels, opts: { imageRun: boolean }): Promise<void> {
  const lost = process.env[PLANNER_LOST_ENV];
  if (lost === undefined) return;
  delete process.env[PLANNER_LOST_ENV];
  let id;
  try {
    id = parseContainerId(lost);
  } catch {
    return;
  }
  try {
    const { deleteContainer } = require('../container/delete') as typeof import('../container/delete');
    await deleteContainer(store, levels, id, true, { warn: () => undefined });
  } catch { /* already gone, or never recorded: the call itself says what is wrong, if anything */ }
  // A run --image mounts its overlay under the id before it creates the container: it goes too,
  // once the container's processes are gone (a lost planner may have had the one but not the other).
  if (opts.imageRun) {
    const { removeImageRootfs } = require('../image/overlay') as typeof import('../image/overlay');
    const { ImageStore } = require('../image/store') as typeof import('../image/store');
    try {
      removeImageRootfs(new ImageStore(store.root), id);
    } catch { /* the call itself says what is wrong, if anything */ }
  }
}
