// OCI (and Docker v2) manifests, indexes and image configs: untrusted JSON in, typed values out.
import { StockadeError } from '../errors';
import { parseDigest, type Digest } from './digest';

export const MT = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

const INDEX_TYPES: readonly string[] = [MT.ociIndex, MT.dockerList];
const MANIFEST_TYPES: readonly string[] = [MT.ociManifest, MT.dockerManifest];
const LAYER_TYPES: readonly string[] = [MT.ociLayer, MT.ociLayerGzip, MT.dockerLayerGzip,
  'application/vnd.oci.image.layer.nondistributable.v1.tar', 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'];

export interface Platform { os: string; architecture: string; variant?: string | undefined }

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  platform?: Platform | undefined;
  annotations: Record<string, string>;
}

export interface Index { kind: 'index'; manifests: Descriptor[] }
export interface Manifest { kind: 'manifest'; config: Descriptor; layers: Descriptor[] }

/** The part of an image config that stockade acts on. */
export interface ImageConfig {
  architecture: string;
  os: string;
  diffIds: Digest[];
  entrypoint: string[] | undefined;
  cmd: string[] | undefined;
  env: string[];
  workingDir: string;
  user: string;
}

type Obj = Record<string, unknown>;

function bad(what: string, why: string): StockadeError {
  return new StockadeError('IMAGE_INVALID', `${what}: ${why}`, { what });
}

export function parseJson(data: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(Buffer.from(data).toString('utf8')) as unknown;
  } catch {
    throw bad(what, 'not valid JSON');
  }
}

function obj(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(what, 'not a JSON object');
  return v as Obj;
}

function strOf(v: unknown, what: string): string {
  if (typeof v !== 'string') throw bad(what, 'must be a string');
  return v;
}

function optStrings(v: unknown, what: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw bad(what, 'must be a list of strings');
  return v as string[];
}

function platformOf(v: unknown, what: string): Platform | undefined {
  if (v === undefined) return undefined;
  const p = obj(v, what);
  return { os: strOf(p['os'], `${what}.os`), architecture: strOf(p['architecture'], `${what}.architecture`),
    variant: typeof p['variant'] === 'string' ? p['variant'] : undefined };
}

export function parseDescriptor(v: unknown, what: string): Descriptor {
  const d = obj(v, what);
  const size = d['size'];
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad(what, 'size must be a non-negative integer');
  const annotations: Record<string, string> = {};
  if (d['annotations'] !== undefined) {
    for (const [k, a] of Object.entries(obj(d['annotations'], `${what}.annotations`))) {
      if (typeof a === 'string') annotations[k] = a;
    }
  }
  return {
    mediaType: strOf(d['mediaType'], `${what}.mediaType`),
    digest: parseDigest(d['digest'], `${what}.digest`),
    size,
    platform: platformOf(d['platform'], `${what}.platform`),
    annotations,
  };
}

export function isIndexType(mediaType: string): boolean { return INDEX_TYPES.includes(mediaType); }
export function isManifestType(mediaType: string): boolean { return MANIFEST_TYPES.includes(mediaType); }

/** An index or a manifest, told apart by its own mediaType (or, where it has none, its shape). */
export function parseManifestOrIndex(data: Uint8Array, what: string, self: Digest): Index | Manifest {
  const o = obj(parseJson(data, what), what);
  const mt = typeof o['mediaType'] === 'string' ? o['mediaType'] : undefined;
  const looksIndex = mt !== undefined ? isIndexType(mt) : Array.isArray(o['manifests']);
  if (looksIndex) {
    if (!Array.isArray(o['manifests'])) throw bad(what, 'an index needs a manifests list');
    const manifests = o['manifests'].map((m, i) => parseDescriptor(m, `${what}.manifests[${i}]`));
    for (const m of manifests) if (m.digest === self) throw bad(what, `index ${self} names itself`);
    return { kind: 'index', manifests };
  }
  if (mt !== undefined && !isManifestType(mt)) throw bad(what, `unsupported media type ${mt}`);
  if (o['schemaVersion'] !== 2) throw bad(what, 'schemaVersion must be 2 (schema 1 manifests are not supported)');
  const config = parseDescriptor(o['config'], `${what}.config`);
  if (!Array.isArray(o['layers'])) throw bad(what, 'a manifest needs a layers list');
  const layers = o['layers'].map((l, i) => parseDescriptor(l, `${what}.layers[${i}]`));
  // A manifest whose config or layer is the manifest itself would be read as both at once.
  if (config.digest === self || layers.some((l) => l.digest === self)) throw bad(what, `manifest ${self} names itself`);
  for (const l of layers) {
    if (!LAYER_TYPES.includes(l.mediaType)) throw bad(what, `layer ${l.digest} has unsupported media type ${l.mediaType}`);
  }
  return { kind: 'manifest', config, layers };
}

export function parseImageConfig(data: Uint8Array, what: string): ImageConfig {
  const o = obj(parseJson(data, what), what);
  const rootfs = obj(o['rootfs'], `${what}.rootfs`);
  if (rootfs['type'] !== 'layers') throw bad(what, 'rootfs.type must be "layers"');
  if (!Array.isArray(rootfs['diff_ids'])) throw bad(what, 'rootfs.diff_ids must be a list');
  const diffIds = rootfs['diff_ids'].map((d, i) => parseDigest(d, `${what}.rootfs.diff_ids[${i}]`));
  const c = o['config'] === undefined || o['config'] === null ? {} : obj(o['config'], `${what}.config`);
  return {
    architecture: typeof o['architecture'] === 'string' ? o['architecture'] : '',
    os: typeof o['os'] === 'string' ? o['os'] : '',
    diffIds,
    entrypoint: optStrings(c['Entrypoint'], `${what}.config.Entrypoint`),
    cmd: optStrings(c['Cmd'], `${what}.config.Cmd`),
    env: optStrings(c['Env'], `${what}.config.Env`) ?? [],
    workingDir: typeof c['WorkingDir'] === 'string' ? c['WorkingDir'] : '',
    user: typeof c['User'] === 'string' ? c['User'] : '',
  };
}

/** The platform a descriptor must match: linux/amd64 unless asked otherwise ("os/arch[/variant]"). */
export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new StockadeError('USAGE', `--platform must be OS/ARCH[/VARIANT], not ${JSON.stringify(s)}`);
  }
  return { os: parts[0] ?? '', architecture: parts[1] ?? '', variant: parts[2] };
}

export function platformMatches(want: Platform, have: Platform | undefined): boolean {
  if (have === undefined) return false;
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  return want.variant === undefined || have.variant === want.variant;
}

export function platformString(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant !== undefined ? `/${p.variant}` : ''}`;
}
