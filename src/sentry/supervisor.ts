// The sentry seen from the runtime: a process of its own (stockade-sentryd) per container or pod,
// whether the runtime waits for the container (do, run) or not (create, run --detach), which
// processes exec'd into the container and the containers of its pod join; and the filter that
// sends it calls.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { CAPABILITIES } from '../abi/linux/constants';
import type { GuardTarget, ProcessRef, SupervisedLevel, SuperviseContext, Supervisor } from '../container/supervisor';
import { NETWORK_ANNOTATION } from '../container/level';
import { watchSupervisor, watchSupervisorRemote } from './watch';
import { supervisorSpawner, type SupervisorProcess, type SupervisorSpawner } from '../native/supervisor-spawner';
import { isSameLiveProcess, readProcessStat } from '../container/process-identity';
import { parseNetPolicy } from './net-policy';
import type { Mount, Spec } from '../oci/spec';
import { sendFd, socketpair, unixConnect } from '../native/addon';
import type { Creds } from './creds';
import type { Logger } from '../log/logger';
import { SENTRY_JOIN_SOCKET, TRACE_SOCKET } from '../container/sentry-mounts';
import { compileSentryFilter } from './syscalls';
import type { JoinRequest } from './host';
import { DAEMON_NODE_FLAGS, privateSocket, type DaemonConfig } from './daemon-config';
import { isPodSandbox, podSandbox } from '../container/pod';
import { StockadeError } from '../errors';
import { chargedDirs, joinCharged } from '../cgroups/charge';

/** The sentry's configuration as the runtime holds it: DaemonConfig, with the identity's capabilities a mask. */
export type SentryConfig = Omit<DaemonConfig, 'user'> & { readonly user: Creds };

/** An identity as the sentry's configuration and a join message carry it: JSON has no bigint. */
function wireUser(user: Creds): DaemonConfig['user'] {
  return { ...user, caps: user.caps.toString() };
}

/** A function that closes `fd` the first time it is called and does nothing after: a supervisor's copy of stockade-init's socket, closed at launch or on abort. */
function closerOf(fd: number): () => void {
  let open = true;
  return () => {
    if (!open) return;
    open = false;
    closeSync(fd);
  };
}

/**
 * A container's `stockade trace` and join sockets, listening in its state directory, root's alone;
 * each fd goes on `held` as soon as it is made, for the caller to close once the sentry holds them.
 */
function containerSockets(stateDir: string, held: number[]): { trace: number; joins: number } {
  const trace = privateSocket(join(stateDir, TRACE_SOCKET));
  held.push(trace);
  const joins = privateSocket(join(stateDir, SENTRY_JOIN_SOCKET));
  held.push(joins);
  return { trace, joins };
}

/** The sentry's script: the compiled module beside this one, or, from the bundled CLI, the bundle's entry (which runs it with its code cache). */
function daemonScript(): string {
  const module = join(__dirname, 'daemon.js');
  return existsSync(module) ? module : join(__dirname, 'stockade-sentryd-entry.js');
}

/**
 * Serves from a process of its own, in its own session, that exits when the last supervised
 * process is gone: one sentry per container (or pod), whether this process waits for the
 * container or not. It gets its end of the socket as fd 3. Its errors (and with traceAll, its
 * trace) go where this process's stderr goes when this process waits for the container (do,
 * run), else to sentry.log in the state directory: nobody reads a create's stderr once it is done.
 * It is moved into the container's CPU and memory cgroups (`charged`, cgroups/charge.ts) before it
 * serves anything: the CPU it spends on the workload's calls is the workload's, and counts against
 * its limit (a `--cpus 0.1` container took 5-7 times its own CPU per call in its sentry's, uncounted),
 * and a wake-up between the workload and its sentry stays within one group, which the scheduler
 * lets preempt (bench/supervisor-cpu.sh: a supervisor apart from its workload's CPU cgroup waited
 * 70-90 us per call in the run queue). What Node allocated before the move stays charged where it
 * started (cgroup v1 moves no charge).
 */
