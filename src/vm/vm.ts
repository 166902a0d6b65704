// A booted microVM: QEMU and virtiofsd in their jails, the agent on the other end of the channel.
//
// bootVm() returns only a VM whose agent answered and whose root is mounted; on any failure on
// the way it has already killed what it started and removed its directory. A VM fails closed:
// if QEMU or virtiofsd exits, or the guest breaks the protocol, the other is killed, every open
// request fails with a VmError saying which, and `ended` resolves to that error.
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SIGNALS } from '../abi/linux/constants';
import { StockadeError, isStockadeError } from '../errors';
import { tcgClockArgs, type AccelChoice } from './accel';
import { resolveAccel } from './accel-probe';
import { AgentClient, type ExitStatus, type GuestLimits, type GuestStats, type Sink, type Started } from './agent-client';
import type { PlanRecord } from '../native/protocol';
import { guestCreatePlan, guestExecPlan, type GuestPlan, type GuestShares } from './guest-plan';
import { defaultCacheDir, ensureGuestAssets, type GuestAssetOptions, type GuestAssets } from './assets';
import type { MountIdmap } from '../container/plan';
import { VmError } from './errors';
import { connectVirtiofsd, killVm, startJailed, vmmExit, vmProcesses, within, type Jailed } from './host-processes';
import { makeQemuJail } from './jail';
import { Balloon } from './balloon';
import { Qmp } from './qmp';
import type { ContainerNetwork, VmNic } from './network';
import { guestNetworkRequests } from './network';
import { QMP_FD, ROOTFS_TAG, jailedQemu, jailedVirtiofsd, requireVmm, vmmUser, type ShareEntry } from './vmm';
import { mark } from '../log/timing';

export { vmProcesses } from './host-processes';

/**
 * Where the guest mounts the VM's one virtiofs share: a directory on the host (in the VM's
 * private directory) into which virtiofsd's own mount namespace binds the rootfs, at `root`, and
 * each bind source, at `b0`, `b1`, ... (vmm.ts SHARE_SCRIPT). One virtiofsd and one device serve
 * them all; nothing else of the host is in it.
 */
export const GUEST_SHARE = '/run/stockade/share';
/** Where the container's root is in the guest. */
export const GUEST_ROOT = `${GUEST_SHARE}/root`;

/** A host file or directory the VM gets, for a bind mount of a container in it. */
export interface VmBind {
  /** Absolute host path; it must exist at boot. */
  readonly source: string;
  /** Read-only in the host kernel (virtiofsd's bind), whatever the guest does. */
  readonly readonly?: boolean;
  /**
   * Shared through an id-mapped mount made on the host (do --bind SRC:rw, whose command is not
   * the caller): its file system only, nosuid, nodev; the file server writes there as the map's
   * ids only, and cannot make a file setuid or setgid (ShareEntry.idmap).
   */
  readonly idmap?: MountIdmap | undefined;
  /** A path the caller resolved and checked (do --bind): shared only if no symlink is on it when the share is made. */
  readonly nofollow?: boolean | undefined;
}

export interface BootOptions {
  /** The host directory that becomes the container's root (shared by virtiofs). */
  readonly rootfs: string;
  readonly readonlyRoot?: boolean;
  /**
   * The root shared as an overlay of rootfs whose writes stay in memory (a tmpfs of these options,
   * size=..., in virtiofsd's mount namespace; do --rw): rootfs itself is never written.
   */
  readonly rootOverlay?: string;
  readonly memoryMiB?: number;
  readonly cpus?: number;
  /** Ready assets, or how to find and build them (the cache by default). */
  readonly assets?: GuestAssets | GuestAssetOptions;
  /** How long the agent may take to answer its first HELLO (TCG boots take seconds). */
  readonly bootTimeoutMs?: number;
  /** How long the agent may take to answer any other request but WAIT. */
  readonly requestTimeoutMs?: number;
  /** The parent of the VM's private directory (the system's temporary directory by default). */
  readonly runParent?: string;
  /** Debug lines: the accelerator chosen and why, the command lines, the boot time. */
  readonly debug?: (line: string) => void;
  readonly kernelArgs?: readonly string[];
  /** Bind-mount sources the VM's containers may use (fixed at boot: virtiofs shares cannot be added later). */
  readonly binds?: readonly VmBind[];
  /**
   * Network devices (fixed at boot: microvm has no hotplug): a tap's fd on the host and the MAC
   * of the guest's NIC behind it (src/vm/network.ts wires them). QEMU gets its own copies of the
   * fds; the caller's stay the caller's.
   */
  readonly nics?: readonly VmNic[];
}

