// A private containerd, and ctr driving stockade and runc through containerd's runc shim.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { STOCKADE } from '../integration/harness';
import { RUN_TAG } from '../helpers/run-scope';
import { Unsupported, VM_OOM_UNREPORTED, runtimeArgs, type Client, type ContainerStatus, type RunOptions, type RuntimeName } from './client';
import { Daemon, onPath, sweep } from './daemons';
import { mustRun, runCmd, runOnPty, waitFor, type CmdResult } from './exec';
import { IMAGE } from './image';
import type { StartedClient } from './suite';

export interface Containerd {
  readonly address: string;
  readonly daemon: Daemon;
}

/**
 * containerd with everything it keeps under dir: root, state, its grpc socket, and the opt
 * plugin's directory (which would otherwise be /opt/containerd). CRI is off: nothing here uses
 * it, and it would look for CNI.
 */
export async function startContainerd(dir: string): Promise<Containerd> {
  mkdirSync(dir, { recursive: true });
  const address = join(dir, 'containerd.sock');
  const config = join(dir, 'config.toml');
  writeFileSync(config, [
    'version = 2',
    `root = "${join(dir, 'root')}"`,
    `state = "${join(dir, 'state')}"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]',
    `  address = "${address}"`,
    '[ttrpc]',
    '  address = ""',
    '[debug]',
    '  address = ""',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = "${join(dir, 'opt')}"`,
    '',
  ].join('\n'));
  const daemon = await Daemon.start(['containerd', '--config', config], join(dir, 'containerd.log'),
    async () => existsSync(address) && (await runCmd(['ctr', '--address', address, 'version'], { timeout: 5000 })).status === 0);
  return { address, daemon };
}

/** Scenarios ctr cannot express, declared so they skip before they start (see ClientTier.lacks). */
export const CONTAINERD_LACKS: Readonly<Record<string, string>> = {
  update: 'ctr 1.6 has no task update command',
  network: 'ctr has no networks of its own (CNI is the CRI plugin\'s: test/cri)',
  'network-dns': 'ctr has no networks of its own (CNI is the CRI plugin\'s: test/cri)',
};

/** Why the containerd tier cannot run here, or undefined. */
export function containerdMissing(): string | undefined {
  for (const p of ['containerd', 'ctr', 'containerd-shim-runc-v2']) {
    if (onPath(p) === undefined) return `${p} is not installed (apt-get install containerd)`;
  }
  return undefined;
}

// Per run: a container's cgroup is /NAMESPACE/ID, and two runs on one host must not share one.
const NAMESPACE = `stockade-clients-${RUN_TAG}`;

interface TaskRow { readonly pid: number; readonly status: string }

/**
 * ctr on a private containerd. Each runtime is chosen per container the way ctr can: containerd's
 * runc shim (io.containerd.runc.v2) with the runc options BinaryName (--runc-binary) and Root
 * (--runc-root). ctr 1.6 cannot name a runtime from config.toml: `--runtime` takes a shim name or
 * path, and the runtimes table in config.toml belongs to the CRI plugin alone.
 */
class CtrClient implements Client {
  readonly name = 'containerd';
  readonly #dir: string;
  readonly #base: readonly string[];
  readonly #events: string;
  #execs = 0;

  constructor(dir: string, address: string, events: string) {
    this.#dir = dir;
    this.#base = ['ctr', '--address', address, '--namespace', NAMESPACE];
    this.#events = events;
  }

