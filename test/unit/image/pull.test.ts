// Pulls from OCI layouts and docker archives into a store of the test's own: blobs, snapshots, whiteouts, names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pullImage, removeImage } from '../../../src/image/pull';
import { ImageStore } from '../../../src/image/store';
import { hexOf } from '../../../src/image/digest';
import { parseReference, canonicalName } from '../../../src/image/reference';
import { busyboxLayer, dockerArchive, layerTar, ociLayout, sha256hex } from './build';

const skip = process.getuid?.() !== 0 ? 'pull keeps owners and makes whiteout devices: needs root' : false;

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'stockade-image-'));
}

function xattr(path: string, name: string): string | undefined {
  try {
    return execFileSync('getfattr', ['--only-values', '-n', name, path], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
}

test('references parse as skopeo writes them', () => {
  assert.deepEqual(parseReference('oci:/x/y:v1'), { kind: 'oci', dir: '/x/y', tag: 'v1' });
  assert.deepEqual(parseReference('oci:/x/y'), { kind: 'oci', dir: '/x/y', tag: undefined });
  assert.deepEqual(parseReference('docker-archive:/a.tar'), { kind: 'docker-archive', file: '/a.tar' });
  assert.equal(canonicalName(parseReference('busybox')), 'registry-1.docker.io/library/busybox:latest');
  assert.equal(canonicalName(parseReference('docker://127.0.0.1:5000/a/b:t')), '127.0.0.1:5000/a/b:t');
  assert.throws(() => parseReference('Bad/Name'), /not a repository name/);
});

test('an OCI layout with gzip layers, whiteouts and an opaque directory unpacks into shared snapshots', { skip }, async () => {
  const dir = tmp();
  try {
    const base = await busyboxLayer();
    const l2 = await layerTar([
      { name: 'etc/', type: 'directory' },
      { name: 'etc/.wh.group', body: '' },
      { name: 'opt/', type: 'directory' },
      { name: 'opt/.wh..wh..opq', body: '' },
      { name: 'opt/new', body: 'n' },
      { name: 'bin/su', body: 'x', mode: 0o4755 },
      { name: 'bin/hard', type: 'link', linkname: 'bin/su' },
    ]);
    const layout = ociLayout(join(dir, 'layout'), { layers: [{ data: base, gzip: true }, { data: l2 }], tag: 'v1' });
    const store = new ImageStore(join(dir, 'state'));
    const { record, config } = await pullImage(store, `oci:${layout.dir}:v1`);
    assert.equal(record.name, `oci:${layout.dir}:v1`);
    assert.deepEqual(record.diffIds, layout.diffIds);
    assert.deepEqual(config.cmd, ['sh']);
    const s1 = store.snapshotPath(record.diffIds[0] as never);
    const s2 = store.snapshotPath(record.diffIds[1] as never);
    assert.equal(readFileSync(join(s1, 'bin/busybox')).equals(readFileSync('/bin/busybox')), true);
    assert.equal(readlinkSync(join(s1, 'bin/sh')), '/bin/busybox');
    const wh = lstatSync(join(s2, 'etc/group'));
    assert.ok(wh.isCharacterDevice() && wh.rdev === 0, 'a whiteout is a 0:0 character device');
    assert.equal(xattr(join(s2, 'opt'), 'trusted.overlay.opaque'), 'y');
    assert.equal(statSync(join(s2, 'bin/su')).mode & 0o7777, 0o4755, 'setuid bits kept (see unpack.ts)');
    assert.equal(statSync(join(s2, 'bin/hard')).ino, statSync(join(s2, 'bin/su')).ino);
    for (const d of [layout.manifest, layout.config, ...layout.layers]) assert.ok(store.hasBlob(d as never), `blob ${d} stored`);
    assert.equal(statSync(store.dir).mode & 0o777, 0o700);

    // A second image sharing the base layer reuses its snapshot.
    const other = ociLayout(join(dir, 'layout2'), { layers: [{ data: base, gzip: true }, { data: await layerTar([{ name: 'x', body: 'x' }]) }] });
    const before = statSync(s1).ino;
    await pullImage(store, `oci:${other.dir}`);
    assert.equal(statSync(s1).ino, before);
    assert.equal(store.refs().length, 2);

    // rmi of the first keeps the shared snapshot, drops its own.
    await removeImage(store, `oci:${layout.dir}:v1`);
    assert.ok(existsSync(s1));
    assert.ok(!existsSync(s2));
    assert.ok(!store.hasBlob(layout.manifest as never));
    await removeImage(store, `oci:${other.dir}`);
    assert.deepEqual(readdirSync(store.snapshotsDir), []);
    assert.deepEqual(readdirSync(join(store.dir, 'blobs', 'sha256')), []);
    assert.deepEqual(readdirSync(join(store.dir, 'tmp')), []);
    await assert.rejects(removeImage(store, `oci:${other.dir}`), /no image/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a docker save archive pulls, its config named by its digest', { skip }, async () => {
  const dir = tmp();
  try {
    const base = await busyboxLayer();
    await dockerArchive(join(dir, 'img.tar'), { layers: [{ data: base }], config: { Entrypoint: ['/bin/sh', '-c'], Cmd: ['echo hi'], Env: ['A=1'], WorkingDir: '/tmp', User: 'alice' } });
    const store = new ImageStore(join(dir, 'state'));
    const { record, config } = await pullImage(store, `docker-archive:${join(dir, 'img.tar')}`);
    assert.deepEqual(record.diffIds, [`sha256:${sha256hex(base)}`]);
    assert.deepEqual(config.entrypoint, ['/bin/sh', '-c']);
    assert.equal(config.user, 'alice');
    assert.ok(existsSync(join(store.snapshotPath(record.diffIds[0] as never), 'bin/busybox')));
    // Nothing but the image's own blobs is kept (the archive's manifest.json and the like are not).
    assert.equal(readdirSync(join(store.dir, 'blobs', 'sha256')).length, 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the platform is chosen from an index; a missing one is named', { skip }, async () => {
  const dir = tmp();
  try {
    const amd = ociLayout(join(dir, 'l'), { layers: [{ data: await layerTar([{ name: 'amd', body: 'a' }]) }] });
    // Rewrite index.json as a nested index: the layout's entry is an index of two platforms.
    const { writeFileSync } = await import('node:fs');
    const arm = ociLayout(join(dir, 'arm'), { layers: [{ data: await layerTar([{ name: 'arm', body: 'b' }]) }], architecture: 'arm64' });
    execFileSync('cp', ['-a', ...readdirSync(join(arm.dir, 'blobs/sha256')).map((f) => join(arm.dir, 'blobs/sha256', f)), join(amd.dir, 'blobs/sha256')]);
    const size = (d: string): number => statSync(join(amd.dir, 'blobs/sha256', d.slice(7))).size;
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: arm.manifest, size: size(arm.manifest), platform: { os: 'linux', architecture: 'arm64' } },
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: amd.manifest, size: size(amd.manifest), platform: { os: 'linux', architecture: 'amd64' } },
    ] }));
    writeFileSync(join(amd.dir, 'blobs/sha256', sha256hex(index)), index);
    writeFileSync(join(amd.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [
      { mediaType: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${sha256hex(index)}`, size: index.length, annotations: { 'org.opencontainers.image.ref.name': 'multi' } },
    ] }));
    const store = new ImageStore(join(dir, 'state'));
    const a = await pullImage(store, `oci:${amd.dir}:multi`);
    assert.equal(a.record.manifest, amd.manifest);
    const b = await pullImage(store, `oci:${amd.dir}:multi`, { platform: { os: 'linux', architecture: 'arm64' } });
    assert.equal(b.record.manifest, arm.manifest);
    await assert.rejects(pullImage(store, `oci:${amd.dir}:multi`, { platform: { os: 'linux', architecture: 's390x' } }), /no image for linux\/s390x.*linux\/arm64, linux\/amd64/);
    await assert.rejects(pullImage(store, `oci:${amd.dir}:nope`), /no image tagged "nope"/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('rmi keeps the layers a running container stacks, until it is gone', { skip }, async () => {
  const dir = tmp();
  try {
    const layout = ociLayout(join(dir, 'layout'), { layers: [{ data: await layerTar([{ name: 'a', body: 'a' }]) }] });
    const store = new ImageStore(join(dir, 'state'));
    const { record } = await pullImage(store, `oci:${layout.dir}`);
    store.markInUse('c1', record.diffIds);
    await removeImage(store, hexOf(record.config).slice(0, 8));
    assert.ok(store.hasSnapshot(record.diffIds[0] as never), 'kept while in use');
    assert.equal(store.refs().length, 0);
    store.clearInUse('c1');
    await store.locked(async () => store.collect());
    assert.ok(!store.hasSnapshot(record.diffIds[0] as never), 'collected once no container uses it');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

