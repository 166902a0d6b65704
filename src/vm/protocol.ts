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
//        |  ------------------ SHUTDOWN ------------------->  |  kill everything, sync, reboot(2)
//        |  <----------------------- OK -------------------  |  QEMU exits (-no-reboot)
//
// Every frame is [u32 tag][u32 id][u32 length][payload], little endian. A request carries an id
// the host chose (non-zero) and gets exactly one reply with that id: one of its `replies`, or
// ERROR. Stream messages carry id 0 and get no reply. Payload fields follow in the order written
// here: u32/i32 are 4 bytes; `str` is [u32 length][bytes][NUL] (the length excludes the NUL, and
// the bytes hold no NUL), so C reads it in place; `bytes` is [u32 length][bytes]; `strs` is
// [u32 count] then that many `str`. A payload must be consumed exactly.
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

export type FieldKind = 'u32' | 'i32' | 'str' | 'bytes' | 'strs';

export interface MessageDef {
  readonly tag: number;
  /** Fields in wire order (object key order). */
  readonly fields: Readonly<Record<string, FieldKind>>;
  /** For requests: the messages (besides ERROR) that may answer it. Absent for stream messages. */
  readonly replies?: readonly string[];
  /** A stream message: id 0, no reply. */
  readonly stream?: true;
}

export const AGENT_PROTOCOL_VERSION = 1;

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
} as const;

/** SPAWN flags. */
export const SPAWN_FLAGS = {
  /** Give the process a stdin pipe (otherwise /dev/null). */
  STDIN: 1,
} as const;

/** MOUNT flags. */
export const MOUNT_FLAGS = {
  RDONLY: 1,
} as const;

/** The file systems MOUNT may ask for: a closed set, so the host cannot have the agent mount anything else. */
export const MOUNT_TYPES = {
  /** source is the virtiofs tag. */
  VIRTIOFS: 1,
  PROC: 2,
  TMPFS: 3,
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
  SIGNAL: { tag: 0x04, fields: { proc: 'u32', signal: 'u32' }, replies: ['OK'] },
  WAIT: { tag: 0x05, fields: { proc: 'u32' }, replies: ['EXITED'] },
  SHUTDOWN: { tag: 0x06, fields: {}, replies: ['OK'] },
  /** Stream: stdin bytes for a process; empty data closes its stdin. */
  STDIN: { tag: 0x10, fields: { proc: 'u32', data: 'bytes' }, stream: true },
  /** Stream: the host took `bytes` more of a process's output stream; the agent may send that much more. */
  WINDOW: { tag: 0x11, fields: { proc: 'u32', stream: 'u32', bytes: 'u32' }, stream: true },
} as const satisfies Record<string, MessageDef>;

/** Replies and streams the guest sends. */
export const GUEST_MESSAGES = {
  OK: { tag: 0x81, fields: {} },
  ERROR: { tag: 0x82, fields: { err: 'i32', message: 'str' } },
  HELLO_OK: { tag: 0x83, fields: { version: 'u32', kernel: 'str' } },
  SPAWNED: { tag: 0x84, fields: { proc: 'u32', pid: 'u32' } },
  /** code is the exit status, or -1 when the process died of `signal`. */
  EXITED: { tag: 0x85, fields: { proc: 'u32', code: 'i32', signal: 'u32' } },
  /** Stream: output of a process; empty data is the end of that stream. */
  OUTPUT: { tag: 0x90, fields: { proc: 'u32', stream: 'u32', data: 'bytes' }, stream: true },
  /** Stream: the agent wrote `bytes` more of a process's stdin; the host may send that much more. */
  WINDOW: { tag: 0x91, fields: { proc: 'u32', stream: 'u32', bytes: 'u32' }, stream: true },
} as const satisfies Record<string, MessageDef>;

export type HostMessageName = keyof typeof HOST_MESSAGES;
export type GuestMessageName = keyof typeof GUEST_MESSAGES;

type FieldValue<K extends FieldKind> =
  K extends 'u32' | 'i32' ? number : K extends 'str' ? string : K extends 'bytes' ? Buffer : K extends 'strs' ? readonly string[] : never;

type Fields<D extends MessageDef> = { -readonly [F in keyof D['fields']]: D['fields'][F] extends FieldKind ? FieldValue<D['fields'][F]> : never };

/** A decoded or to-be-encoded message: `{ type, id, ...fields }`, a union discriminated by type. */
export type HostMessage = { [N in HostMessageName]: { type: N; id: number } & Fields<(typeof HOST_MESSAGES)[N]> }[HostMessageName];
export type GuestMessage = { [N in GuestMessageName]: { type: N; id: number } & Fields<(typeof GUEST_MESSAGES)[N]> }[GuestMessageName];

export type HostMessageOf<N extends HostMessageName> = Extract<HostMessage, { type: N }>;
export type GuestMessageOf<N extends GuestMessageName> = Extract<GuestMessage, { type: N }>;
