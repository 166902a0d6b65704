// Shared fixtures for the OCI layer's tests: the upstream schema directory and configs that fail on purpose.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { isStockadeError } from '../../../src/errors/index';
import { defaultSpec } from '../../../src/oci/default-spec';
import type { Spec } from '../../../src/oci/spec';
import { parseConfig } from '../../../src/oci/validate';

const SCHEMA = join('shared', 'oci-schema', 'runtime-spec-v1.3.0');

/**
 * Where upstream's runtime-spec v1.3.0 schema may sit: $STOCKADE_OCI_SCHEMA, else ../shared beside
 * the checkout (the test build is at dist-test/test/unit/oci), else ../shared beside the repository
 * the checkout belongs to (git's common directory), which a worktree or a copy of one keeps from
 * anywhere, /tmp included. The project does not need it: it owns its schema (src/oci/schema.ts);
 * tests that compare with upstream use it where present.
 */
export function schemaDir(): string {
  const env = process.env['STOCKADE_OCI_SCHEMA'];
  if (env !== undefined) return env;
  const beside = resolve(__dirname, '..', '..', '..', '..', '..', SCHEMA);
  if (existsSync(beside)) return beside;
  const common = spawnSync('git', ['-C', __dirname, 'rev-parse', '--path-format=absolute', '--git-common-dir'], { encoding: 'utf8' });
  const viaGit = common.status === 0 && common.stdout.trim() !== '' ? resolve(dirname(dirname(common.stdout.trim())), SCHEMA) : undefined;
  return viaGit !== undefined && existsSync(viaGit) ? viaGit : beside;
}

/** Why a test that compares with the upstream schema cannot run here, or false when it can. */
export function referenceSchemaMissing(): string | false {
  const file = join(schemaDir(), 'config-schema.json');
  return existsSync(file) ? false
    : `upstream runtime-spec schema not present (${file}; set STOCKADE_OCI_SCHEMA to its directory): nothing to cross-check against`;
}

/** A fresh, valid config to break: `stockade spec`'s output. */
export function baseSpec(): Spec {
  return defaultSpec();
}

/** Asserts that parseConfig refuses `value` with a one-line message naming `field`. */
export function assertRejects(value: unknown, field: string, detail?: RegExp, code = 'CONFIG_INVALID'): void {
  assert.throws(() => parseConfig(JSON.stringify(value), 'config.json'), (e: unknown) => {
    assert.ok(isStockadeError(e), `not a StockadeError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(e.message.startsWith(`config.json: ${field}: `), `message does not name ${field}: ${e.message}`);
    assert.ok(!e.message.includes('\n'), `message spans lines: ${e.message}`);
    if (detail !== undefined) assert.match(e.message, detail);
    assert.equal(e.context['field'], field);
    return true;
  });
}

/** Breaks a copy of the default spec with `mutate`, then asserts the refusal. */
export function assertSpecRejects(mutate: (spec: Spec) => void, field: string, detail?: RegExp, code?: string): void {
  const spec = baseSpec();
  mutate(spec);
  assertRejects(spec, field, detail, code);
}
