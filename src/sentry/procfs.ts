// The sentry's /proc: the files that describe the system are generated from the container's own view (its CPUs, its cgroup, its start), not read from the host kernel.
//
// What the workload gets when it opens a file of the /proc the sentry owns (kernel.ts, SentryMount):
//
//   file                        source             why
//   cpuinfo                     generated          one entry per CPU the caller may run on (its affinity, which the kernel
//                                                  keeps inside the container's cpuset: what nproc counts), at most what its
//                                                  CPU quota is worth, rounded up (LXCFS does the same), numbered from 0;
//                                                  the fields programs parse (vendor, family, model, flags, bogomips...) from
//                                                  the host's first CPU; no microcode, bugs or topology ids
//   meminfo                     generated          MemTotal the cgroup's memory limit (the host's total without one), the
//                                                  rest from the cgroup's own usage: never the host's free or cached memory
//   stat                        generated          cpu lines from the cgroup's CPU time spread over the container's CPUs,
//                                                  idle the rest of the container's uptime; btime the container's start
//   uptime                      generated          since the container's init started; idle as in stat
//   loadavg                     generated          no load figures (the host's would say what else runs there)
//   version                     generated          what uname says (sys-system.ts): no build string, compiler or builder
//   filesystems                 generated          a fixed list of common types, those the host has
//   partitions, diskstats,      generated          no device: the host's disks and swap devices are not the container's
//     swaps                                        (/sys hides block devices too); swaps lists meminfo's swap, if any, as
//                                                  one device "none", as LXCFS does
//   sys/kernel/hostname,        generated          the container's names, as uname gives them; ngroups_max the kernel's
//     osrelease, ngroups_max                       constant
//   sys/kernel/pid_max          generated          what the container's pid namespace holds: from Linux 6.14 each has its
//                                                  own, PID_MAX_LIMIT in a new one (the kernel would answer the sentry's,
//                                                  the host's); before, the host's one limit
//   /sys/devices/system/cpu/    generated          "0-N": the CPUs cpuinfo lists, which glibc's get_nprocs and
//     online, possible, present                    get_nprocs_conf (getconf, sysconf) count
//   /sys/devices/system/cpu/    real, bounded      only cpu0 to cpuN-1 of those, in a listing and to a lookup (kernel.ts
//     cpuN, node/nodeM/cpuN                        #sysVisible): hwloc, lscpu and the JVM count these directories
//   PID/stat                    real, rebased      the start time counted from the container's start, like btime, so that
//                                                  ps and top compute ages from the two consistently
//   PID/cgroup                  generated          "0::/": the container is the root of its own cgroup view
//   PID/mounts (/proc/mounts,   real, rewritten    mountpoints are the container's already; sources that are host paths or
//     /etc/mtab)                                   devices become the fs type, options naming host paths (overlay's
//                                                  lowerdir, upperdir, workdir) are dropped; /proc and /sys, which the
//                                                  sentry owns and the workload's mount namespace no longer holds, listed
//   PID/mountinfo               real, rewritten    the same sources and options, and each mount's root in its file system
//                                                  (a bind mount's host path) shown as "/"; /proc and /sys listed too, with
//                                                  the clones' mount ids and devices
//   PID/status, cmdline,        real               the process's own data, pids of the container's namespace (the procfs is
//     environ, comm, statm,                        the container's); opened as the caller, so the kernel's ptrace checks on
//     limits, maps, task/...                       environ and the like apply
//   PID/exe, cwd, root, fd/N    real links         the kernel writes them from the root of the workload's own mount
//                                                  namespace, the container's root: no host path
//   directories, everything     real               the container's procfs, with the masks and read-only paths its config sets
//     else
//
// A generated file is made when it is opened: a memfd with its content, sealed against writes and
// growth, reopened read-only and installed in the caller like any file the sentry opens, so read,
// pread and lseek are the kernel's. Its stat says a regular file, read-only (0444). Opening one for
// writing is refused (EACCES; EROFS under sys/, as a read-only /proc/sys says). A file is recognised
// by the object the sentry opened, not by the name it was asked for: a path through a symlink
// (/etc/mtab) or a directory fd ends at the same generated file.
import {
  AT_EMPTY_PATH, EACCES, EEXIST, EINTR, EIO, EROFS, F_ADD_SEALS, F_SEAL_GROW, F_SEAL_SEAL, F_SEAL_SHRINK, F_SEAL_WRITE,
  MFD_ALLOW_SEALING, MFD_CLOEXEC, O_ACCMODE, O_CREAT, O_EXCL, O_NONBLOCK, O_TRUNC, RESOLVE_IN_ROOT, S_IFMT, S_IFREG,
} from '../abi/linux/constants';
import { STAT_DEV, STAT_MODE, STATFS_FLAGS, STATX_DEV_MAJOR, STATX_DEV_MINOR, STATX_MNT_ID, STATX_MNT_ID_OFFSET, STATX_MODE } from '../abi/linux/structs';
import { layoutFrom, parseProcCgroup, type Layout } from '../cgroups/layout';
import type { Sentry } from './kernel';
import { NR } from './native';
import type { Reply } from './notification';
import { containerUname, hostKernelVersion } from './uname';

