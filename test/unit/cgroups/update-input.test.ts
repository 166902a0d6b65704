// What update, events and ps take from their command line: sizes, durations, resources JSON, ps tables.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, parseMemory } from '../../../src/cli/units';
import { filterPsTable } from '../../../src/container/ps';
import { mergeResources, parseResources } from '../../../src/container/update';

test('memory sizes take runc\'s suffixes, binary multiples, and -1', () => {
  assert.equal(parseMemory('1024', 'memory'), 1024);
  assert.equal(parseMemory('64m', 'memory'), 64 << 20);
  assert.equal(parseMemory('1.5g', 'memory'), 1.5 * 2 ** 30);
  assert.equal(parseMemory('2KiB', 'memory'), 2048);
  assert.equal(parseMemory('3MB', 'memory'), 3 << 20);
  assert.equal(parseMemory('-1', 'memory-swap'), -1);
  assert.throws(() => parseMemory('lots', 'memory'), /--memory: invalid size "lots"/);
});

test('durations as Go writes them', () => {
  assert.equal(parseDuration('5s', 'interval'), 5000);
  assert.equal(parseDuration('250ms', 'interval'), 250);
  assert.equal(parseDuration('1m30s', 'interval'), 90_000);
  assert.equal(parseDuration('1500µs', 'interval'), 1.5);
  assert.equal(parseDuration('1500us', 'interval'), 1.5);
  assert.throws(() => parseDuration('5', 'interval'), /--interval: invalid duration "5"/);
});

test('resources JSON from Docker: nulls mean unset, wrong types are named', () => {
  const r = parseResources({ memory: { limit: 1048576, swap: null }, cpu: { shares: 512, cpus: '' }, blockIO: null }, 'stdin');
  assert.deepEqual(r, { memory: { limit: 1048576 }, cpu: { shares: 512, cpus: '' } });
  assert.throws(() => parseResources({ memory: { limit: '1g' } }, 'stdin'), /stdin: memory\.limit must be a number, not "1g"/);
  assert.throws(() => parseResources([], 'stdin'), /must be a JSON object/);
});

test('an update lays its fields over the stored ones', () => {
  const merged = mergeResources({ memory: { limit: 1, swap: 2 }, pids: { limit: 5 }, devices: [{ allow: false }] }, { memory: { limit: 3 }, cpu: { shares: 9 } });
  assert.deepEqual(merged, { memory: { limit: 3, swap: 2 }, pids: { limit: 5 }, devices: [{ allow: false }], cpu: { shares: 9 } });
});

test('ps table: the header and the container\'s rows only, whatever column PID is in', () => {
  const out = 'UID   PID  PPID CMD\nroot    1     0 init\nroot   42     1 sleep 100\nroot  420     1 other\n';
  assert.equal(filterPsTable(out, [42]), 'UID   PID  PPID CMD\nroot   42     1 sleep 100\n');
  assert.equal(filterPsTable('  PID TTY CMD\n 42 ? sh\n', [42]), '  PID TTY CMD\n 42 ? sh\n');
  assert.throws(() => filterPsTable('USER COMMAND\n', [1]), /no PID column/);
});
