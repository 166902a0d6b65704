// The interface every isolation level implements: each verb of the lifecycle goes through a
// level's driver, and the lifecycle never asks which level a container runs at.
//
// The lifecycle (src/container/{create,start,kill,delete,pause,update,ps,events,query,exec}.ts)
// keeps what is the same at every level: the container's lock, the status table (status.ts), the
// hooks the runtime runs itself, the pid file, the state record and the container's cgroups. A
// driver does the rest, for its own kind of workload: a host process (namespaces), a host process
// whose syscalls a sentry serves (sentry), or a process in a microVM whose agent acts for the host
// (vm). The registry (src/levels/) names the levels and loads their drivers; the lifecycle
// receives it as `Levels`, so it imports no level.
//
// A container's state.json names its level (`level`) and keeps the driver's own data
// (`levelData`: Workload.data at create, handed back as LevelContainer.data); a record older than
// these fields has `isolation` instead, read as the level of that name with no data.
import type { InitProcess } from '../native/launcher';
import type { CgroupManager, Stats, Warn } from '../cgroups';
import type { Process, Resources, Spec } from '../oci/spec';
import type { ContainerId } from './id';
import type { MountIdmap, PlanOptions } from './plan';
import type { ContainerRecord, StateStore } from './state-store';
import type { Status } from './status';

/** How a process ended: a code, or the signal that killed it (as Node's ChildProcess says it). */
export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One container, as every verb after create hands it to its driver. */
export interface LevelContainer {
  readonly store: StateStore;
  readonly id: ContainerId;
  /**
   * The container's record as read under its lock (or without one, for state, list, ps and
   * events, which take none): pid, cgroupPaths, ownPidNamespace, ... as create recorded them.
   */
  readonly record: Readonly<ContainerRecord>;
  /**
   * What this driver's create returned as `Workload.data`, kept in the record as `levelData`
   * (JSON: it went through JSON.stringify and back); only this driver reads it. Undefined when
   * there was none, and for a record older than the field.
   */
  readonly data: unknown;
}

/** What create asks of a driver: plan() gets it before the id is taken, CreatePlan.create() makes it. */
export interface CreateRequest {
  readonly store: StateStore;
  readonly id: ContainerId;
  /** The bundle, absolute. */
  readonly bundle: string;
  /** The config to run, as the driver's prepare() returned it; the stored config.json is this one. */
  readonly spec: Spec;
  /** The container's cgroups (undefined: none asked), made by the lifecycle before CreatePlan.create(): the driver places its workload in them. */
  readonly cgroups: CgroupManager | undefined;
  readonly consoleSocket: string | undefined;
  readonly preserveFds: number;
  readonly noPivot: boolean;
  readonly noNewKeyring: boolean;
  /** This process waits for the workload (run, do): `Workload.exit` settles with its exit status. */
  readonly monitor: boolean;
  readonly rootfsMode: PlanOptions['rootfsMode'];
  /** What `stockade do` asks beyond a config (undefined for create and run). */
  readonly sandbox: SandboxOptions | undefined;
  /** True when the config has createRuntime or createContainer hooks: the driver calls createHooks() once the workload is at that point. */
  readonly hasCreateHooks: boolean;
  /**
   * Runs the runtime's create hooks (prestart, createRuntime); rejects with their failure.
   * Resolves with the state JSON the container's own createContainer hooks are fed from inside
   * (undefined: it has none).
   */
  createHooks(): Promise<Buffer | undefined>;
  /**
   * The driver reports the host process that stands for the workload as soon as there is one,
   * before anything that can fail after it: the lifecycle records it (state's `pid`, the pid file,
   * the signals `run` forwards) so a failed create can be cleaned up. At namespaces and sentry it
   * is the container's init; at vm, the local process that relays signals and stdio and exits
   * with the workload's status.
   */
  onPid(pid: number): void;
  readonly debug: ((msg: string) => void) | undefined;
  readonly warn: Warn | undefined;
}

/** A create the driver has planned: the lifecycle has taken the id, written the record and made the cgroups when it calls create(). */
export interface CreatePlan {
  /**
   * Makes the workload, stopped before its program runs (created). On failure it has stopped
   * what it started itself; the lifecycle then SIGKILLs the pid reported through onPid, removes
   * the cgroups and the state directory, and runs the poststop hooks.
   */
  create(): Promise<Workload>;
}

