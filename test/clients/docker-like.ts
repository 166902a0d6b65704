// The Client for podman and docker, whose command lines agree on everything the scenarios use.
import { Unsupported, type Client, type ContainerStatus, type RunOptions, type RuntimeName } from './client';
import { mustRun, runCmd, runOnPty, waitFor, type CmdResult } from './exec';
import { IMAGE } from './image';

export interface DockerLikeConfig {
  readonly name: 'podman' | 'docker';
  /** The client binary and its global flags (state directories, socket). */
  readonly base: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /**
   * The directory the client runs in. conmon 2.1.6 writes its OOM marker, a file named oom, into
   * its working directory, which podman 4.3 leaves as its own: not the checkout, then.
   */
  readonly cwd: string;
  /** Flags added to every run: no network, a private cgroup parent. */
  readonly runFlags: readonly string[];
  /** Flags for `rm --force` beyond it: podman would otherwise give SIGTERM 10 s first. */
  readonly rmFlags: readonly string[];
  /** The runtime's --root, as the client passes it or the wrapper pins it. */
  readonly stateRoot: (rt: RuntimeName) => string;
  /** podman takes --runtime before the command, docker as an option of run. */
  readonly runtimeFlag: 'global' | 'run';
  /** Why inspect's OOMKilled cannot be trusted here under a runtime, if it cannot. */
  readonly oomUnreported?: (rt: RuntimeName) => string | undefined;
}

function runOptionFlags(opts: RunOptions): string[] {
  const flags: string[] = [];
  for (const e of opts.env ?? []) flags.push('--env', e);
  if (opts.workdir !== undefined) flags.push('--workdir', opts.workdir);
  if (opts.user !== undefined) flags.push('--user', opts.user);
  if (opts.readOnly === true) flags.push('--read-only');
  for (const t of opts.tmpfs ?? []) flags.push('--tmpfs', t);
  for (const b of opts.binds ?? []) flags.push('--volume', `${b.host}:${b.container}`);
  // Swap equal to memory: with swap the limit would page rather than kill.
  if (opts.memory !== undefined) flags.push('--memory', String(opts.memory), '--memory-swap', String(opts.memory));
  if (opts.publish !== undefined) flags.push('--publish', `127.0.0.1:${opts.publish.host}:${opts.publish.container}`);
  return flags;
}

/** The run flags with `--network none` replaced by the network asked for. */
function withNetwork(runFlags: readonly string[], network: string | undefined): string[] {
  if (network === undefined) return [...runFlags];
  const out = [...runFlags];
  const i = out.indexOf('--network');
  if (i >= 0) out.splice(i, 2, '--network', network);
  else out.push('--network', network);
  return out;
}

export class DockerLikeClient implements Client {
  readonly name: 'podman' | 'docker';
  readonly #base: readonly string[];
  readonly #env: NodeJS.ProcessEnv;
  readonly #cwd: string;
  readonly #runFlags: readonly string[];
  readonly #rmFlags: readonly string[];
  readonly #oomUnreported: ((rt: RuntimeName) => string | undefined) | undefined;
  readonly #runtimeFlag: 'global' | 'run';
  readonly #stateRoot: (rt: RuntimeName) => string;

  constructor(config: DockerLikeConfig) {
    this.name = config.name;
    this.#base = config.base;
    this.#env = config.env;
    this.#cwd = config.cwd;
    this.#runFlags = config.runFlags;
    this.#rmFlags = config.rmFlags;
    this.#oomUnreported = config.oomUnreported;
    this.#runtimeFlag = config.runtimeFlag;
    this.#stateRoot = config.stateRoot;
  }

