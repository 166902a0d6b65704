// Locates the native binaries the TypeScript side starts.
import { join } from 'node:path';
import { packageRoot } from '../loader/package-root';

// Re-exported so the tests and callers that find native parts keep one import.
export { packageRoot };

export function initBinary(): string {
  return process.env['STOCKADE_INIT'] ?? join(packageRoot(), 'build', 'Release', 'stockade-init');
}
