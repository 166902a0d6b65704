// The CLI bundle and its build-time V8 code cache: the cache must be one V8 accepts, or every call pays to compile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runBundle } from '../../../src/loader/bundle-loader';
import { packageRoot } from '../../../src/native/paths';

const dist = join(packageRoot(), 'dist');
const bundle = join(dist, 'stockade-main.js');
const cache = join(dist, 'stockade-main.cache');

test('the bundle loads with its code cache accepted, without starting the CLI', { skip: !existsSync(cache) && 'dist/stockade-main.cache is not built (npm run build)' }, () => {
  const loaded = runBundle(bundle, cache, false);
  assert.equal(loaded.codeCache, 'accepted');
  const exports = loaded.exports as { main?: unknown; warmUp?: unknown };
  assert.equal(typeof exports.main, 'function');
  assert.equal(typeof exports.warmUp, 'function');
});

test('a damaged cache is rejected and the bundle still runs', () => {
  const loaded = runBundle(bundle, __filename, false);
  assert.equal(loaded.codeCache, 'rejected');
  assert.equal(typeof (loaded.exports as { main?: unknown }).main, 'function');
});

// V8 decodes a source file byte by byte from its first non-ASCII character on, and keeps it as two
// bytes a character: one µ in the middle of the CLI's bundle cost every call some 10 million
// instructions (callgrind) before a line of it ran.
test('the bundles are ASCII', { skip: !existsSync(cache) && 'the bundles are not built (npm run build)' }, () => {
  for (const name of ['stockade-main.js', 'stockade-sentryd.js', 'stockade-planner.js', 'stockade-vmkeeper.js']) {
    const text = readFileSync(join(dist, name), 'latin1');
    const at = text.search(/[^\x00-\x7f]/);
    assert.equal(at, -1, `${name}: a non-ASCII byte at ${at}: ${JSON.stringify(text.slice(Math.max(0, at - 60), at + 20))} (write it as an escape)`);
  }
});

// node:fs/promises brings the readline internals with it: loaded at start, it cost every call some
// milliseconds (issue 19's cold do) for a delete only the SDK makes. Read in a fresh process: the
// test runner has loaded it in this one.
test('loading the bundle loads no node:fs/promises', { skip: !existsSync(cache) && 'dist/stockade-main.cache is not built (npm run build)' }, () => {
  const script = `require(${JSON.stringify(join(dist, 'loader', 'bundle-loader.js'))}).runBundle(${JSON.stringify(bundle)}, ${JSON.stringify(cache)}, false);
process.stdout.write(JSON.stringify(process.moduleLoadList.filter((m) => /fs\\/promises|readline/.test(m))));`;
  const loaded = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as string[];
  assert.deepEqual(loaded, []);
});
