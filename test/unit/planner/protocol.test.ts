// The planner's frames as the front writes them: cut from a byte stream however it arrives, and refused when malformed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FRAME_MAX, FrameReader, TO_PLANNER, frame, i32s, strings } from '../../../src/planner/protocol';

test('a request and the frames after it are read however the stream is cut', () => {
  const bytes = Buffer.concat([
    frame(TO_PLANNER.CALLER, i32s(777, 5)),
    frame(TO_PLANNER.REQUEST, strings(['/work', '22', '0::/user.slice\n', '3', 'create', '-b', 'b', 'A=1', 'B=x=y'])),
    frame(TO_PLANNER.SPAWNED, i32s(4242, 0)),
    frame(TO_PLANNER.EXIT, i32s(-1, 9)),
    frame(TO_PLANNER.EXIT, i32s(3, 0)),
    frame(TO_PLANNER.SYNC_EOF),
    frame(TO_PLANNER.STARTED, Buffer.concat([i32s(0), Buffer.from([1, 2, 3])])),
    frame(TO_PLANNER.STARTED, i32s(2)),
    frame(TO_PLANNER.TTY_ENDED),
    frame(TO_PLANNER.STDIN_DATA, Buffer.from('{"pids":')),
    frame(TO_PLANNER.STDIN_END, i32s(21, 0)),
  ]);
  for (const step of [1, 3, 7, bytes.length]) {
    const r = new FrameReader();
    const got = [];
    for (let at = 0; at < bytes.length; at += step) got.push(...r.push(bytes.subarray(at, at + step)));
    assert.deepEqual(got, [
      { type: 'caller', pid: 777, ttys: 5 },
      { type: 'request', cwd: '/work', umask: 0o22, cgroup: '0::/user.slice\n', argv: ['create', '-b', 'b'], env: ['A=1', 'B=x=y'] },
      { type: 'spawned', pid: 4242 },
      { type: 'exit', code: null, signal: 9 },
      { type: 'exit', code: 3, signal: null },
      { type: 'sync-eof' },
      { type: 'started', errno: 0, data: Buffer.from([1, 2, 3]) },
      { type: 'started', errno: 2, data: Buffer.alloc(0) },
      { type: 'tty-ended' },
      { type: 'stdin-data', data: Buffer.from('{"pids":') },
      { type: 'stdin-end', errno: 21 },
    ], `cut every ${step} bytes`);
  }
});

test('malformed frames are refused, naming what is wrong', () => {
  assert.throws(() => new FrameReader().push(frame(99)), /unknown frame type 99/);
  assert.throws(() => new FrameReader().push(frame(TO_PLANNER.SPAWNED, Buffer.from([1]))), /too short/);
  assert.throws(() => new FrameReader().push(frame(TO_PLANNER.CALLER, i32s(777))), /too short/);
  assert.throws(() => new FrameReader().push(frame(TO_PLANNER.STDIN_END)), /too short/);
  assert.throws(() => new FrameReader().push(frame(TO_PLANNER.REQUEST, Buffer.from('/work\0' + '22\0' + '0::/\n\0' + '5\0' + 'x\0'))), /malformed request/);
  assert.throws(() => new FrameReader().push(frame(TO_PLANNER.REQUEST, Buffer.from('/work'))), /without its NUL/);
  const huge = Buffer.alloc(5);
  huge.writeUInt32LE(FRAME_MAX + 1, 0);
  assert.throws(() => new FrameReader().push(huge), /frame length/);
});
