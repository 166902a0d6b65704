// The setup plan and sync messages exchanged with stockade-init; the source of native/include/stockade-abi.h.
//
//   stockade (Node)                     stockade-init P (host)            C (container pid 1)
//        | spawn P, plan on PLAN fd  -->  |
//        |                                | bind start socket, setns joins,
//        |                                | clone(new namespaces) ----------> |
//        |                                | write uid/gid maps, oom_score_adj |
//        |  <------------- MSG_PID -------| -------- go (pipe) ------------> |
//        |                                | exit(0)  (or, in MONITOR mode,    | mounts, devices, pivot_root,
//        |                                |  wait for C and exit with its     | masks, sysctl, rlimits, user,
//        |                                |  status)                          | mounts, devices
//        |  <------------------------------------------- MSG_HOOK(CREATE) ----- |  (only with TAG_HOOK_POINTS)
//        |  prestart, createRuntime hooks                                    |
//        |  ----------------- MSG_CONTINUE(state JSON, status "creating") --> | createContainer hooks
//        |                                                                   | pivot_root, masks, sysctl,
//        |                                                                   | rlimits, user, caps,
//        |                                                                   | no_new_privs
//        |  <------------------------------------------- MSG_READY or MSG_ERROR |
//        |  (create returns)                                                 | accept() on start socket
//   stockade start ---- connect, MSG_START(state JSON, status "created") --> | startContainer hooks
//        |                                                                   | execve(args)
//        |  <---- EOF on success, MSG_ERROR if a hook or execve failed ----- |
//        |  poststart hooks (a failure only warns)
//   stockade delete: state removed, then poststop hooks (a failure only warns)
//
// exec sends a plan with no TAG_ROOTFS and no TAG_START_SOCKET that joins the init's namespaces
// (TAG_JOIN_NS, TAG_CLONE_FLAGS 0): C execs right after MSG_READY, so the runtime reads on until EOF
// (execve closed the sync fd) or MSG_ERROR (execve failed). Before anything else, P re-executes
// itself from a sealed memfd copy (native/init/selfclone.c): a helper's /proc/PID/exe, visible in
// the container's pid namespace, never leads to the host's stockade-init (CVE-2019-5736).
//
// The runtime's hooks (prestart, createRuntime, poststart, poststop) run in Node (container/hooks.ts);
// the container's (createContainer, startContainer) run in C from TAG_HOOK records, fed the state
// JSON that the runtime computed and sent as the payload of MSG_CONTINUE and MSG_START (empty when
// the plan has no hooks of that phase), since C knows neither its host pid nor the bundle.
//
// TAG_SENTRY (the "sentry" isolation level) adds a second filter whose NOTIFY calls a supervisor
// in the runtime answers. Its listener cannot be sent by the process that loads the filter
// (sendmsg is itself NOTIFY, and nobody holds the listener yet), so C hands it over through a
// helper that shares C's fd table but not its filter (native/init/sentry.c):
//
//   runtime (supervisor)          C (container pid 1)                  H (clone(CLONE_FILES), unfiltered)
//        |                          | after MSG_START, config's filter  |
//        |                          | clone H --------------------------> | read the pipe (blocks)
//        |                          | seccomp(NEW_LISTENER) = L          |
//        |                          | write L's number on the pipe ----> |
//        |  <---------------------------------------- sendmsg("L", SCM_RIGHTS L) on the sentry socket
//        |                          | waitpid(H) <--------------------- _exit(0 or errno)
//        |                          | close L and the sentry socket, startContainer hooks, execve (NOTIFY)
//
// Every frame on the plan fd, the sync fd and the start socket is [u32 tag][u32 length][payload],
// little endian. Strings are [u32 length][bytes][NUL]; the length excludes the NUL.

