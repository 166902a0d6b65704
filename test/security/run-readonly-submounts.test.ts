// Issue 22, item 1 for create and run: a host mount that a recursive bind brings along must not
// stay writable below a bind asked read-only. root.readonly made only the root's own mount
// read-only, and "rbind,ro" only the bind's top: a tmpfs mounted below the bundle's rootfs, or
// below a bind source, stayed writable from the container.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime, integrationSkip, probeSpec } from '../integration/harness';

const skip = integrationSkip();

describe('read-only binds are read-only on every submount (create, run)', { skip }, () => {
  let rt: Runtime;
  const mounted: string[] = [];
  const tmpfsAt = (dir: string): void => {
    mkdirSync(dir, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir]);
    mounted.push(dir);
  };
  before(() => { rt = new Runtime(); });
  after(() => {
    for (const d of mounted.reverse()) {
      try { execFileSync('umount', ['-l', d]); } catch { /* gone */ }
    }
    rt.cleanup();
  });

  test('root.readonly: a host tmpfs below the bundle\'s rootfs is read-only in the container', () => {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'touch /data/escaped 2>/dev/null && echo WROTE; touch /etc/x 2>/dev/null && echo WROTE-ROOT; echo done'], (s) => {
      s.root = { path: 'rootfs', readonly: true };
    }));
    tmpfsAt(join(b.rootfs, 'data'));
    const r = rt.run(['run', '--bundle', b.dir, 'ro-root-sub']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'done\n');
    assert.deepEqual(readdirSync(join(b.rootfs, 'data')), []);
  });

  test('an rbind asked ro: a host tmpfs below its source is read-only in the container', () => {
    const src = mkdtempSync(join(rt.root, '..', 'bind-src-'));
    tmpfsAt(join(src, 'inner'));
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'touch /mnt/src/inner/escaped 2>/dev/null && echo WROTE; echo done'], (s) => {
      s.mounts?.push({ destination: '/mnt/src', type: 'bind', source: src, options: ['rbind', 'ro'] });
    }));
    const r = rt.run(['run', '--bundle', b.dir, 'ro-rbind-sub']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'done\n');
    assert.deepEqual(readdirSync(join(src, 'inner')), []);
    rmSync(join(src, 'inner', 'escaped'), { force: true });
  });
});
