// package.json names only files the package has.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/native/paths';

test('package.json main and bin name files that exist', () => {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { main?: string; bin?: Record<string, string> };
  for (const file of [...(pkg.main === undefined ? [] : [pkg.main]), ...Object.values(pkg.bin ?? {})]) {
    assert.ok(existsSync(join(packageRoot(), file)), `package.json names ${file}, which does not exist`);
  }
});
