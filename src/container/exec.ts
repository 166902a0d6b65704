// exec: runs a new process inside a created or running container, attached (passing its exit status on) or detached.
import type { ChildProcess } from 'node:child_process';
import { join, resolve } from 'node:path';
import { StockadeError } from '../errors';
import { launchInit, type Launched } from '../native/launcher';
import { encodePlan } from '../native/protocol';
import { hierarchyOf, hostLayout } from '../cgroups';
import { ConsoleRelay, relayTerminal } from './console-relay';
import { parseSubCgroups, subCgroupDirs } from './exec-cgroup';
import { buildExecPlan } from './exec-plan';
import { execProcess, type ExecProcessFlags } from './exec-process';
import type { ContainerId } from './id';
import { forceKill } from './kill';
import { heldCapabilities } from './plan';
import { readProcessStat } from './process-identity';
import { seccompFor } from './seccomp';
import { signalForwarder, type SignalForwarder } from './signal-forward';
import { assertCanPerform } from './status';
import { checkPidFile, writePidFile } from './pid-file';
import type { StateStore } from './state-store';
import type { IsolationLevels, Supervisor } from './supervisor';

export interface ExecOptions extends ExecProcessFlags {
  store: StateStore;
  id: ContainerId;
  detach: boolean;
  consoleSocket?: string | undefined;
  pidFile?: string | undefined;
  preserveFds: number;
  ignorePaused: boolean;
  debug?: (msg: string) => void;
  /** The levels this runtime can supervise at: a process exec'd into a sentry container gets a sentry too. */
  levels?: IsolationLevels | undefined;
  /** --cgroup values: [CONTROLLER[,CONTROLLER...]:]PATH, sub-cgroups (that exist) of the container's to join. */
  subCgroups?: readonly string[] | undefined;
}

