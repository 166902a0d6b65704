// The closed sets in spec.ts are upstream's enums, so types, features and checks agree with it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CONTAINER_STATUSES, IO_PRIORITY_CLASSES, MEMORY_POLICY_FLAGS, MEMORY_POLICY_MODES, NAMESPACE_TYPES,
  PERSONALITY_DOMAINS, ROOTFS_PROPAGATIONS, SCHEDULER_FLAGS, SCHEDULER_POLICIES, SECCOMP_ACTIONS, SECCOMP_ARCHS,
  SECCOMP_FLAGS, SECCOMP_OPERATORS, HOOK_NAMES,
} from '../../../src/oci/spec';
import { referenceSchemaMissing, schemaDir } from './helpers';

function schema(name: string): unknown {
  return JSON.parse(readFileSync(join(schemaDir(), name), 'utf8'));
}

function at(node: unknown, ...path: string[]): unknown {
  return path.reduce<unknown>((n, key) => (typeof n === 'object' && n !== null ? (n as Record<string, unknown>)[key] : undefined), node);
}

test('enums in spec.ts equal the upstream schema enums', { skip: referenceSchemaMissing() }, () => {
  const linuxDefs = schema('defs-linux.json');
  const def = (name: string): unknown => at(linuxDefs, 'definitions', name, 'enum');
  assert.deepEqual(NAMESPACE_TYPES, def('NamespaceType'));
  assert.deepEqual(ROOTFS_PROPAGATIONS, def('RootfsPropagation'));
  assert.deepEqual(SECCOMP_ACTIONS, def('SeccompAction'));
  assert.deepEqual(SECCOMP_OPERATORS, def('SeccompOperators'));
  assert.deepEqual(SECCOMP_ARCHS, def('SeccompArch'));
  assert.deepEqual(SECCOMP_FLAGS, def('SeccompFlag'));
  assert.deepEqual(SCHEDULER_POLICIES, def('SchedulerPolicy'));
  assert.deepEqual(SCHEDULER_FLAGS, def('SchedulerFlag'));
  assert.deepEqual(MEMORY_POLICY_MODES, def('MemoryPolicyMode'));
  assert.deepEqual(MEMORY_POLICY_FLAGS, def('MemoryPolicyFlag'));
  assert.deepEqual(PERSONALITY_DOMAINS, def('PersonalityDomain'));
  const config = schema('config-schema.json');
  assert.deepEqual(IO_PRIORITY_CLASSES, at(config, 'properties', 'process', 'properties', 'ioPriority', 'properties', 'class', 'enum'));
  assert.deepEqual(HOOK_NAMES, Object.keys(at(config, 'properties', 'hooks', 'properties') as object));
  assert.deepEqual(CONTAINER_STATUSES, at(schema('state-schema.json'), 'properties', 'status', 'enum'));
});
