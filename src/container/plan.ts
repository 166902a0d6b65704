// Turns a validated config.json into the setup plan stockade-init executes.
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, posix, resolve } from 'node:path';
import {
  CAPABILITIES, CLONE_NEWCGROUP, CLONE_NEWIPC, CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWPID, CLONE_NEWTIME,
  CLONE_NEWUSER, CLONE_NEWUTS, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, MS_BIND, MS_NODEV, MS_NOSUID,
  MS_PRIVATE, MS_RDONLY, MS_REC, MS_SHARED, MS_SLAVE, MS_UNBINDABLE, RLIMITS,
  type CapabilityName, type RlimitName,
} from '../abi/linux/constants';
import { StockadeError } from '../errors';
import { parseMountOptions } from '../oci/mount-options';
import type { Process, Spec } from '../oci/spec';
import { DEVICEF, HOOKF, MOUNTF, PLAN, ROOTFS, UMASK_UNSET, initFds, type PlanRecord } from '../native/protocol';
import { containerHookRecords } from './hooks';

export interface PlanOptions {
  id: string;
  bundle: string;
  /** Empty host directory the container's root is built on. */
  rootfsMountpoint: string;
  startSocket: string | undefined;
  consoleSocket: string | undefined;
  preserveFds: number;
  noPivot: boolean;
  noNewKeyring: boolean;
  /** Attached `run`: stockade-init stays as the container's parent and exits with its status. */
  monitor: boolean;
  /** How the root is built: a bind of root.path (OCI), or for `stockade do` a read-only or overlaid host root. */
  rootfsMode: 'bind' | 'recursive-readonly' | 'overlay';
  /** Pause after mounts for createRuntime/createContainer hooks. */
  createHooks: boolean;
  seccomp?: { flags: number; program: Buffer } | undefined;
  /** The sentry's filter: its listener goes to the runtime over the socket given to launchInit as
   *  sentrySocket. Needs process.noNewPrivileges. */
  sentry?: { flags: number; program: Buffer } | undefined;
  /** Mount destinations the sentry owns: detached from the workload's mount namespace and handed to it. */
  sentryMounts?: readonly string[] | undefined;
  /** The runtime's own bounding set (CapBnd of /proc/self/status). */
  heldCapabilities: bigint;
  /** Cgroup directories (host paths) stockade-init moves itself into before anything else. */
  cgroupPaths: string[];
  /** An init in front of the process (stockade do): needs a pid namespace of the container's own. */
  init?: boolean | undefined;
  /** The pid of stockade-init's parent, with whose death the container ends (stockade do); needs monitor. */
  tiedTo?: number | undefined;
  /** Options of the tmpfs an overlay root keeps its writes on (size=...). */
  overlayTmpfs?: string | undefined;
  /** The init's deadline for the process and the grace before everything is killed (do --timeout); needs init. */
  initTimeout?: { timeoutMs: number; graceMs: number } | undefined;
  /** No command runs: the init holds the container open for exec (the SDK's sandboxes); needs init. */
  hold?: boolean | undefined;
  /** Bind mounts to id-map, by destination (TAG_MOUNT_IDMAP); each must be a bind of the config's. */
  idmaps?: ReadonlyMap<string, MountIdmap> | undefined;
  /** Every host bind source was resolved and checked by the caller (stockade do): walked with no symlink (MOUNTF.SOURCE_RESOLVED). */
  resolvedBinds?: boolean | undefined;
}

/** The maps of an id-mapped bind, as /proc/PID/uid_map takes them ("0 65534 1\n"): container ids are the file system's, host ids the processes'. */
export interface MountIdmap {
  uidMap: string;
  gidMap: string;
}

/** This process's capability bounding set, the ceiling of any container's capabilities. */
export function heldCapabilities(): bigint {
  const status = readFileSync('/proc/self/status', 'latin1');
  const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(status);
  return m?.[1] === undefined ? 0n : BigInt(`0x${m[1]}`);
}

