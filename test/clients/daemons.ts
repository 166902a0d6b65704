// Starts a client's daemon on a private directory and takes it, and all it left, away again.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { listMountsUnder } from '../helpers/cleanup';
import { processesMarked } from '../helpers/run-scope';
import { sleep } from './exec';

/**
 * A fresh state directory for one client. Short and under /tmp on purpose: unix socket paths
 * (the daemon's, containerd's below dockerd's exec root) must fit in 107 bytes.
 */
export function makeStateDir(client: string): string {
  return mkdtempSync(`/tmp/sc-${client}-`);
}

/** Whether a program is on PATH, found the way spawn would. */
export function onPath(program: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = join(dir, program);
    try {
      if (statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

export class Daemon {
  readonly #child: ChildProcess;
  readonly #log: string;
  #exited = false;

  private constructor(child: ChildProcess, log: string) {
    this.#child = child;
    this.#log = log;
    // after() stops daemons in order; this is for a test process that dies before it runs.
    const orphaned = (): void => { if (!this.#exited) child.kill('SIGKILL'); };
    process.once('exit', orphaned);
    child.on('exit', () => {
      this.#exited = true;
      process.removeListener('exit', orphaned);
    });
  }

  /** Spawns argv with its output in log, and waits until ready() says yes (or throws with the log's tail). */
  static async start(argv: readonly string[], log: string, ready: () => Promise<boolean>, timeout = 60_000): Promise<Daemon> {
    const fd = openSync(log, 'a');
    const [file, ...args] = argv;
    if (file === undefined) throw new Error('Daemon.start: empty argv');
    let child: ChildProcess;
    try {
      child = spawn(file, args, { stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd);
    }
    const daemon = new Daemon(child, log);
    const end = Date.now() + timeout;
    for (;;) {
      if (daemon.#exited) throw new Error(`${file} exited while starting:\n${daemon.logTail()}`);
      let isReady: boolean;
      try {
        isReady = await ready();
      } catch (e) {
        // ready() saw the daemon fail for good: no point waiting, nor leaving it running.
        await daemon.stop();
        throw e;
      }
      if (isReady) return daemon;
      if (Date.now() > end) {
        await daemon.stop();
        throw new Error(`${file} not ready after ${timeout} ms:\n${daemon.logTail()}`);
      }
      await sleep(200);
    }
  }

  get pid(): number | undefined { return this.#child.pid; }

  logTail(): string {
    try {
      return readFileSync(this.#log, 'utf8').split('\n').slice(-20).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** SIGTERM, and SIGKILL after grace ms; resolves once the process has exited, true if it took the SIGKILL. */
  async stop(grace = 20_000): Promise<boolean> {
    if (this.#exited) return false;
    const exited = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.kill('SIGTERM');
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      this.#child.kill('SIGKILL');
    }, grace);
    await exited;
    clearTimeout(timer);
    return killed;
  }
}

function killProcessesMentioning(dir: string): string[] {
  const killed: string[] = [];
  // dir is this client's mkdtemp directory: only its daemons, shims and containers name it.
  for (const p of processesMarked(dir)) {
    if (p.pid === process.pid) continue;
    try {
      process.kill(p.pid, 'SIGKILL');
      killed.push(`${p.pid} ${p.cmdline}`);
    } catch {
      // gone already
    }
  }
  return killed;
}

// Deepest first, so a parent never goes before a child.
function removeEmptyCgroupTree(path: string): void {
  if (!existsSync(path)) return;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) removeEmptyCgroupTree(join(path, entry.name));
  }
  try {
    rmdirSync(path);
  } catch {
    // still populated: left for whoever populates it
  }
}

/** stockade's planners serving a root below dir: pid and root (the last word of `node stockade-planner.js ROOT`). */
function plannersBelow(dir: string): { pid: number; root: string }[] {
  return processesMarked(dir).filter((p) => p.state !== 'Z' && p.cmdline.includes('stockade-planner.js ')).map((p) => ({
    pid: p.pid, root: p.cmdline.slice(p.cmdline.indexOf('stockade-planner.js ') + 'stockade-planner.js '.length),
  })).filter((p) => p.root.startsWith(`${dir}/`));
}

/**
 * A state root's planner is stockade's own resident process (docs/design/planner.md): it leaves
 * after an idle minute, or within two seconds once its root is removed, which is how an operator
 * done with a private root ends it. So its root goes first, and the planner is waited for, not
 * swept: only one still there after that is reported (it failed to leave).
 */
async function removePlannerRoots(dir: string): Promise<void> {
  const planners = plannersBelow(dir);
  if (planners.length === 0) return;
  for (const { root } of planners) rmSync(root, { recursive: true, force: true });
  const end = Date.now() + 6000;
  while (Date.now() < end && plannersBelow(dir).length > 0) await sleep(200);
}

/**
 * After a client's daemons have stopped: ends stockade's planners of roots below dir by removing
 * those roots (removePlannerRoots), then kills any process still naming dir (shims, conmon,
 * container processes the daemon lost), unmounts what is left below dir, deletes dir, and removes
 * the named cgroup directories (relative to each hierarchy) where they are empty. Returns what
 * it had to clean up, for the test to report: a clean stop leaves nothing.
 */
export async function sweep(dir: string, cgroupParents: readonly string[]): Promise<string[]> {
  const found: string[] = [];
  await removePlannerRoots(dir);
  for (const p of killProcessesMentioning(dir)) found.push(`process ${p}`);
  if (found.length > 0) await sleep(500);
  const mounts = listMountsUnder(dir).map((m) => m.mountpoint).sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    found.push(`mount ${m}`);
    spawnSync('umount', ['-l', m]);
  }
  rmSync(dir, { recursive: true, force: true });
  for (const parent of cgroupParents) {
    for (const hierarchy of readdirSync('/sys/fs/cgroup')) removeEmptyCgroupTree(join('/sys/fs/cgroup', hierarchy, parent));
  }
  return found;
}
