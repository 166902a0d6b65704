// The vm level's pool: clones restored from the template and warmed ahead of need, each handed whole to one container's keeper.
//
// A clone's `run` pays QEMU's start, the restore and, above all, TCG translating for the first
// time every guest path a container's setup and first exec take (docs/design/vm-templates.md).
// A pool VM has paid them before any container asks: restored, it ran one throwaway container
// (`/bin/true` over the host's root, read-only, as `do` shares it), and the root was taken out of
// its share again. A create then claims it instead of restoring:
//
//   create (driver.ts)            keeper (keeper.ts)                    the VM's owner (this file, --pool)
//   claim: rename ready->taken ─> connect pool.sock, send the take ──>  bind the root into share/pods/m0,
//                                                                       REFRESH (entropy, clock, name),
//                                                                       itself and QEMU into the container's
//                                                                       cgroups; pauses the agent channel
//                                 pidfd_getfd(owner, channel) <──────── reply: fd, pids, shares
//                                 the Vm adopted; "taken" ──────────>   closes its copy of the channel
//   refill: a new owner (detached, in stockade-vm-templates)
//
// The owner stays QEMU's parent (its jail's parent-death signals name it) and the VM's escort:
// the keeper's connection is the tie. The keeper gone (even SIGKILL) closes it, and the owner
// kills the VM and leaves; QEMU gone, the owner closes it, and the keeper's VM fails as a VM
// whose QEMU died. A VM is handed over once (the claim is a rename: one claimer wins), never
// returned to the pool, and each hand-over sends REFRESH, so two containers never share a CRNG
// state, clock or name. A waiting owner leaves (its VM with it) when its entry, its state root or
// its template goes, when its VM dies, or after STOCKADE_VM_POOL_IDLE_S unused.
//
//   <state root>/.vm-pool/<entry>/     owner.pid, template.json, pool.sock, ready (the template's key), the VM's run dir
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, connect, Socket } from 'node:net';
import { setPriority } from 'node:os';
import { basename, join, posix } from 'node:path';
import { performance } from 'node:perf_hooks';
import { defaultSpec } from '../oci/default-spec';
import type { Spec } from '../oci/spec';
import { buildPlan, heldCapabilities } from '../container/plan';
import { readProcessStat } from '../container/process-identity';
import { seccompFor } from '../container/seccomp';
import { pidfdGetfd, pidfdOpen } from '../native/addon';
import { VmError } from './errors';
import { POOL_DIR } from './keeper-wire';
import { adoptedJailed } from './host-processes';
import { GUEST_PLAN_PLACEHOLDERS, type GuestShares } from './guest-plan';
import { addPodShare } from './pod-share';
import { HOLDER_SCRIPT, holderCgroups, restoreVm, type Template } from './template';
import { Vm, type VmBind } from './vm';
import { rbindBinary } from './vmm';

export { POOL_DIR };
/** The name of a handed-over container's share in the pool VM (pods' later containers take m1, m2, ...). */
const TAKEN_SHARE = 'm0';

/**
 * How many warmed VMs wait per state root: STOCKADE_VM_POOL, off (0) unless set. Opt-in, as Kata's
 * VM cache is: each waiting VM holds ~65 MB and a QEMU for up to STOCKADE_VM_POOL_IDLE_S after the
 * last vm container, and measured here it did not start containers faster than a restored clone
 * (docs/design/vm-templates.md, The pool).
 */
export function poolSize(env: NodeJS.ProcessEnv = process.env): number {
  const v = env['STOCKADE_VM_POOL'];
  if (v === undefined || v === '') return 0;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 && n <= 16 ? n : 0;
}

export function poolDir(stateRoot: string): string {
  return join(stateRoot, POOL_DIR);
}

/** The pool's entries (p-XXXXXX directories; pool.log is the owners' log). */
function entries(stateRoot: string): string[] {
  try {
    return readdirSync(poolDir(stateRoot)).filter((n) => n.startsWith('p-')).map((n) => join(poolDir(stateRoot), n));
  } catch {
    return [];
  }
}

