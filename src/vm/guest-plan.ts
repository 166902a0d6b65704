// Puts guest paths into a plan computed on the host, and refuses what has no meaning inside a VM of the container's own.
//
// buildPlan (create) and buildExecPlan (exec) compute the same records for the vm level as for
// the namespaces level; only the paths differ. Here, in the guest: the root is the rootfs share
// (GUEST_ROOT), a bind source is its share's guest path, the sockets and the root's mount point
// are in the container's directory, the cgroup is the container's cgroup in the guest (all from
// GUEST_PATHS and the name). What would reach outside the VM (a namespace joined by a host path,
// a host chroot, preserved fds, the sentry) or has the host wait (monitor, tied) is refused by name.
import { realpathSync } from 'node:fs';
import { posix } from 'node:path';
import { StockadeError } from '../errors';
import { MOUNTF, PLAN, encodePlan, type PlanRecord } from '../native/protocol';
import { AGENT_LIMITS, GUEST_PATHS } from './protocol';

/** Values for the buildPlan/buildExecPlan options whose paths the guest plan replaces anyway. */
export const GUEST_PLAN_PLACEHOLDERS = {
  rootfsMountpoint: `${GUEST_PATHS.DIR}/-/${GUEST_PATHS.ROOT_MOUNTPOINT}`,
  startSocket: `${GUEST_PATHS.DIR}/-/${GUEST_PATHS.START_SOCKET}`,
  consoleSocket: `${GUEST_PATHS.DIR}/-/${GUEST_PATHS.CONSOLE_SOCKET}`,
  cgroupPaths: [] as string[],
  preserveFds: 0,
  monitor: false,
} as const;

/** How the host's paths appear in the guest: the root share and each bind source's share. */
export interface GuestShares {
  /** The host directory shared as the container's root, and where the guest mounted it. */
  readonly rootfs: { readonly host: string; readonly guest: string };
  /** Host path of each bind source shared with the VM -> its guest path. */
  readonly binds: ReadonlyMap<string, string>;
}

export interface GuestPlan {
  /** The records as the guest gets them, and their encoding. */
  readonly records: readonly PlanRecord[];
  readonly plan: Buffer;
  /** The plan has TAG_TERMINAL (the agent takes the pty master on the console socket). */
  readonly terminal: boolean;
}

/** A path as the kernel would resolve it, or as written when it does not resolve. */
function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return posix.normalize(path);
  }
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Throws unless `name` is one path component the agent accepts. */
export function checkGuestName(name: string): void {
  if (!NAME.test(name) || name.length > AGENT_LIMITS.MAX_NAME) {
    throw new StockadeError('USAGE', `vm: ${JSON.stringify(name)} is not a container name for the guest (letters, digits, _ . -; at most ${AGENT_LIMITS.MAX_NAME})`);
  }
}

/** The container's directory in the guest, and a file in it. */
export function guestDir(name: string, file?: string): string {
  return file === undefined ? `${GUEST_PATHS.DIR}/${name}` : `${GUEST_PATHS.DIR}/${name}/${file}`;
}

export function guestCgroup(name: string): string {
  return `${GUEST_PATHS.CGROUP}/${name}`;
}

function refuse(what: string): never {
  throw new StockadeError('UNSUPPORTED', `vm: ${what}`);
}

/** Records no plan for the guest may hold, whatever it was built for. */
function refuseHostOnly(r: PlanRecord): void {
  switch (r.tag) {
    case PLAN.TAG_MONITOR: refuse('an attached stockade-init (monitor) has no meaning in the guest: the agent waits for the container');
    case PLAN.TAG_TIED: refuse('a container tied to a host process cannot be tied across the VM boundary');
    case PLAN.TAG_SENTRY: case PLAN.TAG_SENTRY_MOUNT: refuse('the sentry does not run inside a VM');
    case PLAN.TAG_CHROOT: refuse('a chroot into a host path has no meaning in the guest');
    case PLAN.TAG_PRESERVE_FDS: if (r.count > 0) refuse('--preserve-fds: host fds cannot pass into the VM');
  }
}

/** The guest path of a bind source: its share, or a path below a shared directory. */
function bindSource(given: string, shares: GuestShares): string {
  // Normalized first: a "share/../.." must not lead out of the share (into the guest's own tree).
  const source = posix.normalize(given);
  const exact = shares.binds.get(source);
  if (exact !== undefined) return exact;
  for (const [host, guest] of shares.binds) {
    if (source.startsWith(`${host}/`)) return `${guest}${source.slice(host.length)}`;
  }
  // The guest's own /sys and /proc: buildPlan turns a sysfs mount without a network namespace
  // into a bind of /sys, and a bind of either is the guest kernel's, never the host's.
  if (source === '/sys' || source === '/proc') return source;
  return refuse(`bind source ${source} was not shared with the VM (give it in the VM's binds)`);
}

