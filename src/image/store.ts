// The image store under the state root: verified blobs by digest, layer snapshots by diff-id, names.
// A dot-name, as the state root's .cache: `list` and test harnesses take other names for containers.
//
//   <root>/.images/           0700: only root reaches the snapshots (their setuid files included)
//     blobs/sha256/<hex>      manifests, configs and layers, each verified against its digest on the way in
//     snapshots/<hex>/        one unpacked layer per diff-id, shared by every image and container that has it
//     tmp/                    blobs and snapshots being written; renamed into place once verified
//     in-use/<id>             the diff-ids a running container's overlay stacks (rmi keeps them)
//     refs.json               reference -> image record
//     lock                    flock: one writer at a time
import { randomBytes } from 'node:crypto';
import {
  closeSync, constants as fsc, createWriteStream, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync,
  rmSync, unlinkSync, writeFileSync, fstatSync, readSync,
} from 'node:fs';
import { join } from 'node:path';
import { Transform, type TransformCallback, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StockadeError } from '../errors';
import { flockAsync } from '../native/addon';
import { digestOfHash, hexOf, isDigest, sha256, type Digest } from './digest';

export interface ImageRecord {
  /** The reference as pulled, in canonical form (oci:/abs/dir:tag, docker-archive:/abs/file, host/name:tag). */
  name: string;
  manifest: Digest;
  config: Digest;
  /** Layer blobs, bottom first. */
  layers: Digest[];
  /** Their uncompressed digests: the snapshots, bottom first. */
  diffIds: Digest[];
  /** Bytes of the blobs. */
  size: number;
  platform: string;
  pulled: string;
}

export interface Ingested { digest: Digest; size: number }

