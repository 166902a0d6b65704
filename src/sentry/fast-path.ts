// The sentry's native fast path (native/addon/fastpath.c): what one Sentry lets it serve, written where the C side reads it before each wait.
//
// The addon's fastServe waits on the host's fds and serves, in C, the stats and opens of an
// absolute path in the root (and fstat) for the listeners whose context says FAST_ENABLED; it
// hands every other notification back whole, before any side effect, to Sentry.answer. Its rules
// are a strict subset of sys-file.ts's, so enabling it changes the cost of a call, never its
// answer. It never changes the serving thread's identity: it serves only while the thread already
// holds the caller's (the plan's ids, and the capabilities capget reads of the caller at each
// call), which is the thread's steady state, as it keeps the last caller's identity between calls.
import type { FastLayout } from '../native/addon';

/** How a Sentry's context is made: the layout and the listener it serves. */
export interface FastPathSeam {
  readonly layout: FastLayout;
  readonly listener: number;
}

/** The wait that serves fast-path listeners itself (the addon's fastServe), as Poller.once takes it. */
export type FastServe = (pollfds: Buffer, nfds: number, timeout: Buffer | null, busyTimeout: Buffer | null, contexts: readonly Buffer[], out: Buffer) => number;

/** What the fast path may do for a Sentry right now. */
export interface FastState {
  /** the Sentry's root is open, no identity call was made, no one traces, and the thread holds the plan's ids */
  readonly enabled: boolean;
  readonly root: number;
  /** the effective capabilities the thread holds: a caller with exactly these is served */
  readonly caps: bigint;
}

/** The counts of calls the fast path answered for one Sentry. */
export interface FastCounts {
  readonly served: number;
  readonly injected: number;
  readonly errors: number;
}

export class FastContext {
  /** The context fastServe reads (struct fast_ctx), then the owned mounts' paths. */
  readonly buf: Buffer;
  readonly #l: FastLayout;
  /** FAST_STAT, FAST_OPEN and FAST_MOUNTS as fixed at construction. */
  readonly #calls: number;
  readonly #permitted: bigint;
  #caps = -1n;
  #flags = -1;
  #root = -2;

  /**
   * `mounts`: the paths of the trees the Sentry owns (its own walk serves those); `devs`: the
   * devices whose files the Sentry rewrites or stands in for (its /proc and /sys clones, its
   * shadows' tmpfs); `mntIds`: the mount ids of those trees, where a caller's cwd or dirfd is
   * JavaScript's to walk from (undefined: not known, and relative paths are not served here);
   * `stat`, `open`: which calls may be served here at all.
   */
  constructor(seam: FastPathSeam, mounts: readonly string[], devs: readonly bigint[], mntIds: readonly bigint[] | undefined,
    capSets: { readonly own: bigint; readonly permitted: bigint; readonly inheritable: bigint }, calls: { stat: boolean; open: boolean }) {
    const l = seam.layout;
    this.#l = l;
    this.#permitted = capSets.permitted;
    const paths = Buffer.from(`${mounts.map((p) => `${p}\0`).join('')}\0`);
    this.buf = Buffer.alloc(l.mounts + paths.length);
    paths.copy(this.buf, l.mounts);
    this.buf.writeInt32LE(seam.listener, l.listener);
    // What a read of a caller's memory refused to its identity raises the effective set to, and what capset keeps (creds.ts).
    writeCaps(this.buf, l.ownLo, capSets.own);
    writeCaps(this.buf, l.permittedLo, capSets.permitted);
    writeCaps(this.buf, l.inheritableLo, capSets.inheritable);
    const kept = devs.slice(0, l.maxDevs);
    this.buf.writeUInt32LE(kept.length, l.nDevs);
    kept.forEach((d, i) => this.buf.writeBigUInt64LE(d, l.devs + 8 * i));
    const relative = mntIds !== undefined && mntIds.length <= l.maxDevs;
    if (relative) {
      this.buf.writeUInt32LE(mntIds.length, l.nMnts);
      mntIds.forEach((m, i) => this.buf.writeBigUInt64LE(m, l.mntIds + 8 * i));
    }
    // A device list cut short would let a rewritten file through: then nothing is served here.
    const complete = devs.length <= l.maxDevs;
    this.#calls = !complete ? 0 : (calls.stat ? l.stat : 0) | (calls.open ? l.open : 0) | (mounts.length > 0 ? l.hasMounts : 0) | (relative ? l.relative : 0);
  }

  /** Writes `s` where the C side reads it (only what changed: this runs before every wait). */
  set(s: FastState): Buffer {
    const flags = s.enabled && this.#calls !== 0 ? this.#calls | this.#l.enabled : 0;
    if (flags !== this.#flags) {
      this.#flags = flags;
      this.buf.writeUInt32LE(flags, this.#l.flags);
    }
    if (s.root !== this.#root) {
      this.#root = s.root;
      this.buf.writeInt32LE(s.root, this.#l.root);
    }
    if (s.caps !== this.#caps) {
      this.#caps = s.caps;
      this.buf.writeUInt32LE(Number(s.caps & 0xffffffffn), this.#l.capsLo);
      this.buf.writeUInt32LE(Number((s.caps >> 32n) & 0xffffffffn), this.#l.capsHi);
      // What the thread holds while it is the caller: ThreadCreds.become sets the caller's within the permitted set.
      writeCaps(this.buf, this.#l.heldLo, s.caps & this.#permitted);
    }
    return this.buf;
  }

  get counts(): FastCounts {
    return {
      served: this.buf.readDoubleLE(this.#l.served),
      injected: this.buf.readDoubleLE(this.#l.injected),
      errors: this.buf.readDoubleLE(this.#l.errors),
    };
  }
}

/** A capability set as two u32 (low word first) at `at`, as struct fast_ctx keeps them. */
function writeCaps(b: Buffer, at: number, caps: bigint): void {
  b.writeUInt32LE(Number(caps & 0xffffffffn), at);
  b.writeUInt32LE(Number((caps >> 32n) & 0xffffffffn), at + 4);
}
