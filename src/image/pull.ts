// Pull: from a reference to verified blobs, unpacked snapshots and a name in the store.
import { renameSync, rmSync, mkdirSync } from 'node:fs';
import { StockadeError } from '../errors';
import type { Digest } from './digest';
import { DEFAULT_LIMITS, type ImageLimits } from './limits';
import {
  parseImageConfig, parseManifestOrIndex, platformMatches, platformString, type Descriptor, type ImageConfig, type Manifest, type Platform,
} from './manifest';
import { canonicalName, parseReference, type ImageRef } from './reference';
import type { ImageSource } from './source';
import { DockerArchiveSource } from './source-docker-archive';
import { OciLayoutSource } from './source-oci-layout';
import { RegistrySource, type RegistryOptions } from './source-registry';
import type { ImageRecord, ImageStore } from './store';
import { unpackLayer } from './unpack';
import { removeImageRootfs } from './overlay';

export interface PullOptions {
  platform?: Platform;
  limits?: Partial<ImageLimits>;
  warn?: (msg: string) => void;
  debug?: (msg: string) => void;
  registry?: RegistryOptions;
}

export const DEFAULT_PLATFORM: Platform = { os: 'linux', architecture: 'amd64' };

function sourceFor(ref: ImageRef, store: ImageStore, limits: ImageLimits, opts: PullOptions): ImageSource {
  switch (ref.kind) {
    case 'oci': return new OciLayoutSource(ref.dir, ref.tag, limits);
    case 'docker-archive': return new DockerArchiveSource(ref.file, store, limits);
    case 'registry': return new RegistrySource(ref, limits, opts.registry);
  }
}

async function fetchJson(store: ImageStore, src: ImageSource, d: Descriptor, limits: ImageLimits, what: string): Promise<Buffer> {
  if (d.size > limits.maxJsonBytes) throw new StockadeError('IMAGE_INVALID', `${what}: ${d.size} bytes, more than the ${limits.maxJsonBytes} allowed`, { what });
  if (!store.hasBlob(d.digest)) await store.ingest(await src.open(d), what, { digest: d.digest, size: d.size }, d.size);
  return store.readBlob(d.digest, limits.maxJsonBytes, what);
}

/** Follows indexes down to the one manifest for `platform`; a digest met twice is a cycle. */
async function findManifest(store: ImageStore, src: ImageSource, top: Descriptor, platform: Platform, limits: ImageLimits): Promise<{ desc: Descriptor; manifest: Manifest }> {
  const seen = new Set<Digest>();
  let desc = top;
  for (let depth = 0; ; depth++) {
    if (seen.has(desc.digest)) throw new StockadeError('IMAGE_INVALID', `index cycle: ${desc.digest} is reached twice; refused`, { digest: desc.digest });
    if (depth > limits.maxIndexDepth) throw new StockadeError('IMAGE_INVALID', `indexes nested more than ${limits.maxIndexDepth} deep; refused`);
    seen.add(desc.digest);
    const what = `manifest ${desc.digest}`;
    const parsed = parseManifestOrIndex(await fetchJson(store, src, desc, limits, what), what, desc.digest);
    if (parsed.kind === 'manifest') return { desc, manifest: parsed };
    const next = parsed.manifests.find((m) => platformMatches(platform, m.platform));
    if (next === undefined) {
      const have = parsed.manifests.map((m) => (m.platform !== undefined ? platformString(m.platform) : '?')).join(', ');
      throw new StockadeError('IMAGE_NOT_FOUND', `no image for ${platformString(platform)} in index ${desc.digest} (it has: ${have || 'nothing'})`, { digest: desc.digest });
    }
    desc = next;
  }
}

