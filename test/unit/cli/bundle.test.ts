// The CLI bundle and its build-time V8 code cache: the cache must be one V8 accepts, or every call pays to compile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
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
