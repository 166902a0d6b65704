// The vm level's driver: each container in a microVM of its own, a local keeper process standing for its workload.
//
// create starts the keeper (keeper.ts), which joins the container's cgroups, boots the VM and has
// the container made in it; the keeper's pid is the container's pid (state.json, --pid-file), it
// relays stdio and signals and exits with the workload's status. Every later verb asks the keeper
// over vm.sock in the state directory (keeper-client.ts), except those that must work when it
// cannot answer: status (files and the keeper's liveness), pause/resume (the cgroup freezer over
// the keeper, QEMU and virtiofsd: the whole VM stops), a SIGKILL (the cgroup), destroy.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, posix, resolve } from 'node:path';
import { managerFromPaths, type CgroupManager } from '../cgroups';
import { emptyStats } from '../cgroups/stats';
import { StockadeError } from '../errors';
import type { Spec } from '../oci/spec';
import type {
  CreatePlan, CreateRequest, ExecProcess, ExecRequest, LevelContainer, LevelDriver, LevelStats, SignalRequest, Workload,
} from '../container/level';
import { NETWORK_ANNOTATION } from '../container/level';
import { emptyCgroup, signalCgroup } from '../container/cgroups';
import { isSameLiveProcess, waitGone } from '../container/process-identity';
import type { Status } from '../container/status';
import type { MountIdmap } from '../container/plan';
import type { VmBind } from './vm';
import { vmProcesses, killVm } from './host-processes';
import { keeperNotify, keeperRequest, keeperStart, startKeeper, startExecStandIn } from './keeper-client';
import {
  KEEPER_EXITED, KEEPER_LOG, KEEPER_NET, KEEPER_PAUSED, POOL_DIR, KEEPER_SOCKET, KEEPER_STARTED, KEEPER_VM, POD_NAMESPACES, type KeeperConfig, type PodMembership, type PodNamespace,
} from './keeper-wire';
import { isPodSandbox, podSandbox } from '../container/pod';
import { balloonTarget, guestLimits, hostResources, podVmSize, vmSize } from './sizing';
import { FIRST_NS_INO_END } from './network';
import { vmmUnavailable } from './vmm';
import { ensureGuestAssets, type GuestAssets } from './assets';
import { mark } from '../log/timing';
import type { Template } from './template';

const SIGKILL = 9;

/**
 * The host paths the config's bind mounts name, shared with the VM at boot (virtiofs shares are
 * fixed then): read-only where every mount of that source asks for ro.
 */
function bindSources(spec: Spec, bundle: string, idmaps: ReadonlyMap<string, MountIdmap> | undefined, resolved = false): VmBind[] {
  const out = new Map<string, boolean>();
  const mapped = new Map<string, MountIdmap>();
  for (const m of spec.mounts ?? []) {
    const opts = m.options ?? [];
    if (m.type !== 'bind' && !opts.includes('bind') && !opts.includes('rbind')) continue;
    if (m.source === undefined || m.source === '/sys' || m.source === '/proc') continue;
    const source = isAbsolute(m.source) ? m.source : join(bundle, m.source);
    out.set(source, (out.get(source) ?? true) && opts.includes('ro'));
    const idmap = idmaps?.get(m.destination);
    if (idmap !== undefined) mapped.set(source, idmap);
  }
  // do --bind SRC:rw whose command is not the caller: id-mapped on the host, where the share is made
  // (the guest's 6.1 kernel cannot id-map a virtiofs or 9p mount, and must not be trusted to).
  // do's --bind sources were resolved and checked: shared only if no symlink is on them by then.
  return [...out].map(([source, readonly]) => ({ source, readonly, ...(mapped.has(source) ? { idmap: mapped.get(source) } : {}), ...(resolved ? { nofollow: true } : {}) }));
}

/**
 * Host networking at vm is refused: the VM's devices are wired to the container's network
 * namespace's interfaces and take all their traffic (src/vm/network.ts); done to the host's, the
 * host's own interfaces would carry the guest's traffic only, which is not what a user asking for
 * host networking means (docs/design/vm.md, Network).
 */
