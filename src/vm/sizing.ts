// How a vm container's limits size its VM, and what its host cgroup allows the VMM on top.
import { cpus as hostCpus } from 'node:os';
import { sharesToWeight } from '../cgroups/resources';
import type { Resources } from '../oci/spec';
import { StockadeError } from '../errors';

const MiB = 1024 * 1024;

/** A guest without a memory limit gets this much. */
export const DEFAULT_GUEST_MIB = 256;
/**
 * The smallest guest a container gets. The guest kernel keeps ~36 MiB of its RAM for itself (its
 * image is loaded uncompressed, through PVH): at 64 MiB it panicked during boot ("System is
 * deadlocked on memory"), at 96 MiB 28 MiB were left available. A smaller limit is still the
 * container's: its cgroup in the guest holds it (guestLimits).
 */
export const MIN_GUEST_MIB = 128;

/**
 * What the host cgroup allows on top of the guest's memory: QEMU's own (its heap and TCG's code
 * cache: ~51 MB measured, tb-size 32), the pages of its binary, libraries and the kernel image it
 * maps (~60 MB, page cache charged to whoever touched it first), the keeper (Node, ~45 MB) and
 * virtiofsd (~3 MB). The VMM is then confined, and a guest that uses all its memory is not the
 * reason the host kills its VMM.
 */
export const VMM_HEADROOM_MIB = 192;

export interface VmSize {
  readonly memoryMiB: number;
  readonly cpus: number;
}

/**
 * The VM for a container's limits: memory.limit as the guest's RAM (at least MIN_GUEST_MIB; the
 * limit itself is kept inside the guest, on the container's cgroup there), and as many vCPUs as
 * the CPU quota covers (quota/period rounded up), or as cpuset.cpus names, at most the host's.
 */
export function vmSize(r: Resources | undefined): VmSize {
  const limit = r?.memory?.limit;
  const memoryMiB = limit !== undefined && limit > 0 ? Math.max(MIN_GUEST_MIB, Math.ceil(limit / MiB)) : DEFAULT_GUEST_MIB;
  let cpus = 1;
  const quota = r?.cpu?.quota;
  const period = r?.cpu?.period ?? 100000;
  if (quota !== undefined && quota > 0 && period > 0) cpus = Math.ceil(quota / period);
  const set = r?.cpu?.cpus;
  if (set !== undefined && set !== '') cpus = Math.max(cpus, cpusetCount(set));
  return { memoryMiB, cpus: Math.max(1, Math.min(cpus, hostCpus().length)) };
}

/**
 * The guest's RAM for a memory limit set by `update` on a VM with a balloon (balloon.ts): the
 * limit as vmSize takes it (at least MIN_GUEST_MIB), at most the RAM it booted with; all of that
 * RAM without a limit.
 */
export function balloonTarget(r: Resources | undefined, bootMiB: number): number {
  const limit = r?.memory?.limit;
  if (limit === undefined || limit <= 0) return bootMiB;
  return Math.min(bootMiB, Math.max(MIN_GUEST_MIB, Math.ceil(limit / MiB)));
}

/**
 * What containerd's CRI plugin writes on a pod's sandbox from the kubelet's PodSandboxConfig
 * (linux.resources: the sum of the pod's containers' limits, Kubernetes 1.23 and later), which
 * Kata sizes its pod VM from. "0" (or absent) is no limit.
 */
export const SANDBOX_SIZE_ANNOTATIONS = {
  memory: 'io.kubernetes.cri.sandbox-memory',
  cpuQuota: 'io.kubernetes.cri.sandbox-cpu-quota',
  cpuPeriod: 'io.kubernetes.cri.sandbox-cpu-period',
} as const;

/**
 * The guest's own share of a pod VM sized from its containers' limits: its kernel (~36 MiB), the
 * agent, the pause container and some page cache. Each container's limit is held by its cgroup in
 * the guest; without this room, containers at their limits would leave the guest kernel none.
 */
export const POD_GUEST_OWN_MIB = 64;

/**
 * A pod's VM, sized once, at its sandbox's create (microvm has no memory or CPU hot-plug): from
 * the sandbox annotations when the kubelet gave the pod's resources (RAM = their memory plus
 * POD_GUEST_OWN_MIB, vCPUs = quota/period rounded up), else undefined (the sandbox's own config
 * sizes it: a pause container has no limits, so the default). A value that is not a whole number
 * is refused naming the annotation.
 */