/** Record tags of the setup plan. The plan starts with PLAN_MAGIC and ends with TAG_END. */
export const PLAN = {
  MAGIC: 0x314b5453, // "STK1"
  TAG_END: 0,
  /** u32: CLONE_NEW* flags of the namespaces to create. */
  TAG_CLONE_FLAGS: 1,
  /** u32 nstype, str path: a namespace to join with setns before the others are created. */
  TAG_JOIN_NS: 2,
  /** str: the uid_map content written for the new user namespace. */
  TAG_UID_MAP: 3,
  /** str: the gid_map content written for the new user namespace. */
  TAG_GID_MAP: 4,
  /** str */
  TAG_HOSTNAME: 5,
  /** str */
  TAG_DOMAINNAME: 6,
  /** u32 ROOTFS_* flags, str source (host path), str mountpoint (empty host dir the root is built on). */
  TAG_ROOTFS: 7,
  /** u32: MS_* propagation flags applied to the container's "/" after pivot (default MS_SLAVE|MS_REC before). */
  TAG_ROOTFS_PROPAGATION: 8,
  /** u32 MS_* flags, u32 MS_* propagation flags, u32 MOUNT_ATTR_* applied recursively (rro), u32 MOUNTF_*,
   *  str source, str target (absolute, inside the container), str fstype, str data. */
  TAG_MOUNT: 9,
  /** u32 type ('c','b','u','p'), u32 major, u32 minor, u32 mode (S_IF* | permissions), u32 uid, u32 gid,
   *  u32 DEVICEF_*, str path (inside the container). */
  TAG_DEVICE: 10,
  /** str target, str linkpath (inside the container). */
  TAG_SYMLINK: 11,
  /** str key (dotted, as in config.json), str value. Written to /proc/sys after pivot_root. */
  TAG_SYSCTL: 12,
  /** str path: hidden (a file by /dev/null, a directory by an empty read-only tmpfs). */
  TAG_MASKED_PATH: 13,
  /** str path: bind-remounted read-only. */
  TAG_READONLY_PATH: 14,
  /** u32 resource, u64 soft, u64 hard. */
  TAG_RLIMIT: 15,
  /** i32 */
  TAG_OOM_SCORE_ADJ: 16,
  /** u32 uid, u32 gid, u32 umask (UMASK_UNSET for none), u32 n, u32[n] additional gids. */
  TAG_USER: 17,
  /** u64 bounding, u64 effective, u64 inheritable, u64 permitted, u64 ambient. */
  TAG_CAPS: 18,
  /** no payload */
  TAG_NO_NEW_PRIVS: 19,
  /** str */
  TAG_CWD: 20,
  /** str: one argv element, in order. */
  TAG_ARG: 21,
  /** str: one environment entry, in order. */
  TAG_ENV: 22,
  /** str: unix socket path to send the pty master to (process.terminal). */
  TAG_CONSOLE_SOCKET: 23,
  /** str: unix socket path the container waits on until `start`. */
  TAG_START_SOCKET: 24,
  /** u32 n: fds 3 .. 3+n-1 pass into the container. */
  TAG_PRESERVE_FDS: 25,
  /** str: name of a new session keyring to join. */
  TAG_SESSION_KEYRING: 26,
  /** no payload: P waits for the container and exits with its status (attached `run`). */
  TAG_MONITOR: 27,
  /** no payload: bring up "lo" in the new network namespace. */
  TAG_LOOPBACK_UP: 28,
  /** u32 SECCOMP_FILTER_FLAG_*, u32 n, then n struct sock_filter (u16 code, u8 jt, u8 jf, u32 k). */
  TAG_SECCOMP: 29,
  /** u32 HOOKF_* points at which the container stops, sends MSG_HOOK and waits for MSG_CONTINUE. */
  TAG_HOOK_POINTS: 30,
  /** no payload: allocate a pty (process.terminal); requires TAG_CONSOLE_SOCKET. */
  TAG_TERMINAL: 31,
  /** str: a cgroup directory (host path) P moves itself into, before joining any namespace,
   *  so the container starts inside its cgroups and its cgroup namespace is rooted there. */
  TAG_CGROUP_JOIN: 32,
  /** u32 HOOK_PHASE_*, u32 timeout in ms (0: none), str path, u32 n, str[n] args (args[0] is argv[0]),
   *  u32 m, str[m] env: one container-side hook, in the order it runs within its phase. */
  TAG_HOOK: 33,
  /** u32 fd of a unix socket in stockade-init (see initFds in launcher.ts), u32 SECCOMP_FILTER_FLAG_*
   *  (NEW_LISTENER is added), u32 n, then n struct sock_filter as in TAG_SECCOMP: the sentry's
   *  filter, loaded after the config's own just before execve; its listener is sent over the socket
   *  with SCM_RIGHTS and one byte "L". Requires TAG_NO_NEW_PRIVS. */
  TAG_SENTRY: 34,
  /** str path: a mount destination in the container (/proc, /sys) that the sentry owns. After the
   *  masks and read-only remounts C clones the mount tree at path (open_tree
   *  OPEN_TREE_CLONE|AT_RECURSIVE) and detaches it from the workload's mount namespace. H sends
   *  each clone over the sentry socket (one byte "M", the path, SCM_RIGHTS) before the listener.
   *  A process exec'd into the container has none: it joins the container's sentry, which holds
   *  them. At most four; requires TAG_SENTRY. */
  TAG_SENTRY_MOUNT: 35,
  /** str path: for a process exec'd into a container that shares the runtime's mount namespace
   *  (ROOTFS.HOST_MOUNT_NS): the container's root as the host sees it, which C chroots into once
   *  the namespaces are joined, before any path is looked up; without it the process would run
   *  in the host's root (as runc's exec does). Never with TAG_ROOTFS or a mount namespace joined. */
  TAG_CHROOT: 36,
  /** no payload: C stays the container's init (pid 1 of its own pid namespace): it forks the
   *  command just before the filters go in, passes every signal it gets on to it, reaps orphans
   *  and exits with the command's status (128+N when signal N killed it). Requires CLONE_NEWPID. */
  TAG_INIT: 37,
  /** u32 pid: the container lives no longer than that process, P's parent (`stockade do`): P dies
   *  with it (PR_SET_PDEATHSIG) and C with P, each checking after the prctl that its parent is
   *  still there. Requires TAG_MONITOR. */
  TAG_TIED: 38,
  /** str: mount options of the tmpfs an overlay root keeps its writes on (size=...). */
  TAG_OVERLAY_TMPFS: 39,
  /** u32 ms, u32 ms: the init's deadline for the command (from its fork) and the grace after it:
   *  SIGTERM to the command at the deadline, SIGKILL to every process of the namespace once the
   *  grace has passed too; the init then exits with 124, as timeout(1). Requires TAG_INIT. */
  TAG_INIT_TIMEOUT: 40,
  /** str uid map, str gid map (as /proc/PID/uid_map takes them): the TAG_MOUNT before it, a bind,
   *  is id-mapped (MOUNT_ATTR_IDMAP, every submount too when the bind is recursive) through a user
   *  namespace with these maps, which P makes before C exists: a file the maps' host id writes
   *  lands owned by its container id, and a file of that id is the host id's. */
  TAG_MOUNT_IDMAP: 41,
  /** no payload: the container runs no command. Where C would execve it, the command (pid 2)
   *  closes every fd and waits until a signal ends it, so the container stays up, holding its
   *  namespaces, for the processes exec'd into it (the SDK's sandboxes): an image need not have a
   *  program that waits forever. Requires TAG_INIT. */
  TAG_HOLD: 42,
  /** u32 rows, u32 columns: the pty's size before the process runs (process.consoleSize), so its
   *  first look at the terminal sees it. Requires TAG_TERMINAL. */
  TAG_CONSOLE_SIZE: 43,
} as const;

