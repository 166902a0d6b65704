// update: new resource limits for a live container, applied by its level and kept in its stored config.
import type { Warn } from '../cgroups';
import { StockadeError } from '../errors';
import type { Resources } from '../oci/spec';
import { driven, statusOf } from './driver-of';
import type { ContainerId } from './id';
import type { Levels } from './level';
import { assertCanPerform } from './status';
import type { StateStore } from './state-store';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

// The fields of linux.resources and the JSON type each must have; arrays and maps are checked by their element.
const NUM = 'number';
const SHAPE: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  memory: { limit: NUM, reservation: NUM, swap: NUM, kernel: NUM, kernelTCP: NUM, swappiness: NUM, disableOOMKiller: 'boolean', useHierarchy: 'boolean', checkBeforeUpdate: 'boolean' },
  cpu: { shares: NUM, quota: NUM, burst: NUM, period: NUM, realtimeRuntime: NUM, realtimePeriod: NUM, cpus: 'string', mems: 'string', idle: NUM },
  pids: { limit: NUM },
  blockIO: { weight: NUM, leafWeight: NUM, weightDevice: 'array', throttleReadBpsDevice: 'array', throttleWriteBpsDevice: 'array', throttleReadIOPSDevice: 'array', throttleWriteIOPSDevice: 'array' },
  network: { classID: NUM, priorities: 'array' },
};

/** Checks untrusted JSON (update --resources) has the shape of linux.resources; names the first bad field. */
export function parseResources(value: unknown, source: string): Resources {
  if (!isObj(value)) throw new StockadeError('USAGE', `${source}: linux.resources must be a JSON object`, { field: 'resources' });
  for (const [section, v] of Object.entries(value)) {
    const shape = SHAPE[section];
    if (shape !== undefined) {
      if (v === null) continue;
      if (!isObj(v)) throw new StockadeError('USAGE', `${source}: ${section} must be an object`, { field: section });
      for (const [k, x] of Object.entries(v)) {
        const want = shape[k];
        if (want === undefined || x === null) continue;
        const got = Array.isArray(x) ? 'array' : typeof x;
        if (got !== want) throw new StockadeError('USAGE', `${source}: ${section}.${k} must be a ${want}, not ${JSON.stringify(x)}`, { field: `${section}.${k}` });
      }
    } else if (section === 'unified') {
      if (!isObj(v) || Object.values(v).some((x) => typeof x !== 'string')) throw new StockadeError('USAGE', `${source}: unified must map file names to strings`, { field: section });
    } else if (section === 'devices' || section === 'hugepageLimits') {
      if (v !== null && !Array.isArray(v)) throw new StockadeError('USAGE', `${source}: ${section} must be an array`, { field: section });
    }
  }
  // JSON null means "not given" (Go's nil pointer), the way Docker sends unset fields.
  return JSON.parse(JSON.stringify(value, (_k, x: unknown) => (x === null ? undefined : x))) as Resources;
}

/** `over` laid on `base`: each given field replaces the stored one; lists replace whole lists. */
export function mergeResources(base: Resources, over: Resources): Resources {
  const out: Resources = { ...base };
  const o = out as Obj;
  for (const [k, v] of Object.entries(over)) {
    const b = (base as Obj)[k];
    o[k] = isObj(v) && isObj(b) ? { ...b, ...v } : v;
  }
  return out;
}

export async function updateContainer(store: StateStore, levels: Levels, id: ContainerId, change: Resources, warn: Warn): Promise<void> {
  const lock = await store.lock(id);
  try {
    const d = driven(levels, store, id, store.read(id));
    assertCanPerform('update', await statusOf(d), id);
    const spec = store.readConfig(id);
    const merged = mergeResources(spec.linux?.resources ?? {}, change);
    // As runc, the whole merged set is applied: v2's swap and v1's memory/swap order depend on both values.
    await d.driver.update(d.container, merged, warn);
    spec.linux = { ...(spec.linux ?? {}), resources: merged };
    store.writeConfig(id, spec);
  } finally {
    lock.release();
  }
}
