// The registry is the one list of levels: the lifecycle and the CLI never compare against a level's
// name, and everything that lists levels (--isolation, do, the annotation, features, help) reads it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../../src/native/paths';
import { availableLevels, DEFAULT_LEVEL, LEVELS, levelEntry, levelNames, levelRegistry } from '../../../src/levels/registry';
import { Logger } from '../../../src/log/logger';
import { featuresDocument } from '../../../src/oci/features';

const NAMES = ['namespaces', 'sentry', 'vm'];

/** A comparison against a level's name: ===, !==, ==, != on either side, a case label, or includes(). */
const COMPARISON = new RegExp([
  `(?:===?|!==?)\\s*['"\`](?:${NAMES.join('|')})['"\`]`,
  `['"\`](?:${NAMES.join('|')})['"\`]\\s*(?:===?|!==?)`,
  `\\bcase\\s+['"\`](?:${NAMES.join('|')})['"\`]`,
  `\\.includes\\(\\s*['"\`](?:${NAMES.join('|')})['"\`]`,
].join('|'));

test('the comparison pattern catches what the lifecycle and the CLI used to do', () => {
  for (const line of [
    "if (record.isolation !== 'sentry') {",
    "if (name !== 'namespaces' && name !== 'sentry') {",
    "if (isolation === 'vm') throw",
    "case 'sentry': return",
    "'namespaces' === name",
  ]) assert.match(line, COMPARISON, line);
  assert.doesNotMatch("isolation: level.name,", COMPARISON);
});

test('no file of src/container or src/cli compares against a level\'s name', () => {
  const found: string[] = [];
  for (const dir of ['container', 'cli']) {
    const abs = join(packageRoot(), 'src', dir);
    for (const name of readdirSync(abs).filter((n) => n.endsWith('.ts'))) {
      readFileSync(join(abs, name), 'utf8').split('\n').forEach((line, i) => {
        if (COMPARISON.test(line)) found.push(`src/${dir}/${name}:${i + 1}: ${line.trim()}`);
      });
    }
  }
  assert.deepEqual(found, [], 'the lifecycle branches on a level: ask the registry entry or the driver instead');
});

test('the registry lists every level once; vm is listed, available, and not served by the light entry', () => {
  assert.deepEqual(levelNames(), NAMES);
  assert.ok(levelNames().includes(DEFAULT_LEVEL));
  assert.equal(levelEntry(DEFAULT_LEVEL)?.unavailable, undefined);
  const vm = levelEntry('vm');
  assert.ok(vm !== undefined);
  assert.equal(vm.unavailable, undefined);
  assert.equal(vm.light, false, 'a VM workload is no host process the light entry can read');
  assert.deepEqual(availableLevels(), ['namespaces', 'sentry', 'vm']);
  for (const l of LEVELS) assert.ok(l.help.length > 0 && !l.help.includes('\n'), `${l.name}: one help line`);
  const levels = levelRegistry({ log: new Logger(undefined, 'text', false), root: '/nonexistent' }, DEFAULT_LEVEL);
  assert.equal(levels.driver('vm').name, 'vm');
  assert.throws(() => levels.driver('nope'), /level "nope" is not one this build knows: namespaces, sentry, vm/);
  const ns = levels.driver('namespaces');
  assert.equal(ns.name, 'namespaces');
  assert.equal(levels.driver('namespaces'), ns, 'a driver is loaded once per call');
  // Loading the sentry's driver compiles nothing: its supervisor comes with the first create or exec.
  assert.equal(levels.driver('sentry').name, 'sentry');
});

test('features reports the levels this build can run, as the annotation takes them', () => {
  assert.equal(featuresDocument({ version: '1', levels: availableLevels() }).annotations['dev.stockade.isolation.levels'], 'namespaces,sentry,vm');
});