export const NAMESPACE_FLAGS: Readonly<Record<string, number>> = {
  pid: CLONE_NEWPID,
  network: CLONE_NEWNET,
  mount: CLONE_NEWNS,
  ipc: CLONE_NEWIPC,
  uts: CLONE_NEWUTS,
  user: CLONE_NEWUSER,
  cgroup: CLONE_NEWCGROUP,
  time: CLONE_NEWTIME,
};

// The devices every container gets, as runc creates them.
const DEFAULT_DEVICES = [
  { path: '/dev/null', major: 1, minor: 3 },
  { path: '/dev/zero', major: 1, minor: 5 },
  { path: '/dev/full', major: 1, minor: 7 },
  { path: '/dev/random', major: 1, minor: 8 },
  { path: '/dev/urandom', major: 1, minor: 9 },
  { path: '/dev/tty', major: 5, minor: 0 },
] as const;

const DEV_SYMLINKS = [
  ['/proc/self/fd', '/dev/fd'],
  ['/proc/self/fd/0', '/dev/stdin'],
  ['/proc/self/fd/1', '/dev/stdout'],
  ['/proc/self/fd/2', '/dev/stderr'],
] as const;

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

// rootfsPropagation covers the container's whole mount tree, so each value applies recursively.
const PROPAGATION: Readonly<Record<string, number>> = {
  private: MS_PRIVATE | MS_REC,
  shared: MS_SHARED | MS_REC,
  slave: MS_SLAVE | MS_REC,
  unbindable: MS_UNBINDABLE | MS_REC,
};

export function capabilityMask(names: readonly string[] | undefined, field: string): bigint {
  let mask = 0n;
  for (const name of names ?? []) {
    const bit = CAPABILITIES.indexOf(name as CapabilityName);
    if (bit < 0) throw new StockadeError('CONFIG_INVALID', `config.json: ${field}: unknown capability ${JSON.stringify(name)}`, { field });
    mask |= 1n << BigInt(bit);
  }
  return mask;
}

function idMapContent(maps: readonly { containerID: number; hostID: number; size: number }[] | undefined): string {
  return (maps ?? []).map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
}

