// parseConfig and parseState: malformed JSON, schema violations, and what valid input comes back as.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isStockadeError } from '../../../src/errors/index';
import { defaultSpec } from '../../../src/oci/default-spec';
import { MAX_JSON_DEPTH } from '../../../src/oci/input-file';
import { locateExcessNesting } from '../../../src/oci/json-depth';
import { locateJsonSyntaxError } from '../../../src/oci/json-syntax';
import { describeSchemaError, parseConfig, parseJson, parseState, validateConfig } from '../../../src/oci/validate';
import { assertRejects, baseSpec } from './helpers';

function configError(text: string, source = 'config.json'): string {
  try {
    parseConfig(text, source);
  } catch (e) {
    assert.ok(isStockadeError(e));
    assert.equal(e.code, 'CONFIG_INVALID');
    assert.ok(!e.message.includes('\n'), e.message);
    return e.message;
  }
  assert.fail('parseConfig accepted the text');
}

test('malformed JSON: line and column of the first error', () => {
  assert.equal(configError('{\n  "ociVersion": "1.0.0",\n  "process": }\n'),
    'config.json: malformed JSON at line 3 column 14: unexpected character \'}\'');
  assert.equal(configError('{"ociVersion": "1.0.0",}'),
    "config.json: malformed JSON at line 1 column 24: trailing comma before '}'");
  assert.equal(configError('{"a": [1, 2,]}'), "config.json: malformed JSON at line 1 column 13: trailing comma before ']'");
  assert.equal(configError('{"a" 1}'), "config.json: malformed JSON at line 1 column 6: expected ':' after a property name, found character '1'");
  assert.equal(configError("{'a': 1}"), "config.json: malformed JSON at line 1 column 2: expected a property name in double quotes, found character '''");
  assert.equal(configError('{"a": 1 "b": 2}'), "config.json: malformed JSON at line 1 column 9: expected ',' or '}' after a property value, found character '\"'");
  assert.equal(configError('{"a": "x'), 'config.json: malformed JSON at line 1 column 7: unterminated string');
  assert.equal(configError('{"a": tru}'), "config.json: malformed JSON at line 1 column 10: unexpected character '}'");
  assert.equal(configError('{"a": 01}'), 'config.json: malformed JSON at line 1 column 7: invalid number');
  assert.equal(configError('{"a": "\\q"}'), "config.json: malformed JSON at line 1 column 8: invalid escape '\\q' in a string");
  assert.equal(configError('{"a": "tab\there"}'), 'config.json: malformed JSON at line 1 column 11: unescaped control character U+0009 in a string');
  assert.equal(configError(''), 'config.json: malformed JSON at line 1 column 1: unexpected end of input');
  assert.equal(configError('{"a": 1'), 'config.json: malformed JSON at line 1 column 8: unexpected end of input');
  assert.equal(configError('{} x'), "config.json: malformed JSON at line 1 column 4: unexpected character 'x' after the end of the document");
  assert.equal(configError('\ufeff{}'), 'config.json: malformed JSON at line 1 column 1: unexpected character U+FEFF');
  assert.equal(configError('{\r\n\r\n  ]'), "config.json: malformed JSON at line 3 column 3: expected a property name in double quotes, found character ']'");
});

test('malformed JSON: the error carries line and column, and the message uses the given source', () => {
  try {
    parseJson('[1,\n2,,3]', '/bundles/a/config.json');
    assert.fail('accepted');
  } catch (e) {
    assert.ok(isStockadeError(e));
    assert.equal(e.message, "/bundles/a/config.json: malformed JSON at line 2 column 3: unexpected character ','");
    assert.deepEqual(e.context, { source: '/bundles/a/config.json', line: 2, column: 3 });
  }
});

test('malformed JSON: deep nesting does not break the locator', () => {
  const text = `${'['.repeat(100000)}x`;
  assert.deepEqual(locateJsonSyntaxError(text), { offset: 100000, line: 1, column: 100001, reason: "unexpected character 'x'" });
});

