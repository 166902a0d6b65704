// Turns a running container and the process to exec in it into the plan stockade-init executes: join, don't create.
import { StockadeError } from '../errors';
import type { Process, Spec } from '../oci/spec';
import { PLAN, type PlanRecord } from '../native/protocol';
import { NAMESPACE_FLAGS, processRecords, rlimitRecords } from './plan';
import type { SeccompProgram } from './seccomp';

export interface ExecPlanOptions {
  id: string;
  /** Host pid of the container's init, whose namespaces the process joins. */
  initPid: number;
  /** The container's cgroup directories (ContainerRecord.cgroupPaths). */
  cgroupPaths: readonly string[];
  /** Where the pty master goes when process.terminal is set. */
  consoleSocket: string | undefined;
  preserveFds: number;
  /** Attached: stockade-init waits for the process and exits with its status. */
  monitor: boolean;
  /** The container's own filter: an exec'd process is confined exactly as the init is. */
  seccomp: SeccompProgram | undefined;
  /** The sentry's filter, for a process exec'd into a container at the sentry level. */
  sentry?: SeccompProgram | undefined;
  /** The runtime's own bounding set, the ceiling of any capability asked for. */
  heldCapabilities: bigint;
  /** Where the init's namespaces are read from; /proc unless a test says otherwise. */
  procRoot?: string;
  /** The container's root as the host sees it, for a container that shares the runtime's mount namespace (TAG_CHROOT). */
  chroot?: string | undefined;
}

// OCI namespace types by their names under /proc/PID/ns.
const PROC_NS_NAME: Readonly<Record<string, string>> = {
  pid: 'pid',
  network: 'net',
  mount: 'mnt',
  ipc: 'ipc',
  uts: 'uts',
  user: 'user',
  cgroup: 'cgroup',
  time: 'time',
};

/**
 * The records for `process` in the container described by `spec`. Every namespace the config
 * lists is joined through the init's /proc/PID/ns entry, whether the init created it or joined it
 * itself, so the process lands exactly where the init is; the user namespace comes first so that
 * the others are joined with the rights it grants.
 */
export function buildExecPlan(spec: Spec, process: Process, opts: ExecPlanOptions): PlanRecord[] {
  const args = process.args ?? [];
  if (args.length === 0) throw new StockadeError('USAGE', 'exec: no command given (process.args is empty)', { field: 'process.args' });
  const procRoot = opts.procRoot ?? '/proc';
  const plan: PlanRecord[] = [];

  for (const path of opts.cgroupPaths) plan.push({ tag: PLAN.TAG_CGROUP_JOIN, path });
  if (opts.chroot !== undefined) plan.push({ tag: PLAN.TAG_CHROOT, path: opts.chroot });

  const types = [...new Set((spec.linux?.namespaces ?? []).map((ns) => ns.type))];
  types.sort((a, b) => (a === 'user' ? -1 : b === 'user' ? 1 : 0));
  for (const type of types) {
    const name = PROC_NS_NAME[type];
    const nstype = NAMESPACE_FLAGS[type];
    if (name === undefined || nstype === undefined) {
      throw new StockadeError('CONFIG_INVALID', `config.json: linux.namespaces: unknown namespace type ${JSON.stringify(type)}`, { field: 'linux.namespaces' });
    }
    plan.push({ tag: PLAN.TAG_JOIN_NS, nstype, path: `${procRoot}/${opts.initPid}/ns/${name}` });
  }
  plan.push({ tag: PLAN.TAG_CLONE_FLAGS, flags: 0 });

  if (opts.monitor) plan.push({ tag: PLAN.TAG_MONITOR });
  if (process.terminal === true) {
    if (opts.consoleSocket === undefined) {
      throw new StockadeError('USAGE', 'exec: a terminal was asked for but there is no console socket to send it to', { field: 'process.terminal' });
    }
    plan.push({ tag: PLAN.TAG_CONSOLE_SOCKET, path: opts.consoleSocket }, { tag: PLAN.TAG_TERMINAL });
    const size = process.consoleSize;
    if (size !== undefined) plan.push({ tag: PLAN.TAG_CONSOLE_SIZE, rows: Math.min(size.height, 0xffff), cols: Math.min(size.width, 0xffff) });
  }

  plan.push(...rlimitRecords(process));
  // As runc's exec: the process gets a session keyring of the container's, not the caller's.
  plan.push({ tag: PLAN.TAG_SESSION_KEYRING, name: `_ses.${opts.id}` });
  plan.push(...processRecords(process, args, opts));
  return plan;
}
