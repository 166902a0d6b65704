// The config behind `stockade do`: the host's root read-only (or overlaid in memory), fresh /proc, /dev, /tmp, limits.
import { existsSync, realpathSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { StockadeError, errnoCode } from '../errors';
import type { Mount, Spec } from '../oci/spec';
import { defaultSeccompProfile } from '../seccomp';
import { withNoSetid } from '../seccomp/no-setid';

/** What `do` bounds by default; every in-memory file system is sized from the memory limit. */
export interface DoLimits {
  /** Bytes of memory for the whole container, its tmpfs contents included (they are charged to it). */
  memory: number;
  /** Processes and threads. */
  pids: number;
  /** CPUs' worth of time per period; undefined: no CPU limit. */
  cpus?: number | undefined;
}

export const DO_DEFAULT_LIMITS: DoLimits = { memory: 2 * 1024 ** 3, pids: 1024 };
/** Below this the tmpfs sizes round to nothing useful, and the runtime's own setup may not fit. */
export const DO_MIN_MEMORY = 32 * 1024 ** 2;
const CPU_PERIOD = 100_000;

export interface DoOptions {
  args: string[];
  env: string[];
  /** A path the host resolved (doWorkingDirectory): only ever the process's cwd, never a mount. */
  cwd: string;
  network: 'none' | 'host';
  rw: boolean;
  uid: number;
  gid: number;
  limits: DoLimits;
  /** Host directories the command must not see (the state root): covered by an empty read-only tmpfs. */
  hidden: readonly string[];
  /** Host paths shared on purpose (--bind), checked by doBind. */
  binds?: readonly DoBind[] | undefined;
  /** Fresh in-memory file systems (--tmpfs), checked by doTmpfs. */
  tmpfs?: readonly string[] | undefined;
  /** A pseudo-terminal of the container's own, relayed to the caller's (-t, or stdin a terminal). */
  terminal?: boolean | undefined;
  /** Container paths covered by an empty read-only directory or an empty file (credentials, --hide): see maskedForDo. */
  masked?: readonly string[] | undefined;
  /**
   * No file made setuid or setgid (NO_SETID_RULES): the command's writes land as another user's
   * (an id-mapped --bind SRC:rw writes as the caller, root when root ran it), whose setuid bit is
   * not the command's to give.
   */
  noSetid?: boolean | undefined;
}

/** One --bind: a host path resolved on the host, where the command sees it, and whether it may write there. */
export interface DoBind {
  source: string;
  destination: string;
  writable: boolean;
}

const DEFAULT_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];

/** The directories `do` replaces with fresh mounts: the host's are not what the container sees there. */
export const DO_FRESH = ['/proc', '/sys', '/dev', '/tmp', '/var/tmp', '/run'] as const;

function under(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir === '/' ? '/' : `${dir}/`);
}

// The sandbox's own kernel interfaces: no host path is bound there, and none of the host's is shared.
const KERNEL_DIRS = ['/proc', '/sys', '/dev'] as const;

/**
 * A --bind SRC[:DST][:ro|:rw] (read-only unless :rw): SRC resolved on the host through every
 * symlink and `..` (relative to callerCwd), DST made absolute and normal (`..` cannot climb out
 * of the container's root, which resolves it again at mount time). Refused: a source or
 * destination among the kernel's interfaces (/proc, /sys, /dev), the destination /, and a source
 * that holds or lies in a hidden directory (the state root).
 */
export function doBind(value: string, callerCwd: string, hidden: readonly string[], rootWritable = false): DoBind {
  const parts = value.split(':');
  let writable = false;
  if (parts.length > 1 && (parts[parts.length - 1] === 'ro' || parts[parts.length - 1] === 'rw')) writable = parts.pop() === 'rw';
  const [src, dst] = parts;
  if (parts.length > 2 || src === undefined || src === '' || dst === '') {
    throw new StockadeError('USAGE', `do: --bind ${JSON.stringify(value)}: expected SRC[:DST][:ro|:rw] (paths without ':')`, { flag: 'bind' });
  }
  let source: string;
  try {
    source = realpathSync(posix.resolve(callerCwd, src));
  } catch (e) {
    throw new StockadeError('USAGE', `do: --bind ${JSON.stringify(value)}: ${errnoCode(e) === 'ENOENT' ? `${src} does not exist` : (e as Error).message}`, { flag: 'bind' });
  }
  const destination = dst === undefined ? source : posix.resolve('/', dst);
  const refuse = refusal('bind', value);
  for (const dir of KERNEL_DIRS) if (under(source, dir)) refuse(`the host's ${dir} is not shared`);
  for (const dir of hidden) if (under(source, dir) || under(dir, source)) refuse(`it would show stockade's state directory ${dir}`);
  checkDestination(destination, refuse, hidden, rootWritable);
  return { source, destination, writable };
}