/** The kernel's clock ticks in /proc (USER_HZ), 100 on every ABI stockade serves. */
const USER_HZ = 100;
/** NGROUPS_MAX (linux/limits.h). */
const NGROUPS_MAX = 65536;
/** PID_MAX_LIMIT on 64-bit (linux/threads.h): a new pid namespace's pid_max from Linux 6.14. */
const PID_MAX_LIMIT = 4194304;
const PROC_SUPER_MAGIC = 0x9fa0;
const SYSFS_MAGIC = 0x62656572;

const SYSTEM_FILES = new Set([
  '/cpuinfo', '/meminfo', '/stat', '/uptime', '/loadavg', '/version', '/filesystems', '/partitions', '/diskstats', '/swaps',
  '/sys/kernel/hostname', '/sys/kernel/osrelease', '/sys/kernel/ngroups_max', '/sys/kernel/pid_max',
]);
const PROCESS_FILE = /^\/\d+(?:\/task\/\d+)?\/(stat|cgroup|mounts|mountinfo)$/;
/** Files of the /sys the sentry owns that it generates: the CPUs glibc's get_nprocs and get_nprocs_conf count. */
const SYS_FILES = new Set(['/devices/system/cpu/online', '/devices/system/cpu/possible', '/devices/system/cpu/present']);

/** cpuinfo fields kept from the host's first CPU; the rest (microcode, bugs, power management, topology) are the host's business. */
const CPU_FIELDS = new Set([
  'vendor_id', 'cpu family', 'model', 'model name', 'stepping', 'cpu MHz', 'cache size', 'fpu', 'fpu_exception',
  'cpuid level', 'wp', 'flags', 'bogomips', 'clflush size', 'cache_alignment', 'address sizes',
  // aarch64
  'BogoMIPS', 'Features', 'CPU implementer', 'CPU architecture', 'CPU variant', 'CPU part', 'CPU revision',
]);

const FILESYSTEMS: readonly (readonly [boolean, string])[] = [
  [true, 'sysfs'], [true, 'tmpfs'], [true, 'bdev'], [true, 'proc'], [true, 'cgroup'], [true, 'cgroup2'], [true, 'devtmpfs'],
  [true, 'pipefs'], [true, 'devpts'], [true, 'mqueue'], [true, 'overlay'], [false, 'ext3'], [false, 'ext2'], [false, 'ext4'],
  [false, 'xfs'], [false, 'btrfs'], [false, 'vfat'], [false, 'squashfs'], [false, 'erofs'],
];

/** Mount options that name host paths (overlayfs's layers and the like). */
const HOST_PATH_OPTION = /^(?:lowerdir|upperdir|workdir|datadir|lowerdir\+|index_dir)=|=\//;

/** What the sentry knows of its /proc clone, found on the first open under it. */
interface ProcMount {
  readonly fd: number;
  /** st_dev of the clone: a file with another is not procfs's */
  readonly dev: bigint;
  readonly devMajor: number;
  readonly devMinor: number;
  /** what the sentry's /proc/self/fd/N says for the clone's root ("/" for a detached tree) */
  readonly prefix: string;
  /** the init's start, in ticks since boot; read once */
  initStart: number | undefined;
  cpuTemplate: string | undefined;
}

const mounts = new WeakMap<Sentry, ProcMount | null>();
/** What does not change while a sentry serves: the host's cgroup mounts and memory totals. */
const hostFacts = new WeakMap<Sentry, { layout?: Layout; memory?: { total: bigint; swap: bigint } }>();

function factsOf(s: Sentry): { layout?: Layout; memory?: { total: bigint; swap: bigint } } {
  let f = hostFacts.get(s);
  if (f === undefined) {
    f = {};
    hostFacts.set(s, f);
  }
  return f;
}
const st = Buffer.alloc(256);

function procMount(s: Sentry): ProcMount | undefined {
  let m = mounts.get(s);
  if (m === undefined) {
    m = findProcMount(s);
    mounts.set(s, m);
  }
  return m ?? undefined;
}