export function buildPlan(spec: Spec, opts: PlanOptions): PlanRecord[] {
  const process = spec.process;
  if (process === undefined) throw new StockadeError('CONFIG_INVALID', 'config.json: process: required to create a container', { field: 'process' });
  const linux = spec.linux ?? {};
  const plan: PlanRecord[] = [];
  // First: the container is created inside its cgroups, before any namespace changes what the paths mean.
  for (const path of opts.cgroupPaths) plan.push({ tag: PLAN.TAG_CGROUP_JOIN, path });

  // Namespaces: joins first (the user namespace before the rest, so the others are joined with its rights).
  let cloneFlags = 0;
  const joins = (linux.namespaces ?? []).filter((ns) => ns.path !== undefined && ns.path !== '');
  joins.sort((a, b) => (a.type === 'user' ? -1 : b.type === 'user' ? 1 : 0));
  for (const ns of joins) plan.push({ tag: PLAN.TAG_JOIN_NS, nstype: NAMESPACE_FLAGS[ns.type] ?? 0, path: ns.path ?? '' });
  for (const ns of linux.namespaces ?? []) {
    if (ns.path === undefined || ns.path === '') cloneFlags |= NAMESPACE_FLAGS[ns.type] ?? 0;
  }
  plan.push({ tag: PLAN.TAG_CLONE_FLAGS, flags: cloneFlags });
  const newUserNs = (cloneFlags & CLONE_NEWUSER) !== 0;
  const inUserNs = newUserNs || joins.some((ns) => ns.type === 'user');
  if (newUserNs) {
    plan.push({ tag: PLAN.TAG_UID_MAP, content: idMapContent(linux.uidMappings) });
    plan.push({ tag: PLAN.TAG_GID_MAP, content: idMapContent(linux.gidMappings) });
  }
  if (process.oomScoreAdj !== undefined) plan.push({ tag: PLAN.TAG_OOM_SCORE_ADJ, value: process.oomScoreAdj });
  if (opts.startSocket !== undefined) plan.push({ tag: PLAN.TAG_START_SOCKET, path: opts.startSocket });
  if (opts.monitor) plan.push({ tag: PLAN.TAG_MONITOR });
  if (opts.tiedTo !== undefined) {
    if (!opts.monitor) throw new StockadeError('USAGE', 'a container tied to its caller must be attached');
    plan.push({ tag: PLAN.TAG_TIED, pid: opts.tiedTo });
  }
  if (opts.init === true) {
    if ((cloneFlags & CLONE_NEWPID) === 0) throw new StockadeError('CONFIG_INVALID', 'config.json: linux.namespaces: an init in front of the process needs a new pid namespace', { field: 'linux.namespaces' });
    plan.push({ tag: PLAN.TAG_INIT });
    if (opts.initTimeout !== undefined) plan.push({ tag: PLAN.TAG_INIT_TIMEOUT, ...opts.initTimeout });
    if (opts.hold === true) plan.push({ tag: PLAN.TAG_HOLD });
  } else if (opts.initTimeout !== undefined) {
    throw new StockadeError('USAGE', 'a timeout needs an init in front of the process');
  } else if (opts.hold === true) {
    throw new StockadeError('USAGE', 'a container held open for exec needs an init in front of it');
  }
  if (process.terminal === true) {
    if (opts.consoleSocket === undefined) {
      throw new StockadeError('USAGE', 'process.terminal is true but no --console-socket was given', { field: 'process.terminal' });
    }
    plan.push({ tag: PLAN.TAG_CONSOLE_SOCKET, path: opts.consoleSocket }, { tag: PLAN.TAG_TERMINAL });
    const size = process.consoleSize;
    if (size !== undefined) plan.push({ tag: PLAN.TAG_CONSOLE_SIZE, rows: Math.min(size.height, 0xffff), cols: Math.min(size.width, 0xffff) });
  }
  if (spec.hostname !== undefined && spec.hostname !== '') plan.push({ tag: PLAN.TAG_HOSTNAME, name: spec.hostname });
  if (spec.domainname !== undefined && spec.domainname !== '') plan.push({ tag: PLAN.TAG_DOMAINNAME, name: spec.domainname });
  if ((cloneFlags & CLONE_NEWNET) !== 0) plan.push({ tag: PLAN.TAG_LOOPBACK_UP });

  // Without a mount namespace the container shares the runtime's, as the runtime spec allows: its
  // root and mounts are made in it (runc does the same) and detached at delete.
  const hostMounts = (cloneFlags & CLONE_NEWNS) === 0 && !joins.some((ns) => ns.type === 'mount');
  if (hostMounts && opts.sentry !== undefined) {
    throw new StockadeError('CONFIG_INVALID', 'config.json: linux.namespaces: the sentry level needs a mount namespace of the container\'s own', { field: 'linux.namespaces' });
  }
  if (hostMounts && opts.rootfsMode !== 'bind') {
    throw new StockadeError('CONFIG_INVALID', 'linux.namespaces: a read-only or overlaid host root needs a mount namespace of its own', { field: 'linux.namespaces' });
  }
  planRootfs(spec, opts, plan, inUserNs, (cloneFlags & CLONE_NEWNET) !== 0, hostMounts);

  if (opts.createHooks) plan.push({ tag: PLAN.TAG_HOOK_POINTS, points: HOOKF.CREATE });
  plan.push(...containerHookRecords(spec));
  for (const [key, value] of Object.entries(linux.sysctl ?? {})) plan.push({ tag: PLAN.TAG_SYSCTL, key, value });

  plan.push(...rlimitRecords(process));
  if (!opts.noNewKeyring) plan.push({ tag: PLAN.TAG_SESSION_KEYRING, name: `_ses.${opts.id}` });
  for (const path of opts.sentryMounts ?? []) plan.push({ tag: PLAN.TAG_SENTRY_MOUNT, path });

  plan.push(...processRecords(process, process.args ?? [], opts));
  return plan;
}

