// create: validate the bundle, take the id, run stockade-init's plan, record the container.
import { mkdirSync } from 'node:fs';
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { effectiveResources, managerFor, type CgroupManager } from '../cgroups';
import { StockadeError } from '../errors';
import { launchInit, type Launched } from '../native/launcher';
import { encodePlan } from '../native/protocol';
import { readInputFile } from '../oci/input-file';
import { parseConfig } from '../oci/validate';
import type { Spec } from '../oci/spec';
import type { ContainerId } from './id';
import { hasCreateHooks, hookState, runCreateHooks, runHooksWarning, type HookState, type Warn } from './hooks';
import { buildPlan, heldCapabilities, NAMESPACE_FLAGS, type PlanOptions } from './plan';
import { mark } from '../log/timing';
import { writeLightRecord } from './light';
import { readMountNamespace, readProcessStat } from './process-identity';
import { seccompFor } from './seccomp';
import { emptyCgroup } from './cgroups';
import { forceKill } from './kill';
import { checkPidFile, writePidFile } from './pid-file';
import { StateStore, type ContainerRecord } from './state-store';
import { watchSupervisor } from './supervisor-watch';
import { ISOLATION_ANNOTATION, NETWORK_ANNOTATION, type IsolationLevels, type SupervisedLevel, type Supervisor } from './supervisor';

export interface CreateOptions {
  store: StateStore;
  id: ContainerId;
  bundle: string;
  /** A spec built in memory (`stockade do`); otherwise bundle/config.json is read. */
  spec?: Spec;
  pidFile?: string | undefined;
  consoleSocket?: string | undefined;
  preserveFds?: number;
  noPivot?: boolean;
  noNewKeyring?: boolean;
  monitor?: boolean;
  rootfsMode?: PlanOptions['rootfsMode'];
  debug?: (msg: string) => void;
  /** Where a failing poststop hook (run when a failed create is cleaned up) is reported. */
  warn?: Warn | undefined;
  /** The isolation levels to choose from (the config's dev.stockade.isolation, else the default); namespaces when absent. */
  levels?: IsolationLevels | undefined;
  /** What `stockade do` asks beyond a config (undefined for create and run). */
  sandbox?: SandboxOptions | undefined;
}

export interface SandboxOptions {
  /** An init in front of the command (stockade-init's TAG_INIT). */
  init: boolean;
  /** The container dies with this process (TAG_TIED; it must be stockade-init's parent, this one). */
  tiedTo?: number | undefined;
  /** false: the environment given to the process is kept off disk (the stored config has none). */
  envOnDisk: boolean;
  /** Options of the tmpfs an overlay root (--rw) keeps its writes on (size=...). */
  overlayTmpfs?: string | undefined;
  /** The init ends the process at timeoutMs, everything graceMs later, and exits with 124. */
  timeout?: { timeoutMs: number; graceMs: number } | undefined;
}

export interface Created {
  record: ContainerRecord;
  launched: Launched;
  /** The workload's supervisor, at a supervised level. */
  supervisor?: Supervisor | undefined;
}

export function loadSpec(bundle: string): Spec {
  const path = resolve(bundle, 'config.json');
  const read = readInputFile(path);
  if (!read.ok) {
    const missing = read.errno === 'ENOENT' || read.errno === 'ENOTDIR';
    throw new StockadeError('BUNDLE_INVALID', `bundle ${bundle}: config.json ${missing ? 'not found' : read.problem}`, { path });
  }
  return parseConfig(read.text, 'config.json');
}

