// The cgroups entry points: pick the manager for this host's layout, for a new container or for a recorded one.
import { readCgroupFile, readKeyValues } from './fs';
import { hierarchyOf, hostLayout, type Hierarchy, type Layout } from './layout';
import type { CgroupManager, FreezerState } from './manager';
import { containerDirs } from './paths';
import { HybridManager } from './hybrid';
import { V1Manager } from './v1';
import { V2Manager } from './v2';
import type { DeviceRulesApplier } from './v2-devices';

export type { CgroupManager, FreezerState, Warn } from './manager';
export { effectiveResources } from './resources';
export { hierarchyOf, hostLayout, type Layout } from './layout';
export { statsJson, toJson, type Stats } from './stats';

/** What a caller may put in place of the kernel: tests on fake trees record device rules instead of attaching a program. */
export interface ManagerOptions {
  devices?: DeviceRulesApplier;
}

function build(layout: Layout, v1: Map<Hierarchy, string>, unified: string | undefined, opts: ManagerOptions): CgroupManager | undefined {
  const u = layout.unified;
  const devices = opts.devices === undefined ? {} : { devices: opts.devices };
  if (layout.mode === 'v2' || v1.size === 0) {
    // No cgroup file system mounted at all: nothing to place the container in.
    if (u === undefined || unified === undefined) return undefined;
    return new V2Manager(unified, { mountpoint: u.mountpoint, enable: 'all', ...devices });
  }
  const m1 = new V1Manager(v1);
  if (layout.mode === 'v1' || u === undefined || unified === undefined) return m1;
  const v2Side = u.controllers.filter((c) => !m1.hasController(c === 'io' ? 'blkio' : c));
  return new HybridManager(m1, new V2Manager(unified, { mountpoint: u.mountpoint, enable: v2Side, ...devices }), u.controllers);
}

/** The manager for a new container: its directories from linux.cgroupsPath (or its id) in every hierarchy; undefined on a host without cgroups. */
export function managerFor(cgroupsPath: string | undefined, id: string, layout: Layout = hostLayout(), opts: ManagerOptions = {}): CgroupManager | undefined {
  const dirs = containerDirs(layout, cgroupsPath, id);
  return build(layout, dirs.v1, dirs.unified, opts);
}

/** The manager for directories a container was given (ContainerRecord.cgroupPaths); undefined when it has none. */
export function managerFromPaths(paths: readonly string[], layout: Layout = hostLayout(), opts: ManagerOptions = {}): CgroupManager | undefined {
  if (paths.length === 0) return undefined;
  const v1 = new Map<Hierarchy, string>();
  let unified: string | undefined;
  for (const p of paths) {
    const h = hierarchyOf(layout, p);
    if (h === undefined) continue;
    if (h.version === 2) unified = p;
    else v1.set(h, p);
  }
  if (v1.size === 0 && unified === undefined) return undefined;
  return build(layout, v1, unified, opts);
}

/**
 * The freezer state from the directories alone, without reading the layout: `state` and `list`
 * call this for every container. A v1 freezer, where present, is the one pause uses.
 */
export function freezerStateOf(paths: readonly string[]): FreezerState | undefined {
  for (const p of paths) {
    const s = readCgroupFile(p, 'freezer.state');
    if (s !== undefined) return s === 'FROZEN' ? 'frozen' : s === 'FREEZING' ? 'freezing' : 'thawed';
  }
  for (const p of paths) {
    const want = readCgroupFile(p, 'cgroup.freeze');
    if (want === undefined) continue;
    if (readKeyValues(p, 'cgroup.events').get('frozen') === 1n) return 'frozen';
    return want === '1' ? 'freezing' : 'thawed';
  }
  return undefined;
}
