// Locates the package's built artifacts from dist/ or dist-test/ alike.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

let root: string | undefined;

/** The directory holding package.json: dist/native -> ../.., dist-test/src/native -> ../../.. */
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

export function initBinary(): string {
  return process.env['STOCKADE_INIT'] ?? join(packageRoot(), 'build', 'Release', 'stockade-init');
}