/** Running (a zombie is not: an owner whose creator exited is reaped only by a subreaper or init, when they get to it). */
function alive(pid: number): boolean {
  const state = readProcessStat(pid)?.state;
  return state !== undefined && state !== 'Z' && state !== 'X';
}

function ownerPid(entry: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(entry, 'owner.pid'), 'utf8'));
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Ends a pool entry: its owner (and with it its VM) and its directory. */
export function discardPooled(entry: string): void {
  endEntry(entry);
}

function endEntry(entry: string): void {
  const pid = ownerPid(entry);
  // Its owner leaves when its entry goes; a SIGTERM makes that now.
  rmSync(entry, { recursive: true, force: true });
  if (pid !== undefined) {
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
  }
}

/**
 * Claims a warmed VM of template t from the state root's pool: the entry's directory, now
 * `taken` (a rename: of two creates, one wins), or undefined. An entry of another template (the
 * template changed) or whose owner is gone is ended on the way.
 */
export function claimPooled(stateRoot: string, t: Template, debug: (l: string) => void): string | undefined {
  for (const entry of entries(stateRoot)) {
    const name = basename(entry);
    let key: string;
    try {
      key = readFileSync(join(entry, 'ready'), 'utf8');
    } catch {
      continue;
    }
    const pid = ownerPid(entry);
    if (key !== t.key || pid === undefined || !alive(pid)) {
      debug(`vm pool: ${name} discarded: ${key !== t.key ? `its template ${key} is not the current ${t.key}` : 'its owner is gone'}`);
      endEntry(entry);
      continue;
    }
    try {
      renameSync(join(entry, 'ready'), join(entry, 'taken'));
    } catch {
      continue;
    }
    debug(`vm pool: ${name} claimed (owner ${pid})`);
    return entry;
  }
  return undefined;
}

/** Starts owners until `size` VMs of template t wait or warm in the state root's pool. */
export function refillPool(stateRoot: string, t: Template, size: number, debug: (l: string) => void): void {
  const dir = poolDir(stateRoot);
  let waiting = 0;
  for (const entry of entries(stateRoot)) {
    const pid = ownerPid(entry);
    if (existsSync(join(entry, 'taken'))) continue;
    if (pid === undefined || !alive(pid)) {
      // An owner that died before it said its pid is given a minute; after that its entry is rubbish.
      if (pid !== undefined || Date.now() - (statMs(entry) ?? 0) > 60000) endEntry(entry);
      else waiting++;
      continue;
    }
    waiting++;
  }
  for (; waiting < size; waiting++) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const entry = mkdtempSync(join(dir, 'p-'));
    writeFileSync(join(entry, 'template.json'), JSON.stringify(t), { mode: 0o600 });
    // Into the templates' cgroup before it starts a thing (as the holder): not the create call's,
    // whose service or test run would hold a waiting VM it never asked for.
    const { keeperScript } = require('./keeper-client') as typeof import('./keeper-client');
    const child = spawn('/bin/sh', ['-c', HOLDER_SCRIPT, 'sh', ...holderCgroups(), '--',
      process.execPath, keeperScript(), '--pool', entry], { stdio: 'ignore', detached: true });
    child.unref();
    debug(`vm pool: refilling with ${entry} (pid ${child.pid ?? '?'})`);
  }
}

function statMs(path: string): number | undefined {
  return statSync(path, { throwIfNoEntry: false })?.mtimeMs;
}

/** Ends every waiting VM of a state root's pool (`vm-template --prune`); returns how many. */
export function endPool(stateRoot: string): number {
  // A taken entry is a running container's VM: it goes with that container, not here.
  const waiting = entries(stateRoot).filter((e) => !existsSync(join(e, 'taken')));
  for (const entry of waiting) endEntry(entry);
  return waiting.length;
}

/** What the keeper asks of a claimed VM's owner. */
interface TakeRequest {
  readonly rootfs: string;
  readonly readonlyRoot: boolean;
  readonly binds: readonly VmBind[];
  readonly hostname: string;
  readonly cgroupPaths: readonly string[];
}

