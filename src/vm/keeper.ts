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
import { appendFileSync, closeSync, write, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { FORWARDED_SIGNALS, SIGNALS } from '../abi/linux/constants';
import type { ExitStatus } from './agent-client';
import type { Process } from '../oci/spec';
import { buildExecPlan } from '../container/exec-plan';
import { buildPlan, heldCapabilities } from '../container/plan';
import { seccompFor } from '../container/seccomp';
import { readInput } from './fd-input';
import { GUEST_PLAN_PLACEHOLDERS } from './guest-plan';
import {
  FRAME, FrameReader, KEEPER_CONFIG_FD, KEEPER_EXITED, KEEPER_LOG, KEEPER_SOCKET, KEEPER_STARTED, KEEPER_STATUS_FD, KEEPER_VM, MAX_FRAME,
  encodeFrame, parseRequest, type GuestStats, type KeeperConfig, type KeeperReply, type KeeperRequest,
} from './keeper-wire';
import { startVm } from './template';
import type { Vm, VmContainer, VmProcess } from './vm';

/** What the keeper exits with when the VM failed under the workload (the reason is in keeper.log). */
export const KEEPER_VM_FAILED = 255;

const SIGNAL_NAMES = new Map<number, string>(Object.entries(SIGNALS).map(([k, v]) => [v, k]));

/** Writes to an fd in the thread pool (a pipe, fifo, file or tty alike), in order, never blocking the loop. */
class FdWriter {
  #tail: Promise<void> = Promise.resolve();
  #broken = false;
  constructor(readonly fd: number) {}
  write(chunk: Buffer): Promise<void> {
    this.#tail = this.#tail.then(() => this.#writeAll(chunk));
    return this.#tail;
  }
  async #writeAll(chunk: Buffer): Promise<void> {
    let off = 0;
    while (off < chunk.length && !this.#broken) {
      off += await new Promise<number>((resolve) => {
        write(this.fd, chunk, off, chunk.length - off, null, (err, n) => {
          if (err !== null) {
            // EAGAIN on a non-blocking fd: try again shortly; anything else (EPIPE) ends the stream.
            if (err.code === 'EAGAIN') setTimeout(() => resolve(0), 5);
            else {
              this.#broken = true;
              resolve(0);
            }
          } else resolve(n);
        });
      });
    }
  }
  drained(): Promise<void> {
    return this.#tail;
  }
}

class Keeper {
  readonly #cfg: KeeperConfig;
  #vm: Vm | undefined;
  /** The container in the guest: created (stockade-init there waits for start) once the keeper says ok. */
  #container: VmContainer | undefined;
  #started = false;
  readonly #execs = new Set<VmProcess>();
  #exiting = false;
  #server: import('node:net').Server | undefined;
  #stdout: FdWriter;
  #stderr: FdWriter;
  /** The host pty's slave, standing for the workload's terminal (the client holds the master). */
  #ttyIn: import('node:tty').ReadStream | undefined;
  #ttyFd = -1;

  constructor(cfg: KeeperConfig) {
    this.#cfg = cfg;
    this.#stdout = new FdWriter(1);
    this.#stderr = new FdWriter(2);
  }

