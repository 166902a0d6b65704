// start: lets a created container run its program, then runs its poststart hooks.
import { encodeState, hookState, runHooksWarning, type Warn } from './hooks';
import { driven, statusOf } from './driver-of';
import type { ContainerId } from './id';
import type { Levels } from './level';
import { assertCanPerform } from './status';
import type { StateStore } from './state-store';
import { mark } from '../log/timing';

export interface StartOptions {
  /** Where a failing poststart hook is reported. */
  warn?: Warn | undefined;
}

export async function startContainer(store: StateStore, levels: Levels, id: ContainerId, opts: StartOptions = {}): Promise<void> {
  const lock = await store.lock(id);
  try {
    const record = store.read(id);
    const d = driven(levels, store, id, record);
    assertCanPerform('start', await statusOf(d), id);
    const spec = store.readConfig(id);
    // The container cannot know its host pid or bundle: its startContainer hooks get their state from here.
    const startState = (spec.hooks?.startContainer ?? []).length > 0 ? encodeState(hookState(record, 'created')) : undefined;
    mark('start locked');
    await d.driver.start(d.container, startState);
    mark('released');
    await runHooksWarning(spec, 'poststart', hookState(record, 'running'), opts.warn);
  } finally {
    lock.release();
  }
}
