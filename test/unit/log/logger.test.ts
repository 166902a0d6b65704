// The --log lines: runc's logrus formats, which containerd's shim decodes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatLine } from '../../../src/log/logger';

test('text: logfmt with time (RFC 3339, to the second, quoted), level, msg, then the fields, quoted by logrus\'s rule', () => {
  const line = formatLine('text', 'error', 'container c1 does not exist', { code: 'CONTAINER_NOT_FOUND', id: 'c1', path: '/a b', empty: '', skipped: undefined });
  assert.match(line, /^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" level=error msg="container c1 does not exist" code=CONTAINER_NOT_FOUND id=c1 path="\/a b" empty=$/);
  assert.match(formatLine('text', 'debug', 'a.b/c@d^e+f-g_h'), / msg=a\.b\/c@d\^e\+f-g_h$/, 'logrus leaves these unquoted');
  assert.match(formatLine('text', 'warning', 'k:v'), / level=warning msg="k:v"$/);
});

test('json: level, msg and time that a Go decoder takes as RFC 3339; a field cannot overwrite them', () => {
  const entry = JSON.parse(formatLine('json', 'error', 'boom', { time: 5, level: 'x', msg: 'y', pid: 7 })) as Record<string, unknown>;
  assert.equal(entry['level'], 'error');
  assert.equal(entry['msg'], 'boom');
  assert.match(String(entry['time']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.deepEqual([entry['fields.time'], entry['fields.level'], entry['fields.msg'], entry['pid']], [5, 'x', 'y', 7]);
});