export interface SpawnOptions {
  readonly args: readonly string[];
  readonly env?: readonly string[];
  /** Inside the container root; '/' by default. */
  readonly cwd?: string;
  readonly uid?: number;
  readonly gid?: number;
  /** Give the process a stdin pipe (write() and end()); otherwise it reads /dev/null. */
  readonly stdin?: boolean;
  readonly onStdout?: Sink;
  readonly onStderr?: Sink;
  /**
   * Where the process runs: chrooted into the container's root (the default), or in the guest's
   * own initramfs root, where /sbin/stockade-init is (the level driver runs it there, with a
   * plan, to build the container the way the namespaces level does).
   */
  readonly root?: 'container' | 'guest';
}

export interface RunResult extends ExitStatus {
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

const DEFAULT_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', 'TERM=xterm'];

/** Options of a container in the guest (Vm.createContainer). */
export interface VmContainerOptions {
  /**
   * buildPlan's records (src/container/plan.ts), as for the namespaces level; its paths for the
   * root's mount point, the start and console sockets and the cgroups may be anything
   * (GUEST_PLAN_PLACEHOLDERS): the guest's replace them. The root must be this VM's rootfs and
   * every bind source one of its binds (guest-plan.ts says what else is refused).
   */
  readonly plan: readonly PlanRecord[];
  /** Give the process a stdin pipe (write() and end()); otherwise /dev/null. Ignored with a terminal. */
  readonly stdin?: boolean;
  /** Its stdout, or with a terminal (TAG_TERMINAL in the plan) everything the pty shows. */
  readonly onStdout?: Sink;
  readonly onStderr?: Sink;
  /** Where its root and bind sources are in the guest, when not the VM's own (a pod's later container: src/vm/pod-share.ts). */
  readonly shares?: GuestShares;
  /** Guest pids of the inits whose namespaces its plan may join by /proc/PID/ns/TYPE (its pod's sandbox). */
  readonly podPids?: readonly number[];
  /** At a hook point (HOOKF_*, the plan's TAG_HOOK_POINTS): run the runtime's hooks; resolves to the state JSON for createContainer hooks. */
  readonly onHook?: (point: number, pid: number) => Promise<Buffer | undefined>;
}

/** Options of a process exec'd into a container (VmContainer.exec). */
export interface VmExecOptions {
  /** buildExecPlan's records built with initPid = the container's guest pid, cgroupPaths [] and any consoleSocket. */
  readonly plan: readonly PlanRecord[];
  readonly stdin?: boolean;
  readonly onStdout?: Sink;
  readonly onStderr?: Sink;
}

/** A process in the guest: spawned (Vm.spawn), a container's init (Vm.createContainer) or exec'd into one. */
export class VmProcess {
  constructor(
    readonly vm: Vm,
    /** The agent's handle for it. */
    readonly handle: number,
    /** Its pid in the guest. */
    readonly pid: number,
    readonly outputDone: Promise<void>,
    /** It has a pty (its output is the terminal's, on stdout; resize() applies). */
    readonly terminal = false,
  ) {}

  /** A terminal's new size; nothing for a process without one. */
  resize(rows: number, cols: number): void {
    if (this.terminal) this.vm.client.resize(this.handle, rows, cols);
  }

  write(data: Buffer | string): Promise<void> {
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    if (b.length === 0) return Promise.resolve();
    return this.vm.client.writeStdin(this.handle, b);
  }

  end(): Promise<void> {
    return this.vm.client.writeStdin(this.handle, Buffer.alloc(0));
  }

  signal(sig: number | keyof typeof SIGNALS): Promise<void> {
    return this.vm.client.signal(this.handle, typeof sig === 'number' ? sig : SIGNALS[sig]);
  }

