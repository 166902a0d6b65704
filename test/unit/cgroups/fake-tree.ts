// Fake cgroup file systems in a temp directory: a layout pointing at them and cgroups with preset files.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hierarchy, Layout } from '../../../src/cgroups/layout';

export class FakeTree {
  readonly root = mkdtempSync(join(tmpdir(), 'stockade-cg-'));
  remove(): void { rmSync(this.root, { recursive: true, force: true }); }

  /** A directory (relative to the tree) holding `files`; cgroupfs would make them on mkdir. */
  cgroup(rel: string, files: Record<string, string>): string {
    const dir = join(this.root, rel);
    mkdirSync(dir, { recursive: true });
    for (const [f, v] of Object.entries(files)) writeFileSync(join(dir, f), v);
    return dir;
  }

  read(rel: string): string { return readFileSync(join(this.root, rel), 'utf8'); }

  v1(controllers: string[][], ownPaths: Record<string, string> = {}): Hierarchy[] {
    return controllers.map((c) => ({ version: 1 as const, mountpoint: join(this.root, c.join(',')), controllers: c, ownPath: ownPaths[c.join(',')] ?? '/' }));
  }

  unified(rel: string, controllers: string[], ownPath = '/'): Hierarchy {
    return { version: 2, mountpoint: join(this.root, rel), controllers, ownPath };
  }

  layout(mode: Layout['mode'], v1: Hierarchy[], unified?: Hierarchy): Layout {
    return { mode, v1, unified };
  }
}
