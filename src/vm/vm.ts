// A booted microVM: QEMU and virtiofsd in their jails, the agent on the other end of the channel.
//
// bootVm() returns only a VM whose agent answered and whose root is mounted; on any failure on
// the way it has already killed what it started and removed its directory. A VM fails closed:
// if QEMU or virtiofsd exits, or the guest breaks the protocol, the other is killed, every open
// request fails with a VmError saying which, and `ended` resolves to that error.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { SIGNALS } from '../abi/linux/constants';
import { StockadeError, isStockadeError } from '../errors';
import { tcgClockArgs, type AccelChoice } from './accel';
import { resolveAccel } from './accel-probe';
import { AgentClient, type ExitStatus, type Sink } from './agent-client';
import { defaultCacheDir, ensureGuestAssets, type GuestAssetOptions, type GuestAssets } from './assets';
import { VmError } from './errors';
import { connectVirtiofsd, killVm, startJailed, vmProcesses, within, type Jailed } from './host-processes';
import { makeQemuJail } from './jail';
import { ROOTFS_TAG, jailedQemu, jailedVirtiofsd, requireVmm, vmmUser } from './vmm';

export { vmProcesses } from './host-processes';

/** Where the container's root is mounted in the guest. */
export const GUEST_ROOT = '/run/stockade/root';

export interface BootOptions {
  /** The host directory that becomes the container's root (shared by virtiofs). */
  readonly rootfs: string;
  readonly readonlyRoot?: boolean;
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

export class VmProcess {
  constructor(
    readonly vm: Vm,
    /** The agent's handle for it. */
    readonly handle: number,
    /** Its pid in the guest. */
    readonly pid: number,
    readonly outputDone: Promise<void>,
  ) {}

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

export class Vm {
  readonly client: AgentClient;
  readonly ended: Promise<VmError | null>;
  /** Set once booted. */
  kernelRelease = '';
  bootMs = 0;
  readonly #runDir: string;
  readonly #vmmUid: number;
  readonly #qemu: Jailed;
  readonly #virtiofsd: Jailed;
  #end!: (e: VmError | null) => void;
  #state: 'running' | 'failed' | 'destroying' | 'destroyed' = 'running';
  #destroyed: Promise<void> | undefined;
  #failure: VmError | undefined;

  /** @internal use bootVm */
  constructor(
    runDir: string, qemu: Jailed, virtiofsd: Jailed, vmmUid: number, requestTimeoutMs: number,
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
    const report = (j: Jailed, how: string): void => {
      if (this.#state !== 'running') return;
      const why = j.tail.lastLine();
      this.#fail(new VmError('VMM_EXITED', `vm: ${j.name} ${how}${why !== '' ? `: ${why}` : ''}`, { process: j.name }));
    };
    void qemu.exited.then((how) => report(qemu, how));
    // virtiofsd leaves when QEMU does: name QEMU when both go, since its exit is the cause.
    void virtiofsd.exited.then(async (how) => {
      let qemuHow: string | undefined;
      await within(qemu.exited.then((h) => { qemuHow = h; }), 300);
      if (qemuHow !== undefined) report(qemu, qemuHow);
      else report(virtiofsd, how);
    });
  }

  /** The guest console and the VMMs' own output, for diagnosing a failed boot. */
  get console(): string {
    return this.#qemu.tail.text() + this.#virtiofsd.tail.text();
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
    } finally {
      (this.#qemu.child.stdio[3] as Socket | null)?.destroy();
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
        await within(this.#qemu.exited, 5000);
      } catch {
        /* the kill below ends it either way */
      }
      // virtiofsd leaves once QEMU hangs up; give it a moment before the kill.
      await within(this.#virtiofsd.exited, 2000);
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

  /** The uid QEMU runs as: no other process on the host has it. */
  get vmmUid(): number {
    return this.#vmmUid;
  }

  /** Every process the VM has on the host: the jails' wrappers, QEMU, virtiofsd and its worker. */
  get hostProcesses(): number[] {
    const wrappers = [this.#qemu.child.pid, this.#virtiofsd.child.pid].filter((p): p is number => p !== undefined);
    return [...new Set([...wrappers, ...vmProcesses(this.#vmmUid, this.#runDir)])];
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
    const fsArgv = jailedVirtiofsd(opts.rootfs, fsSocket);
    debug(`vm: ${fsArgv.join(' ')}`);
    virtiofsd = startJailed('virtiofsd', fsArgv, ['ignore', 'pipe', 'pipe']);
    const fsConn = await connectVirtiofsd(fsSocket, virtiofsd, 10000);
    const user = vmmUser();
    vmmUid = user.uid;
    const kernelArgs = [...(accel.accel === 'tcg' ? tcgClockArgs() : []), ...(opts.kernelArgs ?? [])];
    const qemuArgv = jailedQemu({ assets, accel: accel.accel, memoryMiB, cpus, user, kernelArgs }, makeQemuJail(runDir, accel.accel === 'kvm'));
    debug(`vm: ${qemuArgv.join(' ')}`);
    // Spawned and our copy of the connection closed in one tick: virtiofsd speaks only when
    // QEMU asks, so nothing can have been read from it on our side.
    try {
      qemu = startJailed('qemu', qemuArgv, ['ignore', 'pipe', 'pipe', 'pipe', fsConn]);
    } finally {
      fsConn.destroy();
    }
    // virtiofsd took its one connection; the name is no longer needed.
    rmSync(fsSocket, { force: true });
    vm = new Vm(runDir, qemu, virtiofsd, vmmUid, opts.requestTimeoutMs ?? 30000, accel, assets);
    const failed = vm.ended.then((e) => {
      throw e ?? new VmError('DESTROYED', 'vm: destroyed during boot');
    });
    const timeout = opts.bootTimeoutMs ?? 60000;
    vm.kernelRelease = await Promise.race([vm.client.hello(timeout), failed]);
    vm.bootMs = performance.now() - t0;
    debug(`vm: agent ready after ${vm.bootMs.toFixed(0)} ms (guest kernel ${vm.kernelRelease})`);
    await Promise.race([vm.client.mount('VIRTIOFS', ROOTFS_TAG, GUEST_ROOT, opts.readonlyRoot ?? false), failed]);
    await Promise.race([vm.client.mount('PROC', '', `${GUEST_ROOT}/proc`, false), failed]);
    failed.catch(() => undefined);
    return vm;
  } catch (e) {
    if (vm !== undefined) {
      await vm.destroy();
      // The console says why a boot failed (a kernel panic, an agent message) better than a timeout does.
      const lines = vm.console.trim().split('\n');
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
