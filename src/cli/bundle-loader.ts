// Runs the bundled CLI (dist/stockade-main.js) through vm.Script with the V8 code cache built
// beside it, so a call does not compile 400 KB of JavaScript before doing anything.
//
// Node 20's require() keeps no code cache. The cache is made at build time by
// src/tools/gen-code-cache.ts after a warm-up run of the same source, so it holds the functions a
// create compiles too. A cache V8 rejects (another Node, other flags) costs only speed.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Script } from 'node:vm';

export interface LoadedBundle {
  exports: unknown;
  script: Script;
  codeCache: 'accepted' | 'rejected' | 'absent';
}

/**
 * Compiles and runs the bundle as a CommonJS module. `asMain` makes `require.main === module`
 * hold inside it, which is what starts the CLI.
 */
export function runBundle(file: string, cacheFile: string | undefined, asMain: boolean): LoadedBundle {
  let cachedData: Buffer | undefined;
  try {
    if (cacheFile !== undefined) cachedData = readFileSync(cacheFile);
  } catch { /* absent: compiled from source */ }
  const source = `(function (exports, require, module, __filename, __dirname) {${readFileSync(file, 'utf8')}\n})`;
  const script = new Script(source, cachedData === undefined ? { filename: file } : { filename: file, cachedData });
  const wrapper: unknown = script.runInThisContext();
  if (typeof wrapper !== 'function') throw new Error(`${file}: the bundle did not compile to a function`);
  const module = { exports: {} as unknown };
  const req = createRequire(file);
  if (asMain) req.main = module as NodeJS.Module;
  wrapper.call(module.exports, module.exports, req, module, file, dirname(file));
  const codeCache = cachedData === undefined ? 'absent' : script.cachedDataRejected === true ? 'rejected' : 'accepted';
  return { exports: module.exports, script, codeCache };
}
