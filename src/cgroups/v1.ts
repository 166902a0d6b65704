// The cgroup v1 manager: one directory per mounted hierarchy, each controller's files written as runc writes them.
import { posix } from 'node:path';
import { StockadeError } from '../errors';
import type { Resources } from '../oci/spec';
import {
  cgroupProcs, hasCgroupFile, makeCgroupDir, readCgroupFile, readKeyValues, readUint, removeCgroupDir, writeCgroupFile,
} from './fs';
import type { Hierarchy } from './layout';
import type { CgroupManager, FreezerState, Warn } from './manager';
import { deviceRule, intString, SECTION_FIELD, sectionsOf, type Section, setCpuset, setPids } from './resources';
import { v1Stats, type Stats } from './stats';

const F = 'linux.resources';

export class V1Manager implements CgroupManager {
  readonly mode = 'v1' as const;
  readonly #dirs: Map<Hierarchy, string>;
  #made: string[] = [];

  constructor(dirs: Map<Hierarchy, string>) {
    this.#dirs = dirs;
  }

  get paths(): readonly string[] { return [...this.#dirs.values()]; }
  get made(): readonly string[] { return this.#made; }

  /** The container's directory in the hierarchy holding `controller`, if mounted. */
  dirFor(controller: string): string | undefined {
    for (const [h, dir] of this.#dirs) if (h.controllers.includes(controller)) return dir;
    return undefined;
  }

  hasController(controller: string): boolean {
    return this.dirFor(controller) !== undefined;
  }

  async create(resources: Resources, warn: Warn): Promise<void> {
    try {
      for (const [h, dir] of this.#dirs) {
        this.#made.push(...makeCgroupDir(dir));
        // A new cpuset cgroup starts with no cpus and no mems, and nothing can join it until both are set.
        if (h.controllers.includes('cpuset')) inheritCpuset(h.mountpoint, dir);
      }
      this.apply(resources, warn);
    } catch (e) {
      // Only what this create made: a cgroupsPath naming an existing cgroup shares it, it is not ours.
      await this.undo().catch(() => undefined);
      throw e;
    }
  }

  apply(resources: Resources, warn: Warn): void {
    for (const section of sectionsOf(resources)) {
      if (section === 'unified') {
        throw new StockadeError('CGROUP_FAILED', `${F}.unified: cgroup v2 settings cannot be applied on a cgroup v1 host`, { field: `${F}.unified` });
      }
      const dir = this.dirFor(section);
      if (dir === undefined) {
        throw new StockadeError('CGROUP_FAILED', `${SECTION_FIELD[section]}: the ${section} cgroup controller is not available on this host`, { field: SECTION_FIELD[section] });
      }
      applyV1Section(section, dir, resources, warn);
    }
  }

  async freeze(timeoutMs = 5000): Promise<void> {
    const dir = this.#freezerDir();
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; ; i++) {
      // Writing FROZEN again nudges a cgroup stuck in FREEZING (a task in an uninterruptible sleep).
      if (i % 10 === 0) writeCgroupFile(dir, 'freezer.state', 'FROZEN', 'pause');
      if (readCgroupFile(dir, 'freezer.state') === 'FROZEN') return;
      if (Date.now() > deadline) {
        writeCgroupFile(dir, 'freezer.state', 'THAWED', 'pause');
        throw new StockadeError('CGROUP_FAILED', `pause: ${dir} did not freeze within ${timeoutMs} ms`, { path: dir });
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  thaw(): void {
    writeCgroupFile(this.#freezerDir(), 'freezer.state', 'THAWED', 'resume');
  }

  freezerState(): FreezerState | undefined {
    const dir = this.dirFor('freezer');
    const s = dir === undefined ? undefined : readCgroupFile(dir, 'freezer.state');
    return s === 'FROZEN' ? 'frozen' : s === 'FREEZING' ? 'freezing' : s === 'THAWED' ? 'thawed' : undefined;
  }

  #freezerDir(): string {
    const dir = this.dirFor('freezer');
    if (dir === undefined) throw new StockadeError('UNSUPPORTED', 'the freezer cgroup controller is not mounted on this host', {});
    return dir;
  }

  stats(): Stats {
    return v1Stats((c) => this.dirFor(c));
  }

  oomKills(): bigint {
    const dir = this.dirFor('memory');
    return dir === undefined ? 0n : readKeyValues(dir, 'memory.oom_control').get('oom_kill') ?? 0n;
  }

  pids(): number[] {
    const dir = this.dirFor('pids') ?? this.dirFor('freezer') ?? this.dirFor('memory') ?? this.paths[0];
    return dir === undefined ? [] : [...new Set(cgroupProcs(dir))];
  }

  async destroy(): Promise<void> {
    await removeMade(this.#made, this.paths);
  }

  async undo(): Promise<void> {
    await removeMade(this.#made, []);
  }
}

/** Removes the leaves, then the parents create() made, innermost first. */
export async function removeMade(made: readonly string[], leaves: readonly string[]): Promise<void> {
  const problems: string[] = [];
  for (const dir of [...leaves, ...[...made].reverse()]) {
    try {
      await removeCgroupDir(dir);
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  if (problems.length > 0) throw new StockadeError('CGROUP_FAILED', problems.join('; '), {});
}

/** Copies cpuset.cpus and cpuset.mems down from the first ancestor that has them, as runc does. */
function inheritCpuset(mountpoint: string, dir: string): void {
  const chain: string[] = [];
  for (let d = dir; d.length > mountpoint.length; d = posix.dirname(d)) chain.unshift(d);
  let parent = mountpoint;
  for (const d of chain) {
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      if ((readCgroupFile(d, file) ?? '') === '') {
        const v = readCgroupFile(parent, file) ?? '';
        if (v !== '') writeCgroupFile(d, file, v, `cgroup ${d}`);
      }
    }
    parent = d;
  }
}

function applyV1Section(section: Section, dir: string, r: Resources, warn: Warn): void {
  switch (section) {
    case 'memory': return setMemory(dir, r, warn);
    case 'cpu': return setCpu(dir, r);
    case 'cpuset': return setCpuset(dir, r);
    case 'pids': return setPids(dir, r);
    case 'blkio': return setBlkio(dir, r);
    case 'hugetlb':
      for (const [i, h] of (r.hugepageLimits ?? []).entries()) {
        const field = `${F}.hugepageLimits[${i}]`;
        writeCgroupFile(dir, `hugetlb.${h.pageSize}.limit_in_bytes`, intString(h.limit, '-1'), field);
        if (hasCgroupFile(dir, `hugetlb.${h.pageSize}.rsvd.limit_in_bytes`)) writeCgroupFile(dir, `hugetlb.${h.pageSize}.rsvd.limit_in_bytes`, intString(h.limit, '-1'), field);
      }
      return;
    case 'devices':
      for (const [i, d] of (r.devices ?? []).entries()) {
        writeCgroupFile(dir, d.allow ? 'devices.allow' : 'devices.deny', deviceRule(d), `${F}.devices[${i}]`);
      }
      return;
    case 'net_cls':
      writeCgroupFile(dir, 'net_cls.classid', String(r.network?.classID ?? 0), `${F}.network.classID`);
      return;
    case 'net_prio':
      for (const [i, p] of (r.network?.priorities ?? []).entries()) writeCgroupFile(dir, 'net_prio.ifpriomap', `${p.name} ${p.priority}`, `${F}.network.priorities[${i}]`);
      return;
    case 'rdma':
      for (const [dev, l] of Object.entries(r.rdma ?? {})) writeCgroupFile(dir, 'rdma.max', rdmaLine(dev, l), `${F}.rdma.${dev}`);
      return;
    case 'unified': return;
  }
}

export function rdmaLine(dev: string, l: { hcaHandles?: number; hcaObjects?: number }): string {
  return [dev, ...(l.hcaHandles !== undefined ? [`hca_handle=${l.hcaHandles}`] : []), ...(l.hcaObjects !== undefined ? [`hca_object=${l.hcaObjects}`] : [])].join(' ');
}

function setMemory(dir: string, r: Resources, warn: Warn): void {
  const m = r.memory ?? {};
  const limit = m.limit ?? 0;
  let swap = m.swap ?? 0;
  // An unlimited memory with no word on swap means unlimited swap too (when swap accounting exists).
  if (limit === -1 && swap === 0 && hasCgroupFile(dir, 'memory.memsw.limit_in_bytes')) swap = -1;
  const setLimit = (): void => writeMemoryLimit(dir, limit);
  const setSwap = (): void => writeCgroupFile(dir, 'memory.memsw.limit_in_bytes', intString(swap, '-1'), `${F}.memory.swap`);
  if (limit !== 0 && swap !== 0) {
    // The kernel insists memory <= memory+swap at every step, so the order depends on the current limit.
    const current = readUint(dir, 'memory.limit_in_bytes') ?? 0n;
    if (swap === -1 || current < BigInt(Math.trunc(Math.min(swap, 2 ** 63)))) { setSwap(); setLimit(); } else { setLimit(); setSwap(); }
  } else {
    if (limit !== 0) setLimit();
    if (swap !== 0) setSwap();
  }
  if (m.reservation !== undefined && m.reservation !== 0) writeCgroupFile(dir, 'memory.soft_limit_in_bytes', intString(m.reservation, '-1'), `${F}.memory.reservation`);
  if (m.kernel !== undefined && m.kernel !== 0) warn(`${F}.memory.kernel: kernel memory limits are deprecated and ignored, as runc ignores them`);
  if (m.kernelTCP !== undefined && m.kernelTCP !== 0) writeCgroupFile(dir, 'memory.kmem.tcp.limit_in_bytes', intString(m.kernelTCP, '-1'), `${F}.memory.kernelTCP`);
  if (m.swappiness !== undefined && m.swappiness !== -1 && m.swappiness < 2 ** 63) {
    if (m.swappiness < 0 || m.swappiness > 100) {
      throw new StockadeError('CGROUP_FAILED', `${F}.memory.swappiness: ${m.swappiness} is out of range: it must be between 0 and 100`, { field: `${F}.memory.swappiness` });
    }
    writeCgroupFile(dir, 'memory.swappiness', String(m.swappiness), `${F}.memory.swappiness`);
  }
  if (m.disableOOMKiller === true) writeCgroupFile(dir, 'memory.oom_control', '1', `${F}.memory.disableOOMKiller`);
}

function writeMemoryLimit(dir: string, limit: number): void {
  try {
    writeCgroupFile(dir, 'memory.limit_in_bytes', intString(limit, '-1'), `${F}.memory.limit`);
  } catch (e) {
    // EBUSY: the group already uses more than the new limit; say how much, as runc does.
    if (e instanceof StockadeError && e.context['errno'] === 'EBUSY') {
      e.message += ` (current usage ${readUint(dir, 'memory.usage_in_bytes') ?? '?'}, peak ${readUint(dir, 'memory.max_usage_in_bytes') ?? '?'})`;
    }
    throw e;
  }
}

function setCpu(dir: string, r: Resources): void {
  const c = r.cpu ?? {};
  // Real-time budgets first: the kernel checks them against the group's other settings.
  if (c.realtimePeriod !== undefined && c.realtimePeriod !== 0) writeCgroupFile(dir, 'cpu.rt_period_us', String(c.realtimePeriod), `${F}.cpu.realtimePeriod`);
  if (c.realtimeRuntime !== undefined && c.realtimeRuntime !== 0) writeCgroupFile(dir, 'cpu.rt_runtime_us', String(c.realtimeRuntime), `${F}.cpu.realtimeRuntime`);
  if (c.shares !== undefined && c.shares !== 0) {
    writeCgroupFile(dir, 'cpu.shares', String(c.shares), `${F}.cpu.shares`);
    // The kernel clamps cpu.shares silently; runc reads it back and refuses the clamp.
    const read = readUint(dir, 'cpu.shares');
    if (read !== undefined && read !== BigInt(c.shares)) {
      throw new StockadeError('CGROUP_FAILED', `${F}.cpu.shares: ${c.shares} is out of range: the ${BigInt(c.shares) > read ? 'maximum' : 'minimum'} allowed is ${read}`, { field: `${F}.cpu.shares` });
    }
  }
  let periodPending = false;
  if (c.period !== undefined && c.period !== 0) {
    try {
      writeCgroupFile(dir, 'cpu.cfs_period_us', String(c.period), `${F}.cpu.period`);
    } catch (e) {
      // A shorter period can break the parent's quota until the new quota is in; retry after it.
      if (!(e instanceof StockadeError && e.context['errno'] === 'EINVAL' && c.quota !== undefined && c.quota !== 0)) throw e;
      periodPending = true;
    }
  }
  if (c.quota !== undefined && c.quota !== 0) {
    writeCgroupFile(dir, 'cpu.cfs_quota_us', c.quota > 0 ? intString(c.quota, '-1') : '-1', `${F}.cpu.quota`);
    if (periodPending) writeCgroupFile(dir, 'cpu.cfs_period_us', String(c.period), `${F}.cpu.period`);
  }
  if (c.burst !== undefined) writeCgroupFile(dir, 'cpu.cfs_burst_us', String(c.burst), `${F}.cpu.burst`);
  if (c.idle !== undefined) writeCgroupFile(dir, 'cpu.idle', String(c.idle), `${F}.cpu.idle`);
}

function setBlkio(dir: string, r: Resources): void {
  const b = r.blockIO ?? {};
  // Kernels without CFQ (all since 5.0) offer only BFQ's weight files, with the same syntax.
  const weightFile = hasCgroupFile(dir, 'blkio.weight') || !hasCgroupFile(dir, 'blkio.bfq.weight') ? 'blkio.weight' : 'blkio.bfq.weight';
  if (b.weight !== undefined && b.weight !== 0) writeCgroupFile(dir, weightFile, String(b.weight), `${F}.blockIO.weight`);
  if (b.leafWeight !== undefined && b.leafWeight !== 0) writeCgroupFile(dir, 'blkio.leaf_weight', String(b.leafWeight), `${F}.blockIO.leafWeight`);
  for (const [i, d] of (b.weightDevice ?? []).entries()) {
    if (d.weight !== undefined) writeCgroupFile(dir, `${weightFile}_device`, `${d.major}:${d.minor} ${d.weight}`, `${F}.blockIO.weightDevice[${i}].weight`);
    if (d.leafWeight !== undefined) writeCgroupFile(dir, 'blkio.leaf_weight_device', `${d.major}:${d.minor} ${d.leafWeight}`, `${F}.blockIO.weightDevice[${i}].leafWeight`);
  }
  const throttles = [
    ['throttleReadBpsDevice', 'blkio.throttle.read_bps_device'],
    ['throttleWriteBpsDevice', 'blkio.throttle.write_bps_device'],
    ['throttleReadIOPSDevice', 'blkio.throttle.read_iops_device'],
    ['throttleWriteIOPSDevice', 'blkio.throttle.write_iops_device'],
  ] as const;
  for (const [key, file] of throttles) {
    for (const [i, d] of (b[key] ?? []).entries()) writeCgroupFile(dir, file, `${d.major}:${d.minor} ${d.rate ?? 0}`, `${F}.blockIO.${key}[${i}]`);
  }
}