  #cmd(args: readonly string[], timeout?: number): Promise<CmdResult> {
    return runCmd([...this.#base, ...args], { env: this.#env, cwd: this.#cwd, ...(timeout !== undefined ? { timeout } : {}) });
  }

  async #must(args: readonly string[], timeout?: number): Promise<CmdResult> {
    return mustRun([...this.#base, ...args], { env: this.#env, cwd: this.#cwd, ...(timeout !== undefined ? { timeout } : {}) });
  }

  #runArgs(rt: RuntimeName, name: string, mode: readonly string[], opts: RunOptions): string[] {
    const runtime = ['--runtime', rt];
    return [
      ...(this.#runtimeFlag === 'global' ? runtime : []), 'run', ...(this.#runtimeFlag === 'run' ? runtime : []),
      ...mode, '--name', name, ...withNetwork(this.#runFlags, opts.network), ...runOptionFlags(opts), IMAGE,
    ];
  }

  run(rt: RuntimeName, name: string, cmd: readonly string[], opts: RunOptions = {}): Promise<CmdResult> {
    return this.#cmd([...this.#runArgs(rt, name, ['--rm'], opts), ...cmd]);
  }

  runTty(rt: RuntimeName, name: string, cmd: readonly string[], input: string, prompt: RegExp): Promise<CmdResult> {
    // A VM boots before the prompt (seconds under TCG, tens on a loaded host).
    return runOnPty([...this.#base, ...this.#runArgs(rt, name, ['--rm', '-it'], {}), ...cmd], { input, prompt, env: this.#env, cwd: this.#cwd, ...(rt === 'stockade-vm' ? { timeout: 120_000 } : {}) });
  }

  async runDetached(rt: RuntimeName, name: string, cmd: readonly string[], opts: RunOptions = {}): Promise<void> {
    // A VM with a network's interfaces boots cold (TCG): past the default minute on a loaded machine, as -it's.
    await this.#must([...this.#runArgs(rt, name, ['-d'], opts), ...cmd], rt === 'stockade-vm' ? 120_000 : undefined);
  }

  exec(name: string, cmd: readonly string[], opts: { readonly user?: string } = {}): Promise<CmdResult> {
    return this.#cmd(['exec', ...(opts.user !== undefined ? ['--user', opts.user] : []), name, ...cmd]);
  }

  execTty(name: string, cmd: readonly string[]): Promise<CmdResult> {
    return runOnPty([...this.#base, 'exec', '-t', name, ...cmd], { env: this.#env, cwd: this.#cwd });
  }

  async logs(name: string): Promise<string> {
    const r = await this.#must(['logs', name]);
    return r.stdout + r.stderr;
  }

  async stop(name: string, graceSeconds: number): Promise<void> {
    await this.#must(['stop', '--time', String(graceSeconds), name]);
  }

  async remove(name: string): Promise<void> {
    await this.#must(['rm', '--force', ...this.#rmFlags, name]);
  }

  async createNetwork(name: string): Promise<string> {
    await this.#must(['network', 'create', name]);
    return name;
  }

  async removeNetwork(name: string): Promise<void> {
    await this.#must(['network', 'rm', name]);
  }

  async addressOn(name: string, network: string): Promise<string> {
    return this.#inspect(name, `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`);
  }

  async pause(name: string): Promise<void> { await this.#must(['pause', name]); }
  async unpause(name: string): Promise<void> { await this.#must(['unpause', name]); }

  async #inspect(name: string, format: string): Promise<string> {
    return (await this.#must(['inspect', '--format', format, name])).stdout.trim();
  }

  async status(name: string): Promise<ContainerStatus> {
    const s = await this.#inspect(name, '{{.State.Status}}');
    return s === 'running' || s === 'paused' || s === 'exited' || s === 'created' ? s : 'other';
  }

  async exitCode(name: string): Promise<number> { return Number(await this.#inspect(name, '{{.State.ExitCode}}')); }

  async wait(name: string): Promise<void> {
    await waitFor(`${name} to stop`, async () => ((await this.status(name)) === 'exited' ? true : undefined), 30_000);
  }

  async pid(name: string): Promise<number> { return Number(await this.#inspect(name, '{{.State.Pid}}')); }

  async update(name: string, memory: number, cpuQuota: number): Promise<void> {
    await this.#must(['update', '--memory', String(memory), '--memory-swap', String(memory), '--cpu-quota', String(cpuQuota), name]);
  }

  async top(name: string): Promise<string> { return (await this.#must(['top', name])).stdout; }

  async oomKilled(name: string, rt: RuntimeName): Promise<boolean> {
    const unreported = this.#oomUnreported?.(rt);
    if (unreported !== undefined) throw new Unsupported(unreported);
    return (await this.#inspect(name, '{{.State.OOMKilled}}')) === 'true';
  }

  stateRoot(rt: RuntimeName): string { return this.#stateRoot(rt); }

  async removeAll(): Promise<void> {
    const ids = (await this.#cmd(['ps', '--all', '--quiet'])).stdout.split('\n').filter((l) => l !== '');
    if (ids.length > 0) await this.#cmd(['rm', '--force', ...this.#rmFlags, ...ids], 120_000);
  }
}
