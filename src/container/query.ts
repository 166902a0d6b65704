// state and list: the OCI state of containers as runc prints it.
import { driven, statusOf } from './driver-of';
import type { ContainerId } from './id';
import type { Levels } from './level';
import type { Status } from './status';
import type { StateStore } from './state-store';

export interface ContainerState {
  ociVersion: string;
  id: string;
  pid: number;
  status: Status;
  bundle: string;
  rootfs: string;
  created: string;
  owner: string;
  annotations?: Record<string, string>;
}

export async function containerState(store: StateStore, levels: Levels, id: ContainerId): Promise<ContainerState> {
  const record = store.read(id);
  const status = await statusOf(driven(levels, store, id, record));
  const state: ContainerState = {
    ociVersion: record.ociVersion,
    id: record.id,
    // runc reports pid 0 once the container has stopped.
    pid: status === 'stopped' ? 0 : record.pid,
    status,
    bundle: record.bundle,
    rootfs: record.rootfs,
    created: record.created,
    owner: record.owner,
  };
  if (Object.keys(record.annotations).length > 0) state.annotations = record.annotations;
  return state;
}

export async function listStates(store: StateStore, levels: Levels): Promise<ContainerState[]> {
  const out: ContainerState[] = [];
  for (const id of store.list()) {
    try {
      out.push(await containerState(store, levels, id));
    } catch { /* removed while listing */ }
  }
  return out;
}