  #runtimeFlags(rt: RuntimeName): string[] {
    const binary = rt === 'runc' ? onPath('runc') ?? 'runc' : rt === 'stockade' ? STOCKADE : this.#wrapper(rt);
    return ['--runtime', 'io.containerd.runc.v2', '--runc-binary', binary, '--runc-root', join(this.#dir, `runtime-${rt}`)];
  }

  /** The runc shim runs one binary with no flags of ours: a runtime with global flags gets a script that adds them. */
  #wrapper(rt: RuntimeName): string {
    const path = join(this.#dir, `${rt}.sh`);
    if (!existsSync(path)) writeFileSync(path, `#!/bin/sh\nexec ${[STOCKADE, ...runtimeArgs(rt)].map((a) => `'${a}'`).join(' ')} "$@"\n`, { mode: 0o755 });
    return path;
  }

  #fifoDir(): string[] {
    const fifo = join(this.#dir, 'fifo');
    mkdirSync(fifo, { recursive: true });
    return ['--fifo-dir', fifo];
  }

  #optionFlags(opts: RunOptions): string[] {
    const flags: string[] = [];
    if (opts.user !== undefined) throw new Unsupported('ctr 1.6 run has no --user (ctr task exec has)');
    for (const e of opts.env ?? []) flags.push('--env', e);
    if (opts.workdir !== undefined) flags.push('--cwd', opts.workdir);
    if (opts.readOnly === true) flags.push('--read-only');
    for (const t of opts.tmpfs ?? []) flags.push('--mount', `type=tmpfs,src=tmpfs,dst=${t},options=nosuid:nodev`);
    for (const b of opts.binds ?? []) flags.push('--mount', `type=bind,src=${b.host},dst=${b.container},options=rbind:rw`);
    if (opts.memory !== undefined) flags.push('--memory-limit', String(opts.memory));
    return flags;
  }

  #cmd(args: readonly string[]): Promise<CmdResult> { return runCmd([...this.#base, ...args]); }
  #must(args: readonly string[]): Promise<CmdResult> { return mustRun([...this.#base, ...args]); }

  run(rt: RuntimeName, name: string, cmd: readonly string[], opts: RunOptions = {}): Promise<CmdResult> {
    return this.#cmd(['run', '--rm', ...this.#fifoDir(), ...this.#runtimeFlags(rt), ...this.#optionFlags(opts), IMAGE, name, ...cmd]);
  }