  /** Its exit status, once it exited and its output streams ended. */
  wait(): Promise<ExitStatus> {
    return this.vm.client.wait(this.handle);
  }
}

/**
 * A container in the guest, made by stockade-init there with the host's plan: created (stopped
 * before its process's execve) until start(). Its pid is its init's in the guest.
 */
export class VmContainer extends VmProcess {
  #execs = 0;
  constructor(vm: Vm, started: Started, terminal: boolean, readonly name: string) {
    super(vm, started.proc, started.pid, started.outputDone, terminal);
  }

  /** Runs the process (MSG_START on the start socket; `state`: the JSON for startContainer hooks); resolves once it exec'd. */
  start(state?: Buffer): Promise<void> {
    return this.vm.client.start(this.handle, state);
  }

  /** The init, or with `all` every process of the container's cgroup (kill --all). */
  override signal(sig: number | keyof typeof SIGNALS, opts: { all?: boolean } = {}): Promise<void> {
    return this.vm.client.signal(this.handle, typeof sig === 'number' ? sig : SIGNALS[sig], opts.all === true);
  }

  /** A process in the container's namespaces and cgroup, confined as its plan says; resolves once it exec'd. */
  async exec(o: VmExecOptions): Promise<VmProcess> {
    const name = `${this.name}.x${++this.#execs}`;
    const g = guestExecPlan(o.plan, name, { name: this.name, pid: this.pid });
    const ignore: Sink = () => undefined;
    const r = await this.vm.client.exec(this.handle, {
      name, plan: g.plan, stdin: o.stdin ?? false, terminal: g.terminal, onStdout: o.onStdout ?? ignore, onStderr: o.onStderr ?? ignore,
    });
    return new VmProcess(this.vm, r.proc, r.pid, r.outputDone, g.terminal);
  }

  /** The guest pids of the container's processes (its cgroup's cgroup.procs). */
  pids(): Promise<number[]> {
    return this.vm.client.pids(this.handle);
  }

  /** Sets its cgroup's limits in the guest (pids.max, memory.max, cpu.max, cpu.weight); what is absent stays. */
  update(limits: GuestLimits): Promise<void> {
    return this.vm.client.update(this.handle, limits);
  }

  /** Freezes or thaws its cgroup in the guest (its processes and exec'd ones), the rest of the VM running on. */
  freeze(frozen: boolean): Promise<void> {
    return this.vm.client.freeze(this.handle, frozen);
  }

  /** The container's cgroup figures in the guest: CPU time, memory, pids. */
  stats(): Promise<GuestStats> {
    return this.vm.client.stats(this.handle);
  }
}

export interface ShareServer {
  /** A process in the server's mount namespace. */
  readonly pid: number;
  /** The share's directory as that namespace sees it (from its root), and on the host. */
  readonly inNamespace: string;
  readonly onHost: string;
}

export class Vm {
  readonly client: AgentClient;
  /** How the host's rootfs and bind sources appear in the guest (set by bootVm). */
  shares: GuestShares = { rootfs: { host: '', guest: GUEST_ROOT }, binds: new Map() };
  /**
   * The process serving the share (virtiofsd, or a clone's QEMU for 9p) and where the share is in
   * its mount namespace: a pod's later containers are bound in there (src/vm/pod-share.ts).
   */
  shareServer: ShareServer | undefined;
  #containers = 0;
  /** Taken from the pool (pool.ts): its QEMU is its owner's child, which kills it when this process is gone. */
  pooled = false;
  /**
   * The guest's RAM changed while it runs (balloon.ts): a cold VM's. A clone has none: its
   * template was saved without a balloon (template.ts says why).
   */
  balloon: Balloon | undefined;
  readonly ended: Promise<VmError | null>;
  /** Set once booted. */
  kernelRelease = '';
  bootMs = 0;
  readonly #runDir: string;
  readonly #vmmUid: number;
  readonly #qemu: Jailed;
  /** None for a VM restored from a template: QEMU serves its root itself (src/vm/template.ts). */
  readonly #virtiofsd: Jailed | undefined;
  #end!: (e: VmError | null) => void;
  #state: 'running' | 'failed' | 'destroying' | 'destroyed' = 'running';
  #destroyed: Promise<void> | undefined;
  #failure: VmError | undefined;

