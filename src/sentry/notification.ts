// A seccomp notification as the sentry reads it, and the closed set of answers a handler gives.

/** sizeof(struct seccomp_notif): u64 id, u32 pid, u32 flags, then seccomp_data (i32 nr, u32 arch, u64 ip, u64 args[6]). */
export const NOTIF_SIZE = 80;

export interface Notification {
  readonly id: bigint;
  /** The calling thread, in the sentry's pid namespace. */
  readonly pid: number;
  readonly nr: number;
  readonly arch: number;
  readonly args: readonly [bigint, bigint, bigint, bigint, bigint, bigint];
}

export function decodeNotification(b: Buffer): Notification {
  return {
    id: b.readBigUInt64LE(0),
    pid: b.readUInt32LE(8),
    nr: b.readInt32LE(16),
    arch: b.readUInt32LE(20),
    args: [
      b.readBigUInt64LE(32), b.readBigUInt64LE(40), b.readBigUInt64LE(48),
      b.readBigUInt64LE(56), b.readBigUInt64LE(64), b.readBigUInt64LE(72),
    ],
  };
}

export function encodeNotification(n: Notification): Buffer {
  const b = Buffer.alloc(NOTIF_SIZE);
  b.writeBigUInt64LE(n.id, 0);
  b.writeUInt32LE(n.pid, 8);
  b.writeInt32LE(n.nr, 16);
  b.writeUInt32LE(n.arch, 20);
  n.args.forEach((a, i) => b.writeBigUInt64LE(BigInt.asUintN(64, a), 32 + 8 * i));
  return b;
}

/** An int argument as the kernel reads it: the low 32 bits, signed. */
export function intArg(a: bigint): number {
  return Number(BigInt.asIntN(32, a));
}

/** An unsigned int argument (flags, modes). */
export function uintArg(a: bigint): number {
  return Number(BigInt.asUintN(32, a));
}

/**
 * The kernel performs the call itself, as if no filter were there (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
 * Only where the kernel's own confinement makes that safe; `why` says which, and `stockade trace` shows it.
 */
export interface Continue {
  readonly kind: 'continue';
  readonly why: string;
}

/** A descriptor the sentry opened, installed in the caller (SECCOMP_IOCTL_NOTIF_ADDFD), its number the call's result. */
export interface Inject {
  readonly kind: 'inject';
  readonly fd: number;
  readonly cloexec: boolean;
}

/**
 * The handler answers the call itself, later: it started something that must not stall the
 * sentry (a blocking connect) and left a watch in `Sentry.later` that sends the answer.
 */
export interface Later {
  readonly kind: 'later';
  /** what the trace records now */
  readonly what: string;
}

/**
 * Handed to a thread of its own (blocking.ts), which answers the caller itself: an open that may
 * wait. `token` names it in the thread's report.
 */
export interface Pending {
  readonly kind: 'pending';
  readonly token: number;
  /** An open, whose result is the caller's new fd; else a call whose result is a value (sync). */
  readonly opens: boolean;
}

/** A handler's answer: a result (>= 0), a negative errno, or one of the four above. */
export type Reply = number | Continue | Inject | Later | Pending;

export function continueBecause(why: string): Continue {
  return Object.freeze({ kind: 'continue', why });
}
