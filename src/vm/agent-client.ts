// The host's end of the agent channel: requests with their replies, process streams with credit, all checked.
import type { Duplex } from 'node:stream';
import { FrameDecoder, ProtocolViolation, encodeHost } from './codec';
import { VmError } from './errors';
import {
  AGENT_LIMITS, AGENT_PROTOCOL_VERSION, HOST_MESSAGES, MOUNT_FLAGS, MOUNT_TYPES, SPAWN_FLAGS, STREAMS,
  type GuestMessage, type GuestMessageName, type GuestMessageOf, type HostMessage, type HostMessageName, type MessageDef,
} from './protocol';

/** Where a process's output goes; credit goes back to the guest once the returned promise settles. */
export type Sink = (chunk: Buffer) => void | Promise<void>;

export interface ExitStatus {
  /** The exit code, or null when the process died of a signal. */
  readonly code: number | null;
  readonly signal: number | null;
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
  constructor(readonly sinks: readonly [Sink, Sink], stdin: boolean) {
    this.stdinOpen = stdin;
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
        if (this.#failed !== undefined) return;
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
            reject(new VmError('AGENT', `vm agent: ${m.message}`, { errno: m.err, request: type }));
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

  async signal(proc: number, signal: number): Promise<void> {
    await this.request({ type: 'SIGNAL', id: 0, proc, signal });
  }

  /** The exit status, once the process exited and both its output streams ended. */
  async wait(proc: number): Promise<ExitStatus> {
    const r = await this.request({ type: 'WAIT', id: 0, proc }, null);
    const s = this.#procs.get(proc);
    if (s !== undefined) await s.outputDone;
    this.#procs.delete(proc);
    if (this.#failed !== undefined) throw this.#failed;
    return r.code === -1 ? { code: null, signal: r.signal } : { code: r.code, signal: null };
  }

  async shutdown(timeoutMs: number): Promise<void> {
    await this.request({ type: 'SHUTDOWN', id: 0 }, timeoutMs);
  }
}
