// An OCI image layout directory (oci:DIR[:TAG]): oci-layout, index.json, blobs/sha256/<hex>.
import { closeSync, constants as fsc, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { StockadeError, errnoCode } from '../errors';
import { hexOf } from './digest';
import type { ImageLimits } from './limits';
import { parseDescriptor, parseJson, type Descriptor } from './manifest';
import type { ImageSource } from './source';

const REF_NAME = 'org.opencontainers.image.ref.name';

function readSmall(path: string, max: number, what: string): Buffer {
  let fd: number;
  try {
    fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  } catch (e) {
    const why = errnoCode(e) === 'ENOENT' ? 'does not exist' : errnoCode(e) === 'ELOOP' ? 'is a symlink' : errnoCode(e) ?? String(e);
    throw new StockadeError('IMAGE_NOT_FOUND', `${what}: ${path} ${why}`, { path });
  }
  try {
    const size = fstatSync(fd).size;
    if (size > max) throw new StockadeError('IMAGE_INVALID', `${what}: ${path} is larger than ${max} bytes`, { path });
    const buf = Buffer.alloc(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

export class OciLayoutSource implements ImageSource {
  readonly #dir: string;
  readonly #tag: string | undefined;
  readonly #limits: ImageLimits;
  readonly #what: string;
  constructor(dir: string, tag: string | undefined, limits: ImageLimits) {
    this.#dir = dir;
    this.#tag = tag;
    this.#limits = limits;
    this.#what = `oci:${dir}`;
  }

  async resolve(): Promise<Descriptor> {
    const layout = parseJson(readSmall(join(this.#dir, 'oci-layout'), 4096, this.#what), `${this.#what}/oci-layout`);
    if (typeof layout !== 'object' || layout === null || (layout as Record<string, unknown>)['imageLayoutVersion'] !== '1.0.0') {
      throw new StockadeError('IMAGE_INVALID', `${this.#what}: oci-layout must say imageLayoutVersion 1.0.0`, { what: this.#what });
    }
    const index = parseJson(readSmall(join(this.#dir, 'index.json'), this.#limits.maxJsonBytes, this.#what), `${this.#what}/index.json`);
    const list = typeof index === 'object' && index !== null ? (index as Record<string, unknown>)['manifests'] : undefined;
    if (!Array.isArray(list)) throw new StockadeError('IMAGE_INVALID', `${this.#what}/index.json: no manifests list`, { what: this.#what });
    const descs = list.map((m, i) => parseDescriptor(m, `${this.#what}/index.json manifests[${i}]`));
    if (this.#tag !== undefined) {
      const hit = descs.find((d) => d.annotations[REF_NAME] === this.#tag);
      if (hit === undefined) throw new StockadeError('IMAGE_NOT_FOUND', `${this.#what}: no image tagged ${JSON.stringify(this.#tag)}`, { what: this.#what });
      return hit;
    }
    const only = descs[0];
    if (descs.length !== 1 || only === undefined) {
      throw new StockadeError('USAGE', `${this.#what}: the layout holds ${descs.length} images; name one as oci:DIR:TAG`, { what: this.#what });
    }
    return only;
  }

  async open(d: Descriptor): Promise<Readable> {
    // The digest is validated (sha256:<hex>), so this path cannot leave blobs/sha256.
    const path = join(this.#dir, 'blobs', 'sha256', hexOf(d.digest));
    try {
      const fd = openSync(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
      return createReadStream('', { fd });
    } catch (e) {
      throw new StockadeError('IMAGE_NOT_FOUND', `${this.#what}: blob ${d.digest} is missing (${errnoCode(e) ?? String(e)})`, { what: this.#what });
    }
  }

  close(): void { /* nothing held */ }
}
