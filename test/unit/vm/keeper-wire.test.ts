// The keeper's control socket decoder (keeper-wire.ts) against hostile frames: truncated, oversized, unknown kinds, requests with bad fields.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { StockadeError } from '../../../src/errors';
import { FRAME, FrameReader, MAX_FRAME, encodeFrame, parseRequest } from '../../../src/vm/keeper-wire';

/** A frame header as anyone could write it: kind and length, no check. */
function header(kind: number, length: number): Buffer {
  const h = Buffer.alloc(5);
  h.writeUInt8(kind, 0);
  h.writeUInt32BE(length, 1);
  return h;
}

const req = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

test('frames survive the stream whole, byte by byte, and several in one chunk', () => {
  const frames = [
    encodeFrame(FRAME.REQUEST, { op: 'start' }),
    encodeFrame(FRAME.STDIN, Buffer.from('abc')),
    encodeFrame(FRAME.STDIN, Buffer.alloc(0)),
    encodeFrame(FRAME.RESIZE, { rows: 24, cols: 80 }),
  ];
  const all = Buffer.concat(frames);
  const whole = new FrameReader().push(all);
  assert.deepEqual(whole.map((f) => f.kind), [FRAME.REQUEST, FRAME.STDIN, FRAME.STDIN, FRAME.RESIZE]);
  assert.equal(whole[1]?.payload.toString(), 'abc');
  assert.equal(whole[2]?.payload.length, 0);
  const r = new FrameReader();
  const split = [...all].flatMap((b) => r.push(Buffer.from([b])));
  assert.deepEqual(split.map((f) => [f.kind, f.payload.toString('hex')]), whole.map((f) => [f.kind, f.payload.toString('hex')]));
});

test('a truncated frame is held, not delivered: a header cut short, a payload cut short', () => {
  const r = new FrameReader();
  assert.deepEqual(r.push(Buffer.from([FRAME.REQUEST, 0, 0])), []);
  assert.equal(r.buffered, 3);
  assert.deepEqual(r.push(Buffer.from([0, 10, 0x7b])), []);
  assert.equal(r.buffered, 6);
  // The peer closing now leaves a frame that never was: nothing of it reached a handler.
});

test('an oversized length is refused from the header alone, before its payload is buffered', () => {
  for (const len of [MAX_FRAME + 1, 0x7fffffff, 0xffffffff]) {
    const r = new FrameReader();
    assert.throws(() => r.push(header(FRAME.STDIN, len)), (e: unknown) => e instanceof StockadeError && /frame of \d+ bytes is over 1048576/.test(e.message));
    assert.equal(r.buffered, 0);
  }
  // At the limit exactly, it is a frame (held until whole).
  const r = new FrameReader();
  assert.deepEqual(r.push(header(FRAME.STDIN, MAX_FRAME)), []);
  assert.throws(() => encodeFrame(FRAME.STDOUT, Buffer.alloc(MAX_FRAME + 1)), RangeError);
});

test('an unknown kind is refused, and the reader stays refused after it', () => {
  for (const kind of [0, 8, 0x7f, 0xff]) {
    const r = new FrameReader();
    assert.throws(() => r.push(Buffer.concat([header(kind, 0)])), new RegExp(`unknown frame kind ${kind}$`));
    // A good frame after the bad one is not read from a guess at where the stream goes on.
    assert.throws(() => r.push(encodeFrame(FRAME.REQUEST, { op: 'start' })), /unknown frame kind/);
  }
  // A good frame before a bad one in the same chunk: the chunk is refused as a whole.
  const r = new FrameReader();
  assert.throws(() => r.push(Buffer.concat([encodeFrame(FRAME.REQUEST, { op: 'pids' }), header(9, 0)])), /unknown frame kind 9/);
});

