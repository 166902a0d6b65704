// The host <-> agent protocol of the vm level: every message, written once; the source of native/include/stockade-agent.h.
//
//   host (src/vm/agent-client.ts)                      agent (native/agent, PID 1 of the guest)
//        | boots QEMU; writes HELLO at once: it waits in     |
//        | the channel until the guest opens its port        | mounts /proc /sys /dev, loads modules,
//        |                                                   | opens the virtio-serial port
//        |  -------------------- HELLO(version) ----------->  |
//        |  <------------- HELLO_OK(version, kernel) -------  |  (boot-to-agent-ready ends here)
//        |  ------- MOUNT(fstype, source, target, flags) ---->  |  mount(2): virtiofs, proc or tmpfs
//        |  <-------------------- OK | ERROR --------------  |
//        |  --- SPAWN(root, cwd, uid, gid, args, env) ----->  |  fork: chroot, chdir, set ids, execve
//        |  <------------ SPAWNED(proc, pid) | ERROR ------  |
//        |  --- STDIN(proc, data) / WINDOW(proc, stream) -->  |  (streams: id 0, no reply)
//        |  <-- OUTPUT(proc, stream, data) / WINDOW(proc) --  |  (streams: id 0; empty data = EOF)
//        |  ------------- SIGNAL(proc, signal) ------------>  |  kill(pid, signal)
//        |  ------------------ WAIT(proc) ----------------->  |  (answered when the process is reaped)
//        |  <--------- EXITED(proc, code, signal) ---------  |
//        |  - CREATE(name, flags, plan) -------------------->  |  stockade-init with the plan (memfd), the
//        |  <---- HOOK(proc, point) | CREATED(proc, pid) ---  |  container's sync socket relayed: HOOK at
//        |  --- CONTINUE(proc, state) (after a HOOK) ------>  |  MSG_HOOK, CREATED at MSG_READY, ERROR at
//        |  <---- HOOK | CREATED | ERROR ------------------  |  MSG_ERROR; the container waits for START
//        |  ----------- START(proc, state) --------------->  |  MSG_START on its start socket
//        |  <------------ OK (at its execve) | ERROR ------  |
//        |  - EXEC(container, name, flags, plan) --------->  |  stockade-init joining the container
//        |  <------- CREATED(proc, pid) (at its execve) ---  |
//        |  --- RESIZE(proc, rows, cols) (stream) -------->  |  TIOCSWINSZ on the pty master
//        |  ---- PIDS(proc) / STATS(proc) ---------------->  |  the container's cgroup in the guest
//        |  <-------- PIDS_OK(pids) / STATS_OK(...) -------  |
//        |  ---- UPDATE(proc, limits) -------------------->  |  pids.max, memory.max, cpu.max, cpu.weight
//        |  <----------------------- OK | ERROR ----------  |
//        |  ---- FREEZE(proc, frozen) -------------------->  |  cgroup.freeze; OK once cgroup.events says so
//        |  <----------------------- OK | ERROR ----------  |
//        |  -- REFRESH(seed, time, hostname) (a clone) ---->  |  reseed the CRNG, set the clock and name
//        |  <----------------------- OK | ERROR ----------  |
//        |  -- NET_LINK(mac, name, mtu) -------------------->  |  the NIC with that MAC renamed, sized, up
//        |  -- NET_ADDR(name, family, address, prefix) ---->  |  RTM_NEWADDR
//        |  -- NET_ROUTE(name, family, dst, prefix, gw, ..) ->  |  RTM_NEWROUTE
//        |  <----------------------- OK | ERROR ----------  |  (the container's network, src/vm/network.ts)
//        |  -- DNS_LISTEN(address, port) ------------------>  |  a UDP socket on the guest's loopback
//        |  <----------------------- OK | ERROR ----------  |
//        |  <-- DNS_QUERY(listener, query, data) (stream) --  |  a datagram a guest process sent there
//        |  --- DNS_ANSWER(query, data) (stream) ---------->  |  the host's nameserver's answer, sent back
//        |  ------------------ SHUTDOWN ------------------->  |  kill everything, sync, reboot(2)
//        |  <----------------------- OK -------------------  |  QEMU exits (-no-reboot)
//
// Every frame is [u32 tag][u32 id][u32 length][payload], little endian. A request carries an id
// the host chose (non-zero) and gets exactly one reply with that id: one of its `replies`, or
// ERROR. Stream messages carry id 0 and get no reply. Payload fields follow in the order written
// here: u32/i32 are 4 bytes; `str` is [u32 length][bytes][NUL] (the length excludes the NUL, and
// the bytes hold no NUL), so C reads it in place; `bytes` is [u32 length][bytes]; `strs` is
// [u32 count] then that many `str`; `blob` is [u32 length][bytes] up to the payload limit (a plan,
// hook state); `u64` is 8 bytes; `u32s` is [u32 count] then that many u32. A payload must be
// consumed exactly.
//
// A container (CREATE) is stockade-init's work in the guest, as on the host for the namespaces
// level: the host computes the plan (src/vm/guest-plan.ts puts guest paths in it), the agent runs
// /sbin/stockade-init from the initramfs with it and stands where the runtime stands on the host:
// it answers the sync socket, keeps the start socket's client end, receives the pty master on
// the console socket. The guest paths are derived from CREATE's name (GUEST_PATHS): the
// container's directory (start and console sockets, the root's mount point) and its cgroup.
//
// Back-pressure is by credit, as SSH channels do it: the agent sends a stream's OUTPUT only while
// it holds credit for it (STREAM_WINDOW to start with, then what the host grants back in WINDOW
// once its reader took the data), and leaves the pipe unread otherwise, so a slow reader stalls
// the writer in the guest and loses nothing. Stdin is the mirror image: the host sends at most
// STREAM_WINDOW bytes the agent has not acknowledged with a WINDOW of its own.
//
// Everything the guest sends is hostile input to the host (src/vm/codec.ts checks tag, id, every
// length and the exact end; src/vm/agent-client.ts checks that a reply answers an open request
// and that output stays within its credit); any breach ends the VM.

