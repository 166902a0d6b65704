// delete: removes a stopped container's state; a created one, or any with --force, is killed first.
import { StockadeError } from '../errors';
import type { ContainerId } from './id';
import { forceKill } from './kill';
import type { StateStore } from './state-store';

export async function deleteContainer(store: StateStore, id: ContainerId, force: boolean): Promise<void> {
  const lock = await store.lock(id);
  try {
    const record = store.read(id);
    const status = store.status(id, record);
    if (status !== 'stopped') {
      if (status !== 'created' && !force) {
        throw new StockadeError('STATE_TRANSITION', `cannot delete container ${id} that is not stopped: ${status} (use --force)`, { id, from: status, operation: 'delete' });
      }
      await forceKill(record.pid, record.pidStartTime);
    }
    store.remove(id);
  } finally {
    lock.release();
  }
}
