// The plan encoding and the message framing shared with stockade-init.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodePlan, frame, initFds, MessageReader, MSG, PLAN } from '../../../src/native/protocol';
import { renderHeader } from '../../../src/tools/gen-header';

test('plan: magic, records, end; strings NUL-terminated with length', () => {
  const b = encodePlan([{ tag: PLAN.TAG_HOSTNAME, name: 'box' }, { tag: PLAN.TAG_CLONE_FLAGS, flags: 0x20000 }]);
  assert.equal(b.readUInt32LE(0), PLAN.MAGIC);
  assert.equal(b.readUInt32LE(4), PLAN.TAG_HOSTNAME);
  assert.equal(b.readUInt32LE(8), 4 + 3 + 1);
  assert.equal(b.readUInt32LE(12), 3);
  assert.equal(b.toString('utf8', 16, 19), 'box');
  assert.equal(b[19], 0);
  assert.equal(b.readUInt32LE(20), PLAN.TAG_CLONE_FLAGS);
  assert.equal(b.readUInt32LE(28), 0x20000);
  assert.equal(b.readUInt32LE(32), PLAN.TAG_END);
  assert.equal(b.length, 40);
});

test('plan: NUL inside a string is refused, not truncated', () => {
  assert.throws(() => encodePlan([{ tag: PLAN.TAG_ARG, value: 'a\0b' }]), /NUL/);
});

test('messages: split across chunks and joined in one', () => {
  const err = Buffer.alloc(4); err.writeInt32LE(2);
  const s = (t: string): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(t.length); return Buffer.concat([b, Buffer.from(t), Buffer.alloc(1)]); };
  const pid = Buffer.alloc(4); pid.writeUInt32LE(1234);
  const all = Buffer.concat([frame(MSG.PID, pid), frame(MSG.ERROR, Buffer.concat([err, s('mount'), s('/proc')]))]);
  const r = new MessageReader();
  assert.deepEqual(r.push(all.subarray(0, 5)), []);
  assert.deepEqual(r.push(all.subarray(5)), [
    { type: 'pid', pid: 1234 },
    { type: 'error', errno: 2, step: 'mount', message: '/proc' },
  ]);
});

test('the C header carries every tag', () => {
  const h = renderHeader();
  for (const [name, value] of Object.entries(PLAN)) assert.match(h, new RegExp(`#define STK_PLAN_${name} 0x${value.toString(16)}u`));
  assert.match(h, /#define STK_MSG_START 0x6u/);
  // The light entry's wait forwards what Node forwards: SIGINT, SIGTERM, ... by number.
  assert.match(h, /#define STK_FORWARDED_SIGNALS \{ 2, 15, 1, 3, 10, 12, 28, 18, 20 \}/);
});

test('TAG_SENTRY: socket fd, flags, count, then the program as TAG_SECCOMP has it', () => {
  const program = Buffer.from([0x06, 0, 0, 0, 0, 0, 0xff, 0x7f]); // ret ALLOW
  const b = encodePlan([{ tag: PLAN.TAG_SENTRY, socketFd: initFds(2).sentryFd, flags: 0x8, program }]);
  assert.equal(b.readUInt32LE(4), PLAN.TAG_SENTRY);
  assert.equal(b.readUInt32LE(8), 12 + 8);
  assert.deepEqual([b.readUInt32LE(12), b.readUInt32LE(16), b.readUInt32LE(20)], [7, 0x8, 1]);
  assert.deepEqual(b.subarray(24, 32), program);
  assert.deepEqual(initFds(0), { planFd: 3, syncFd: 4, sentryFd: 5 });
  assert.throws(() => encodePlan([{ tag: PLAN.TAG_SENTRY, socketFd: 5, flags: 0, program: Buffer.alloc(7) }]), /multiple of 8/);
});
