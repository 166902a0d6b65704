// Encodes and decodes agent protocol frames; every byte from the guest is checked before it is believed.
import {
  AGENT_LIMITS, GUEST_MESSAGES, HOST_MESSAGES, type FieldKind, type GuestMessage, type HostMessage, type MessageDef,
} from './protocol';

/** A frame the guest sent that breaks the protocol; the VM that sent it is ended. */
export class ProtocolViolation extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolViolation';
  }
}

type MessageSet = Readonly<Record<string, MessageDef>>;

interface Lookup {
  readonly byTag: ReadonlyMap<number, readonly [string, MessageDef]>;
  readonly maxPayload: number;
  readonly maxStr: number;
}

function lookup(set: MessageSet, maxPayload: number, maxStr: number): Lookup {
  return { byTag: new Map(Object.entries(set).map(([name, def]) => [def.tag, [name, def] as const])), maxPayload, maxStr };
}

const FROM_GUEST = lookup(GUEST_MESSAGES, AGENT_LIMITS.MAX_GUEST_PAYLOAD, AGENT_LIMITS.MAX_GUEST_STR);
// The host's own frames, decoded only by tests (and by a fuzzer standing in for the agent).
const FROM_HOST = lookup(HOST_MESSAGES, AGENT_LIMITS.MAX_HOST_PAYLOAD, AGENT_LIMITS.MAX_HOST_PAYLOAD);

// fatal: a guest that sends a string which is not UTF-8 is refused, not silently repaired.
const utf8 = new TextDecoder('utf-8', { fatal: true });

function encodeField(kind: FieldKind, value: unknown, out: Buffer[], name: string): void {
  const u32 = (n: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(n);
    return b;
  };
  switch (kind) {
    case 'u32':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
        throw new RangeError(`field ${name}: ${String(value)} is not a u32`);
      }
      out.push(u32(value));
      return;
    case 'i32': {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
        throw new RangeError(`field ${name}: ${String(value)} is not an i32`);
      }
      const b = Buffer.alloc(4);
      b.writeInt32LE(value);
      out.push(b);
      return;
    }
    case 'u64': {
      if (typeof value !== 'bigint' || value < 0n || value > 0xffffffffffffffffn) throw new RangeError(`field ${name}: ${String(value)} is not a u64`);
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(value);
      out.push(b);
      return;
    }
    case 'u32s': {
      if (!Array.isArray(value)) throw new TypeError(`field ${name}: not an array`);
      if (value.length > AGENT_LIMITS.MAX_U32S) throw new RangeError(`field ${name}: more than ${AGENT_LIMITS.MAX_U32S} numbers`);
      out.push(u32(value.length));
      value.forEach((n: unknown, i) => encodeField('u32', n, out, `${name}[${i}]`));
      return;
    }
    case 'str': {
      if (typeof value !== 'string') throw new TypeError(`field ${name}: not a string`);
      if (value.includes('\0')) throw new RangeError(`field ${name}: holds a NUL byte`);
      const bytes = Buffer.from(value, 'utf8');
      out.push(u32(bytes.length), bytes, Buffer.alloc(1));
      return;
    }
    case 'bytes':
    case 'blob': {
      if (!Buffer.isBuffer(value)) throw new TypeError(`field ${name}: not a Buffer`);
      if (kind === 'bytes' && value.length > AGENT_LIMITS.MAX_CHUNK) throw new RangeError(`field ${name}: ${value.length} bytes exceed ${AGENT_LIMITS.MAX_CHUNK}`);
      out.push(u32(value.length), value);
      return;
    }
    case 'strs': {
      if (!Array.isArray(value)) throw new TypeError(`field ${name}: not an array`);
      if (value.length > AGENT_LIMITS.MAX_STRS) throw new RangeError(`field ${name}: more than ${AGENT_LIMITS.MAX_STRS} strings`);
      out.push(u32(value.length));
      value.forEach((s: unknown, i) => encodeField('str', s, out, `${name}[${i}]`));
      return;
    }
  }
}

