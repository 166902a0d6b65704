// Writes the V8 code caches of the bundles after a warm-up run (see src/loader/bundle-loader.ts):
// dist/stockade-main.cache for the CLI, and dist/stockade-sentryd.cache for the sentry process,
// made in a node started with the sentry's own V8 flags (V8 refuses a cache made under others).
import { spawnSync } from 'node:child_process';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runBundle } from '../loader/bundle-loader';
import { DAEMON_NODE_FLAGS } from '../sentry/daemon-config';

function writeCache(bundleName: string, cacheName: string): void {
  const dist = join(__dirname, '..');
  const bundle = runBundle(join(dist, bundleName), undefined, false);
  const warmUp = (bundle.exports as { warmUp?: unknown }).warmUp;
  if (typeof warmUp !== 'function') throw new Error(`${bundleName} exports no warmUp()`);
  warmUp();
  const out = join(dist, cacheName);
  const tmp = `${out}.tmp-${process.pid}`;
  writeFileSync(tmp, bundle.script.createCachedData());
  renameSync(tmp, out);
}

if (require.main === module) {
  if (process.argv[2] === 'sentryd') {
    writeCache('stockade-sentryd.js', 'stockade-sentryd.cache');
  } else {
    writeCache('stockade-main.js', 'stockade-main.cache');
    const r = spawnSync(process.execPath, [...DAEMON_NODE_FLAGS, __filename, 'sentryd'], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`the sentry's code cache: exit ${r.status ?? r.signal}`);
  }
}
