// Hostile images: each refused (or neutralised) with a one-line error, and nothing written outside the store.
//
// Every layer here is built entry by entry (test/unit/image/build.ts), so the tar holds exactly
// the names an attacker would write; the pull goes through the real CLI with a --root and --log of
// the test's own, next to a canary directory the attacks aim at.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { packageRoot } from '../../src/native/paths';
import { parseManifestOrIndex } from '../../src/image/manifest';
import { busyboxLayer, layerTar, ociLayout, sha256hex, type Entry } from '../unit/image/build';
import { RUN_TAG } from '../helpers/run-scope';

const STOCKADE = join(packageRoot(), 'bin', 'stockade');
const skip = process.getuid?.() !== 0 ? 'pull keeps owners and makes whiteout devices: needs root' : false;

// The name an escape would write in the host's /tmp: this run's own, so another run's test cannot be taken for one.
const PWNED = `stockade-pwned-${RUN_TAG}`;

interface World { dir: string; state: string; log: string; outside: string; secret: string }

function world(): World {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-hostile-'));
  const outside = join(dir, 'outside');
  mkdirSync(outside);
  const secret = join(outside, 'secret');
  writeFileSync(secret, 'secret\n');
  return { dir, state: join(dir, 'state'), log: join(dir, 'log.json'), outside, secret };
}

function stockade(w: World, args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(STOCKADE, ['--root', w.state, '--log', w.log, '--log-format', 'json', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The canary is as it was, and the store holds nothing of the refused image. */
function assertUntouched(w: World): void {
  assert.deepEqual(readdirSync(w.outside), ['secret'], 'nothing written beside the secret');
  assert.equal(readFileSync(w.secret, 'utf8'), 'secret\n');
  assert.equal(statSync(w.secret).nlink, 1, 'the secret gained no hardlink');
  const images = join(w.state, '.images');
  for (const sub of ['snapshots', 'tmp', 'blobs/sha256']) {
    if (existsSync(join(images, sub))) assert.deepEqual(readdirSync(join(images, sub)), [], `${sub} left empty`);
  }
}

function assertRefused(w: World, r: { status: number | null; stderr: string }, pattern: RegExp): void {
  assert.notEqual(r.status, 0, 'the pull fails');
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0] ?? '', pattern);
  assert.match(readFileSync(w.log, 'utf8'), /"level":"error"/, 'the --log file has the error');
  assertUntouched(w);
}

async function pullLayers(w: World, layers: Entry[][], extra: string[] = []): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const layout = ociLayout(join(w.dir, 'layout'), { layers: await Promise.all(layers.map(async (l) => ({ data: await layerTar(l) }))) });
  return stockade(w, ['pull', ...extra, `oci:${layout.dir}`]);
}