function findProcMount(s: Sentry): ProcMount | null {
  const fd = s.opts.mounts?.find((x) => x.path === '/proc')?.fd;
  if (fd === undefined) return null;
  return s.onHost(() => {
    if (s.k.sys(NR.statx, fd, '', AT_EMPTY_PATH, 0, st) < 0) return null;
    const devMajor = st.readUInt32LE(STATX_DEV_MAJOR);
    const devMinor = st.readUInt32LE(STATX_DEV_MINOR);
    if (s.k.sys(NR.newfstatat, fd, '', st, AT_EMPTY_PATH) < 0) return null;
    const dev = st.readBigUInt64LE(STAT_DEV);
    const prefix = s.readlinkHost(`/proc/self/fd/${fd}`);
    if (typeof prefix === 'number') return null;
    return { fd, dev, devMajor, devMinor, prefix, initStart: undefined, cpuTemplate: undefined };
  });
}

/** The name under /proc (or under /sys, as "/sys/..." would not be: "sys:/devices/...") of the object `fd` (O_PATH, regular, `dev` its st_dev) when it is a file the sentry generates. */
function generatedName(s: Sentry, fd: number, dev: bigint): string | undefined {
  const m = procMount(s);
  if (m === undefined) return undefined;
  if (dev !== m.dev) return sysGeneratedName(s, fd, dev);
  const link = s.onHost(() => s.readlinkHost(`/proc/self/fd/${fd}`));
  if (typeof link === 'number') return undefined;
  const name = m.prefix === '/' ? link : link.startsWith(`${m.prefix}/`) ? link.slice(m.prefix.length) : undefined;
  return name !== undefined && (SYSTEM_FILES.has(name) || PROCESS_FILE.test(name)) ? name : undefined;
}

const sysMounts = new WeakMap<Sentry, { readonly dev: bigint; readonly prefix: string } | null>();

function sysGeneratedName(s: Sentry, fd: number, dev: bigint): string | undefined {
  let m = sysMounts.get(s);
  if (m === undefined) {
    const sfd = s.opts.mounts?.find((x) => x.path === '/sys')?.fd;
    m = sfd === undefined ? null : s.onHost(() => {
      if (s.k.sys(NR.newfstatat, sfd, '', st, AT_EMPTY_PATH) < 0) return null;
      const prefix = s.readlinkHost(`/proc/self/fd/${sfd}`);
      return typeof prefix === 'number' ? null : { dev: st.readBigUInt64LE(STAT_DEV), prefix };
    });
    sysMounts.set(s, m);
  }
  if (m === null || dev !== m.dev) return undefined;
  const link = s.onHost(() => s.readlinkHost(`/proc/self/fd/${fd}`));
  if (typeof link === 'number') return undefined;
  const name = m.prefix === '/' ? link : link.startsWith(`${m.prefix}/`) ? link.slice(m.prefix.length) : undefined;
  return name !== undefined && SYS_FILES.has(name) ? `sys:${name}` : undefined;
}

/**
 * The open of a generated file: a sealed, read-only memfd with its content, or a refusal; undefined
 * when `pfd` (O_PATH, a regular file whose stat is in `stat`) is no such file. Runs as the caller.
 */
export function openGenerated(s: Sentry, callerPid: number, pfd: number, stat: Buffer, flags: number, cloexec: boolean): Reply | undefined {
  const name = generatedName(s, pfd, stat.readBigUInt64LE(STAT_DEV));
  if (name === undefined) return undefined;
  if ((flags & (O_CREAT | O_EXCL)) === (O_CREAT | O_EXCL)) return -EEXIST;
  if ((flags & O_ACCMODE) !== 0 || (flags & O_TRUNC) !== 0) return name.startsWith('/sys/') || name.startsWith('sys:') ? -EROFS : -EACCES;
  const text = contentOf(s, callerPid, name, pfd);
  if (typeof text === 'number') return text;
  return s.onHost(() => sealedFile(s, name, text, flags, cloexec));
}

/** stat of a generated file, as the caller's newfstatat wrote it to `stat`: a regular file, read-only. */
export function statGenerated(s: Sentry, fd: number, stat: Buffer): void {
  if ((stat.readUInt32LE(STAT_MODE) & S_IFMT) !== S_IFREG) return;
  if (generatedName(s, fd, stat.readBigUInt64LE(STAT_DEV)) !== undefined) stat.writeUInt32LE(S_IFREG | 0o444, STAT_MODE);
}

/** The same for statx's buffer (its device is a major and minor pair). */
export function statxGenerated(s: Sentry, fd: number, statx: Buffer): void {
  const m = procMount(s);
  if (m === undefined || (statx.readUInt16LE(STATX_MODE) & S_IFMT) !== S_IFREG) return;
  if (statx.readUInt32LE(STATX_DEV_MAJOR) !== m.devMajor || statx.readUInt32LE(STATX_DEV_MINOR) !== m.devMinor) return;
  if (generatedName(s, fd, m.dev) !== undefined) statx.writeUInt16LE(S_IFREG | 0o444, STATX_MODE);
}

