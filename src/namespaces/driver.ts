// The driver of a level whose workload is a host process: namespaces, and (with a syscall supervisor) the sentry.
//
// What the lifecycle did for every container before there were drivers: stockade-init's plan on
// the host, the start socket, pidfd signals, the cgroup freezer, cgroup limits, the pids of the
// cgroup and its statistics. The sentry's driver is this one given the sentry's supervisor
// (src/sentry/driver.ts): the workload is the same host process, its syscalls served by another.
import { effectiveResources } from '../cgroups';
import { requireCgroups, containerCgroups } from '../container/cgroups';
import { forceKill } from '../container/kill';
import type { LevelDriver } from '../container/level';
import type { SupervisedLevel } from '../container/supervisor';
import { signalHost } from './signal';
import { releaseStart } from './start';
import { hostStatus } from './status';

export interface HostDriverOptions {
  /** The level's name in the registry. */
  readonly name: string;
  /**
   * The supervisor that serves the workload's syscalls (the sentry's), made on first use: a call
   * that only reads, signals or deletes a container never pays for its filter and tables.
   */
  readonly supervised?: (() => SupervisedLevel) | undefined;
}

export function hostProcessDriver(opts: HostDriverOptions): LevelDriver {
  let level: SupervisedLevel | undefined;
  const supervised = (): SupervisedLevel | undefined => {
    if (opts.supervised === undefined) return undefined;
    level ??= opts.supervised();
    return level;
  };
  return {
    name: opts.name,
    prepare(spec) {
      const sup = supervised();
      if (sup === undefined) return spec;
      sup.validate?.(spec);
      // A supervised workload always runs with no_new_privs: a setuid binary or file capabilities
      // would otherwise grant privileges the supervisor never decided on.
      return spec.process === undefined || spec.process.noNewPrivileges === true
        ? spec
        : { ...spec, process: { ...spec.process, noNewPrivileges: true } };
    },
    // Required here, not above: planning and launching bring the plan encoder, the seccomp
    // compiler and the launcher, which state, kill and delete never need.
    plan: (req) => (require('./create') as typeof import('./create')).planHostProcess(req, supervised()),
    start: (c, hookState) => releaseStart(c, hookState),
    async signal(c, req) {
      signalHost(c, req);
    },
    exec: (c, req) => (require('./exec') as typeof import('./exec')).execHostProcess(c, req, supervised()),
    async pause(c) {
      await requireCgroups(c.record, 'pause').freeze();
    },
    async resume(c) {
      requireCgroups(c.record, 'resume').thaw();
    },
    async update(c, resources, warn) {
      const cgroups = requireCgroups(c.record, 'update');
      // The device rules stay the config's: they go with the limits into the cgroup's program.
      cgroups.apply(effectiveResources(resources, c.store.readConfig(c.id).linux?.devices), warn);
    },
    async stats(c) {
      const cgroups = requireCgroups(c.record, 'read the statistics of');
      return { stats: cgroups.stats(), oomKills: cgroups.oomKills() };
    },
    async pids(c) {
      return requireCgroups(c.record, 'list the processes of').pids().sort((a, b) => a - b);
    },
    async status(c) {
      return hostStatus(c);
    },
    async destroy(c, status) {
      if (status === 'stopped') return;
      // A frozen task holds its SIGKILL until thawed.
      if (status === 'paused') containerCgroups(c.record)?.thaw();
      await forceKill(c.record.pid, c.record.pidStartTime, c.record.pidMntNs ?? '');
    },
  };
}
