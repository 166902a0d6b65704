// exec --cgroup: the sub-cgroups of the container's own that an exec'd process joins, as runc takes them.
import { posix } from 'node:path';
import { StockadeError } from '../errors';

/**
 * Sub-cgroup paths by controller, from runc's `--cgroup [CONTROLLER[,CONTROLLER...]:]PATH` values:
 * one PATH for every hierarchy (key ""), or one per named controller, never both. Each PATH is
 * cleaned and must stay below the container's cgroup.
 */
export function parseSubCgroups(values: readonly string[]): Map<string, string> {
  const subs = new Map<string, string>();
  for (const value of values) {
    const colon = value.indexOf(':');
    const raw = colon < 0 ? value : value.slice(colon + 1);
    const sub = subPath(raw, value);
    if (colon < 0) {
      if (subs.size > 0) throw usage(`${value} conflicts with other --cgroup values`);
      subs.set('', sub);
      continue;
    }
    if (subs.has('')) throw usage(`${[...subs.values()][0] ?? ''} has no <controller>: prefix, and ${value} has one: name the controllers of every value or of none`);
    for (const controller of value.slice(0, colon).split(',')) {
      if (controller === '' || subs.has(controller)) throw usage(`${value} conflicts with other --cgroup values`);
      subs.set(controller, sub);
    }
  }
  return subs;
}

/** `raw` cleaned and made relative ("/a", "a/../a" and "a" are one path); refused when it leaves the container's cgroup. */
function subPath(raw: string, value: string): string {
  const cleaned = posix.normalize(`./${raw}`).replace(/^\/+/, '').replace(/\/+$/, '');
  if (cleaned === '..' || cleaned.startsWith('../')) throw usage(`${value}: ${raw} is not a sub cgroup path`);
  return cleaned === '.' ? '' : cleaned;
}

/**
 * The directories the exec'd process joins: each of the container's, with the sub path that
 * applies to its hierarchy. `controllersOf` names a directory's controllers (undefined for a
 * cgroup2 hierarchy). Controllers may be named only where a v1 hierarchy holds them.
 */
export function subCgroupDirs(dirs: readonly string[], subs: ReadonlyMap<string, string>, controllersOf: (dir: string) => readonly string[] | undefined): string[] {
  if (subs.size === 0) return [...dirs];
  const all = subs.get('');
  const known = new Set(dirs.flatMap((d) => controllersOf(d) ?? []));
  for (const c of subs.keys()) {
    if (c === '') continue;
    if (known.size === 0) throw usage(`${c}: controllers cannot be named on cgroup v2 (give the path alone)`);
    if (!known.has(c)) throw usage(`unknown controller ${JSON.stringify(c)}: the container's cgroups have ${[...known].join(', ')}`);
  }
  return dirs.map((dir) => {
    const controllers = controllersOf(dir);
    const sub = all ?? (controllers ?? []).map((c) => subs.get(c)).find((s) => s !== undefined);
    return sub === undefined || sub === '' ? dir : posix.join(dir, sub);
  });
}

function usage(message: string): StockadeError {
  return new StockadeError('USAGE', `exec: --cgroup: ${message}`);
}