export type FieldKind = 'u32' | 'i32' | 'u64' | 'str' | 'bytes' | 'blob' | 'strs' | 'u32s';

export interface MessageDef {
  readonly tag: number;
  /** Fields in wire order (object key order). */
  readonly fields: Readonly<Record<string, FieldKind>>;
  /** For requests: the messages (besides ERROR) that may answer it. Absent for stream messages. */
  readonly replies?: readonly string[];
  /** A stream message: id 0, no reply. */
  readonly stream?: true;
}

export const AGENT_PROTOCOL_VERSION = 3;

export const AGENT_LIMITS = {
  /** [u32 tag][u32 id][u32 length] */
  FRAME_HEADER: 12,
  /** Largest payload the host may send (argv and environment of a SPAWN). */
  MAX_HOST_PAYLOAD: 1 << 20,
  /** Largest payload the guest may send; anything longer ends the VM. */
  MAX_GUEST_PAYLOAD: 65536,
  /** Largest OUTPUT or STDIN chunk. */
  MAX_CHUNK: 32768,
  /** Most strings in one `strs` field (args, env). */
  MAX_STRS: 4096,
  /** Most processes the agent tracks at once. */
  MAX_PROCS: 64,
  /** Credit each stream starts with, in bytes. */
  STREAM_WINDOW: 262144,
  /** Longest `str` the guest may send (an error message, the kernel release). */
  MAX_GUEST_STR: 4096,
  /** Most u32 in a `u32s` field (the pids of a container). */
  MAX_U32S: 8192,
  /** Longest name of a container or exec (one path component in the guest). */
  MAX_NAME: 64,
  /** Most DNS_LISTEN sockets (resolv.conf holds at most three nameservers). */
  DNS_LISTENERS: 4,
  /** Largest DNS_QUERY datagram (a query is far smaller; EDNS answers may reach 4096). */
  DNS_MAX_QUERY: 4096,
  /** Queries whose senders the agent keeps for their answers. */
  DNS_PENDING: 64,
} as const;

/**
 * Where a container named N lives in the guest: DIR/N holds its start socket, its console socket
 * and the (empty) mount point its root is built on; CGROUP/N is its cgroup (v2), which exec'd
 * processes join too. The agent makes both at CREATE and removes them when the container is gone.
 */