function sealedFile(s: Sentry, name: string, text: string, flags: number, cloexec: boolean): Reply {
  const data = Buffer.from(text);
  const mfd = s.k.sys(NR.memfd_create, `stockade:/proc${name}`, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0) return mfd;
  try {
    for (let off = 0; off < data.length;) {
      const r = s.k.sys(NR.write, mfd, data.subarray(off), data.length - off);
      if (r === -EINTR) continue;
      if (r <= 0) return r < 0 ? r : -EIO;
      off += r;
    }
    const chmod = s.k.sys(NR.fchmod, mfd, 0o444);
    if (chmod < 0) return chmod;
    const sealed = s.k.sys(NR.fcntl, mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
    if (sealed < 0) return sealed;
    // A description of its own, read-only: what memfd_create returned can write.
    const ro = s.openHost(`/proc/self/fd/${mfd}`, flags & O_NONBLOCK, 0);
    return ro < 0 ? ro : { kind: 'inject', fd: ro, cloexec };
  } finally {
    s.close(mfd);
  }
}

// ---- reading ------------------------------------------------------------------------------------

/** A host file (the sentry's /proc, the cgroup tree), read as the sentry; undefined when it cannot be. */
function readHost(s: Sentry, path: string): string | undefined {
  const r = s.readHostFile(path);
  return typeof r === 'number' ? undefined : r;
}

/** A file of the container's procfs (`rel` below its root), read as the sentry. */
function readProc(s: Sentry, m: ProcMount, rel: string): string | undefined {
  const fd = s.openBeneath(m.fd, rel, 0, 0, RESOLVE_IN_ROOT);
  if (fd < 0) return undefined;
  const r = s.readFd(fd);
  return typeof r === 'number' ? undefined : r;
}

// ---- content ------------------------------------------------------------------------------------

function contentOf(s: Sentry, callerPid: number, name: string, pfd: number): string | number {
  const m = procMount(s) as ProcMount;
  const per = PROCESS_FILE.exec(name);
  if (per !== null) {
    const what = per[1];
    if (what === 'cgroup') return '0::/\n';
    // The real file, opened as the caller: the kernel decides what of it the caller may see.
    const fd = s.openHost(`/proc/self/fd/${pfd}`, 0, 0);
    if (fd < 0) return fd;
    const real = s.readFd(fd);
    if (typeof real === 'number') return real;
    return s.onHost(() => (what === 'stat' ? rebasedStat(s, m, real) : what === 'mounts' ? containerMounts(s, real) : containerMountinfo(s, real)));
  }
  return s.onHost(() => systemFile(s, m, callerPid, name));
}

function systemFile(s: Sentry, m: ProcMount, pid: number, name: string): string {
  const uname = containerUname(s);
  switch (name) {
    case '/cpuinfo': return cpuinfo(s, m, pid);
    case '/meminfo': return meminfo(containerMemory(s, pid));
    case '/stat': return procStat(s, pid);
    case '/uptime': {
      const up = containerUptime(s);
      const cpu = cpuTime(s, pid);
      return `${up.toFixed(2)} ${Math.max(0, up * cpusOf(s, pid).length - cpu.user - cpu.system).toFixed(2)}\n`;
    }
    case '/loadavg': return `0.00 0.00 0.00 1/${tasksOf(s, pid)} 0\n`;
    case '/version': return `Linux version ${uname[2] ?? ''} (stockade@sentry) ${uname[3] ?? ''}\n`;
    case '/filesystems': return filesystems(s);
    // The host's disks and swap devices, none of the container's: as /sys hides block devices.
    case '/partitions': return 'major minor  #blocks  name\n\n';
    case '/diskstats': return '';
    case '/swaps': {
      // meminfo's swap as one device of no name (LXCFS's "none virtual"), or none.
      const mem = containerMemory(s, pid);
      const head = 'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n';
      return mem.swapTotal === 0n ? head : `${head}none                                    virtual\t\t${mem.swapTotal / 1024n}\t\t${mem.swapUsed / 1024n}\t\t0\n`;
    }
    case '/sys/kernel/hostname': return `${s.opts.hostname}\n`;
    case '/sys/kernel/osrelease': return `${uname[2] ?? ''}\n`;
    case '/sys/kernel/ngroups_max': return `${NGROUPS_MAX}\n`;
    case '/sys/kernel/pid_max': return `${pidMax(s)}\n`;
    // /sys/devices/system/cpu: the container's CPUs as cpuinfo numbers them.
    case 'sys:/devices/system/cpu/online':
    case 'sys:/devices/system/cpu/possible':
    case 'sys:/devices/system/cpu/present': {
      const n = cpusOf(s, pid).length;
      return n === 1 ? '0\n' : `0-${n - 1}\n`;
    }
    default: return '';
  }
}

/** The container's pid_max: its pid namespace's own from Linux 6.14 (never changed: /proc/sys is read-only to it), else the host's. */
function pidMax(s: Sentry): number {
  const [major, minor] = hostKernelVersion(s);
  if (major > 6 || (major === 6 && minor >= 14)) return PID_MAX_LIMIT;
  const host = Number((readHost(s, '/proc/sys/kernel/pid_max') ?? '').trim());
  return Number.isInteger(host) && host > 0 ? host : PID_MAX_LIMIT;
}

/** Seconds since the container's init started (its /proc/1/stat start time against the host's uptime). */
export function containerUptime(s: Sentry): number {
  const m = procMount(s);
  const start = m === undefined ? undefined : initStart(s, m);
  const host = Number((readHost(s, '/proc/uptime') ?? '').split(' ')[0]);
  if (start === undefined || !Number.isFinite(host)) return (Date.now() - s.started) / 1000;
  return Math.max(0, host - start / USER_HZ);
}

function initStart(s: Sentry, m: ProcMount): number | undefined {
  if (m.initStart !== undefined) return m.initStart;
  const stat = readProc(s, m, '1/stat');
  const v = stat === undefined ? undefined : statFields(stat)?.[19];
  if (v !== undefined) m.initStart = Number(v);
  return m.initStart;
}

/** The fields after "(comm)" of a /proc/PID/stat line: [0] is the state, [19] the start time. */
function statFields(stat: string): string[] | undefined {
  const close = stat.lastIndexOf(')');
  return close < 0 ? undefined : stat.slice(close + 2).trimEnd().split(' ');
}

function rebasedStat(s: Sentry, m: ProcMount, real: string): string {
  const close = real.lastIndexOf(')');
  const fields = statFields(real);
  const start = initStart(s, m);
  if (fields === undefined || start === undefined || fields[19] === undefined) return real;
  fields[19] = String(Math.max(0, Number(fields[19]) - start));
  return `${real.slice(0, close + 2)}${fields.join(' ')}\n`;
}

/**
 * The CPUs the container has: those the caller may run on (its Cpus_allowed_list, which the
 * kernel keeps inside the container's cpuset), no more than its CPU quota is worth, rounded up
 * (cgroup v2 cpu.max, v1 cpu.cfs_quota_us over cpu.cfs_period_us): what LXCFS shows, and what a
 * program that sizes its threads by /proc/cpuinfo or /sys/devices/system/cpu/online should see.
 */
function cpusOf(s: Sentry, pid: number): number[] {
  const all = affinityOf(s, pid);
  const limit = cpuQuota(s, pid);
  return limit === undefined || limit >= all.length ? all : all.slice(0, Math.max(1, limit));
}

/** How many CPUs the container has (cpusOf): /sys shows as many cpuN directories, numbered from 0. */
export function containerCpuCount(s: Sentry, pid: number): number {
  return cpusOf(s, pid).length;
}

/** The CPUs a quota of the caller's cgroup is worth, rounded up; undefined without one. */
function cpuQuota(s: Sentry, pid: number): number | undefined {
  const dir = cgroupDir(s, pid, 'cpu');
  if (dir === undefined) return undefined;
  const max = readHost(s, `${dir}/cpu.max`)?.trim().split(/\s+/);
  let quota: number;
  let period: number;
  if (max !== undefined && max.length === 2) {
    if (max[0] === 'max') return undefined;
    quota = Number(max[0]);
    period = Number(max[1]);
  } else {
    quota = Number(readHost(s, `${dir}/cpu.cfs_quota_us`)?.trim() ?? '-1');
    period = Number(readHost(s, `${dir}/cpu.cfs_period_us`)?.trim() ?? '0');
  }
  return quota > 0 && period > 0 ? Math.ceil(quota / period) : undefined;
}

/** The CPUs the caller may run on, from its Cpus_allowed_list. */
function affinityOf(s: Sentry, pid: number): number[] {
  const status = readHost(s, `/proc/${pid}/status`) ?? '';
  const list = /^Cpus_allowed_list:\s*(.*)$/m.exec(status)?.[1] ?? '';
  const out: number[] = [];
  for (const part of list.split(',')) {
    const [a, b] = part.trim().split('-').map(Number);
    if (a === undefined || !Number.isInteger(a)) continue;
    for (let i = a; i <= (b !== undefined && Number.isInteger(b) ? b : a); i++) out.push(i);
  }
  return out.length > 0 ? out : [0];
}

function cpuinfo(s: Sentry, m: ProcMount, pid: number): string {
  if (m.cpuTemplate === undefined) {
    const host = readHost(s, '/proc/cpuinfo') ?? '';
    const first = host.split(/\n\s*\n/)[0] ?? '';
    m.cpuTemplate = first.split('\n').filter((l) => CPU_FIELDS.has(l.split(':')[0]?.trim() ?? '')).join('\n');
  }
  const n = cpusOf(s, pid).length;
  const x86 = /^vendor_id/m.test(m.cpuTemplate);
  let out = '';
  for (let i = 0; i < n; i++) {
    const topology = x86 ? `physical id\t: 0\nsiblings\t: ${n}\ncore id\t\t: ${i}\ncpu cores\t: ${n}\napicid\t\t: ${i}\ninitial apicid\t: ${i}\n` : '';
    out += `processor\t: ${i}\n${m.cpuTemplate}\n${topology}\n`;
  }
  return out;
}

// ---- the container's cgroup ---------------------------------------------------------------------

/** The caller's cgroup directory on the host for a controller, or undefined. */
function cgroupDir(s: Sentry, pid: number, controller: string): string | undefined {
  const m = factsOf(s);
  m.layout ??= layoutFrom(readHost(s, '/proc/self/mountinfo') ?? '', readHost(s, '/proc/self/cgroup') ?? '',
    (mp) => (readHost(s, `${mp}/cgroup.controllers`) ?? '').split(/\s+/).filter((c) => c !== ''));
  const own = parseProcCgroup(readHost(s, `/proc/${pid}/cgroup`) ?? '');
  const v1 = m.layout.v1.find((h) => h.controllers.includes(controller));
  if (v1 !== undefined) {
    const path = own.get([...v1.controllers].sort().join(','));
    return path === undefined ? undefined : `${v1.mountpoint}${path === '/' ? '' : path}`;
  }
  const u = m.layout.unified;
  const path = own.get('');
  if (u === undefined || path === undefined || !u.controllers.includes(controller)) return undefined;
  return `${u.mountpoint}${path === '/' ? '' : path}`;
}

function cgroupNumber(s: Sentry, dir: string | undefined, file: string): bigint | undefined {
  if (dir === undefined) return undefined;
  const v = readHost(s, `${dir}/${file}`)?.trim();
  return v !== undefined && /^\d+$/.test(v) ? BigInt(v) : undefined;
}

function keyed(text: string | undefined): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.split(' ');
    if (k !== undefined && v !== undefined && /^\d+$/.test(v)) out.set(k, BigInt(v));
  }
  return out;
}

