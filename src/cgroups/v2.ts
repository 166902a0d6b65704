// The cgroup v2 manager: one directory in the unified hierarchy, v1-shaped OCI values converted as runc converts them.
import { posix } from 'node:path';
import { StockadeError } from '../errors';
import type { Resources } from '../oci/spec';
import {
  cgroupProcs, hasCgroupFile, makeCgroupDir, readCgroupFile, readKeyValues, writeCgroupFile,
} from './fs';
import type { CgroupManager, FreezerState, Warn } from './manager';
import {
  blkioToIoWeight, intString, SECTION_FIELD, sectionsOf, sharesToWeight, swapToV2, V2_CONTROLLER, type Section, setCpuset, setPids } from './resources';
import { v2Stats, type Stats } from './stats';
import { rdmaLine, removeMade } from './v1';
import { attachDeviceRules, type DeviceRulesApplier } from './v2-devices';

const F = 'linux.resources';

export interface V2Options {
  /** The unified mountpoint: controllers are enabled from here down to the container's parent. */
  mountpoint: string;
  /**
   * Which controllers to enable on the way down: all that are offered (a pure v2 host, as runc),
   * or only those a hybrid host routes to v2, so the host's v2 tree is changed no more than needed.
   */
  enable: 'all' | readonly string[];
  /** How device rules are enforced: attachDeviceRules (a BPF program) unless a test records them instead. */
  devices?: DeviceRulesApplier;
}

export class V2Manager implements CgroupManager {
  readonly mode = 'v2' as const;
  readonly dir: string;
  readonly #opts: V2Options;
  #made: string[] = [];

  constructor(dir: string, opts: V2Options) {
    this.dir = dir;
    this.#opts = opts;
  }

  get paths(): readonly string[] { return [this.dir]; }
  get made(): readonly string[] { return this.#made; }

  /** Controllers usable in the container's directory (or, before it exists, offered to it). */
  controllers(): string[] {
    const own = readCgroupFile(this.dir, 'cgroup.controllers') ?? readCgroupFile(posix.dirname(this.dir), 'cgroup.subtree_control') ?? '';
    return own.split(/\s+/).filter((c) => c !== '');
  }

  async create(resources: Resources, warn: Warn): Promise<void> {
    try {
      this.#made.push(...makeCgroupDir(this.dir));
      this.#enableControllers();
      this.apply(resources, warn);
    } catch (e) {
      await this.undo().catch(() => undefined);
      throw e;
    }
  }

  // Each ancestor below the mount hands its controllers down; the leaf enables none, so processes may join it.
  #enableControllers(): void {
    const { mountpoint, enable } = this.#opts;
    if (enable !== 'all' && enable.length === 0) return;
    const chain: string[] = [];
    for (let d = posix.dirname(this.dir); d.length >= mountpoint.length; d = posix.dirname(d)) {
      chain.unshift(d);
      if (d === mountpoint) break;
    }
    for (const d of chain) {
      const offered = (readCgroupFile(d, 'cgroup.controllers') ?? '').split(/\s+/).filter((c) => c !== '');
      const wanted = enable === 'all' ? offered : offered.filter((c) => enable.includes(c));
      if (wanted.length === 0) continue;
      try {
        writeCgroupFile(d, 'cgroup.subtree_control', wanted.map((c) => `+${c}`).join(' '), `cgroup ${d}`);
      } catch {
        // One refused controller (a threaded subtree, a busy parent) must not cost the others.
        for (const c of wanted) {
          try { writeCgroupFile(d, 'cgroup.subtree_control', `+${c}`, `cgroup ${d}`); } catch { /* reported when a limit needs it */ }
        }
      }
    }
  }

