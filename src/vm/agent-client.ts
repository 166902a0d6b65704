// The host's end of the agent channel: requests with their replies, process streams with credit, all checked.
import type { Duplex } from 'node:stream';
import { getSystemErrorMap } from 'node:util';
import { FrameDecoder, ProtocolViolation, encodeHost } from './codec';
import { VmError } from './errors';
import {
  AGENT_LIMITS, AGENT_PROTOCOL_VERSION, CREATE_FLAGS, HOST_MESSAGES, MOUNT_FLAGS, MOUNT_TYPES, SIGNAL_FLAGS, SPAWN_FLAGS, STREAMS,
  type GuestMessage, type GuestMessageName, type GuestMessageOf, type HostMessage, type HostMessageName, type MessageDef,
} from './protocol';

/** Where a process's output goes; credit goes back to the guest once the returned promise settles. */
export type Sink = (chunk: Buffer) => void | Promise<void>;

export interface ExitStatus {
  /** The exit code, or null when the process died of a signal. */
  readonly code: number | null;
  readonly signal: number | null;
  /** A container's: the guest kernel's OOM kills in its cgroup, when there were any. */
  readonly oomKills?: number;
}

export interface SpawnRequest {
  readonly args: readonly string[];
  readonly env: readonly string[];
  readonly cwd: string;
  /** The guest directory to chroot into first ('' for none). */
  readonly root: string;
  readonly uid: number;
  readonly gid: number;
  readonly stdin: boolean;
  readonly onStdout: Sink;
  readonly onStderr: Sink;
}

/** A container (CREATE) or a process exec'd into one (EXEC): stockade-init runs `plan` in the guest. */
export interface ContainerRequest {
  /** One path component, unique among the VM's live containers and execs (GUEST_PATHS). */
  readonly name: string;
  /** The encoded plan, with guest paths (src/vm/guest-plan.ts). */
  readonly plan: Buffer;
  readonly stdin: boolean;
  /** The plan has TAG_TERMINAL: the pty's output comes on stdout, and there is no stderr. */
  readonly terminal: boolean;
  readonly onStdout: Sink;
  readonly onStderr: Sink;
}

/** What the agent answered for a container or exec: its handle and its pid in the guest. */
export interface Started {
  readonly proc: number;
  readonly pid: number;
  readonly outputDone: Promise<void>;
}

/** A container's cgroup figures from the guest (cgroup v2); U64_MAX where the file says "max". */
export interface GuestStats {
  readonly cpuUsageUsec: bigint;
  readonly cpuUserUsec: bigint;
  readonly cpuSystemUsec: bigint;
  readonly memoryCurrent: bigint;
  readonly memoryMax: bigint;
  readonly memoryAnon: bigint;
  readonly memoryFile: bigint;
  readonly pidsCurrent: bigint;
  readonly pidsMax: bigint;
  /** OOM kills in the container's cgroup (memory.events oom_kill). */
  readonly oomKills: bigint;
}

/** An agent's error message with its errno's text and name, unless it says them already (as initError does for the host). */
function withErrno(message: string, err: number): string {
  const entry = err === 0 ? undefined : getSystemErrorMap().get(-Math.abs(err));
  if (entry === undefined) return message;
  return message.toLowerCase().includes(entry[1].toLowerCase()) ? `${message} (${entry[0]})` : `${message}: ${entry[1]} (${entry[0]})`;
}

/**
 * Limits for a container's cgroup in the guest; an absent one stays as it is, U64_MAX is "max".
 * cpuQuota and cpuPeriod (µs) go together into cpu.max; cpuWeight is 1 to 10000.
 */
export interface GuestLimits {
  readonly pidsMax?: bigint;
  readonly memoryMax?: bigint;
  readonly cpuQuota?: bigint;
  readonly cpuPeriod?: bigint;
  readonly cpuWeight?: bigint;
}

