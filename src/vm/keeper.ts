// The VM keeper: the local process that stands for a vm container's workload under the runc contract.
//
// One per container, started detached by `create` (or attached by `run`), its pid the one in
// --pid-file and in state.json. It joins the container's cgroups, boots the VM (QEMU and
// virtiofsd inherit the cgroups), says "ok" on fd 3 once the container is created, and then:
//   - serves the CLI on vm.sock in the state directory (keeper-wire.ts): start, signal, exec,
//     pids, stats, update;
//   - relays the workload's stdio: its own fds 0-2 are what the client gave `create` (pipes,
//     fifos, files), or a pty whose master went to the client's --console-socket;
//   - passes the signals it gets (FORWARDED_SIGNALS) to the workload;
//   - exits with the workload's status (by the same signal when the workload died of one), after
//     the VM is torn down.
// Fail closed: if QEMU, virtiofsd or the agent fails, the workload is gone with its VM; the keeper
// says why in keeper.log and exits 255. Its own death (even SIGKILL) takes QEMU and virtiofsd with
// it: their wrappers hold parent-death signals (vmm.ts).
import { spawnSync } from 'node:child_process';
import { appendFileSync, closeSync, openSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { join } from 'node:path';
import { FORWARDED_SIGNALS, SIGNALS } from '../abi/linux/constants';
import type { ExitStatus } from './agent-client';
import { guestLimits } from './sizing';
import type { Process } from '../oci/spec';
import { buildExecPlan } from '../container/exec-plan';
import { buildPlan, heldCapabilities } from '../container/plan';
import { seccompFor } from '../container/seccomp';
import { readInput } from './fd-input';
import { GUEST_PLAN_PLACEHOLDERS } from './guest-plan';
import {
  FRAME, FrameReader, KEEPER_CONFIG_FD, KEEPER_EXITED, KEEPER_LOG, KEEPER_NET, KEEPER_SOCKET, KEEPER_STARTED, KEEPER_TIE_FD, KEEPER_VM,
  encodeFrame, parseRequest, type GuestStats, type KeeperConfig, type KeeperReply, type KeeperRequest,
} from './keeper-wire';
import { readNetwork, unwireInterfaces, wireInterfaces, type ContainerNetwork, type VmNic, type Wired } from './network';
import { makeMountPoints } from './mount-points';
import { containerResolvConf, forwardLoopbackDns, loopbackNameservers } from './dns-forward';
import { startVm } from './template';
import { discardPooled, takePooled } from './pool';
import { FdWriter, KEEPER_VM_FAILED, sender, SIGNAL_NAMES, exitAs, followWindow, joinCgroups, openHostTerminal, tellCreate } from './keeper-common';

export { KEEPER_VM_FAILED } from './keeper-common';
import { isPodSandbox } from '../container/pod';
import { PodHost, limitsOf, type GuestUnit, type PodConnection } from './pod-host';
import type { Vm, VmProcess } from './vm';
import { mark, timingEnabled, timingTo } from '../log/timing';
import { trimWhileWaiting } from '../native/working-set';




class Keeper {
  readonly #cfg: KeeperConfig;
  #vm: Vm | undefined;
  /** The container in the guest: created (stockade-init there waits for start) once the keeper says ok. */
  readonly #self: GuestUnit;
  /** A pod's sandbox: the pod's later containers, made in this VM (pod-host.ts). */
  #pod: PodHost | undefined;
  #exiting = false;
  #server: import('node:net').Server | undefined;
  #stdout: FdWriter;
  #stderr: FdWriter;
  /** The host pty's slave, standing for the workload's terminal (the client holds the master). */
  #ttyIn: import('node:tty').ReadStream | undefined;
  #ttyFd = -1;
  /** The container's network namespace's interfaces, given to the VM (src/vm/network.ts). */
  #network: ContainerNetwork = { interfaces: [], routes: [] };
  #wired: Wired[] = [];
  /** The spec the guest's plans are built from: the container shares the guest's network namespace, which stands for its own. */
  readonly #guestSpec: KeeperConfig['spec'];

  constructor(cfg: KeeperConfig) {
    this.#cfg = cfg;
    const linux = cfg.spec.linux;
    // A namespace joined by path (a pod's IPC or UTS, the pause container's) is the host's, out of
    // the guest's reach: the container gets a new one in its VM (until a pod's containers share
    // one VM, issue 14 item 2).
    // The hostname a joined UTS namespace holds (the pod's, set by its sandbox) goes with it.
    const uts = linux?.namespaces?.find((ns) => ns.type === 'uts' && ns.path !== undefined && ns.path !== '');
    const hostname = cfg.spec.hostname ?? (uts?.path !== undefined ? joinedHostname(uts.path) : undefined);
    this.#guestSpec = linux?.namespaces === undefined ? cfg.spec : {
      ...cfg.spec,
      ...(hostname !== undefined ? { hostname } : {}),
      linux: { ...linux, namespaces: linux.namespaces.filter((ns) => ns.type !== 'network').map((ns) => ({ type: ns.type })) },
    };
    this.#stdout = new FdWriter(1);
    this.#stderr = new FdWriter(2);
    this.#self = { id: cfg.id, stateDir: cfg.stateDir, spec: cfg.spec, guestSpec: this.#guestSpec, container: undefined, started: false, execs: new Set() };
  }

  /** The container a request is about: the keeper's own, or a container of its pod. */
  #unit(r: KeeperRequest): GuestUnit {
    if (r.container === undefined || r.container === this.#cfg.id) return this.#self;
    const u = this.#pod?.unit(r.container);
    if (u === undefined) throw new Error(`no container ${r.container} in this pod's VM`);
    return u;
  }

  /** Takes the redirects off the container's interfaces, once the VM that used them is gone. */
  unwireNetwork(): void {
    unwireInterfaces(this.#wired);
  }

  log(line: string): void {
    try {
      appendFileSync(join(this.#cfg.stateDir, KEEPER_LOG), `${new Date().toISOString()} ${line}\n`, { mode: 0o600 });
    } catch { /* the state directory went: nothing to say it to */ }
  }

  async run(): Promise<void> {
    const cfg = this.#cfg;
    joinCgroups(cfg.cgroupPaths);
    if (cfg.tied === true) this.#watchTie();
    mark('cgroups joined');
    // Before the boot: a signal now ends the container (as it ends a runc container's init waiting for start).
    for (const name of FORWARDED_SIGNALS) process.on(name, () => void this.#signal(SIGNALS[name], false));
    let vm: Vm;
    let planned: { plan: ReturnType<typeof buildPlan> } | { error: unknown } | undefined;
    let nics: VmNic[] = [];
    try {
      // The keeper is in the container's network namespace (keeper-client.ts), now complete: the
      // client's hooks that fill it ran before the configuration came.
      // A read-only root is read-only in the host kernel: its mount points are made here first.
      if (cfg.readonlyRoot && cfg.rootfsMode === 'bind') makeMountPoints(cfg.spec, cfg.rootfs, cfg.bundle);
      // A pod's sandbox (pause) container boots the pod's VM: the pod's interfaces are its, and
      // the pod's later containers are made in it (pod-host.ts) and share the guest's network.
      this.#network = readNetwork();
      for (const held of this.#network.heldElsewhere ?? []) this.log(`network: ${held} is another VM's: not given to this one`);
      const wired = wireInterfaces(this.#network);
      nics = wired.nics;
      this.#wired = wired.wired;
      const netnsPath = cfg.spec.linux?.namespaces?.find((ns) => ns.type === 'network')?.path;
      if (netnsPath !== undefined && netnsPath !== '' && this.#wired.length > 0) {
        writeFileSync(join(cfg.stateDir, KEEPER_NET), JSON.stringify({ netns: netnsPath, wired: this.#wired }), { mode: 0o600 });
      }
      mark('network read');
      if (nics.length > 0) this.log(`network: ${this.#network.interfaces.map((i) => `${i.name} ${i.mac} ${i.addresses.map((a) => `${a.address}/${a.prefix}`).join(' ')}`).join('; ')}`);
      // microvm has no hotplug: a clone cannot take devices its template was saved without.
      const cold = cfg.coldBecause ?? (nics.length > 0 ? 'the container has network interfaces (a clone cannot take devices its template lacks)' : undefined);
      if (cold !== undefined) this.log(`vm: booting cold: ${cold}`);
      const pooled = cold === undefined && cfg.template !== undefined ? cfg.pooled : undefined;
      const start = (): Promise<Vm> => startVm({
        // The driver chose in the create call (and started the template's holder there, outside
        // this container's cgroups); a template found bad now is rebuilt, once, or it boots cold.
        template: cold === undefined,
        ...(cfg.template !== undefined ? { chosen: cfg.template } : {}),
        // The clone's name before the workload runs (a container with a UTS namespace of its own
        // sets its own over it, as on the host); a cold guest's is the kernel's default.
        hostname: guestHostname(this.#guestSpec.hostname, cfg.id),
        rootfs: cfg.rootfs,
        readonlyRoot: cfg.readonlyRoot,
        // do --rw: the guest kernel has no overlayfs (the initramfs carries no overlay module), so
        // the overlay is made on the host, in virtiofsd's own mount namespace, its writes on a tmpfs
        // there (charged to the container's cgroup, which holds virtiofsd): the host's root is its
        // lower layer and never written.
        ...(cfg.rootfsMode === 'overlay' ? { rootOverlay: cfg.sandbox?.overlayTmpfs ?? '' } : {}),
        memoryMiB: cfg.memoryMiB,
        cpus: cfg.cpus,
        // The VM's private directory goes with the state directory, unless virtiofsd's socket in it
        // would not fit in sun_path (a client's 64-character ids under a deep --root): then the
        // system's temporary directory, recorded in vm.json for delete.
        ...(Buffer.byteLength(join(cfg.stateDir, 'stockade-vm-XXXXXX', 'virtiofs.sock')) <= 107 ? { runParent: cfg.stateDir } : {}),
        binds: cfg.binds,
        nics,
        ...(cfg.assets !== undefined ? { assets: cfg.assets } : {}),
        ...(cfg.bootTimeoutMs === undefined ? {} : { bootTimeoutMs: cfg.bootTimeoutMs }),
        ...(cfg.debug === true ? { debug: (l: string) => this.log(l) } : {}),
      });
      const starting = pooled === undefined ? start() : this.#takePooled(pooled).catch((e: unknown) => {
        // Its owner or QEMU gone, or the template changed under it: the VM is thrown away, a clone restored.
        this.log(`vm pool: ${pooled} discarded: ${(e as Error).message}`);
        discardPooled(pooled);
        return start();
      });
      // The container's plan (the seccomp program compiled among it) is made while QEMU starts:
      // once the event loop turns, the VMM has been spawned and this thread would only wait.
      starting.catch(() => undefined);
      await new Promise((r) => setImmediate(r));
      planned = this.#plan();
      mark('plan built');
      vm = await starting;
      // The guest's interfaces as the namespace's, before the container (which shares them) exists.
      await vm.configureNetwork(this.#network).catch(async (e: unknown) => {
        await vm.destroy();
        throw e;
      });
      // A loopback nameserver of the container's namespace (Docker's 127.0.0.11) answers in the guest too.
      const resolvConf = containerResolvConf(cfg.spec, cfg.bundle, cfg.rootfs);
      const nameservers = resolvConf === undefined ? [] : loopbackNameservers(resolvConf);
      if (nameservers.length > 0) {
        await forwardLoopbackDns(vm.client, nameservers, (l) => this.log(l)).catch((e: unknown) => this.log(`dns: not forwarded: ${(e as Error).message}`));
      }
    } catch (e) {
      const msg = (e as Error).message.replace(/\n/g, ' ');
      this.log(`boot failed: ${msg}`);
      unwireInterfaces(this.#wired);
      tellCreate(`error ${msg}`);
      process.exit(1);
    } finally {
      // QEMU holds its own copies; the taps go with QEMU.
      for (const n of nics) closeSync(n.fd);
    }
    this.#vm = vm;
    // balloonMiB: the RAM a cold VM booted with, which its balloon can move below and back (driver.ts update).
    const balloonMiB = vm.balloon !== undefined && this.#pod === undefined && !isPodSandbox(cfg.spec.annotations) ? vm.balloon.bootMiB : undefined;
    writeFileSync(join(cfg.stateDir, KEEPER_VM), JSON.stringify({ runDir: vm.runDir, vmmUid: vm.vmmUid, ...(balloonMiB !== undefined ? { balloonMiB } : {}) }), { mode: 0o600 });
    void vm.ended.then((e) => {
      if (e !== null && !this.#exiting) void this.#vmFailed(e.message);
    });
    mark('vm ready');
    if (cfg.spec.process?.terminal === true) this.#openTerminal();
    await this.#createContainer(vm, planned ?? this.#plan());
    mark('container created');
    await this.#listen();
    mark('listening');
    this.log(`created: VM ${vm.accel.reason.startsWith('restored') ? vm.accel.reason : 'booted'} in ${vm.bootMs.toFixed(0)} ms, guest kernel ${vm.kernelRelease}`);
    tellCreate('ok');
    // The keeper waits for the rest of the container's life: what its start-up touched and no
    // longer uses goes back (V8's garbage, malloc's free pages, the page cache's pages of Node).
    trimWhileWaiting();
  }

  /** The warmed VM the driver claimed from the pool, bound to this container's root and cgroups (pool.ts). */
  async #takePooled(entry: string): Promise<Vm> {
    const cfg = this.#cfg;
    const vm = await takePooled(entry, {
      rootfs: cfg.rootfs, readonlyRoot: cfg.readonlyRoot, binds: cfg.binds,
      hostname: guestHostname(this.#guestSpec.hostname, cfg.id), cgroupPaths: cfg.cgroupPaths,
    }, cfg.template!, 30000);
    this.log(`vm: ${vm.accel.reason} (${entry}) in ${vm.bootMs.toFixed(0)} ms`);
    return vm;
  }

  /** The plan stockade-init runs in the guest, or why there is none (thrown when the container is made). */
  #plan(): { plan: ReturnType<typeof buildPlan> } | { error: unknown } {
    const cfg = this.#cfg;
    const terminal = cfg.spec.process?.terminal === true;
    try {
      return { plan: this.#buildPlan(cfg, terminal) };
    } catch (e) {
      return { error: e };
    }
  }

  #buildPlan(cfg: KeeperConfig, terminal: boolean): ReturnType<typeof buildPlan> {
    return buildPlan(this.#guestSpec, {
      id: cfg.id, bundle: cfg.bundle, ...GUEST_PLAN_PLACEHOLDERS,
      consoleSocket: terminal ? GUEST_PLAN_PLACEHOLDERS.consoleSocket : undefined,
      // do --rw's overlay is the share itself (bootVm's rootOverlay): the guest binds it as any root.
      cgroupPaths: [], noPivot: cfg.noPivot, noNewKeyring: cfg.noNewKeyring, rootfsMode: cfg.rootfsMode === 'overlay' ? 'bind' : cfg.rootfsMode, createHooks: false,
      heldCapabilities: heldCapabilities(), seccomp: seccompFor(cfg.spec, cfg.stateRoot),
      // do's init (and its deadline) runs in the guest, as pid 1 of the container's pid namespace
      // there: it ends the command at the timeout and exits 124, which the agent's WAIT reports.
      // A held-open sandbox (the SDK's) has the init alone, holding the container for exec.
      init: cfg.hold === true || (cfg.sandbox?.init ?? false),
      initTimeout: cfg.sandbox?.timeout,
      ...(cfg.hold === true ? { hold: true } : {}),
    });
  }

  /**
   * Has stockade-init make the container in the guest from the plan the namespaces level would
   * run on the host (namespaces, capabilities, seccomp, masked paths), stopped before its execve.
   */
  async #createContainer(vm: Vm, planned: { plan: ReturnType<typeof buildPlan> } | { error: unknown }): Promise<void> {
    if ('error' in planned) throw planned.error;
    const plan = planned.plan;
    const terminal = this.#cfg.spec.process?.terminal === true;
    const c = await vm.createContainer({
      plan, stdin: !terminal,
      onStdout: (b) => this.#stdout.write(b),
      onStderr: (b) => this.#stderr.write(b),
    });
    this.#self.container = c;
    if (isPodSandbox(this.#cfg.spec.annotations)) this.#pod = new PodHost(vm, () => this.#self.container, this.#cfg.stateRoot, (l) => this.log(l));
    // The config's limits on the container's cgroup in the guest, before its process runs: the
    // VM's size is only their ceiling (a guest kernel and agent need room of their own).
    const limits = limitsOf(guestLimits(this.#cfg.spec.linux?.resources));
    if (Object.keys(limits).length > 0) await c.update(limits);
    void c.wait().then((st) => this.#exit(st), (e: unknown) => {
      if (!this.#exiting) void this.#vmFailed((e as Error).message);
    });
  }

  /** A host pty for the workload's terminal: the master to the client, as runc's init sends its own. */
  #openTerminal(): void {
    if (this.#cfg.consoleSocket === undefined) throw new Error('a terminal process needs --console-socket');
    const t = openHostTerminal(this.#cfg.consoleSocket);
    this.#ttyIn = t.slave;
    this.#ttyFd = t.fd;
    this.#stdout = new FdWriter(t.fd);
    this.#stderr = this.#stdout;
  }

  #listen(): Promise<void> {
    const server = createServer((sock) => this.#serve(sock));
    this.#server = server;
    server.on('error', (e) => this.log(`control socket: ${e.message}`));
    // Relative to the state directory: a long --root still fits sun_path.
    process.chdir(this.#cfg.stateDir);
    const umask = process.umask(0o177);
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(KEEPER_SOCKET, () => {
        process.umask(umask);
        resolve();
      });
    });
  }

  #serve(sock: Socket): void {
    const reader = new FrameReader();
    let request: KeeperRequest | undefined;
    let exec: VmProcess | undefined;
    let execs: Set<VmProcess> | undefined;
    let member: PodConnection | undefined;
    let stdinEnded = false;
    const reply = (r: KeeperReply): void => void sock.write(encodeFrame(FRAME.REPLY, r));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      // An exec nobody waits for any more must not hold the container: it goes with its caller.
      if (exec !== undefined && execs?.has(exec) === true) void exec.signal('SIGKILL').catch(() => undefined);
      member?.closed();
    });
    sock.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = reader.push(chunk);
      } catch (e) {
        this.log((e as Error).message);
        sock.destroy();
        return;
      }
      for (const f of frames) {
        if (request === undefined) {
          if (f.kind !== FRAME.REQUEST) {
            sock.destroy();
            return;
          }
          try {
            request = parseRequest(f.payload);
          } catch (e) {
            reply({ ok: false, error: (e as Error).message });
            sock.end();
            return;
          }
          const r = request;
          if (r.op === 'pod-create') {
            const pod = this.#pod;
            if (pod === undefined || this.#exiting) {
              reply({ ok: false, error: isPodSandbox(this.#cfg.spec.annotations) ? 'the pod\'s sandbox is not running' : `container ${this.#cfg.id} is not a pod's sandbox` });
              sock.end();
              return;
            }
            sock.pause();
            void pod.create(r.member, sock).then((m) => {
              member = m;
              sock.resume();
            }, (e: unknown) => {
              reply({ ok: false, error: (e as Error).message });
              sock.end();
            });
          } else if (r.op === 'exec') {
            sock.pause();
            let u: GuestUnit;
            try {
              u = this.#unit(r);
            } catch (e) {
              reply({ ok: false, error: (e as Error).message });
              sock.end();
              return;
            }
            execs = u.execs;
            void this.#exec(r.process, sock, u).then((p) => {
              exec = p;
              sock.resume();
            }, (e: unknown) => {
              reply({ ok: false, error: (e as Error).message });
              sock.end();
            });
          } else {
            void this.#handle(r).then(reply, (e: unknown) => reply({ ok: false, error: (e as Error).message })).then(() => sock.end());
          }
        } else if (member !== undefined) {
          member.frame(f);
        } else if (exec !== undefined && f.kind === FRAME.STDIN && !stdinEnded) {
          if (f.payload.length === 0) {
            stdinEnded = true;
            void exec.end().catch(() => undefined);
          } else {
            // Held until the guest took it: the client's stdin is read no faster than the process reads.
            sock.pause();
            void exec.write(Buffer.from(f.payload)).catch(() => undefined).then(() => sock.resume());
          }
        } else if (f.kind === FRAME.RESIZE) {
          try {
            const ws = JSON.parse(f.payload.toString('utf8')) as { rows?: unknown; cols?: unknown };
            if (exec !== undefined && typeof ws.rows === 'number' && typeof ws.cols === 'number') exec.resize(ws.rows & 0xffff, ws.cols & 0xffff);
          } catch { /* not a size: ignored */ }
        } else {
          sock.destroy();
          return;
        }
      }
    });
  }

  async #handle(r: KeeperRequest): Promise<KeeperReply> {
    if (r.op === 'pod-create') return { ok: false, error: 'pod-create is served on its own connection' };
    const u = this.#unit(r);
    switch (r.op) {
      case 'start':
        if (u !== this.#self) {
          if (this.#exiting || this.#pod === undefined) return { ok: false, error: 'the container is not running' };
          return { ok: true, pid: await this.#pod.start(u) };
        }
        return this.#start();
      case 'signal': {
        if (r.pid === undefined) {
          if (u !== this.#self) await u.container?.signal(r.signal, { all: r.all });
          else await this.#signal(r.signal, r.all);
          return { ok: true };
        }
        const target = [...u.execs].find((p) => p.pid === r.pid);
        if (target === undefined) return { ok: false, error: `no process ${r.pid} was exec'd into the container` };
        await target.signal(r.signal);
        return { ok: true };
      }
      case 'pids': {
        if (u.container === undefined) return { ok: false, error: 'the container is not running' };
        return { ok: true, pids: await u.container.pids() };
      }
      case 'stats': {
        if (u.container === undefined) return { ok: false, error: 'the container is not running' };
        const st = await u.container.stats();
        const stats = Object.fromEntries(Object.entries(st).map(([k, v]) => [k, String(v)])) as unknown as GuestStats;
        return { ok: true, stats };
      }
      case 'update': {
        if (u.container === undefined) return { ok: false, error: 'the container is not running' };
        await u.container.update(limitsOf(r.limits));
        return { ok: true };
      }
      case 'memory': {
        // Only a VM that is this container's alone: a pod's VM holds its other containers too
        // (it was sized for the whole pod), and a clone has no balloon.
        const balloon = this.#vm?.balloon;
        if (u !== this.#self || this.#pod !== undefined || balloon === undefined) return { ok: true };
        const before = await balloon.currentMiB();
        const memoryMiB = await balloon.resize(r.mib);
        this.log(`memory: the guest's RAM ${before} -> ${memoryMiB} MiB (asked ${r.mib}, booted with ${balloon.bootMiB})`);
        return { ok: true, memoryMiB };
      }
      case 'pause':
      case 'resume':
        // A VM's own container is paused whole, VMM and all, through its host cgroup (the driver's
        // freezer); a pod's container is frozen in the guest, where the pod's VM runs on for the others.
        if (u === this.#self || this.#pod === undefined) return { ok: false, error: 'only a pod\'s container is paused in the guest (a VM\'s own is frozen with its VM on the host)' };
        await this.#pod.freeze(u, r.op === 'pause');
        return { ok: true };
      case 'exec':
        return { ok: false, error: 'exec is served on its own connection' };
    }
  }

  async #start(): Promise<KeeperReply> {
    const c = this.#self.container;
    if (c === undefined || this.#exiting) return { ok: false, error: 'the container is not running' };
    if (this.#self.started) return { ok: false, error: 'the container was started already' };
    this.#self.started = true;
    mark('start asked');
    await c.start();
    mark('started');
    writeFileSync(join(this.#cfg.stateDir, KEEPER_STARTED), `${c.pid}\n`, { mode: 0o600 });
    const tty = this.#ttyIn;
    if (tty !== undefined) {
      // Read by libuv (which made the fd non-blocking), paused while the guest takes each chunk.
      tty.on('data', (b: Buffer) => {
        tty.pause();
        void c.write(b).catch(() => undefined).then(() => tty.resume());
      });
      tty.on('error', () => undefined);
      tty.resume();
      followWindow(this.#ttyFd, (rows, cols) => c.resize(rows, cols));
    } else {
      readInput(0, (b) => c.write(b).catch(() => undefined), () => void c.end().catch(() => undefined));
    }
    this.log(`started: pid ${c.pid} in the guest`);
    return { ok: true, pid: c.pid };
  }

  async #exec(p: Process, sock: Socket, u: GuestUnit): Promise<VmProcess> {
    const c = u.container;
    if (c === undefined || this.#exiting) throw new Error('the container is not running');
    const terminal = p.terminal === true;
    const proc = await c.exec({
      plan: buildExecPlan(u.guestSpec, p, {
        id: u.id, initPid: c.pid, cgroupPaths: [], consoleSocket: terminal ? GUEST_PLAN_PLACEHOLDERS.consoleSocket : undefined,
        preserveFds: 0, monitor: false, seccomp: seccompFor(u.spec, this.#cfg.stateRoot), heldCapabilities: heldCapabilities(),
      }),
      stdin: true, onStdout: sender(sock, FRAME.STDOUT), onStderr: sender(sock, FRAME.STDERR),
    });
    u.execs.add(proc);
    sock.write(encodeFrame(FRAME.REPLY, { ok: true, pid: proc.pid }));
    void proc.wait().then((st) => {
      u.execs.delete(proc);
      if (!sock.destroyed) sock.end(encodeFrame(FRAME.EXIT, { code: st.code, signal: st.signal }));
    }, (e: unknown) => {
      u.execs.delete(proc);
      if (!sock.destroyed) sock.end(encodeFrame(FRAME.REPLY, { ok: false, error: (e as Error).message }));
    });
    return proc;
  }

  async #signal(sig: number, all: boolean): Promise<void> {
    if (this.#exiting) return;
    // Created or running alike: stockade-init waiting for start dies of it as the workload would.
    await this.#self.container?.signal(sig, { all }).catch((e: unknown) => this.log(`signal ${sig}: ${(e as Error).message}`));
  }

  /** Tied: the end of the tie pipe is the death of the program that made the container, which ends it. */
  #watchTie(): void {
    const tie = new Socket({ fd: KEEPER_TIE_FD, readable: true, writable: false });
    let gone = false;
    const end = (): void => {
      if (gone) return;
      gone = true;
      void this.#programGone();
    };
    tie.on('data', () => undefined);
    tie.on('end', end);
    tie.on('close', end);
    tie.on('error', end);
  }

  async #programGone(): Promise<void> {
    if (this.#exiting) return;
    this.#exiting = true;
    this.log('the program the container is tied to is gone: the VM is torn down');
    try {
      writeFileSync(join(this.#cfg.stateDir, KEEPER_EXITED), JSON.stringify({ code: null, signal: 9 }), { mode: 0o600 });
    } catch { /* the state directory went */ }
    this.#server?.close();
    // Before the boot is done there is no VM yet: QEMU and virtiofsd die with the keeper (parent-death signals).
    await Promise.race([this.#vm?.destroy().catch((e: unknown) => this.log(`teardown: ${(e as Error).message}`)), new Promise((r) => setTimeout(r, 5000))]);
    unwireInterfaces(this.#wired);
    process.exit(128 + 9);
  }

  async #vmFailed(why: string): Promise<void> {
    if (this.#exiting) return;
    this.#exiting = true;
    this.log(`the VM failed: ${why}`);
    unwireInterfaces(this.#wired);
    writeFileSync(join(this.#cfg.stateDir, KEEPER_EXITED), JSON.stringify({ code: KEEPER_VM_FAILED, signal: null, error: why }), { mode: 0o600 });
    this.#server?.close();
    // The VM tears itself down on a failure; what it has not killed in 5 s dies with the keeper
    // (parent-death signals) or is found by delete.
    await Promise.race([this.#vm?.destroy().catch((e: unknown) => this.log(`teardown: ${(e as Error).message}`)), new Promise((r) => setTimeout(r, 5000))]);
    process.exit(KEEPER_VM_FAILED);
  }

  /**
   * An OOM kill in the guest, told the way Podman learns of one: conmon (which watches the host
   * cgroup, the VMM's, where no OOM happened) writes `oom` in the bundle directory and Podman's
   * inspect reads OOMKilled from that file. Docker and containerd learn of OOMs only from the
   * host cgroup's own notification, which a guest's OOM cannot raise (docs/design/vm.md).
   */
  #reportOom(): void {
    try {
      writeFileSync(join(this.#cfg.bundle, 'oom'), '', { flag: 'wx', mode: 0o644 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') this.log(`oom: cannot write ${join(this.#cfg.bundle, 'oom')}: ${(e as Error).message}`);
    }
  }

  async #exit(st: ExitStatus): Promise<void> {
    if (this.#exiting) return;
    this.#exiting = true;
    mark('workload exited');
    writeFileSync(join(this.#cfg.stateDir, KEEPER_EXITED), JSON.stringify(st), { mode: 0o600 });
    // Its socket goes with it: a later call finds the container stopped, not a socket nobody serves.
    this.#server?.close();
    this.log(`exited: ${st.signal !== null ? `killed by ${SIGNAL_NAMES.get(st.signal) ?? st.signal}` : `status ${st.code}`}${st.oomKills !== undefined ? ` after ${st.oomKills} OOM kill(s) in the guest` : ''}`);
    if (st.oomKills !== undefined) this.#reportOom();
    await Promise.all([this.#stdout.drained(), this.#stderr.drained()]);
    // A pool VM too: its guest powered off and QEMU gone before the keeper exits (its owner then
    // leaves at once; QEMU killed by its owner instead left orphaned zombies that took seconds).
    await this.#vm?.destroy().catch((e: unknown) => this.log(`teardown: ${(e as Error).message}`));
    mark('vm destroyed');
    unwireInterfaces(this.#wired);
    await exitAs(st);
  }
}


/** The hostname of the UTS namespace at `path`, or undefined when it cannot be entered. */
function joinedHostname(path: string): string | undefined {
  const r = spawnSync('nsenter', [`--uts=${path}`, '--', 'hostname'], { encoding: 'utf8' });
  const name = r.status === 0 ? r.stdout.trim() : '';
  return name !== '' ? name : undefined;
}

/** The config's hostname, else the container's id, cut to the kernel's 64 bytes. */
function guestHostname(hostname: string | undefined, id: string): string {
  const name = Buffer.from(hostname ?? id);
  return name.subarray(0, 64).toString('utf8').replace(/\uFFFD+$/, '') || id.slice(0, 8);
}



export async function runKeeper(cfg: KeeperConfig): Promise<void> {
  mark('config read');
  if (cfg.pod !== undefined) {
    // A pod's later container: made in the VM its sandbox's keeper holds (pod-member.ts).
    const { runPodMember } = require('./pod-member') as typeof import('./pod-member');
    await runPodMember(cfg, cfg.pod);
    return;
  }
  const k = new Keeper(cfg);
  // Its stderr is the workload's: its timing marks go to its log.
  if (timingEnabled() && process.env['STOCKADE_TIMING'] === '1') {
    try {
      timingTo(openSync(join(cfg.stateDir, KEEPER_LOG), 'a', 0o600));
    } catch { /* no log: the marks are lost */ }
  }
  // Its stderr is the workload's: nothing of the keeper's own goes there.
  process.on('uncaughtException', (e) => {
    k.log(`failed: ${e.stack ?? e.message}`);
    process.exit(KEEPER_VM_FAILED);
  });
  try {
    await k.run();
  } catch (e) {
    k.log(`failed: ${(e as Error).message}`);
    k.unwireNetwork();
    tellCreate(`error ${(e as Error).message.replace(/\n/g, ' ')}`);
    process.exit(1);
  }
}

/**
 * The configuration its creator writes on fd 4. Empty: the creator died before it wrote it (a
 * planner killed mid-create), so no one reads this keeper's status pipe, and the creator's caller
 * reports or retries the call itself: the keeper ends with no word of its own on the caller's stderr.
 */
function configFromCreator(): unknown {
  const { readFileSync } = require('node:fs') as typeof import('node:fs');
  const text = readFileSync(KEEPER_CONFIG_FD, 'utf8');
  if (text === '') process.exit(1);
  return JSON.parse(text);
}

if (require.main === module) {
  const arg = process.argv[2];
  if (arg === '--exec') {
    const { runExecStandIn } = require('./exec-relay') as typeof import('./exec-relay');
    void runExecStandIn(configFromCreator() as Parameters<typeof runExecStandIn>[0]);
  } else if (arg === '--pool' && process.argv[3] !== undefined) {
    // A pool VM's owner (pool.ts): restores and warms a clone, waits for a keeper to take it, then escorts it.
    const { runPoolOwner } = require('./pool') as typeof import('./pool');
    void runPoolOwner(process.argv[3]);
  } else if (arg !== '--keep') {
    process.stderr.write('usage: stockade-vmkeeper --keep (started by stockade create: its configuration on fd 4, its status pipe fd 3)\n');
    process.exit(2);
  } else {
    mark('keeper loaded');
    void runKeeper(configFromCreator() as KeeperConfig);
  }
}
