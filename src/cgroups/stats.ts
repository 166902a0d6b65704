// Reads a container's usage from its cgroup files into the shape `runc events` prints (runc's types.Stats).
import { cgroupFs, readCgroupFile, readKeyValues, readUint } from './fs';

export interface MemoryEntry { limit: bigint; usage: bigint; max: bigint; failcnt: bigint }
export interface BlkioEntry { major: bigint; minor: bigint; op: string; value: bigint }
export interface HugetlbStats { usage: bigint; max: bigint; failcnt: bigint }

export interface Stats {
  cpu: {
    usage: { total: bigint; percpu: bigint[]; percpu_kernel: bigint[]; percpu_user: bigint[]; kernel: bigint; user: bigint };
    throttling: { periods: bigint; throttledPeriods: bigint; throttledTime: bigint };
  };
  memory: { cache: bigint; usage: MemoryEntry; swap: MemoryEntry; kernel: MemoryEntry; kernelTCP: MemoryEntry; raw: Map<string, bigint> };
  pids: { current: bigint; limit: bigint };
  blkio: Record<BlkioKey, BlkioEntry[]>;
  hugetlb: Map<string, HugetlbStats>;
}

export type BlkioKey = 'ioServiceBytesRecursive' | 'ioServicedRecursive' | 'ioQueueRecursive' | 'ioServiceTimeRecursive'
  | 'ioWaitTimeRecursive' | 'ioMergedRecursive' | 'ioTimeRecursive' | 'sectorsRecursive';

const U64_MAX = (1n << 64n) - 1n;
const NS_PER_USER_HZ = 10_000_000n; // cpuacct.stat counts USER_HZ (100) ticks.

function emptyEntry(): MemoryEntry { return { limit: 0n, usage: 0n, max: 0n, failcnt: 0n }; }

export function emptyStats(): Stats {
  return {
    cpu: { usage: { total: 0n, percpu: [], percpu_kernel: [], percpu_user: [], kernel: 0n, user: 0n }, throttling: { periods: 0n, throttledPeriods: 0n, throttledTime: 0n } },
    memory: { cache: 0n, usage: emptyEntry(), swap: emptyEntry(), kernel: emptyEntry(), kernelTCP: emptyEntry(), raw: new Map() },
    pids: { current: 0n, limit: 0n },
    blkio: {
      ioServiceBytesRecursive: [], ioServicedRecursive: [], ioQueueRecursive: [], ioServiceTimeRecursive: [],
      ioWaitTimeRecursive: [], ioMergedRecursive: [], ioTimeRecursive: [], sectorsRecursive: [],
    },
    hugetlb: new Map(),
  };
}

const numbers = (s: string | undefined): bigint[] => (s ?? '').split(/\s+/).filter((x) => /^\d+$/.test(x)).map(BigInt);

/** "2MB" from "hugepages-2048kB", as runc names page sizes. */
export function pageSizeName(dirName: string): string | undefined {
  const m = /^hugepages-(\d+)kB$/.exec(dirName);
  if (m?.[1] === undefined) return undefined;
  let n = Number(m[1]);
  const units = ['KB', 'MB', 'GB', 'TB'];
  let u = 0;
  while (n >= 1024 && n % 1024 === 0 && u < units.length - 1) { n /= 1024; u++; }
  return `${n}${units[u] ?? 'KB'}`;
}

export function hugePageSizes(sysfs = '/sys/kernel/mm/hugepages'): string[] {
  try {
    return cgroupFs().subdirs(sysfs).map(pageSizeName).filter((s): s is string => s !== undefined);
  } catch {
    return [];
  }
}

function memoryEntry(dir: string, prefix: string): MemoryEntry {
  const limit = readUint(dir, `${prefix}.limit_in_bytes`) ?? 0n;
  return { usage: readUint(dir, `${prefix}.usage_in_bytes`) ?? 0n, max: readUint(dir, `${prefix}.max_usage_in_bytes`) ?? 0n, failcnt: readUint(dir, `${prefix}.failcnt`) ?? 0n, limit };
}

/** "8:0 Read 4096" lines (v1 blkio files). */
export function parseBlkio(text: string | undefined): BlkioEntry[] {
  const out: BlkioEntry[] = [];
  for (const line of (text ?? '').split('\n')) {
    const f = line.trim().split(/\s+/);
    const dev = /^(\d+):(\d+)$/.exec(f[0] ?? '');
    if (dev === null) continue;
    if (f.length === 3 && /^\d+$/.test(f[2] ?? '')) out.push({ major: BigInt(dev[1] ?? 0), minor: BigInt(dev[2] ?? 0), op: f[1] ?? '', value: BigInt(f[2] ?? 0) });
    else if (f.length === 2 && /^\d+$/.test(f[1] ?? '')) out.push({ major: BigInt(dev[1] ?? 0), minor: BigInt(dev[2] ?? 0), op: '', value: BigInt(f[1] ?? 0) });
  }
  return out;
}

