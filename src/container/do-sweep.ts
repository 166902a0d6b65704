// What a `stockade do` (or an SDK program) killed before it could delete its container left behind, deleted by the next call.
//
// `do` owns its container: the container dies with the `do` process (stockade-init's TAG_TIED),
// but a process killed by SIGKILL deletes nothing. Its state directory and cgroups stay, the
// container listed as stopped, until the next `do` or `list` on the same state root finds a
// container whose holder (ContainerRecord.heldBy) is gone and deletes it as `delete --force` would.
import { readdirSync } from 'node:fs';
import { deleteContainer } from './delete';
import type { ContainerId } from './id';
import type { Levels } from './level';
import { isSameLiveProcess } from './process-identity';
import type { StateStore } from './state-store';

/** The ids `do` and the SDK's sandboxes get (cli/do.ts, sdk/sandbox.ts); only these can carry a holder. */
const DO_ID = /^(?:do|sdk)-\d+-[0-9a-f]+$/;

export async function sweepAbandoned(store: StateStore, levels: Levels, debug?: (m: string) => void): Promise<void> {
  let names: string[];
  try {
    names = readdirSync(store.root);
  } catch {
    return;
  }
  for (const name of names) {
    if (!DO_ID.test(name)) continue;
    const id = name as ContainerId;
    try {
      const held = store.read(id).heldBy;
      // Without a start time the holder cannot be told from a later process with its pid: left alone.
      if (held === undefined || held.startTime === '' || isSameLiveProcess(held.pid, held.startTime)) continue;
      await deleteContainer(store, levels, id, true);
      debug?.(`deleted ${id}, left behind by stockade do (pid ${held.pid}), which is gone`);
    } catch (e) {
      // Another call deleting it meanwhile, or a record half written: the next sweep sees.
      debug?.(`could not sweep ${id}: ${(e as Error).message}`);
    }
  }
}