describe('hostile layers', { skip }, () => {
  const refusals: [string, (w: World) => Entry[][], RegExp][] = [
    ['a ".." path', (w) => [[{ name: `../../../../../../../..${w.outside}/pwned`, body: 'x' }]], /"\.\." component; refused/],
    ['a ".." path in the middle', () => [[{ name: `a/../../${PWNED}`, body: 'x' }]], /"\.\." component; refused/],
    ['a file written through an absolute symlink planted by an earlier entry', (w) => [[
      { name: 'evil', type: 'symlink', linkname: w.outside }, { name: 'evil/pwned', body: 'x' }]], /goes through the symlink evil; refused/],
    ['a file written through a relative symlink out of the snapshot', () => [[
      { name: 'evil', type: 'symlink', linkname: '../../../../../../../../tmp' }, { name: `evil/${PWNED}`, body: 'x' }]], /goes through the symlink evil/],
    ['a directory made through a symlink', (w) => [[
      { name: 'd', type: 'symlink', linkname: w.outside }, { name: 'd/sub/', type: 'directory' }]], /goes through the symlink d/],
    ['a symlink made through a symlink', (w) => [[
      { name: 'd', type: 'symlink', linkname: w.outside }, { name: 'd/ln', type: 'symlink', linkname: '/etc/shadow' }]], /goes through the symlink d/],
    ['a hardlink to an absolute host path', (w) => [[{ name: 'h', type: 'link', linkname: w.secret }]], /does not name a file of this layer; refused/],
    ['a hardlink out with ".."', () => [[{ name: 'h', type: 'link', linkname: '../../../../../../etc/passwd' }]], /"\.\." component/],
    ['a hardlink through a planted symlink', (w) => [[
      { name: 's', type: 'symlink', linkname: w.outside }, { name: 'h', type: 'link', linkname: 's/secret' }]], /does not name a file of this layer/],
    ['a whiteout through a planted symlink', (w) => [[
      { name: 's', type: 'symlink', linkname: w.outside }, { name: 's/.wh.secret', body: '' }]], /goes through the symlink s/],
    ['an opaque marker through a planted symlink', (w) => [[
      { name: 's', type: 'symlink', linkname: w.outside }, { name: 's/.wh..wh..opq', body: '' }]], /goes through the symlink s/],
    ['a whiteout of ".."', () => [[{ name: 'a/.wh...', body: '' }]], /names nothing; refused/],
    ['a file written through a symlink planted by a lower layer? (no: each layer has its own snapshot) and a dir through a file', () => [[
      { name: 'f', body: 'x' }, { name: 'f/x', body: 'y' }]], /not a directory; refused/],
  ];
  for (const [name, layers, pattern] of refusals) {
    test(`refused: ${name}`, async () => {
      const w = world();
      try {
        assertRefused(w, await pullLayers(w, layers(w)), pattern);
        assert.equal(existsSync(join('/tmp', PWNED)), false);
      } finally {
        rmSync(w.dir, { recursive: true, force: true });
      }
    });
  }

  test('neutralised: an absolute symlink is kept as a link, and a later file at its name replaces it rather than writing through', async () => {
    const w = world();
    try {
      const r = await pullLayers(w, [[
        { name: 'etc/', type: 'directory' }, { name: 'etc/passwd', type: 'symlink', linkname: w.secret },
        { name: 'x', type: 'symlink', linkname: w.secret }, { name: 'x', body: 'overwritten?' },
      ]]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(readFileSync(w.secret, 'utf8'), 'secret\n');
      const snaps = readdirSync(join(w.state, '.images', 'snapshots'));
      assert.equal(snaps.length, 1);
      const snap = join(w.state, '.images', 'snapshots', snaps[0] ?? '');
      assert.ok(lstatSync(join(snap, 'etc/passwd')).isSymbolicLink());
      assert.ok(lstatSync(join(snap, 'x')).isFile());
      assert.equal(readFileSync(join(snap, 'x'), 'utf8'), 'overwritten?');
    } finally {
      rmSync(w.dir, { recursive: true, force: true });
    }
  });

  test('device nodes are skipped with a warning; the rest of the layer is kept', async () => {
    const w = world();
    try {
      const r = await pullLayers(w, [[
        { name: 'dev/', type: 'directory' },
        { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0, mode: 0o666 },
        { name: 'dev/mem', type: 'character-device', devmajor: 1, devminor: 1, mode: 0o666 },
        { name: 'ok', body: 'ok' },
      ]]);
      assert.equal(r.status, 0, r.stderr);
      const snaps = readdirSync(join(w.state, '.images', 'snapshots'));
      const snap = join(w.state, '.images', 'snapshots', snaps[0] ?? '');
      assert.deepEqual(readdirSync(join(snap, 'dev')), []);
      assert.equal(readFileSync(join(snap, 'ok'), 'utf8'), 'ok');
      assert.match(readFileSync(w.log, 'utf8'), /device node dev\/sda skipped/);
    } finally {
      rmSync(w.dir, { recursive: true, force: true });
    }
  });

  test('a gzip bomb stops at the size limit', async () => {
    const w = world();
    try {
      const bomb = gzipSync(await layerTar([{ name: 'zeros', body: Buffer.alloc(64 * 1024 * 1024) }]));
      assert.ok(bomb.length < 1024 * 1024, 'the bomb is small');
      const layout = ociLayout(join(w.dir, 'layout'), { layers: [{ data: gunzipped(bomb), gzip: true }] });
      assertRefused(w, stockade(w, ['pull', '--max-layer-size', String(8 * 1024 * 1024), `oci:${layout.dir}`]), /larger than 8388608 bytes uncompressed \(a gzip bomb\?\); refused/);
    } finally {
      rmSync(w.dir, { recursive: true, force: true });
    }
  });

  test('a layer blob whose digest does not match its descriptor', async () => {
    const w = world();
    try {
      const layout = ociLayout(join(w.dir, 'layout'), { layers: [{ data: await busyboxLayer() }] });
      const path = join(layout.dir, 'blobs/sha256', (layout.layers[0] ?? '').slice(7));
      const data = readFileSync(path);
      data[1000] = (data[1000] ?? 0) ^ 0xff; // same size, other bytes
      writeFileSync(path, data);
      assertRefused(w, stockade(w, ['pull', `oci:${layout.dir}`]), /content has digest sha256:[a-f0-9]{64}, not sha256:[a-f0-9]{64}; refused/);
    } finally {
      rmSync(w.dir, { recursive: true, force: true });
    }
  });

  test('a blob longer than its descriptor says is cut off at the size', async () => {
    const w = world();
    try {
      const layout = ociLayout(join(w.dir, 'layout'), { layers: [{ data: await busyboxLayer() }] });
      const path = join(layout.dir, 'blobs/sha256', (layout.layers[0] ?? '').slice(7));
      writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.alloc(4096)]));
      assertRefused(w, stockade(w, ['pull', `oci:${layout.dir}`]), /more than the \d+ bytes expected; refused/);
    } finally {
      rmSync(w.dir, { recursive: true, force: true });
    }
  });

  test('a manifest that names itself (as its config) is refused', async () => {
    const w = world();
    try {
      const layout = ociLayout(join(w.dir, 'layout'), { layers: [{ data: await layerTar([{ name: 'a', body: 'a' }]) }] });
      // The manifest can only name its own digest if the digest is not checked: it is, so the
      // pull stops there; the parser refuses it as well, shown below without the digest check.
      const fakeSelf = `sha256:${'ab'.repeat(32)}`;
      const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: fakeSelf, size: 10 }, layers: [] }));
      writeFileSync(join(layout.dir, 'blobs/sha256', fakeSelf.slice(7)), body);
      writeFileSync(join(layout.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: fakeSelf, size: body.length }] }));
      assertRefused(w, stockade(w, ['pull', `oci:${layout.dir}`]), /content has digest .*, not sha256:abab.*; refused/);
      assert.throws(() => parseManifestOrIndex(body, 'm', fakeSelf as never), /manifest sha256:abab\S+ names itself/);
      const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: fakeSelf, size: 10 }] }));
      assert.throws(() => parseManifestOrIndex(index, 'i', fakeSelf as never), /index sha256:abab\S+ names itself/);
    } finally {
      rmSync(w.dir, { recursive: true, force: true });
    }
  });

  test('an index cycle is refused', async () => {
    const w = world();
    try {
      const layout = ociLayout(join(w.dir, 'layout'), { layers: [{ data: await layerTar([{ name: 'a', body: 'a' }]) }] });
      // Two indexes naming each other cannot both hash right; a chain deeper than the limit is
      // the form of it that verifies, and it is refused the same way.
      let desc = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: layout.manifest, size: statSync(join(layout.dir, 'blobs/sha256', layout.manifest.slice(7))).size };
      for (let i = 0; i < 8; i++) {
        const data = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ ...desc, platform: { os: 'linux', architecture: 'amd64' } }] }));
        writeFileSync(join(layout.dir, 'blobs/sha256', sha256hex(data)), data);
        desc = { mediaType: 'application/vnd.oci.image.index.v1+json', digest: `sha256:${sha256hex(data)}`, size: data.length };
      }
      writeFileSync(join(layout.dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [desc] }));
      assertRefused(w, stockade(w, ['pull', `oci:${layout.dir}`]), /indexes nested more than 4 deep; refused/);
    } finally {
      rmSync(w.dir, { recursive: true, force: true });
    }
  });

  test('a docker archive whose config does not hash to its name', async () => {
    const w = world();
    try {
      const config = Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [] } }));
      const name = `${'cd'.repeat(32)}.json`;
      writeFileSync(join(w.dir, 'a.tar'), await layerTar([{ name, body: config }, { name: 'manifest.json', body: JSON.stringify([{ Config: name, Layers: [] }]) }]));
      assertRefused(w, stockade(w, ['pull', `docker-archive:${join(w.dir, 'a.tar')}`]), /has digest sha256:\S+, not the sha256:cdcd\S+ its name claims; refused/);
    } finally {
      rmSync(w.dir, { recursive: true, force: true });
    }
  });

  test("a docker archive layer that is not the config's diff-id", async () => {
    const w = world();
    try {
      const layer = await layerTar([{ name: 'a', body: 'a' }]);
      const config = Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [`sha256:${'ef'.repeat(32)}`] } }));
      const cname = `${sha256hex(config)}.json`;
      writeFileSync(join(w.dir, 'a.tar'), await layerTar([{ name: cname, body: config }, { name: 'l/layer.tar', body: layer },
        { name: 'manifest.json', body: JSON.stringify([{ Config: cname, Layers: ['l/layer.tar'] }]) }]));
      assertRefused(w, stockade(w, ['pull', `docker-archive:${join(w.dir, 'a.tar')}`]), /is not the config's diff-id sha256:efef\S+; refused/);
    } finally {
      rmSync(w.dir, { recursive: true, force: true });
    }
  });
});

function gunzipped(b: Buffer): Buffer {
  return (require('node:zlib') as typeof import('node:zlib')).gunzipSync(b);
}