  /** @internal use bootVm */
  constructor(
    runDir: string, qemu: Jailed, virtiofsd: Jailed | undefined, vmmUid: number, requestTimeoutMs: number,
    readonly accel: AccelChoice, readonly assets: GuestAssets,
  ) {
    this.#runDir = runDir;
    this.#vmmUid = vmmUid;
    this.#qemu = qemu;
    this.#virtiofsd = virtiofsd;
    this.ended = new Promise((resolve) => {
      this.#end = resolve;
    });
    const channel = qemu.child.stdio[3] as Socket;
    this.client = new AgentClient(channel, { requestTimeoutMs, onViolation: (e) => this.#fail(e) });
    const report = async (j: Jailed, how: string): Promise<void> => {
      if (this.#state !== 'running') return;
      // The console's last lines may still be in flight when the exit is seen.
      const out = j.child.stdout;
      if (out !== null && out !== undefined && !out.readableEnded) await within(new Promise((r) => out.once('close', r)), 500);
      if (this.#state !== 'running') return;
      // The agent is the guest's init: its death panics the guest kernel, which makes QEMU exit
      // (panic=-1, -no-reboot). That is the agent failing, not QEMU: named as such.
      const died = j === qemu ? /Kernel panic - not syncing: Attempted to kill init!.*/.exec(j.tail.text())?.[0]?.trim() : undefined;
      if (died !== undefined) this.#fail(new VmError('VMM_EXITED', `vm: the agent (the guest's init) died: ${died}`, { process: 'agent' }));
      else this.#fail(new VmError('VMM_EXITED', `vm: ${vmmExit(j, how)}`, { process: j.name }));
    };
    void qemu.exited.then((how) => report(qemu, how));
    // virtiofsd leaves when QEMU does: name QEMU when both go, since its exit is the cause.
    void virtiofsd?.exited.then(async (how) => {
      let qemuHow: string | undefined;
      // (Its exit can be seen well before QEMU's wrapper's on a loaded host: 2 s, not 300 ms.)
      await within(qemu.exited.then((h) => { qemuHow = h; }), 2000);
      if (qemuHow !== undefined) await report(qemu, qemuHow);
      else await report(virtiofsd, how);
    });
  }

  /** The guest console and the VMMs' own output, for diagnosing a failed boot. */
  get console(): string {
    return this.#qemu.tail.text() + (this.#virtiofsd?.tail.text() ?? '');
  }

  #fail(e: VmError): void {
    if (this.#state !== 'running') return;
    this.#state = 'failed';
    this.#failure = e;
    this.client.fail(e);
    // Both the failure and a failed cleanup are reported, in one error.
    void this.#teardown().then(
      () => this.#end(e),
      (te: unknown) => this.#end(new VmError(e.reason, `${e.message}; and the cleanup failed: ${te instanceof Error ? te.message : String(te)}`, e.context)),
    );
  }

  async #teardown(): Promise<void> {
    try {
      await killVm([this.#qemu, this.#virtiofsd], this.#vmmUid, this.#runDir);
      mark('vm: processes gone');
    } finally {
      (this.#qemu.child.stdio[3] as Socket | null)?.destroy();
      this.balloon?.qmp.close();
      rmSync(this.#runDir, { recursive: true, force: true });
    }
  }

  async spawn(o: SpawnOptions): Promise<VmProcess> {
    const ignore: Sink = () => undefined;
    const r = await this.client.spawn({
      args: o.args,
      env: o.env ?? DEFAULT_ENV,
      cwd: o.cwd ?? '/',
      root: o.root === 'guest' ? '' : GUEST_ROOT,
      uid: o.uid ?? 0,
      gid: o.gid ?? 0,
      stdin: o.stdin ?? false,
      onStdout: o.onStdout ?? ignore,
      onStderr: o.onStderr ?? ignore,
    });
    return new VmProcess(this, r.proc, r.pid, r.outputDone);
  }

  /**
   * Has stockade-init build a container in the guest from a plan computed on the host (the
   * namespaces level's wall, inside the VM); resolves once it waits for start().
   */
  async createContainer(o: VmContainerOptions): Promise<VmContainer> {
    const name = `c${++this.#containers}`;
    const g: GuestPlan = guestCreatePlan(o.plan, name, o.shares ?? this.shares, o.podPids);
    const ignore: Sink = () => undefined;
    const r = await this.client.create({
      name, plan: g.plan, stdin: (o.stdin ?? false) && !g.terminal, terminal: g.terminal,
      onStdout: o.onStdout ?? ignore, onStderr: o.onStderr ?? ignore,
    }, o.onHook ?? (async () => undefined));
    return new VmContainer(this, r, g.terminal, name);
  }

  /**
   * Runs a process to its end, collecting its output (and feeding it `input`, if given). The
   * guest decides how much a process writes, so what is held is bounded: past maxOutputBytes
   * (per stream; 64 MiB by default) the process is killed and the run fails with LIMIT.
   */
  async run(o: Omit<SpawnOptions, 'onStdout' | 'onStderr' | 'stdin'> & { readonly input?: Buffer | string; readonly maxOutputBytes?: number }): Promise<RunResult> {
    const limit = o.maxOutputBytes ?? 64 * 1024 * 1024;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const held = [0, 0];
    let over: VmError | undefined;
    let proc: VmProcess | undefined;
    const collect = (into: Buffer[], i: 0 | 1, name: string) => (c: Buffer): void => {
      if (over !== undefined) return;
      held[i]! += c.length;
      if (held[i]! > limit) {
        over = new VmError('LIMIT', `vm: ${o.args[0] ?? 'the process'} wrote more than ${limit} bytes to ${name}`);
        void proc?.signal('SIGKILL').catch(() => undefined);
        return;
      }
      into.push(c);
    };
    const p = await this.spawn({ ...o, stdin: o.input !== undefined, onStdout: collect(out, 0, 'stdout'), onStderr: collect(err, 1, 'stderr') });
    proc = p;
    if (over !== undefined) await p.signal('SIGKILL').catch(() => undefined);
    if (o.input !== undefined) {
      await p.write(o.input);
      await p.end();
    }
    const status = await p.wait();
    if (over !== undefined) throw over;
    return { ...status, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
  }

  /**
   * Powers the guest off (asking the agent first, killing the VMM if it does not stop soon) and
   * removes everything the VM had on the host. Safe to call more than once and after a failure.
   */
  destroy(): Promise<void> {
    this.#destroyed ??= this.#destroy();
    return this.#destroyed;
  }

  async #destroy(): Promise<void> {
    if (this.#state === 'running') {
      this.#state = 'destroying';
      try {
        await this.client.shutdown(5000);
        mark('vm: shutdown answered');
        await within(this.#qemu.exited, 5000);
        mark('vm: qemu exited');
      } catch {
        /* the kill below ends it either way */
      }
      // virtiofsd leaves once QEMU hangs up; give it a moment before the kill.
      if (this.#virtiofsd !== undefined) await within(this.#virtiofsd.exited, 2000);
      this.client.fail(new VmError('DESTROYED', 'vm: destroyed'));
      try {
        await this.#teardown();
      } finally {
        this.#state = 'destroyed';
        this.#end(null);
      }
      return;
    }
    await this.ended;
    this.#state = 'destroyed';
  }

  /** The VM's private directory on the host (gone once the VM is). */
  get runDir(): string {
    return this.#runDir;
  }

  /** The agent channel (QEMU's fd 3): a pool VM's owner hands it to the keeper that takes the VM (pool.ts). */
  get agentChannel(): Socket {
    return this.#qemu.child.stdio[3] as Socket;
  }

  /** The pid of QEMU's outermost jail wrapper (its process group's leader). */
  get qemuWrapperPid(): number | undefined {
    return this.#qemu.child.pid;
  }

  /** The uid QEMU runs as: no other process on the host has it. */
  get vmmUid(): number {
    return this.#vmmUid;
  }

  /** Every process the VM has on the host: the jails' wrappers, QEMU, virtiofsd and its worker. */
  get hostProcesses(): number[] {
    const wrappers = [this.#qemu.child.pid, this.#virtiofsd?.child.pid].filter((p): p is number => p !== undefined);
    return [...new Set([...wrappers, ...vmProcesses(this.#vmmUid, this.#runDir)])];
  }

  /**
   * Makes the guest's network the container's (src/vm/network.ts): each NIC renamed as its
   * interface, with its MTU, addresses and routes. Before the container is created: it shares
   * the guest's network namespace.
   */
  async configureNetwork(net: ContainerNetwork): Promise<void> {
    for (const r of guestNetworkRequests(net)) await this.client.request({ ...r, id: 0 });
  }

  /** The failure that ended the VM, if one did. */
  get failure(): VmError | undefined {
    return this.#failure;
  }
}

/** Boots a VM over opts.rootfs and returns it once its agent answered and the root is mounted. */
export async function bootVm(opts: BootOptions): Promise<Vm> {
  requireVmm();
  const memoryMiB = opts.memoryMiB ?? 256;
  const cpus = opts.cpus ?? 1;
  if (!Number.isInteger(memoryMiB) || memoryMiB < 64 || memoryMiB > 65536) {
    throw new StockadeError('USAGE', `vm: memory of ${memoryMiB} MiB is out of range (64 to 65536)`, { field: 'memoryMiB' });
  }
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > 64) throw new StockadeError('USAGE', `vm: ${cpus} vCPUs is out of range (1 to 64)`, { field: 'cpus' });
  const debug = opts.debug ?? ((): void => undefined);
  const t0 = performance.now();
  let assets: GuestAssets;
  try {
    assets = opts.assets !== undefined && 'initramfs' in opts.assets ? opts.assets : ensureGuestAssets(opts.assets ?? {});
  } catch (e) {
    throw new VmError('ASSETS', `vm: ${isStockadeError(e) ? e.message : String(e)}`, {}, { cause: e });
  }
  if (!existsSync(opts.rootfs)) throw new VmError('ASSETS', `vm: rootfs ${opts.rootfs} does not exist`, { path: opts.rootfs });
  const cacheDir = opts.assets !== undefined && !('initramfs' in opts.assets) ? opts.assets.cacheDir ?? defaultCacheDir() : defaultCacheDir();
  const accel = await resolveAccel(assets, cacheDir);
  debug(`vm: accelerator ${accel.accel}: ${accel.reason}`);

  const runDir = mkdtempSync(join(opts.runParent ?? tmpdir(), 'stockade-vm-'));
  const fsSocket = join(runDir, 'virtiofs.sock');
  let virtiofsd: Jailed | undefined;
  let qemu: Jailed | undefined;
  let vm: Vm | undefined;
  let vmmUid = -1;
  try {
    const share = join(runDir, 'share');
    const entries = shareEntries(opts, share);
    const fsArgv = jailedVirtiofsd(share, fsSocket, entries);
    debug(`vm: ${fsArgv.join(' ')}`);
    virtiofsd = startJailed('virtiofsd', fsArgv, ['ignore', 'pipe', 'pipe']);
    const fsConn = await connectVirtiofsd(fsSocket, virtiofsd, 10000);
    const user = vmmUser();
    vmmUid = user.uid;
    const kernelArgs = [...(accel.accel === 'tcg' ? tcgClockArgs() : []), ...(opts.kernelArgs ?? [])];
    const nics = opts.nics ?? [];
    const qemuArgv = jailedQemu({ assets, accel: accel.accel, memoryMiB, cpus, user, kernelArgs, nics }, makeQemuJail(runDir, accel.accel === 'kvm'));
    debug(`vm: ${qemuArgv.join(' ')}`);
    // Spawned and our copy of the connection closed in one tick: virtiofsd speaks only when
    // QEMU asks, so nothing can have been read from it on our side.
    try {
      qemu = startJailed('qemu', qemuArgv, ['ignore', 'pipe', 'pipe', 'pipe', fsConn, 'pipe', ...nics.map((n) => n.fd)]);
    } finally {
      fsConn.destroy();
    }
    // virtiofsd took its one connection; the name is no longer needed.
    rmSync(fsSocket, { force: true });
    vm = new Vm(runDir, qemu, virtiofsd, vmmUid, opts.requestTimeoutMs ?? 30000, accel, assets);
    vm.balloon = new Balloon(new Qmp((qemu.child.stdio as unknown as Socket[])[QMP_FD]!), memoryMiB);
    vm.shares = guestShares(opts);
    // virtiofsd (with no binds: setpriv and the share script exec it in place) pivots into the share.
    if (virtiofsd.child.pid !== undefined) vm.shareServer = { pid: virtiofsd.child.pid, inNamespace: '/', onHost: share };
    const failed = vm.ended.then((e) => {
      throw e ?? new VmError('DESTROYED', 'vm: destroyed during boot');
    });
    const timeout = opts.bootTimeoutMs ?? 60000;
    vm.kernelRelease = await Promise.race([vm.client.hello(timeout), failed]);
    vm.bootMs = performance.now() - t0;
    debug(`vm: agent ready after ${vm.bootMs.toFixed(0)} ms (guest kernel ${vm.kernelRelease})`);
    // Read-only parts are read-only binds on the host (shareEntries); the share itself is not.
    await Promise.race([vm.client.mount('VIRTIOFS', ROOTFS_TAG, GUEST_SHARE, false), failed]);
    await Promise.race([vm.client.mount('PROC', '', `${GUEST_ROOT}/proc`, false), failed]);
    failed.catch(() => undefined);
    return vm;
  } catch (e) {
    if (vm !== undefined) {
      await vm.destroy();
      // The console says why a boot failed (a kernel panic, an agent message) better than a timeout does.
      // Our own kill of QEMU makes its jail's unshare say so on the same stream: that is not why it failed.
      const lines = vm.console.trim().split('\n').filter((l) => !/^unshare: sigprocmask unblock failed/.test(l.trim()));
      const panic = lines.find((l) => /Kernel panic|stockade-agent:/.test(l));
      const con = [...(panic !== undefined ? [panic] : []), ...lines.slice(-2)].map((l) => l.trim()).join(' | ');
      if (e instanceof VmError && con !== '') e.message += ` (console: ${con})`;
    } else {
      await killVm([qemu, virtiofsd], vmmUid, runDir);
      rmSync(runDir, { recursive: true, force: true });
    }
    throw e;
  }
}

/** Where the root and each bind source of the share appear in the guest (shareEntries' names). */
export function guestShares(opts: Pick<BootOptions, 'rootfs' | 'binds'>): GuestShares {
  return {
    rootfs: { host: realpathSync(opts.rootfs), guest: GUEST_ROOT },
    binds: new Map((opts.binds ?? []).map((b, i) => [b.source, `${GUEST_SHARE}/b${i}`])),
  };
}

/**
 * The share's skeleton under `share` (the rootfs's mount point, one per bind source: a directory,
 * or an empty file for a file) and the binds virtiofsd's namespace makes on it. A bind source
 * that does not exist is refused by name before anything starts.
 */
export function shareEntries(opts: Pick<BootOptions, 'rootfs' | 'readonlyRoot' | 'binds' | 'rootOverlay'>, share: string): ShareEntry[] {
  mkdirSync(join(share, 'root'), { recursive: true, mode: 0o755 });
  const root = realpathSync(opts.rootfs);
  if (opts.rootOverlay !== undefined) {
    // overlayfs splits its options on ',' and ':' (and escapes with '\\'); the tmpfs options are ours.
    if (/[,:\\]/.test(root)) throw new VmError('ASSETS', `vm: an overlay root over ${root}: a path with ',', ':' or '\\' cannot be overlaid`, { path: root });
    if (!/^[A-Za-z0-9=_]*$/.test(opts.rootOverlay.replace(/,/g, '_'))) throw new VmError('ASSETS', `vm: overlay tmpfs options ${JSON.stringify(opts.rootOverlay)}`);
    mkdirSync(join(share, '..', 'upper-root'), { mode: 0o700 });
  }
  const entries: ShareEntry[] = [{ source: root, name: 'root', readonly: opts.readonlyRoot ?? false, overlay: opts.rootOverlay }];
  (opts.binds ?? []).forEach((b, i) => {
    const st = statSync(b.source, { throwIfNoEntry: false });
    if (st === undefined) throw new VmError('ASSETS', `vm: bind source ${b.source} does not exist`, { path: b.source });
    const name = `b${i}`;
    if (st.isDirectory()) mkdirSync(join(share, name), { mode: 0o755 });
    else writeFileSync(join(share, name), '', { mode: 0o644 });
    entries.push({ source: b.source, name, readonly: b.readonly ?? false, ...(b.idmap !== undefined && b.readonly !== true ? { idmap: b.idmap } : {}), ...(b.nofollow === true ? { nofollow: true } : {}) });
  });
  return entries;
}