export async function createContainer(opts: CreateOptions): Promise<Created> {
  const { store, id } = opts;
  const bundle = resolve(opts.bundle);
  // Everything that can be checked without side effects is checked before the id is taken.
  mark('create');
  if (opts.pidFile !== undefined) checkPidFile(opts.pidFile);
  const given = opts.spec ?? loadSpec(bundle);
  mark('config validated');
  // A supervised workload always runs with no_new_privs: a setuid binary or file capabilities
  // would otherwise grant privileges the supervisor never decided on.
  const level = levelOf(given, opts.levels);
  const spec = level === undefined || given.process === undefined || given.process.noNewPrivileges === true
    ? given
    : { ...given, process: { ...given.process, noNewPrivileges: true } };
  // Only where the directories go is worked out here; they are made once the id is ours.
  const cgroups = managerFor(spec.linux?.cgroupsPath, id);
  const planOpts: PlanOptions = {
    id,
    bundle,
    rootfsMountpoint: store.rootfsMountpoint(id),
    startSocket: store.startSocket(id),
    consoleSocket: opts.consoleSocket === undefined ? undefined : resolve(opts.consoleSocket),
    preserveFds: opts.preserveFds ?? 0,
    noPivot: opts.noPivot ?? false,
    noNewKeyring: opts.noNewKeyring ?? false,
    monitor: opts.monitor ?? false,
    rootfsMode: opts.rootfsMode ?? 'bind',
    createHooks: hasCreateHooks(spec),
    heldCapabilities: heldCapabilities(),
    seccomp: seccompFor(spec, store.root, opts.debug),
    sentry: level?.filter,
    sentryMounts: level?.ownedMounts(spec.mounts ?? []) ?? [],
    cgroupPaths: cgroups === undefined ? [] : [...cgroups.paths],
    init: opts.sandbox?.init ?? false,
    tiedTo: opts.sandbox?.tiedTo,
    overlayTmpfs: opts.sandbox?.overlayTmpfs,
    initTimeout: opts.sandbox?.timeout,
  };
  mark('seccomp');
  const plan = encodePlan(buildPlan(spec, planOpts));
  mark('planned');

  const lock = store.createLocked(id, (spec.linux?.namespaces ?? []).some((ns) => ns.type === 'user'));
  let pid = 0;
  let supervisor: Supervisor | undefined;
  let poststop: HookState | undefined;
  try {
    mkdirSync(planOpts.rootfsMountpoint, { mode: 0o700 });
    // The supervisor first, as soon as the state directory is ours: a sentry process takes longer
    // to start than stockade-init takes to set the container up, and the container's first call
    // waits for it.
    supervisor = level?.supervise({ spec, id, stateDir: store.dir(id), detached: !planOpts.monitor });
    const record: ContainerRecord = {
      ociVersion: spec.ociVersion,
      id,
      pid: 0,
      pidStartTime: '',
      bundle,
      rootfs: resolve(bundle, spec.root?.path ?? 'rootfs'),
      created: new Date().toISOString(),
      owner: userInfo().username,
      annotations: spec.annotations ?? {},
      isolation: level === undefined ? 'namespaces' : 'sentry',
      ownPidNamespace: (spec.linux?.namespaces ?? []).some((ns) => NAMESPACE_FLAGS[ns.type] !== undefined && ns.type === 'pid' && (ns.path ?? '') === ''),
      // Recorded only when false: the container's mounts are the host's until delete detaches them.
      ...((spec.linux?.namespaces ?? []).some((ns) => ns.type === 'mount') ? {} : { ownMountNamespace: false }),
      createdOk: false,
      cgroupPaths: planOpts.cgroupPaths,
      supervisor: supervisor?.server,
      ...(opts.sandbox?.tiedTo === undefined ? {} : { heldBy: { pid: opts.sandbox.tiedTo, startTime: readProcessStat(opts.sandbox.tiedTo)?.startTime ?? '' } }),
    };
    store.write(id, record);
    // exec, update and delete read the config again; the environment only the process needs.
    store.writeConfig(id, opts.sandbox?.envOnDisk === false && spec.process !== undefined ? { ...spec, process: { ...spec.process, env: [] } } : spec);
    mark('state written');
    await cgroups?.create(effectiveResources(spec.linux?.resources, spec.linux?.devices), (m) => (opts.warn ?? opts.debug)?.(m));
    mark('cgroups made');
    poststop = hookState(record, 'stopped');
    const launched = await launchInit({
      plan,
      preserveFds: planOpts.preserveFds,
      ...(supervisor === undefined ? {} : { sentrySocket: supervisor.childSocket }),
      onPid: (p) => {
        pid = p;
        record.pid = p;
        record.pidStartTime = readProcessStat(p)?.startTime ?? '';
        store.write(id, record);
      },
      // Only HOOKF.CREATE exists; the pid is in the record by now (MSG_PID comes first).
      onHook: () => runCreateHooks(spec, hookState(record, 'creating')),
    });
    mark('init done');
    if (supervisor !== undefined) {
      // Fail closed: the workload must not outlive the process that serves its calls.
      if (supervisor.server === undefined) throw new StockadeError('SYSTEM', `container ${id}: its sentry is not running`, { id });
      watchSupervisor(supervisor.server, {
        id, stateDir: store.dir(id), init: { pid, startTime: record.pidStartTime },
        ownPidNamespace: record.ownPidNamespace, cgroupPaths: record.cgroupPaths,
      });
      mark('sentry watched');
    }
    supervisor?.launched();
    // Read now, not at the pid: stockade-init has entered the container's namespaces by the time it is done.
    record.pidMntNs = readMountNamespace(record.pid);
    record.createdOk = true;
    store.write(id, record);
    writeLightRecord(store, id, record, spec);
    if (opts.pidFile !== undefined) writePidFile(opts.pidFile, pid);
    if (!planOpts.monitor) await launched.helperExit;
    opts.debug?.(`created container ${id} with pid ${pid}`);
    return { record, launched, supervisor };
  } catch (caught) {
    supervisor?.abort();
    const e = oomExplained(caught, cgroups, spec);
    await cleanupFailedCreate(store, id, pid, cgroups, e);
    // As runc: the container is gone, so its poststop hooks run (they may undo what createRuntime did).
    if (poststop !== undefined) await runHooksWarning(spec, 'poststop', { ...poststop, pid }, opts.warn);
    throw e;
  } finally {
    lock.release();
  }
}

