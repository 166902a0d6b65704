// Unpacks one layer into a fresh snapshot directory, writing nothing outside it whatever the tar says.
//
// The snapshot is a private directory (under the store's 0700 tmp/) that only this process writes
// while it is unpacked, so a path checked with lstat stays what it was checked as. Every entry's
// path is split into components; `..` is refused; every parent is walked with lstat and must be a
// real directory (a symlink planted by an earlier entry is refused, never followed); the final
// component is removed before it is created, and files are opened O_EXCL|O_NOFOLLOW. Symlinks are
// written as the image has them (absolute ones included): they are only ever resolved inside the
// container's root, never by this code. Hardlinks must name a file of the same layer.
//
// Whiteouts become overlayfs's own: `.wh.NAME` a 0:0 character device, `.wh..wh..opq` the
// trusted.overlay.opaque xattr on its directory, so snapshots stack as overlay lower dirs.
// Device nodes are skipped (with a warning): a container gets its /dev from the runtime, and a
// block device in a layer is only a way to reach host disks. Setuid and setgid bits are kept, as
// Docker keeps them: the snapshots are reachable only by root (0700 store), the overlay is mounted
// nosuid,nodev, and `run --image` sets no_new_privs, so the bits never raise anyone's privileges.
import { execFileSync } from 'node:child_process';
import {
  closeSync, constants as fsc, fchmodSync, fchownSync, futimesSync, lchownSync, linkSync, lstatSync, lutimesSync,
  mkdirSync, openSync, readSync, rmSync, symlinkSync, unlinkSync, writeSync, type Stats, chmodSync,
} from 'node:fs';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { createReadStream } from 'node:fs';
import * as tar from 'tar-stream';
import { StockadeError } from '../errors';
import { digestOfHash, sha256, type Digest } from './digest';
import type { ImageLimits } from './limits';

export interface UnpackResult {
  diffId: Digest;
  entries: number;
  /** Bytes of the uncompressed tar stream. */
  bytes: number;
  skippedDevices: number;
}

export interface UnpackOptions {
  blob: string;
  dest: string;
  what: string;
  limits: ImageLimits;
  warn: (msg: string) => void;
}

function bad(what: string, why: string): StockadeError {
  return new StockadeError('IMAGE_INVALID', `${what}: ${why}`, { what });
}