/** The host messages that are requests (they name their replies). */
type RequestName = { [N in HostMessageName]: (typeof HOST_MESSAGES)[N] extends { replies: readonly string[] } ? N : never }[HostMessageName];
type ReplyOf<N extends RequestName> = Extract<Extract<(typeof HOST_MESSAGES)[N], { replies: readonly string[] }>['replies'][number], GuestMessageName>;

interface Pending {
  readonly request: HostMessageName;
  readonly accepts: readonly string[];
  resolve(m: GuestMessage): void;
  reject(e: Error): void;
  readonly timer: NodeJS.Timeout | undefined;
  /** Runs as the reply is read, before any later frame is looked at. */
  readonly onReply: ((m: GuestMessage) => void) | undefined;
}

class ProcStreams {
  /** Output credit the guest still holds, per stream: what it may send before we grant more. */
  readonly credit = [0, AGENT_LIMITS.STREAM_WINDOW, AGENT_LIMITS.STREAM_WINDOW];
  readonly ended = [true, false, false];
  /** Stdin bytes the agent has not yet acknowledged. */
  stdinInFlight = 0;
  readonly stdinQueue: { data: Buffer; done: () => void }[] = [];
  stdinOpen: boolean;
  readonly outputDone: Promise<void>;
  #endOutput!: () => void;
  constructor(readonly sinks: readonly [Sink, Sink], stdin: boolean, terminal = false) {
    // A pty is written to as its input whatever the flags say.
    this.stdinOpen = stdin || terminal;
    // A pty has one output stream: stderr is the same terminal, and never comes on its own.
    if (terminal) this.ended[2] = true;
    this.outputDone = new Promise((resolve) => {
      this.#endOutput = resolve;
    });
  }
  end(stream: 1 | 2): void {
    this.ended[stream] = true;
    if (this.ended[1] === true && this.ended[2] === true) this.#endOutput();
  }
}

/**
 * Speaks the agent protocol over a connected byte stream. Any breach by the guest (a bad frame,
 * a reply nobody asked for, output beyond its credit) calls onViolation once and fails every
 * open request; the owner then ends the VM.
 */
export class AgentClient {
  readonly #channel: Duplex;
  readonly #decoder = FrameDecoder.fromGuest();
  readonly #pending = new Map<number, Pending>();
  readonly #procs = new Map<number, ProcStreams>();
  readonly #requestTimeoutMs: number;
  #nextId = 1;
  #failed: Error | undefined;
  readonly #onViolation: (e: VmError) => void;
  /** DNS_LISTEN sockets the guest holds at the host's request, and where their queries go. */
  #dnsListeners = 0;
  #onDnsQuery: ((listener: number, query: number, data: Buffer) => void) | undefined;

