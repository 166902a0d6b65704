// Runs the real stockade CLI as a client would, each test with its own --root and --log.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostLayout } from '../../src/cgroups/layout';
import { initBinary, packageRoot } from '../../src/native/paths';
import { defaultSpec } from '../../src/oci/default-spec';
import type { Spec } from '../../src/oci/spec';
import { makeBundle, rootfsUnavailable, type Bundle } from '../helpers/rootfs';
import { listMountsUnder } from '../helpers/cleanup';
import { enterRunCgroup, processesMarked, runProcesses, runV2Runner } from '../helpers/run-scope';
import { readProcessStat } from '../../src/container/process-identity';
export { runProcesses };

// Before any container is made: this run's containers go below a cgroup of its own (see run-scope).
enterRunCgroup();

export const STOCKADE = join(packageRoot(), 'bin', 'stockade');

/** Why integration tests cannot run here, or undefined when they can. */
/**
 * `do`'s /tmp, /var/tmp and /run are its own: a checkout below one (the suite runs wherever the
 * checkout is) is not in the sandbox unless shared. The tests' programs live in the checkout, so
 * they share it, read-only, as a user would (--bind); elsewhere this adds nothing.
 */
export function checkoutShare(): string[] {
  const root = realpathSync(packageRoot());
  if (!['/tmp', '/var/tmp', '/run'].some((d) => root.startsWith(`${d}/`))) return [];
  // do's command is nobody, and reads a read-only bind with its own rights: a clone made in a
  // directory of mktemp's (0700) must let others in, as a checkout anywhere else does.
  const mode = statSync(root).mode & 0o777;
  if ((mode & 0o005) !== 0o005) chmodSync(root, mode | 0o005);
  return ['--bind', root];
}

/** `args` with checkoutShare() after a `do` command (the first word that is `do`, before any `--`). */
export function withCheckoutShared(args: readonly string[]): string[] {
  const i = args.indexOf('do');
  const end = args.indexOf('--');
  if (i < 0 || (end >= 0 && end < i)) return [...args];
  return [...args.slice(0, i + 1), ...checkoutShare(), ...args.slice(i + 1)];
}

export function integrationSkip(): string | undefined {
  if (process.platform !== 'linux') return 'containers need Linux';
  if (process.getuid?.() !== 0) return 'creating namespaces and mounts as the tests do needs root';
  if (!existsSync(initBinary())) return `stockade-init is not built (${initBinary()}): run npm run build`;
  return rootfsUnavailable();
}

/** Why pause cannot work here (no freezer: neither a v1 freezer hierarchy nor cgroup v2), or undefined. */
export function freezerUnavailable(): string | undefined {
  const layout = hostLayout();
  if (layout.v1.some((h) => h.controllers.includes('freezer'))) return undefined;
  if (layout.unified !== undefined) return undefined;
  return 'no freezer: neither a v1 freezer hierarchy nor a cgroup2 mount';
}

export interface Result {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

// Each call of a cgroup-v2-only runtime: a mount namespace of its own where the v1 hierarchies are
// gone and the cgroup2 file system is at /sys/fs/cgroup, as on a host booted with cgroup v2 alone;
// the call joins this run's v2 cgroup first, so its containers' cgroups go below it.
const V2_ONLY = [
  'set -e',
  'umount -l /sys/fs/cgroup',
  'mount -t cgroup2 cgroup2 /sys/fs/cgroup',
  'echo $$ > "/sys/fs/cgroup$STOCKADE_TEST_V2_RUNNER/cgroup.procs"',
  'exec "$@"',
].join('\n');

/** Why a cgroup-v2-only runtime cannot be made here, or undefined. */
export function cgroup2OnlySkip(): string | undefined {
  const skip = integrationSkip();
  if (skip !== undefined) return skip;
  if (!has('unshare')) return 'unshare is not installed (util-linux)';
  if (runV2Runner() === undefined) return 'no cgroup2 file system here: the host mounts no unified hierarchy';
  return undefined;
}

export interface RuntimeOptions {
  /** Every call sees cgroup v2 alone at /sys/fs/cgroup (see V2_ONLY); the host's own layout otherwise. */
  readonly cgroup2Only?: boolean;
}

export class Runtime {
  readonly root: string;
  readonly log: string;
  readonly #bundles: Bundle[] = [];
  #calls = 0;
  /** For a cgroup-v2-only runtime: this run's runner cgroup, and where this process sees the unified mount. */
  readonly #v2: { path: string; mount: string } | undefined;
  constructor(opts: RuntimeOptions = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'stockade-it-'));
    // Container root in a user namespace must traverse to its rootfs mountpoint under the state root.
    chmodSync(dir, 0o711);
    this.root = join(dir, 'state');
    this.log = join(dir, 'log.json');
    if (opts.cgroup2Only === true) {
      this.#v2 = runV2Runner();
      if (this.#v2 === undefined) throw new Error('a cgroup-v2-only runtime on a host without a unified hierarchy');
    }
  }