function refuseHostNetwork(spec: Spec): void {
  const net = spec.linux?.namespaces?.find((ns) => ns.type === 'network');
  const field = 'linux.namespaces';
  const why = 'a vm container cannot share the host\'s network (host networking); give it a network namespace of its own';
  if (net === undefined) throw new StockadeError('UNSUPPORTED', `config.json: ${field}: no network namespace: ${why}`, { field });
  if (net.path === undefined || net.path === '') return;
  // The host's: the namespace the runtime was called in (the client's), init's where it can be read,
  // or the first one the kernel made (a fixed inode: inHostNetns says why).
  let same = false;
  try {
    const given = statSync(net.path);
    same = given.ino < FIRST_NS_INO_END;
    for (const host of ['/proc/self/ns/net', '/proc/1/ns/net']) {
      try {
        const h = statSync(host);
        if (h.dev === given.dev && h.ino === given.ino) same = true;
      } catch { /* init's cannot always be read */ }
    }
  } catch { /* a path that cannot be read is the lifecycle's (or nsenter's) to report */ }
  if (same) throw new StockadeError('UNSUPPORTED', `config.json: ${field}: the network namespace ${net.path} is the host's: ${why}`, { field });
}

/**
 * A keeper killed before its own cleanup leaves tc's redirects on the interfaces of a namespace
 * joined by path, pointing at taps that went with QEMU: taken off here (quietly: the namespace
 * may be gone, or the keeper may have done it).
 */
function unwireLeftovers(stateDir: string): void {
  let net: { netns?: unknown; wired?: unknown } = {};
  try {
    net = JSON.parse(readFileSync(join(stateDir, KEEPER_NET), 'utf8')) as typeof net;
  } catch {
    return;
  }
  if (typeof net.netns !== 'string' || !Array.isArray(net.wired)) return;
  const inNs = (args: string[]): ReturnType<typeof spawnSync> => spawnSync('nsenter', [`--net=${net.netns}`, '--', ...args], { encoding: 'utf8' });
  for (const w of net.wired as { iface?: unknown; tap?: unknown }[]) {
    if (typeof w.iface !== 'string' || typeof w.tap !== 'string' || !/^[^\s/]{1,15}$/.test(w.iface)) continue;
    // Only a redirect to this VM's tap, or to none (the tap went with QEMU): another VM may hold the interface since.
    const target = /Redirect to device (\S+?)\)/.exec(String(inNs(['tc', 'filter', 'show', 'dev', w.iface, 'ingress']).stdout ?? ''))?.[1];
    if (target === w.tap || target === '*') inNs(['tc', 'qdisc', 'del', 'dev', w.iface, 'ingress']);
  }
}

/** What a vm container's record keeps of it (levelData): the sandbox of the pod whose VM it runs in, for a pod's later container. */
interface VmLevelData {
  readonly pod: string;
}

/** A pod's later container, in its sandbox's VM: paused in the guest, its keeper on the host running on. */
function podMember(c: LevelContainer): boolean {
  const d = c.data as Partial<VmLevelData> | undefined | null;
  return typeof d === 'object' && d !== null && typeof d.pod === 'string';
}

/**
 * A pool VM's owner kills its VM once the keeper is gone (pool.ts): QEMU first, so that its jail's
 * wrappers reap it and are reaped by the owner. Given a moment for that before the leftovers are
 * killed all at once (orphaned zombies then wait for the host's init, seconds on a loaded host).
 */
