// The runc-style flag parser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, str, bool, list, type FlagSpec } from '../../../src/cli/args';

const FLAGS: FlagSpec[] = [
  { name: 'bundle', type: 'string', short: 'b' },
  { name: 'detach', type: 'bool', short: 'd' },
  { name: 'env', type: 'list', short: 'e' },
  { name: 'preserve-fds', type: 'int' },
];

test('long, single-dash, = and short forms all parse', () => {
  const p = parseArgs(['--bundle', '/b', '-detach', '-e', 'A=1', '--env=B=2', 'id'], FLAGS, 'x');
  assert.equal(str(p, 'bundle'), '/b');
  assert.equal(bool(p, 'detach'), true);
  assert.deepEqual(list(p, 'env'), ['A=1', 'B=2']);
  assert.deepEqual(p.positional, ['id']);
  assert.equal(str(parseArgs(['-b=/c'], FLAGS, 'x'), 'bundle'), '/c');
  assert.equal(bool(parseArgs(['--detach=false'], FLAGS, 'x'), 'detach'), false);
});

test('flags may follow positionals unless parsing stops after them', () => {
  assert.equal(str(parseArgs(['id', '--bundle', '/b'], FLAGS, 'x'), 'bundle'), '/b');
  const p = parseArgs(['-d', 'id', 'sh', '-c', '--bundle'], FLAGS, 'x', { stopAfterPositionals: 1 });
  assert.deepEqual(p.positional, ['id', 'sh', '-c', '--bundle']);
  assert.deepEqual(parseArgs(['--', '-d'], FLAGS, 'x').positional, ['-d']);
});

test('bad flags name themselves', () => {
  assert.throws(() => parseArgs(['--nope'], FLAGS, 'create'), /create: unknown flag --nope/);
  assert.throws(() => parseArgs(['--bundle'], FLAGS, 'create'), /--bundle needs a value/);
  assert.throws(() => parseArgs(['--preserve-fds', 'x'], FLAGS, 'create'), /--preserve-fds needs an integer/);
  assert.throws(() => parseArgs(['--detach=yes'], FLAGS, 'create'), /takes true or false/);
});
