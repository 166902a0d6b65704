// delete: removes a stopped container's state; a created one, or any with --force, is killed first.
import { StockadeError } from '../errors';
import type { Spec } from '../oci/spec';
import { hookState, runHooksWarning, type Warn } from './hooks';
import type { ContainerId } from './id';
import { removeContainerCgroups } from './cgroups';
import { driven, statusOf } from './driver-of';
import type { Levels } from './level';
import type { StateStore } from './state-store';
import { mark } from '../log/timing';

export interface DeleteOptions {
  /** Where a failing poststop hook is reported. */
  warn?: Warn | undefined;
}

export async function deleteContainer(store: StateStore, levels: Levels, id: ContainerId, force: boolean, opts: DeleteOptions = {}): Promise<void> {
  const lock = await store.lock(id);
  try {
    const record = store.read(id);
    // Read before the state goes: the poststop hooks run after it. A create that died before
    // writing the config had no hooks to undo, and must still be deletable.
    let spec: Spec | undefined;
    try {
      spec = store.readConfig(id);
    } catch {
      spec = undefined;
    }
    const d = driven(levels, store, id, record);
    const status = await statusOf(d);
    if (status !== 'stopped' && status !== 'created' && !force) {
      throw new StockadeError('STATE_TRANSITION', `cannot delete container ${id} that is not stopped: ${status} (use --force)`, { id, from: status, operation: 'delete' });
    }
    await d.driver.destroy(d.container, status);
    // Processes that outlived init (no pid namespace of its own) are killed before the directories go;
    // if that fails the state stays, so delete can be tried again.
    mark('del killed');
    await removeContainerCgroups(record);
    mark('cgroups removed');
    await store.removeAsync(id);
    if (spec !== undefined) await runHooksWarning(spec, 'poststop', hookState(record, 'stopped'), opts.warn);
  } finally {
    lock.release();
  }
}