/** The records that make the process itself, the same for create and exec: identity, privileges, what to run. */
export function processRecords(
  process: Process,
  args: readonly string[],
  opts: {
    heldCapabilities: bigint; seccomp?: { flags: number; program: Buffer } | undefined;
    sentry?: { flags: number; program: Buffer } | undefined; preserveFds: number;
  },
): PlanRecord[] {
  const records: PlanRecord[] = [];
  const user = process.user;
  records.push({
    tag: PLAN.TAG_USER, uid: user.uid, gid: user.gid, umask: user.umask ?? UMASK_UNSET,
    additionalGids: user.additionalGids ?? [],
  });
  records.push(capabilityRecord(process, opts.heldCapabilities));
  if (process.noNewPrivileges === true) records.push({ tag: PLAN.TAG_NO_NEW_PRIVS });
  if (opts.seccomp !== undefined) records.push({ tag: PLAN.TAG_SECCOMP, flags: opts.seccomp.flags, program: opts.seccomp.program });
  if (opts.sentry !== undefined) {
    // launchInit puts its sentrySocket at this number.
    const socketFd = initFds(opts.preserveFds).sentryFd;
    records.push({ tag: PLAN.TAG_SENTRY, socketFd, flags: opts.sentry.flags, program: opts.sentry.program });
  }
  records.push({ tag: PLAN.TAG_CWD, path: process.cwd === '' ? '/' : process.cwd });
  for (const arg of args) records.push({ tag: PLAN.TAG_ARG, value: arg });
  for (const env of process.env ?? []) records.push({ tag: PLAN.TAG_ENV, value: env });
  if (opts.preserveFds > 0) records.push({ tag: PLAN.TAG_PRESERVE_FDS, count: opts.preserveFds });
  return records;
}

/** process.rlimits as TAG_RLIMIT records (create and exec alike). */
export function rlimitRecords(process: Process): PlanRecord[] {
  return (process.rlimits ?? []).map((rl) => {
    const resource = RLIMITS[rl.type as RlimitName];
    if (resource === undefined) throw new StockadeError('CONFIG_INVALID', `config.json: process.rlimits: unknown rlimit ${JSON.stringify(rl.type)}`, { field: 'process.rlimits' });
    return { tag: PLAN.TAG_RLIMIT, resource, soft: rlimitValue(rl.soft), hard: rlimitValue(rl.hard) };
  });
}

/** process.capabilities as the TAG_CAPS record (create and exec alike). */
export function capabilityRecord(process: Process, held: bigint): PlanRecord {
  const caps = process.capabilities;
  if (caps === undefined) {
    // runc leaves the capabilities alone when the config names none: root keeps what it has.
    return { tag: PLAN.TAG_CAPS, bounding: held, effective: held, inheritable: 0n, permitted: held, ambient: 0n };
  }
  const set = (name: (typeof CAP_SETS)[number]): bigint => grantable(caps[name], `process.capabilities.${name}`, held);
  const permitted = set('permitted');
  const inheritable = set('inheritable');
  return {
    tag: PLAN.TAG_CAPS,
    bounding: set('bounding'),
    effective: set('effective'),
    inheritable,
    permitted,
    // The kernel raises an ambient capability only if it is permitted and inheritable; runc
    // ignores the others (its default spec asks for ambient caps it does not make inheritable).
    ambient: set('ambient') & permitted & inheritable,
  };
}

/**
 * The real path of a root.path relative to the bundle, which must stay in the bundle: a bundle
 * made from content nobody checked (an unpacked image) must not make a host directory the
 * container's root through a symlink. An absolute root.path is the caller's own choice, as in runc.
 * The real path is what gets mounted, so the symlink cannot be swapped after this check.
 */
function rootInBundle(bundle: string, rootPath: string, given: string): string {
  if (isAbsolute(rootPath)) return given;
  const real = realpathSync(given);
  const realBundle = realpathSync(bundle);
  if (real !== realBundle && !real.startsWith(`${realBundle}/`)) {
    throw new StockadeError('BUNDLE_INVALID', `bundle ${bundle}: root.path ${JSON.stringify(rootPath)} leads out of the bundle (to ${real})`,
      { field: 'root.path', path: rootPath });
  }
  return real;
}

const CAP_SETS = ['bounding', 'effective', 'inheritable', 'permitted', 'ambient'] as const;

/**
 * The mask of `names`, each of which this runtime must be able to grant: a capability outside its
 * own bounding set (a host, or a runtime started under a parent, that dropped it) cannot be given
 * to any process, and the runtime spec has a capability that cannot be granted be an error, not a
 * silent drop. runc fails too, though only at capset and without a name ("unable to apply caps").
 */
