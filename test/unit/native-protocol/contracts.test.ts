// The contracts C shares with TypeScript are written once, in TypeScript, and reach C only through
// the generated header: the light entry's id rules, status rules, state root, record format and
// socket name, and the sentry hand-off's tag bytes. A literal copy in C would drift unseen.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ID_EXTRA_CHARS, ID_MAX_LENGTH, parseContainerId } from '../../../src/container/id';
import { LIGHT_ACT, LIGHT_FORMAT, LIGHT_KEYS, LIGHT_RECORD, lightRecord } from '../../../src/container/light';
import type { ContainerRecord } from '../../../src/container/state-store';
import type { Spec } from '../../../src/oci/spec';
import { DEFAULT_ROOT, START_SOCKET } from '../../../src/container/state-store';
import { ALLOWED, STATUSES } from '../../../src/container/status';
import { packageRoot } from '../../../src/native/paths';
import { HANDOFF } from '../../../src/native/protocol';
import { renderHeader } from '../../../src/tools/gen-header';

/** The C source without its comments, which may name what the code takes from the header. */
function code(file: string): string {
  return readFileSync(join(packageRoot(), 'native', file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
}

function define(h: string, name: string): string {
  const m = new RegExp(`^#define ${name} (.+)$`, 'm').exec(h);
  assert.ok(m !== null, `${name} is not in the header`);
  return m[1] ?? '';
}

test('the header carries the light entry\'s contracts and the hand-off bytes, from their TypeScript source', () => {
  const h = renderHeader();
  assert.equal(define(h, 'STK_DEFAULT_ROOT'), JSON.stringify(DEFAULT_ROOT));
  assert.equal(define(h, 'STK_START_SOCKET'), JSON.stringify(START_SOCKET));
  assert.equal(define(h, 'STK_LIGHT_RECORD'), JSON.stringify(LIGHT_RECORD));
  assert.equal(define(h, 'STK_LIGHT_FORMAT'), JSON.stringify(LIGHT_FORMAT));
  for (const [key, value] of Object.entries(LIGHT_KEYS)) assert.equal(define(h, `STK_LIGHT_KEY_${key.toUpperCase()}`), JSON.stringify(value));
  assert.equal(define(h, 'STK_LIGHT_ACT_YES'), JSON.stringify(LIGHT_ACT.yes));
  assert.equal(define(h, 'STK_ID_EXTRA_CHARS'), JSON.stringify(ID_EXTRA_CHARS));
  assert.equal(define(h, 'STK_ID_MAX_LENGTH'), String(ID_MAX_LENGTH));
  assert.equal(define(h, 'STK_HANDOFF_LISTENER'), `0x${HANDOFF.LISTENER.toString(16)}u`);
  assert.equal(define(h, 'STK_HANDOFF_MOUNT'), `0x${HANDOFF.MOUNT.toString(16)}u`);
  // The masks say exactly what ALLOWED says, bit i being STATUSES[i].
  for (const op of ['start', 'kill', 'delete'] as const) {
    const mask = Number.parseInt(define(h, `STK_CAN_${op.toUpperCase()}`).replace(/u$/, ''), 16);
    assert.deepEqual(STATUSES.filter((_, i) => (mask & (1 << i)) !== 0), [...ALLOWED[op]].sort((a, b) => STATUSES.indexOf(a) - STATUSES.indexOf(b)), op);
  }
});

test('the C sources keep no copy of a shared contract', () => {
  const light = code('light/light.c');
  for (const literal of [DEFAULT_ROOT, START_SOCKET, LIGHT_FORMAT, ...Object.values(LIGHT_KEYS), LIGHT_ACT.yes]) {
    assert.ok(!light.includes(JSON.stringify(literal)), `light.c spells out ${JSON.stringify(literal)}: take it from stockade-abi.h`);
  }
  assert.ok(!light.includes(`"${LIGHT_RECORD}"`), 'light.c names the light record itself');
  assert.match(light, /len > STK_ID_MAX_LENGTH/, 'light.c has its own id length limit');
  assert.doesNotMatch(light, /c == '[_+.-]'/, 'light.c lists id characters itself');
  assert.doesNotMatch(light, /enum status \{ *STOPPED, *CREATED/, 'light.c numbers statuses itself');
  const sentry = code('init/sentry.c');
  assert.doesNotMatch(sentry, /send_fd\([^;]*'[A-Z]'/, 'sentry.c spells a hand-off tag byte itself');
});

test('the id rules the header carries are parseContainerId\'s', () => {
  for (const c of ID_EXTRA_CHARS) assert.equal(parseContainerId(`a${c}b`), `a${c}b`);
  for (const c of ' /\\:;*?"<>|é') assert.throws(() => parseContainerId(`a${c}b`), /invalid container id/);
  assert.equal(parseContainerId('x'.repeat(ID_MAX_LENGTH)).length, ID_MAX_LENGTH);
  assert.throws(() => parseContainerId('x'.repeat(ID_MAX_LENGTH + 1)), /is too long/);
});

test('the light record names first whether the light entry may act: a level that does not declare it safe gets only that', () => {
  const record: ContainerRecord = {
    ociVersion: '1.3.0', id: 'c', pid: 42, pidStartTime: '7', bundle: '/b', rootfs: '/b/rootfs', created: '', owner: 'root',
    annotations: {}, level: 'x', ownPidNamespace: true, createdOk: true, cgroupPaths: [],
  };
  const SPEC: Spec = { ociVersion: '1.3.0' };
  assert.equal(lightRecord(record, SPEC, true), `${LIGHT_FORMAT}\n${LIGHT_KEYS.act} ${LIGHT_ACT.yes}\n${LIGHT_KEYS.pid} 42\n${LIGHT_KEYS.starttime} 7\n`);
  assert.equal(lightRecord(record, SPEC, false), `${LIGHT_FORMAT}\n${LIGHT_KEYS.act} ${LIGHT_ACT.no}\n`);
});
