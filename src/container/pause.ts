// pause and resume: freeze and thaw every process of a running container, as its level does it.
import { driven, statusOf } from './driver-of';
import type { ContainerId } from './id';
import type { Levels } from './level';
import { assertCanPerform } from './status';
import type { StateStore } from './state-store';

export async function pauseContainer(store: StateStore, levels: Levels, id: ContainerId): Promise<void> {
  const lock = await store.lock(id);
  try {
    const d = driven(levels, store, id, store.read(id));
    assertCanPerform('pause', await statusOf(d), id);
    await d.driver.pause(d.container);
  } finally {
    lock.release();
  }
}

export async function resumeContainer(store: StateStore, levels: Levels, id: ContainerId): Promise<void> {
  const lock = await store.lock(id);
  try {
    const d = driven(levels, store, id, store.read(id));
    assertCanPerform('resume', await statusOf(d), id);
    await d.driver.resume(d.container);
  } finally {
    lock.release();
  }
}
