// Builds test images from scratch: layer tars entry by entry (hostile ones included), OCI layouts, docker archives.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';

export interface Entry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  body?: string | Buffer;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  devmajor?: number;
  devminor?: number;
}

export function sha256hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A tar of exactly these entries, in this order, with no path cleaning of any kind. */
export async function layerTar(entries: readonly Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const body = type === 'file' ? Buffer.from(e.body ?? '') : undefined;
    const header = {
      name: e.name, type, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), uid: e.uid ?? 0, gid: e.gid ?? 0,
      mtime: new Date(0), ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
      ...(e.devmajor !== undefined ? { devmajor: e.devmajor, devminor: e.devminor ?? 0 } : {}),
      ...(body !== undefined ? { size: body.length } : {}),
    };
    await new Promise<void>((resolve, reject) => {
      if (body !== undefined) pack.entry(header, body, (err) => (err ? reject(err) : resolve()));
      else pack.entry(header, (err) => (err ? reject(err) : resolve())).end(undefined);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** The busybox-static binary and the few names a shell needs, as one layer. */
export async function busyboxLayer(): Promise<Buffer> {
  return layerTar([
    { name: 'bin/', type: 'directory' },
    { name: 'bin/busybox', body: readFileSync('/bin/busybox'), mode: 0o755 },
    ...['sh', 'cat', 'ls', 'id', 'echo', 'grep', 'pwd', 'touch', 'stat', 'wc'].map((a): Entry => ({ name: `bin/${a}`, type: 'symlink', linkname: '/bin/busybox' })),
    { name: 'etc/', type: 'directory' },
    { name: 'etc/passwd', body: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n' },
    { name: 'etc/group', body: 'root:x:0:\nnogroup:x:65534:\nalice:x:1000:\nstaff:x:50:alice\n' },
    { name: 'tmp/', type: 'directory', mode: 0o1777 },
  ]);
}

export interface LayerSpec { data: Buffer; gzip?: boolean }

export interface ImageSpec {
  layers: LayerSpec[];
  config?: Record<string, unknown>;
  tag?: string;
  architecture?: string;
}

function writeBlob(blobs: string, data: Buffer): { digest: string; size: number } {
  const hex = sha256hex(data);
  writeFileSync(join(blobs, hex), data);
  return { digest: `sha256:${hex}`, size: data.length };
}

export interface Layout { dir: string; manifest: string; config: string; layers: string[]; diffIds: string[] }

/** An OCI image layout at `dir` holding one image (tagged `tag`, default "latest"). */
export function ociLayout(dir: string, spec: ImageSpec): Layout {
  const blobs = join(dir, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const diffIds = spec.layers.map((l) => `sha256:${sha256hex(l.data)}`);
  const layers = spec.layers.map((l) => {
    const data = l.gzip === true ? gzipSync(l.data) : l.data;
    return { mediaType: l.gzip === true ? 'application/vnd.oci.image.layer.v1.tar+gzip' : 'application/vnd.oci.image.layer.v1.tar', ...writeBlob(blobs, data) };
  });
  const config = writeBlob(blobs, Buffer.from(JSON.stringify({
    architecture: spec.architecture ?? 'amd64', os: 'linux',
    config: spec.config ?? { Env: ['PATH=/bin'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
  })));
  const manifest = writeBlob(blobs, Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers,
  })));
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': spec.tag ?? 'latest' } }],
  }));
  return { dir, manifest: manifest.digest, config: config.digest, layers: layers.map((l) => l.digest), diffIds };
}

/** A `docker save` archive (the pre-25 layout: <hex>.json config, <dir>/layer.tar) of one image. */
export async function dockerArchive(file: string, spec: ImageSpec): Promise<void> {
  const diffIds = spec.layers.map((l) => `sha256:${sha256hex(l.data)}`);
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', config: spec.config ?? { Env: ['PATH=/bin'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
  }));
  const configName = `${sha256hex(config)}.json`;
  const entries: Entry[] = [{ name: configName, body: config }];
  const layerNames: string[] = [];
  spec.layers.forEach((l, i) => {
    const name = `layer${i}/layer.tar`;
    layerNames.push(name);
    entries.push({ name: `layer${i}/`, type: 'directory' }, { name, body: l.data });
  });
  entries.push({ name: 'manifest.json', body: JSON.stringify([{ Config: configName, RepoTags: [`test:${spec.tag ?? 'latest'}`], Layers: layerNames }]) });
  writeFileSync(file, await layerTar(entries));
}
