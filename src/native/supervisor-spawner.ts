// The processes a container keeps beside it (the sentry and its watch, a VM's keeper, a detached
// exec's stand-in) started by the CLI call's own process, whichever process decides the call. In a
// cold call that is this process (child_process.spawn, at each call site). In the resident
// planner (src/planner/) it is the C front that asked it: the planner names the command, the
// environment and each fd, and the front forks and execs it, so the supervisor stays a descendant
// of the CLI call (conmon and containerd's shims, subreapers, adopt it when the call ends, as they
// adopt a cold call's) and never becomes the planner's child, which would die or be orphaned with
// the planner.
import type { InitExit, InitProcess } from './launcher';

/** A supervisor the front started: its pid, its exit (the front reaps it and says so), a signal to it. */
export interface SupervisorProcess extends InitProcess {
  readonly pid: number;
  readonly exited: InitExit;
}

export interface SupervisorSpawn {
  /** An absolute path, or a name looked up in `env`'s PATH, as child_process.spawn does. */
  readonly command: string;
  /** Its arguments (argv[0] is `command`). */
  readonly args: readonly string[];
  /** Its whole environment. */
  readonly env: NodeJS.ProcessEnv;
  /**
   * Fd i of the new process: 'ignore' (/dev/null), 'inherit' (the CLI call's own fd i: the caller's
   * stdio), or an fd of this process, passed over (this process may close its copy once the promise
   * settles). No other fd of the caller's reaches it.
   */
  readonly stdio: readonly ('ignore' | 'inherit' | number)[];
  /** In a session of its own (setsid), as spawn's `detached`. */
  readonly detached: boolean;
}

/** Starts the process and resolves once it was exec'd (rejects with the system's words when it could not be). */
export type SupervisorSpawner = (s: SupervisorSpawn) => Promise<SupervisorProcess>;

/**
 * Connects to a unix socket from the CLI call's process, sends `bytes`, and resolves with the
 * connect's errno (0 once connected) and every byte the other end sent until it closed. The front
 * releases a VM container's workload this way (the keeper's `start`), so that whether it was
 * released is known in the process that lives as long as the call (as src/namespaces/start.ts).
 */
export type RawReleaser = (path: string, bytes: Buffer) => Promise<{ errno: number; data: Buffer }>;

let spawner: SupervisorSpawner | undefined;
let releaser: RawReleaser | undefined;

/** The planner's, for the call it serves; undefined: this process spawns them itself. */
export function setSupervisorSpawner(s: SupervisorSpawner | undefined): void {
  spawner = s;
}

/** The spawner of the call being served by a planner, or undefined in a cold call. */
export function supervisorSpawner(): SupervisorSpawner | undefined {
  return spawner;
}

/** The planner's, for the call it serves; undefined: this process connects itself. */
export function setRawReleaser(r: RawReleaser | undefined): void {
  releaser = r;
}

export function rawReleaser(): RawReleaser | undefined {
  return releaser;
}
