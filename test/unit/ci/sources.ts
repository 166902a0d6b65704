// The TypeScript files below a directory, for the suite's checks that read test sources.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

/** Every .ts file below dir, at any depth. */
export function tsSources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...tsSources(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}