/** Counts and hashes the uncompressed stream (the diff-id) and stops it at the size limit. */
class Meter extends Transform {
  readonly hash = sha256();
  bytes = 0;
  readonly #limit: number;
  readonly #what: string;
  constructor(limit: number, what: string) {
    super();
    this.#limit = limit;
    this.#what = what;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.#limit) {
      cb(bad(this.#what, `layer is larger than ${this.#limit} bytes uncompressed (a gzip bomb?); refused`));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }
}

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

function startsWith(buf: Buffer, magic: readonly number[]): boolean {
  return magic.every((b, i) => buf[i] === b);
}

/** Splits a tar path into components; `..` anywhere is refused rather than resolved. */
export function components(name: string, what: string): string[] {
  if (name.includes('\0')) throw bad(what, `entry ${JSON.stringify(name)} has a NUL byte`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw bad(what, `entry ${JSON.stringify(name)} has a ".." component; refused`);
  return parts;
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** An entry's content as tar-stream hands it over. */
interface EntryBody extends AsyncIterable<unknown> { resume(): unknown }

interface DirTimes { parts: string[]; mtime: Date }

class SnapshotWriter {
  readonly #dest: string;
  readonly #what: string;
  readonly #warn: (msg: string) => void;
  /** Relative paths known to be real directories (made or checked by us). */
  readonly #dirs = new Set<string>();
  readonly #dirTimes: DirTimes[] = [];
  skippedDevices = 0;

  constructor(dest: string, what: string, warn: (msg: string) => void) {
    this.#dest = dest;
    this.#what = what;
    this.#warn = warn;
  }

  #abs(parts: readonly string[]): string {
    return join(this.#dest, ...parts);
  }

  /** Makes (or checks) every parent of `parts` as a real directory; a symlink on the way is refused. */
  #parents(parts: readonly string[], name: string): void {
    for (let i = 1; i < parts.length; i++) {
      const rel = parts.slice(0, i).join('/');
      if (this.#dirs.has(rel)) continue;
      const abs = join(this.#dest, rel);
      const st = lstatOrNull(abs);
      if (st === null) {
        mkdirSync(abs, { mode: 0o755 });
      } else if (st.isSymbolicLink()) {
        throw bad(this.#what, `entry ${JSON.stringify(name)} goes through the symlink ${rel}; refused`);
      } else if (!st.isDirectory()) {
        throw bad(this.#what, `entry ${JSON.stringify(name)} goes through ${rel}, which is not a directory; refused`);
      }
      this.#dirs.add(rel);
    }
  }

  /** Removes what is at `parts` (not following a symlink there); keeps a directory when `keepDir`. */
  #clear(parts: readonly string[], keepDir: boolean): boolean {
    const abs = this.#abs(parts);
    const st = lstatOrNull(abs);
    if (st === null) return false;
    if (st.isDirectory()) {
      if (keepDir) return true;
      rmSync(abs, { recursive: true, force: true });
      const rel = parts.join('/');
      for (const d of [...this.#dirs]) if (d === rel || d.startsWith(`${rel}/`)) this.#dirs.delete(d);
      return false;
    }
    unlinkSync(abs);
    return false;
  }

  async entry(h: tar.Header, body: EntryBody): Promise<void> {
    const parts = components(h.name, this.#what);
    const base = parts[parts.length - 1];
    if (base === undefined) { body.resume(); return; } // the layer's root itself: the snapshot is it
    if (base.startsWith('.wh.')) { body.resume(); this.#whiteout(parts, base, h.name); return; }
    this.#parents(parts, h.name);
    const abs = this.#abs(parts);
    const mode = h.mode & 0o7777;
    switch (h.type) {
      case 'file':
      case 'contiguous-file': {
        this.#clear(parts, false);
        const fd = openSync(abs, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
        try {
          for await (const chunk of body) {
            const b = chunk as Buffer;
            let off = 0;
            while (off < b.length) off += writeSync(fd, b, off, b.length - off);
          }
          // chown first: it clears setuid/setgid, which the chmod then sets as the image has them.
          fchownSync(fd, h.uid, h.gid);
          fchmodSync(fd, mode);
          futimesSync(fd, h.mtime, h.mtime);
        } finally {
          closeSync(fd);
        }
        return;
      }
      case 'directory': {
        body.resume();
        const existed = this.#clear(parts, true);
        if (!existed) mkdirSync(abs, { mode: 0o700 });
        lchownSync(abs, h.uid, h.gid);
        chmodSync(abs, mode); // the final component is a real directory we made or checked
        this.#dirs.add(parts.join('/'));
        this.#dirTimes.push({ parts, mtime: h.mtime });
        return;
      }
      case 'symlink': {
        body.resume();
        this.#clear(parts, false);
        symlinkSync(h.linkname, abs);
        lchownSync(abs, h.uid, h.gid);
        lutimesSync(abs, h.mtime, h.mtime);
        return;
      }
      case 'link': {
        body.resume();
        const target = components(h.linkname, this.#what);
        if (target.length === 0) throw bad(this.#what, `hardlink ${JSON.stringify(h.name)} names the layer's root; refused`);
        const st = this.#existing(target);
        if (st === null || st.isDirectory()) {
          throw bad(this.#what, `hardlink ${JSON.stringify(h.name)} -> ${JSON.stringify(h.linkname)} does not name a file of this layer; refused`);
        }
        if (target.join('/') === parts.join('/')) return;
        this.#clear(parts, false);
        linkSync(this.#abs(target), abs); // link(2) does not follow a symlink it is given
        return;
      }
      case 'fifo': {
        body.resume();
        this.#clear(parts, false);
        execFileSync('mknod', ['-m', mode.toString(8), abs, 'p'], { stdio: ['ignore', 'ignore', 'pipe'] });
        lchownSync(abs, h.uid, h.gid);
        return;
      }
      case 'character-device':
      case 'block-device': {
        body.resume();
        this.skippedDevices++;
        this.#warn(`${this.#what}: device node ${h.name} skipped`);
        return;
      }
      default: {
        body.resume();
        this.#warn(`${this.#what}: entry ${h.name} of type ${String(h.type)} skipped`);
      }
    }
  }

  /** lstat of `parts` when every parent is a real directory; null when it is missing. */
  #existing(parts: readonly string[]): Stats | null {
    for (let i = 1; i < parts.length; i++) {
      const st = lstatOrNull(join(this.#dest, ...parts.slice(0, i)));
      if (st === null || !st.isDirectory()) return null;
    }
    return lstatOrNull(this.#abs(parts));
  }

  #whiteout(parts: string[], base: string, name: string): void {
    const dirParts = parts.slice(0, -1);
    if (dirParts.length > 0) {
      this.#parents([...dirParts, '_'], name);
    }
    const dir = this.#abs(dirParts);
    if (base === '.wh..wh..opq') {
      execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
      return;
    }
    if (base.startsWith('.wh..wh.')) {
      // aufs's own bookkeeping (.wh..wh.plnk, .wh..wh.aufs): Docker ignores it too.
      this.#warn(`${this.#what}: aufs metadata ${name} skipped`);
      return;
    }
    const victim = base.slice('.wh.'.length);
    if (victim === '' || victim === '.' || victim === '..') throw bad(this.#what, `whiteout ${JSON.stringify(name)} names nothing; refused`);
    const target = [...dirParts, victim];
    this.#clear(target, false);
    execFileSync('mknod', ['-m', '0', this.#abs(target), 'c', '0', '0'], { stdio: ['ignore', 'ignore', 'pipe'] });
  }

  /** Directory times last: every entry written into a directory changed its mtime. */
  finish(): void {
    for (const d of this.#dirTimes) {
      const st = this.#existing(d.parts);
      if (st !== null && st.isDirectory()) lutimesSync(this.#abs(d.parts), d.mtime, d.mtime);
    }
  }
}

/** Reads a layer blob (plain or gzip tar) into `dest`, which must be a new empty directory. */
export async function unpackLayer(opts: UnpackOptions): Promise<UnpackResult> {
  const { what, limits } = opts;
  const head = Buffer.alloc(4);
  const fd = openSync(opts.blob, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  let n: number;
  try { n = readSync(fd, head, 0, 4, 0); } finally { closeSync(fd); }
  const magic = head.subarray(0, n);
  if (startsWith(magic, ZSTD_MAGIC)) throw new StockadeError('UNSUPPORTED', `${what}: zstd-compressed layers are not supported`, { what });
  const source = createReadStream(opts.blob);
  const meter = new Meter(limits.maxLayerBytes, what);
  const extract = tar.extract();
  const fail = (e: Error): void => { extract.destroy(e); };
  source.on('error', fail);
  meter.on('error', fail);
  if (startsWith(magic, GZIP_MAGIC)) {
    const gunzip = createGunzip();
    gunzip.on('error', (e) => fail(bad(what, `gzip stream is corrupt (${e.message})`)));
    source.pipe(gunzip).pipe(meter);
  } else {
    source.pipe(meter);
  }
  meter.pipe(extract);
  const writer = new SnapshotWriter(opts.dest, what, opts.warn);
  let entries = 0;
  try {
    for await (const entry of extract) {
      if (++entries > limits.maxLayerEntries) throw bad(what, `layer has more than ${limits.maxLayerEntries} entries; refused`);
      await writer.entry(entry.header, entry);
    }
  } catch (e) {
    source.destroy();
    if (e instanceof StockadeError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw bad(what, `layer could not be unpacked: ${msg}`);
  } finally {
    source.destroy();
  }
  writer.finish();
  return { diffId: digestOfHash(meter.hash), entries, bytes: meter.bytes, skippedDevices: writer.skippedDevices };
}