function grantable(names: readonly string[] | undefined, field: string, held: bigint): bigint {
  const mask = capabilityMask(names, field);
  const missing = mask & ~held;
  if (missing === 0n) return mask;
  const lacking = CAPABILITIES.filter((_, bit) => (missing & (1n << BigInt(bit))) !== 0n);
  throw new StockadeError('CONFIG_INVALID',
    `${field}: ${lacking.join(', ')} cannot be granted: not in this host's capability bounding set`, { field });
}

function planRootfs(spec: Spec, opts: PlanOptions, plan: PlanRecord[], inUserNs: boolean, ownNetNs: boolean, hostMounts: boolean): void {
  const linux = spec.linux ?? {};
  if (spec.root === undefined) throw new StockadeError('CONFIG_INVALID', 'config.json: root: required', { field: 'root' });
  const given = resolve(opts.bundle, spec.root.path);
  const st = statSync(given, { throwIfNoEntry: false });
  if (st === undefined || !st.isDirectory()) {
    throw new StockadeError('BUNDLE_INVALID', `root file system ${given} (root.path) does not exist or is not a directory`, { field: 'root.path', path: given });
  }
  const source = rootInBundle(opts.bundle, spec.root.path, given);
  let flags = 0;
  if (spec.root.readonly === true) flags |= ROOTFS.READONLY;
  if (opts.noPivot && !hostMounts) flags |= ROOTFS.NO_PIVOT;
  if (hostMounts) flags |= ROOTFS.HOST_MOUNT_NS;
  if (opts.rootfsMode === 'recursive-readonly') flags |= ROOTFS.RECURSIVE_READONLY;
  if (opts.rootfsMode === 'overlay') flags |= ROOTFS.OVERLAY;
  plan.push({ tag: PLAN.TAG_ROOTFS, flags, source, mountpoint: opts.rootfsMountpoint });
  if (opts.rootfsMode === 'overlay' && opts.overlayTmpfs !== undefined) plan.push({ tag: PLAN.TAG_OVERLAY_TMPFS, data: opts.overlayTmpfs });
  if (linux.rootfsPropagation !== undefined) {
    const p = PROPAGATION[linux.rootfsPropagation];
    if (p === undefined) throw new StockadeError('CONFIG_INVALID', `config.json: linux.rootfsPropagation: unknown value ${JSON.stringify(linux.rootfsPropagation)}`, { field: 'linux.rootfsPropagation' });
    plan.push({ tag: PLAN.TAG_ROOTFS_PROPAGATION, flags: p });
  }

  let devIsBind = false;
  (spec.mounts ?? []).forEach((original, i) => {
    const field = `mounts[${i}]`;
    // sysfs belongs to a network namespace: without one of its own the kernel refuses a fresh
    // mount (EBUSY), so the host's /sys is bound instead, read-only all the way down if asked, as runc does.
    const m = original.type === 'sysfs' && !ownNetNs
      ? { ...original, type: 'bind', source: '/sys', options: [...(original.options ?? []).flatMap((o) => (o === 'ro' ? ['ro', 'rro'] : [o])), 'rbind'] }
      : original;
    const parsed = parseMountOptions(m.options ?? []);
    const bind = parsed.bind || m.type === 'bind';
    if (!isAbsolute(m.destination)) throw new StockadeError('CONFIG_INVALID', `config.json: ${field}.destination: must be an absolute path`, { field });
    let src = m.source ?? '';
    if (bind) {
      src = resolve(opts.bundle, src);
      if (!existsSync(src)) throw new StockadeError('CONFIG_INVALID', `config.json: ${field}.source: bind source ${src} does not exist`, { field, path: src });
      if (m.destination === '/dev') devIsBind = true;
    }
    let mountFlags = parsed.copyUp ? MOUNTF.COPYUP : 0;
    let flags = parsed.flags;
    // A recursive bind asked read-only, nosuid or nodev is so all the way down: the host mounts
    // it brings along (a tmpfs, a procfs someone mounted there) must not stay writable below it.
    let recursiveAttr = parsed.recursiveAttr;
    if (bind && parsed.recursive) {
      if ((parsed.flags & MS_RDONLY) !== 0) recursiveAttr |= MOUNT_ATTR_RDONLY;
      if ((parsed.flags & MS_NOSUID) !== 0) recursiveAttr |= MOUNT_ATTR_NOSUID;
      if ((parsed.flags & MS_NODEV) !== 0) recursiveAttr |= MOUNT_ATTR_NODEV;
    }
    if (bind) {
      mountFlags |= MOUNTF.BIND;
      if (opts.resolvedBinds === true) mountFlags |= MOUNTF.SOURCE_RESOLVED;
      flags |= MS_BIND | (parsed.recursive ? MS_REC : 0);
      // Flags beyond bind/rec only take effect on a bind through a second, remounting call.
      if ((parsed.flags & ~(MS_BIND | MS_REC)) !== 0) mountFlags |= MOUNTF.REMOUNT;
    }
    plan.push({
      tag: PLAN.TAG_MOUNT, flags, propagation: parsed.propagation, recursiveAttr, mountFlags,
      source: src, target: m.destination, fstype: bind ? '' : (m.type ?? ''), data: parsed.data,
    });
    const idmap = opts.idmaps?.get(m.destination);
    if (idmap !== undefined) {
      if (!bind) throw new StockadeError('CONFIG_INVALID', `${field}: only a bind can be id-mapped`, { field });
      plan.push({ tag: PLAN.TAG_MOUNT_IDMAP, ...idmap });
    }
  });
  for (const destination of opts.idmaps?.keys() ?? []) {
    if (!(spec.mounts ?? []).some((m) => m.destination === destination)) {
      throw new StockadeError('CONFIG_INVALID', `an id map for ${destination}, which no mount has`, { field: 'mounts' });
    }
  }

  if (!devIsBind) {
    // As runc: a default device the config lists too is made as the config says (its mode and
    // owner), once; /dev/ptmx is the link to the pts instance whenever there is one, listed or not.
    const listed = new Set((linux.devices ?? []).map((d) => posix.normalize(d.path)));
    const ptmxLink = (spec.mounts ?? []).some((m) => posix.normalize(m.destination) === '/dev/pts');
    for (const d of DEFAULT_DEVICES) {
      if (listed.has(d.path)) continue;
      plan.push({ tag: PLAN.TAG_DEVICE, type: 'c', major: d.major, minor: d.minor, mode: S_IFCHR | 0o666, uid: 0, gid: 0, deviceFlags: inUserNs ? DEVICEF.BIND : 0, path: d.path });
    }
    (linux.devices ?? []).forEach((d) => {
      if (ptmxLink && posix.normalize(d.path) === '/dev/ptmx') return;
      const typeBits = d.type === 'b' ? S_IFBLK : d.type === 'p' ? S_IFIFO : S_IFCHR;
      plan.push({
        tag: PLAN.TAG_DEVICE, type: d.type, major: d.major ?? 0, minor: d.minor ?? 0,
        mode: typeBits | ((d.fileMode ?? 0o666) & 0o7777), uid: d.uid ?? 0, gid: d.gid ?? 0,
        deviceFlags: inUserNs ? DEVICEF.BIND : 0, path: d.path,
      });
    });
    for (const [target, linkpath] of DEV_SYMLINKS) plan.push({ tag: PLAN.TAG_SYMLINK, target, linkpath });
    if (ptmxLink) plan.push({ tag: PLAN.TAG_SYMLINK, target: 'pts/ptmx', linkpath: '/dev/ptmx' });
  }
  for (const path of linux.maskedPaths ?? []) plan.push({ tag: PLAN.TAG_MASKED_PATH, path });
  for (const path of linux.readonlyPaths ?? []) plan.push({ tag: PLAN.TAG_READONLY_PATH, path });
}

const RLIM_INFINITY = (1n << 64n) - 1n;

/** JSON numbers lose precision near 2^64: anything at or past RLIM_INFINITY means unlimited. */
function rlimitValue(v: number): bigint {
  const b = BigInt(Math.trunc(v));
  return b >= RLIM_INFINITY ? RLIM_INFINITY : b;
}