/**
 * The first byte of each message of the sentry hand-off (TAG_SENTRY's socket, native/init/sentry.c
 * to src/sentry/host.ts), each with one fd by SCM_RIGHTS: a mount the sentry is to own, then its
 * path; the seccomp listener, alone.
 */
export const HANDOFF = {
  /** "M" + the mount's path: a clone of a TAG_SENTRY_MOUNT mount. */
  MOUNT: 0x4d,
  /**
   * "X": a writable clone of the tmpfs stockade-init mounted read-only at /proc in the workload's
   * namespace, after the procfs clone, for the links re-executing through /proc/self/exe takes
   * (src/sentry/exec-links.ts).
   */
  EXEC_LINKS: 0x58,
  /** "L": the seccomp listener, last. */
  LISTENER: 0x4c,
} as const;

export const ROOTFS = {
  READONLY: 0x1,
  /** Make the root and every mount below it read-only (rro); later mounts stay as asked. */
  RECURSIVE_READONLY: 0x2,
  /** Build the root as an overlay: source is the lower dir, upper and work on a tmpfs. */
  OVERLAY: 0x4,
  /** MS_MOVE + chroot instead of pivot_root. */
  NO_PIVOT: 0x8,
  /**
   * The container shares the runtime's mount namespace (the config lists none): the root and the
   * config's mounts are made in it, below the root's mountpoint (made private there, so nothing
   * propagates), "/" is left as it is, and the root is entered by chroot alone.
   */
  HOST_MOUNT_NS: 0x10,
} as const;

