// locateJsonSyntaxError agrees with JSON.parse on what is valid.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { locateJsonSyntaxError } from '../../../src/oci/json-syntax';

const VALID = [
  '{}', '[]', '0', '-0.5e+10', '"\\u00e9\\n"', 'true', ' null ', '{"a":[1,{"b":false}],"c":"d"}',
  '\n\t{\r\n"k" : [ ] }\n', '1E5', '-12.25E-3', `[${'9'.repeat(1000)}]`,
];
const INVALID = [
  '', ' ', '{', '[', '{"a"}', '{"a":}', '[1,]', '{,}', '01', '1.', '.5', '-', '+1', '1e', 'tru', 'nul', 'True',
  '"a', '"\\x"', '"\\u12"', '{"a":1}}', '[1 2]', "'a'", 'NaN', 'Infinity', '"a\nb"', '{"a":1,}', '[]]', '\u00a0{}',
];

test('valid JSON is valid to the locator', () => {
  for (const text of VALID) {
    JSON.parse(text);
    assert.equal(locateJsonSyntaxError(text), undefined, text);
  }
});

test('invalid JSON is located, inside the text', () => {
  for (const text of INVALID) {
    assert.throws(() => JSON.parse(text), SyntaxError, text);
    const found = locateJsonSyntaxError(text);
    assert.ok(found !== undefined, text);
    assert.ok(found.offset >= 0 && found.offset <= text.length, text);
    assert.ok(found.reason.length > 0 && !found.reason.includes('\n'), text);
  }
});