function refusal(flag: string, value: string): (why: string) => never {
  return (why) => { throw new StockadeError('USAGE', `do: --${flag} ${JSON.stringify(value)}: ${why}`, { flag }); };
}

/** Where a --bind or --tmpfs may go: not /, not the sandbox's kernel interfaces or the state root, and somewhere a mount point can be. */
function checkDestination(destination: string, refuse: (why: string) => never, hidden: readonly string[], rootWritable: boolean): void {
  for (const dir of KERNEL_DIRS) if (under(destination, dir)) refuse(`${dir} is the sandbox's own`);
  if (destination === '/') refuse('the destination cannot be /');
  for (const dir of hidden) if (under(destination, dir)) refuse(`${destination} is in stockade's state directory`);
  // The host's root is read-only in the sandbox: a mount point can be made only in its own
  // directories, or anywhere with --rw (in memory).
  if (!rootWritable && !DO_FRESH.some((d) => under(destination, d)) && !existsSync(destination)) {
    refuse(`${destination} does not exist in the sandbox's read-only root: use a directory that does, one under /tmp, or --rw`);
  }
}

/** At most this many --tmpfs: each gets an equal share of what the memory limit leaves (see doTmpfsSizes). */
export const DO_MAX_TMPFS = 16;

/** A --tmpfs DST: an absolute, normal path where a fresh in-memory file system goes. */
export function doTmpfs(value: string, hidden: readonly string[], rootWritable = false): string {
  const refuse = refusal('tmpfs', value);
  if (!value.startsWith('/')) refuse('an absolute path is expected');
  const destination = posix.resolve('/', value);
  checkDestination(destination, refuse, hidden, rootWritable);
  return destination;
}

/**
 * The working directory the command starts in: the given path (else the caller's own) resolved
 * through every symlink and `..`. It decides no mount: a directory the sandbox does not show as
 * the host has it (below a fresh /tmp, /run, /proc, ..., or a hidden state root) is refused when
 * --cwd names it, unless a --bind shows it there; when it is only the caller's own directory, the
 * command starts in / instead (`onHidden` says so): a checkout under /tmp must still run the
 * README's first command.
 */
export function doWorkingDirectory(
  given: string | undefined, callerCwd: string, hidden: readonly string[], binds: readonly DoBind[] = [],
  onHidden: (why: string) => void = () => undefined,
  reach: { canEnter: (dir: string) => boolean; who: string } = { canEnter: () => true, who: '' },
): string {
  try {
    const path = checkedWorkingDirectory(given, callerCwd, hidden, binds);
    // The command is not root: a directory it may not enter (root's 0700 /root) is no start.
    if (!reach.canEnter(path)) {
      const what = given === undefined ? 'the working directory' : '--cwd';
      throw new StockadeError('USAGE', `do: ${what} ${path} is not open to the command's user (${reach.who}): start elsewhere, or give --user`);
    }
    return path;
  } catch (e) {
    if (given !== undefined || !(e instanceof StockadeError) || !/not in the sandbox|which the sandbox hides|not open to the command/.test(e.message)) throw e;
    const closed = /not open to the command/.test(e.message);
    onHidden(`${e.message.replace(/^do: /, '').replace(/: start elsewhere.*$/, '')}: the command starts in /${closed ? '' : ' (share it with --bind DIR)'}`);
    return '/';
  }
}

function checkedWorkingDirectory(given: string | undefined, callerCwd: string, hidden: readonly string[], binds: readonly DoBind[]): string {
  const what = given === undefined ? 'the working directory' : '--cwd';
  let path: string;
  try {
    path = realpathSync(given ?? callerCwd);
    if (!statSync(path).isDirectory()) throw new StockadeError('USAGE', `do: ${what} ${given ?? callerCwd} is not a directory`);
  } catch (e) {
    if (e instanceof StockadeError) throw e;
    const code = errnoCode(e);
    throw new StockadeError('USAGE', `do: ${what} ${given ?? callerCwd}: ${code === 'ENOENT' ? 'no such directory' : (e as Error).message}`);
  }
  // Shown where the host has it: a bind of the directory, or of one above it, at its own path.
  if (binds.some((b) => b.source === b.destination && under(path, b.destination))) return path;
  for (const dir of DO_FRESH) {
    if (path !== dir && under(path, dir)) {
      throw new StockadeError('USAGE', `do: ${what} ${path} is not in the sandbox, whose ${dir} is its own and empty: start elsewhere, give --cwd DIR, or share it with --bind ${path}`);
    }
  }
  for (const dir of hidden) {
    if (under(path, dir)) throw new StockadeError('USAGE', `do: ${what} ${path} is in stockade's state directory ${dir}, which the sandbox hides`);
  }
  return path;
}