async function poolOwnerGone(entry: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(join(entry, 'owner.pid'), 'utf8'));
  } catch {
    return;
  }
  for (const end = Date.now() + 5000; Number.isInteger(pid) && pid > 0 && Date.now() < end;) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The RAM a cold VM booted with, when its balloon can move it (vm.json's balloonMiB, keeper.ts), else undefined. */
function balloonOf(stateDir: string): number | undefined {
  try {
    const v = (JSON.parse(readFileSync(join(stateDir, KEEPER_VM), 'utf8')) as { balloonMiB?: unknown }).balloonMiB;
    return typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : undefined;
  } catch {
    return undefined;
  }
}

function keeperAlive(c: LevelContainer): boolean {
  return isSameLiveProcess(c.record.pid, c.record.pidStartTime);
}

function cgroupsOf(c: LevelContainer, operation: string): CgroupManager {
  const cg = managerFromPaths(c.record.cgroupPaths ?? []);
  if (cg === undefined) throw new StockadeError('UNSUPPORTED', `cannot ${operation} container ${c.id}: it has no cgroups (its VM is frozen through them)`, { id: c.id, operation });
  return cg;
}

function stopped(c: LevelContainer, operation: string): StockadeError {
  return new StockadeError('STATE_TRANSITION', `cannot ${operation} container ${c.id}: it is stopped`, { id: c.id, from: 'stopped', operation });
}

function keeperLog(stateDir: string): string[] {
  try {
    return readFileSync(join(stateDir, KEEPER_LOG), 'utf8').split('\n');
  } catch {
    return [];
  }
}

/** What the keeper said of a VM that failed under the workload, if it did. */
function vmFailure(stateDir: string): string | undefined {
  try {
    const e = (JSON.parse(readFileSync(join(stateDir, KEEPER_EXITED), 'utf8')) as { error?: unknown }).error;
    return typeof e === 'string' ? e : undefined;
  } catch {
    return undefined;
  }
}

/** The guest's assets, found or fetched here, in the host's network namespace (the keeper's is the container's). */
function guestAssets(): GuestAssets {
  try {
    return ensureGuestAssets();
  } catch (e) {
    throw new StockadeError('UNSUPPORTED', `isolation vm: ${(e as Error).message}`, {}, { cause: e });
  }
}

async function createVm(req: CreateRequest, proc: NonNullable<Spec['process']>, rootfs: string): Promise<Workload> {
  const spec = req.spec;
  // A pod's later container goes into the VM its sandbox booted, when that one runs (as a pod's
  // containers join its sandbox's sentry); else, as a runtime without pods would, a VM of its own.
  const pod = podMembership(req);
  if (pod !== undefined) {
    req.debug?.(`vm: in the pod's VM (sandbox ${pod.sandboxId}; joins its ${pod.joinPod.join(' ') || 'nothing'})`);
    // Its limits hold in the pod's guest (its cgroup there); its host cgroup, which holds only its
    // keeper, gets what a VM's would, so that update and the host's view agree at every vm container.
    req.cgroups?.apply(hostResources(spec.linux?.resources, vmSize(spec.linux?.resources)), (m) => req.warn?.(m));
    const data: VmLevelData = { pod: pod.sandboxId };
    return startWorkload(req, proc, async () => podMemberConfig(req, rootfs, pod), data);
  }
  // A pod's sandbox: the pod's VM, sized from the pod's resources when the kubelet gave them.
  const size = (isPodSandbox(spec.annotations) ? podVmSize(spec.annotations) : undefined) ?? vmSize(spec.linux?.resources);
  if (isPodSandbox(spec.annotations)) req.debug?.(`vm: the pod's VM: ${size.memoryMiB} MiB, ${size.cpus} vCPU(s)`);
  // The VMM's own memory is confined with the guest's: the cgroup holds guest RAM and headroom.
  req.cgroups?.apply(hostResources(spec.linux?.resources, size), (m) => req.warn?.(m));
  // The keeper's Node starts while the template is chosen (startKeeper): its configuration is sent once made.
  const configure = async (): Promise<KeeperConfig> => {
    // The template is chosen here, in the create call, and not in the keeper: a template built or a
    // holder started now lives in the caller's cgroups and network namespace, not in this
    // container's (whose delete would kill it and whose memory limit would pay its pages).
    const { chooseTemplate } = await import('./template');
    // do --rw's overlay is made in virtiofsd's mount namespace (bootVm's rootOverlay): a clone's 9p
    // share has none, and would share the host's root writable. Such a VM boots cold.
    const choice = req.rootfsMode === 'overlay'
      ? { cold: 'do --rw: its overlay root is made for a cold boot\'s virtiofs share', template: undefined }
      : await chooseTemplate({
        rootfs, memoryMiB: size.memoryMiB, cpus: size.cpus,
        debug: (l) => req.debug?.(l),
      });
    mark(choice.cold === undefined ? 'vm: template chosen' : 'vm: cold chosen');
    req.debug?.(choice.cold === undefined ? `vm: from template ${choice.template.key} (${choice.template.dir})` : `vm: booting cold: ${choice.cold}`);
    // A warmed VM of that template from the pool, claimed here (one create wins each); an id-mapped
    // bind source needs a clone whose QEMU runs with the id-mapped share's capabilities: restored for it.
    const binds = bindSources(spec, req.bundle, req.sandbox?.idmaps, req.sandbox?.resolvedBinds);
    const { claimPooled, poolSize } = await import('./pool');
    const pooled = choice.cold === undefined && poolSize() > 0 && binds.every((b) => b.idmap === undefined)
      ? claimPooled(req.store.root, choice.template, (l) => req.debug?.(l)) : undefined;
    if (choice.cold === undefined && poolSize() > 0) refill = choice.template;
    if (pooled !== undefined) req.debug?.(`vm: a warmed VM from the pool (${pooled})`);
    return {
      ...keeperBase(req, rootfs),
      // do's root is the host's: read-only in the host kernel (virtiofsd's bind) whatever the guest
      // does, or with --rw an overlay of it made there (its writes in memory).
      readonlyRoot: spec.root?.readonly === true || req.rootfsMode === 'recursive-readonly',
      rootfsMode: req.rootfsMode,
      memoryMiB: size.memoryMiB,
      cpus: size.cpus,
      ...(req.sandbox === undefined ? {} : { sandbox: { init: req.sandbox.init, timeout: req.sandbox.timeout, overlayTmpfs: req.sandbox.overlayTmpfs } }),
      ...(process.env['STOCKADE_VM_BOOT_TIMEOUT_MS'] !== undefined ? { bootTimeoutMs: Number(process.env['STOCKADE_VM_BOOT_TIMEOUT_MS']) } : {}),
      // Only for a cold boot (a clone needs none); the keeper finds them itself when it must boot cold after all.
      ...(choice.cold !== undefined ? { assets: guestAssets() } : {}),
      // The keeper's log keeps its debug lines (the accelerator and why, QEMU's command line, the boot time).
      debug: true,
      ...(choice.cold !== undefined ? { coldBecause: choice.cold } : { template: choice.template }),
      ...(pooled !== undefined ? { pooled } : {}),
      ...(req.sandbox?.hold === true ? { hold: true } : {}),
      ...(req.sandbox?.tiedTo !== undefined ? { tied: true } : {}),
    };
  };
  let refill: Template | undefined;
  const w = await startWorkload(req, proc, configure);
  // Once this container is made: the pool's next VM warms while it runs (at a low priority), not before.
  if (refill !== undefined) {
    const t = refill;
    const { poolSize, refillPool } = await import('./pool');
    try {
      refillPool(req.store.root, t, poolSize(), (l) => req.debug?.(l));
    } catch (e) {
      req.warn?.(`vm pool: not refilled: ${(e as Error).message}`);
    }
  }
  return w;
}

/**
 * Starts the keeper (a VM's, or a pod member's) and returns the workload it stands for. Its Node
 * starts at once; `configure` makes its configuration meanwhile (a VM's template is chosen then).
 */
async function startWorkload(req: CreateRequest, proc: NonNullable<Spec['process']>, configure: () => Promise<KeeperConfig>, data?: VmLevelData): Promise<Workload> {
  const spec = req.spec;
  const stateDir = req.store.dir(req.id);
  // With a terminal the workload's stdio is the pty whose master goes to --console-socket: the
  // keeper keeps none of the caller's fds. containerd's runc shim (docker, ctr) gives create a
  // pipe for its output when it gives no stdio and waits for its EOF: a keeper holding that pipe
  // made `run -it` hang before the prompt.
  // Held open (the SDK's sandbox), the container runs nothing that would read or write them either.
  const stdio = proc.terminal === true || req.sandbox?.hold === true ? ['ignore', 'ignore', 'ignore'] as const : [0, 1, 2] as const;
  // The runtime's create hooks (prestart, createRuntime) see the container's pid, the keeper's, as
  // runc's see its init's once its namespaces exist (Docker's prestart hook reads /proc/PID/ns/net
  // and fills it), and run before the VM boots, which takes the namespace's interfaces as they are.
  const keeper = await startKeeper(spec, stateDir, req.sandbox?.tiedTo !== undefined, configure, stdio, !req.monitor, (pid) => req.onPid(pid), req.hasCreateHooks ? async () => { await req.createHooks(); } : undefined);
  mark('vm: keeper said ok');
  for (const line of keeperLog(stateDir)) if (/ vm: (accelerator|agent ready|restored from template)/.test(line)) req.debug?.(line.replace(/^\S+ /, ''));
  const child = keeper.child;
  const exited = keeper.exited;
  const exit = req.monitor
    ? exited.then((st) => {
      const failed = vmFailure(stateDir);
      if (failed !== undefined) req.warn?.(`container ${req.id}: ${failed}`);
      return st;
    })
    : Promise.resolve({ code: 0, signal: null });
  return {
    pid: keeper.pid,
    data,
    monitor: req.monitor ? child : undefined,
    exit,
    done: req.monitor ? exited.then(() => undefined) : Promise.resolve(),
    created: () => undefined,
    abort: () => {
      try {
        process.kill(keeper.pid, 'SIGKILL');
      } catch { /* gone */ }
    },
  };
}

/**
 * The pod the container joins: CRI's annotations name its sandbox, a vm container whose keeper
 * runs (its VM up) in the same state root. The namespaces its config joins by the sandbox's pid
 * (/proc/PID/ns/TYPE, as containerd and CRI-O write them) are the sandbox's in the guest; its
 * network namespace must be the sandbox's (the VM has that one's interfaces).
 */
function podMembership(req: CreateRequest): PodMembership | undefined {
  const sandboxId = podSandbox(req.spec.annotations, req.id);
  if (sandboxId === undefined) return undefined;
  const sandboxDir = req.store.dir(sandboxId);
  let record: { pid?: unknown; pidStartTime?: unknown; level?: unknown };
  try {
    record = JSON.parse(readFileSync(join(sandboxDir, 'state.json'), 'utf8')) as typeof record;
  } catch {
    return undefined;
  }
  if (record.level !== 'vm' || typeof record.pid !== 'number' || typeof record.pidStartTime !== 'string') return undefined;
  if (!isSameLiveProcess(record.pid, record.pidStartTime) || existsSync(join(sandboxDir, KEEPER_EXITED)) || !existsSync(join(sandboxDir, KEEPER_SOCKET))) return undefined;
  const joinPod: PodNamespace[] = [];
  for (const ns of req.spec.linux?.namespaces ?? []) {
    if (ns.path === undefined || ns.path === '') continue;
    if (ns.type === 'network') {
      if (!sameFile(ns.path, `/proc/${record.pid}/ns/net`)) {
        throw new StockadeError('UNSUPPORTED', `config.json: linux.namespaces: network ${ns.path} is not the network of the pod's sandbox ${sandboxId}: a pod's container at vm runs in the pod's VM, which has the pod's network`, { field: 'linux.namespaces' });
      }
    } else if ((POD_NAMESPACES as readonly string[]).includes(ns.type) && posix.normalize(ns.path) === `/proc/${record.pid}/ns/${ns.type}`) {
      joinPod.push(ns.type as PodNamespace);
    }
  }
  return { sandboxId, sandboxDir, joinPod };
}

function sameFile(a: string, b: string): boolean {
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.dev === y.dev && x.ino === y.ino;
  } catch {
    return false;
  }
}

