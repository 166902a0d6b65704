// Device rules on cgroup v2: the compiled device program loaded through the addon and attached to the container's cgroup.
import { closeSync, constants, openSync } from 'node:fs';
import { StockadeError } from '../errors';
import { bpfCgroupDeviceAttach, bpfDeviceProgLoad } from '../native/addon';
import type { DeviceCgroup } from '../oci/spec';
import { deviceProgram, encodeBpf } from './device-bpf';

const FIELD = 'linux.resources.devices';

/** Where v2 device rules go; a parameter of V2Manager so tests on fake trees can record instead. */
export type DeviceRulesApplier = (dir: string, rules: readonly DeviceCgroup[]) => void;

/**
 * Loads the program for `rules` and attaches it to the cgroup2 directory `dir`, replacing the
 * device program attached there before (update). Fails closed: a program that does not load or
 * attach fails the create or update, since the container would otherwise reach every device.
 */
export const attachDeviceRules: DeviceRulesApplier = (dir, rules) => {
  let prog: number | undefined;
  let cgroup: number | undefined;
  try {
    prog = bpfDeviceProgLoad(encodeBpf(deviceProgram(rules)));
    cgroup = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    bpfCgroupDeviceAttach(cgroup, prog);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new StockadeError('CGROUP_FAILED', `${FIELD}: cannot enforce the device rules on ${dir} (a cgroup v2 device program): ${why}`, { field: FIELD, path: dir }, { cause: e });
  } finally {
    if (prog !== undefined) closeSync(prog);
    if (cgroup !== undefined) closeSync(cgroup);
  }
};
