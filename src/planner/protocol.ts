// The closed set of frames between the C front (native/light/planner.c) and the resident planner
// (server.ts), over the unix socket <root>/planner.sock. Written once here; C reads the numbers
// from the generated native/include/stockade-abi.h (src/tools/gen-header.ts).
//
//   front                                   planner
//     | connect; SO_PEERCRED both ways        |
//     |<------------------ HELLO build, host --|  the front compares both with its own;
//     |-- QUIT (older build) ---------------->|  an older planner goes, a new one is started
//     |-- REQUEST cwd umask cgroup argv env ->|  cgroup: the front's /proc/self/cgroup
//     |<----------------------------- COLD ---|  nothing done: the front runs Node itself
//     |<--------------- OUT / ERR bytes ------|  the front writes them to its fd 1 / 2
//     |<------- UNDO id ----------------------|  the id is taken: were the planner lost, the
//     |                                       |  cold path deletes it before doing the call
//     |<---- SPAWN preserve planFd syncFd path|  the front forks stockade-init with its own fds
//     |-- SPAWNED pid | SPAWN_FAILED errno -->|
//     |<------------------------- PLAN bytes -|  written to init's plan pipe, which is closed
//     |<-> SYNC bytes, SYNC_EOF, SYNC_CLOSE <->|  the sync channel, relayed by the front
//     |-- EXIT code signal ------------------>|  stockade-init ended (and is reaped, as Node reaps)
//     |<---------------- THEN path args... ---|  what finishes a run once it started, were the
//     |                                       |  planner lost after START (none: exit 0)
//     |<------------- START socket hookState -|  the front itself releases the workload (the
//     |-- STARTED errno init's bytes -------->|  commit point stays in the front)
//     |<------------------------- RELAY on ---|  signals the front gets go to the planner
//     |-- SIGNAL n -------------------------->|
//     |<---------------- WAIT path args... ---|  the front becomes stockade-light's wait
//     |<------------------------- DONE code --|  the front exits with it
//     |<--------------------------- STDIN ----|  update --resources -: the caller's stdin is
//     |-- STDIN_DATA bytes ... -------------->|  read by the front to its end and sent on;
//     |-- STDIN_END errno ------------------->|  0, or the read's errno (as Node's read saw it)
//
//   The caller's identity, for what a call takes from its own process (`do`'s id and tie, a terminal):
//     |-- CALLER pid ttys ------------------->|  sent before REQUEST: the front's pid, and which of
//     |                                       |  its fds 0..2 are terminals
//     |<-------------- TTY (+ pty master fd) -|  the front relays the caller's terminal and the
//     |                                       |  master (SCM_RIGHTS with the frame) in raw mode
//     |-- TTY_ENDED ------------------------->|  the master's output is read to its end
//     |<------------------------ TTY_STOP ----|  the relay stops; the caller's terminal restored
//
//   A container's supervisor (the sentry and its watch, a VM's keeper, a detached exec's stand-in)
//   is started by the front too, so that it stays a descendant of the CLI call:
//     |<---------- FD (one fd, SCM_RIGHTS) ---|  taken in order; SPAWN puts those it holds after syncFd
//     |<-- SUPERVISE flags map argc argv env -|  the front forks and execs it, fds as the map says
//     |-- SUPERVISED pid | SUPERVISE_FAILED ->|
//     |-- SUPERVISOR_EXIT pid code signal --->|  it ended; the front reaped it
//     |<-------------- RELEASE path bytes ----|  a VM's keeper told `start` by the front (the commit
//     |-- STARTED errno reply -------------->|  point), as START does for stockade-init
//
// Each frame: u32 little-endian length of what follows, u8 type, payload.

/** Frames the front sends. */
export const TO_PLANNER = {
  REQUEST: 1,
  SPAWNED: 2,
  SPAWN_FAILED: 3,
  SYNC: 4,
  SYNC_EOF: 5,
  EXIT: 6,
  SIGNAL: 7,
  WAIT_FAILED: 8,
  QUIT: 9,
  STARTED: 10,
  CALLER: 20,
  TTY_ENDED: 21,
  // Numbered apart from the others' additions: several branches add frames at once.
  STDIN_DATA: 16,
  STDIN_END: 17,
  SUPERVISED: 24,
  SUPERVISE_FAILED: 25,
  SUPERVISOR_EXIT: 26,
} as const;

/** Frames the planner sends. */
export const TO_FRONT = {
  HELLO: 32,
  COLD: 33,
  OUT: 34,
  ERR: 35,
  SPAWN: 36,
  PLAN: 37,
  SYNC: 38,
  SYNC_CLOSE: 39,
  WAIT: 40,
  RELAY: 41,
  DONE: 42,
  UNDO: 43,
  START: 44,
  THEN: 45,
  TTY: 56,
  TTY_STOP: 57,
  FD: 60,
  SUPERVISE: 61,
  RELEASE: 62,
  STDIN: 63,
} as const;

/** SUPERVISE's flags. */
export const SUPERVISE_SETSID = 1;
/** SUPERVISE's fd map: /dev/null, or the front's own fd of that number (the caller's); n >= 0 is the n-th FD it took. */
export const SUPERVISE_FD_NULL = -1;
export const SUPERVISE_FD_OWN = -2;

/** The planner's socket in the state root: a dot name, as no container's id may be (`list` and clean-ups pass it by).
 *  The one planner of a root holds an exclusive flock on the root directory itself. */