export interface ContainerMemory {
  /** bytes */
  readonly total: bigint;
  readonly used: bigint;
  readonly stat: ReadonlyMap<string, bigint>;
  readonly swapTotal: bigint;
  readonly swapUsed: bigint;
}

function hostMemory(s: Sentry): { total: bigint; swap: bigint } {
  const facts = factsOf(s);
  if (facts.memory !== undefined) return facts.memory;
  const info = readHost(s, '/proc/meminfo') ?? '';
  const kb = (k: string): bigint => BigInt(new RegExp(`^${k}:\\s*(\\d+)`, 'm').exec(info)?.[1] ?? '0') * 1024n;
  const r = { total: kb('MemTotal'), swap: kb('SwapTotal') };
  facts.memory = r;
  return r;
}

/** The container's memory: its cgroup's limit (the host's total without one) and its own usage. */
export function containerMemory(s: Sentry, pid: number): ContainerMemory {
  const host = hostMemory(s);
  const dir = cgroupDir(s, pid, 'memory');
  const v2 = dir !== undefined && readHost(s, `${dir}/memory.current`) !== undefined;
  let limit: bigint | undefined;
  let used: bigint;
  let stat: Map<string, bigint>;
  let swapLimit: bigint | undefined;
  let swapUsed = 0n;
  if (v2) {
    // A parent's limit binds too: the lowest on the way up to the hierarchy's root.
    for (let d = dir; d.lastIndexOf('/') > 0; d = d.slice(0, d.lastIndexOf('/'))) {
      const l = cgroupNumber(s, d, 'memory.max');
      if (l !== undefined && (limit === undefined || l < limit)) limit = l;
    }
    used = cgroupNumber(s, dir, 'memory.current') ?? 0n;
    stat = keyed(readHost(s, `${dir}/memory.stat`));
    swapLimit = cgroupNumber(s, dir, 'memory.swap.max');
    swapUsed = cgroupNumber(s, dir, 'memory.swap.current') ?? 0n;
  } else {
    const raw = keyed(dir === undefined ? undefined : readHost(s, `${dir}/memory.stat`));
    limit = raw.get('hierarchical_memory_limit') ?? cgroupNumber(s, dir, 'memory.limit_in_bytes');
    used = cgroupNumber(s, dir, 'memory.usage_in_bytes') ?? 0n;
    // v1 names, as v2's: the hierarchical totals where the kernel gives them.
    const v = (k: string): bigint => raw.get(`total_${k}`) ?? raw.get(k) ?? 0n;
    stat = new Map([
      ['anon', v('rss')], ['file', v('cache')], ['shmem', v('shmem')], ['file_mapped', v('mapped_file')],
      ['file_dirty', v('dirty')], ['file_writeback', v('writeback')], ['active_anon', v('active_anon')],
      ['inactive_anon', v('inactive_anon')], ['active_file', v('active_file')], ['inactive_file', v('inactive_file')],
      ['unevictable', v('unevictable')],
    ]);
    const memsw = raw.get('hierarchical_memsw_limit');
    if (memsw !== undefined && limit !== undefined && memsw >= limit) swapLimit = memsw - limit;
    const swap = raw.get('total_swap') ?? raw.get('swap');
    if (swap !== undefined) swapUsed = swap;
  }
  const total = limit !== undefined && limit < host.total ? limit : host.total;
  const swapTotal = swapLimit !== undefined && swapLimit < host.swap ? swapLimit : host.swap;
  return { total, used: used > total ? total : used, stat, swapTotal, swapUsed: swapUsed > swapTotal ? swapTotal : swapUsed };
}