export interface SandboxOptions {
  /** An init in front of the command (stockade-init's TAG_INIT). */
  init: boolean;
  /** The container dies with this process (TAG_TIED; it must be the workload's parent, this one). */
  tiedTo?: number | undefined;
  /** false: the environment given to the process is kept off disk (the stored config has none). */
  envOnDisk: boolean;
  /** Options of the tmpfs an overlay root (--rw) keeps its writes on (size=...). */
  overlayTmpfs?: string | undefined;
  /** The init ends the process at timeoutMs, everything graceMs later, and exits with 124. */
  timeout?: { timeoutMs: number; graceMs: number } | undefined;
  /** Binds id-mapped by destination (a --bind :rw written with the caller's ownership): uid and gid map lines. */
  idmaps?: ReadonlyMap<string, MountIdmap> | undefined;
  /** Every bind source is a path the caller resolved and checked (do's --bind): mounted only if no symlink is on it now. */
  resolvedBinds?: boolean | undefined;
  /**
   * No command runs: the init holds the container open for the processes exec'd into it (the
   * SDK's sandboxes), its stdio /dev/null; needs init. process.args is then never executed.
   */
  hold?: boolean | undefined;
}

/** A created container's workload, as create returns it to its caller (create, run, do). */
export interface Workload {
  /** The pid reported through onPid. */
  readonly pid: number;
  /** The driver's own data, kept in the record as `levelData` (JSON); undefined: none. */
  readonly data: unknown;
  /**
   * In monitor mode, this process's child whose exit is the workload's: `run` and `do` hand it to
   * stockade-light's wait (light-wait.ts) at a level whose registry entry allows the light entry.
   */
  readonly monitor: InitProcess | undefined;
  /** In monitor mode, settles with the workload's exit status; otherwise once create's own helper is done. */
  readonly exit: Promise<ExitStatus>;
  /** Settles once everything this process started for the container has stopped (`run` waits for it after delete). */
  readonly done: Promise<void>;
  /**
   * Called once the record holds the pid and its start time, before createdOk is written: what
   * must be in place before create returns (the sentry's watch) is done here; throwing fails
   * create, which then calls abort().
   */
  created(record: Readonly<ContainerRecord>): void | Promise<void>;
  /**
   * Stops what create started in this process, at once (create failed after the driver
   * returned); the lifecycle then SIGKILLs the pid and cleans up as after a failed create().
   */
  abort(): void;
}

/** What exec asks of a driver: the lock is held, the status checked, the process built. */
export interface ExecRequest {
  /** The process to run (the container's, a --process file, the flags over it). */
  readonly process: Process;
  /** The container's stored config. */
  readonly config: Spec;
  /** Returns at once (0) once the process runs; otherwise exec waits for it and returns its status. */
  readonly detach: boolean;
  /** Detached with a terminal: where the pty's master goes (checked against detach and tty by the lifecycle). */
  readonly consoleSocket: string | undefined;
  readonly preserveFds: number;
  /** --cgroup: sub-cgroups of the container's to join, parsed (exec-cgroup.ts). */
  readonly subCgroups: ReadonlyMap<string, string>;
  /** The container is paused: the driver calls unlock() before the process can block on the frozen container. */
  readonly paused: boolean;
  /** Releases the container's lock early (a resume must be able to take it while the process waits to thaw). */
  unlock(): void;
  /**
   * Attached, the process's stdin, stdout and stderr are pipes to this process (ExecProcess.stdio),
   * not the caller's own, and the signals this process gets are not passed on (the SDK). With
   * process.terminal, the pty's master is what ExecProcess.stdio reads and writes.
   */
  readonly pipes?: boolean | undefined;
  readonly debug: ((msg: string) => void) | undefined;
}

/** A process exec'd into a container. */
export interface ExecProcess {
  /** The pid the pid file names: a host process that stands for the exec'd one. */
  readonly pid: number;
  /**
   * Detached: settles with 0 once the process runs on its own. Attached: relays the caller's
   * terminal and signals and settles with the process's exit code (128+N for signal N).
   */
  finish(): Promise<number>;
  /** Kills the process (the pid file could not be written: it must not run on unaccounted). */
  kill(): void;
  /**
   * With ExecRequest.pipes: the process's stdio, as this process writes and reads it. With a
   * terminal (process.terminal), stdin and stdout are the pty's master and stderr ends at once
   * (the process's stderr is the pty too).
   */
  readonly stdio?: ExecPipes | undefined;
  /** With ExecRequest.pipes and a terminal: sets the pty's size (the process gets SIGWINCH). */
  resize?(rows: number, cols: number): void;
}

/** The pipes of a process exec'd with ExecRequest.pipes. */
export interface ExecPipes {
  readonly stdin: import('node:stream').Writable;
  readonly stdout: import('node:stream').Readable;
  readonly stderr: import('node:stream').Readable;
}