function sentryProcess(cfg: SentryConfig, stateDir: string, attached: boolean, charged: readonly string[]): Supervisor {
  const [mine, theirs] = socketpair();
  const config: DaemonConfig = { ...cfg, user: wireUser(cfg.user) };
  let daemon: ChildProcess;
  const held = [mine];
  try {
    // Listening before the sentry starts: a `trace` or `exec` right after `create` returns finds them.
    const { trace, joins } = containerSockets(stateDir, held);
    const log = attached ? 'inherit' : openSync(join(stateDir, 'sentry.log'), 'a', 0o600);
    if (log !== 'inherit') held.push(log);
    // DAEMON_SOCKET_FD, DAEMON_TRACE_FD, DAEMON_JOIN_FD.
    daemon = spawn(process.execPath, [...DAEMON_NODE_FLAGS, daemonScript(), JSON.stringify(config)], {
      detached: true,
      stdio: ['ignore', 'ignore', log, mine, trace, joins],
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
    });
    // Fail closed: a sentry outside the container's cgroup would take CPU past its limit.
    if (daemon.pid !== undefined) {
      try {
        joinCharged(daemon.pid, charged);
      } catch (e) {
        daemon.kill('SIGKILL');
        throw e;
      }
    }
  } catch (e) {
    closeSync(theirs);
    throw e;
  } finally {
    for (const fd of held) closeSync(fd);
  }
  // Read before this process's event loop can reap it: the pid is still the sentry's.
  const started = daemon.pid === undefined ? undefined : readProcessStat(daemon.pid);
  const server = daemon.pid === undefined || started === undefined ? undefined : { pid: daemon.pid, startTime: started.startTime };
  // A create leaves it behind; a do or run waits for it (`done`), which must keep this process's
  // event loop alive until it is gone.
  if (!attached) daemon.unref();
  const done = new Promise<void>((resolve) => {
    daemon.once('exit', () => resolve());
    daemon.once('error', () => resolve());
  });
  const closeTheirs = closerOf(theirs);
  return {
    server,
    guard: (target) => guarded(server, target),
    childSocket: theirs,
    launched: closeTheirs,
    done,
    abort: () => {
      closeTheirs();
      daemon.kill('SIGKILL');
    },
  };
}

/**
 * sentryProcess, started by the CLI call's front for the resident planner serving it
 * (supervisor-spawner.ts): the same process, command line, environment and fds, a child of the
 * call's process as in a cold call, not of the planner.
 */
async function remoteSentryProcess(spawnRemote: SupervisorSpawner, cfg: SentryConfig, stateDir: string, attached: boolean, charged: readonly string[]): Promise<Supervisor> {
  const [mine, theirs] = socketpair();
  const config: DaemonConfig = { ...cfg, user: wireUser(cfg.user) };
  let daemon: SupervisorProcess;
  const held = [mine];
  try {
    const { trace, joins } = containerSockets(stateDir, held);
    const log = attached ? 'inherit' : openSync(join(stateDir, 'sentry.log'), 'a', 0o600);
    if (log !== 'inherit') held.push(log);
    daemon = await spawnRemote({
      command: process.execPath,
      args: [...DAEMON_NODE_FLAGS, daemonScript(), JSON.stringify(config)],
      detached: true,
      stdio: ['ignore', 'ignore', log, mine, trace, joins],
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
    });
    try {
      joinCharged(daemon.pid, charged);
    } catch (e) {
      daemon.kill('SIGKILL');
      throw e;
    }
  } catch (e) {
    closeSync(theirs);
    throw e;
  } finally {
    for (const fd of held) closeSync(fd);
  }
  const started = readProcessStat(daemon.pid);
  const server = started === undefined ? undefined : { pid: daemon.pid, startTime: started.startTime };
  const done = daemon.exited.then(() => undefined);
  const closeTheirs = closerOf(theirs);
  return {
    server,
    guard: (target) => guarded(server, target),
    childSocket: theirs,
    launched: closeTheirs,
    done,
    abort: () => {
      closeTheirs();
      daemon.kill('SIGKILL');
    },
  };
}

