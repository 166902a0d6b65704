// Opens that may block (a FIFO, a device, a leased file), handed to threads of their own: the request the serving thread sends and the reports it reads back.
//
//   serving thread                         blocking thread (native/addon/blocking.c)
//   decides: this object, these flags,
//   as this caller ----- request --------> takes the caller's identity (its own thread's)
//   serves the next notification           opens the object, interrupted every 100 ms to see
//        ...                               the caller still waits; gives up past the limit
//                                          NOTIF_ADDFD|SEND (or NOTIF_SEND of the errno)
//   ppoll: the report pipe <-- report ---- ends
//   counts, traces, logs a call that was stuck
//
// The decision stays in TypeScript; the thread only performs it.
import type { Creds } from './creds';

/** What a thread needs to perform an open the sentry decided on and answer the caller. */
export interface BlockingRequest {
  /** The notification the thread answers. */
  readonly id: bigint;
  readonly pid: number;
  /** The object, an fd of the sentry's that the thread takes over (closes) once it has it. */
  readonly src: number;
  /** open(2) flags: the thread opens the object's /proc/self/fd link with them (O_NOCTTY added). */
  readonly flags: number;
  /** The fd the caller gets is close-on-exec. */
  readonly cloexec: boolean;
  /** Whose identity the open is made with. */
  readonly creds: Creds;
  /** How long the open may wait before the caller is answered EINTR. */
  readonly limitMs: number;
  /** Names the request in its report. */
  readonly token: number;
  /** What the thread does with src: opens it (the default), or syncfs's its file system (sync(2)). */
  readonly op?: 'open' | 'syncfs' | undefined;
}

/** Hands a request to a thread of its own: 0, the request's src fd the thread's from then on; or -errno, src still the caller's. */
export type BlockingOpener = (r: BlockingRequest) => number;

/** How a blocking open ended: answered (with an fd or an errno), its caller gone first, or answered EINTR past its limit. */
export type BlockingOutcome = 'answered' | 'gone' | 'limit';

export interface BlockingReport {
  readonly id: bigint;
  readonly token: number;
  /** The listener the request came from, as the serving thread numbers it. */
  readonly key: number;
  /** The fd number the caller got, or the negative errno it was answered with (or met, when gone). */
  readonly result: number;
  readonly waitedMs: number;
  readonly outcome: BlockingOutcome;
  readonly pid: number;
}

/** The limit when the configuration sets none: a FIFO open through /dev/fd waits this long for its other end. */
export const DEFAULT_BLOCK_LIMIT_MS = 60_000;

const REQUEST_SIZE = 64;
export const REPORT_SIZE = 32;
const O_CLOEXEC = 0o2000000;
const OUTCOMES: readonly BlockingOutcome[] = ['answered', 'gone', 'limit'];

/** The request as blocking.c reads it (all little-endian): see its REQ_SIZE. */
export function encodeRequest(r: BlockingRequest, key: number): { request: Buffer; groups: Buffer } {
  const b = Buffer.alloc(REQUEST_SIZE);
  b.writeBigUInt64LE(r.id, 0);
  b.writeUInt32LE(r.pid, 8);
  b.writeInt32LE(r.src, 12);
  b.writeUInt32LE(r.flags >>> 0, 16);
  b.writeUInt32LE(r.cloexec ? O_CLOEXEC : 0, 20);
  b.writeUInt32LE(r.creds.uid, 24);
  b.writeUInt32LE(r.creds.gid, 28);
  b.writeUInt32LE(r.creds.groups.length, 32);
  b.writeUInt32LE(Math.max(0, Math.min(r.limitMs, 0xffffffff)), 36);
  b.writeUInt32LE(r.token >>> 0, 40);
  b.writeInt32LE(key, 44);
  b.writeBigUInt64LE(BigInt.asUintN(64, r.creds.caps), 48);
  b.writeUInt32LE(r.op === 'syncfs' ? 1 : 0, 56);
  const groups = Buffer.alloc(4 * Math.max(1, r.creds.groups.length));
  r.creds.groups.forEach((g, i) => groups.writeUInt32LE(g >>> 0, 4 * i));
  return { request: b, groups };
}

/** The reports in the first `len` bytes of `buf` (whole reports only: each is one write of the pipe). */
export function decodeReports(buf: Buffer, len: number): BlockingReport[] {
  const out: BlockingReport[] = [];
  for (let off = 0; off + REPORT_SIZE <= len; off += REPORT_SIZE) {
    out.push({
      id: buf.readBigUInt64LE(off),
      token: buf.readUInt32LE(off + 8),
      key: buf.readInt32LE(off + 12),
      result: buf.readInt32LE(off + 16),
      waitedMs: buf.readUInt32LE(off + 20),
      outcome: OUTCOMES[buf.readUInt32LE(off + 24)] ?? 'answered',
      pid: buf.readUInt32LE(off + 28),
    });
  }
  return out;
}