function meminfo(mem: ContainerMemory): string {
  const g = (k: string): bigint => mem.stat.get(k) ?? 0n;
  const free = mem.total - mem.used;
  const file = g('file') > mem.used ? mem.used : g('file');
  const reclaimable = g('slab_reclaimable');
  let available = free + file - g('shmem') + reclaimable;
  if (available > mem.total) available = mem.total;
  if (available < free) available = free;
  const rows: [string, bigint][] = [
    ['MemTotal', mem.total], ['MemFree', free], ['MemAvailable', available], ['Buffers', 0n],
    ['Cached', file], ['SwapCached', 0n],
    ['Active', g('active_anon') + g('active_file')], ['Inactive', g('inactive_anon') + g('inactive_file')],
    ['Active(anon)', g('active_anon')], ['Inactive(anon)', g('inactive_anon')],
    ['Active(file)', g('active_file')], ['Inactive(file)', g('inactive_file')],
    ['Unevictable', g('unevictable')], ['Mlocked', 0n],
    ['SwapTotal', mem.swapTotal], ['SwapFree', mem.swapTotal - mem.swapUsed],
    ['Dirty', g('file_dirty')], ['Writeback', g('file_writeback')], ['AnonPages', g('anon')],
    ['Mapped', g('file_mapped')], ['Shmem', g('shmem')], ['KReclaimable', reclaimable],
    ['Slab', reclaimable + g('slab_unreclaimable')], ['SReclaimable', reclaimable], ['SUnreclaim', g('slab_unreclaimable')],
    ['KernelStack', g('kernel_stack')], ['PageTables', g('pagetables')],
    ['CommitLimit', mem.total / 2n + mem.swapTotal], ['Committed_AS', mem.used],
  ];
  const out = rows.map(([k, v]) => `${`${k}:`.padEnd(16)}${String(v / 1024n).padStart(8)} kB`);
  out.push('HugePages_Total:       0', 'HugePages_Free:        0', 'HugePages_Rsvd:        0', 'HugePages_Surp:        0',
    'Hugepagesize:       2048 kB');
  return `${out.join('\n')}\n`;
}