export const MOUNTF = {
  /** The mount is a bind (MS_BIND): the target is created as a file when the source is not a dir. */
  BIND: 0x1,
  /** Apply MS_RDONLY etc. with a second MS_REMOUNT|MS_BIND call, as binds need. */
  REMOUNT: 0x2,
  /** Source is a path inside the container (mounts created from within, e.g. /dev/console). */
  SOURCE_IN_CONTAINER: 0x4,
  /** tmpcopyup: copy what the target directory held into the new (tmpfs) mount. */
  COPYUP: 0x8,
  /**
   * A bind whose host source the caller resolved (stockade do's --bind, realpath): walked again with
   * no symlink at all (RESOLVE_NO_SYMLINKS), so that a component swapped for a link since the check
   * fails the mount instead of binding where the link leads.
   */
  SOURCE_RESOLVED: 0x10,
} as const;

export const DEVICEF = {
  /** Bind-mount the host node at the same path instead of mknod (user namespaces). */
  BIND: 0x1,
} as const;

export const HOOKF = {
  /** After namespaces and mounts exist, before pivot_root: createRuntime and createContainer. */
  CREATE: 0x1,
} as const;

/** Where a TAG_HOOK runs: the container-side hooks of config.json. */
export const HOOK_PHASE = {
  /** At HOOKF_CREATE, after the runtime's hooks, before pivot_root. */
  CREATE_CONTAINER: 1,
  /** After MSG_START, before execve. */
  START_CONTAINER: 2,
} as const;

export const UMASK_UNSET = 0xffffffff;

/** Frames on the sync fd and the start socket. */
export const MSG = {
  /** u32 pid of the container's init, as the host sees it. */
  PID: 1,
  /** no payload: setup is complete, the container waits for start. */
  READY: 2,
  /** i32 errno, str step, str message. */
  ERROR: 3,
  /** u32 HOOKF_* point reached. */
  HOOK: 4,
  /** runtime -> container, go on after MSG_HOOK; payload: the state JSON for createContainer hooks, or empty. */
  CONTINUE: 5,
  /** runtime -> container over the start socket; payload: the state JSON for startContainer hooks, or empty. */
  START: 6,
} as const;

/** Argument order of stockade-init: `stockade-init PLAN_FD SYNC_FD`. */
export const INIT_ARGV = ['planFd', 'syncFd'] as const;