test('nesting deeper than the cap is refused before parsing, naming where', () => {
  assert.match(configError(`${'['.repeat(100000)}x`), new RegExp(`^config\\.json: nested deeper than ${MAX_JSON_DEPTH} levels at line 1 column ${MAX_JSON_DEPTH + 1}$`));
  const config = JSON.stringify(baseSpec());
  const nested = (depth: number): string => `${config.slice(0, -1)},\n"x": ${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
  // The document's own braces count: one level for the config, depth for the extension field.
  assert.doesNotThrow(() => parseConfig(nested(MAX_JSON_DEPTH - 1), 'config.json'));
  assert.match(configError(nested(MAX_JSON_DEPTH)), /nested deeper than \d+ levels at line 2 column \d+$/);
});

test('the nesting scanner ignores brackets in strings and escaped quotes', () => {
  assert.equal(locateExcessNesting('["[[[[", "\\"[[[["]', 1), undefined);
  assert.deepEqual(locateExcessNesting('{"a": "]]]", "b": [[1]]}', 2), { line: 1, column: 20 });
  assert.deepEqual(locateExcessNesting('[\n [\n  [', 2), { line: 3, column: 3 });
});

test('schema: wrong type names the field', () => {
  assertRejects({ ...baseSpec(), process: { ...baseSpec().process, args: 'sh' } }, 'process.args', /^config\.json: process\.args: must be array$/);
  assertRejects({ ...baseSpec(), hostname: 7 }, 'hostname', /must be string$/);
});

test('schema: enum errors list the allowed values', () => {
  const spec = baseSpec();
  assertRejects({ ...spec, linux: { ...spec.linux, namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'pidd' }] } },
    'linux.namespaces[2].type',
    /^config\.json: linux\.namespaces\[2\]\.type: must be equal to one of the allowed values \(mount, pid, network, uts, ipc, user, cgroup, time\)$/);
});

test('schema: missing required fields are named', () => {
  const { ociVersion: _ignored, ...noVersion } = baseSpec();
  assertRejects(noVersion, 'ociVersion', /is required$/);
  const spec = baseSpec();
  const { cwd: _cwd, ...noCwd } = spec.process ?? { cwd: '' };
  assertRejects({ ...spec, process: noCwd }, 'process.cwd', /is required$/);
  assertRejects({ ...spec, process: { ...spec.process, user: { gid: 0 } } }, 'process.user.uid', /is required$/);
  assertRejects({ ...spec, mounts: [{ type: 'tmpfs' }] }, 'mounts[0].destination', /is required$/);
});

test('schema: numbers out of range and patterns', () => {
  const spec = baseSpec();
  assertRejects({ ...spec, process: { ...spec.process, user: { uid: -1, gid: 0 } } }, 'process.user.uid', /must be >= 0/);
  assertRejects({ ...spec, process: { ...spec.process, rlimits: [{ type: 'nofile', soft: 1, hard: 1 }] } }, 'process.rlimits[0].type', /must match pattern/);
  assertRejects({ ...spec, process: { ...spec.process, oomScoreAdj: 1.5 } }, 'process.oomScoreAdj', /must be integer/);
});

test('schema: keys that are not identifiers are quoted in the path', () => {
  assertRejects({ ...baseSpec(), annotations: { 'org.example/key': 1 } }, 'annotations["org.example/key"]', /must be string/);
});

test('schema: the document itself must be an object', () => {
  assert.equal(configError('[]'), 'config.json: must be object');
  assert.equal(configError('null'), 'config.json: must be object');
});

test('schema: an anyOf failure reports the branch error', () => {
  const err = describeSchemaError({ instancePath: '/linux/namespaces/0', schemaPath: '#/anyOf', keyword: 'anyOf', params: {}, message: 'must match a schema in anyOf' }, {});
  assert.deepEqual(err, { field: 'linux.namespaces[0]', message: 'must match a schema in anyOf' });
});

test('valid configs come back as the same value, typed', () => {
  const spec = defaultSpec();
  assert.deepEqual(parseConfig(JSON.stringify(spec), 'config.json'), spec);
  assert.deepEqual(validateConfig(defaultSpec({ rootless: true, hostUid: 1000, hostGid: 1000 }), 'sdk'), defaultSpec({ rootless: true, hostUid: 1000, hostGid: 1000 }));
});

test('a config from a runc-era client (1.0.2-dev, platform sections) validates', () => {
  const spec = { ...defaultSpec(), ociVersion: '1.0.2-dev', windows: { layerFolders: [] }, solaris: {} };
  assert.equal(parseConfig(JSON.stringify(spec), 'config.json').ociVersion, '1.0.2-dev');
});

test('parseState: a valid state, and a bad status', () => {
  const state = { ociVersion: '1.3.0', id: 'c1', status: 'running', pid: 42, bundle: '/b', annotations: { a: 'b' } };
  assert.deepEqual(parseState(JSON.stringify(state), 'state.json'), state);
  assert.throws(() => parseState(JSON.stringify({ ...state, status: 'paused' }), 'state.json'),
    /^StockadeError: state\.json: status: must be equal to one of the allowed values \(creating, created, running, stopped\)$/);
  assert.throws(() => parseState('{', 'state.json'), /state\.json: malformed JSON at line 1 column 2/);
});
