// The skip rules of the suite: only accepted machine limits skip, decided before a test starts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../../src/native/paths';
import { ACCEPTED_SKIPS, acceptedSkip } from '../../accepted-skips';
import { reportSkips } from '../../ci/run-suite';
import { tsSources } from './sources';

test('machine limits are accepted; a build, a daemon or a compiler that fails is not', () => {
  for (const reason of [
    'creating namespaces and mounts as the tests do needs root',
    'needs root (open_tree of /proc)',
    'podman is not installed (apt-get install podman)',
    'x32 is an x86_64 ABI',
    'seccomp user notification is missing here (SECCOMP_GET_NOTIF_SIZES: -38)',
    'cgroup v2 memory controller is bound to a v1 hierarchy on this host',
    'no freezer controller on this host',
    'unshare (util-linux) is needed to build a layout in a private mount namespace',
    'upstream runtime-spec schema not present (/x/config-schema.json; set STOCKADE_OCI_SCHEMA to its directory): nothing to cross-check against',
  ]) assert.ok(acceptedSkip(reason) !== undefined, reason);
  for (const reason of [
    'stockade-init is not built (/x/build/Release/stockade-init): run npm run build',
    'the light entry is not built (/x/dist/stockade-light): run npm run build',
    'dist/stockade-main.cache is not built (npm run build)',
    'docker could not start here: dockerd exited 1',
    'pause is not available here: stockade: cannot pause',
    'gcc failed: loader.c:3: error',
    'the attacker would be built under /tmp/x/test/fixtures, which stockade do hides from the container',
    '',
  ]) assert.equal(acceptedSkip(reason), undefined, reason);
  for (const a of ACCEPTED_SKIPS) assert.ok(a.why.length > 10, `${a.reason.source} says why it is a machine limit`);
});

test('the run\'s skip report names each skip and its verdict, and counts the unaccepted', () => {
  let out = '';
  const n = reportSkips([
    { file: '/r/dist-test/test/a.test.js', path: ['suite', 'case'], reason: 'x32 is an x86_64 ABI' },
    { file: '/r/dist-test/test/b.test.js', path: ['other'], reason: 'docker could not start here' },
  ], '/r', (s) => { out += s; });
  assert.equal(n, 1);
  assert.match(out, /dist-test\/test\/a\.test\.js: suite > case\n#\s+reason: x32 is an x86_64 ABI\n#\s+accepted: /);
  assert.match(out, /b\.test\.js: other\n#\s+reason: docker could not start here\n#\s+NOT AN ACCEPTED MACHINE LIMIT/);
  assert.match(out, /1 skip\(s\) for a reason that is not an accepted machine limit/);
});

test('the run prints each file\'s wall time, slowest first, hooks and loading included', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-durations-'));
  try {
    // The slow file's time is in a file-level hook, which no test's duration holds.
    writeFileSync(join(dir, 'slow.test.js'), "const { before, test } = require('node:test');\nbefore(() => new Promise((r) => setTimeout(r, 700)));\ntest('s', () => {});\n");
    writeFileSync(join(dir, 'quick.test.js'), "require('node:test').test('q', () => {});\n");
    // Without NODE_TEST_CONTEXT, which would make the inner runner report to this one instead.
    const env = { ...process.env };
    delete env['NODE_TEST_CONTEXT'];
    const r = spawnSync(process.execPath, [join(__dirname, '..', '..', 'ci', 'run-suite.js'), join(dir, 'quick.test.js'), join(dir, 'slow.test.js')], { encoding: 'utf8', cwd: dir, env });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const m = /# time per file \(2 files, [\d.]+ s in all\), slowest first:\n#\s+([\d.]+) s  slow\.test\.js\n#\s+([\d.]+) s  quick\.test\.js\n/.exec(r.stdout);
    assert.ok(m !== null, r.stdout);
    assert.ok(Number(m[1]) >= 0.7, `slow.test.js: ${m[1]} s`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('no test skips itself from inside its body: a skip is declared with the test, from a check of the machine', () => {
  const found: string[] = [];
  for (const file of tsSources(join(packageRoot(), 'test'))) {
    if (file.endsWith(join('unit', 'ci', 'skips.test.ts'))) continue;
    readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
      if (/\bt\.(?:skip|todo)\(/.test(line)) found.push(`${file}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(found, []);
});
