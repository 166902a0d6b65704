// events: the container's cgroup statistics as runc prints them, once or every interval, and OOM kills as they happen.
import { statsJson, toJson } from '../cgroups';
import { StockadeError } from '../errors';
import { requireCgroups } from './cgroups';
import type { ContainerId } from './id';
import type { StateStore } from './state-store';

/** One event line: {"type":"stats","id":ID,"data":{...}} or {"type":"oom","id":ID}. */
export function eventLine(type: 'stats' | 'oom', id: string, data?: ReturnType<typeof statsJson>): string {
  return `${toJson({ type, id, ...(data === undefined ? {} : { data }) })}\n`;
}

function liveRecord(store: StateStore, id: ContainerId): ReturnType<StateStore['read']> {
  const record = store.read(id);
  const status = store.status(id, record);
  if (status === 'stopped') throw new StockadeError('STATE_TRANSITION', `container ${id} is not running: it is stopped`, { id, from: status, operation: 'events' });
  return record;
}

export function statsEvent(store: StateStore, id: ContainerId): string {
  return eventLine('stats', id, statsJson(requireCgroups(liveRecord(store, id), 'read the statistics of').stats()));
}

/**
 * Writes a stats line every `intervalMs` and an oom line whenever the kernel's OOM kill count
 * rises (polled: the v1 eventfd interface is out of Node's reach), until the container stops.
 */
export async function streamEvents(store: StateStore, id: ContainerId, intervalMs: number, write: (line: string) => void): Promise<void> {
  const cgroups = requireCgroups(liveRecord(store, id), 'watch the events of');
  let ooms = cgroups.oomKills();
  const poll = Math.min(intervalMs, 200);
  let nextStats = Date.now() + intervalMs;
  const checkOom = (): void => {
    const now = cgroups.oomKills();
    if (now > ooms) write(eventLine('oom', id));
    ooms = now;
  };
  for (;;) {
    await new Promise((r) => setTimeout(r, poll));
    let record;
    try {
      record = store.read(id);
    } catch {
      return; // deleted
    }
    checkOom();
    if (store.status(id, record) === 'stopped') return;
    if (Date.now() >= nextStats) {
      write(eventLine('stats', id, statsJson(cgroups.stats())));
      nextStats += intervalMs;
    }
  }
}