export const GUEST_PATHS = {
  DIR: '/run/stockade/c',
  CGROUP: '/sys/fs/cgroup/stockade',
  START_SOCKET: 'start.sock',
  CONSOLE_SOCKET: 'console.sock',
  ROOT_MOUNTPOINT: 'root',
} as const;

/** CREATE and EXEC flags. */
export const CREATE_FLAGS = {
  /** Give the container's process a stdin pipe (otherwise /dev/null). */
  STDIN: 1,
  /** The plan has TAG_TERMINAL: the agent listens on the console socket for the pty master. */
  TERMINAL: 2,
} as const;

/** SIGNAL flags. */
export const SIGNAL_FLAGS = {
  /** Every process of the container's cgroup, not only its init (kill --all). */
  ALL: 1,
} as const;

/** What a `u64` of STATS_OK holds for "max" (no limit). */
export const U64_MAX = 0xffffffffffffffffn;

/** SPAWN flags. */
export const SPAWN_FLAGS = {
  /** Give the process a stdin pipe (otherwise /dev/null). */
  STDIN: 1,
} as const;

/** MOUNT flags. */
export const MOUNT_FLAGS = {
  RDONLY: 1,
} as const;

/** NET_ROUTE flags. */
export const NET_ROUTE_FLAGS = {
  /** The gateway is on the link even outside the interface's prefixes (RTNH_F_ONLINK; Calico's 169.254.1.1). */
  ONLINK: 1,
} as const;

/** NET_ADDR and NET_ROUTE families (the kernel's AF_* numbers). */
export const NET_FAMILIES = { INET: 2, INET6: 10 } as const;

/** The file systems MOUNT may ask for: a closed set, so the host cannot have the agent mount anything else. */
export const MOUNT_TYPES = {
  /** source is the virtiofs tag. */
  VIRTIOFS: 1,
  PROC: 2,
  TMPFS: 3,
  /** source is the 9p mount tag (a VM restored from a template: src/vm/template.ts). */
  NINEP: 4,
} as const;

/** Stream numbers of OUTPUT, STDIN credit and WINDOW. */
export const STREAMS = { STDIN: 0, STDOUT: 1, STDERR: 2 } as const;

