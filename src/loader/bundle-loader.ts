// Runs the bundled CLI (dist/stockade-main.js) with the V8 code cache built beside it, so a call
// does not compile 400 KB of JavaScript before doing anything.
//
// The cache is made at build time by src/tools/gen-code-cache.ts after a warm-up run of the same
// source, so it holds the functions a create compiles too.
import { readFileSync } from 'node:fs';
import { runModuleSource, type RanModule } from './module-source';

/** Compiles and runs the bundle; `asMain` is what starts the CLI (`require.main === module`). */
export function runBundle(file: string, cacheFile: string | undefined, asMain: boolean): RanModule {
  let cachedData: Buffer | undefined;
  try {
    if (cacheFile !== undefined) cachedData = readFileSync(cacheFile);
  } catch { /* absent: compiled from source */ }
  return runModuleSource(file, readFileSync(file, 'utf8'), cachedData, asMain);
}