  runTty(rt: RuntimeName, name: string, cmd: readonly string[], input: string, prompt: RegExp): Promise<CmdResult> {
    // A VM boots before the prompt (seconds under TCG, tens on a loaded host).
    return runOnPty([...this.#base, 'run', '--rm', '--tty', ...this.#fifoDir(), ...this.#runtimeFlags(rt), IMAGE, name, ...cmd], { input, prompt, ...(rt === 'stockade-vm' ? { timeout: 120_000 } : {}) });
  }

  async runDetached(rt: RuntimeName, name: string, cmd: readonly string[], opts: RunOptions = {}): Promise<void> {
    const logs = join(this.#dir, 'logs');
    mkdirSync(logs, { recursive: true });
    await this.#must(['run', '--detach', '--log-uri', `file://${join(logs, name)}`, ...this.#runtimeFlags(rt), ...this.#optionFlags(opts), IMAGE, name, ...cmd]);
  }

  exec(name: string, cmd: readonly string[], opts: { readonly user?: string } = {}): Promise<CmdResult> {
    const user = opts.user !== undefined ? ['--user', opts.user] : [];
    return this.#cmd(['task', 'exec', ...this.#fifoDir(), '--exec-id', `exec-${this.#execs++}`, ...user, name, ...cmd]);
  }

  execTty(name: string, cmd: readonly string[]): Promise<CmdResult> {
    return runOnPty([...this.#base, 'task', 'exec', '--tty', ...this.#fifoDir(), '--exec-id', `exec-${this.#execs++}`, name, ...cmd]);
  }

  async logs(name: string): Promise<string> { return readFileSync(join(this.#dir, 'logs', name), 'utf8'); }

  async #task(name: string): Promise<TaskRow | undefined> {
    const r = await this.#must(['task', 'list']);
    for (const line of r.stdout.split('\n').slice(1)) {
      const [task, pid, status] = line.trim().split(/\s+/);
      if (task === name && pid !== undefined && status !== undefined) return { pid: Number(pid), status };
    }
    return undefined;
  }

  async stop(name: string, graceSeconds: number): Promise<void> {
    // ctr has no stop: what docker and podman do, by hand.
    await this.#must(['task', 'kill', '--signal', 'SIGTERM', name]);
    const end = Date.now() + graceSeconds * 1000;
    while (Date.now() < end) {
      if ((await this.status(name)) === 'exited') return;
      await new Promise((r) => setTimeout(r, 100));
    }
    await this.#must(['task', 'kill', '--signal', 'SIGKILL', name]);
    await this.wait(name);
  }

  async remove(name: string): Promise<void> {
    await this.#cmd(['task', 'delete', '--force', name]);
    await this.#must(['container', 'delete', name]);
  }

  async pause(name: string): Promise<void> { await this.#must(['task', 'pause', name]); }
  async unpause(name: string): Promise<void> { await this.#must(['task', 'resume', name]); }

  async status(name: string): Promise<ContainerStatus> {
    const row = await this.#task(name);
    switch (row?.status) {
      case 'RUNNING': return 'running';
      case 'PAUSED': return 'paused';
      case 'STOPPED': return 'exited';
      case 'CREATED': return 'created';
      default: return 'other';
    }
  }

  #eventsFor(topic: string, name: string): Record<string, unknown>[] {
    const found: Record<string, unknown>[] = [];
    for (const line of readFileSync(this.#events, 'utf8').split('\n')) {
      const i = line.indexOf(` ${topic} {`);
      if (i < 0) continue;
      const event = JSON.parse(line.slice(i + topic.length + 2)) as Record<string, unknown>;
      if (event['container_id'] === name) found.push(event);
    }
    return found;
  }

  async exitCode(name: string): Promise<number> {
    // ctr reports an exit status only to the ctr that waits; the event stream has it for everyone.
    const exit = await waitFor(`the exit event of ${name}`, async () =>
      this.#eventsFor('/tasks/exit', name).find((e) => e['id'] === name), 10_000);
    return Number(exit['exit_status'] ?? 0);
  }

  async wait(name: string): Promise<void> {
    await waitFor(`${name} to stop`, async () => ((await this.status(name)) === 'exited' ? true : undefined), 30_000);
  }

  async pid(name: string): Promise<number> {
    const row = await this.#task(name);
    if (row === undefined) throw new Error(`no task ${name}`);
    return row.pid;
  }

  update(): Promise<void> {
    throw new Unsupported(CONTAINERD_LACKS.update);
  }

  async createNetwork(): Promise<string> {
    throw new Unsupported(CONTAINERD_LACKS.network);
  }

  async removeNetwork(): Promise<void> { /* none made */ }

  async addressOn(): Promise<string> {
    throw new Unsupported('ctr has no networks of its own');
  }

  async top(name: string): Promise<string> { return (await this.#must(['task', 'ps', name])).stdout; }

  async oomKilled(name: string, rt: RuntimeName): Promise<boolean> {
    if (rt === 'stockade-vm') throw new Unsupported(VM_OOM_UNREPORTED);
    // containerd's shim watches the cgroup and publishes /tasks/oom; ctr has no inspect to show it.
    // The shim's OOM watcher and its exit handling publish independently: the exit event may come
    // first, so the OOM event is waited for a while after it (seen in CI: read at the exit, absent).
    await this.exitCode(name);
    try {
      await waitFor(`the OOM event of ${name}`, async () => (this.#eventsFor('/tasks/oom', name).length > 0 ? true : undefined), 5_000);
      return true;
    } catch {
      return false;
    }
  }

  stateRoot(rt: RuntimeName): string { return join(this.#dir, `runtime-${rt}`); }

  async removeAll(): Promise<void> {
    const names = (await this.#cmd(['container', 'list', '--quiet'])).stdout.split('\n').filter((l) => l !== '');
    for (const name of names) {
      await this.#cmd(['task', 'delete', '--force', name]);
      await this.#cmd(['container', 'delete', name]);
    }
  }
}

/** A private containerd with the test image imported, and ctr bound to it. */
export async function startContainerdClient(dir: string, archive: string): Promise<StartedClient> {
  const containerd = await startContainerd(join(dir, 'containerd'));
  const events = join(dir, 'events.log');
  let watcher: Daemon | undefined;
  const client = new CtrClient(dir, containerd.address, events);
  const stop = async (): Promise<string[]> => {
    await client.removeAll().catch(() => undefined);
    await watcher?.stop(2000);
    await containerd.daemon.stop();
    return sweep(dir, [`/${NAMESPACE}`]);
  };
  try {
    watcher = await Daemon.start(['ctr', '--address', containerd.address, '--namespace', NAMESPACE, 'events'], events,
      async () => existsSync(events));
    await mustRun(['ctr', '--address', containerd.address, '--namespace', NAMESPACE, 'images', 'import', archive], { timeout: 120_000 });
  } catch (e) {
    await stop();
    throw e;
  }
  return { client, stop };
}
