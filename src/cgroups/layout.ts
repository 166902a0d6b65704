// Which cgroup hierarchies this host mounts (v1, v2 or both) and where this process sits in each.
import { closeSync, openSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { readCgroupFile } from './fs';

/** v1 controllers by their kernel names; `name=X` hierarchies carry none. */
export const V1_CONTROLLERS = [
  'cpu', 'cpuacct', 'cpuset', 'memory', 'devices', 'freezer', 'net_cls', 'blkio', 'perf_event',
  'net_prio', 'hugetlb', 'pids', 'rdma', 'misc',
] as const;

export interface Hierarchy {
  version: 1 | 2;
  mountpoint: string;
  /** v1: the controllers (and `name=X`) mounted together here; v2: what cgroup.controllers offers at the mount. */
  controllers: string[];
  /** This process's cgroup within the hierarchy, relative to the mount ("/" at its top). */
  ownPath: string;
}

export type Mode = 'v1' | 'v2' | 'hybrid';

export interface Layout {
  mode: Mode;
  /** One entry per mounted v1 hierarchy, in mountinfo order. */
  v1: Hierarchy[];
  unified: Hierarchy | undefined;
}

interface MountEntry { id: string; root: string; mountpoint: string; fstype: string; superOptions: string[] }

/** The cgroup and cgroup2 mounts of a /proc/PID/mountinfo text. */
export function parseCgroupMounts(mountinfo: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of mountinfo.split('\n')) {
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const left = line.slice(0, dash).split(' ');
    const right = line.slice(dash + 3).split(' ');
    const fstype = right[0];
    if (fstype !== 'cgroup' && fstype !== 'cgroup2') continue;
    out.push({
      id: left[0] ?? '',
      root: unescapeMount(left[3] ?? '/'),
      mountpoint: unescapeMount(left[4] ?? ''),
      fstype,
      superOptions: (right[2] ?? '').split(','),
    });
  }
  return out;
}

// mountinfo writes space, tab, newline and backslash as octal escapes.
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** /proc/PID/cgroup: hierarchy controllers ("" for v2) -> path. */
export function parseProcCgroup(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (m === null) continue;
    out.set(m[2] === undefined ? '' : [...m[2].split(',')].sort().join(','), m[3] ?? '/');
  }
  return out;
}

/**
 * Whether the mount `id` (mountinfo's first field) is what a path walk to `mountpoint` reaches:
 * mountinfo lists every mount of the namespace, also those another mount now covers (a tmpfs or a
 * cgroup2 mount over /sys/fs/cgroup hides the host's mounts below it, as a host's or a container
 * runtime's set-up may leave it), and a covered one cannot be used. The mount a path reaches is
 * the one an fd opened on it is on (mnt_id in /proc/self/fdinfo): a device number alone cannot
 * tell a covered cgroup2 mount from a directory of the cgroup2 mount over it.
 */
export function mountVisible(mountpoint: string, id: string): boolean {
  let fd: number;
  try {
    fd = openSync(mountpoint, 'r');
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    // Not there at all: covered. Another failure (a caller not allowed to open) cannot tell.
    return code !== 'ENOENT' && code !== 'ENOTDIR';
  }
  try {
    const m = /^mnt_id:\s*(\d+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
    return m === null || m[1] === id;
  } catch {
    return true;
  } finally {
    closeSync(fd);
  }
}

/**
 * Builds the layout from mountinfo and /proc/self/cgroup texts. `readControllers` reads a v2
 * mount's cgroup.controllers and `visible` says whether a mount is reachable at its mountpoint
 * (parameters so tests need no real mount); a covered mount is left out.
 */
export function layoutFrom(
  mountinfo: string,
  procCgroup: string,
  readControllers: (mountpoint: string) => string[] = v2Controllers,
  visible: (mountpoint: string, id: string) => boolean = mountVisible,
): Layout {
  const own = parseProcCgroup(procCgroup);
  const v1: Hierarchy[] = [];
  let unified: Hierarchy | undefined;
  const seen = new Set<string>();
  for (const m of parseCgroupMounts(mountinfo)) {
    if (!visible(m.mountpoint, m.id)) continue;
    if (m.fstype === 'cgroup2') {
      // The first cgroup2 mount wins; later ones are usually bind mounts of the same tree.
      if (unified !== undefined) continue;
      unified = { version: 2, mountpoint: m.mountpoint, controllers: readControllers(m.mountpoint), ownPath: relativeTo(m.root, own.get('') ?? '/') };
      continue;
    }
    const controllers = m.superOptions.filter((o) => (V1_CONTROLLERS as readonly string[]).includes(o) || o.startsWith('name='));
    if (controllers.length === 0) continue;
    const key = [...controllers].sort().join(',');
    if (seen.has(key)) continue;
    seen.add(key);
    v1.push({ version: 1, mountpoint: m.mountpoint, controllers, ownPath: relativeTo(m.root, own.get(key) ?? '/') });
  }
  const realV1 = v1.some((h) => h.controllers.some((c) => !c.startsWith('name=')));
  const mode: Mode = !realV1 ? 'v2' : unified !== undefined ? 'hybrid' : 'v1';
  if (mode === 'v2') return { mode, v1: [], unified };
  return { mode, v1, unified };
}

/** A cgroup path as /proc/self/cgroup gives it, made relative to a mount whose root is not "/" (a cgroup namespace or bind). */
function relativeTo(mountRoot: string, path: string): string {
  if (mountRoot === '/' || mountRoot === '') return path;
  const rel = posix.relative(mountRoot, path);
  return rel.startsWith('..') ? '/' : posix.join('/', rel);
}

function v2Controllers(mountpoint: string): string[] {
  return (readCgroupFile(mountpoint, 'cgroup.controllers') ?? '').split(/\s+/).filter((c) => c !== '');
}

let cached: Layout | undefined;
let caller: string | undefined;
let callerLayout: { text: string; layout: Layout } | undefined;

/**
 * The planner's, for the call it serves: the /proc/self/cgroup text of the process that made the
 * call (its front), which hostLayout() then reads its own cgroups from, as a cold call of that
 * process would. Undefined: this process's own.
 */
export function setCallerCgroup(text: string | undefined): void {
  caller = text;
}

/** This host's layout, read once per process (or per caller's cgroup, in the planner). */
export function hostLayout(): Layout {
  if (caller !== undefined) {
    if (callerLayout?.text !== caller) callerLayout = { text: caller, layout: layoutFrom(readFileSync('/proc/self/mountinfo', 'utf8'), caller) };
    return callerLayout.layout;
  }
  cached ??= layoutFrom(readFileSync('/proc/self/mountinfo', 'utf8'), readFileSync('/proc/self/cgroup', 'utf8'));
  return cached;
}

/** The hierarchy a directory belongs to: the one whose mountpoint is its longest prefix. */
export function hierarchyOf(layout: Layout, dir: string): Hierarchy | undefined {
  let best: Hierarchy | undefined;
  for (const h of [...layout.v1, ...(layout.unified === undefined ? [] : [layout.unified])]) {
    if ((dir === h.mountpoint || dir.startsWith(`${h.mountpoint}/`)) && (best === undefined || h.mountpoint.length > best.mountpoint.length)) best = h;
  }
  return best;
}