  apply(resources: Resources, warn: Warn): void {
    const available = this.controllers();
    for (const section of sectionsOf(resources)) {
      if (section === 'devices') {
        // v2 has no devices controller: a BPF_CGROUP_DEVICE program on the container's cgroup decides.
        (this.#opts.devices ?? attachDeviceRules)(this.dir, resources.devices ?? []);
        continue;
      }
      if (section === 'unified') {
        setUnified(this.dir, resources.unified ?? {}, available);
        continue;
      }
      const controller = V2_CONTROLLER[section];
      if (controller === undefined) {
        throw new StockadeError('CGROUP_FAILED', `${SECTION_FIELD[section]}: the ${section} controller does not exist in cgroup v2`, { field: SECTION_FIELD[section] });
      }
      if (!available.includes(controller)) {
        throw new StockadeError('CGROUP_FAILED', `${SECTION_FIELD[section]}: the ${controller} cgroup controller is not enabled for ${this.dir}`, { field: SECTION_FIELD[section], path: this.dir });
      }
      applyV2Section(section, this.dir, resources, warn);
    }
  }

  async freeze(timeoutMs = 5000): Promise<void> {
    writeCgroupFile(this.dir, 'cgroup.freeze', '1', 'pause');
    const deadline = Date.now() + timeoutMs;
    while (this.freezerState() !== 'frozen') {
      if (Date.now() > deadline) {
        writeCgroupFile(this.dir, 'cgroup.freeze', '0', 'pause');
        throw new StockadeError('CGROUP_FAILED', `pause: ${this.dir} did not freeze within ${timeoutMs} ms`, { path: this.dir });
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  thaw(): void {
    writeCgroupFile(this.dir, 'cgroup.freeze', '0', 'resume');
  }

  freezerState(): FreezerState | undefined {
    const want = readCgroupFile(this.dir, 'cgroup.freeze');
    if (want === undefined) return undefined;
    if (readKeyValues(this.dir, 'cgroup.events').get('frozen') === 1n) return 'frozen';
    return want === '1' ? 'freezing' : 'thawed';
  }

  stats(): Stats {
    return v2Stats(this.dir);
  }

  oomKills(): bigint {
    return readKeyValues(this.dir, 'memory.events').get('oom_kill') ?? 0n;
  }

  pids(): number[] {
    return [...new Set(cgroupProcs(this.dir))];
  }

  async destroy(): Promise<void> {
    await removeMade(this.#made, this.paths);
  }

  async undo(): Promise<void> {
    await removeMade(this.#made, []);
  }
}

function setUnified(dir: string, unified: Readonly<Record<string, string>>, available: readonly string[]): void {
  for (const [key, value] of Object.entries(unified)) {
    const field = `${F}.unified[${JSON.stringify(key)}]`;
    if (key.includes('/') || key === '.' || key === '..' || !key.includes('.')) {
      throw new StockadeError('CGROUP_FAILED', `${field}: not a cgroup file name`, { field });
    }
    if (!hasCgroupFile(dir, key)) {
      const controller = key.slice(0, key.indexOf('.'));
      const why = controller !== 'cgroup' && !available.includes(controller) ? `the ${controller} controller is not enabled for ${dir}` : 'no such cgroup file';
      throw new StockadeError('CGROUP_FAILED', `${field}: cannot set ${key}: ${why}`, { field, path: dir });
    }
    writeCgroupFile(dir, key, value, field);
  }
}

function applyV2Section(section: Section, dir: string, r: Resources, warn: Warn): void {
  switch (section) {
    case 'memory': return setMemory(dir, r, warn);
    case 'cpu': return setCpu(dir, r);
    case 'cpuset': return setCpuset(dir, r);
    case 'pids': return setPids(dir, r);
    case 'blkio': return setIo(dir, r, warn);
    case 'hugetlb':
      for (const [i, h] of (r.hugepageLimits ?? []).entries()) {
        const field = `${F}.hugepageLimits[${i}]`;
        writeCgroupFile(dir, `hugetlb.${h.pageSize}.max`, intString(h.limit, 'max'), field);
        if (hasCgroupFile(dir, `hugetlb.${h.pageSize}.rsvd.max`)) writeCgroupFile(dir, `hugetlb.${h.pageSize}.rsvd.max`, intString(h.limit, 'max'), field);
      }
      return;
    case 'rdma':
      for (const [dev, l] of Object.entries(r.rdma ?? {})) writeCgroupFile(dir, 'rdma.max', rdmaLine(dev, l), `${F}.rdma.${dev}`);
      return;
    default: return;
  }
}

function setMemory(dir: string, r: Resources, warn: Warn): void {
  const m = r.memory ?? {};
  const limit = m.limit ?? 0;
  const swap = swapToV2(m.swap ?? 0, limit, `${F}.memory.swap`);
  if (swap !== 0) {
    // No swap accounting: "unlimited swap" asks for nothing, anything else cannot be honoured.
    if (hasCgroupFile(dir, 'memory.swap.max') || swap !== -1) writeCgroupFile(dir, 'memory.swap.max', intString(swap, 'max'), `${F}.memory.swap`);
  }
  if (limit !== 0) writeCgroupFile(dir, 'memory.max', intString(limit, 'max'), `${F}.memory.limit`);
  if (m.reservation !== undefined && m.reservation !== 0) writeCgroupFile(dir, 'memory.low', intString(m.reservation, 'max'), `${F}.memory.reservation`);
  if (m.kernel !== undefined && m.kernel !== 0) warn(`${F}.memory.kernel: kernel memory limits do not exist in cgroup v2; ignored`);
  if (m.kernelTCP !== undefined && m.kernelTCP !== 0) warn(`${F}.memory.kernelTCP: kernel TCP memory limits do not exist in cgroup v2; ignored`);
  if (m.swappiness !== undefined && m.swappiness !== -1 && m.swappiness < 2 ** 63) warn(`${F}.memory.swappiness: cgroup v2 has no per-group swappiness; ignored`);
  if (m.disableOOMKiller === true) warn(`${F}.memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer; ignored`);
}

function setCpu(dir: string, r: Resources): void {
  const c = r.cpu ?? {};
  if ((c.realtimePeriod ?? 0) !== 0 || (c.realtimeRuntime ?? 0) !== 0) {
    throw new StockadeError('CGROUP_FAILED', `${F}.cpu.realtimeRuntime: real-time CPU budgets do not exist in cgroup v2`, { field: `${F}.cpu.realtimeRuntime` });
  }
  if (c.idle !== undefined) writeCgroupFile(dir, 'cpu.idle', String(c.idle), `${F}.cpu.idle`);
  // An idle group has no weight to set (the kernel refuses one).
  if (c.shares !== undefined && c.shares !== 0 && c.idle !== 1) writeCgroupFile(dir, 'cpu.weight', String(sharesToWeight(c.shares)), `${F}.cpu.shares`);
  const quota = c.quota ?? 0;
  const period = c.period ?? 0;
  if (quota !== 0 || period !== 0) {
    let v = quota > 0 ? intString(quota, 'max') : 'max';
    // "QUOTA" alone keeps the period; as runc, a period without a quota lifts the quota.
    if (period !== 0) v += ` ${period}`;
    writeCgroupFile(dir, 'cpu.max', v, quota !== 0 ? `${F}.cpu.quota` : `${F}.cpu.period`);
  }
  if (c.burst !== undefined) writeCgroupFile(dir, 'cpu.max.burst', String(c.burst), `${F}.cpu.burst`);
}

function setIo(dir: string, r: Resources, warn: Warn): void {
  const b = r.blockIO ?? {};
  // BFQ's own weight file takes blkio's scale as it is; io.weight needs the conversion.
  const bfq = hasCgroupFile(dir, 'io.bfq.weight');
  if (b.weight !== undefined && b.weight !== 0) {
    writeCgroupFile(dir, bfq ? 'io.bfq.weight' : 'io.weight', String(bfq ? b.weight : blkioToIoWeight(b.weight)), `${F}.blockIO.weight`);
  }
  if (b.leafWeight !== undefined && b.leafWeight !== 0) warn(`${F}.blockIO.leafWeight: cgroup v2 has no leaf weight; ignored`);
  for (const [i, d] of (b.weightDevice ?? []).entries()) {
    if (d.weight === undefined) continue;
    const w = bfq ? d.weight : blkioToIoWeight(d.weight);
    writeCgroupFile(dir, bfq ? 'io.bfq.weight' : 'io.weight', `${d.major}:${d.minor} ${w}`, `${F}.blockIO.weightDevice[${i}].weight`);
  }
  const throttles = [
    ['throttleReadBpsDevice', 'rbps'], ['throttleWriteBpsDevice', 'wbps'],
    ['throttleReadIOPSDevice', 'riops'], ['throttleWriteIOPSDevice', 'wiops'],
  ] as const;
  for (const [key, name] of throttles) {
    for (const [i, d] of (b[key] ?? []).entries()) {
      writeCgroupFile(dir, 'io.max', `${d.major}:${d.minor} ${name}=${d.rate === undefined || d.rate === 0 ? 'max' : intString(d.rate, 'max')}`, `${F}.blockIO.${key}[${i}]`);
    }
  }
}