interface TakeReply {
  readonly ok: boolean;
  readonly error?: string;
  readonly fd?: number;
  readonly owner?: number;
  readonly wrapper?: number;
  readonly runDir?: string;
  readonly vmmUid?: number;
  readonly rootfs?: { host: string; guest: string };
  readonly binds?: [string, string][];
  readonly shareServer?: { pid: number; inNamespace: string; onHost: string };
  readonly kernelRelease?: string;
  readonly reason?: string;
}

function readLine(sock: Socket, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => done(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    const onData = (d: Buffer): void => {
      buf += d.toString('utf8');
      const i = buf.indexOf('\n');
      if (i >= 0) done(undefined, buf.slice(0, i));
    };
    const onEnd = (): void => done(new Error('the owner hung up'));
    const done = (e?: Error, line?: string): void => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('close', onEnd);
      sock.off('error', onEnd);
      if (e !== undefined) reject(e);
      else resolve(line ?? '');
    };
    sock.on('data', onData);
    sock.once('close', onEnd);
    sock.once('error', onEnd);
  });
}

/**
 * The keeper's side: takes the claimed VM in `entry` for a container (its root and bind sources
 * bound into the VM's share, REFRESH sent, the VM in the container's cgroups) and returns it as a
 * Vm of this process. Throws when the VM cannot be had (its owner or QEMU gone): the caller
 * restores a clone instead.
 */
export async function takePooled(entry: string, req: TakeRequest, t: Template, requestTimeoutMs: number): Promise<Vm> {
  const t0 = performance.now();
  const sock = connect(join(entry, 'pool.sock'));
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  let tookFd = -1;
  try {
    const line = readLine(sock, 20000);
    sock.write(`${JSON.stringify(req)}\n`);
    const r = JSON.parse(await line) as TakeReply;
    if (!r.ok || r.fd === undefined || r.owner === undefined || r.wrapper === undefined || r.runDir === undefined || r.vmmUid === undefined || r.rootfs === undefined) {
      throw new VmError('VMM_EXITED', `vm pool: ${r.error ?? 'the owner gave no VM'}`);
    }
    const pidfd = pidfdOpen(r.owner);
    try {
      tookFd = pidfdGetfd(pidfd, r.fd);
    } finally {
      closeSync(pidfd);
    }
    const channel = new Socket({ fd: tookFd, readable: true, writable: true });
    tookFd = -1;
    sock.write('taken\n');
    // The tie: the owner closes it when QEMU is gone (and says how); this process's end makes the owner end the VM.
    let said = '';
    sock.on('data', (d: Buffer) => { if (said.length < 4096) said += d.toString('utf8'); });
    const exited = new Promise<string>((resolve) => sock.once('close', () => resolve(said.trim() !== '' ? said.trim() : 'exited (its pool owner is gone)')));
    sock.on('error', () => undefined);
    const vm = new Vm(r.runDir, adoptedJailed(r.wrapper, channel, exited), undefined, r.vmmUid, requestTimeoutMs,
      { accel: t.manifest.inputs['accel'] === 'kvm' ? 'kvm' : 'tcg', reason: `restored from template ${t.key}, warmed in the pool` }, t.assets);
    vm.shares = { rootfs: r.rootfs, binds: new Map(r.binds ?? []) };
    if (r.shareServer !== undefined) vm.shareServer = r.shareServer;
    vm.kernelRelease = r.kernelRelease ?? t.assets.release;
    vm.bootMs = performance.now() - t0;
    vm.pooled = true;
    return vm;
  } catch (e) {
    if (tookFd >= 0) closeSync(tookFd);
    sock.destroy();
    throw e;
  }
}