/**
 * The sentry acts for a caller with the caller's capabilities, and it holds them in the host's
 * user namespace: for a workload in a user namespace of its own, whose capabilities the kernel
 * honours only over what that namespace maps, it would act as host root (a container root read a
 * host file bound in that the namespaces level refuses it). Its thread cannot enter the
 * workload's namespace (Node is multi-threaded): refused.
 */
function refuseUserNamespace(spec: Spec): void {
  if ((spec.linux?.namespaces ?? []).some((ns) => ns.type === 'user')) {
    throw new StockadeError('CONFIG_INVALID',
      'config.json: linux.namespaces: the sentry level does not run a container in a user namespace (it would act for the workload with the host\'s capabilities); use --isolation namespaces',
      { field: 'linux.namespaces' });
  }
}

/** Fail closed: the workload must not outlive the process that serves its calls. */
function guarded(server: ProcessRef | undefined, target: GuardTarget): void | Promise<void> {
  if (server === undefined) throw new StockadeError('SYSTEM', `container ${target.id}: its sentry is not running`, { id: target.id });
  // Served by a planner: the watch is started by the call's front, as the sentry is.
  const remote = supervisorSpawner();
  if (remote !== undefined) return watchSupervisorRemote(remote, server, target);
  watchSupervisor(server, target);
}

/**
 * The config's network policy as the sentry is given it (checked here: a bad one is the config's
 * error, named, before anything is made), or undefined for `all`.
 */
function networkOf(spec: Spec): string | undefined {
  const text = spec.annotations?.[NETWORK_ANNOTATION];
  if (text === undefined) return undefined;
  const field = `annotations["${NETWORK_ANNOTATION}"]`;
  try {
    const p = parseNetPolicy(text, field);
    return p.kind === 'all' ? undefined : text;
  } catch (e) {
    throw new StockadeError('CONFIG_INVALID', `config.json: ${(e as Error).message}`, { field });
  }
}

export { podSandbox } from '../container/pod';

/**
 * Joins a container's detached sentry (SentryHost) over its join socket at `path`, and returns the
 * supervisor stockade-init is handed; undefined when no sentry takes joins there.
 * - For a process exec'd into that container (`container` undefined): sends the process's
 *   identity and one end of a socket pair, whose other end stockade-init sends the process's
 *   listener over. The sentry holds the container's mounts already.
 * - For another container of the sandbox's pod: the container's id too, and its own trace and
 *   join sockets, made here in its state directory so that `stockade trace` and `exec` reach it
 *   as they reach every other container; stockade-init sends its own /proc and /sys clones, then
 *   its listener.
 * Nothing of this process serves, so there is nothing to wait for.
 */
function joinSentry(cfg: SentryConfig, path: string, container?: { readonly id: string; readonly stateDir: string; readonly server: ProcessRef }): Supervisor | undefined {
  let conn: number;
  try {
    conn = unixConnect(path);
  } catch {
    return undefined;
  }
  const [mine, theirs] = socketpair();
  const held = [mine, conn];
  try {
    const req: JoinRequest = { user: wireUser(cfg.user), hostname: cfg.hostname, domainname: cfg.domainname, network: cfg.network, container: container?.id };
    sendFd(conn, mine, Buffer.from(`J${JSON.stringify(req)}`));
    if (container !== undefined) {
      const { trace, joins } = containerSockets(container.stateDir, held);
      sendFd(conn, trace, Buffer.from('T'));
      sendFd(conn, joins, Buffer.from('S'));
    }
  } catch {
    closeSync(theirs);
    return undefined;
  } finally {
    for (const fd of held) closeSync(fd);
  }
  const closeTheirs = closerOf(theirs);
  const server = container?.server;
  return { server, guard: (target) => guarded(server, target), childSocket: theirs, launched: closeTheirs, done: Promise.resolve(), abort: closeTheirs };
}