/** A pod member's keeper: no VM, no template; the config's limits go to its cgroup in the pod's guest. */
function podMemberConfig(req: CreateRequest, rootfs: string, pod: PodMembership): KeeperConfig {
  return {
    ...keeperBase(req, rootfs),
    readonlyRoot: req.spec.root?.readonly === true,
    rootfsMode: 'bind',
    memoryMiB: 0,
    cpus: 0,
    debug: true,
    pod,
  };
}

/** What every keeper's configuration holds of its create call: the container, its state, root, binds and cgroups. */
function keeperBase(req: CreateRequest, rootfs: string): Pick<KeeperConfig, 'id' | 'stateDir' | 'stateRoot' | 'bundle' | 'spec' | 'noPivot' | 'noNewKeyring' | 'binds' | 'rootfs' | 'cgroupPaths' | 'consoleSocket'> {
  return {
    id: req.id,
    stateDir: req.store.dir(req.id),
    stateRoot: req.store.root,
    bundle: req.bundle,
    spec: req.spec,
    noPivot: req.noPivot,
    noNewKeyring: req.noNewKeyring,
    binds: bindSources(req.spec, req.bundle, req.sandbox?.idmaps, req.sandbox?.resolvedBinds),
    rootfs,
    cgroupPaths: req.cgroups?.paths ?? [],
    consoleSocket: req.consoleSocket,
  };
}

