// A pod's VM, in its sandbox's keeper: the pod's later containers made in it, at their own keepers' request.
//
//   member's keeper (pod-member.ts)                 sandbox's keeper (holds the pod's VM)
//     |  REQUEST {op:"pod-create", member}  ---------->  |  binds its root and sources into the share (pod-share.ts),
//     |                                                  |  has the guest's stockade-init make it, joining the
//     |                                                  |  sandbox's namespaces in the guest as its config says
//     |  <---------- REPLY {ok:true, pid}                |
//     |  STDIN bytes ... (after start)      ---------->  |
//     |  <---------- STDOUT / STDERR bytes ...           |
//     |  <---------- EXIT {code, signal}                 |  then its binds leave the share
//   Every other request about it (start, signal, exec, pids, stats, update) comes to the sandbox's
//   socket with `container: ID`, passed on by the member's keeper from its own socket.
// The connection is the member's lifeline both ways: closed by its keeper (killed, deleted), the
// container is killed; closed by this keeper (the VM ended), the member's keeper fails closed.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import type { Spec } from '../oci/spec';
import { buildPlan, heldCapabilities } from '../container/plan';
import { seccompFor } from '../container/seccomp';
import { GUEST_PLAN_PLACEHOLDERS } from './guest-plan';
import { FRAME, KEEPER_PAUSED, KEEPER_STARTED, encodeFrame, type Frame, type PodMemberRequest, type PodNamespace } from './keeper-wire';
import { addPodShare, removePodShare } from './pod-share';
import { sender } from './keeper-common';
import { guestLimits, type GuestLimitsWire } from './sizing';
import type { GuestLimits } from './agent-client';
import type { Vm, VmContainer, VmProcess } from './vm';

/** One container in the VM as the keeper serves requests about it: its own, or one of its pod's. */
export interface GuestUnit {
  readonly id: string;
  readonly stateDir: string;
  /** The config as given (its seccomp profile), and as the guest's plans are built from it. */
  readonly spec: Spec;
  readonly guestSpec: Spec;
  container: VmContainer | undefined;
  started: boolean;
  readonly execs: Set<VmProcess>;
}

/** What the keeper's socket server hands a member's connection after its first request. */
export interface PodConnection {
  frame(f: Frame): void;
  closed(): void;
}

interface Member extends GuestUnit {
  readonly share: string;
  readonly binds: number;
  released: boolean;
}

/** The wire's decimal strings as the agent client's numbers. */
export function limitsOf(w: GuestLimitsWire): GuestLimits {
  const out: Record<string, bigint> = {};
  for (const [k, v] of Object.entries(w)) if (typeof v === 'string') out[k] = BigInt(v);
  return out as GuestLimits;
}

/**
 * A member's config as the guest builds it: the pod's network is the guest's own (the VM has the
 * pod's interfaces), the namespaces it joins of the sandbox's are the sandbox's init's in the
 * guest, and the rest are new there, as the namespaces level would make them on the host.
 */
export function memberGuestSpec(spec: Spec, joinPod: readonly PodNamespace[], sandboxPid: number): Spec {
  const linux = spec.linux;
  if (linux?.namespaces === undefined) return spec;
  return {
    ...spec,
    linux: {
      ...linux,
      namespaces: linux.namespaces.filter((ns) => ns.type !== 'network').map((ns) => (joinPod as readonly string[]).includes(ns.type)
        ? { type: ns.type, path: `/proc/${sandboxPid}/ns/${ns.type}` }
        : { type: ns.type }),
    },
  };
}

export class PodHost {
  readonly #members = new Map<string, Member>();
  #count = 0;
  readonly #vm: Vm;
  readonly #sandbox: () => VmContainer | undefined;
  readonly #stateRoot: string;
  readonly #log: (line: string) => void;

  constructor(vm: Vm, sandbox: () => VmContainer | undefined, stateRoot: string, log: (line: string) => void) {
    this.#vm = vm;
    this.#sandbox = sandbox;
    this.#stateRoot = stateRoot;
    this.#log = log;
  }

  unit(id: string): GuestUnit | undefined {
    return this.#members.get(id);
  }

