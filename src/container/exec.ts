// exec: runs a new process inside a created or running container, attached (passing its exit status on) or detached.
import { resolve } from 'node:path';
import { StockadeError } from '../errors';
import { mark } from '../log/timing';
import { driven, statusOf } from './driver-of';
import { parseSubCgroups } from './exec-cgroup';
import { execProcess, type ExecProcessFlags } from './exec-process';
import type { ContainerId } from './id';
import type { ExecProcess, Levels } from './level';
import { assertCanPerform } from './status';
import { checkPidFile, writePidFile } from './pid-file';
import type { StateStore } from './state-store';

export interface ExecOptions extends ExecProcessFlags {
  store: StateStore;
  id: ContainerId;
  detach: boolean;
  consoleSocket?: string | undefined;
  pidFile?: string | undefined;
  preserveFds: number;
  ignorePaused: boolean;
  debug?: (msg: string) => void;
  /** The levels: the process runs at its container's, through that level's driver. */
  levels: Levels;
  /** --cgroup values: [CONTROLLER[,CONTROLLER...]:]PATH, sub-cgroups (that exist) of the container's to join. */
  subCgroups?: readonly string[] | undefined;
  /** Attached, with stdio as pipes to this process and no signal passed on (the SDK): see ExecRequest.pipes. */
  pipes?: boolean | undefined;
}

/** Starts the process; detached, returns 0 once it runs; attached, returns its exit status (128+N for signal N). */
export async function execInContainer(opts: ExecOptions): Promise<number> {
  return (await startExec(opts)).finish();
}

/** Starts the process and returns it running (the pid file written): the caller waits with finish(). */
export async function startExec(opts: ExecOptions): Promise<ExecProcess> {
  const { store, id } = opts;
  if (opts.preserveFds < 0) throw new StockadeError('USAGE', 'exec: --preserve-fds must not be negative');
  if (opts.pidFile !== undefined) checkPidFile(opts.pidFile);
  const subCgroups = parseSubCgroups(opts.subCgroups ?? []);
  mark('exec');
  const lock = await store.lock(id);
  mark('exec locked');
  let started: ExecProcess;
  try {
    const d = driven(opts.levels, store, id, store.read(id));
    const status = await statusOf(d);
    if (status === 'paused' && !opts.ignorePaused) {
      throw new StockadeError('STATE_TRANSITION', `cannot exec in paused container ${id} (use --ignore-paused to override)`, { id, from: status, operation: 'exec' });
    }
    if (status !== 'paused') assertCanPerform('exec', status, id);
    mark('exec status read');
    const config = store.readConfig(id);
    const proc = execProcess(config, opts);
    mark('exec process built');
    if (proc.selinuxLabel !== undefined || proc.apparmorProfile !== undefined) {
      // As create does: this build applies neither (features reports both disabled).
      opts.debug?.('exec: process label and AppArmor profile are not applied by this build');
    }
    const terminal = proc.terminal === true;
    // runc's rules: a detached pty goes to a console socket; an attached one is relayed by us.
    if (opts.detach && terminal && opts.consoleSocket === undefined) {
      throw new StockadeError('USAGE', 'exec: cannot allocate a tty when detaching without --console-socket');
    }
    if ((!opts.detach || !terminal) && opts.consoleSocket !== undefined) {
      throw new StockadeError('USAGE', 'exec: --console-socket needs both --detach and --tty');
    }
    started = await d.driver.exec(d.container, {
      process: proc,
      config,
      detach: opts.detach,
      consoleSocket: opts.consoleSocket === undefined ? undefined : resolve(opts.consoleSocket),
      preserveFds: opts.preserveFds,
      subCgroups,
      paused: status === 'paused',
      unlock: () => lock.release(),
      debug: opts.debug,
      pipes: opts.pipes,
    });
  } finally {
    // Held until the process runs, so a delete cannot tear the container down under a half-joined process.
    lock.release();
  }

  if (opts.pidFile !== undefined) {
    try {
      writePidFile(opts.pidFile, started.pid);
    } catch (e) {
      // The caller would have no pid to manage the process by: it must not run on unaccounted.
      started.kill();
      throw e;
    }
  }
  return started;
}