/** The sender of `kill`, with the status the lifecycle read (a frozen workload holds a SIGKILL until thawed). */
export interface SignalRequest {
  readonly signal: number;
  /** Every process of the container, not only its init. */
  readonly all: boolean;
  readonly status: Status;
}

/** The OOM kills the level has seen (cgroup memory.events or the guest's), for `events`. */
export interface LevelStats {
  readonly stats: Stats;
  readonly oomKills: bigint;
}

/**
 * One isolation level. Every method but prepare and plan acts on a recorded container; each
 * throws a StockadeError with a one-line message naming what failed. The lifecycle has checked
 * the status table before calling (status.ts's ALLOWED), except for status and destroy.
 */
export interface LevelDriver {
  /** The level's name, as the registry lists it and records carry it (`record.level`). */
  readonly name: string;
  /**
   * Checks a config the level cannot run as asked, before anything is made (its annotations),
   * and returns the config it will run (a supervised level forces process.noNewPrivileges).
   */
  prepare(spec: Spec): Spec;
  /**
   * Works out what create will do, before the id is taken: everything that can fail on the
   * config or the bundle fails here, where nothing is made yet (no state directory, no cgroup, no
   * hook run). Makes nothing itself.
   */
  plan(req: CreateRequest): CreatePlan;
  /** Lets a created workload run its program; `hookState` is the state JSON for its startContainer hooks, if any. */
  start(c: LevelContainer, hookState: Buffer | undefined): Promise<void>;
  /** Sends a signal to the workload's init, or to all its processes. Throws STATE_TRANSITION when it has stopped. */
  signal(c: LevelContainer, req: SignalRequest): Promise<void>;
  /** Starts a process in the container, at its wall. */
  exec(c: LevelContainer, req: ExecRequest): Promise<ExecProcess>;
  pause(c: LevelContainer): Promise<void>;
  resume(c: LevelContainer): Promise<void>;
  /** Applies the whole merged set of limits (the lifecycle merged and stores it). */
  update(c: LevelContainer, resources: Resources, warn: Warn): Promise<void>;
  /** The workload's resource statistics, in cgroup terms (`events --stats`). */
  stats(c: LevelContainer): Promise<LevelStats>;
  /** The processes of the container, ascending: host pids, or the guest's when the workload is in one. */
  pids(c: LevelContainer): Promise<number[]>;
  /**
   * The status now, from the level's own sources (pid liveness, start socket, freezer, its
   * data): never trusted from the record alone. A record without createdOk is `creating` while
   * its create may still be running, else `stopped`.
   */
  status(c: LevelContainer): Promise<Status>;
  /**
   * Stops everything the level runs for the container (a live one is killed: the lifecycle has
   * checked --force) and removes what the level made outside the cgroups and the state
   * directory, which the lifecycle removes after. Safe to call again after a failure.
   */
  destroy(c: LevelContainer, status: Status): Promise<void>;
}

/** A level as the registry lists it: what the CLI checks and the lifecycle needs without loading its driver. */
export interface LevelEntry {
  readonly name: string;
  /** One line for help text: what the wall is. */
  readonly help: string;
  /**
   * The light entry (native/light/light.c) may start, kill, delete and wait for its containers
   * without Node: its workload is a host process whose start socket, pid, cgroups and freezer
   * tell everything, as light.c reads them.
   */
  readonly light: boolean;
  /** It keeps a network policy (the dev.stockade.network annotation, do --allow-net). */
  readonly networkPolicy: boolean;
  /** `stockade trace` can stream its workload's syscalls. */
  readonly trace: boolean;
  /** Why this build cannot run the level (its driver is not there yet); undefined when it can. */
  readonly unavailable: string | undefined;
}

/** The registry as the lifecycle and the CLI use it (src/levels/registry.ts makes it). */
export interface Levels {
  /** Every level in the registry's order, available or not. */
  readonly entries: readonly LevelEntry[];
  /** The level of a container whose config does not name one (--isolation). */
  readonly default: string;
  /** The entry of that name; undefined for a name no level has. */
  entry(name: string): LevelEntry | undefined;
  /** The driver of an available level (loaded on first use); throws UNSUPPORTED for one this build lacks. */
  driver(name: string): LevelDriver;
}

/** The annotation that picks a container's level, over the runtime's --isolation. */
export const ISOLATION_ANNOTATION = 'dev.stockade.isolation';
/** A network policy (src/sentry/net-policy.ts's form); only a level whose entry says networkPolicy keeps it. */
export const NETWORK_ANNOTATION = 'dev.stockade.network';

/** Level names as a message offers them: "namespaces", "namespaces or sentry", "namespaces, sentry or vm". */
export function oneOf(names: readonly string[]): string {
  return names.length <= 1 ? names.join('') : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
}