/** Starts the process; detached, returns 0 once it runs; attached, returns its exit status (128+N for signal N). */
export async function execInContainer(opts: ExecOptions): Promise<number> {
  const { store, id } = opts;
  if (opts.preserveFds < 0) throw new StockadeError('USAGE', 'exec: --preserve-fds must not be negative');
  if (opts.pidFile !== undefined) checkPidFile(opts.pidFile);
  const subCgroups = parseSubCgroups(opts.subCgroups ?? []);
  const lock = await store.lock(id);
  let relay: ConsoleRelay | undefined;
  let forwarder: SignalForwarder | undefined;
  let launched: Launched;
  let supervisor: Supervisor | undefined;
  try {
    const record = store.read(id);
    const status = store.status(id, record);
    if (status === 'paused' && !opts.ignorePaused) {
      throw new StockadeError('STATE_TRANSITION', `cannot exec in paused container ${id} (use --ignore-paused to override)`, { id, from: status, operation: 'exec' });
    }
    if (status !== 'paused') assertCanPerform('exec', status, id);
    const config = store.readConfig(id);
    const proc = execProcess(config, opts);
    if (proc.selinuxLabel !== undefined || proc.apparmorProfile !== undefined) {
      // As create does: this build applies neither (features reports both disabled).
      opts.debug?.('exec: process label and AppArmor profile are not applied by this build');
    }
    // The container's wall is the exec'd process's too: at the sentry level it joins the
    // container's sentry process, with its /proc and /sys, trace and --log records.
    const level = record.isolation === 'sentry' ? opts.levels?.level('sentry') : undefined;
    if (record.isolation === 'sentry' && level === undefined) {
      throw new StockadeError('UNSUPPORTED', `exec: container ${id} runs under the sentry, which this runtime cannot start`, { id });
    }
    if (level !== undefined) proc.noNewPrivileges = true;
    const terminal = proc.terminal === true;
    // runc's rules: a detached pty goes to a console socket; an attached one is relayed by us.
    if (opts.detach && terminal && opts.consoleSocket === undefined) {
      throw new StockadeError('USAGE', 'exec: cannot allocate a tty when detaching without --console-socket');
    }
    if ((!opts.detach || !terminal) && opts.consoleSocket !== undefined) {
      throw new StockadeError('USAGE', 'exec: --console-socket needs both --detach and --tty');
    }
    if (terminal && !opts.detach) relay = ConsoleRelay.listen(join(store.root, `.exec-console-${id}-${process.pid}.sock`));
    const consoleSocket = relay?.path ?? (opts.consoleSocket === undefined ? undefined : resolve(opts.consoleSocket));
    if (level !== undefined) {
      supervisor = level.supervise({ spec: { ...config, process: proc }, id, stateDir: store.dir(id), detached: true, exec: true });
    }
    const plan = encodePlan(buildExecPlan(config, proc, {
      id,
      initPid: record.pid,
      cgroupPaths: subCgroupDirs(record.cgroupPaths ?? [], subCgroups, controllersOf),
      consoleSocket,
      preserveFds: opts.preserveFds,
      monitor: !opts.detach,
      seccomp: seccompFor(config, store.root, opts.debug),
      sentry: level?.filter,
      heldCapabilities: heldCapabilities(),
      // Its root is no mount namespace's: the process is put in it as the init is (runc's exec
      // would run it in the host's root).
      chroot: record.ownMountNamespace === false ? store.rootfsMountpoint(id) : undefined,
    }));
    if (!opts.detach) forwarder = signalForwarder();
    // A process joining a frozen cgroup is frozen before it reports ready; the resume that thaws
    // it takes the lock, so it must not be ours meanwhile.
    if (status === 'paused') lock.release();
    launched = await launch(plan, opts.preserveFds, supervisor?.childSocket);
    supervisor?.launched();
    opts.debug?.(`exec in container ${id}: process ${launched.pid}`);
  } catch (e) {
    supervisor?.abort();
    forwarder?.stop();
    relay?.close();
    throw e;
  } finally {
    // Held until the process runs, so a delete cannot tear the container down under a half-joined process.
    lock.release();
  }

  if (opts.pidFile !== undefined) {
    try {
      writePidFile(opts.pidFile, launched.pid);
    } catch (e) {
      // The caller would have no pid to manage the process by: it must not run on unaccounted.
      try { process.kill(launched.pid, 'SIGKILL'); } catch { /* already gone */ }
      forwarder?.stop();
      throw e;
    }
  }
  if (forwarder === undefined) {
    await launched.helperExit;
    return 0;
  }
  forwarder.to(launched.pid, readProcessStat(launched.pid)?.startTime ?? '');
  const tty = relay === undefined ? undefined : relayTerminal(relay.receiveMaster());
  const { code, signal } = await launched.helperExit;
  if (tty !== undefined) {
    // The pty may still hold the process's last output when the helper reports its exit.
    await Promise.race([tty.finished, new Promise((r) => setTimeout(r, 500))]);
    tty.stop();
  }
  forwarder.stop();
  if (code === null) throw new StockadeError('SYSTEM', `stockade-init was killed by ${signal ?? 'a signal'} while waiting for the exec'd process`);
  return code;
}

/** The controllers of a v1 hierarchy's directory; undefined for cgroup2 (or a directory of no hierarchy). */
function controllersOf(dir: string): readonly string[] | undefined {
  const h = hierarchyOf(hostLayout(), dir);
  return h === undefined || h.version === 2 ? undefined : h.controllers;
}

/** Launches the plan; on failure neither the helper nor a half-started process outlives the call. */
async function launch(plan: Buffer, preserveFds: number, sentrySocket: number | undefined): Promise<Launched> {
  let pid = 0;
  let helper: ChildProcess | undefined;
  let helperExit: Launched['helperExit'] | undefined;
  try {
    return await launchInit({
      plan,
      preserveFds,
      ...(sentrySocket === undefined ? {} : { sentrySocket }),
      awaitExec: true,
      onPid: (p) => { pid = p; },
      onSpawn: (h, exit) => { helper = h; helperExit = exit; },
    });
  } catch (e) {
    const problems: string[] = [];
    const stat = pid > 0 ? readProcessStat(pid) : undefined;
    if (stat !== undefined && stat.state !== 'Z') {
      await forceKill(pid, stat.startTime).catch((k: unknown) => problems.push(`cannot kill process ${pid}: ${(k as Error).message}`));
    }
    if (helperExit !== undefined) {
      const exited = await Promise.race([helperExit.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
      if (!exited) {
        helper?.kill('SIGKILL');
        await helperExit;
      }
    }
    if (problems.length > 0 && e instanceof Error) e.message = `${e.message}; cleanup also failed: ${problems.join('; ')}`;
    throw e;
  }
}
