// What a scenario may ask of a container client (podman, docker, ctr), whichever runtime it drives.
import { readFileSync } from 'node:fs';
import type { CmdResult } from './exec';

/**
 * The OCI runtimes each scenario runs under: stockade, runc as the reference, and stockade at the
 * sentry and vm levels (the same binary with --isolation sentry or vm).
 */
export type RuntimeName = 'stockade' | 'runc' | 'stockade-sentry' | 'stockade-vm';

/** The global flags a runtime name adds to the binary it runs. */
export function runtimeArgs(rt: RuntimeName): string[] {
  return rt === 'stockade-vm' ? ['--isolation', 'vm'] : rt === 'stockade-sentry' ? ['--isolation', 'sentry'] : [];
}

/**
 * Why docker and ctr cannot report a vm container OOM-killed: containerd's runc shim learns of an
 * OOM only from the host cgroup's notification (memory.oom_control's eventfd, memory.events),
 * and the OOM kill is the guest kernel's, in the guest's cgroup; the host cgroup holds the VMM.
 */
export const VM_OOM_UNREPORTED = 'containerd\'s runc shim reads OOM kills from the host cgroup (the VMM\'s), and a vm container\'s OOM kill is the guest kernel\'s';

export interface RunOptions {
  readonly env?: readonly string[];
  readonly workdir?: string;
  /** uid:gid */
  readonly user?: string;
  readonly readOnly?: boolean;
  /** Container paths to mount a fresh tmpfs on. */
  readonly tmpfs?: readonly string[];
  readonly binds?: readonly { readonly host: string; readonly container: string }[];
  /** Bytes. */
  readonly memory?: number;
  /** A network the client made (createNetwork) instead of none. */
  readonly network?: string;
  /** host port (on 127.0.0.1) -> container port. */
  readonly publish?: { readonly host: number; readonly container: number };
}

/** A scenario step the client cannot express: the scenario skips with this reason. */
export class Unsupported extends Error {
  override readonly name = 'Unsupported';
}

export type ContainerStatus = 'running' | 'paused' | 'exited' | 'created' | 'other';

/**
 * One client on its private state, bound to a runtime by each call. Container names are the
 * scenario's; the client maps them to its own ids.
 */
export interface Client {
  readonly name: 'podman' | 'docker' | 'containerd';
  /** Foreground `run --rm IMAGE cmd`: stdout, stderr and exit status as the client reports them. */
  run(rt: RuntimeName, name: string, cmd: readonly string[], opts?: RunOptions): Promise<CmdResult>;
  /** `run -it --rm IMAGE cmd` on a pty, typing input after prompt. */
  runTty(rt: RuntimeName, name: string, cmd: readonly string[], input: string, prompt: RegExp): Promise<CmdResult>;
  /** `run -d`: returns once the container is running. */
  runDetached(rt: RuntimeName, name: string, cmd: readonly string[], opts?: RunOptions): Promise<void>;
  exec(name: string, cmd: readonly string[], opts?: { readonly user?: string }): Promise<CmdResult>;
  /** exec -t on a pty. */
  execTty(name: string, cmd: readonly string[]): Promise<CmdResult>;
  logs(name: string): Promise<string>;
  /** stop with a grace period in seconds: SIGTERM, then SIGKILL. */
  stop(name: string, graceSeconds: number): Promise<void>;
  remove(name: string): Promise<void>;
  pause(name: string): Promise<void>;
  unpause(name: string): Promise<void>;
  status(name: string): Promise<ContainerStatus>;
  /** The exit code of a stopped container. */
  exitCode(name: string): Promise<number>;
  /** Waits for the container to stop. */
  wait(name: string): Promise<void>;
  /** Host pid of the container's first process. */
  pid(name: string): Promise<number>;
  /** Updates the memory limit (bytes) and CPU quota (microseconds per 100 ms period). */
  update(name: string, memory: number, cpuQuota: number): Promise<void>;
  /** A bridge network of the client's own (its name), and its removal; Unsupported where the client has none. */
  createNetwork(name: string): Promise<string>;
  removeNetwork(name: string): Promise<void>;
  /** The container's address on a network. */
  addressOn(name: string, network: string): Promise<string>;
  /** The client's process listing (top/ps) as text. */
  top(name: string): Promise<string>;
  /** Whether the client says the container (run under `rt`) was killed for memory; Unsupported where it cannot say. */
  oomKilled(name: string, rt: RuntimeName): Promise<boolean>;
  /** The --root the client gives the runtime: where its state.json for each container lives. */
  stateRoot(rt: RuntimeName): string;
  /** Every container this client still knows, removed by force (for after hooks). */
  removeAll(): Promise<void>;
}

/**
 * The host file of a cgroup setting for a process: the v1 hierarchy of controller when the host
 * mounts one (hybrid and legacy hosts), the unified hierarchy otherwise.
 */
export function cgroupFile(pid: number, controller: string, v1File: string, v2File: string): string {
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  for (const line of lines) {
    const [, controllers, path] = line.split(':');
    if (controllers !== undefined && path !== undefined && controllers.split(',').includes(controller)) {
      return `/sys/fs/cgroup/${controller}${path}/${v1File}`;
    }
  }
  const unified = lines.find((l) => l.startsWith('0::'));
  if (unified === undefined) throw new Error(`pid ${pid} is in no ${controller} cgroup: ${lines.join('; ')}`);
  const base = readFileSync('/proc/self/mountinfo', 'utf8').includes(' /sys/fs/cgroup/unified ') ? '/sys/fs/cgroup/unified' : '/sys/fs/cgroup';
  return `${base}${unified.slice(3)}/${v2File}`;
}