/** Unpacks a layer into a snapshot unless one with its diff-id is already there. */
async function ensureSnapshot(store: ImageStore, layer: Descriptor, diffId: Digest, limits: ImageLimits, opts: PullOptions): Promise<void> {
  if (store.hasSnapshot(diffId)) return;
  const tmp = store.tmpPath('snapshot');
  mkdirSync(tmp, { mode: 0o755 });
  try {
    const what = `layer ${layer.digest}`;
    const r = await unpackLayer({ blob: store.blobPath(layer.digest), dest: tmp, what, limits, warn: opts.warn ?? (() => undefined) });
    if (r.diffId !== diffId) {
      throw new StockadeError('IMAGE_INVALID', `${what}: uncompressed digest ${r.diffId} is not the config's diff-id ${diffId}; refused`, { what });
    }
    opts.debug?.(`${what}: ${r.entries} entries, ${r.bytes} bytes unpacked`);
    renameSync(tmp, store.snapshotPath(diffId));
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Layers fetched and unpacked at once: enough to overlap the network with the disk on two cores. */
const LAYER_CONCURRENCY = 3;

/**
 * Runs `fn` over `items`, `limit` at a time; every started task is awaited before the first
 * failure is thrown, so nothing is still writing to tmp/ when the caller cleans up.
 */
async function inParallel<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { e: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failure === undefined && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (e) {
        failure ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure.e;
}

export interface Pulled { record: ImageRecord; config: ImageConfig }

/** Overlays left by a `run --image` that was killed: unmounted and removed once their container is gone. */
function sweepOrphans(store: ImageStore): void {
  for (const id of store.orphans()) removeImageRootfs(store, id);
}

export async function pullImage(store: ImageStore, refText: string, opts: PullOptions = {}): Promise<Pulled> {
  const ref = parseReference(refText);
  const limits: ImageLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const platform = opts.platform ?? DEFAULT_PLATFORM;
  const name = canonicalName(ref);
  if (process.getuid?.() !== 0) throw new StockadeError('UNSUPPORTED', 'pull needs root: layers keep their owners and whiteouts are device nodes');
  return store.locked(async () => {
    sweepOrphans(store);
    const src = sourceFor(ref, store, limits, opts);
    try {
      const top = await src.resolve();
      const { desc, manifest } = await findManifest(store, src, top, platform, limits);
      const configWhat = `config ${manifest.config.digest}`;
      const config = parseImageConfig(await fetchJson(store, src, manifest.config, limits, configWhat), configWhat);
      if (config.os !== '' && config.os !== platform.os) {
        throw new StockadeError('IMAGE_INVALID', `${configWhat}: image is for ${config.os}, not ${platform.os}`);
      }
      if (config.diffIds.length !== manifest.layers.length) {
        throw new StockadeError('IMAGE_INVALID', `${configWhat}: ${config.diffIds.length} diff-ids for ${manifest.layers.length} layers; refused`);
      }
      // Each layer's snapshot stands alone (overlay stacks them later), so layers are fetched and
      // unpacked side by side; one snapshot per diff-id, even when an image repeats a layer.
      const todo = new Map<Digest, Descriptor>();
      manifest.layers.forEach((layer, i) => {
        const diffId = config.diffIds[i] as Digest;
        if (!store.hasSnapshot(diffId) && !todo.has(diffId)) todo.set(diffId, layer);
      });
      await inParallel([...todo], LAYER_CONCURRENCY, async ([diffId, layer]) => {
        await store.ingest(await src.open(layer), `layer ${layer.digest}`, { digest: layer.digest, size: layer.size }, layer.size);
        await ensureSnapshot(store, layer, diffId, limits, opts);
      });
      const record: ImageRecord = {
        name,
        manifest: desc.digest,
        config: manifest.config.digest,
        layers: manifest.layers.map((l) => l.digest),
        diffIds: config.diffIds,
        size: manifest.layers.reduce((n, l) => n + l.size, manifest.config.size),
        platform: platformString(config.os !== '' ? { os: config.os, architecture: config.architecture || platform.architecture } : platform),
        pulled: new Date().toISOString(),
      };
      store.saveRefs([...store.refs().filter((r) => r.name !== name), record]);
      store.collect();
      return { record, config };
    } catch (e) {
      // A failed pull leaves no blob or snapshot that no image names.
      store.collect();
      throw e;
    } finally {
      src.close();
    }
  });
}

/** Removes an image's name, then whatever no other image or running container still uses. */
export async function removeImage(store: ImageStore, ref: string): Promise<ImageRecord> {
  return store.locked(async () => {
    const hit = store.find(ref) ?? store.find(tryCanonical(ref));
    if (hit === undefined) throw new StockadeError('IMAGE_NOT_FOUND', `no image ${JSON.stringify(ref)} in the store`, { ref });
    store.saveRefs(store.refs().filter((r) => r.name !== hit.name));
    sweepOrphans(store);
    store.collect();
    return hit;
  });
}

/** The stored name `ref` would be pulled under, or `ref` itself when it does not parse. */
export function tryCanonical(ref: string): string {
  try {
    return canonicalName(parseReference(ref));
  } catch {
    return ref;
  }
}

/** An image already in the store, by name, canonical name or id, with its config re-read and re-verified. */
export function loadImage(store: ImageStore, ref: string): Pulled | undefined {
  const record = store.find(ref) ?? store.find(tryCanonical(ref));
  if (record === undefined) return undefined;
  const what = `config ${record.config}`;
  return { record, config: parseImageConfig(store.readBlob(record.config, DEFAULT_LIMITS.maxJsonBytes, what), what) };
}
