// Runs a CommonJS module's source through vm.Script, so a V8 code cache built beside it can be
// used: Node 20's require() keeps none. The config validator (src/oci/validator-loader.ts) and
// the bundled CLI (src/loader/bundle-loader.ts) load this way. A cache V8 rejects (another Node,
// other V8 flags) costs only speed.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Script } from 'node:vm';

/** The CommonJS wrapper; a generator compiles the same text so the cache matches. */
export function wrapModuleSource(source: string): string {
  return `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
}

export interface RanModule {
  exports: unknown;
  script: Script;
  codeCache: 'accepted' | 'rejected' | 'absent';
}

/**
 * Compiles and runs a module's source. Its require() resolves from the file's own location, as
 * Node's would. `asMain` makes `require.main === module` hold inside it.
 */
export function runModuleSource(file: string, source: string, cachedData?: Buffer, asMain = false): RanModule {
  const options = cachedData === undefined ? { filename: file } : { filename: file, cachedData };
  const script = new Script(wrapModuleSource(source), options);
  const wrapper: unknown = script.runInThisContext();
  if (typeof wrapper !== 'function') throw new Error(`${file}: module wrapper did not compile to a function`);
  const module = { exports: {} as unknown };
  const req = createRequire(file);
  if (asMain) req.main = module as NodeJS.Module;
  wrapper.call(module.exports, module.exports, req, module, file, dirname(file));
  const codeCache = cachedData === undefined ? 'absent' : script.cachedDataRejected === true ? 'rejected' : 'accepted';
  return { exports: module.exports, script, codeCache };
}
