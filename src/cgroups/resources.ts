// OCI linux.resources split by the controller each part needs, and the v1 -> v2 value conversions runc uses.
import type { DeviceCgroup, Device, Resources } from '../oci/spec';
import { StockadeError } from '../errors';
import { writeCgroupFile } from './fs';

/** A part of linux.resources that one controller enforces; named after its v1 controller. */
export type Section = 'memory' | 'cpu' | 'cpuset' | 'pids' | 'blkio' | 'hugetlb' | 'devices' | 'net_cls' | 'net_prio' | 'rdma' | 'unified';

export const SECTION_FIELD: Readonly<Record<Section, string>> = {
  memory: 'linux.resources.memory',
  cpu: 'linux.resources.cpu',
  cpuset: 'linux.resources.cpu',
  pids: 'linux.resources.pids',
  blkio: 'linux.resources.blockIO',
  hugetlb: 'linux.resources.hugepageLimits',
  devices: 'linux.resources.devices',
  net_cls: 'linux.resources.network.classID',
  net_prio: 'linux.resources.network.priorities',
  rdma: 'linux.resources.rdma',
  unified: 'linux.resources.unified',
};

/** The cgroup v2 controller enforcing each section; undefined where v2 has none (devices need BPF; net_cls/net_prio are gone). */
export const V2_CONTROLLER: Readonly<Record<Section, string | undefined>> = {
  memory: 'memory', cpu: 'cpu', cpuset: 'cpuset', pids: 'pids', blkio: 'io', hugetlb: 'hugetlb',
  devices: undefined, net_cls: undefined, net_prio: undefined, rdma: 'rdma', unified: undefined,
};

const defined = (o: object | undefined, keys: readonly string[]): boolean =>
  o !== undefined && keys.some((k) => (o as Record<string, unknown>)[k] !== undefined);

/** The sections a resources object actually asks for, in the order they are applied. */
export function sectionsOf(r: Resources): Section[] {
  const s: Section[] = [];
  if (defined(r.memory, ['limit', 'reservation', 'swap', 'kernel', 'kernelTCP', 'swappiness', 'disableOOMKiller'])) s.push('memory');
  if (defined(r.cpu, ['shares', 'quota', 'burst', 'period', 'realtimeRuntime', 'realtimePeriod', 'idle'])) s.push('cpu');
  if (defined(r.cpu, ['cpus', 'mems'])) s.push('cpuset');
  if (r.pids !== undefined) s.push('pids');
  if (defined(r.blockIO, ['weight', 'leafWeight']) || [r.blockIO?.weightDevice, r.blockIO?.throttleReadBpsDevice, r.blockIO?.throttleWriteBpsDevice,
    r.blockIO?.throttleReadIOPSDevice, r.blockIO?.throttleWriteIOPSDevice].some((l) => (l?.length ?? 0) > 0)) s.push('blkio');
  if ((r.hugepageLimits?.length ?? 0) > 0) s.push('hugetlb');
  if ((r.devices?.length ?? 0) > 0) s.push('devices');
  if (r.network?.classID !== undefined) s.push('net_cls');
  if ((r.network?.priorities?.length ?? 0) > 0) s.push('net_prio');
  if (Object.keys(r.rdma ?? {}).length > 0) s.push('rdma');
  if (Object.keys(r.unified ?? {}).length > 0) s.push('unified');
  return s;
}

/** A resources object holding only the given sections (the cpu object is split between cpu and cpuset). */
export function pickSections(r: Resources, sections: readonly Section[]): Resources {
  const out: Resources = {};
  const has = (s: Section): boolean => sections.includes(s);
  if (has('memory') && r.memory !== undefined) out.memory = r.memory;
  if ((has('cpu') || has('cpuset')) && r.cpu !== undefined) {
    const { cpus, mems, ...rest } = r.cpu;
    out.cpu = { ...(has('cpu') ? rest : {}), ...(has('cpuset') && cpus !== undefined ? { cpus } : {}), ...(has('cpuset') && mems !== undefined ? { mems } : {}) };
  }
  if (has('pids') && r.pids !== undefined) out.pids = r.pids;
  if (has('blkio') && r.blockIO !== undefined) out.blockIO = r.blockIO;
  if (has('hugetlb') && r.hugepageLimits !== undefined) out.hugepageLimits = r.hugepageLimits;
  if (has('devices') && r.devices !== undefined) out.devices = r.devices;
  if ((has('net_cls') || has('net_prio')) && r.network !== undefined) {
    out.network = {
      ...(has('net_cls') && r.network.classID !== undefined ? { classID: r.network.classID } : {}),
      ...(has('net_prio') && r.network.priorities !== undefined ? { priorities: r.network.priorities } : {}),
    };
  }
  if (has('rdma') && r.rdma !== undefined) out.rdma = r.rdma;
  if (has('unified') && r.unified !== undefined) out.unified = r.unified;
  return out;
}