/** The fds stockade-init starts with, after the preserved ones (3 .. 3+preserveFds-1): the plan
 *  pipe, the sync socket and, for a TAG_SENTRY plan, the sentry socket, whose number the record names. */
export function initFds(preserveFds: number): { planFd: number; syncFd: number; sentryFd: number } {
  const planFd = 3 + preserveFds;
  return { planFd, syncFd: planFd + 1, sentryFd: planFd + 2 };
}

export type PlanRecord =
  | { tag: typeof PLAN.TAG_CLONE_FLAGS; flags: number }
  | { tag: typeof PLAN.TAG_JOIN_NS; nstype: number; path: string }
  | { tag: typeof PLAN.TAG_UID_MAP | typeof PLAN.TAG_GID_MAP; content: string }
  | { tag: typeof PLAN.TAG_HOSTNAME | typeof PLAN.TAG_DOMAINNAME; name: string }
  | { tag: typeof PLAN.TAG_ROOTFS; flags: number; source: string; mountpoint: string }
  | { tag: typeof PLAN.TAG_ROOTFS_PROPAGATION; flags: number }
  | { tag: typeof PLAN.TAG_TIED; pid: number }
  | { tag: typeof PLAN.TAG_OVERLAY_TMPFS; data: string }
  | { tag: typeof PLAN.TAG_INIT_TIMEOUT; timeoutMs: number; graceMs: number }
  | { tag: typeof PLAN.TAG_CONSOLE_SIZE; rows: number; cols: number }
  | { tag: typeof PLAN.TAG_MOUNT_IDMAP; uidMap: string; gidMap: string }
  | { tag: typeof PLAN.TAG_MOUNT; flags: number; propagation: number; recursiveAttr: number; mountFlags: number;
      source: string; target: string; fstype: string; data: string }
  | { tag: typeof PLAN.TAG_DEVICE; type: 'c' | 'b' | 'u' | 'p'; major: number; minor: number; mode: number;
      uid: number; gid: number; deviceFlags: number; path: string }
  | { tag: typeof PLAN.TAG_SYMLINK; target: string; linkpath: string }
  | { tag: typeof PLAN.TAG_SYSCTL; key: string; value: string }
  | { tag: typeof PLAN.TAG_MASKED_PATH | typeof PLAN.TAG_READONLY_PATH; path: string }
  | { tag: typeof PLAN.TAG_RLIMIT; resource: number; soft: bigint; hard: bigint }
  | { tag: typeof PLAN.TAG_OOM_SCORE_ADJ; value: number }
  | { tag: typeof PLAN.TAG_USER; uid: number; gid: number; umask: number; additionalGids: readonly number[] }
  | { tag: typeof PLAN.TAG_CAPS; bounding: bigint; effective: bigint; inheritable: bigint; permitted: bigint;
      ambient: bigint }
  | { tag: typeof PLAN.TAG_NO_NEW_PRIVS | typeof PLAN.TAG_MONITOR | typeof PLAN.TAG_LOOPBACK_UP
      | typeof PLAN.TAG_TERMINAL | typeof PLAN.TAG_INIT | typeof PLAN.TAG_HOLD }
  | { tag: typeof PLAN.TAG_CWD; path: string }
  | { tag: typeof PLAN.TAG_ARG | typeof PLAN.TAG_ENV; value: string }
  | { tag: typeof PLAN.TAG_CONSOLE_SOCKET | typeof PLAN.TAG_START_SOCKET | typeof PLAN.TAG_CGROUP_JOIN; path: string }
  | { tag: typeof PLAN.TAG_PRESERVE_FDS; count: number }
  | { tag: typeof PLAN.TAG_SESSION_KEYRING; name: string }
  | { tag: typeof PLAN.TAG_SECCOMP; flags: number; program: Buffer }
  | { tag: typeof PLAN.TAG_SENTRY; socketFd: number; flags: number; program: Buffer }
  | { tag: typeof PLAN.TAG_SENTRY_MOUNT; path: string }
  | { tag: typeof PLAN.TAG_CHROOT; path: string }
  | { tag: typeof PLAN.TAG_HOOK_POINTS; points: number }
  | { tag: typeof PLAN.TAG_HOOK; phase: number; timeoutMs: number; path: string; args: readonly string[];
      env: readonly string[] };