/**
 * The host and domain names of a pod's container that joins its sandbox's UTS namespace (CRI gives
 * such a container a uts path and no hostname): the sandbox's, as the kernel would show it in that
 * namespace; nothing to override for a container with a UTS namespace of its own.
 */
function sharedNames(spec: Spec, sandboxDir: string): { hostname?: string; domainname?: string } {
  const uts = spec.linux?.namespaces?.find((ns) => ns.type === 'uts');
  if (uts?.path === undefined || uts.path === '') return {};
  let sandboxSpec: Spec;
  try {
    const record = JSON.parse(readFileSync(join(sandboxDir, 'state.json'), 'utf8')) as { bundle?: unknown };
    if (typeof record.bundle !== 'string') return {};
    sandboxSpec = JSON.parse(readFileSync(join(record.bundle, 'config.json'), 'utf8')) as Spec;
  } catch {
    return {};
  }
  return { hostname: sandboxSpec.hostname ?? '', domainname: sandboxSpec.domainname ?? '' };
}

/** The sentry a container's state record names as serving it, while that process lives. */
function recordedServer(stateDir: string): ProcessRef | undefined {
  let record: unknown;
  try {
    record = JSON.parse(readFileSync(join(stateDir, 'state.json'), 'utf8'));
  } catch {
    return undefined;
  }
  // The sentry's levelData keeps it (namespaces/create.ts's SupervisedData); a record older than levelData, at the top.
  const r = typeof record === 'object' && record !== null ? record as { supervisor?: unknown; levelData?: unknown } : undefined;
  const data = typeof r?.levelData === 'object' && r.levelData !== null ? (r.levelData as { supervisor?: unknown }) : undefined;
  const s = data?.supervisor ?? r?.supervisor;
  if (typeof s !== 'object' || s === null) return undefined;
  const { pid, startTime } = s as { pid?: unknown; startTime?: unknown };
  if (typeof pid !== 'number' || typeof startTime !== 'string' || !isSameLiveProcess(pid, startTime)) return undefined;
  return { pid, startTime };
}

/** CAP_* names as the kernel's bit mask; names this table lacks add nothing. */
function capabilityMask(names: readonly string[]): bigint {
  let mask = 0n;
  for (const n of names) {
    const bit = (CAPABILITIES as readonly string[]).indexOf(n);
    if (bit >= 0) mask |= 1n << BigInt(bit);
  }
  return mask;
}

export interface SentryLevelOptions {
  /** Every traced call on the sentry's stderr (STOCKADE_SENTRY_TRACE=1). */
  readonly traceAll?: boolean | undefined;
  /** Where refusals are recorded: the --log file. Without one they are counted only (and traced). */
  readonly log?: Logger | undefined;
  /** Where compiled filters are kept between calls (the state root's cache). */
  readonly cacheDir?: string | undefined;
  /** How long an open may wait for a FIFO's other end or a device (STOCKADE_SENTRY_BLOCK_LIMIT_MS). */
  readonly blockLimitMs?: number | undefined;
  /** false: no call served by the native fast path (STOCKADE_SENTRY_FAST=0), to compare against it. */
  readonly fastPath?: boolean | undefined;
}

/**
 * The config's procfs at /proc and sysfs at /sys: the sentry resolves paths under them in clones of
 * their mount trees, and the workload's own mount namespace holds neither, so no call the sentry
 * lets the kernel finish (execve, chdir, O_PATH and FIFO opens) can reach a magic link or a
 * host-wide file through them.
 */