/**
 * A create plan (buildPlan's records) for the guest, as the container `name`. `podPids`: the guest
 * pids of the inits whose namespaces it may join (a pod's sandbox, for its other containers:
 * `/proc/PID/ns/TYPE` in the guest); no other namespace path is joined.
 */
export function guestCreatePlan(records: readonly PlanRecord[], name: string, shares: GuestShares, podPids: readonly number[] = []): GuestPlan {
  checkGuestName(name);
  const out: PlanRecord[] = [{ tag: PLAN.TAG_CGROUP_JOIN, path: guestCgroup(name) }];
  let terminal = false;
  let startSocket = false;
  let rootfs = false;
  for (const r of records) {
    refuseHostOnly(r);
    switch (r.tag) {
      case PLAN.TAG_CGROUP_JOIN: continue;
      case PLAN.TAG_JOIN_NS: {
        const m = /^\/proc\/(\d+)\/ns\/(pid|ipc|uts|cgroup)$/.exec(r.path);
        if (m === null || !podPids.includes(Number(m[1]))) refuse(`joining a namespace by path (${r.path}) has no meaning in a VM of the container's own`);
        break;
      }
      case PLAN.TAG_ROOTFS:
        if (realOrSelf(r.source) !== realOrSelf(shares.rootfs.host)) {
          refuse(`the plan's root ${r.source} is not the directory shared with the VM (${shares.rootfs.host})`);
        }
        rootfs = true;
        out.push({ ...r, source: shares.rootfs.guest, mountpoint: guestDir(name, GUEST_PATHS.ROOT_MOUNTPOINT) });
        continue;
      case PLAN.TAG_MOUNT:
        if ((r.mountFlags & MOUNTF.BIND) !== 0 && (r.mountFlags & MOUNTF.SOURCE_IN_CONTAINER) === 0) {
          out.push({ ...r, source: bindSource(r.source, shares) });
          continue;
        }
        break;
      case PLAN.TAG_START_SOCKET: startSocket = true; out.push({ ...r, path: guestDir(name, GUEST_PATHS.START_SOCKET) }); continue;
      case PLAN.TAG_CONSOLE_SOCKET: out.push({ ...r, path: guestDir(name, GUEST_PATHS.CONSOLE_SOCKET) }); continue;
      case PLAN.TAG_TERMINAL: terminal = true; break;
    }
    out.push(r);
  }
  if (!rootfs) refuse('the plan has no root file system');
  if (!startSocket) refuse('the plan has no start socket: a container in the guest waits for start');
  return { records: out, plan: encodePlan(out), terminal };
}

/**
 * An exec plan (buildExecPlan's records, built with initPid = the container's guest pid) for
 * the process `name` in the container `container`: it joins only that init's namespaces and
 * the container's cgroup.
 */
export function guestExecPlan(records: readonly PlanRecord[], name: string, container: { readonly name: string; readonly pid: number }): GuestPlan {
  checkGuestName(name);
  const out: PlanRecord[] = [{ tag: PLAN.TAG_CGROUP_JOIN, path: guestCgroup(container.name) }];
  const ns = new RegExp(`^/proc/${container.pid}/ns/(pid|net|mnt|ipc|uts|user|cgroup|time)$`);
  let terminal = false;
  for (const r of records) {
    refuseHostOnly(r);
    switch (r.tag) {
      case PLAN.TAG_CGROUP_JOIN: continue;
      case PLAN.TAG_JOIN_NS:
        if (!ns.test(r.path)) refuse(`exec joins ${r.path}, not a namespace of the container's init (/proc/${container.pid}/ns/...)`);
        break;
      case PLAN.TAG_ROOTFS: case PLAN.TAG_MOUNT: case PLAN.TAG_START_SOCKET:
        refuse('an exec plan makes no root, mount or start socket');
      case PLAN.TAG_CONSOLE_SOCKET: out.push({ ...r, path: guestDir(name, GUEST_PATHS.CONSOLE_SOCKET) }); continue;
      case PLAN.TAG_TERMINAL: terminal = true; break;
    }
    out.push(r);
  }
  return { records: out, plan: encodePlan(out), terminal };
}