const U63 = 2 ** 63;

/** A JSON number as a cgroup file wants it; anything at or past 2^63 means unlimited. */
export function intString(v: number, unlimited: string): string {
  if (v >= U63 || v === -1) return unlimited;
  return BigInt(Math.trunc(v)).toString();
}

/**
 * runc's (opencontainers/cgroups) cpu.shares -> cpu.weight: a curve through 2 -> 1, 1024 -> 100
 * (both defaults) and 262144 -> 10000. Older runc used a straight line that mapped 1024 to 39.
 */
export function sharesToWeight(shares: number): number {
  if (shares === 0) return 0;
  if (shares <= 2) return 1;
  if (shares >= 262144) return 10000;
  const l = Math.log2(shares);
  return Math.ceil(10 ** ((l * l + 125 * l) / 612 - 7 / 34));
}

/** runc's blkio weight [10, 1000] -> io.weight [1, 10000]. */
export function blkioToIoWeight(weight: number): number {
  if (weight === 0) return 0;
  return 1 + Math.floor(((weight - 10) * 9999) / 990);
}

/** OCI swap is memory+swap; v2's memory.swap.max is swap alone. -1 is "max", 0 "unset". */
export function swapToV2(swap: number, memory: number, field: string): number {
  if (memory === -1 && swap === 0) return -1;
  if (swap === -1 || swap === 0) return swap;
  if (memory === 0 || memory === -1) throw new StockadeError('CGROUP_FAILED', `${field}: cannot limit swap without a memory limit`, { field });
  if (memory < 0) throw new StockadeError('CGROUP_FAILED', `${field}: invalid memory value ${memory}`, { field });
  if (swap < memory) throw new StockadeError('CGROUP_FAILED', `${field}: memory+swap limit ${swap} must be at least the memory limit ${memory}`, { field });
  return swap - memory;
}

/** One device rule in the devices.allow / devices.deny syntax. */
export function deviceRule(d: DeviceCgroup): string {
  const type = d.type ?? 'a';
  const n = (v: number | undefined): string => (v === undefined || v < 0 ? '*' : String(v));
  return `${type} ${n(d.major)}:${n(d.minor)} ${d.access ?? 'rwm'}`;
}

// What runc's specconv appends to every device list: mknod anything, and the standard devices.
const DEFAULT_DEVICE_RULES: readonly DeviceCgroup[] = [
  { allow: true, type: 'c', access: 'm' },
  { allow: true, type: 'b', access: 'm' },
  { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 8, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 7, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 0, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 5, access: 'rwm' },
  { allow: true, type: 'c', major: 1, minor: 9, access: 'rwm' },
  { allow: true, type: 'c', major: 136, access: 'rwm' },
  { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' },
];

/**
 * The resources the cgroups get: the spec's, with the device list completed as runc completes it
 * (the devices in linux.devices and the standard ones stay usable behind a deny-all rule).
 */
export function effectiveResources(r: Resources | undefined, devices: readonly Device[] | undefined): Resources {
  const out: Resources = { ...(r ?? {}) };
  if ((r?.devices?.length ?? 0) > 0) {
    out.devices = [
      ...(r?.devices ?? []),
      ...(devices ?? []).filter((d) => d.type === 'c' || d.type === 'b' || d.type === 'u')
        .map((d): DeviceCgroup => ({ allow: true, type: d.type === 'u' ? 'c' : d.type, major: d.major ?? 0, minor: d.minor ?? 0, access: 'rwm' })),
      ...DEFAULT_DEVICE_RULES,
    ];
  }
  return out;
}

/** cpuset.cpus and cpuset.mems: the same files on v1 and v2. */
export function setCpuset(dir: string, r: Resources): void {
  if (r.cpu?.cpus !== undefined && r.cpu.cpus !== '') writeCgroupFile(dir, 'cpuset.cpus', r.cpu.cpus, 'linux.resources.cpu.cpus');
  if (r.cpu?.mems !== undefined && r.cpu.mems !== '') writeCgroupFile(dir, 'cpuset.mems', r.cpu.mems, 'linux.resources.cpu.mems');
}

/** pids.max, the same on v1 and v2; as runc, 0 leaves the limit alone and a negative value lifts it. */
export function setPids(dir: string, r: Resources): void {
  const limit = r.pids?.limit ?? 0;
  if (limit !== 0) writeCgroupFile(dir, 'pids.max', limit > 0 ? intString(limit, 'max') : 'max', 'linux.resources.pids.limit');
}
