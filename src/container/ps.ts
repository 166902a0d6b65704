// ps: the pids of a container's processes as its level lists them, and `ps` output cut down to them as runc does.
import { StockadeError } from '../errors';
import { driven } from './driver-of';
import type { ContainerId } from './id';
import type { Levels } from './level';
import type { StateStore } from './state-store';

export async function containerPids(store: StateStore, levels: Levels, id: ContainerId): Promise<number[]> {
  const d = driven(levels, store, id, store.read(id));
  return d.driver.pids(d.container);
}

/** Keeps the header and the lines whose PID column holds one of `pids`. */
export function filterPsTable(output: string, pids: readonly number[]): string {
  const lines = output.split('\n');
  const header = lines[0] ?? '';
  const column = header.trim().split(/\s+/).indexOf('PID');
  if (column < 0) throw new StockadeError('SYSTEM', `ps: no PID column in the output header: ${JSON.stringify(header)}`, {});
  const keep = new Set(pids);
  const rows = lines.slice(1).filter((l) => {
    const f = l.trim().split(/\s+/)[column];
    return f !== undefined && /^\d+$/.test(f) && keep.has(Number(f));
  });
  return [header, ...rows].map((l) => `${l}\n`).join('');
}
