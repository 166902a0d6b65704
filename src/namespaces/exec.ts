// exec at a host-process level: stockade-init joins the container's namespaces and cgroups and starts the process there.
import { join } from 'node:path';
import { StockadeError } from '../errors';
import { mark } from '../log/timing';
import { launchInit, type InitProcess, type Launched } from '../native/launcher';
import { encodePlan } from '../native/protocol';
import { hierarchyOf, hostLayout } from '../cgroups';
import { randomBytes } from 'node:crypto';
import { ConsoleRelay, ptyPipes, relayTerminal } from '../container/console-relay';
import { subCgroupDirs } from '../container/exec-cgroup';
import { buildExecPlan } from '../container/exec-plan';
import { forceKill } from '../container/kill';
import type { ExecProcess, ExecRequest, LevelContainer } from '../container/level';
import { heldCapabilities } from '../container/plan';
import { readProcessStat } from '../container/process-identity';
import { seccompFor } from '../container/seccomp';
import { signalForwarder, type SignalForwarder } from '../container/signal-forward';
import type { SupervisedLevel, Supervisor } from '../container/supervisor';

/** How long a piped exec's exit waits for its pty's output to end (what a process left behind may hold open). */
const PTY_END_GRACE_MS = 1000;

export async function execHostProcess(c: LevelContainer, req: ExecRequest, level: SupervisedLevel | undefined): Promise<ExecProcess> {
  const { store, id, record } = c;
  const proc = { ...req.process };
  // The container's wall is the exec'd process's too: under a supervisor it joins the
  // container's supervisor process (the sentry's /proc and /sys, trace and --log records).
  if (level !== undefined) proc.noNewPrivileges = true;
  const terminal = proc.terminal === true;
  let relay: ConsoleRelay | undefined;
  let forwarder: SignalForwarder | undefined;
  let supervisor: Supervisor | undefined;
  let launched: Launched;
  try {
    // Named per call: one program may exec with a terminal into one container several times at once (the SDK).
    if (terminal && !req.detach) relay = ConsoleRelay.listen(join(store.root, `.exec-tty-${id}-${randomBytes(4).toString('hex')}.sock`));
    const consoleSocket = relay?.path ?? req.consoleSocket;
    if (level !== undefined) {
      supervisor = await level.supervise({ spec: { ...req.config, process: proc }, id, stateDir: store.dir(id), detached: true, exec: true });
    }
    const plan = encodePlan(buildExecPlan(req.config, proc, {
      id,
      initPid: record.pid,
      cgroupPaths: subCgroupDirs(record.cgroupPaths ?? [], req.subCgroups, controllersOf),
      consoleSocket,
      preserveFds: req.preserveFds,
      monitor: !req.detach,
      seccomp: seccompFor(req.config, store.root, req.debug),
      sentry: level?.filter,
      heldCapabilities: heldCapabilities(),
      // Its root is no mount namespace's: the process is put in it as the init is (runc's exec
      // would run it in the host's root).
      chroot: record.ownMountNamespace === false ? store.rootfsMountpoint(id) : undefined,
    }));
    // Piped (the SDK), the caller's own signals are its own: none is passed on.
    mark('exec planned');
    if (!req.detach && req.pipes !== true) forwarder = signalForwarder();
    // A process joining a frozen cgroup is frozen before it reports ready; the resume that thaws
    // it takes the lock, so it must not be ours meanwhile.
    if (req.paused) req.unlock();
    const piped = req.pipes === true && !req.detach;
    // Piped with a terminal, the process's stdio is the pty: the helper's own is nobody's.
    launched = await launch(plan, req.preserveFds, supervisor?.childSocket, piped ? (terminal ? 'ignore' : 'pipe') : 'inherit');
    supervisor?.launched();
    req.debug?.(`exec in container ${id}: process ${launched.pid}`);
  } catch (e) {
    supervisor?.abort();
    forwarder?.stop();
    relay?.close();
    throw e;
  }
  const fwd = forwarder;
  let pty: ReturnType<typeof ptyPipes> | undefined;
  if (req.pipes === true && !req.detach && relay !== undefined) {
    // stockade-init sent the master before it reported ready: the connection is waiting.
    try {
      pty = ptyPipes(relay.receiveMaster());
    } catch (e) {
      try { process.kill(-launched.pid, 'SIGKILL'); } catch { /* already gone */ }
      throw e;
    }
  }
  const pipes = pty?.stdio ?? launched.pipes;
  if (pipes !== undefined) {
    // Once stockade-init has reaped the process its pid may be another's: no signal after that.
    let reaped = false;
    void launched.helperExit.then(() => { reaped = true; });
    return {
      pid: launched.pid,
      stdio: pipes,
      ...(pty === undefined ? {} : { resize: pty.resize }),
      kill(): void {
        if (reaped) return;
        // Its process group too (stockade-init made it a session leader): what a shell started
        // for it must not hold its pipes open after it.
        try { process.kill(-launched.pid, 'SIGKILL'); } catch { /* already gone */ }
        try { process.kill(launched.pid, 'SIGKILL'); } catch { /* already gone */ }
      },
      async finish(): Promise<number> {
        const { code, signal } = await launched.helperExit;
        // The pty may still hold the process's last output when the helper reports its exit: the
        // exit is told once the master is read to its end, so a caller that reads stdout until
        // the exit has all of it. Bounded: a process left in the background may hold the slave.
        if (pty !== undefined) await Promise.race([pty.read, new Promise((r) => setTimeout(r, PTY_END_GRACE_MS))]);
        if (code === null) throw new StockadeError('SYSTEM', `stockade-init was killed by ${signal ?? 'a signal'} while waiting for the exec'd process`);
        return code;
      },
    };
  }
  return {
    pid: launched.pid,
    kill(): void {
      try { process.kill(launched.pid, 'SIGKILL'); } catch { /* already gone */ }
      fwd?.stop();
    },
    async finish(): Promise<number> {
      if (fwd === undefined) {
        await launched.helperExit;
        return 0;
      }
      fwd.to(launched.pid, readProcessStat(launched.pid)?.startTime ?? '');
      const tty = relay === undefined ? undefined : relayTerminal(relay.receiveMaster());
      const { code, signal } = await launched.helperExit;
      if (tty !== undefined) {
        // The pty may still hold the process's last output when the helper reports its exit.
        await Promise.race([tty.finished, new Promise((r) => setTimeout(r, 500))]);
        tty.stop();
      }
      fwd.stop();
      if (code === null) throw new StockadeError('SYSTEM', `stockade-init was killed by ${signal ?? 'a signal'} while waiting for the exec'd process`);
      return code;
    },
  };
}

/** The controllers of a v1 hierarchy's directory; undefined for cgroup2 (or a directory of no hierarchy). */
function controllersOf(dir: string): readonly string[] | undefined {
  const h = hierarchyOf(hostLayout(), dir);
  return h === undefined || h.version === 2 ? undefined : h.controllers;
}

/** Launches the plan; on failure neither the helper nor a half-started process outlives the call. */
async function launch(plan: Buffer, preserveFds: number, sentrySocket: number | undefined, stdio: 'inherit' | 'ignore' | 'pipe'): Promise<Launched> {
  let pid = 0;
  let helper: InitProcess | undefined;
  let helperExit: Launched['helperExit'] | undefined;
  try {
    return await launchInit({
      plan,
      preserveFds,
      ...(sentrySocket === undefined ? {} : { sentrySocket }),
      awaitExec: true,
      ...(stdio === 'inherit' ? {} : { stdio }),
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