  /** Makes the member in the VM, stopped before its execve (as `create` leaves a container); answers on `sock`. */
  async create(m: PodMemberRequest, sock: Socket): Promise<PodConnection> {
    const sandbox = this.#sandbox();
    if (sandbox === undefined) throw new Error('the pod\'s sandbox container is not running');
    if (this.#members.has(m.id)) throw new Error(`container ${m.id} is in the pod already`);
    const server = this.#vm.shareServer;
    if (server === undefined) throw new Error('the pod\'s VM has no share to take another container\'s root');
    const share = `m${++this.#count}`;
    const shares = addPodShare(server, share, m);
    let c: VmContainer;
    const guestSpec = memberGuestSpec(m.spec, m.joinPod, sandbox.pid);
    // With a terminal, its pty's master comes to the agent (stream 1 is all it shows); the
    // member's keeper relays it to the client's host pty.
    const terminal = m.spec.process?.terminal === true;
    try {
      const plan = buildPlan(guestSpec, {
        id: m.id, bundle: m.bundle, ...GUEST_PLAN_PLACEHOLDERS, consoleSocket: terminal ? GUEST_PLAN_PLACEHOLDERS.consoleSocket : undefined,
        cgroupPaths: [], noPivot: m.noPivot, noNewKeyring: m.noNewKeyring, rootfsMode: 'bind', createHooks: false,
        heldCapabilities: heldCapabilities(), seccomp: seccompFor(m.spec, this.#stateRoot),
      });
      c = await this.#vm.createContainer({
        plan, stdin: !terminal, shares, podPids: [sandbox.pid],
        onStdout: sender(sock, FRAME.STDOUT), onStderr: sender(sock, FRAME.STDERR),
      });
    } catch (e) {
      removePodShare(server, share, m.binds.length);
      throw e;
    }
    const member: Member = {
      id: m.id, stateDir: m.stateDir, spec: m.spec, guestSpec, container: c, started: false, execs: new Set(),
      share, binds: m.binds.length, released: false,
    };
    this.#members.set(m.id, member);
    const release = (): void => {
      if (member.released) return;
      member.released = true;
      this.#members.delete(m.id);
      removePodShare(server, share, member.binds);
      this.#log(`pod: ${m.id} released (share ${share})`);
    };
    // The config's limits on its cgroup in the guest, before its process runs.
    const limits = limitsOf(guestLimits(m.spec.linux?.resources));
    if (Object.keys(limits).length > 0) {
      try {
        await c.update(limits);
      } catch (e) {
        await c.signal('SIGKILL', { all: true }).catch(() => undefined);
        await c.wait().catch(() => undefined);
        release();
        throw e;
      }
    }
    sock.write(encodeFrame(FRAME.REPLY, { ok: true, pid: c.pid }));
    this.#log(`pod: ${m.id} created in the pod's VM (guest pid ${c.pid}, share ${share}, joins the sandbox's ${m.joinPod.join(' ') || 'nothing'})`);
    void c.wait().then((st) => {
      release();
      if (!sock.destroyed) sock.end(encodeFrame(FRAME.EXIT, { code: st.code, signal: st.signal }));
    }, (e: unknown) => {
      release();
      if (!sock.destroyed) sock.end(encodeFrame(FRAME.REPLY, { ok: false, error: (e as Error).message }));
    });
    let stdinEnded = false;
    return {
      frame: (f) => {
        if (f.kind === FRAME.RESIZE) {
          try {
            const ws = JSON.parse(f.payload.toString('utf8')) as { rows?: unknown; cols?: unknown };
            if (typeof ws.rows === 'number' && typeof ws.cols === 'number') c.resize(ws.rows & 0xffff, ws.cols & 0xffff);
          } catch { /* not a size: ignored */ }
          return;
        }
        if (f.kind !== FRAME.STDIN || stdinEnded) {
          sock.destroy();
          return;
        }
        if (f.payload.length === 0) {
          stdinEnded = true;
          void c.end().catch(() => undefined);
          return;
        }
        sock.pause();
        void c.write(Buffer.from(f.payload)).catch(() => undefined).then(() => sock.resume());
      },
      // Its keeper is gone (killed, or its container deleted): nothing of it runs on unaccounted.
      closed: () => {
        if (!member.released) void c.signal('SIGKILL', { all: true }).catch(() => undefined);
      },
    };
  }

  /** start of a member: its process exec'd in the guest; `vm.started` in its state directory, as its own keeper would write it. */
  async start(u: GuestUnit): Promise<number> {
    const c = u.container;
    if (c === undefined) throw new Error('the container is not running');
    if (u.started) throw new Error('the container was started already');
    u.started = true;
    await c.start();
    writeFileSync(join(u.stateDir, KEEPER_STARTED), `${c.pid}\n`, { mode: 0o600 });
    this.#log(`pod: ${u.id} started: pid ${c.pid} in the guest`);
    return c.pid;
  }

  /**
   * pause/resume of a member: its cgroup in the guest frozen or thawed, the pod's VM and its other
   * containers running on; `vm.paused` in its state directory says so to `state` meanwhile.
   */
  async freeze(u: GuestUnit, frozen: boolean): Promise<void> {
    const c = u.container;
    if (c === undefined) throw new Error('the container is not running');
    await c.freeze(frozen);
    if (frozen) writeFileSync(join(u.stateDir, KEEPER_PAUSED), `${c.pid}\n`, { mode: 0o600 });
    else rmSync(join(u.stateDir, KEEPER_PAUSED), { force: true });
    this.#log(`pod: ${u.id} ${frozen ? 'frozen' : 'thawed'} in the guest`);
  }

  /** The members still in the VM (their keepers fail closed when this keeper's connections to them close). */
  get size(): number {
    return this.#members.size;
  }
}
