#!/usr/bin/env node
// npm's install step. In a checkout (src/ and the dev dependencies there) the whole build runs.
// Installed from a packed tarball, dist/ and the generated C headers come built (prepack made
// them): only the native parts are compiled, with the node-gyp npm itself puts on PATH for
// install scripts, and the CLI's code cache is made; no dev dependency is needed.
'use strict';
const { spawnSync } = require('node:child_process');
const { existsSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const checkout = existsSync(join(root, 'src')) && existsSync(join(root, 'node_modules', 'typescript'));
const steps = checkout ? [['npm', ['run', 'build']]] : [['node-gyp', ['rebuild', '--jobs', 'max']], ['node', ['dist/tools/gen-code-cache.js']]];
for (const [cmd, args] of steps) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error !== undefined) {
    console.error(`stockade install: ${cmd}: ${r.error.message}`);
    process.exit(1);
  }
  if (r.status !== 0) process.exit(r.status ?? 1);
}
