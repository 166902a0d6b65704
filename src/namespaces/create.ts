// create at a host-process level: stockade-init runs the plan on the host, with the syscall supervisor's filter when there is one.
import { mkdirSync } from 'node:fs';
import { StockadeError } from '../errors';
import { launchInit } from '../native/launcher';
import { encodePlan } from '../native/protocol';
import type { CreatePlan, CreateRequest, Workload } from '../container/level';
import { buildPlan, heldCapabilities, type PlanOptions } from '../container/plan';
import { seccompFor } from '../container/seccomp';
import type { SupervisedLevel, Supervisor } from '../container/supervisor';
import { mark } from '../log/timing';

/** What the sentry driver keeps in the record's levelData: the process serving the container's calls. */
export interface SupervisedData {
  readonly supervisor: { readonly pid: number; readonly startTime: string };
}

/** The plan is built (and the config's every problem found) here, before the id is taken. */
export function planHostProcess(req: CreateRequest, level: SupervisedLevel | undefined): CreatePlan {
  const { store, id, spec } = req;
  const planOpts: PlanOptions = {
    id,
    bundle: req.bundle,
    rootfsMountpoint: store.rootfsMountpoint(id),
    startSocket: store.startSocket(id),
    consoleSocket: req.consoleSocket,
    preserveFds: req.preserveFds,
    noPivot: req.noPivot,
    noNewKeyring: req.noNewKeyring,
    monitor: req.monitor,
    rootfsMode: req.rootfsMode,
    createHooks: req.hasCreateHooks,
    heldCapabilities: heldCapabilities(),
    seccomp: seccompFor(spec, store.root, req.debug),
    sentry: level?.filter,
    sentryMounts: level?.ownedMounts(spec.mounts ?? []) ?? [],
    cgroupPaths: req.cgroups === undefined ? [] : [...req.cgroups.paths],
    init: req.sandbox?.init ?? false,
    tiedTo: req.sandbox?.tiedTo,
    overlayTmpfs: req.sandbox?.overlayTmpfs,
    initTimeout: req.sandbox?.timeout,
    idmaps: req.sandbox?.idmaps,
    resolvedBinds: req.sandbox?.resolvedBinds,
    hold: req.sandbox?.hold,
  };
  mark('seccomp');
  const plan = encodePlan(buildPlan(spec, planOpts));
  mark('planned');
  return { create: () => createHostProcess(req, level, plan, planOpts.rootfsMountpoint) };
}

async function createHostProcess(req: CreateRequest, level: SupervisedLevel | undefined, plan: Buffer, rootfsMountpoint: string): Promise<Workload> {
  const { store, id, spec } = req;
  mkdirSync(rootfsMountpoint, { mode: 0o700 });
  let supervisor: Supervisor | undefined;
  try {
    // The supervisor first: a sentry process takes longer to start than stockade-init takes to
    // set the container up, and the container's first call waits for it.
    supervisor = await level?.supervise({ spec, id, stateDir: store.dir(id), detached: !req.monitor, cgroupPaths: req.cgroups?.paths });
    let pid = 0;
    const launched = await launchInit({
      plan,
      preserveFds: req.preserveFds,
      ...(supervisor === undefined ? {} : { sentrySocket: supervisor.childSocket }),
      onPid: (p) => {
        pid = p;
        req.onPid(p);
      },
      // Only HOOKF.CREATE exists; the pid is in the record by now (MSG_PID comes first).
      onHook: () => req.createHooks(),
      // A container held open for exec runs nothing that would read or write the caller's stdio.
      ...(req.sandbox?.hold === true ? { stdio: 'ignore' as const } : {}),
    });
    mark('init done');
    const sup = supervisor;
    const data: SupervisedData | undefined = sup?.server === undefined ? undefined : { supervisor: { pid: sup.server.pid, startTime: sup.server.startTime } };
    return {
      pid,
      data,
      monitor: req.monitor ? launched.helper : undefined,
      exit: launched.helperExit,
      done: sup?.done ?? Promise.resolve(),
      async created(record): Promise<void> {
        if (sup === undefined) return;
        // Fail closed: the workload must not outlive the process that serves its calls.
        if (sup.server === undefined) throw new StockadeError('SYSTEM', `container ${id}: its sentry is not running`, { id });
        await sup.guard({
          id, stateDir: store.dir(id), init: { pid, startTime: record.pidStartTime },
          ownPidNamespace: record.ownPidNamespace, cgroupPaths: record.cgroupPaths,
        });
        mark('sentry watched');
        sup.launched();
      },
      abort(): void {
        sup?.abort();
      },
    };
  } catch (e) {
    supervisor?.abort();
    throw e;
  }
}