class Verifier extends Transform {
  readonly hash = sha256();
  bytes = 0;
  readonly #max: number;
  readonly #what: string;
  constructor(max: number, what: string) {
    super();
    this.#max = max;
    this.#what = what;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    // Stop at once rather than after the whole stream: a source may send without end.
    if (this.bytes > this.#max) {
      cb(new StockadeError('IMAGE_INVALID', `${this.#what}: more than the ${this.#max} bytes expected; refused`, { what: this.#what }));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }
}

interface InUseMark { diffIds: Digest[]; pid: number; start: string }

function readMark(path: string): InUseMark | undefined {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    const diffIds = Array.isArray(v['diffIds']) ? v['diffIds'].filter(isDigest) : [];
    return { diffIds, pid: typeof v['pid'] === 'number' ? v['pid'] : 0, start: typeof v['start'] === 'string' ? v['start'] : '' };
  } catch {
    return undefined; // gone meanwhile, or half-written: its container is being set up
  }
}

/** Field 22 of /proc/PID/stat: with the pid, names one process (pids are reused). */
function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export class ImageStore {
  readonly dir: string;
  readonly #stateRoot: string;
  constructor(stateRoot: string) {
    this.#stateRoot = stateRoot;
    this.dir = join(stateRoot, '.images');
  }

  blobPath(d: Digest): string { return join(this.dir, 'blobs', 'sha256', hexOf(d)); }
  snapshotPath(diffId: Digest): string { return join(this.dir, 'snapshots', hexOf(diffId)); }
  get snapshotsDir(): string { return join(this.dir, 'snapshots'); }
  hasBlob(d: Digest): boolean { return existsSync(this.blobPath(d)); }
  hasSnapshot(diffId: Digest): boolean { return existsSync(this.snapshotPath(diffId)); }

  ensure(): void {
    // The state root as the container store makes it (0711: a container's root in a user namespace
    // traverses it to its rootfs), not 0700 as a recursive mkdir of the store would.
    mkdirSync(this.#stateRoot, { recursive: true, mode: 0o711 });
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    for (const sub of ['blobs/sha256', 'snapshots', 'tmp', 'in-use']) mkdirSync(join(this.dir, sub), { recursive: true, mode: 0o700 });
  }

  /** Runs `fn` holding the store's lock: pulls, removals and collection do not interleave. */
  async locked<T>(fn: () => Promise<T>): Promise<T> {
    this.ensure();
    const fd = openSync(join(this.dir, 'lock'), 'a', 0o600);
    try {
      await flockAsync(fd, 'ex');
      return await fn();
    } finally {
      closeSync(fd);
    }
  }

  /** A fresh path under tmp/ for something being written. */
  tmpPath(prefix: string): string {
    return join(this.dir, 'tmp', `${prefix}-${process.pid}-${randomBytes(6).toString('hex')}`);
  }

  /**
   * Copies `src` into the store, hashing as it goes. With `expect`, the blob must have exactly that
   * size and digest (the stream is cut as soon as it passes the size); without, up to `max` bytes.
   */
  async ingest(src: Readable, what: string, expect: { digest: Digest; size: number } | undefined, max: number): Promise<Ingested> {
    if (expect !== undefined && this.hasBlob(expect.digest)) {
      src.destroy();
      return { digest: expect.digest, size: expect.size };
    }
    const tmp = this.tmpPath('blob');
    const v = new Verifier(expect?.size ?? max, what);
    try {
      await pipeline(src, v, createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
      const digest = digestOfHash(v.hash);
      if (expect !== undefined && v.bytes !== expect.size) {
        throw new StockadeError('IMAGE_INVALID', `${what}: ${v.bytes} bytes where the descriptor says ${expect.size}; refused`, { what });
      }
      if (expect !== undefined && digest !== expect.digest) {
        throw new StockadeError('IMAGE_INVALID', `${what}: content has digest ${digest}, not ${expect.digest}; refused`, { what });
      }
      renameSync(tmp, this.blobPath(digest));
      return { digest, size: v.bytes };
    } catch (e) {
      rmSync(tmp, { force: true });
      throw e;
    }
  }

  /** Stores bytes already in memory (a manifest stockade wrote itself). */
  putBytes(data: Uint8Array): Digest {
    const digest = digestOfHash(sha256().update(data));
    if (!this.hasBlob(digest)) {
      const tmp = this.tmpPath('blob');
      writeFileSync(tmp, data, { mode: 0o600, flag: 'wx' });
      renameSync(tmp, this.blobPath(digest));
    }
    return digest;
  }

  /** Reads a stored blob of at most `max` bytes, re-checking its digest (the store is trusted, not blindly). */
  readBlob(d: Digest, max: number, what: string): Buffer {
    const fd = openSync(this.blobPath(d), fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      const size = fstatSync(fd).size;
      if (size > max) throw new StockadeError('IMAGE_INVALID', `${what}: ${size} bytes, more than the ${max} allowed`, { what });
      const buf = Buffer.alloc(size);
      let off = 0;
      while (off < size) {
        const n = readSync(fd, buf, off, size - off, off);
        if (n === 0) break;
        off += n;
      }
      if (digestOfHash(sha256().update(buf)) !== d) throw new StockadeError('IMAGE_INVALID', `${what}: stored blob ${d} is corrupt`, { what });
      return buf;
    } finally {
      closeSync(fd);
    }
  }

  refs(): ImageRecord[] {
    let text: string;
    try {
      text = readFileSync(join(this.dir, 'refs.json'), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      throw new StockadeError('IMAGE_INVALID', `${join(this.dir, 'refs.json')} is damaged (not JSON); remove it and pull again`);
    }
    return Array.isArray(v) ? (v as ImageRecord[]) : [];
  }

  saveRefs(refs: readonly ImageRecord[]): void {
    const tmp = this.tmpPath('refs');
    writeFileSync(tmp, `${JSON.stringify(refs, null, 1)}\n`, { mode: 0o600 });
    renameSync(tmp, join(this.dir, 'refs.json'));
  }

  /** Finds an image by its name, or by its id (the config digest, or a prefix of its hex of at least 4). */
  find(ref: string): ImageRecord | undefined {
    const refs = this.refs();
    const byName = refs.find((r) => r.name === ref);
    if (byName !== undefined) return byName;
    const hex = ref.startsWith('sha256:') ? ref.slice(7) : ref;
    if (!/^[a-f0-9]{4,64}$/.test(hex)) return undefined;
    const hits = refs.filter((r) => hexOf(r.config).startsWith(hex));
    if (hits.length > 1 && !hits.every((h) => h.config === hits[0]?.config)) {
      throw new StockadeError('USAGE', `image id ${ref} is ambiguous`, { ref });
    }
    return hits[0];
  }

  /** Records the layers container `id` stacks, and this process as the one that will remove them. */
  markInUse(id: string, diffIds: readonly Digest[]): void {
    this.ensure();
    const mark: InUseMark = { diffIds: [...diffIds], pid: process.pid, start: processStart(process.pid) ?? '' };
    writeFileSync(join(this.dir, 'in-use', id), JSON.stringify(mark), { mode: 0o600 });
  }

  /** Containers whose `run --image` process died without removing their overlay (killed). */
  orphans(): string[] {
    const dir = join(this.dir, 'in-use');
    if (!existsSync(dir)) return [];
    return readdirSync(dir).filter((id) => {
      const mark = readMark(join(dir, id));
      if (mark === undefined) return false;
      const alive = processStart(mark.pid) === mark.start;
      // A container still in the state root may be running on that overlay: its delete comes first.
      return !alive && !existsSync(join(this.#stateRoot, id, 'state.json'));
    });
  }

  clearInUse(id: string): void {
    rmSync(join(this.dir, 'in-use', id), { force: true });
  }

  /** Removes blobs and snapshots that no image names and no running container stacks. Call locked. */
  collect(): { blobs: number; snapshots: number } {
    const keepBlobs = new Set<string>();
    const keepSnaps = new Set<string>();
    for (const r of this.refs()) {
      for (const d of [r.manifest, r.config, ...r.layers]) keepBlobs.add(hexOf(d));
      for (const d of r.diffIds) keepSnaps.add(hexOf(d));
    }
    const inUseDir = join(this.dir, 'in-use');
    for (const f of existsSync(inUseDir) ? readdirSync(inUseDir) : []) {
      for (const d of readMark(join(inUseDir, f))?.diffIds ?? []) keepSnaps.add(hexOf(d));
    }
    let blobs = 0;
    let snapshots = 0;
    for (const hex of readdirSync(join(this.dir, 'blobs', 'sha256'))) {
      if (!keepBlobs.has(hex)) { unlinkSync(join(this.dir, 'blobs', 'sha256', hex)); blobs++; }
    }
    for (const hex of readdirSync(this.snapshotsDir)) {
      if (!keepSnaps.has(hex)) { rmSync(join(this.snapshotsDir, hex), { recursive: true, force: true }); snapshots++; }
    }
    // Whatever a killed pull left in tmp/ (the lock says no pull is running now).
    for (const f of readdirSync(join(this.dir, 'tmp'))) rmSync(join(this.dir, 'tmp', f), { recursive: true, force: true });
    return { blobs, snapshots };
  }
}