  constructor(channel: Duplex, opts: { requestTimeoutMs: number; onViolation: (e: VmError) => void }) {
    this.#channel = channel;
    this.#requestTimeoutMs = opts.requestTimeoutMs;
    this.#onViolation = opts.onViolation;
    channel.on('data', (chunk: Buffer) => this.#receive(chunk));
    channel.on('error', () => {
      /* the VMM's exit is reported by its owner; a socket error alone says less */
    });
  }

  /** Fails every open request and refuses new ones (the VM is gone or going). */
  fail(e: Error): void {
    if (this.#failed !== undefined) return;
    this.#failed = e;
    for (const p of this.#pending.values()) {
      if (p.timer !== undefined) clearTimeout(p.timer);
      p.reject(e);
    }
    this.#pending.clear();
    for (const s of this.#procs.values()) {
      for (const q of s.stdinQueue) q.done();
      s.stdinQueue.length = 0;
      s.end(1);
      s.end(2);
    }
  }

  #violation(why: string): void {
    const e = new VmError('PROTOCOL', `vm: the guest broke the agent protocol: ${why}`);
    this.fail(e);
    this.#onViolation(e);
  }

  #receive(chunk: Buffer): void {
    if (this.#failed !== undefined) return;
    let messages: GuestMessage[];
    try {
      messages = this.#decoder.push(chunk);
    } catch (e) {
      this.#violation(e instanceof ProtocolViolation ? e.message : String(e));
      return;
    }
    for (const m of messages) {
      if (this.#failed !== undefined) return;
      this.#handle(m);
    }
  }

  #handle(m: GuestMessage): void {
    switch (m.type) {
      case 'OUTPUT':
        this.#output(m);
        return;
      case 'WINDOW':
        this.#stdinWindow(m);
        return;
      case 'DNS_QUERY':
        if (m.listener >= this.#dnsListeners || this.#onDnsQuery === undefined) return this.#violation(`DNS_QUERY on listener ${m.listener}, which the host did not ask for`);
        if (m.data.length === 0 || m.data.length > AGENT_LIMITS.DNS_MAX_QUERY) return this.#violation(`DNS_QUERY of ${m.data.length} bytes`);
        this.#onDnsQuery(m.listener, m.query, m.data);
        return;
      default: {
        const p = this.#pending.get(m.id);
        if (p === undefined) {
          this.#violation(`${m.type} answers request ${m.id}, which is not open`);
          return;
        }
        if (m.type !== 'ERROR' && !p.accepts.includes(m.type)) {
          this.#violation(`${m.type} cannot answer ${p.request}`);
          return;
        }
        this.#pending.delete(m.id);
        if (p.timer !== undefined) clearTimeout(p.timer);
        p.onReply?.(m);
        // A reply its own check refused fails its request too (it is out of the open set by now).
        if (this.#failed !== undefined) return p.reject(this.#failed);
        p.resolve(m);
      }
    }
  }

  #output(m: GuestMessageOf<'OUTPUT'>): void {
    const s = this.#procs.get(m.proc);
    if (s === undefined) return this.#violation(`OUTPUT for process ${m.proc}, which the host did not spawn`);
    if (m.stream !== STREAMS.STDOUT && m.stream !== STREAMS.STDERR) return this.#violation(`OUTPUT on stream ${m.stream}`);
    const stream = m.stream;
    if (s.ended[stream] === true) return this.#violation(`OUTPUT on stream ${stream} of process ${m.proc} after its end`);
    if (m.data.length === 0) {
      s.end(stream);
      return;
    }
    const credit = s.credit[stream] ?? 0;
    if (m.data.length > credit) return this.#violation(`process ${m.proc} sent ${m.data.length} bytes on stream ${stream} with ${credit} of credit`);
    s.credit[stream] = credit - m.data.length;
    const grant = (): void => {
      if (this.#failed !== undefined || s.ended[stream] === true) return;
      s.credit[stream] = (s.credit[stream] ?? 0) + m.data.length;
      this.#send({ type: 'WINDOW', id: 0, proc: m.proc, stream, bytes: m.data.length });
    };
    let r: void | Promise<void>;
    try {
      r = s.sinks[stream - 1]!(m.data);
    } catch {
      r = undefined;
    }
    if (r instanceof Promise) r.then(grant, grant);
    else grant();
  }

  #stdinWindow(m: GuestMessageOf<'WINDOW'>): void {
    const s = this.#procs.get(m.proc);
    if (s === undefined) return this.#violation(`WINDOW for process ${m.proc}, which the host did not spawn`);
    if (m.stream !== STREAMS.STDIN) return this.#violation(`WINDOW from the guest on stream ${m.stream}`);
    if (m.bytes > s.stdinInFlight) return this.#violation(`WINDOW returns ${m.bytes} stdin bytes of ${s.stdinInFlight} sent`);
    s.stdinInFlight -= m.bytes;
    this.#pumpStdin(m.proc, s);
  }

  #pumpStdin(proc: number, s: ProcStreams): void {
    while (s.stdinQueue.length > 0 && this.#failed === undefined) {
      const head = s.stdinQueue[0]!;
      const room = AGENT_LIMITS.STREAM_WINDOW - s.stdinInFlight;
      if (head.data.length === 0) {
        // The close goes out after everything before it.
        this.#send({ type: 'STDIN', id: 0, proc, data: Buffer.alloc(0) });
        s.stdinQueue.shift();
        head.done();
        continue;
      }
      if (room === 0) return;
      const n = Math.min(room, head.data.length, AGENT_LIMITS.MAX_CHUNK);
      this.#send({ type: 'STDIN', id: 0, proc, data: head.data.subarray(0, n) });
      s.stdinInFlight += n;
      if (n === head.data.length) {
        s.stdinQueue.shift();
        head.done();
      } else {
        s.stdinQueue[0] = { data: head.data.subarray(n), done: head.done };
      }
    }
  }

  #send(m: HostMessage): void {
    this.#channel.write(encodeHost(m));
  }