function encodeWith(set: MessageSet, maxPayload: number, msg: { type: string; id: number } & Record<string, unknown>): Buffer {
  const def = set[msg.type];
  if (def === undefined) throw new TypeError(`unknown message ${msg.type}`);
  const parts: Buffer[] = [];
  for (const [name, kind] of Object.entries(def.fields)) encodeField(kind, msg[name], parts, name);
  const payload = Buffer.concat(parts);
  if (payload.length > maxPayload) throw new RangeError(`${msg.type}: payload of ${payload.length} bytes exceeds ${maxPayload}`);
  const header = Buffer.alloc(AGENT_LIMITS.FRAME_HEADER);
  header.writeUInt32LE(def.tag, 0);
  header.writeUInt32LE(msg.id, 4);
  header.writeUInt32LE(payload.length, 8);
  return Buffer.concat([header, payload]);
}

/** The frame for a host message (throws on a value that does not fit its field). */
export function encodeHost(msg: HostMessage): Buffer {
  return encodeWith(HOST_MESSAGES, AGENT_LIMITS.MAX_HOST_PAYLOAD, msg as unknown as { type: string; id: number } & Record<string, unknown>);
}

/** The frame for a guest message: what the agent would send (tests and fuzzers use it). */
export function encodeGuest(msg: GuestMessage): Buffer {
  return encodeWith(GUEST_MESSAGES, AGENT_LIMITS.MAX_GUEST_PAYLOAD, msg as unknown as { type: string; id: number } & Record<string, unknown>);
}

class Reader {
  #pos = 0;
  constructor(readonly buf: Buffer, readonly what: string, readonly maxStr: number) {}

  #need(n: number, field: string): void {
    if (n > this.buf.length - this.#pos) throw new ProtocolViolation(`${this.what}.${field}: payload ends early`);
  }