/** The throwaway container a pool VM runs to warm TCG's cache: /bin/true over the host's root, read-only. */
function warmSpec(): Spec {
  const d = defaultSpec();
  return {
    ...d,
    process: { ...d.process!, terminal: false, args: ['/bin/true'] },
    root: { path: '/', readonly: true },
    hostname: 'stockade-pool',
    linux: { ...d.linux, namespaces: (d.linux?.namespaces ?? []).filter((ns) => ns.type !== 'network') },
  };
}

function moveToCgroups(pids: readonly number[], paths: readonly string[]): void {
  for (const dir of paths) {
    for (const pid of pids) {
      try {
        writeFileSync(join(dir, 'cgroup.procs'), `${pid}\n`);
      } catch (e) {
        // A process gone meanwhile is fine; a cgroup that refuses a live one is not.
        if (alive(pid)) throw e;
      }
    }
  }
}

/** `stockade-vmkeeper --pool ENTRY`: restores, warms, waits, hands over, escorts. */
export async function runPoolOwner(entry: string): Promise<void> {
  const log = (l: string): void => {
    try {
      appendFileSync(join(entry, '..', 'pool.log'), `${new Date().toISOString()} ${process.pid} ${l}\n`);
    } catch { /* the pool went */ }
  };
  const quit = (why: string, code = 0): never => {
    log(`leaves: ${why}`);
    rmSync(entry, { recursive: true, force: true });
    process.exit(code);
  };
  writeFileSync(join(entry, 'owner.pid'), String(process.pid));
  const t = JSON.parse(readFileSync(join(entry, 'template.json'), 'utf8')) as Template;
  const stateRoot = join(entry, '..', '..');
  // Warmed at a low priority: a container starting meanwhile (the one whose create started this) goes first.
  try { setPriority(10); } catch { /* left as it is */ }
  let vm: Vm;
  try {
    vm = await restoreVm({ rootfs: '/', readonlyRoot: true, template: t, runParent: entry, hostname: `stockade-${randomBytes(6).toString('hex')}`, debug: log });
  } catch (e) {
    return quit(`restore failed: ${(e as Error).message}`, 1);
  }
  let taken = false;
  // Waiting: its VM's end is its own (after the hand-over, handOver escorts it).
  void vm.ended.then((e) => {
    if (!taken) quit(`its VM ended: ${e?.message ?? 'destroyed'}`, 1);
  });
  const server = vm.shareServer;
  try {
    if (server === undefined) throw new Error('the clone has no share server');
    const spec = warmSpec();
    const plan = buildPlan(spec, {
      id: 'pool-warm', bundle: entry, ...GUEST_PLAN_PLACEHOLDERS, consoleSocket: undefined,
      cgroupPaths: [], noPivot: false, noNewKeyring: false, rootfsMode: 'bind', createHooks: false,
      heldCapabilities: heldCapabilities(), seccomp: seccompFor(spec, stateRoot),
    });
    const c = await vm.createContainer({ plan });
    await c.start();
    const st = await c.wait();
    log(`warmed: /bin/true exited ${st.code ?? `by signal ${st.signal}`}`);
    // The host's root out of the share before any container may see the VM.
    const out = spawnSync(rbindBinary(), ['--ns', `/proc/${server.pid}/ns/mnt`, '--umount', posix.join(server.inNamespace, 'root')], { encoding: 'utf8' });
    if (out.status !== 0) throw new Error(`the warm-up root stays in the share: ${out.stderr.trim()}`);
  } catch (e) {
    await vm.destroy();
    return quit(`warm-up failed: ${(e as Error).message}`, 1);
  }
  const idleMs = Number(process.env['STOCKADE_VM_POOL_IDLE_S'] ?? 600) * 1000;
  const since = Date.now();
  const watch = setInterval(() => {
    if (taken) return;
    const why = !existsSync(entry) ? 'its entry was removed'
      : !existsSync(stateRoot) ? 'its state root was removed'
        : !existsSync(t.dir) ? 'its template was removed'
          : Date.now() - since > idleMs ? `unused for ${idleMs / 1000} s` : undefined;
    if (why !== undefined) {
      taken = true;
      void vm.destroy().then(() => quit(why));
    }
  }, 1000);
  const srv = createServer((sock) => {
    if (taken) {
      sock.destroy();
      return;
    }
    taken = true;
    clearInterval(watch);
    srv.close();
    void handOver(vm, sock, entry, log).catch(async (e: unknown) => {
      log(`hand-over failed: ${(e as Error).message}`);
      sock.end(`${JSON.stringify({ ok: false, error: (e as Error).message })}\n`);
      await vm.destroy();
      quit('hand-over failed', 1);
    });
  });
  // A socket path too long for sun_path (a deep state root), or any other: no pool VM here.
  srv.on('error', (e) => {
    taken = true;
    void vm.destroy().then(() => quit(`cannot listen: ${e.message}`, 1));
  });
  srv.listen(join(entry, 'pool.sock'), () => {
    // Written aside and renamed: a claim (or a test) that sees `ready` reads the whole key, even
    // when this owner dies right after (one CI run read an empty key from an owner killed mid-write).
    writeFileSync(join(entry, 'ready.part'), t.key);
    renameSync(join(entry, 'ready.part'), join(entry, 'ready'));
    log(`ready: template ${t.key}`);
  });
}

