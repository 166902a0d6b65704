// The VM keeper's control socket: the frames the CLI and the keeper exchange, and the requests they carry.
//
//   CLI (create/start/kill/exec/ps/events/update/delete)          keeper (one per vm container)
//     |  REQUEST {op:"start"}                     ------------------->  |  spawns the workload in the guest
//     |  <------------------- REPLY {ok:true} | {ok:false, error}       |
//     |  REQUEST {op:"exec", process}             ------------------->  |  spawns it in the guest
//     |  <------------------- REPLY {ok:true, pid}                       |
//     |  STDIN bytes ... STDIN (empty: end)       ------------------->  |  to the guest process's stdin
//     |  RESIZE {rows, cols}                      ------------------->  |  to its terminal
//     |  <------------------- STDOUT / STDERR bytes ...                  |  credit back to the guest once written
//     |  <------------------- EXIT {code, signal}                        |  then the keeper closes the connection
//
// One request per connection. The socket is the keeper's, 0600 in the container's state directory
// (root's alone): only the runtime reaches it. The keeper still checks every frame, as any server
// on a socket should: a bad frame ends that connection and nothing else.
import { StockadeError } from '../errors';
import type { Process, Spec } from '../oci/spec';
import type { Template } from './template';
import type { GuestLimitsWire } from './sizing';
import type { GuestAssets } from './assets';
import type { VmBind } from './vm';

/** The keeper's socket in the container's state directory. */
export const KEEPER_SOCKET = 'vm.sock';
/** Where the keeper writes what it says about itself (the workload has its stdio). */
export const KEEPER_LOG = 'keeper.log';
/** Written by the keeper once the workload was started: the status is `running` from then on. */
export const KEEPER_STARTED = 'vm.started';
/**
 * Written by the pod's sandbox keeper while a pod's container is frozen in the guest (pause; its
 * own keeper, on the host, runs on): the status is `paused` while it exists.
 */
export const KEEPER_PAUSED = 'vm.paused';
/** Written by the keeper once the workload exited (its status, as JSON), before the VM is torn down. */
export const KEEPER_EXITED = 'vm.exited';
/** The VM's host side, for a delete that finds the keeper gone: {runDir, vmmUid}. */
export const KEEPER_VM = 'vm.json';
/**
 * The interfaces whose traffic the VM took, in a network namespace joined by path (which outlives
 * the keeper): {netns, interfaces}. delete takes the redirects off them when the keeper could not.
 */
export const KEEPER_NET = 'vm.net.json';

export const FRAME = { REQUEST: 1, REPLY: 2, STDIN: 3, STDOUT: 4, STDERR: 5, EXIT: 6, RESIZE: 7 } as const;
export type FrameKind = (typeof FRAME)[keyof typeof FRAME];
const KINDS = new Set<number>(Object.values(FRAME));

/** A frame's payload at most: stdio is cut into chunks below this. */
export const MAX_FRAME = 1 << 20;
const HEADER = 5;

export interface Frame {
  readonly kind: FrameKind;
  readonly payload: Buffer;
}

export function encodeFrame(kind: FrameKind, payload: Buffer | string | object): Buffer {
  const body = Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
  if (body.length > MAX_FRAME) throw new RangeError(`keeper frame of ${body.length} bytes is over ${MAX_FRAME}`);
  const h = Buffer.alloc(HEADER);
  h.writeUInt8(kind, 0);
  h.writeUInt32BE(body.length, 1);
  return Buffer.concat([h, body]);
}

/**
 * Splits a byte stream into frames; throws on an unknown kind or an oversized length, from the
 * header alone (nothing is buffered for such a frame). Once out of step it refuses everything
 * after: a stream that broke once is not read on from a guess.
 */
