// How a syscall supervisor (the sentry) plugs into the host-process driver (src/namespaces/): the
// contract between the two, kept here, below both, since neither level imports the other.
import type { Mount, Spec } from '../oci/spec';
import type { ContainerId } from './id';

/**
 * A level whose supervisor serves the workload's syscalls (the sentry). stockade-init loads
 * `filter` last, just before the workload's execve, with SECCOMP_FILTER_FLAG_NEW_LISTENER, and
 * sends the listener over the socket whose other end is the supervisor's `childSocket`; from then
 * on the supervisor answers every call the filter marks NOTIFY.
 */
export interface SupervisedLevel {
  readonly filter: { readonly flags: number; readonly program: Buffer };
  /**
   * The mounts of the config the supervisor serves itself, as absolute destinations: stockade-init
   * detaches them from the workload's mount namespace and hands the supervisor clones (TAG_SENTRY_MOUNT).
   */
  ownedMounts(mounts: readonly Mount[]): string[];
  /** Throws for a config the level cannot run as asked (its annotations), before anything is made. */
  validate?(spec: Spec): void;
  /** Starts the supervisor of one container, once its config is known and its id taken (asynchronously when another process starts it: the planner's front). */
  supervise(ctx: SuperviseContext): Supervisor | Promise<Supervisor>;
}

/** A process as pid and start time (field 22 of /proc/PID/stat), so a reused pid is not taken for it. */
export interface ProcessRef {
  readonly pid: number;
  readonly startTime: string;
}

/** One container's supervisor, as create drives it. */
export interface Supervisor {
  /**
   * The process that serves the container (its own, or its pod's): the container cannot live
   * without it (guard() leaves a watch that kills the container when it exits). Undefined for a
   * process exec'd into a container, which its container's watch covers.
   */
  readonly server: ProcessRef | undefined;
  /**
   * The container's init runs (create): from here on the container must die with `server`.
   * Throws when that cannot be made sure of, and create fails (fail closed).
   */
  guard(target: GuardTarget): void | Promise<void>;
  /** An fd of this process, passed to stockade-init; its copy here is closed by `launched`. */
  readonly childSocket: number;
  /** stockade-init holds its end now: this process's copy is closed. */
  launched(): void;
  /** Settles when the supervisor has stopped: every supervised process is gone. */
  readonly done: Promise<void>;
  /** Stops the supervisor at once (a create that failed). */
  abort(): void;
}

export interface SuperviseContext {
  readonly spec: Spec;
  readonly id: ContainerId;
  /** The container's state directory, made by now. */
  readonly stateDir: string;
  /** This process does not wait for the container (create, run --detach): nobody reads its stderr after it. */
  readonly detached: boolean;
  /** The supervisor serves a process exec'd into the container, not its init: it joins the container's. */
  readonly exec?: boolean | undefined;
  /**
   * The container's cgroup directories, made by now: a supervisor process of its own is charged
   * to them (its CPU and memory count against the container's limits).
   */
  readonly cgroupPaths?: readonly string[] | undefined;
}

/** What a supervisor's guard watches: the container, once its init runs. */
export interface GuardTarget {
  readonly id: ContainerId;
  readonly stateDir: string;
  readonly init: ProcessRef;
  readonly ownPidNamespace: boolean;
  readonly cgroupPaths: readonly string[];
}
