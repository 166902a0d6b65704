// Container ids, signals and the status transition table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseContainerId } from '../../../src/container/id';
import { parseSignal } from '../../../src/container/signals';
import { assertCanPerform, canPerform } from '../../../src/container/status';

test('ids: runc characters only, no path escapes', () => {
  assert.equal(parseContainerId('abc-1.2_x+y'), 'abc-1.2_x+y');
  for (const bad of ['a/b', '..', '.', 'a b', 'a\nb', '../x', 'é']) {
    assert.throws(() => parseContainerId(bad), /invalid container id/, bad);
  }
  assert.throws(() => parseContainerId(''), /cannot be empty/);
});

test('signals: names with and without SIG, numbers, real-time', () => {
  assert.equal(parseSignal('TERM'), 15);
  assert.equal(parseSignal('SIGKILL'), 9);
  assert.equal(parseSignal('sigusr1'), 10);
  assert.equal(parseSignal('9'), 9);
  assert.equal(parseSignal('RTMIN+2'), 36);
  assert.equal(parseSignal('SIGRTMAX'), 64);
  for (const bad of ['SIGFOO', '0', '65', 'RTMIN+40', '']) assert.throws(() => parseSignal(bad), /unknown signal/, bad);
});

test('transitions: the table refuses and names from and to', () => {
  assert.equal(canPerform('start', 'created'), true);
  assert.equal(canPerform('start', 'running'), false);
  assert.equal(canPerform('delete', 'running'), false);
  assert.equal(canPerform('kill', 'stopped'), false);
  assert.throws(() => assertCanPerform('start', 'running', 'c1'), /cannot start container c1: it is running \(start needs created\)/);
});