export const PLANNER_SOCKET = '.planner.sock';
/** Set by the front for the planner it starts: the state root it serves. */
export const PLANNER_SERVE_ENV = 'STOCKADE_PLANNER_SERVE';
/** Set by the front when its planner was lost after UNDO: the container id the cold path deletes first. */
export { PLANNER_LOST_ENV } from '../cli/planner-lost';
/** The largest frame either side accepts (a plan with a large seccomp program fits many times). */
export const FRAME_MAX = 16 << 20;

export type FrontFrame =
  | { type: 'request'; cwd: string; umask: number; cgroup: string; argv: string[]; env: string[] }
  | { type: 'spawned'; pid: number }
  | { type: 'spawn-failed'; errno: number }
  | { type: 'sync'; data: Buffer }
  | { type: 'sync-eof' }
  | { type: 'exit'; code: number | null; signal: number | null }
  | { type: 'signal'; signal: number }
  | { type: 'wait-failed'; errno: number }
  | { type: 'quit' }
  /** errno of the connect (0: it connected, and `data` is all stockade-init said until it closed). */
  | { type: 'started'; errno: number; data: Buffer }
  /** ttys: bit N set when the front's fd N (0..2) is a terminal. */
  | { type: 'caller'; pid: number; ttys: number }
  | { type: 'tty-ended' }
  | { type: 'stdin-data'; data: Buffer }
  /** errno 0: the caller's stdin was read to its end. */
  | { type: 'stdin-end'; errno: number }
  | { type: 'supervised'; pid: number }
  | { type: 'supervise-failed'; errno: number }
  | { type: 'supervisor-exit'; pid: number; code: number | null; signal: number | null };

export function frame(type: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32LE(payload.length + 1, 0);
  head.writeUInt8(type, 4);
  return Buffer.concat([head, payload]);
}

export function i32s(...values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeInt32LE(v, i * 4));
  return b;
}

/** NUL-terminated strings, as C lays out argv. */
export function strings(list: readonly string[]): Buffer {
  return Buffer.concat(list.map((s) => Buffer.from(`${s}\0`)));
}

function splitStrings(b: Buffer): string[] {
  const out: string[] = [];
  let at = 0;
  while (at < b.length) {
    const end = b.indexOf(0, at);
    if (end < 0) throw new Error('planner protocol: a string without its NUL');
    out.push(b.subarray(at, end).toString());
    at = end + 1;
  }
  return out;
}

function decode(type: number, p: Buffer): FrontFrame {
  const int = (i: number): number => {
    if (p.length < (i + 1) * 4) throw new Error(`planner protocol: frame ${type} too short`);
    return p.readInt32LE(i * 4);
  };
  switch (type) {
    case TO_PLANNER.REQUEST: {
      // cwd, umask (octal), the caller's /proc/self/cgroup, argc, argv..., env...
      const [cwd, umask, cgroup, argc, ...rest] = splitStrings(p);
      const n = Number(argc);
      if (cwd === undefined || umask === undefined || cgroup === undefined || !Number.isInteger(n) || n < 0 || n > rest.length) throw new Error('planner protocol: malformed request');
      return { type: 'request', cwd, umask: parseInt(umask, 8), cgroup, argv: rest.slice(0, n), env: rest.slice(n) };
    }
    case TO_PLANNER.SPAWNED: return { type: 'spawned', pid: int(0) };
    case TO_PLANNER.SPAWN_FAILED: return { type: 'spawn-failed', errno: int(0) };
    case TO_PLANNER.SYNC: return { type: 'sync', data: Buffer.from(p) };
    case TO_PLANNER.SYNC_EOF: return { type: 'sync-eof' };
    case TO_PLANNER.EXIT: {
      const code = int(0);
      const signal = int(1);
      return { type: 'exit', code: signal > 0 ? null : code, signal: signal > 0 ? signal : null };
    }
    case TO_PLANNER.SIGNAL: return { type: 'signal', signal: int(0) };
    case TO_PLANNER.WAIT_FAILED: return { type: 'wait-failed', errno: int(0) };
    case TO_PLANNER.QUIT: return { type: 'quit' };
    case TO_PLANNER.STARTED: return { type: 'started', errno: int(0), data: Buffer.from(p.subarray(4)) };
    case TO_PLANNER.CALLER: return { type: 'caller', pid: int(0), ttys: int(1) };
    case TO_PLANNER.TTY_ENDED: return { type: 'tty-ended' };
    case TO_PLANNER.STDIN_DATA: return { type: 'stdin-data', data: Buffer.from(p) };
    case TO_PLANNER.STDIN_END: return { type: 'stdin-end', errno: int(0) };
    case TO_PLANNER.SUPERVISED: return { type: 'supervised', pid: int(0) };
    case TO_PLANNER.SUPERVISE_FAILED: return { type: 'supervise-failed', errno: int(0) };
    case TO_PLANNER.SUPERVISOR_EXIT: {
      const signal = int(2);
      return { type: 'supervisor-exit', pid: int(0), code: signal > 0 ? null : int(1), signal: signal > 0 ? signal : null };
    }
    default: throw new Error(`planner protocol: unknown frame type ${type}`);
  }
}

/** Cuts a byte stream from the front into frames. */
export class FrameReader {
  #buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): FrontFrame[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: FrontFrame[] = [];
    while (this.#buf.length >= 5) {
      const len = this.#buf.readUInt32LE(0);
      if (len < 1 || len > FRAME_MAX) throw new Error(`planner protocol: frame length ${len}`);
      if (this.#buf.length < 4 + len) break;
      out.push(decode(this.#buf.readUInt8(4), this.#buf.subarray(5, 4 + len)));
      this.#buf = this.#buf.subarray(4 + len);
    }
    return out;
  }
}