  /** The program and arguments of one call: the CLI, or the CLI in a cgroup-v2-only mount namespace. */
  #command(args: readonly string[]): { file: string; args: string[]; env: NodeJS.ProcessEnv } {
    const full = ['--root', this.root, '--log', this.log, '--log-format', 'json', ...withCheckoutShared(args)];
    // A suite started through sudo must not make `do`'s command the user who ran it: the tests
    // that mean that case set these themselves.
    const { SUDO_UID: _uid, SUDO_GID: _gid, ...env } = process.env;
    if (this.#v2 === undefined) return { file: STOCKADE, args: full, env };
    return {
      file: 'unshare',
      args: ['--mount', '--propagation', 'private', '/bin/sh', '-c', V2_ONLY, 'sh', STOCKADE, ...full],
      env: { ...env, STOCKADE_TEST_V2_RUNNER: this.#v2.path },
    };
  }

  /** A cgroup path as the runtime recorded it, where this process sees it (they differ for a cgroup-v2-only runtime). */
  hostCgroupPath(p: string): string {
    if (this.#v2 === undefined || !(p === '/sys/fs/cgroup' || p.startsWith('/sys/fs/cgroup/'))) return p;
    return this.#v2.mount + p.slice('/sys/fs/cgroup'.length);
  }

  /** stockade --root R --log L --log-format json ARGS */
  run(args: readonly string[], opts: { input?: string; timeout?: number; cwd?: string; extraFds?: number[]; env?: Readonly<Record<string, string>> } = {}): Result {
    // Files, not pipes, for stdout and stderr: a detached container keeps them open, and a pipe
    // would make spawnSync wait for the container rather than for stockade.
    const dir = join(this.root, '..');
    const outPath = join(dir, `out-${this.#calls}`);
    const errPath = join(dir, `err-${this.#calls++}`);
    const outFd = openSync(outPath, 'w+');
    const errFd = openSync(errPath, 'w+');
    try {
      const cmd = this.#command(args);
      const r = spawnSync(cmd.file, cmd.args, {
        env: { ...cmd.env, ...opts.env },
        input: opts.input ?? '',
        stdio: ['pipe', outFd, errFd, ...(opts.extraFds ?? [])],
        timeout: opts.timeout ?? 30_000,
        cwd: opts.cwd,
      });
      return { status: r.status, signal: r.signal, stdout: readFileSync(outPath, 'utf8'), stderr: readFileSync(errPath, 'utf8') };
    } finally {
      closeSync(outFd);
      closeSync(errFd);
      rmSync(outPath, { force: true });
      rmSync(errPath, { force: true });
    }
  }

  /** Like run, without waiting: for containers that must be signalled while attached. `env`: added to this process's. */
  spawn(args: readonly string[], env?: Readonly<Record<string, string>>): ReturnType<typeof spawn> {
    const cmd = this.#command(args);
    return spawn(cmd.file, cmd.args, {
      stdio: ['pipe', 'pipe', 'pipe'], env: env === undefined ? cmd.env : { ...cmd.env, ...env },
    });
  }

  bundle(spec: Spec | ((paths: { dir: string; rootfs: string }) => Spec)): Bundle {
    const b = makeBundle({ spec });
    this.#bundles.push(b);
    return b;
  }

  logLines(): { level: string; msg: string }[] {
    if (!existsSync(this.log)) return [];
    return readFileSync(this.log, 'utf8').trim().split('\n').filter((l) => l !== '').map((l) => {
      if (l.startsWith('{')) return JSON.parse(l) as { level: string; msg: string };
      // A text line, written when the format asked for could not be used.
      const m = /level=(\w+) msg=("(?:[^"\\]|\\.)*"|\S+)/.exec(l);
      return { level: m?.[1] ?? '', msg: m?.[2]?.startsWith('"') === true ? JSON.parse(m[2]) as string : m?.[2] ?? '' };
    });
  }

  containerDirs(): string[] {
    return existsSync(this.root) ? readdirSync(this.root).filter((n) => !n.startsWith('.')) : [];
  }

  /** Deletes every container left, then the bundles and the state root. */
  cleanup(): void {
    for (const id of this.containerDirs()) this.run(['delete', '--force', id]);
    for (const b of this.#bundles) b.remove();
    rmSync(join(this.root, '..'), { recursive: true, force: true });
  }
}

/** A spec for the test rootfs running `args` without a terminal. */
export function probeSpec(args: string[], mutate?: (spec: Spec) => void): Spec {
  const spec = defaultSpec();
  if (spec.process === undefined) throw new Error('default spec has no process');
  spec.process.terminal = false;
  spec.process.args = args;
  if (spec.linux !== undefined) delete spec.linux.resources;
  mutate?.(spec);
  return spec;
}


/** What of a container outlived it: state dirs, mounts under the state root or bundle, this run's stockade-init, sentry or marked processes. */
export function leftovers(rt: Runtime, bundle?: Bundle, marker?: string): string[] {
  const found: string[] = [];
  for (const d of rt.containerDirs()) found.push(`state dir ${d}`);
  for (const m of listMountsUnder(rt.root)) found.push(`mount ${m.mountpoint}`);
  if (bundle !== undefined) for (const m of listMountsUnder(bundle.dir)) found.push(`mount ${m.mountpoint}`);
  for (const p of runProcesses('stockade-init')) found.push(`process ${p.pid} ${p.cmdline}`);
  for (const p of runProcesses('stockade-sentryd')) found.push(`process ${p.pid} ${p.cmdline}`);
  if (marker !== undefined) for (const p of runProcesses(marker)) found.push(`process ${p.pid} ${p.cmdline}`);
  return found;
}

/** Waits until leftovers() finds nothing; else fails naming what is left (a cascade from an earlier test shows as such). */
export async function leftoversGone(rt: Runtime, bundle?: Bundle, ms = 5000): Promise<void> {
  try {
    await waitFor(() => leftovers(rt, bundle).length === 0, ms);
  } catch {
    throw new Error(`left behind: ${leftovers(rt, bundle).join('; ')}`);
  }
}

export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

export function json<T>(text: string): T {
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new Error(`not JSON: ${JSON.stringify(text.slice(0, 500))}`);
  }
}

/** kB of its own executable (the node binary) that process `pid` has mapped now. */
export function exeMappedKb(pid: number | string): number {
  const exe = realpathSync(`/proc/${pid}/exe`);
  let kb = 0;
  let mine = false;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) mine = line.endsWith(exe);
    else if (mine && line.startsWith('Rss:')) kb += Number(/(\d+)/.exec(line)?.[1]);
  }
  return kb;
}

/** Polls cond every 20 ms until it holds; throws after ms. */
export async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Whether the host has a command on its PATH. */
export function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** A process's parent as /proc shows it (0 when gone). */
export function parentOf(pid: number): number {
  return readProcessStat(pid)?.ppid ?? 0;
}

/**
 * The planners serving `root` (a mkdtemp path: this run's alone), which a front names on the
 * planner's command line and in its environment. Not by the run's tag or cgroup: a planner carries
 * neither (it starts with an environment of its own and leaves its caller's cgroup).
 */
export function plannersOf(root: string): number[] {
  const real = realpathSync(root);
  return processesMarked(real).filter((p) => p.state !== 'Z' && p.cmdline.includes('stockade-planner')).map((p) => p.pid).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`STOCKADE_PLANNER_SERVE=${real}`);
    } catch {
      return false;
    }
  });
}

export function stopPlanners(root: string): void {
  for (const pid of plannersOf(root)) {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  }
}
