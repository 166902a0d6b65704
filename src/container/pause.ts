// pause and resume: freeze and thaw every process of a running container through its cgroup.
import type { ContainerId } from './id';
import { requireCgroups } from './cgroups';
import { assertCanPerform } from './status';
import type { StateStore } from './state-store';

export async function pauseContainer(store: StateStore, id: ContainerId): Promise<void> {
  const lock = await store.lock(id);
  try {
    const record = store.read(id);
    assertCanPerform('pause', store.status(id, record), id);
    await requireCgroups(record, 'pause').freeze();
  } finally {
    lock.release();
  }
}

export async function resumeContainer(store: StateStore, id: ContainerId): Promise<void> {
  const lock = await store.lock(id);
  try {
    const record = store.read(id);
    assertCanPerform('resume', store.status(id, record), id);
    requireCgroups(record, 'resume').thaw();
  } finally {
    lock.release();
  }
}