export const vmDriver: LevelDriver = {
  name: 'vm',

  prepare(spec: Spec): Spec {
    const why = vmmUnavailable();
    if (why !== undefined) throw new StockadeError('UNSUPPORTED', `isolation vm: ${why}`);
    const network = spec.annotations?.[NETWORK_ANNOTATION];
    if (network !== undefined && network !== 'all') {
      const field = `annotations["${NETWORK_ANNOTATION}"]`;
      throw new StockadeError('CONFIG_INVALID', `config.json: ${field}: a network policy needs isolation sentry (a vm container's guest has the network namespace's interfaces as they are)`, { field });
    }
    if (spec.process === undefined) throw new StockadeError('CONFIG_INVALID', 'config.json: process: a vm container needs a process to run', { field: 'process' });
    refuseHostNetwork(spec);
    return spec;
  },

  plan(req: CreateRequest): CreatePlan {
    const proc = req.spec.process;
    if (proc === undefined) throw new StockadeError('CONFIG_INVALID', 'config.json: process: a vm container needs a process to run', { field: 'process' });
    if (proc.terminal === true && req.consoleSocket === undefined) {
      throw new StockadeError('USAGE', 'process.terminal is true: a vm container with a terminal needs --console-socket', { field: 'process.terminal' });
    }
    if (req.preserveFds > 0) throw new StockadeError('UNSUPPORTED', '--preserve-fds: a vm container cannot be given host fds', {});
    for (const h of ['createContainer', 'startContainer'] as const) {
      if ((req.spec.hooks?.[h] ?? []).length > 0) throw new StockadeError('UNSUPPORTED', `config.json: hooks.${h}: hooks that run in the container's namespaces are not run inside a VM yet`, { field: `hooks.${h}` });
    }
    // The pod's size annotations, checked before the id is taken.
    if (isPodSandbox(req.spec.annotations)) podVmSize(req.spec.annotations);
    const rootfs = resolve(req.bundle, req.spec.root?.path ?? 'rootfs');
    if (!existsSync(rootfs)) throw new StockadeError('BUNDLE_INVALID', `bundle ${req.bundle}: root.path ${rootfs} does not exist`, { field: 'root.path' });
    return { create: () => createVm(req, proc, rootfs) };
  },

  async start(c: LevelContainer): Promise<void> {
    if (!keeperAlive(c)) throw stopped(c, 'start');
    await keeperStart(c.store.dir(c.id), c.id);
  },

  async signal(c: LevelContainer, req: SignalRequest): Promise<void> {
    if (!keeperAlive(c)) throw stopped(c, 'kill');
    // A pod's paused container is frozen in the guest, its keeper is not: it takes every signal
    // (the guest's kernel holds them for the frozen tasks; SIGKILL reaches them through cgroup.kill).
    if (req.status === 'paused' && !podMember(c)) {
      if (req.signal === SIGKILL) {
        // The keeper is frozen with its VM: SIGKILL to all of them, then thaw so they die now.
        signalCgroup(cgroupsOf(c, 'kill'), SIGKILL);
        return;
      }
      await keeperNotify(c.store.dir(c.id), c.id, { op: 'signal', signal: req.signal, all: req.all });
      return;
    }
    await keeperRequest(c.store.dir(c.id), c.id, { op: 'signal', signal: req.signal, all: req.all });
  },

  async exec(c: LevelContainer, req: ExecRequest): Promise<ExecProcess> {
    if (!keeperAlive(c)) throw stopped(c, 'exec');
    if (req.preserveFds > 0) throw new StockadeError('UNSUPPORTED', '--preserve-fds: a process in a vm container cannot be given host fds', {});
    if (req.subCgroups.size > 0) throw new StockadeError('UNSUPPORTED', '--cgroup: a vm container\'s sub-cgroups are the guest\'s, which exec cannot name yet', {});
    const proc = req.process;
    const stateDir = c.store.dir(c.id);
    if (req.detach) {
      const standIn = await startExecStandIn(stateDir, c.id, proc, req.consoleSocket);
      return { pid: standIn.pid, finish: () => Promise.resolve(0), kill: () => standIn.kill() };
    }
    if (req.pipes === true) return (await import('./exec-relay')).pipedExec(stateDir, c.id, proc);
    // Attached: this process stands for the exec'd one, relaying its own stdio (or terminal).
    const { attachedExec } = await import('./exec-relay');
    return attachedExec(stateDir, c.id, proc);
  },

  /**
   * A VM's own container: its host cgroup frozen, keeper, QEMU and virtiofsd, the whole VM. A pod's
   * later container: its cgroup frozen in the pod's VM, which runs on for the pod's other containers
   * (freezing its keeper on the host would stop nothing in the guest).
   */
  async pause(c: LevelContainer): Promise<void> {
    if (podMember(c)) {
      if (!keeperAlive(c)) throw stopped(c, 'pause');
      await keeperRequest(c.store.dir(c.id), c.id, { op: 'pause' }, 10000);
      return;
    }
    await cgroupsOf(c, 'pause').freeze();
  },

  async resume(c: LevelContainer): Promise<void> {
    if (podMember(c)) {
      if (!keeperAlive(c)) throw stopped(c, 'resume');
      await keeperRequest(c.store.dir(c.id), c.id, { op: 'resume' }, 10000);
      return;
    }
    cgroupsOf(c, 'resume').thaw();
  },

  async update(c, resources, warn): Promise<void> {
    if (!keeperAlive(c)) throw stopped(c, 'update');
    const dir = c.store.dir(c.id);
    // The container's cgroup in the guest first: a limit the guest refuses changes nothing on the host.
    await keeperRequest(dir, c.id, { op: 'update', limits: guestLimits(resources) }, 10000);
    const cg = cgroupsOf(c, 'update');
    const size = vmSize(resources);
    const bootMiB = podMember(c) ? undefined : balloonOf(dir);
    if (bootMiB === undefined) {
      // No balloon (a clone, a pod's VM): the guest's RAM stays what it booted with; its cgroup holds the limit.
      cg.apply(hostResources(resources, size), warn);
      return;
    }
    // The guest's RAM follows the limit through the balloon. The host cgroup holds the VM's RAM
    // plus the VMM's headroom throughout: as much as the VM booted with while the balloon moves,
    // then what the guest has after (or the limit, when that is more: the host's view of a raised one).
    cg.apply(hostResources(resources, { ...size, memoryMiB: Math.max(size.memoryMiB, bootMiB) }), warn);
    const r = await keeperRequest(dir, c.id, { op: 'memory', mib: balloonTarget(resources, bootMiB) }, 30000);
    cg.apply(hostResources(resources, { ...size, memoryMiB: Math.max(size.memoryMiB, r.memoryMiB ?? bootMiB) }), warn);
  },

  async stats(c: LevelContainer): Promise<LevelStats> {
    if (!keeperAlive(c)) throw stopped(c, 'read the statistics of');
    const r = await keeperRequest(c.store.dir(c.id), c.id, { op: 'stats' }, 10000);
    const g = r.stats;
    if (g === undefined) throw new StockadeError('SYSTEM', `container ${c.id}: the guest sent no statistics`, { id: c.id });
    // The container's cgroup in the guest; an OOM kill the host saw is the VMM's (the guest's RAM
    // plus headroom exhausted), which ends the container as surely: both are counted.
    const n = (v: string): bigint => (/^\d+$/.test(v) ? BigInt(v) : 0n);
    const stats = emptyStats();
    stats.cpu.usage.total = n(g.cpuUsageUsec) * 1000n;
    stats.cpu.usage.user = n(g.cpuUserUsec) * 1000n;
    stats.cpu.usage.kernel = n(g.cpuSystemUsec) * 1000n;
    stats.memory.usage = { ...stats.memory.usage, usage: n(g.memoryCurrent), limit: n(g.memoryMax) };
    stats.memory.raw.set('anon', n(g.memoryAnon));
    stats.memory.raw.set('file', n(g.memoryFile));
    stats.memory.cache = n(g.memoryFile);
    stats.pids = { current: n(g.pidsCurrent), limit: n(g.pidsMax) };
    // OOM kills in the guest's cgroup (the limit kept there), and any of the VMM on the host.
    return { stats, oomKills: n(g.oomKills) + (managerFromPaths(c.record.cgroupPaths ?? [])?.oomKills() ?? 0n) };
  },

  /**
   * The container's processes on the host, as runc's ps lists its cgroup's: the keeper, QEMU,
   * virtiofsd and their jails' wrappers. Clients take these as host pids (docker's top filters the
   * host's ps by them); the guest's pids would name unrelated host processes there. Kata's shim
   * answers with the hypervisor's pid the same way. The guest's count is in events --stats.
   */
  async pids(c: LevelContainer): Promise<number[]> {
    if (!keeperAlive(c)) return [];
    return (managerFromPaths(c.record.cgroupPaths ?? [])?.pids() ?? [c.record.pid]).sort((a, b) => a - b);
  },

  async status(c: LevelContainer): Promise<Status> {
    const dir = c.store.dir(c.id);
    const alive = keeperAlive(c);
    if (!c.record.createdOk) return alive ? 'creating' : 'stopped';
    if (!alive || existsSync(join(dir, KEEPER_EXITED))) return 'stopped';
    if (podMember(c) && existsSync(join(dir, KEEPER_PAUSED))) return 'paused';
    const cg = managerFromPaths(c.record.cgroupPaths ?? []);
    const frozen = cg?.freezerState();
    if (frozen === 'frozen' || frozen === 'freezing') return 'paused';
    return existsSync(join(dir, KEEPER_STARTED)) ? 'running' : 'created';
  },

  async destroy(c: LevelContainer): Promise<void> {
    const dir = c.store.dir(c.id);
    const cg = managerFromPaths(c.record.cgroupPaths ?? []);
    if (cg !== undefined && (cg.freezerState() === 'frozen' || cg.freezerState() === 'freezing')) cg.thaw();
    const pid = c.record.pid;
    if (isSameLiveProcess(pid, c.record.pidStartTime)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch { /* gone meanwhile */ }
      if (!(await waitGone(pid, c.record.pidStartTime, 5000))) throw new StockadeError('SYSTEM', `container ${c.id}: its VM keeper ${pid} did not die after SIGKILL`, { id: c.id });
    }
    // QEMU and virtiofsd die with the keeper (parent-death signals); whatever is left of them,
    // found by the VM's uid and directory, is killed here, and the directory goes.
    let vm: { runDir?: unknown; vmmUid?: unknown } = {};
    try {
      vm = JSON.parse(readFileSync(join(dir, KEEPER_VM), 'utf8')) as typeof vm;
    } catch { /* the boot never got that far */ }
    if (typeof vm.runDir === 'string' && basename(dirname(dirname(vm.runDir))) === POOL_DIR) await poolOwnerGone(dirname(vm.runDir));
    mark('vm del: keeper gone');
    if (typeof vm.runDir === 'string' && typeof vm.vmmUid === 'number') {
      if (vmProcesses(vm.vmmUid, vm.runDir).length > 0) await killVm([], vm.vmmUid, vm.runDir);
      rmSync(vm.runDir, { recursive: true, force: true });
      // A pool VM's entry (its owner killed with the cgroup below, or gone before it could remove it).
      if (basename(dirname(dirname(vm.runDir))) === POOL_DIR) rmSync(dirname(vm.runDir), { recursive: true, force: true });
    }
    mark('vm del: vm gone');
    unwireLeftovers(dir);
    if (cg !== undefined) await emptyCgroup(cg);
    mark('vm del: cgroup empty');
  },
};

export default vmDriver;