/** v1: each controller's files in its own hierarchy; `dirFor` says where (undefined when not mounted). */
export function v1Stats(dirFor: (controller: string) => string | undefined, pageSizes: string[] = hugePageSizes()): Stats {
  const s = emptyStats();
  const acct = dirFor('cpuacct');
  if (acct !== undefined) {
    s.cpu.usage.total = readUint(acct, 'cpuacct.usage') ?? 0n;
    s.cpu.usage.percpu = numbers(readCgroupFile(acct, 'cpuacct.usage_percpu'));
    const st = readKeyValues(acct, 'cpuacct.stat');
    s.cpu.usage.user = (st.get('user') ?? 0n) * NS_PER_USER_HZ;
    s.cpu.usage.kernel = (st.get('system') ?? 0n) * NS_PER_USER_HZ;
    // cpuacct.usage_all: "cpu user system" per line, after a header.
    for (const line of (readCgroupFile(acct, 'cpuacct.usage_all') ?? '').split('\n').slice(1)) {
      const [, user, sys] = numbers(line);
      if (user !== undefined && sys !== undefined) { s.cpu.usage.percpu_user.push(user); s.cpu.usage.percpu_kernel.push(sys); }
    }
  }
  const cpu = dirFor('cpu');
  if (cpu !== undefined) {
    const st = readKeyValues(cpu, 'cpu.stat');
    s.cpu.throttling = { periods: st.get('nr_periods') ?? 0n, throttledPeriods: st.get('nr_throttled') ?? 0n, throttledTime: st.get('throttled_time') ?? 0n };
  }
  const mem = dirFor('memory');
  if (mem !== undefined) {
    s.memory.raw = readKeyValues(mem, 'memory.stat');
    s.memory.cache = s.memory.raw.get('cache') ?? 0n;
    s.memory.usage = memoryEntry(mem, 'memory');
    s.memory.swap = memoryEntry(mem, 'memory.memsw');
    s.memory.kernel = memoryEntry(mem, 'memory.kmem');
    s.memory.kernelTCP = memoryEntry(mem, 'memory.kmem.tcp');
  }
  const pids = dirFor('pids');
  if (pids !== undefined) {
    s.pids.current = readUint(pids, 'pids.current') ?? 0n;
    s.pids.limit = readUint(pids, 'pids.max') ?? 0n;
  }
  const blkio = dirFor('blkio');
  if (blkio !== undefined) {
    // CFQ's files when the kernel has them, else BFQ's, else the throttle layer's (which always counts).
    const pick = (names: string[]): BlkioEntry[] => {
      for (const n of names) { const t = readCgroupFile(blkio, n); if (t !== undefined) return parseBlkio(t); }
      return [];
    };
    s.blkio.ioServiceBytesRecursive = pick(['blkio.io_service_bytes_recursive', 'blkio.bfq.io_service_bytes_recursive', 'blkio.throttle.io_service_bytes_recursive']);
    s.blkio.ioServicedRecursive = pick(['blkio.io_serviced_recursive', 'blkio.bfq.io_serviced_recursive', 'blkio.throttle.io_serviced_recursive']);
    s.blkio.ioQueueRecursive = pick(['blkio.io_queued_recursive']);
    s.blkio.ioServiceTimeRecursive = pick(['blkio.io_service_time_recursive']);
    s.blkio.ioWaitTimeRecursive = pick(['blkio.io_wait_time_recursive']);
    s.blkio.ioMergedRecursive = pick(['blkio.io_merged_recursive']);
    s.blkio.ioTimeRecursive = pick(['blkio.time_recursive']);
    s.blkio.sectorsRecursive = pick(['blkio.sectors_recursive']);
  }
  const huge = dirFor('hugetlb');
  if (huge !== undefined) {
    for (const ps of pageSizes) {
      s.hugetlb.set(ps, {
        usage: readUint(huge, `hugetlb.${ps}.usage_in_bytes`) ?? 0n,
        max: readUint(huge, `hugetlb.${ps}.max_usage_in_bytes`) ?? 0n,
        failcnt: readUint(huge, `hugetlb.${ps}.failcnt`) ?? 0n,
      });
    }
  }
  return s;
}