  request<N extends RequestName>(
    msg: Extract<HostMessage, { type: N }>,
    timeoutMs: number | null = this.#requestTimeoutMs,
    onReply?: (m: GuestMessage) => void,
  ): Promise<GuestMessageOf<ReplyOf<N>>> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    const type: HostMessageName = (msg as HostMessage).type;
    const def: MessageDef = HOST_MESSAGES[type];
    return new Promise<GuestMessageOf<ReplyOf<N>>>((resolve, reject) => {
      const timer = timeoutMs === null ? undefined : setTimeout(() => {
        this.#pending.delete(id);
        const e = new VmError('TIMEOUT', `vm: the agent did not answer ${type} within ${timeoutMs} ms`);
        reject(e);
        // An agent that stops answering cannot be trusted with the rest of the VM either.
        this.fail(e);
        this.#onViolation(e);
      }, timeoutMs);
      this.#pending.set(id, {
        request: type,
        accepts: def.replies ?? [],
        timer,
        onReply,
        reject,
        resolve: (m) => {
          if (m.type === 'ERROR') {
            reject(new VmError('AGENT', `vm agent: ${withErrno(m.message, m.err)}`, { errno: m.err, request: type }));
          } else {
            resolve(m as GuestMessageOf<ReplyOf<N>>);
          }
        },
      });
      try {
        this.#send({ ...msg, id } as HostMessage);
      } catch (e) {
        this.#pending.delete(id);
        if (timer !== undefined) clearTimeout(timer);
        reject(e as Error);
      }
    });
  }

  /** The handshake; resolves to the guest kernel's release. */
  async hello(timeoutMs: number): Promise<string> {
    const r = await this.request({ type: 'HELLO', id: 0, version: AGENT_PROTOCOL_VERSION }, timeoutMs);
    if (r.version !== AGENT_PROTOCOL_VERSION) {
      this.#violation(`the agent speaks version ${r.version}, the host ${AGENT_PROTOCOL_VERSION}`);
      throw this.#failed;
    }
    return r.kernel;
  }

  async mount(fstype: keyof typeof MOUNT_TYPES, source: string, target: string, readonly: boolean): Promise<void> {
    await this.request({ type: 'MOUNT', id: 0, fstype: MOUNT_TYPES[fstype], source, target, flags: readonly ? MOUNT_FLAGS.RDONLY : 0 });
  }

  /** Starts a process; its output flows to the sinks from the moment the agent answers. */
  async spawn(r: SpawnRequest): Promise<{ proc: number; pid: number; outputDone: Promise<void> }> {
    const streams = new ProcStreams([r.onStdout, r.onStderr], r.stdin);
    // Output may follow the SPAWNED reply in the same read, so the streams are registered as the
    // reply is read, not when the promise's continuation gets to run.
    const m = await this.request({
      type: 'SPAWN', id: 0, root: r.root, cwd: r.cwd, uid: r.uid, gid: r.gid,
      flags: r.stdin ? SPAWN_FLAGS.STDIN : 0, args: r.args, env: r.env,
    }, undefined, (reply) => {
      if (reply.type !== 'SPAWNED') return;
      if (this.#procs.has(reply.proc)) return this.#violation(`SPAWNED names process ${reply.proc}, which is already running`);
      this.#procs.set(reply.proc, streams);
    });
    return { proc: m.proc, pid: m.pid, outputDone: streams.outputDone };
  }

  /** Queues stdin bytes (an empty buffer closes stdin); resolves once they are handed to the channel. */
  writeStdin(proc: number, data: Buffer): Promise<void> {
    const s = this.#procs.get(proc);
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    if (s === undefined || !s.stdinOpen) return Promise.reject(new VmError('AGENT', `vm: process ${proc} has no open stdin`));
    if (data.length === 0) s.stdinOpen = false;
    return new Promise((resolve) => {
      s.stdinQueue.push({ data, done: resolve });
      this.#pumpStdin(proc, s);
    });
  }

  /** Signals a process; `all`: every process in its container's cgroup (a container's handle only). */
  async signal(proc: number, signal: number, all = false): Promise<void> {
    await this.request({ type: 'SIGNAL', id: 0, proc, signal, flags: all ? SIGNAL_FLAGS.ALL : 0 });
  }

  /** Registers a process's streams as the reply naming it is read (its output may be in the same read). */
  #register(proc: number, streams: ProcStreams): void {
    const known = this.#procs.get(proc);
    if (known === streams) return;
    if (known !== undefined) return this.#violation(`the agent names process ${proc}, which is already running`);
    this.#procs.set(proc, streams);
  }

  /** Forgets a process the agent will send nothing more for (its setup failed after it was named). */
  #forget(proc: number, streams: ProcStreams): void {
    if (this.#procs.get(proc) !== streams) return;
    this.#procs.delete(proc);
    streams.end(1);
    streams.end(2);
  }

  static #flags(r: ContainerRequest): number {
    return (r.stdin ? CREATE_FLAGS.STDIN : 0) | (r.terminal ? CREATE_FLAGS.TERMINAL : 0);
  }

  /**
   * Has the agent run stockade-init with a container's plan; resolves once the container is ready
   * (it waits for start()). At each hook point (HOOK) `onHook` runs on the host and its result is
   * CONTINUE's state. A failure once the agent named the container kills what it had started.
   */
  async create(r: ContainerRequest, onHook: (point: number, pid: number) => Promise<Buffer | undefined>): Promise<Started> {
    const streams = new ProcStreams([r.onStdout, r.onStderr], r.stdin, r.terminal);
    let proc: number | undefined;
    const named = (reply: GuestMessage): void => {
      if (reply.type !== 'HOOK' && reply.type !== 'CREATED') return;
      if (proc !== undefined && reply.proc !== proc) return this.#violation(`${reply.type} names process ${reply.proc}, not ${proc}`);
      proc = reply.proc;
      this.#register(reply.proc, streams);
    };
    let m = await this.request({ type: 'CREATE', id: 0, name: r.name, flags: AgentClient.#flags(r), plan: r.plan }, undefined, named);
    try {
      while (m.type === 'HOOK') {
        const state = await onHook(m.point, m.pid);
        m = await this.request({ type: 'CONTINUE', id: 0, proc: m.proc, state: state ?? Buffer.alloc(0) }, undefined, named);
      }
    } catch (e) {
      if (proc !== undefined && this.#failed === undefined) {
        const p = proc;
        await this.signal(p, 9).catch(() => undefined);
        await this.wait(p).catch(() => undefined);
        this.#forget(p, streams);
      }
      throw e;
    }
    return { proc: m.proc, pid: m.pid, outputDone: streams.outputDone };
  }

  /** Releases a created container to exec its process (the start socket's MSG_START); resolves once it did. */
  async start(proc: number, state: Buffer = Buffer.alloc(0)): Promise<void> {
    await this.request({ type: 'START', id: 0, proc, state });
  }

  /** Runs a process in a container's namespaces and cgroup (an exec plan); resolves once it exec'd. */
  async exec(container: number, r: ContainerRequest): Promise<Started> {
    const streams = new ProcStreams([r.onStdout, r.onStderr], r.stdin, r.terminal);
    const m = await this.request({ type: 'EXEC', id: 0, container, name: r.name, flags: AgentClient.#flags(r), plan: r.plan }, undefined, (reply) => {
      if (reply.type === 'CREATED') this.#register(reply.proc, streams);
    });
    return { proc: m.proc, pid: m.pid, outputDone: streams.outputDone };
  }

  /** A terminal's new size (no reply; the agent ignores it for a process without a pty). */
  resize(proc: number, rows: number, cols: number): void {
    if (this.#failed !== undefined) throw this.#failed;
    this.#send({ type: 'RESIZE', id: 0, proc, rows, cols });
  }

  /** The guest pids of every process in a container's cgroup. */
  async pids(proc: number): Promise<number[]> {
    const r = await this.request({ type: 'PIDS', id: 0, proc });
    return [...r.pids];
  }

  /** Sets limits of a container's cgroup in the guest (0: as it is, U64_MAX: no limit). */
  async update(proc: number, l: GuestLimits): Promise<void> {
    await this.request({
      type: 'UPDATE', id: 0, proc, pidsMax: l.pidsMax ?? 0n, memoryMax: l.memoryMax ?? 0n,
      cpuQuota: l.cpuQuota ?? 0n, cpuPeriod: l.cpuPeriod ?? 0n, cpuWeight: l.cpuWeight ?? 0n,
    });
  }

  /**
   * A UDP socket on the guest's loopback at `address` (127.0.0.0/8):`port` whose datagrams come to
   * `onQuery` (listener: the order of these calls, from 0), answered with dnsAnswer.
   */
  async dnsListen(address: Buffer, port: number, onQuery: (listener: number, query: number, data: Buffer) => void): Promise<number> {
    this.#onDnsQuery = onQuery;
    await this.request({ type: 'DNS_LISTEN', id: 0, address, port });
    return this.#dnsListeners++;
  }

  /** The answer to DNS_QUERY `query`, sent by the agent to the guest process that asked. */
  dnsAnswer(query: number, data: Buffer): void {
    if (this.#failed !== undefined || data.length === 0) return;
    this.#send({ type: 'DNS_ANSWER', id: 0, query, data });
  }

  /** Freezes (or thaws) a container's cgroup in the guest; resolves once the kernel says it is done. */
  async freeze(proc: number, frozen: boolean): Promise<void> {
    await this.request({ type: 'FREEZE', id: 0, proc, frozen: frozen ? 1 : 0 });
  }

  async stats(proc: number): Promise<GuestStats> {
    const { type: _t, id: _i, ...stats } = await this.request({ type: 'STATS', id: 0, proc });
    return stats;
  }

  /** The exit status, once the process exited and both its output streams ended. */
  async wait(proc: number): Promise<ExitStatus> {
    const r = await this.request({ type: 'WAIT', id: 0, proc }, null);
    const s = this.#procs.get(proc);
    if (s !== undefined) await s.outputDone;
    this.#procs.delete(proc);
    if (this.#failed !== undefined) throw this.#failed;
    const oom = r.oomKills > 0n ? { oomKills: Number(r.oomKills) } : {};
    return r.code === -1 ? { code: null, signal: r.signal, ...oom } : { code: r.code, signal: null, ...oom };
  }

  async shutdown(timeoutMs: number): Promise<void> {
    await this.request({ type: 'SHUTDOWN', id: 0 }, timeoutMs);
  }
}