/** Frames received from stockade-init. */
export type InitMessage =
  | { type: 'pid'; pid: number }
  | { type: 'ready' }
  | { type: 'hook'; point: number }
  | { type: 'error'; errno: number; step: string; message: string };

class Writer {
  #chunks: Buffer[] = [];
  u32(v: number): this { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); this.#chunks.push(b); return this; }
  i32(v: number): this { const b = Buffer.alloc(4); b.writeInt32LE(v); this.#chunks.push(b); return this; }
  u64(v: bigint): this { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt.asUintN(64, v)); this.#chunks.push(b); return this; }
  str(s: string): this {
    const bytes = Buffer.from(s, 'utf8');
    if (bytes.includes(0)) throw new Error(`string contains a NUL byte: ${JSON.stringify(s)}`);
    this.u32(bytes.length); this.#chunks.push(bytes, Buffer.alloc(1)); return this;
  }
  bytes(b: Buffer): this { this.#chunks.push(b); return this; }
  build(): Buffer { return Buffer.concat(this.#chunks); }
}

function filterPayload(w: Writer, program: Buffer): Buffer {
  if (program.length % 8 !== 0) throw new Error('seccomp program length is not a multiple of 8');
  return w.u32(program.length / 8).bytes(program).build();
}

function payload(r: PlanRecord): Buffer {
  const w = new Writer();
  switch (r.tag) {
    case PLAN.TAG_CLONE_FLAGS: return w.u32(r.flags).build();
    case PLAN.TAG_JOIN_NS: return w.u32(r.nstype).str(r.path).build();
    case PLAN.TAG_UID_MAP: case PLAN.TAG_GID_MAP: return w.str(r.content).build();
    case PLAN.TAG_HOSTNAME: case PLAN.TAG_DOMAINNAME: return w.str(r.name).build();
    case PLAN.TAG_ROOTFS: return w.u32(r.flags).str(r.source).str(r.mountpoint).build();
    case PLAN.TAG_ROOTFS_PROPAGATION: return w.u32(r.flags).build();
    case PLAN.TAG_MOUNT:
      return w.u32(r.flags).u32(r.propagation).u32(r.recursiveAttr).u32(r.mountFlags)
        .str(r.source).str(r.target).str(r.fstype).str(r.data).build();
    case PLAN.TAG_DEVICE:
      return w.u32(r.type.charCodeAt(0)).u32(r.major).u32(r.minor).u32(r.mode).u32(r.uid).u32(r.gid)
        .u32(r.deviceFlags).str(r.path).build();
    case PLAN.TAG_SYMLINK: return w.str(r.target).str(r.linkpath).build();
    case PLAN.TAG_SYSCTL: return w.str(r.key).str(r.value).build();
    case PLAN.TAG_MASKED_PATH: case PLAN.TAG_READONLY_PATH: return w.str(r.path).build();
    case PLAN.TAG_RLIMIT: return w.u32(r.resource).u64(r.soft).u64(r.hard).build();
    case PLAN.TAG_OOM_SCORE_ADJ: return w.i32(r.value).build();
    case PLAN.TAG_USER: {
      w.u32(r.uid).u32(r.gid).u32(r.umask).u32(r.additionalGids.length);
      for (const g of r.additionalGids) w.u32(g);
      return w.build();
    }
    case PLAN.TAG_CAPS:
      return w.u64(r.bounding).u64(r.effective).u64(r.inheritable).u64(r.permitted).u64(r.ambient).build();
    case PLAN.TAG_NO_NEW_PRIVS: case PLAN.TAG_MONITOR: case PLAN.TAG_LOOPBACK_UP: case PLAN.TAG_TERMINAL:
    case PLAN.TAG_INIT: case PLAN.TAG_HOLD:
      return w.build();
    case PLAN.TAG_TIED: return w.u32(r.pid).build();
    case PLAN.TAG_OVERLAY_TMPFS: return w.str(r.data).build();
    case PLAN.TAG_INIT_TIMEOUT: return w.u32(r.timeoutMs).u32(r.graceMs).build();
    case PLAN.TAG_CONSOLE_SIZE: return w.u32(r.rows).u32(r.cols).build();
    case PLAN.TAG_MOUNT_IDMAP: return w.str(r.uidMap).str(r.gidMap).build();
    case PLAN.TAG_CWD: return w.str(r.path).build();
    case PLAN.TAG_ARG: case PLAN.TAG_ENV: return w.str(r.value).build();
    case PLAN.TAG_CONSOLE_SOCKET: case PLAN.TAG_START_SOCKET: case PLAN.TAG_CGROUP_JOIN: return w.str(r.path).build();
    case PLAN.TAG_SENTRY_MOUNT: return w.str(r.path).build();
    case PLAN.TAG_CHROOT: return w.str(r.path).build();
    case PLAN.TAG_PRESERVE_FDS: return w.u32(r.count).build();
    case PLAN.TAG_SESSION_KEYRING: return w.str(r.name).build();
    case PLAN.TAG_SECCOMP: return filterPayload(w.u32(r.flags), r.program);
    case PLAN.TAG_SENTRY: return filterPayload(w.u32(r.socketFd).u32(r.flags), r.program);
    case PLAN.TAG_HOOK_POINTS: return w.u32(r.points).build();
    case PLAN.TAG_HOOK: {
      w.u32(r.phase).u32(r.timeoutMs).str(r.path).u32(r.args.length);
      for (const a of r.args) w.str(a);
      w.u32(r.env.length);
      for (const e of r.env) w.str(e);
      return w.build();
    }
  }
}

export function frame(tag: number, body: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(tag, 0);
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body]);
}

/** Encodes a plan: magic, records in order, TAG_END. */
export function encodePlan(records: readonly PlanRecord[]): Buffer {
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(PLAN.MAGIC);
  return Buffer.concat([magic, ...records.map((r) => frame(r.tag, payload(r))), frame(PLAN.TAG_END, Buffer.alloc(0))]);
}

export function encodeMessage(type: typeof MSG.CONTINUE | typeof MSG.START, body: Buffer = Buffer.alloc(0)): Buffer {
  return frame(type, body);
}

function readStr(b: Buffer, off: number): [string, number] {
  const len = b.readUInt32LE(off);
  return [b.toString('utf8', off + 4, off + 4 + len), off + 4 + len + 1];
}

/** Splits complete frames off the front of a stream buffer. */
export class MessageReader {
  #buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): InitMessage[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: InitMessage[] = [];
    while (this.#buf.length >= 8) {
      const type = this.#buf.readUInt32LE(0);
      const len = this.#buf.readUInt32LE(4);
      if (this.#buf.length < 8 + len) break;
      const body = this.#buf.subarray(8, 8 + len);
      this.#buf = this.#buf.subarray(8 + len);
      out.push(decodeMessage(type, body));
    }
    return out;
  }
}

export function decodeMessage(type: number, body: Buffer): InitMessage {
  switch (type) {
    case MSG.PID: return { type: 'pid', pid: body.readUInt32LE(0) };
    case MSG.READY: return { type: 'ready' };
    case MSG.HOOK: return { type: 'hook', point: body.readUInt32LE(0) };
    case MSG.ERROR: {
      const errno = body.readInt32LE(0);
      const [step, off] = readStr(body, 4);
      const [message] = readStr(body, off);
      return { type: 'error', errno, step, message };
    }
    default: throw new Error(`stockade-init sent an unknown message type ${type}`);
  }
}
