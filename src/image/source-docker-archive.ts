// A `docker save` archive (docker-archive:FILE): manifest.json naming a config and layer tars by path.
//
// The archive is read once, front to back: each file goes into the store under the digest of its
// content, so nothing is unpacked to a scratch directory and nothing is read twice. A config named
// by its digest (`<hex>.json`, `blobs/sha256/<hex>`) must hash to it; every layer's uncompressed
// digest is checked against the config's diff_ids when it is unpacked.
import { closeSync, constants as fsc, createReadStream, openSync, readSync } from 'node:fs';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { StockadeError, errnoCode } from '../errors';
import { isDigest, type Digest } from './digest';
import type { ImageLimits } from './limits';
import { MT, parseJson, type Descriptor } from './manifest';
import type { ImageSource } from './source';
import type { ImageStore, Ingested } from './store';

const IN_MEMORY = new Set(['manifest.json', 'repositories', 'index.json', 'oci-layout']);

function bad(what: string, why: string): StockadeError {
  return new StockadeError('IMAGE_INVALID', `${what}: ${why}`, { what });
}

/** The digest a `docker save` path claims for its content, if it names one. */
function claimedDigest(name: string): Digest | undefined {
  const m = /^(?:blobs\/sha256\/)?([a-f0-9]{64})(?:\.json)?$/.exec(name);
  const d = m?.[1] !== undefined ? `sha256:${m[1]}` : undefined;
  return isDigest(d) ? d : undefined;
}

export class DockerArchiveSource implements ImageSource {
  readonly #file: string;
  readonly #store: ImageStore;
  readonly #limits: ImageLimits;
  readonly #what: string;
  constructor(file: string, store: ImageStore, limits: ImageLimits) {
    this.#file = file;
    this.#store = store;
    this.#limits = limits;
    this.#what = `docker-archive:${file}`;
  }

  async resolve(): Promise<Descriptor> {
    const what = this.#what;
    let fd: number;
    try {
      fd = openSync(this.#file, fsc.O_RDONLY);
    } catch (e) {
      throw new StockadeError('IMAGE_NOT_FOUND', `${what}: cannot be opened (${errnoCode(e) ?? String(e)})`, { what });
    }
    const head = Buffer.alloc(2);
    readSync(fd, head, 0, 2, 0);
    const src = createReadStream('', { fd });
    const extract = tar.extract();
    src.on('error', (e) => extract.destroy(e));
    if (head[0] === 0x1f && head[1] === 0x8b) {
      const gz = createGunzip();
      gz.on('error', (e) => extract.destroy(bad(what, `gzip stream is corrupt (${e.message})`)));
      src.pipe(gz).pipe(extract);
    } else {
      src.pipe(extract);
    }
    const files = new Map<string, Ingested>();
    const small = new Map<string, Buffer>();
    const links = new Map<string, string>();
    try {
      for await (const entry of extract) {
        const h = entry.header;
        const name = posix.normalize(h.name).replace(/^(\.\/)+/, '').replace(/\/$/, '');
        if (h.type === 'symlink') {
          links.set(name, posix.normalize(posix.join(posix.dirname(name), h.linkname)));
          entry.resume();
        } else if (h.type === 'file' || h.type === 'contiguous-file') {
          if (IN_MEMORY.has(name)) {
            if (h.size > this.#limits.maxJsonBytes) throw bad(what, `${name} is larger than ${this.#limits.maxJsonBytes} bytes`);
            const chunks: Buffer[] = [];
            for await (const c of entry) chunks.push(c as Buffer);
            small.set(name, Buffer.concat(chunks));
          } else {
            files.set(name, await this.#store.ingest(Readable.from(entry), `${what}: ${name}`, undefined, this.#limits.maxLayerBytes));
          }
        } else {
          entry.resume();
        }
      }
    } catch (e) {
      src.destroy();
      if (e instanceof StockadeError) throw e;
      throw bad(what, `not a readable tar archive (${e instanceof Error ? e.message : String(e)})`);
    }
    const manifestData = small.get('manifest.json');
    if (manifestData === undefined) throw bad(what, 'no manifest.json: not a docker save archive');
    const list = parseJson(manifestData, `${what}: manifest.json`);
    const first: unknown = Array.isArray(list) ? list[0] : undefined;
    if (typeof first !== 'object' || first === null) throw bad(what, 'manifest.json names no image');
    const m = first as Record<string, unknown>;
    const lookup = (p: unknown, field: string): Ingested & { name: string } => {
      if (typeof p !== 'string') throw bad(what, `manifest.json ${field} must be a path`);
      let name = posix.normalize(p);
      for (let hops = 0; links.has(name); hops++) {
        if (hops > 8) throw bad(what, `manifest.json ${field} ${p}: symlink loop in the archive`);
        name = links.get(name) ?? name;
      }
      const got = files.get(name);
      if (got === undefined) throw bad(what, `manifest.json ${field} ${p} is not in the archive`);
      const claimed = claimedDigest(name);
      if (claimed !== undefined && claimed !== got.digest) throw bad(what, `${name} has digest ${got.digest}, not the ${claimed} its name claims; refused`);
      return { ...got, name };
    };
    const config = lookup(m['Config'], 'Config');
    if (!Array.isArray(m['Layers'])) throw bad(what, 'manifest.json Layers must be a list');
    const layers = m['Layers'].map((l: unknown, i) => lookup(l, `Layers[${i}]`));
    const manifest = {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: { mediaType: MT.ociConfig, digest: config.digest, size: config.size },
      layers: layers.map((l) => ({ mediaType: this.#isGzip(l.digest) ? MT.ociLayerGzip : MT.ociLayer, digest: l.digest, size: l.size })),
    };
    const data = Buffer.from(JSON.stringify(manifest));
    const digest = this.#store.putBytes(data);
    return { mediaType: MT.ociManifest, digest, size: data.length, platform: undefined, annotations: {} };
  }

  #isGzip(d: Digest): boolean {
    const fd = openSync(this.#store.blobPath(d), fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      const b = Buffer.alloc(2);
      return readSync(fd, b, 0, 2, 0) === 2 && b[0] === 0x1f && b[1] === 0x8b;
    } finally {
      closeSync(fd);
    }
  }

  async open(d: Descriptor): Promise<Readable> {
    return createReadStream('', { fd: openSync(this.#store.blobPath(d.digest), fsc.O_RDONLY | fsc.O_NOFOLLOW) });
  }

  close(): void { /* nothing held */ }
}
