// create: validate the bundle, take the id, record the container, and have its level's driver make the workload.
import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { effectiveResources, managerFor, type CgroupManager } from '../cgroups';
import { StockadeError } from '../errors';
import { readInputFile } from '../oci/input-file';
import { parseConfig } from '../oci/validate';
import type { Spec } from '../oci/spec';
import type { ContainerId } from './id';
import { hasCreateHooks, hookState, runCreateHooks, runHooksWarning, type HookState, type Warn } from './hooks';
import { NAMESPACE_FLAGS, type PlanOptions } from './plan';
import { mark } from '../log/timing';
import { writeLightRecord } from './light';
import { readMountNamespace, readProcessStat } from './process-identity';
import { emptyCgroup } from './cgroups';
import { forceKill } from './kill';
import { checkPidFile, writePidFile } from './pid-file';
import { StateStore, type ContainerRecord } from './state-store';
import { ISOLATION_ANNOTATION, NETWORK_ANNOTATION, oneOf, type LevelEntry, type Levels, type SandboxOptions, type Workload } from './level';

export type { SandboxOptions } from './level';

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
  /** The isolation levels to choose from (the config's dev.stockade.isolation, else their default). */
  levels: Levels;
  /** What `stockade do` asks beyond a config (undefined for create and run). */
  sandbox?: SandboxOptions | undefined;
}

export interface Created {
  record: ContainerRecord;
  /** The workload as its level's driver made it: its exit (run, do) and what to wait for after delete. */
  workload: Workload;
}

let idTaken: ((store: StateStore, id: ContainerId) => void) | undefined;

/**
 * Told each time create has taken an id (its state directory made): the planner tells its front,
 * so that were the planner lost before the call ends, the call's cold retry removes it first.
 */
export function setIdTakenHook(hook: ((store: StateStore, id: ContainerId) => void) | undefined): void {
  idTaken = hook;
}