/** v2: everything from one directory, mapped onto the v1-shaped fields as runc maps it. */
export function v2Stats(dir: string, pageSizes: string[] = hugePageSizes()): Stats {
  const s = emptyStats();
  const cpu = readKeyValues(dir, 'cpu.stat');
  s.cpu.usage.total = (cpu.get('usage_usec') ?? 0n) * 1000n;
  s.cpu.usage.user = (cpu.get('user_usec') ?? 0n) * 1000n;
  s.cpu.usage.kernel = (cpu.get('system_usec') ?? 0n) * 1000n;
  s.cpu.throttling = { periods: cpu.get('nr_periods') ?? 0n, throttledPeriods: cpu.get('nr_throttled') ?? 0n, throttledTime: (cpu.get('throttled_usec') ?? 0n) * 1000n };
  if (readCgroupFile(dir, 'memory.current') !== undefined) {
    s.memory.raw = readKeyValues(dir, 'memory.stat');
    s.memory.cache = s.memory.raw.get('file') ?? 0n;
    const current = readUint(dir, 'memory.current') ?? 0n;
    const events = readKeyValues(dir, 'memory.events');
    s.memory.usage = { usage: current, max: readUint(dir, 'memory.peak') ?? 0n, limit: readUint(dir, 'memory.max') ?? U64_MAX, failcnt: events.get('max') ?? 0n };
    // runc reports v2 swap as memory+swap, the v1 meaning of the field.
    const swap = readUint(dir, 'memory.swap.current');
    if (swap !== undefined) {
      const swapMax = readUint(dir, 'memory.swap.max');
      s.memory.swap = { usage: swap + current, max: 0n, limit: swapMax === undefined ? U64_MAX : swapMax + s.memory.usage.limit > U64_MAX ? U64_MAX : swapMax + s.memory.usage.limit, failcnt: 0n };
    }
  }
  s.pids.current = readUint(dir, 'pids.current') ?? 0n;
  s.pids.limit = readUint(dir, 'pids.max') ?? 0n;
  // io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0".
  for (const line of (readCgroupFile(dir, 'io.stat') ?? '').split('\n')) {
    const [dev, ...kvs] = line.trim().split(/\s+/);
    const m = /^(\d+):(\d+)$/.exec(dev ?? '');
    if (m === null) continue;
    const kv = new Map(kvs.map((x) => x.split('=') as [string, string]));
    const at = (k: string): bigint => (/^\d+$/.test(kv.get(k) ?? '') ? BigInt(kv.get(k) ?? 0) : 0n);
    const e = (op: string, value: bigint): BlkioEntry => ({ major: BigInt(m[1] ?? 0), minor: BigInt(m[2] ?? 0), op, value });
    s.blkio.ioServiceBytesRecursive.push(e('Read', at('rbytes')), e('Write', at('wbytes')));
    s.blkio.ioServicedRecursive.push(e('Read', at('rios')), e('Write', at('wios')));
  }
  for (const ps of pageSizes) {
    const usage = readUint(dir, `hugetlb.${ps}.current`);
    if (usage === undefined) continue;
    s.hugetlb.set(ps, { usage, max: 0n, failcnt: readKeyValues(dir, `hugetlb.${ps}.events`).get('max') ?? 0n });
  }
  return s;
}

// ---- JSON as runc prints it ----------------------------------------------------------------
// Go's encoding/json drops zero values of `omitempty` fields; the rest are always printed.
// uint64 values can pass 2^53, so numbers are written from bigints by hand.

type J = bigint | string | J[] | { [k: string]: J | undefined } | undefined;

const isEmpty = (v: J): boolean => v === undefined || v === 0n || v === '' || (Array.isArray(v) && v.length === 0)
  || (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0);

/** `omitempty` fields, zero values dropped. */
function oe(o: Record<string, J>): Record<string, J> {
  const out: Record<string, J> = {};
  for (const [k, v] of Object.entries(o)) if (!isEmpty(v)) out[k] = v;
  return out;
}

export function toJson(v: J): string {
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(toJson).join(',')}]`;
  if (v === undefined) return 'null';
  return `{${Object.entries(v).filter(([, x]) => x !== undefined).map(([k, x]) => `${JSON.stringify(k)}:${toJson(x)}`).join(',')}}`;
}

function mem(e: MemoryEntry): Record<string, J> {
  return { limit: e.limit, ...oe({ usage: e.usage, max: e.max }), failcnt: e.failcnt };
}

/** The `data` of a stats event, field for field as runc's events.go encodes it. */
export function statsJson(s: Stats): J {
  const blkio: Record<string, J> = {};
  for (const [k, list] of Object.entries(s.blkio)) {
    blkio[k] = list.map((e) => oe({ major: e.major, minor: e.minor, op: e.op, value: e.value }));
  }
  const hugetlb: Record<string, J> = {};
  for (const [ps, h] of s.hugetlb) hugetlb[ps] = { ...oe({ usage: h.usage, max: h.max }), failcnt: h.failcnt };
  const u = s.cpu.usage;
  return {
    cpu: {
      usage: { ...oe({ total: u.total, percpu: u.percpu, percpu_kernel: u.percpu_kernel, percpu_user: u.percpu_user }), kernel: u.kernel, user: u.user },
      throttling: oe({ periods: s.cpu.throttling.periods, throttledPeriods: s.cpu.throttling.throttledPeriods, throttledTime: s.cpu.throttling.throttledTime }),
    },
    memory: {
      ...oe({ cache: s.memory.cache }),
      usage: mem(s.memory.usage), swap: mem(s.memory.swap), kernel: mem(s.memory.kernel), kernelTCP: mem(s.memory.kernelTCP),
      ...oe({ raw: Object.fromEntries(s.memory.raw) }),
    },
    pids: oe({ current: s.pids.current, limit: s.pids.limit }),
    blkio: oe(blkio),
    hugetlb,
  };
}