test('requests with bad fields are refused naming the field', () => {
  const bad: [unknown, RegExp][] = [
    ['not an object', /not an object/],
    [null, /not an object/],
    [[], /unknown request/],
    [{}, /unknown request undefined/],
    [{ op: 'reboot' }, /unknown request "reboot"/],
    [{ op: 'signal' }, /signal: a number from 1 to 64/],
    [{ op: 'signal', signal: 0 }, /signal: a number from 1 to 64/],
    [{ op: 'signal', signal: 65 }, /signal: a number from 1 to 64/],
    [{ op: 'signal', signal: 9.5 }, /signal: a number from 1 to 64/],
    [{ op: 'signal', signal: '9' }, /signal: a number from 1 to 64/],
    [{ op: 'signal', signal: 9, pid: -1 }, /signal: pid: a number/],
    [{ op: 'signal', signal: 9, pid: 2 ** 32 }, /signal: pid: a number/],
    [{ op: 'exec' }, /exec: no process/],
    [{ op: 'exec', process: 'sh' }, /exec: no process/],
    [{ op: 'exec', process: { args: [], cwd: '/', user: { uid: 0, gid: 0 } } }, /process.args: a non-empty list of strings/],
    [{ op: 'exec', process: { args: ['sh', 1], cwd: '/', user: { uid: 0, gid: 0 } } }, /process.args/],
    [{ op: 'exec', process: { args: ['sh'], env: 'A=1', cwd: '/', user: { uid: 0, gid: 0 } } }, /process.env: a list of strings/],
    [{ op: 'exec', process: { args: ['sh'], cwd: 'tmp', user: { uid: 0, gid: 0 } } }, /process.cwd: an absolute path/],
    [{ op: 'exec', process: { args: ['sh'], cwd: '/', user: { uid: -1, gid: 0 } } }, /process.user: uid and gid/],
    [{ op: 'exec', process: { args: ['sh'], cwd: '/' } }, /process.user: uid and gid/],
    [{ op: 'update' }, /update: limits: an object/],
    [{ op: 'update', limits: [] }, /update: limits: an object/],
    [{ op: 'update', limits: { swapMax: '1' } }, /unknown field "swapMax"/],
    [{ op: 'update', limits: { memoryMax: 1 } }, /limits.memoryMax: a decimal number/],
    [{ op: 'update', limits: { memoryMax: '0' } }, /limits.memoryMax: a decimal number/],
    [{ op: 'update', limits: { memoryMax: '-5' } }, /limits.memoryMax: a decimal number/],
    [{ op: 'update', limits: { pidsMax: '18446744073709551616' } }, /limits.pidsMax: a decimal number from 1 to 2\^64-1/],
    [{ op: 'update', limits: { cpuWeight: '1e3' } }, /limits.cpuWeight/],
    [{ op: 'memory' }, /memory: mib: a number from 1 to 65536/],
    [{ op: 'memory', mib: '128' }, /memory: mib/],
    [{ op: 'memory', mib: 0 }, /memory: mib/],
    [{ op: 'memory', mib: 65537 }, /memory: mib/],
    [{ op: 'memory', mib: 1.5 }, /memory: mib/],
  ];
  for (const [v, why] of bad) {
    assert.throws(() => parseRequest(req(v)), (e: unknown) => e instanceof StockadeError && why.test(e.message), JSON.stringify(v));
  }
  assert.throws(() => parseRequest(Buffer.from([0xff, 0xfe])), /not JSON/);
  assert.throws(() => parseRequest(Buffer.from('{"op":"start"')), /not JSON/);
  // What is good passes typed, and nothing beyond the known fields is carried on.
  assert.deepEqual(parseRequest(req({ op: 'signal', signal: 15, all: 'yes', extra: 1 })), { op: 'signal', signal: 15, all: false, pid: undefined });
  assert.deepEqual(parseRequest(req({ op: 'update', limits: { memoryMax: '18446744073709551615', pidsMax: '50' } })),
    { op: 'update', limits: { memoryMax: '18446744073709551615', pidsMax: '50' } });
  assert.deepEqual(parseRequest(req({ op: 'stats', junk: [1, 2] })), { op: 'stats' });
  assert.deepEqual(parseRequest(req({ op: 'memory', mib: 200, container: 'app-1' })), { op: 'memory', mib: 200, container: 'app-1' });
});

test('fuzz: random and mutated bytes either frame, or raise a StockadeError, nothing else', () => {
  const valid = [
    encodeFrame(FRAME.REQUEST, { op: 'signal', signal: 9, all: true }),
    encodeFrame(FRAME.REQUEST, { op: 'exec', process: { args: ['sh'], cwd: '/', user: { uid: 0, gid: 0 } } }),
    encodeFrame(FRAME.REQUEST, { op: 'update', limits: { memoryMax: '1048576' } }),
    encodeFrame(FRAME.STDIN, randomBytes(40)),
  ];
  let framed = 0;
  let refused = 0;
  let parsed = 0;
  for (let i = 0; i < 20000; i++) {
    const base = Buffer.from(valid[i % valid.length]!);
    let input: Buffer;
    if (i % 3 === 0) {
      for (let k = 0; k < 1 + (i % 3); k++) base[(i * 7 + k * 13) % base.length] = randomBytes(1)[0]!;
      input = base;
    } else if (i % 3 === 1) {
      input = base.subarray(0, i % base.length);
    } else {
      input = randomBytes(1 + (i % 80));
    }
    try {
      for (const f of new FrameReader().push(input)) {
        framed++;
        if (f.kind !== FRAME.REQUEST) continue;
        try {
          parseRequest(f.payload);
          parsed++;
        } catch (e) {
          assert.ok(e instanceof StockadeError, `request ${f.payload.toString('hex')} raised ${String(e)}`);
        }
      }
    } catch (e) {
      assert.ok(e instanceof StockadeError, `bytes ${input.toString('hex')} raised ${String(e)}`);
      refused++;
    }
  }
  assert.ok(refused > 1000 && framed > 1000 && parsed > 20, `refused ${refused}, framed ${framed}, parsed ${parsed}`);
});

test('a pod\'s requests: pod-create\'s member checked field by field, container named by a valid id only', () => {
  const req = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
  const member = {
    id: 'app', stateDir: '/run/s/app', bundle: '/b', spec: { ociVersion: '1.0.2' }, rootfs: '/b/rootfs', readonlyRoot: false,
    binds: [{ source: '/data', readonly: true }], noPivot: false, noNewKeyring: false, joinPod: ['ipc', 'uts'],
  };
  assert.deepEqual(parseRequest(req({ op: 'pod-create', member })), { op: 'pod-create', member });
  for (const [field, value] of [['id', '../x'], ['stateDir', 'rel'], ['spec', null], ['readonlyRoot', 'no'], ['binds', [{ source: 1 }]], ['joinPod', ['net']], ['joinPod', ['mnt']]] as const) {
    assert.throws(() => parseRequest(req({ op: 'pod-create', member: { ...member, [field]: value } })),
      (e: unknown) => e instanceof StockadeError && e.message === `vm keeper: pod-create: member.${field}`, `${field}: ${JSON.stringify(value)}`);
  }
  assert.deepEqual(parseRequest(req({ op: 'pids', container: 'app' })), { op: 'pids', container: 'app' });
  assert.deepEqual(parseRequest(req({ op: 'signal', signal: 9, all: true, container: 'app' })), { op: 'signal', signal: 9, all: true, pid: undefined, container: 'app' });
  for (const container of ['', '../sb', 7, 'a/b']) {
    assert.throws(() => parseRequest(req({ op: 'start', container })), /vm keeper: container: a container id/, JSON.stringify(container));
  }
});
