// events: the container's statistics as runc prints them, once or every interval, and OOM kills as they happen.
import { statsJson, toJson } from '../cgroups';
import { StockadeError } from '../errors';
import { driven, statusOf, type Driven } from './driver-of';
import type { ContainerId } from './id';
import type { Levels } from './level';
import type { StateStore } from './state-store';

/** One event line: {"type":"stats","id":ID,"data":{...}} or {"type":"oom","id":ID}. */
export function eventLine(type: 'stats' | 'oom', id: string, data?: ReturnType<typeof statsJson>): string {
  return `${toJson({ type, id, ...(data === undefined ? {} : { data }) })}\n`;
}

async function live(store: StateStore, levels: Levels, id: ContainerId): Promise<Driven> {
  const d = driven(levels, store, id, store.read(id));
  const status = await statusOf(d);
  if (status === 'stopped') throw new StockadeError('STATE_TRANSITION', `container ${id} is not running: it is stopped`, { id, from: status, operation: 'events' });
  return d;
}

export async function statsEvent(store: StateStore, levels: Levels, id: ContainerId): Promise<string> {
  const d = await live(store, levels, id);
  return eventLine('stats', id, statsJson((await d.driver.stats(d.container)).stats));
}

/**
 * Writes a stats line every `intervalMs` and an oom line whenever the level's OOM kill count
 * rises (polled: the v1 eventfd interface is out of Node's reach), until the container stops.
 */
export async function streamEvents(store: StateStore, levels: Levels, id: ContainerId, intervalMs: number, write: (line: string) => void): Promise<void> {
  const d = await live(store, levels, id);
  let ooms = (await d.driver.stats(d.container)).oomKills;
  const poll = Math.min(intervalMs, 200);
  let nextStats = Date.now() + intervalMs;
  for (;;) {
    await new Promise((r) => setTimeout(r, poll));
    let record;
    try {
      record = store.read(id);
    } catch {
      return; // deleted
    }
    const now = driven(levels, store, id, record);
    const sample = await d.driver.stats(d.container);
    if (sample.oomKills > ooms) write(eventLine('oom', id));
    ooms = sample.oomKills;
    if (await statusOf(now) === 'stopped') return;
    if (Date.now() >= nextStats) {
      write(eventLine('stats', id, statsJson(sample.stats)));
      nextStats += intervalMs;
    }
  }
}
