// The package as a program imports it: `import { Sandbox } from 'stockade'` resolves through
// package.json's exports to dist/sdk (its own .d.ts for the types), and the examples type-check
// against those types and run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/native/paths';
import { integrationSkip } from './harness';

const root = packageRoot();

test("package.json's entry, types and exports name the SDK's built files", () => {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { main: string; types: string; exports: Record<string, { types: string; default: string }> };
  assert.equal(pkg.main, 'dist/sdk/index.js');
  assert.equal(pkg.types, 'dist/sdk/index.d.ts');
  assert.deepEqual(pkg.exports['.'], { types: './dist/sdk/index.d.ts', default: './dist/sdk/index.js' });
  for (const f of [pkg.main, pkg.types]) assert.ok(existsSync(join(root, f)), `${f} is built`);
  const dts = readFileSync(join(root, pkg.types), 'utf8');
  for (const name of ['Sandbox', 'SandboxTimeoutError', 'SandboxExitError', 'SandboxOutOfMemoryError', 'SandboxOptions', 'ExecResult']) assert.match(dts, new RegExp(`\\b${name}\\b`));
  // What `require('stockade')` gives, resolved by name as a dependent's would be.
  const r = spawnSync(process.execPath, ['-e', 'const s = require("stockade"); console.log(typeof s.Sandbox.create, typeof s.SandboxTimeoutError)'], { cwd: root, encoding: 'utf8' });
  assert.equal(r.stdout, 'function function\n', r.stderr);
});

test('the examples type-check against the package\'s own .d.ts, and hello runs in five lines', { skip: integrationSkip() }, () => {
  const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'examples')], { encoding: 'utf8' });
  assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
  const src = readFileSync(join(root, 'examples/hello.ts'), 'utf8');
  const body = src.slice(src.indexOf('{', src.indexOf('async function main')) + 1, src.indexOf('\n}'));
  assert.equal(body.trim().split('\n').length, 3, 'create, exec, read: the user code of hello is three lines in a function');
  // As root itself: started through sudo the command would be the user who ran it (as `do`'s is).
  const { SUDO_UID: _uid, SUDO_GID: _gid, ...env } = process.env;
  const run = spawnSync(process.execPath, [join(root, 'examples/dist/hello.js')], { encoding: 'utf8', timeout: 60_000, env });
  assert.equal(run.stdout, '0 hello from stockade, uid 65534\n', run.stderr);
});
