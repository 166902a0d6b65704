// Writes dist/stockade-main.cache: the V8 code cache of the bundled CLI after a warm-up run (see src/cli/bundle-loader.ts).
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runBundle } from '../cli/bundle-loader';

if (require.main === module) {
  const dist = join(__dirname, '..');
  const bundle = runBundle(join(dist, 'stockade-main.js'), undefined, false);
  const warmUp = (bundle.exports as { warmUp?: unknown }).warmUp;
  if (typeof warmUp !== 'function') throw new Error('the bundle exports no warmUp()');
  warmUp();
  const out = join(dist, 'stockade-main.cache');
  const tmp = `${out}.tmp-${process.pid}`;
  writeFileSync(tmp, bundle.script.createCachedData());
  renameSync(tmp, out);
}