async function handOver(vm: Vm, sock: Socket, entry: string, log: (l: string) => void): Promise<void> {
  const req = JSON.parse(await readLine(sock, 20000)) as TakeRequest;
  const server = vm.shareServer!;
  const shares: GuestShares = addPodShare(server, TAKEN_SHARE, { rootfs: req.rootfs, readonlyRoot: req.readonlyRoot, binds: req.binds.map((b) => ({ source: b.source, readonly: b.readonly ?? false, nofollow: b.nofollow === true })) });
  // Not a twin of the warm-up's guest, nor of any other: the entropy, clock and name of now.
  const now = Date.now();
  const seconds = Math.floor(now / 1000);
  await vm.client.request({
    type: 'REFRESH', id: 0, seed: randomBytes(64),
    secondsHigh: Math.floor(seconds / 2 ** 32), secondsLow: seconds >>> 0, nanoseconds: (now % 1000) * 1e6,
    hostname: req.hostname,
  });
  const pids = [process.pid, ...vm.hostProcesses];
  for (const pid of pids) {
    try { setPriority(pid, 0); } catch { /* gone */ }
  }
  moveToCgroups(pids, req.cgroupPaths);
  // Nothing more is read here: the channel is the keeper's from now on.
  const channel = vm.agentChannel;
  channel.pause();
  const fd = (channel as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (fd === undefined || fd < 0) throw new Error('the agent channel has no fd');
  const wrapper = vm.qemuWrapperPid;
  if (wrapper === undefined) throw new Error('its QEMU has no pid');
  const reply: TakeReply = {
    ok: true, fd, owner: process.pid, wrapper, runDir: vm.runDir, vmmUid: vm.vmmUid,
    rootfs: shares.rootfs, binds: [...shares.binds], kernelRelease: vm.kernelRelease,
    ...(vm.shareServer !== undefined ? { shareServer: vm.shareServer } : {}),
  };
  sock.write(`${JSON.stringify(reply)}\n`);
  await readLine(sock, 20000);
  channel.destroy();
  // Nothing is asked of the agent from here: a destroy kills QEMU without a power-off request.
  vm.client.fail(new VmError('DESTROYED', 'vm: handed over to a keeper'));
  log(`handed over to ${req.hostname}`);
  // The escort: the keeper's end is the VM's; QEMU's end is told to the keeper.
  let keeperGone = false;
  sock.on('error', () => undefined);
  sock.once('close', () => {
    keeperGone = true;
    void vm.destroy().then(() => {
      rmSync(entry, { recursive: true, force: true });
      process.exit(0);
    });
  });
  void vm.ended.then((e) => {
    if (keeperGone) return;
    sock.end(e?.message ?? 'qemu exited');
    rmSync(entry, { recursive: true, force: true });
    setTimeout(() => process.exit(0), 100);
  });
}