export class FrameReader {
  #buf: Buffer = Buffer.alloc(0);
  #broken: StockadeError | undefined;
  push(chunk: Buffer): Frame[] {
    if (this.#broken !== undefined) throw this.#broken;
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: Frame[] = [];
    while (this.#buf.length >= HEADER) {
      const kind = this.#buf.readUInt8(0);
      const len = this.#buf.readUInt32BE(1);
      if (!KINDS.has(kind)) this.#break(`vm keeper: unknown frame kind ${kind}`);
      if (len > MAX_FRAME) this.#break(`vm keeper: frame of ${len} bytes is over ${MAX_FRAME}`);
      if (this.#buf.length < HEADER + len) break;
      out.push({ kind: kind as FrameKind, payload: this.#buf.subarray(HEADER, HEADER + len) });
      this.#buf = this.#buf.subarray(HEADER + len);
    }
    return out;
  }
  /** Bytes held for a frame not yet whole. */
  get buffered(): number {
    return this.#buf.length;
  }
  #break(why: string): never {
    this.#buf = Buffer.alloc(0);
    this.#broken = new StockadeError('SYSTEM', why);
    throw this.#broken;
  }
}


/**
 * A pod's later container, asked of its sandbox's keeper (which holds the pod's VM) by the
 * container's own keeper (pod-member.ts). The connection then carries its stdio and its EXIT.
 */
export interface PodMemberRequest {
  readonly id: string;
  readonly stateDir: string;
  readonly bundle: string;
  readonly spec: Spec;
  readonly rootfs: string;
  readonly readonlyRoot: boolean;
  readonly binds: readonly { readonly source: string; readonly readonly: boolean }[];
  readonly noPivot: boolean;
  readonly noNewKeyring: boolean;
  /** The namespaces it joins of the sandbox's (the sandbox's init's in the guest). */
  readonly joinPod: readonly PodNamespace[];
}

export const POD_NAMESPACES = ['ipc', 'uts', 'pid', 'cgroup'] as const;
export type PodNamespace = (typeof POD_NAMESPACES)[number];

/** Requests about one container: the keeper's own, or with `container` a container of its pod (its id). */
export type KeeperRequest = ContainerRequest & { readonly container?: string | undefined }
  | { readonly op: 'pod-create'; readonly member: PodMemberRequest; readonly container?: undefined };

type ContainerRequest =
  | { readonly op: 'start' }
  /** To the workload, or with `all` to it and every exec'd process, or to the exec'd process of guest pid `pid`. */
  | { readonly op: 'signal'; readonly signal: number; readonly all: boolean; readonly pid?: number | undefined }
  | { readonly op: 'exec'; readonly process: Process }
  | { readonly op: 'pids' }
  | { readonly op: 'stats' }
  /** A pod's container frozen or thawed in the guest (the pod's VM and its other containers run on). */
  | { readonly op: 'pause' }
  | { readonly op: 'resume' }
  /** Limits of the container's cgroup in the guest: decimal strings, 2^64-1 for "max" (GuestLimitsWire). */
  | { readonly op: 'update'; readonly limits: GuestLimitsWire }
  /**
   * The VM's RAM moved to `mib` through its balloon (balloon.ts), at most its boot size: answered
   * with the RAM the guest has after (`memoryMiB`), or without it where there is no balloon to
   * move (a clone, a pod's VM, a pod's container).
   */
  | { readonly op: 'memory'; readonly mib: number };

export type KeeperReply =
  | { readonly ok: true; readonly pid?: number; readonly pids?: number[]; readonly stats?: GuestStats; readonly memoryMiB?: number }
  | { readonly ok: false; readonly error: string };

/** What the guest says of the container's use: its cgroup there (numbers as decimal strings: JSON has no bigint). */
export interface GuestStats {
  readonly cpuUsageUsec: string;
  readonly cpuUserUsec: string;
  readonly cpuSystemUsec: string;
  readonly memoryCurrent: string;
  readonly memoryMax: string;
  readonly memoryAnon: string;
  readonly memoryFile: string;
  readonly pidsCurrent: string;
  readonly pidsMax: string;
  readonly oomKills: string;
}

export interface WireExit {
  readonly code: number | null;
  readonly signal: number | null;
}

function isStringArray(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((s) => typeof s === 'string');
}

function uint(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;
}

const LIMIT_FIELDS: ReadonlySet<string> = new Set(['pidsMax', 'memoryMax', 'cpuQuota', 'cpuPeriod', 'cpuWeight']);

const MEMBER_ID = /^[A-Za-z0-9][A-Za-z0-9_.+-]{0,1023}$/;

function parseMember(v: unknown): PodMemberRequest {
  const m = v as Record<string, unknown> | null;
  const bad = (field: string): never => {
    throw new StockadeError('USAGE', `vm keeper: pod-create: member.${field}`);
  };
  if (typeof m !== 'object' || m === null) return bad('(an object)');
  if (typeof m['id'] !== 'string' || !MEMBER_ID.test(m['id'])) bad('id');
  for (const f of ['stateDir', 'bundle', 'rootfs'] as const) if (typeof m[f] !== 'string' || !(m[f] as string).startsWith('/')) bad(f);
  if (typeof m['spec'] !== 'object' || m['spec'] === null) bad('spec');
  for (const f of ['readonlyRoot', 'noPivot', 'noNewKeyring'] as const) if (typeof m[f] !== 'boolean') bad(f);
  const binds = m['binds'];
  if (!Array.isArray(binds) || !binds.every((b: unknown) => typeof b === 'object' && b !== null
    && typeof (b as Record<string, unknown>)['source'] === 'string' && typeof (b as Record<string, unknown>)['readonly'] === 'boolean')) bad('binds');
  const join = m['joinPod'];
  if (!Array.isArray(join) || !join.every((t: unknown) => (POD_NAMESPACES as readonly unknown[]).includes(t))) bad('joinPod');
  return m as unknown as PodMemberRequest;
}

/** A request as it came off the socket, checked field by field. */
export function parseRequest(payload: Buffer): KeeperRequest {
  let v: unknown;
  try {
    v = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new StockadeError('USAGE', 'vm keeper: a request that is not JSON');
  }
  if (typeof v !== 'object' || v === null) throw new StockadeError('USAGE', 'vm keeper: a request that is not an object');
  const r = v as Record<string, unknown>;
  if (r['op'] === 'pod-create') return { op: 'pod-create', member: parseMember(r['member']) };
  const c = r['container'];
  if (c !== undefined && (typeof c !== 'string' || !MEMBER_ID.test(c))) throw new StockadeError('USAGE', 'vm keeper: container: a container id');
  const req = parseContainerRequest(r);
  return c === undefined ? req : { ...req, container: c };
}

/** A container's request, from the object parseRequest checked is one. */
function parseContainerRequest(r: Record<string, unknown>): ContainerRequest {
  switch (r['op']) {
    case 'start':
    case 'pids':
    case 'stats':
    case 'pause':
    case 'resume':
      return { op: r['op'] };
    case 'signal':
      if (!uint(r['signal']) || r['signal'] < 1 || r['signal'] > 64) throw new StockadeError('USAGE', 'vm keeper: signal: a number from 1 to 64');
      if (r['pid'] !== undefined && !uint(r['pid'])) throw new StockadeError('USAGE', 'vm keeper: signal: pid: a number');
      return { op: 'signal', signal: r['signal'], all: r['all'] === true, pid: r['pid'] as number | undefined };
    case 'update': {
      const l = r['limits'];
      if (typeof l !== 'object' || l === null || Array.isArray(l)) throw new StockadeError('USAGE', 'vm keeper: update: limits: an object');
      const limits: Record<string, string> = {};
      for (const [k, v] of Object.entries(l as Record<string, unknown>)) {
        if (!LIMIT_FIELDS.has(k)) throw new StockadeError('USAGE', `vm keeper: update: limits: unknown field ${JSON.stringify(k)}`);
        // A u64 in decimal, not 0 (which the agent reads as "leave it").
        if (typeof v !== 'string' || !/^[1-9]\d{0,19}$/.test(v) || BigInt(v) >= 1n << 64n) throw new StockadeError('USAGE', `vm keeper: update: limits.${k}: a decimal number from 1 to 2^64-1`);
        limits[k] = v;
      }
      return { op: 'update', limits };
    }
    case 'memory':
      if (!uint(r['mib']) || r['mib'] < 1 || r['mib'] > 65536) throw new StockadeError('USAGE', 'vm keeper: memory: mib: a number from 1 to 65536');
      return { op: 'memory', mib: r['mib'] };
    case 'exec': {
      // The runtime built it from a validated config and exec's flags; its shape is checked here,
      // its meaning by buildExecPlan, as for an exec at any level.
      const p = r['process'] as Record<string, unknown> | undefined;
      if (typeof p !== 'object' || p === null) throw new StockadeError('USAGE', 'vm keeper: exec: no process');
      if (!isStringArray(p['args']) || p['args'].length === 0) throw new StockadeError('USAGE', 'vm keeper: exec: process.args: a non-empty list of strings');
      if (p['env'] !== undefined && !isStringArray(p['env'])) throw new StockadeError('USAGE', 'vm keeper: exec: process.env: a list of strings');
      if (typeof p['cwd'] !== 'string' || !p['cwd'].startsWith('/')) throw new StockadeError('USAGE', 'vm keeper: exec: process.cwd: an absolute path');
      const u = p['user'] as Record<string, unknown> | undefined;
      if (typeof u !== 'object' || u === null || !uint(u['uid']) || !uint(u['gid'])) throw new StockadeError('USAGE', 'vm keeper: exec: process.user: uid and gid');
      return { op: 'exec', process: p as unknown as Process };
    }
    default:
      throw new StockadeError('USAGE', `vm keeper: unknown request ${JSON.stringify(r['op'])}`);
  }
}

/** The keeper's configuration, as JSON on fd KEEPER_CONFIG_FD (not its command line, which every user can read: the environment is in it). */
/** The vm pool's directory under a state root (pool.ts; no state.json, so `list` does not take it for a container). */
export const POOL_DIR = '.vm-pool';

export interface KeeperConfig {
  readonly id: string;
  /** The container's state directory: the keeper's socket, log and marks go there. */
  readonly stateDir: string;
  /** The state root (--root): the compiled seccomp filters' cache is below it. */
  readonly stateRoot: string;
  readonly bundle: string;
  /** The config, as the driver's prepare() returned it: the plan for the guest is built from it. */
  readonly spec: Spec;
  readonly noPivot: boolean;
  readonly noNewKeyring: boolean;
  /** How the guest's stockade-init builds the root (`bind`, or do's `recursive-readonly`). */
  readonly rootfsMode: 'bind' | 'recursive-readonly' | 'overlay';
  readonly rootfs: string;
  readonly readonlyRoot: boolean;
  /** Host paths the container's bind mounts name: shared with the VM at boot. */
  readonly binds: readonly VmBind[];
  readonly memoryMiB: number;
  readonly cpus: number;
  /** Cgroup directories the keeper joins before it starts QEMU and virtiofsd (they inherit them). */
  readonly cgroupPaths: readonly string[];
  /** Where the host pty's master goes (runc's --console-socket), for a terminal process. */
  readonly consoleSocket?: string | undefined;
  readonly bootTimeoutMs?: number | undefined;
  readonly debug?: boolean | undefined;
  /** Why the VM boots cold (the driver's chooseTemplate found no template for it); absent: from the template. */
  readonly coldBecause?: string | undefined;
  /** The template the driver chose (checked, its memory held): the keeper restores from it without choosing again. */
  readonly template?: Template | undefined;
  /**
   * A warmed VM of `template` the driver claimed from the state root's pool (its entry's
   * directory, pool.ts): taken over instead of restoring one; a clone is restored when it cannot be had.
   */
  readonly pooled?: string | undefined;
  /** What `stockade do` asks of the guest's stockade-init: an init in front of the command, its deadline, the overlay root's tmpfs. */
  readonly sandbox?: {
    readonly init: boolean;
    readonly timeout?: { readonly timeoutMs: number; readonly graceMs: number } | undefined;
    readonly overlayTmpfs?: string | undefined;
  } | undefined;
  /**
   * The guest's kernel and initramfs, found (and on first use fetched) by create in the host's
   * network namespace: the keeper's is the container's, where the kernel package's mirror may be
   * out of reach.
   */
  readonly assets?: GuestAssets | undefined;
  /** No command runs: stockade-init's init holds the container open for exec (SandboxOptions.hold). */
  readonly hold?: boolean | undefined;
  /**
   * Tied to the program that made it (the SDK's sandbox, SandboxOptions.tiedTo): fd KEEPER_TIE_FD
   * is the read end of a pipe whose write end only that program holds. Its end (the program died,
   * even by SIGKILL) ends the container: the VM torn down, the keeper gone.
   */
  readonly tied?: boolean | undefined;
  /** A pod's later container: made in the VM of its sandbox's keeper (pod-member.ts), not in one of its own. */
  readonly pod?: PodMembership | undefined;
}

export interface PodMembership {
  /** The sandbox's id and state directory (its keeper's socket). */
  readonly sandboxId: string;
  readonly sandboxDir: string;
  readonly joinPod: readonly PodNamespace[];
}

/** The keeper's fd on which it says it is ready ("ok PID\n") or why it is not ("error MESSAGE\n"), then closes. */
export const KEEPER_STATUS_FD = 3;
/** The keeper reads its configuration from this fd, to its end. */
export const KEEPER_CONFIG_FD = 4;
/** With KeeperConfig.tied: the pipe whose end says the program that made the container is gone. */
export const KEEPER_TIE_FD = 5;
