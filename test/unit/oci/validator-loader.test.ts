// The generated validators: present, requiring only Ajv's runtime, loaded with an accepted code cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { loadValidator } from '../../../src/oci/validator-loader';
import { defaultSpec } from '../../../src/oci/default-spec';

test('the config validator loads with its code cache accepted', () => {
  const loaded = loadValidator('config-validator');
  assert.equal(loaded.codeCache, 'accepted', `${loaded.file}: V8 rejected the code cache`);
  assert.equal(loaded.validate(defaultSpec()), true);
  assert.equal(loaded.validate({}), false);
  assert.equal(loaded.validate.errors?.[0]?.keyword, 'required');
});

test('the state validator loads', () => {
  const loaded = loadValidator('state-validator');
  assert.equal(loaded.validate({ ociVersion: '1.3.0', id: 'x', status: 'created', bundle: '/b' }), true);
});

test('generated code requires nothing but Ajv runtime helpers', () => {
  for (const name of ['config-validator', 'state-validator'] as const) {
    const code = readFileSync(loadValidator(name).file, 'utf8');
    for (const m of code.matchAll(/require\(([^)]*)\)/g)) assert.match(m[1] ?? '', /^"ajv\/dist\/runtime\//, `${name}: ${m[0]}`);
  }
});
