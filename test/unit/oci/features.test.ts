// The features document: valid against the runtime-spec's features schema, and true to stockade's tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv-draft-04';
import { CAPABILITIES } from '../../../src/abi/linux/constants';
import { featuresDocument, packageVersion } from '../../../src/oci/features';
import { SUPPORTED_MOUNT_OPTIONS } from '../../../src/oci/mount-options';
import { referenceSchemaMissing, schemaDir } from './helpers';

function featuresValidator(): ReturnType<Ajv['compile']> {
  const ajv = new Ajv({ allErrors: true, strict: false });
  const dir = schemaDir();
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    ajv.addSchema(JSON.parse(readFileSync(join(dir, name), 'utf8')) as object, name);
  }
  const validate = ajv.getSchema('features-schema.json');
  assert.ok(validate !== undefined);
  return validate;
}

test('the features document validates against features-schema.json', { skip: referenceSchemaMissing() }, () => {
  const validate = featuresValidator();
  const doc: unknown = JSON.parse(JSON.stringify(featuresDocument()));
  assert.ok(validate(doc), JSON.stringify(validate.errors));
});

test('features: versions, hooks, and lists taken from the runtime tables', () => {
  const f = featuresDocument({ version: '9.9.9' });
  assert.equal(f.ociVersionMin, '1.0.0');
  assert.equal(f.ociVersionMax, '1.3.0');
  assert.deepEqual(f.hooks, ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']);
  assert.deepEqual(f.mountOptions, SUPPORTED_MOUNT_OPTIONS);
  assert.deepEqual(f.linux.capabilities, CAPABILITIES);
  assert.deepEqual(f.annotations, { 'dev.stockade.version': '9.9.9' });
  assert.equal(f.linux.mountExtensions.idmap.enabled, false);
  assert.equal(f.linux.cgroup.systemd, false);
  assert.ok(!f.mountOptions.includes('idmap') && f.mountOptions.includes('tmpcopyup'));
});

test('features: the seccomp compiler can state its own lists', () => {
  const f = featuresDocument({ version: '0', seccomp: { archs: ['SCMP_ARCH_X86_64'], supportedFlags: [] } });
  assert.deepEqual(f.linux.seccomp.archs, ['SCMP_ARCH_X86_64']);
  assert.deepEqual(f.linux.seccomp.supportedFlags, []);
  assert.equal(f.linux.seccomp.enabled, true);
  if (referenceSchemaMissing() === false) assert.ok(featuresValidator()(JSON.parse(JSON.stringify(f))));
});

test('features: the version defaults to package.json', () => {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  assert.equal(packageVersion(), pkg.version);
  assert.equal(featuresDocument().annotations['dev.stockade.version'], pkg.version);
});