/** The level the container runs at: its config's annotation, else the runtime's default. */
function levelOf(spec: Spec, levels: IsolationLevels | undefined): SupervisedLevel | undefined {
  const named = spec.annotations?.[ISOLATION_ANNOTATION];
  const name = named ?? levels?.default ?? 'namespaces';
  if (name !== 'namespaces' && name !== 'sentry') {
    const field = `annotations["${ISOLATION_ANNOTATION}"]`;
    throw named === undefined
      ? new StockadeError('USAGE', `--isolation ${name} is not available: namespaces or sentry`)
      : new StockadeError('CONFIG_INVALID', `config.json: ${field}: must be namespaces or sentry, not ${JSON.stringify(name)}`, { field });
  }
  const network = spec.annotations?.[NETWORK_ANNOTATION];
  if (name === 'namespaces' && network !== undefined && network !== 'all') {
    // Fail closed: a policy the namespaces level cannot keep is not silently dropped.
    const field = `annotations["${NETWORK_ANNOTATION}"]`;
    throw new StockadeError('CONFIG_INVALID', `config.json: ${field}: a network policy needs isolation sentry (this container runs at namespaces)`, { field });
  }
  if (name === 'namespaces') return undefined;
  const level = levels?.level(name);
  level?.validate?.(spec);
  return level;
}

/** A setup killed by the OOM killer is a memory limit too low to start in: say so, naming the field. */
function oomExplained(e: unknown, cgroups: CgroupManager | undefined, spec: Spec): unknown {
  let kills = 0n;
  try {
    kills = cgroups?.oomKills() ?? 0n;
  } catch { /* the original error stands */ }
  if (kills === 0n) return e;
  const field = 'linux.resources.memory.limit';
  return new StockadeError('CGROUP_FAILED', `${field}: the container was killed for lack of memory while it was being set up (limit ${spec.linux?.resources?.memory?.limit ?? '?'} bytes is too low): ${(e as Error).message}`, { field }, { cause: e });
}

/** Leaves nothing behind: the container's processes, the cgroups it made, then its state directory. */
async function cleanupFailedCreate(store: StateStore, id: ContainerId, pid: number, cgroups: CgroupManager | undefined, cause: unknown): Promise<void> {
  const problems: string[] = [];
  if (pid > 0) {
    const stat = readProcessStat(pid);
    if (stat !== undefined) {
      try {
        await forceKill(pid, stat.startTime);
      } catch (e) {
        problems.push(`cannot kill container init ${pid}: ${(e as Error).message}`);
      }
    }
  }
  if (cgroups !== undefined) {
    try {
      // A cgroup that was there before (a cgroupsPath shared with others) is not ours to empty.
      if (cgroups.paths.every((p) => cgroups.made.includes(p))) await emptyCgroup(cgroups);
      await cgroups.undo();
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  try {
    store.remove(id);
  } catch (e) {
    problems.push(`cannot remove ${store.dir(id)}: ${(e as Error).message}`);
  }
  if (problems.length > 0 && cause instanceof Error) {
    cause.message = `${cause.message}; cleanup also failed: ${problems.join('; ')}`;
  }
}