export function podVmSize(annotations: Readonly<Record<string, string>> | undefined): VmSize | undefined {
  const read = (key: string): number | undefined => {
    const v = annotations?.[key];
    if (v === undefined) return undefined;
    if (!/^-?\d{1,19}$/.test(v.trim())) {
      throw new StockadeError('CONFIG_INVALID', `config.json: annotations["${key}"]: ${JSON.stringify(v)} is not a whole number`, { field: `annotations["${key}"]` });
    }
    return Number(v.trim());
  };
  const memory = read(SANDBOX_SIZE_ANNOTATIONS.memory);
  const quota = read(SANDBOX_SIZE_ANNOTATIONS.cpuQuota);
  const period = read(SANDBOX_SIZE_ANNOTATIONS.cpuPeriod);
  if (memory === undefined && quota === undefined) return undefined;
  const memoryMiB = memory !== undefined && memory > 0 ? Math.max(MIN_GUEST_MIB, Math.ceil(memory / MiB) + POD_GUEST_OWN_MIB) : DEFAULT_GUEST_MIB;
  const p = period !== undefined && period > 0 ? period : 100000;
  const cpus = quota !== undefined && quota > 0 ? Math.ceil(quota / p) : 1;
  return { memoryMiB, cpus: Math.max(1, Math.min(cpus, hostCpus().length)) };
}

/** How many CPUs a cpuset list ("0-2,4") names. */
export function cpusetCount(list: string): number {
  let n = 0;
  for (const part of list.split(',')) {
    const m = /^\s*(\d+)(?:-(\d+))?\s*$/.exec(part);
    if (m === null) continue;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b >= a) n += b - a + 1;
  }
  return n;
}

/**
 * The resources the host cgroup gets: the container's, with the memory limit (and swap, when
 * set) raised by the VMM's headroom over the guest's RAM, and every device allowed. The guest's RAM is what the workload
 * can use; the headroom is QEMU's, virtiofsd's and the keeper's.
 */
export function hostResources(r: Resources | undefined, size: VmSize): Resources {
  const hostLimit = (size.memoryMiB + VMM_HEADROOM_MIB) * MiB;
  const memory = r?.memory ?? {};
  const swap = memory.swap !== undefined && memory.swap > 0 ? Math.max(memory.swap, hostLimit) : memory.swap;
  return {
    ...(r ?? {}),
    memory: { ...memory, limit: hostLimit, ...(swap === undefined ? {} : { swap }) },
    // The config's device rules are the guest container's (applied in the guest); on the host they
    // would deny QEMU and virtiofsd what they open (/dev/null for their stdio, /dev/kvm). The VMM's
    // devices are bounded by its jail instead: QEMU's root holds null, zero, urandom (and kvm).
    devices: [{ allow: true, access: 'rwm' }],
  };
}

/** "max" as the agent's UPDATE takes it. */
const U64_MAX = (1n << 64n) - 1n;

/** The limits of the container's cgroup in the guest, as decimal strings (they cross the keeper's JSON socket): absent ones stay as they are. */
export interface GuestLimitsWire {
  readonly pidsMax?: string;
  readonly memoryMax?: string;
  readonly cpuQuota?: string;
  readonly cpuPeriod?: string;
  readonly cpuWeight?: string;
}

/**
 * linux.resources as the container's cgroup in the guest keeps them (pids, memory, CPU quota and
 * weight): the VM's RAM and vCPUs are only the ceiling, fixed at boot. A non-positive limit is
 * "max", as runc writes it; what the guest has no use for (swap: it has none; io, hugetlb) is left out.
 */
export function guestLimits(r: Resources | undefined): GuestLimitsWire {
  const out: Record<string, string> = {};
  const limit = (v: number): string => String(v > 0 ? BigInt(Math.floor(v)) : U64_MAX);
  const pids = r?.pids?.limit;
  if (pids !== undefined && pids !== 0) out['pidsMax'] = limit(pids);
  const memory = r?.memory?.limit;
  if (memory !== undefined && memory !== 0) out['memoryMax'] = limit(memory);
  const quota = r?.cpu?.quota;
  if (quota !== undefined && quota !== 0) {
    out['cpuQuota'] = limit(quota);
    out['cpuPeriod'] = String(r?.cpu?.period !== undefined && r.cpu.period > 0 ? Math.floor(r.cpu.period) : 100000);
  }
  const shares = r?.cpu?.shares;
  if (shares !== undefined && shares > 0) out['cpuWeight'] = String(sharesToWeight(shares));
  return out;
}