/** The cgroup's CPU time in seconds, user and system; zero when it cannot be read. */
function cpuTime(s: Sentry, pid: number): { user: number; system: number } {
  const v2dir = cgroupDir(s, pid, 'cpu');
  const v2 = keyed(v2dir === undefined ? undefined : readHost(s, `${v2dir}/cpu.stat`));
  if (v2.has('user_usec')) return { user: Number(v2.get('user_usec') ?? 0n) / 1e6, system: Number(v2.get('system_usec') ?? 0n) / 1e6 };
  const acct = cgroupDir(s, pid, 'cpuacct');
  const v1 = keyed(acct === undefined ? undefined : readHost(s, `${acct}/cpuacct.stat`));
  return { user: Number(v1.get('user') ?? 0n) / USER_HZ, system: Number(v1.get('system') ?? 0n) / USER_HZ };
}

function tasksOf(s: Sentry, pid: number): number {
  return Number(cgroupNumber(s, cgroupDir(s, pid, 'pids'), 'pids.current') ?? 1n) || 1;
}

function procStat(s: Sentry, pid: number): string {
  const n = cpusOf(s, pid).length;
  const up = containerUptime(s);
  const cpu = cpuTime(s, pid);
  const ticks = (sec: number): number => Math.floor(sec * USER_HZ);
  const user = ticks(cpu.user / n);
  const system = ticks(cpu.system / n);
  const idle = Math.max(0, ticks(up) - user - system);
  const line = (label: string, k: number): string => `${label} ${user * k} 0 ${system * k} ${idle * k} 0 0 0 0 0 0`;
  const lines = [line('cpu ', n)];
  for (let i = 0; i < n; i++) lines.push(line(`cpu${i}`, 1));
  const btime = Math.floor(Date.now() / 1000 - up);
  lines.push('intr 0', 'ctxt 0', `btime ${btime}`, `processes ${tasksOf(s, pid)}`, 'procs_running 1', 'procs_blocked 0', 'softirq 0 0 0 0 0 0 0 0 0 0 0');
  return `${lines.join('\n')}\n`;
}

