// Shared fixtures for the OCI layer's tests: the schema directory and configs that fail on purpose.
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { isStockadeError } from '../../../src/errors/index';
import { defaultSpec } from '../../../src/oci/default-spec';
import type { Spec } from '../../../src/oci/spec';
import { parseConfig } from '../../../src/oci/validate';

/** As the generator resolves it; the test build sits at dist-test/test/unit/oci. */
export function schemaDir(): string {
  return process.env['STOCKADE_OCI_SCHEMA'] ?? resolve(__dirname, '..', '..', '..', '..', '..', 'shared', 'oci-schema', 'runtime-spec-v1.3.0');
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