  log(line: string): void {
    try {
      appendFileSync(join(this.#cfg.stateDir, KEEPER_LOG), `${new Date().toISOString()} ${line}\n`, { mode: 0o600 });
    } catch { /* the state directory went: nothing to say it to */ }
  }

  async run(): Promise<void> {
    const cfg = this.#cfg;
    joinCgroups(cfg.cgroupPaths);
    // Before the boot: a signal now ends the container (as it ends a runc container's init waiting for start).
    for (const name of FORWARDED_SIGNALS) process.on(name, () => void this.#signal(SIGNALS[name], false));
    let vm: Vm;
    try {
      if (cfg.coldBecause !== undefined) this.log(`vm: booting cold: ${cfg.coldBecause}`);
      vm = await startVm({
        // The driver chose in the create call (and started the template's holder there, outside
        // this container's cgroups); a template found bad now is rebuilt, once, or it boots cold.
        template: cfg.coldBecause === undefined,
        ...(cfg.template !== undefined ? { chosen: cfg.template } : {}),
        // The clone's name before the workload runs (a container with a UTS namespace of its own
        // sets its own over it, as on the host); a cold guest's is the kernel's default.
        hostname: guestHostname(cfg),
        rootfs: cfg.rootfs,
        readonlyRoot: cfg.readonlyRoot,
        memoryMiB: cfg.memoryMiB,
        cpus: cfg.cpus,
        // The VM's private directory goes with the state directory, unless virtiofsd's socket in it
        // would not fit in sun_path (a client's 64-character ids under a deep --root): then the
        // system's temporary directory, recorded in vm.json for delete.
        ...(Buffer.byteLength(join(cfg.stateDir, 'stockade-vm-XXXXXX', 'virtiofs.sock')) <= 107 ? { runParent: cfg.stateDir } : {}),
        binds: cfg.binds,
        ...(cfg.bootTimeoutMs === undefined ? {} : { bootTimeoutMs: cfg.bootTimeoutMs }),
        ...(cfg.debug === true ? { debug: (l: string) => this.log(l) } : {}),
      });
    } catch (e) {
      const msg = (e as Error).message.replace(/\n/g, ' ');
      this.log(`boot failed: ${msg}`);
      tellCreate(`error ${msg}`);
      process.exit(1);
    }
    this.#vm = vm;
    writeFileSync(join(cfg.stateDir, KEEPER_VM), JSON.stringify({ runDir: vm.runDir, vmmUid: vm.vmmUid }), { mode: 0o600 });
    void vm.ended.then((e) => {
      if (e !== null && !this.#exiting) void this.#vmFailed(e.message);
    });
    if (cfg.spec.process?.terminal === true) this.#openTerminal();
    await this.#createContainer(vm);
    await this.#listen();
    this.log(`created: VM ${vm.accel.reason.startsWith('restored') ? vm.accel.reason : 'booted'} in ${vm.bootMs.toFixed(0)} ms, guest kernel ${vm.kernelRelease}`);
    tellCreate('ok');
  }

  /**
   * Has stockade-init make the container in the guest from the plan the namespaces level would
   * run on the host (namespaces, capabilities, seccomp, masked paths), stopped before its execve.
   */
  async #createContainer(vm: Vm): Promise<void> {
    const cfg = this.#cfg;
    const terminal = cfg.spec.process?.terminal === true;
    const plan = buildPlan(cfg.spec, {
      id: cfg.id, bundle: cfg.bundle, ...GUEST_PLAN_PLACEHOLDERS,
      consoleSocket: terminal ? GUEST_PLAN_PLACEHOLDERS.consoleSocket : undefined,
      cgroupPaths: [], noPivot: cfg.noPivot, noNewKeyring: cfg.noNewKeyring, rootfsMode: cfg.rootfsMode, createHooks: false,
      heldCapabilities: heldCapabilities(), seccomp: seccompFor(cfg.spec, cfg.stateRoot),
      ...(cfg.hold === true ? { init: true, hold: true } : {}),
    });
    const c = await vm.createContainer({
      plan, stdin: !terminal,
      onStdout: (b) => this.#stdout.write(b),
      onStderr: (b) => this.#stderr.write(b),
    });
    this.#container = c;
    void c.wait().then((st) => this.#exit(st), (e: unknown) => {
      if (!this.#exiting) void this.#vmFailed((e as Error).message);
    });
  }

  /** A host pty for the workload's terminal: the master to the client, as runc's init sends its own. */
  #openTerminal(): void {
    const { openPty, sendFd, unixConnect, setOnlcr } = require('../native/addon') as typeof import('../native/addon');
    const pty = openPty();
    // The guest's own line discipline does the terminal's work; the host side passes bytes as they are.
    const { ReadStream } = require('node:tty') as typeof import('node:tty');
    const slave = new ReadStream(pty.slave);
    slave.setRawMode(true);
    setOnlcr(pty.slave, false);
    slave.pause();
    this.#ttyIn = slave;
    this.#ttyFd = pty.slave;
    this.#stdout = new FdWriter(pty.slave);
    this.#stderr = this.#stdout;
    if (this.#cfg.consoleSocket === undefined) throw new Error('a terminal process needs --console-socket');
    const conn = unixConnect(this.#cfg.consoleSocket);
    try {
      sendFd(conn, pty.master, Buffer.from(pty.name));
    } finally {
      closeSync(conn);
      closeSync(pty.master);
    }
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
    let stdinEnded = false;
    const reply = (r: KeeperReply): void => void sock.write(encodeFrame(FRAME.REPLY, r));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      // An exec nobody waits for any more must not hold the container: it goes with its caller.
      if (exec !== undefined && this.#execs.has(exec)) void exec.signal('SIGKILL').catch(() => undefined);
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
          if (r.op === 'exec') {
            sock.pause();
            void this.#exec(r.process, sock).then((p) => {
              exec = p;
              sock.resume();
            }, (e: unknown) => {
              reply({ ok: false, error: (e as Error).message });
              sock.end();
            });
          } else {
            void this.#handle(r).then(reply, (e: unknown) => reply({ ok: false, error: (e as Error).message })).then(() => sock.end());
          }
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
    switch (r.op) {
      case 'start':
        return this.#start();
      case 'signal': {
        if (r.pid === undefined) {
          await this.#signal(r.signal, r.all);
          return { ok: true };
        }
        const target = [...this.#execs].find((p) => p.pid === r.pid);
        if (target === undefined) return { ok: false, error: `no process ${r.pid} was exec'd into the container` };
        await target.signal(r.signal);
        return { ok: true };
      }
      case 'pids': {
        if (this.#container === undefined) return { ok: false, error: 'the container is not running' };
        return { ok: true, pids: await this.#container.pids() };
      }
      case 'stats': {
        if (this.#container === undefined) return { ok: false, error: 'the container is not running' };
        const st = await this.#container.stats();
        const stats = Object.fromEntries(Object.entries(st).map(([k, v]) => [k, String(v)])) as unknown as GuestStats;
        return { ok: true, stats };
      }
      case 'update':
        return { ok: false, error: 'the guest does not apply limits yet' };
      case 'exec':
        return { ok: false, error: 'exec is served on its own connection' };
    }
  }

  async #start(): Promise<KeeperReply> {
    const c = this.#container;
    if (c === undefined || this.#exiting) return { ok: false, error: 'the container is not running' };
    if (this.#started) return { ok: false, error: 'the container was started already' };
    this.#started = true;
    await c.start();
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
      this.#followWindow(c, this.#ttyFd);
    } else {
      readInput(0, (b) => c.write(b).catch(() => undefined), () => void c.end().catch(() => undefined));
    }
    this.log(`started: pid ${c.pid} in the guest`);
    return { ok: true, pid: c.pid };
  }

  /** The client sizes the host pty's master; the guest's pty follows (polled: the keeper is not the pty's session leader, so no SIGWINCH). */
  #followWindow(p: VmProcess, slave: number): void {
    const { getWinsize } = require('../native/addon') as typeof import('../native/addon');
    let last = '';
    const poll = (): void => {
      try {
        const ws = getWinsize(slave);
        const key = `${ws.rows}x${ws.cols}`;
        if (key !== last && ws.rows > 0 && ws.cols > 0) p.resize(ws.rows, ws.cols);
        last = key;
      } catch { /* the pty is gone */ }
    };
    poll();
    setInterval(poll, 250).unref();
  }

  async #exec(p: Process, sock: Socket): Promise<VmProcess> {
    const c = this.#container;
    if (c === undefined || this.#exiting) throw new Error('the container is not running');
    const send = (kind: typeof FRAME.STDOUT | typeof FRAME.STDERR) => (c: Buffer): Promise<void> => {
      if (sock.destroyed) return Promise.resolve();
      const parts: Buffer[] = [];
      for (let o = 0; o < c.length; o += MAX_FRAME) parts.push(encodeFrame(kind, c.subarray(o, o + MAX_FRAME)));
      // Credit goes back to the guest only once the client's socket took it.
      return new Promise((resolve) => {
        if (sock.write(Buffer.concat(parts))) resolve();
        else {
          sock.once('drain', () => resolve());
          sock.once('close', () => resolve());
        }
      });
    };
    const terminal = p.terminal === true;
    const proc = await c.exec({
      plan: buildExecPlan(this.#cfg.spec, p, {
        id: this.#cfg.id, initPid: c.pid, cgroupPaths: [], consoleSocket: terminal ? GUEST_PLAN_PLACEHOLDERS.consoleSocket : undefined,
        preserveFds: 0, monitor: false, seccomp: seccompFor(this.#cfg.spec, this.#cfg.stateRoot), heldCapabilities: heldCapabilities(),
      }),
      stdin: true, onStdout: send(FRAME.STDOUT), onStderr: send(FRAME.STDERR),
    });
    this.#execs.add(proc);
    sock.write(encodeFrame(FRAME.REPLY, { ok: true, pid: proc.pid }));
    void proc.wait().then((st) => {
      this.#execs.delete(proc);
      if (!sock.destroyed) sock.end(encodeFrame(FRAME.EXIT, { code: st.code, signal: st.signal }));
    }, (e: unknown) => {
      this.#execs.delete(proc);
      if (!sock.destroyed) sock.end(encodeFrame(FRAME.REPLY, { ok: false, error: (e as Error).message }));
    });
    return proc;
  }

  async #signal(sig: number, all: boolean): Promise<void> {
    if (this.#exiting) return;
    // Created or running alike: stockade-init waiting for start dies of it as the workload would.
    await this.#container?.signal(sig, { all }).catch((e: unknown) => this.log(`signal ${sig}: ${(e as Error).message}`));
  }

  async #vmFailed(why: string): Promise<void> {
    if (this.#exiting) return;
    this.#exiting = true;
    this.log(`the VM failed: ${why}`);
    writeFileSync(join(this.#cfg.stateDir, KEEPER_EXITED), JSON.stringify({ code: KEEPER_VM_FAILED, signal: null, error: why }), { mode: 0o600 });
    this.#server?.close();
    // The VM tears itself down on a failure; what it has not killed in 5 s dies with the keeper
    // (parent-death signals) or is found by delete.
    await Promise.race([this.#vm?.destroy().catch((e: unknown) => this.log(`teardown: ${(e as Error).message}`)), new Promise((r) => setTimeout(r, 5000))]);
    process.exit(KEEPER_VM_FAILED);
  }

  async #exit(st: ExitStatus): Promise<void> {
    if (this.#exiting) return;
    this.#exiting = true;
    writeFileSync(join(this.#cfg.stateDir, KEEPER_EXITED), JSON.stringify(st), { mode: 0o600 });
    // Its socket goes with it: a later call finds the container stopped, not a socket nobody serves.
    this.#server?.close();
    this.log(`exited: ${st.signal !== null ? `killed by ${SIGNAL_NAMES.get(st.signal) ?? st.signal}` : `status ${st.code}`}`);
    await Promise.all([this.#stdout.drained(), this.#stderr.drained()]);
    await this.#vm?.destroy().catch((e: unknown) => this.log(`teardown: ${(e as Error).message}`));
    if (st.signal !== null) {
      // Dies of the same signal, so a parent's wait (conmon, the shim, `run`) sees what the workload did.
      for (const name of FORWARDED_SIGNALS) process.removeAllListeners(name);
      const name = SIGNAL_NAMES.get(st.signal);
      if (name !== undefined && name !== 'SIGSTOP' && name !== 'SIGTSTP' && name !== 'SIGCONT' && name !== 'SIGCHLD' && name !== 'SIGWINCH' && name !== 'SIGURG') {
        process.kill(process.pid, name as NodeJS.Signals);
        await new Promise((r) => setTimeout(r, 1000));
      }
      process.exit(128 + st.signal);
    }
    process.exit(st.code ?? 0);
  }
}

/** Moves this process into the container's cgroups: everything it starts from now on is in them too. */
/** The config's hostname, else the container's id, cut to the kernel's 64 bytes. */
function guestHostname(cfg: KeeperConfig): string {
  const name = Buffer.from(cfg.spec.hostname ?? cfg.id);
  return name.subarray(0, 64).toString('utf8').replace(/\uFFFD+$/, '') || cfg.id.slice(0, 8);
}

function joinCgroups(paths: readonly string[]): void {
  for (const dir of paths) writeFileSync(join(dir, 'cgroup.procs'), `${process.pid}\n`);
}

function tellCreate(line: string): void {
  try {
    writeFileSync(KEEPER_STATUS_FD, `${line}\n`);
    closeSync(KEEPER_STATUS_FD);
  } catch { /* create is gone: it cleans up on its own */ }
}

export async function runKeeper(cfg: KeeperConfig): Promise<void> {
  const k = new Keeper(cfg);
  // Its stderr is the workload's: nothing of the keeper's own goes there.
  process.on('uncaughtException', (e) => {
    k.log(`failed: ${e.stack ?? e.message}`);
    process.exit(KEEPER_VM_FAILED);
  });
  try {
    await k.run();
  } catch (e) {
    k.log(`failed: ${(e as Error).message}`);
    tellCreate(`error ${(e as Error).message.replace(/\n/g, ' ')}`);
    process.exit(1);
  }
}

if (require.main === module) {
  const arg = process.argv[2];
  if (arg === '--exec') {
    const { runExecStandIn } = require('./exec-relay') as typeof import('./exec-relay');
    const { readFileSync } = require('node:fs') as typeof import('node:fs');
    void runExecStandIn(JSON.parse(readFileSync(KEEPER_CONFIG_FD, 'utf8')) as Parameters<typeof runExecStandIn>[0]);
  } else if (arg !== '--keep') {
    process.stderr.write('usage: stockade-vmkeeper --keep (started by stockade create: its configuration on fd 4, its status pipe fd 3)\n');
    process.exit(2);
  } else {
    const { readFileSync } = require('node:fs') as typeof import('node:fs');
    void runKeeper(JSON.parse(readFileSync(KEEPER_CONFIG_FD, 'utf8')) as KeeperConfig);
  }
}