function filesystems(s: Sentry): string {
  const host = new Set((readHost(s, '/proc/filesystems') ?? '').split('\n').map((l) => l.split('\t').pop()?.trim() ?? ''));
  return FILESYSTEMS.filter(([, name]) => host.has(name)).map(([nodev, name]) => `${nodev ? 'nodev' : ''}\t${name}\n`).join('');
}

// ---- mounts -------------------------------------------------------------------------------------

function cleanOptions(opts: string): string {
  return opts.split(',').filter((o) => !HOST_PATH_OPTION.test(o)).join(',');
}

function cleanSource(source: string, fstype: string): string {
  return source.startsWith('/') ? fstype : source;
}

/** A mount the sentry owns as its mounts and mountinfo lines show it: its type and flags from fstatfs on the clone. */
interface OwnedMount {
  readonly path: string;
  readonly fd: number;
  readonly type: string;
  readonly opts: string;
}

function ownedMounts(s: Sentry, listed: ReadonlySet<string>): OwnedMount[] {
  const out: OwnedMount[] = [];
  for (const mount of s.opts.mounts ?? []) {
    if (listed.has(mount.path) || mount.execLinks === true) continue;
    if (s.k.sys(NR.fstatfs, mount.fd, st) < 0) continue;
    const magic = Number(st.readBigUInt64LE(0));
    const type = magic === PROC_SUPER_MAGIC ? 'proc' : magic === SYSFS_MAGIC ? 'sysfs' : 'none';
    const f = Number(st.readBigUInt64LE(STATFS_FLAGS));
    const opts = [(f & 1) !== 0 ? 'ro' : 'rw'];
    if ((f & 2) !== 0) opts.push('nosuid');
    if ((f & 4) !== 0) opts.push('nodev');
    if ((f & 8) !== 0) opts.push('noexec');
    if ((f & 0x1000) !== 0) opts.push('relatime');
    out.push({ path: mount.path, fd: mount.fd, type, opts: opts.join(',') });
  }
  return out;
}

/** Whether the workload's mount at `point` is the exec links' tmpfs (exec-links.ts): the kernel's alone, never listed. */
function execLinksAt(s: Sentry, point: string): boolean {
  return (s.opts.mounts ?? []).some((m) => m.execLinks === true && m.path === point);
}

function containerMounts(s: Sentry, real: string): string {
  const lines: string[] = [];
  const listed = new Set<string>();
  let afterRoot = 0;
  for (const line of real.split('\n')) {
    const f = line.split(' ');
    if (f.length < 6) continue;
    const [source = '', point = '', fstype = '', opts = ''] = f;
    if (execLinksAt(s, point)) continue;
    listed.add(point);
    lines.push([cleanSource(source, fstype), point, fstype, cleanOptions(opts), ...f.slice(4)].join(' '));
    if (point === '/') afterRoot = lines.length;
  }
  lines.splice(afterRoot, 0, ...ownedMounts(s, listed).map((m) => `${m.type} ${m.path} ${m.type} ${m.opts} 0 0`));
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

function containerMountinfo(s: Sentry, real: string): string {
  const out: string[] = [];
  const listed = new Set<string>();
  let afterRoot = 0;
  let rootId: string | undefined;
  for (const line of real.split('\n')) {
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const left = line.slice(0, dash).split(' ');
    const [fstype = '', source = '', superOpts = ''] = line.slice(dash + 3).split(' ');
    left[3] = '/';
    if (execLinksAt(s, left[4] ?? '')) continue;
    listed.add(left[4] ?? '');
    out.push(`${left.join(' ')} - ${fstype} ${cleanSource(source, fstype)} ${cleanOptions(superOpts)}`);
    if (left[4] === '/') {
      afterRoot = out.length;
      rootId = left[0];
    }
  }
  // The /proc and /sys the sentry owns, as /proc/mounts lists them: a program that reads one of the
  // two files (findmnt, systemd's and libmount's checks) finds what the other says. Their ids and
  // devices are the clones' own; their parent the container's root.
  const owned: string[] = [];
  for (const m of ownedMounts(s, listed)) {
    if (rootId === undefined || s.k.sys(NR.statx, m.fd, '', AT_EMPTY_PATH, STATX_MNT_ID, st) < 0) continue;
    const id = st.readBigUInt64LE(STATX_MNT_ID_OFFSET);
    const dev = `${st.readUInt32LE(STATX_DEV_MAJOR)}:${st.readUInt32LE(STATX_DEV_MINOR)}`;
    owned.push(`${id} ${rootId} ${dev} / ${m.path} ${m.opts} - ${m.type} ${m.type} ${m.opts.startsWith('ro') ? 'ro' : 'rw'}`);
  }
  out.splice(afterRoot, 0, ...owned);
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}