/** Said by a call that holds an id before create takes it: run --image, once the image's overlay is mounted under it. */
export function tellIdTaken(store: StateStore, id: ContainerId): void {
  idTaken?.(store, id);
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
  const level = levelOf(given, opts.levels);
  const driver = opts.levels.driver(level.name);
  const spec = driver.prepare(given);
  // Only where the directories go is worked out here; they are made once the id is ours.
  const cgroups = managerFor(spec.linux?.cgroupsPath, id);
  let record: ContainerRecord | undefined;
  let pid = 0;
  const planned = driver.plan({
    store,
    id,
    bundle,
    spec,
    cgroups,
    consoleSocket: opts.consoleSocket === undefined ? undefined : resolve(opts.consoleSocket),
    preserveFds: opts.preserveFds ?? 0,
    noPivot: opts.noPivot ?? false,
    noNewKeyring: opts.noNewKeyring ?? false,
    monitor: opts.monitor ?? false,
    rootfsMode: opts.rootfsMode ?? 'bind',
    sandbox: opts.sandbox,
    hasCreateHooks: hasCreateHooks(spec),
    createHooks: () => runCreateHooks(spec, hookState(created(record), 'creating')),
    onPid: (p) => {
      pid = p;
      const r = created(record);
      r.pid = p;
      r.pidStartTime = readProcessStat(p)?.startTime ?? '';
      store.write(id, r);
    },
    debug: opts.debug,
    warn: opts.warn,
  });

  const lock = store.createLocked(id, (spec.linux?.namespaces ?? []).some((ns) => ns.type === 'user'));
  idTaken?.(store, id);
  let workload: Workload | undefined;
  let poststop: HookState | undefined;
  try {
    record = {
      ociVersion: spec.ociVersion,
      id,
      pid: 0,
      pidStartTime: '',
      bundle,
      rootfs: resolve(bundle, spec.root?.path ?? 'rootfs'),
      created: new Date().toISOString(),
      owner: userInfo().username,
      annotations: spec.annotations ?? {},
      level: level.name,
      ownPidNamespace: (spec.linux?.namespaces ?? []).some((ns) => NAMESPACE_FLAGS[ns.type] !== undefined && ns.type === 'pid' && (ns.path ?? '') === ''),
      // Recorded only when false: the container's mounts are the host's until delete detaches them.
      ...((spec.linux?.namespaces ?? []).some((ns) => ns.type === 'mount') ? {} : { ownMountNamespace: false }),
      createdOk: false,
      cgroupPaths: cgroups === undefined ? [] : [...cgroups.paths],
      ...(opts.sandbox?.tiedTo === undefined ? {} : { heldBy: { pid: opts.sandbox.tiedTo, startTime: readProcessStat(opts.sandbox.tiedTo)?.startTime ?? '' } }),
    };
    store.write(id, record);
    // exec, update and delete read the config again; the environment only the process needs.
    store.writeConfig(id, opts.sandbox?.envOnDisk === false && spec.process !== undefined ? { ...spec, process: { ...spec.process, env: [] } } : spec);
    mark('state written');
    await cgroups?.create(effectiveResources(spec.linux?.resources, spec.linux?.devices), (m) => (opts.warn ?? opts.debug)?.(m));
    mark('cgroups made');
    poststop = hookState(record, 'stopped');
    workload = await planned.create();
    if (workload.data !== undefined) record.levelData = workload.data;
    await workload.created(record);
    // Read now, not at the pid: the workload's process has entered the container's namespaces by the time it is done.
    record.pidMntNs = readMountNamespace(record.pid);
    record.createdOk = true;
    store.write(id, record);
    writeLightRecord(store, id, record, spec, level.light);
    if (opts.pidFile !== undefined) writePidFile(opts.pidFile, pid);
    if (opts.monitor !== true) await workload.exit;
    opts.debug?.(`created container ${id} with pid ${pid}`);
    return { record, workload };
  } catch (caught) {
    workload?.abort();
    const e = oomExplained(caught, cgroups, spec);
    await cleanupFailedCreate(store, id, pid, cgroups, e);
    // As runc: the container is gone, so its poststop hooks run (they may undo what createRuntime did).
    if (poststop !== undefined) await runHooksWarning(spec, 'poststop', { ...poststop, pid }, opts.warn);
    throw e;
  } finally {
    lock.release();
  }
}

/** The record once create has written it: the driver reports the pid and runs hooks only after. */
function created(record: ContainerRecord | undefined): ContainerRecord {
  if (record === undefined) throw new Error('create: the driver acted before the container was recorded');
  return record;
}

/**
 * The level the container runs at: its config's annotation, else the runtime's default; refused
 * when this build cannot run it, or when the config asks for what the level cannot keep.
 */
function levelOf(spec: Spec, levels: Levels): LevelEntry {
  const named = spec.annotations?.[ISOLATION_ANNOTATION];
  const name = named ?? levels.default;
  const level = levels.entry(name);
  if (level === undefined || level.unavailable !== undefined) {
    const offered = oneOf(levels.entries.filter((l) => l.unavailable === undefined).map((l) => l.name));
    const field = `annotations["${ISOLATION_ANNOTATION}"]`;
    throw named === undefined
      ? new StockadeError('USAGE', `--isolation ${name} is not available: ${offered}`)
      : new StockadeError('CONFIG_INVALID', `config.json: ${field}: must be ${offered}, not ${JSON.stringify(name)}`, { field });
  }
  const network = spec.annotations?.[NETWORK_ANNOTATION];
  if (!level.networkPolicy && network !== undefined && network !== 'all') {
    // Fail closed: a policy the level cannot keep is not silently dropped.
    const field = `annotations["${NETWORK_ANNOTATION}"]`;
    const keepers = oneOf(levels.entries.filter((l) => l.networkPolicy && l.unavailable === undefined).map((l) => l.name));
    throw new StockadeError('CONFIG_INVALID', `config.json: ${field}: a network policy needs isolation ${keepers} (this container runs at ${name})`, { field });
  }
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
