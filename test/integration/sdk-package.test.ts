// The package as a program imports it: `import { Sandbox } from 'stockade'` resolves through
// package.json's exports to dist/sdk (its own .d.ts for the types), and the examples type-check
// against those types and run; and as a user installs it: npm pack, npm install of the tarball.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

test('npm pack, then npm install ./stockade-*.tgz in a fresh directory: no dev dependency, no build step of the user\'s; typed and runs', { skip: integrationSkip() }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-sdk-pack-'));
  try {
    // --ignore-scripts: prepack's `npm run build` has been run already (the suite runs after the
    // build), and must not rewrite dist/ under the other test files; the tarball is what pack makes of it.
    const pack = spawnSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], { cwd: root, encoding: 'utf8' });
    assert.equal(pack.status, 0, pack.stderr);
    const tgz = readdirSync(dir).find((f) => /^stockade-.*\.tgz$/.test(f));
    assert.ok(tgz !== undefined, pack.stdout);
    const app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    // The dependencies come from npm's cache (the checkout's own install filled it).
    const install = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', `../${tgz}`], { cwd: app, encoding: 'utf8', timeout: 600_000 });
    assert.equal(install.status, 0, install.stdout + install.stderr);
    const installed = join(app, 'node_modules', 'stockade');
    // The native parts were compiled at install (the package's install script, npm's node-gyp).
    for (const f of ['stockade_addon.node', 'stockade-init', 'stockade-light']) assert.ok(existsSync(join(installed, 'build', 'Release', f)), f);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
    for (const dev of Object.keys(pkg.devDependencies)) assert.equal(existsSync(join(app, 'node_modules', dev)), false, `dev dependency ${dev} was installed`);
    // Typed from the installed package's own .d.ts (the checkout's tsc and Node types, nothing of the package's source).
    writeFileSync(join(app, 'main.ts'), [
      "import { Sandbox, SandboxOutputLimitError } from 'stockade';",
      'async function main(): Promise<void> {',
      "  await using sb = await Sandbox.create({ hostRoot: true, isolation: 'namespaces', root: process.argv[2] as string });",
      "  const r = await sb.exec('echo packed; id -u', { maxBuffer: 1024 });",
      '  console.log(r.exitCode, r.stdout.trim().split(/\\n/).join(" "), typeof SandboxOutputLimitError);',
      '}',
      'void main();',
    ].join('\n'));
    const tsc = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '--strict', '--target', 'ES2022', '--module', 'node16',
      '--moduleResolution', 'node16', '--lib', 'ES2023,esnext.disposable', '--types', 'node', '--typeRoots', join(root, 'node_modules/@types'), 'main.ts'], { cwd: app, encoding: 'utf8' });
    assert.equal(tsc.status, 0, tsc.stdout + tsc.stderr);
    const { SUDO_UID: _uid, SUDO_GID: _gid, ...env } = process.env;
    const run = spawnSync(process.execPath, ['main.js', join(dir, 'state')], { cwd: app, encoding: 'utf8', timeout: 60_000, env });
    assert.equal(run.stdout, '0 packed 65534 function\n', run.stderr);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