  u32(field: string): number {
    this.#need(4, field);
    const v = this.buf.readUInt32LE(this.#pos);
    this.#pos += 4;
    return v;
  }

  i32(field: string): number {
    this.#need(4, field);
    const v = this.buf.readInt32LE(this.#pos);
    this.#pos += 4;
    return v;
  }

  u64(field: string): bigint {
    this.#need(8, field);
    const v = this.buf.readBigUInt64LE(this.#pos);
    this.#pos += 8;
    return v;
  }

  u32s(field: string): number[] {
    const count = this.u32(field);
    if (count > AGENT_LIMITS.MAX_U32S) throw new ProtocolViolation(`${this.what}.${field}: ${count} numbers exceed ${AGENT_LIMITS.MAX_U32S}`);
    this.#need(count * 4, field);
    const out: number[] = [];
    for (let i = 0; i < count; i++) out.push(this.u32(field));
    return out;
  }

  /** A blob is bounded only by the frame it is in (the payload limit was checked from the header). */
  blob(field: string): Buffer {
    const len = this.u32(field);
    this.#need(len, field);
    const out = Buffer.from(this.buf.subarray(this.#pos, this.#pos + len));
    this.#pos += len;
    return out;
  }

  str(field: string): string {
    const len = this.u32(field);
    if (len > this.maxStr) throw new ProtocolViolation(`${this.what}.${field}: string of ${len} bytes exceeds ${this.maxStr}`);
    this.#need(len + 1, field);
    const bytes = this.buf.subarray(this.#pos, this.#pos + len);
    if (this.buf[this.#pos + len] !== 0) throw new ProtocolViolation(`${this.what}.${field}: string not NUL-terminated`);
    if (bytes.includes(0)) throw new ProtocolViolation(`${this.what}.${field}: string holds a NUL byte`);
    this.#pos += len + 1;
    try {
      return utf8.decode(bytes);
    } catch {
      throw new ProtocolViolation(`${this.what}.${field}: string is not UTF-8`);
    }
  }

  bytes(field: string): Buffer {
    const len = this.u32(field);
    if (len > AGENT_LIMITS.MAX_CHUNK) throw new ProtocolViolation(`${this.what}.${field}: ${len} bytes exceed ${AGENT_LIMITS.MAX_CHUNK}`);
    this.#need(len, field);
    // A copy: the frame buffer is reused for the next read.
    const out = Buffer.from(this.buf.subarray(this.#pos, this.#pos + len));
    this.#pos += len;
    return out;
  }

  strs(field: string): string[] {
    const count = this.u32(field);
    if (count > AGENT_LIMITS.MAX_STRS) throw new ProtocolViolation(`${this.what}.${field}: ${count} strings exceed ${AGENT_LIMITS.MAX_STRS}`);
    const out: string[] = [];
    for (let i = 0; i < count; i++) out.push(this.str(`${field}[${i}]`));
    return out;
  }

  end(): void {
    if (this.#pos !== this.buf.length) {
      throw new ProtocolViolation(`${this.what}: ${this.buf.length - this.#pos} bytes after the last field`);
    }
  }
}

function decodeWith(table: Lookup, tag: number, id: number, payload: Buffer): Record<string, unknown> & { type: string; id: number } {
  const entry = table.byTag.get(tag);
  if (entry === undefined) throw new ProtocolViolation(`unknown message tag 0x${tag.toString(16)}`);
  const [name, def] = entry;
  const isStream = def.stream === true;
  if (isStream && id !== 0) throw new ProtocolViolation(`${name}: a stream message with request id ${id}`);
  if (!isStream && id === 0) throw new ProtocolViolation(`${name}: a request or reply with id 0`);
  const r = new Reader(payload, name, table.maxStr);
  const out: Record<string, unknown> & { type: string; id: number } = { type: name, id };
  for (const [field, kind] of Object.entries(def.fields)) out[field] = r[kind](field);
  r.end();
  return out;
}

/**
 * Splits a byte stream into frames. push() takes what the socket delivered and returns the
 * complete frames decoded; a frame header announcing more than the limit is refused at once,
 * before anything is buffered for it, so a hostile peer cannot make the host hold its bytes.
 */
export class FrameDecoder<M> {
  #pending: Buffer[] = [];
  #pendingLength = 0;
  #failed: ProtocolViolation | undefined;

  private constructor(readonly table: Lookup) {}

  /** Decodes what the guest sends. */
  static fromGuest(): FrameDecoder<GuestMessage> {
    return new FrameDecoder<GuestMessage>(FROM_GUEST);
  }

  /** Decodes what the host sends (for tests of the encoder and the agent's view). */
  static fromHost(): FrameDecoder<HostMessage> {
    return new FrameDecoder<HostMessage>(FROM_HOST);
  }

  /** Bytes received but not yet a whole frame. */
  get buffered(): number {
    return this.#pendingLength;
  }

  push(chunk: Buffer): M[] {
    if (this.#failed !== undefined) throw this.#failed;
    try {
      return this.#push(chunk);
    } catch (e) {
      // Once out of step, a stream cannot be trusted again.
      this.#failed = e instanceof ProtocolViolation ? e : new ProtocolViolation(String(e));
      this.#pending = [];
      this.#pendingLength = 0;
      throw this.#failed;
    }
  }

  #push(chunk: Buffer): M[] {
    this.#pending.push(chunk);
    this.#pendingLength += chunk.length;
    const out: M[] = [];
    const H = AGENT_LIMITS.FRAME_HEADER;
    for (;;) {
      if (this.#pendingLength < H) return out;
      const head = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending);
      this.#pending = [head];
      const tag = head.readUInt32LE(0);
      const id = head.readUInt32LE(4);
      const length = head.readUInt32LE(8);
      if (!this.table.byTag.has(tag)) throw new ProtocolViolation(`unknown message tag 0x${tag.toString(16)}`);
      if (length > this.table.maxPayload) {
        throw new ProtocolViolation(`frame of ${length} bytes exceeds the limit of ${this.table.maxPayload}`);
      }
      if (head.length < H + length) return out;
      const payload = head.subarray(H, H + length);
      out.push(decodeWith(this.table, tag, id, payload) as M);
      const rest = head.subarray(H + length);
      this.#pending = rest.length > 0 ? [rest] : [];
      this.#pendingLength = rest.length;
    }
  }
}
