// Packs the busybox test rootfs into one image archive that podman, docker and ctr all load.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeRootfs } from '../helpers/rootfs';

/** The name every client knows the image by; fully qualified so no client guesses a registry. */
export const IMAGE = 'docker.io/library/stockade-test:busybox';

/** One image of an archive: its name and the command its config gives a container by default. */
export interface ImageEntry {
  readonly name: string;
  readonly cmd: readonly string[];
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Writes dir/image.tar and returns its path. The archive is an OCI image layout and a docker
 * archive at once, as `docker save` has written since Docker 25: index.json and oci-layout for
 * ctr and podman, manifest.json for Docker 20.10's loader, both naming the same blobs. The one
 * layer is uncompressed, so no client needs to agree on a compressor. Several images share the
 * layer and differ in their config (the CRI test's pause image is the busybox rootfs sleeping).
 */
export function buildImageArchive(dir: string, images: readonly ImageEntry[] = [{ name: IMAGE, cmd: ['sh'] }]): string {
  const rootfs = join(dir, 'rootfs');
  const layout = join(dir, 'layout');
  const blobs = join(layout, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  makeRootfs(rootfs);

  const layerTmp = join(dir, 'layer.tar');
  // Sorted names and fixed times: the same rootfs gives the same digest from one build to the next.
  execFileSync('tar', ['--numeric-owner', '--sort=name', '--mtime=@0', '-cf', layerTmp, '-C', rootfs, '.']);
  rmSync(rootfs, { recursive: true, force: true });
  const layer = readFileSync(layerTmp);
  const layerDigest = sha256(layer);
  renameSync(layerTmp, join(blobs, layerDigest));

  const blob = (content: object): { digest: string; size: number } => {
    const data = Buffer.from(JSON.stringify(content));
    const digest = sha256(data);
    writeFileSync(join(blobs, digest), data);
    return { digest, size: data.length };
  };
  const entries = images.map((image) => {
    const config = blob({
      architecture: process.arch === 'x64' ? 'amd64' : process.arch,
      os: 'linux',
      created: '1970-01-01T00:00:00Z',
      config: { Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: image.cmd, WorkingDir: '/' },
      rootfs: { type: 'layers', diff_ids: [`sha256:${layerDigest}`] },
      history: [{ created: '1970-01-01T00:00:00Z', created_by: 'stockade test/clients/image.ts' }],
    });
    const manifest = blob({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${config.digest}`, size: config.size },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${layerDigest}`, size: layer.length }],
    });
    return { name: image.name, config, manifest };
  });
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: entries.map((e) => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: `sha256:${e.manifest.digest}`,
      size: e.manifest.size,
      // containerd names the image from the first, podman from the second.
      annotations: { 'io.containerd.image.name': e.name, 'org.opencontainers.image.ref.name': e.name },
    })),
  }));
  writeFileSync(join(layout, 'manifest.json'), JSON.stringify(entries.map((e) => ({
    Config: `blobs/sha256/${e.config.digest}`,
    RepoTags: [e.name.replace(/^docker\.io\/library\//, '')],
    Layers: [`blobs/sha256/${layerDigest}`],
  }))));

  const archive = join(dir, 'image.tar');
  execFileSync('tar', ['--numeric-owner', '-cf', archive, '-C', layout, 'oci-layout', 'index.json', 'manifest.json', 'blobs']);
  rmSync(layout, { recursive: true, force: true });
  return archive;
}