/** The size options of each in-memory file system: together they stay below the memory limit. */
export function doTmpfsSizes(memory: number, extra = 0): { tmp: string; varTmp: string; run: string; dev: string; shm: string; overlay: string; extra: string } {
  const kb = (fraction: number, cap = Infinity): string => `size=${Math.max(64, Math.floor(Math.min(memory * fraction, cap) / 1024))}k`;
  // 1/4 + 1/8 + 1/16 + 1/32 + 1/16 + 1/4 = 25/32 of the limit at most, the overlay's included;
  // the --tmpfs mounts share the 7/32 left (448 KiB each at worst: 16 of them under 32 MiB).
  return {
    tmp: kb(1 / 4), varTmp: kb(1 / 8), run: kb(1 / 16), dev: kb(1 / 32, 64 * 1024 ** 2), shm: kb(1 / 16, 64 * 1024 ** 2), overlay: kb(1 / 4),
    extra: kb(7 / 32 / Math.max(1, extra)),
  };
}

export function doSpec(opts: DoOptions): Spec {
  const namespaces: { type: 'pid' | 'mount' | 'ipc' | 'uts' | 'network' | 'cgroup' }[] = [
    { type: 'pid' }, { type: 'mount' }, { type: 'ipc' }, { type: 'uts' }, { type: 'cgroup' },
  ];
  if (opts.network === 'none') namespaces.push({ type: 'network' });
  const caps = opts.uid === 0 ? DEFAULT_CAPS : [];
  const size = doTmpfsSizes(opts.limits.memory, opts.tmpfs?.length ?? 0);
  // A state root outside the fresh directories would show every container's state: covered.
  const hide: Mount[] = opts.hidden.filter((d) => d !== '/' && !DO_FRESH.some((f) => under(d, f))).map((d) => ({
    destination: d, type: 'tmpfs', source: 'tmpfs', options: ['ro', 'nosuid', 'nodev', 'noexec', 'size=4k', 'nr_inodes=1', 'mode=000'],
  }));
  const { cpus } = opts.limits;
  return {
    ociVersion: '1.3.0',
    process: {
      terminal: opts.terminal === true,
      user: { uid: opts.uid, gid: opts.gid },
      args: opts.args,
      env: opts.env,
      cwd: opts.cwd,
      capabilities: { bounding: caps, effective: caps, permitted: caps },
      noNewPrivileges: true,
    },
    root: { path: '/', readonly: !opts.rw },
    hostname: 'stockade',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', size.dev] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', size.shm] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', size.tmp] },
      { destination: '/var/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', size.varTmp] },
      { destination: '/run', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=755', size.run] },
      // With the host's network the host's /sys is bound (sysfs belongs to a network namespace),
      // and with it the host's cgroup hierarchies: read-only, but no business of the command's.
      ...(opts.network === 'host' ? [{ destination: '/sys/fs/cgroup', type: 'tmpfs', source: 'tmpfs', options: ['ro', 'nosuid', 'nodev', 'noexec', 'size=4k', 'mode=555'] }] : []),
      // After the fresh mounts (a destination below /tmp lands in the sandbox's own), before the
      // state root's cover. Read-only: recursive, every submount too (plan.ts turns ro, nosuid
      // and nodev of an rbind into rro, rnosuid, rnodev). Writable: this one file system only.
      ...(opts.binds ?? []).map((b) => ({
        destination: b.destination, type: 'bind', source: b.source,
        options: b.writable ? ['bind', 'rw', 'nosuid', 'nodev'] : ['rbind', 'ro', 'nosuid', 'nodev'],
      })),
      ...(opts.tmpfs ?? []).map((d) => ({ destination: d, type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777', size.extra] })),
      ...hide,
    ],
    linux: {
      namespaces,
      resources: {
        memory: { limit: opts.limits.memory },
        pids: { limit: opts.limits.pids },
        ...(cpus === undefined ? {} : { cpu: { quota: Math.max(1000, Math.round(cpus * CPU_PERIOD)), period: CPU_PERIOD } }),
      },
      // Docker's default profile, cut to these capabilities: no mount, unshare, keyctl, bpf, ...
      seccomp: opts.noSetid === true ? withNoSetid(defaultSeccompProfile({ capabilities: caps })) : defaultSeccompProfile({ capabilities: caps }),
      // Not root, the command could not listen on a port below 1024 even on its own loopback.
      ...(opts.network === 'none' && opts.uid !== 0 ? { sysctl: { 'net.ipv4.ip_unprivileged_port_start': '0' } } : {}),
      maskedPaths: [
        ...(opts.masked ?? []),
        '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}