/** Requests and streams the host sends. */
export const HOST_MESSAGES = {
  HELLO: { tag: 0x01, fields: { version: 'u32' }, replies: ['HELLO_OK'] },
  MOUNT: { tag: 0x02, fields: { fstype: 'u32', source: 'str', target: 'str', flags: 'u32' }, replies: ['OK'] },
  SPAWN: {
    tag: 0x03,
    fields: { root: 'str', cwd: 'str', uid: 'u32', gid: 'u32', flags: 'u32', args: 'strs', env: 'strs' },
    replies: ['SPAWNED'],
  },
  SIGNAL: { tag: 0x04, fields: { proc: 'u32', signal: 'u32', flags: 'u32' }, replies: ['OK'] },
  WAIT: { tag: 0x05, fields: { proc: 'u32' }, replies: ['EXITED'] },
  SHUTDOWN: { tag: 0x06, fields: {}, replies: ['OK'] },
  /** A container: stockade-init runs `plan`; answered at its first hook point or once it is ready. */
  CREATE: { tag: 0x07, fields: { name: 'str', flags: 'u32', plan: 'blob' }, replies: ['HOOK', 'CREATED'] },
  /** After a HOOK: the container goes on (state: the JSON its createContainer hooks read, or empty). */
  CONTINUE: { tag: 0x08, fields: { proc: 'u32', state: 'blob' }, replies: ['HOOK', 'CREATED'] },
  /** A created container runs its process (state: the JSON its startContainer hooks read); OK once it exec'd. */
  START: { tag: 0x09, fields: { proc: 'u32', state: 'blob' }, replies: ['OK'] },
  /** A process in a running container's namespaces and cgroup (an exec plan); CREATED once it exec'd. */
  EXEC: { tag: 0x0a, fields: { container: 'u32', name: 'str', flags: 'u32', plan: 'blob' }, replies: ['CREATED'] },
  /** The pids (in the guest) of every process in a container's cgroup. */
  PIDS: { tag: 0x0b, fields: { proc: 'u32' }, replies: ['PIDS_OK'] },
  /** A container's cgroup statistics. */
  STATS: { tag: 0x0c, fields: { proc: 'u32' }, replies: ['STATS_OK'] },
  /**
   * Limits of a container's cgroup in the guest: pids.max, memory.max, cpu.max (quota and period,
   * in microseconds) and cpu.weight; 0 leaves a limit as it is, U64_MAX writes "max" (no limit).
   */
  UPDATE: {
    tag: 0x0d,
    fields: { proc: 'u32', pidsMax: 'u64', memoryMax: 'u64', cpuQuota: 'u64', cpuPeriod: 'u64', cpuWeight: 'u64' },
    replies: ['OK'],
  },
  /**
   * A container's cgroup in the guest frozen (frozen 1) or thawed (0): a pod's container paused
   * while the pod's VM and its other containers run. OK once cgroup.events says it is (un)frozen.
   */
  FREEZE: { tag: 0x30, fields: { proc: 'u32', frozen: 'u32' }, replies: ['OK'] },
  /**
   * A VM restored from a template is not its template's twin: `seed` (32 to 512 bytes from the
   * host) is credited to the guest's pool and the CRNG reseeded at once (RNDADDENTROPY,
   * RNDRESEEDCRNG), the clock set to the host's (seconds as two u32, nanoseconds), the hostname
   * set. Sent before anything runs in a clone (docs/design/vm-templates.md).
   */
  REFRESH: { tag: 0x0f, fields: { seed: 'bytes', secondsHigh: 'u32', secondsLow: 'u32', nanoseconds: 'u32', hostname: 'str' }, replies: ['OK'] },
  /**
   * The guest's interface whose MAC is `mac` (6 bytes; the virtio-net device the host gave that
   * MAC) renamed to `name`, its MTU set, brought up. The first one loads the network modules
   * (NET_MODULE_ORDER_FILE). The guest's own lo is up from boot.
   */
  NET_LINK: { tag: 0x20, fields: { mac: 'bytes', name: 'str', mtu: 'u32' }, replies: ['OK'] },
  /** An address on the interface `name` (after its NET_LINK): family AF_INET (4 bytes) or AF_INET6 (16 bytes), prefix length. */
  NET_ADDR: { tag: 0x21, fields: { name: 'str', family: 'u32', address: 'bytes', prefix: 'u32' }, replies: ['OK'] },
  /**
   * A route in the main table: to `dst`/`prefix` (empty dst: the default route), through
   * `gateway` (empty: on the link), out of `name` ("" for none), with `metric`; flags:
   * NET_ROUTE_FLAGS.
   */
  NET_ROUTE: {
    tag: 0x22,
    fields: { name: 'str', family: 'u32', dst: 'bytes', prefix: 'u32', gateway: 'bytes', metric: 'u32', flags: 'u32' },
    replies: ['OK'],
  },
  /**
   * A nameserver on a loopback address of the container's network namespace (Docker's embedded
   * DNS at 127.0.0.11) reached from the guest, whose loopback is its own: the agent binds a UDP
   * socket at `address` (4 bytes, in 127.0.0.0/8) and `port`, and passes each datagram to the
   * host as DNS_QUERY; the host asks the namespace's nameserver and sends DNS_ANSWER. At most
   * DNS_LISTENERS of them.
   */
  DNS_LISTEN: { tag: 0x31, fields: { address: 'bytes', port: 'u32' }, replies: ['OK'] },
  /** Stream: the answer to DNS_QUERY `query`, sent to the process that asked from the socket it asked. */
  DNS_ANSWER: { tag: 0x32, fields: { query: 'u32', data: 'bytes' }, stream: true },
  /** Stream: stdin bytes for a process; empty data closes its stdin. */
  STDIN: { tag: 0x10, fields: { proc: 'u32', data: 'bytes' }, stream: true },
  /** Stream: the host took `bytes` more of a process's output stream; the agent may send that much more. */
  WINDOW: { tag: 0x11, fields: { proc: 'u32', stream: 'u32', bytes: 'u32' }, stream: true },
  /** Stream: a terminal's new size (TIOCSWINSZ on the pty master); ignored for a process without one. */
  RESIZE: { tag: 0x12, fields: { proc: 'u32', rows: 'u32', cols: 'u32' }, stream: true },
} as const satisfies Record<string, MessageDef>;

