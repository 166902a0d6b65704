// Finds the directory that holds package.json, from dist/ or dist-test/ alike, so every layer can
// locate the package's built files (generated validators, bundles, native binaries).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

let root: string | undefined;

/** The directory holding package.json: dist/loader -> ../.., dist-test/src/loader -> ../../.. */
export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`cannot find the stockade package root above ${__dirname}`);
    dir = up;
  }
  root = dir;
  return dir;
}