export function sentryMounts(mounts: readonly Mount[]): string[] {
  const owned: string[] = [];
  for (const m of mounts) {
    const dest = posix.normalize(m.destination).replace(/(.)\/+$/, '$1');
    if ((dest === '/proc' && m.type === 'proc') || (dest === '/sys' && m.type === 'sysfs')) {
      // A later mount over the same destination hides the earlier one: hand over what is on top.
      if (!owned.includes(dest)) owned.push(dest);
    }
  }
  return owned;
}

/** The sentry as create's and exec's supervised level: a sentry process per container, or the one its pod or container already has. */
export function sentryLevel(opts: SentryLevelOptions = {}): SupervisedLevel {
  // Refusals go through the sentry, which answers the same errno and records them.
  const compiled = compileSentryFilter(undefined, { reportDenials: true }, opts.cacheDir);
  return {
    filter: { flags: compiled.flags, program: compiled.program },
    ownedMounts: sentryMounts,
    validate(spec): void {
      networkOf(spec);
      refuseUserNamespace(spec);
    },
    supervise(ctx: SuperviseContext): Supervisor | Promise<Supervisor> {
      refuseUserNamespace(ctx.spec);
      const user = ctx.spec.process?.user;
      // A container of a pod (its sandbox named in CRI's annotations) joins the sandbox's sentry.
      const sandbox = podSandbox(ctx.spec.annotations, ctx.id);
      const sandboxDir = sandbox === undefined ? undefined : join(ctx.stateDir, '..', sandbox);
      const cfg: SentryConfig = {
        user: {
          uid: user?.uid ?? 0, gid: user?.gid ?? 0, groups: user?.additionalGids ?? [],
          caps: capabilityMask(ctx.spec.process?.capabilities?.effective ?? []),
        },
        hostname: ctx.spec.hostname ?? '',
        domainname: ctx.spec.domainname ?? '',
        joinSocket: join(ctx.stateDir, SENTRY_JOIN_SOCKET),
        traceAll: opts.traceAll === true,
        log: opts.log?.file,
        debug: opts.log?.debugging === true,
        cacheDir: opts.cacheDir,
        blockLimitMs: opts.blockLimitMs,
        fastPath: opts.fastPath !== false,
        id: ctx.id,
        network: networkOf(ctx.spec),
        ...(sandboxDir === undefined ? {} : sharedNames(ctx.spec, sandboxDir)),
      };
      // A process exec'd into a container joins the container's sentry: the same /proc and /sys,
      // trace and --log records.
      if (ctx.exec === true) {
        const joined = joinSentry(cfg, cfg.joinSocket);
        if (joined === undefined) {
          throw new StockadeError('SYSTEM', `container ${ctx.id}: its sentry is not serving (no process joins it at ${cfg.joinSocket})`, { id: ctx.id });
        }
        return joined;
      }
      // A container of a pod joins the sentry of the pod's sandbox, when that one serves (else,
      // as a runtime without pods would, it gets one of its own).
      // Only a sentry whose process is known: the container must die with it (watch.ts).
      const server = sandboxDir === undefined ? undefined : recordedServer(sandboxDir);
      const pod = sandboxDir === undefined || server === undefined ? undefined
        : joinSentry(cfg, join(sandboxDir, SENTRY_JOIN_SOCKET), { id: ctx.id, stateDir: ctx.stateDir, server });
      if (pod !== undefined) return pod;
      // A pod's sandbox sentry serves the pod's other containers after the sandbox is deleted, and its
      // cgroup could not be removed while it does: it stays where it started (not charged).
      const charged = isPodSandbox(ctx.spec.annotations) ? [] : chargedDirs(ctx.cgroupPaths ?? []);
      const remote = supervisorSpawner();
      if (remote !== undefined) return remoteSentryProcess(remote, cfg, ctx.stateDir, !ctx.detached, charged);
      return sentryProcess(cfg, ctx.stateDir, !ctx.detached, charged);
    },
  };
}
