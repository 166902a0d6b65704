// state and list: the OCI state of containers as runc prints it.
import type { ContainerId } from './id';
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

export function containerState(store: StateStore, id: ContainerId): ContainerState {
  const record = store.read(id);
  const status = store.status(id, record);
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

export function listStates(store: StateStore): ContainerState[] {
  const out: ContainerState[] = [];
  for (const id of store.list()) {
    try {
      out.push(containerState(store, id));
    } catch { /* removed while listing */ }
  }
  return out;
}