/** Replies and streams the guest sends. */
export const GUEST_MESSAGES = {
  OK: { tag: 0x81, fields: {} },
  ERROR: { tag: 0x82, fields: { err: 'i32', message: 'str' } },
  HELLO_OK: { tag: 0x83, fields: { version: 'u32', kernel: 'str' } },
  SPAWNED: { tag: 0x84, fields: { proc: 'u32', pid: 'u32' } },
  /**
   * code is the exit status, or -1 when the process died of `signal`. oomKills: a container's
   * memory.events oom_kill when its init was reaped (the guest kernel's OOM kills in its cgroup,
   * which no host cgroup sees); 0 for another process.
   */
  EXITED: { tag: 0x85, fields: { proc: 'u32', code: 'i32', signal: 'u32', oomKills: 'u64' } },
  /** The container stopped at a hook point (HOOKF_*); the host runs its hooks and sends CONTINUE. */
  HOOK: { tag: 0x86, fields: { proc: 'u32', pid: 'u32', point: 'u32' } },
  /** A container is ready and waits for START (CREATE), or an exec'd process runs (EXEC); pid in the guest. */
  CREATED: { tag: 0x87, fields: { proc: 'u32', pid: 'u32' } },
  PIDS_OK: { tag: 0x88, fields: { pids: 'u32s' } },
  /** cgroup v2 figures; U64_MAX where the file says "max". */
  STATS_OK: {
    tag: 0x89,
    fields: {
      cpuUsageUsec: 'u64', cpuUserUsec: 'u64', cpuSystemUsec: 'u64',
      memoryCurrent: 'u64', memoryMax: 'u64', memoryAnon: 'u64', memoryFile: 'u64',
      pidsCurrent: 'u64', pidsMax: 'u64',
      /** memory.events oom_kill: the guest kernel's OOM kills in the container's cgroup (appended last). */
      oomKills: 'u64',
    },
  },
  /**
   * Stream: a datagram (1 to DNS_MAX_QUERY bytes) a guest process sent to DNS_LISTEN's socket
   * `listener` (its order, from 0); `query` numbers it for DNS_ANSWER. The agent keeps the last
   * DNS_PENDING queries' senders; an answer to an older one is dropped.
   */
  DNS_QUERY: { tag: 0x92, fields: { listener: 'u32', query: 'u32', data: 'bytes' }, stream: true },
  /** Stream: output of a process; empty data is the end of that stream. */
  OUTPUT: { tag: 0x90, fields: { proc: 'u32', stream: 'u32', data: 'bytes' }, stream: true },
  /** Stream: the agent wrote `bytes` more of a process's stdin; the host may send that much more. */
  WINDOW: { tag: 0x91, fields: { proc: 'u32', stream: 'u32', bytes: 'u32' }, stream: true },
} as const satisfies Record<string, MessageDef>;

export type HostMessageName = keyof typeof HOST_MESSAGES;
export type GuestMessageName = keyof typeof GUEST_MESSAGES;

type FieldValue<K extends FieldKind> =
  K extends 'u32' | 'i32' ? number : K extends 'u64' ? bigint : K extends 'str' ? string : K extends 'bytes' | 'blob' ? Buffer
    : K extends 'strs' ? readonly string[] : K extends 'u32s' ? readonly number[] : never;

type Fields<D extends MessageDef> = { -readonly [F in keyof D['fields']]: D['fields'][F] extends FieldKind ? FieldValue<D['fields'][F]> : never };

/** A decoded or to-be-encoded message: `{ type, id, ...fields }`, a union discriminated by type. */
export type HostMessage = { [N in HostMessageName]: { type: N; id: number } & Fields<(typeof HOST_MESSAGES)[N]> }[HostMessageName];
export type GuestMessage = { [N in GuestMessageName]: { type: N; id: number } & Fields<(typeof GUEST_MESSAGES)[N]> }[GuestMessageName];

export type HostMessageOf<N extends HostMessageName> = Extract<HostMessage, { type: N }>;
export type GuestMessageOf<N extends GuestMessageName> = Extract<GuestMessage, { type: N }>;
