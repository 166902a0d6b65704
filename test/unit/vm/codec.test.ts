// The host's decoder of agent frames against well-formed, malformed and hostile input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { FrameDecoder, ProtocolViolation, encodeGuest, encodeHost } from '../../../src/vm/codec';
import { AGENT_LIMITS, GUEST_MESSAGES, type GuestMessage } from '../../../src/vm/protocol';
import { frame } from '../../helpers/agent-frame';


const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

const samples: GuestMessage[] = [
  { type: 'OK', id: 1 },
  { type: 'ERROR', id: 2, err: 2, message: 'mount /x: No such file or directory' },
  { type: 'HELLO_OK', id: 3, version: 1, kernel: '6.1.0-57-cloud-amd64' },
  { type: 'SPAWNED', id: 4, proc: 7, pid: 42 },
  { type: 'EXITED', id: 5, proc: 7, code: -1, signal: 9, oomKills: 2n },
  { type: 'OUTPUT', id: 0, proc: 7, stream: 1, data: Buffer.from('hello\n') },
  { type: 'WINDOW', id: 0, proc: 7, stream: 0, bytes: 4096 },
  { type: 'HOOK', id: 6, proc: 8, pid: 120, point: 1 },
  { type: 'CREATED', id: 7, proc: 8, pid: 120 },
  { type: 'PIDS_OK', id: 8, pids: [120, 121, 0xffffffff] },
  { type: 'PIDS_OK', id: 9, pids: [] },
  {
    type: 'STATS_OK', id: 10, cpuUsageUsec: 12345n, cpuUserUsec: 1n, cpuSystemUsec: 0n, memoryCurrent: 1n << 40n,
    memoryMax: 0xffffffffffffffffn, memoryAnon: 4096n, memoryFile: 0n, pidsCurrent: 3n, pidsMax: 0xffffffffffffffffn, oomKills: 2n,
  },
];

test('every guest message survives encode and decode, whole and split byte by byte', () => {
  const all = Buffer.concat(samples.map(encodeGuest));
  assert.deepEqual(FrameDecoder.fromGuest().push(all), samples);
  const d = FrameDecoder.fromGuest();
  const got: GuestMessage[] = [];
  for (let i = 0; i < all.length; i++) got.push(...d.push(all.subarray(i, i + 1)));
  assert.deepEqual(got, samples);
  assert.equal(d.buffered, 0);
});

test('host frames round-trip too, argv and env included', () => {
  const spawn = { type: 'SPAWN' as const, id: 9, root: '/r', cwd: '/', uid: 0, gid: 0, flags: 1, args: ['sh', '-c', 'echo ü'], env: ['A=1'] };
  assert.deepEqual(FrameDecoder.fromHost().push(encodeHost(spawn)), [spawn]);
  // A plan larger than an output chunk: a blob is bounded by the frame, not by MAX_CHUNK.
  const create = { type: 'CREATE' as const, id: 10, name: 'c1', flags: 3, plan: randomBytes(AGENT_LIMITS.MAX_CHUNK * 3) };
  const exec = { type: 'EXEC' as const, id: 11, container: 4, name: 'c1.x1', flags: 0, plan: Buffer.alloc(0) };
  const resize = { type: 'RESIZE' as const, id: 0, proc: 4, rows: 33, cols: 77 };
  const update = { type: 'UPDATE' as const, id: 12, proc: 4, pidsMax: 0xffffffffffffffffn, memoryMax: 1n << 33n, cpuQuota: 1n, cpuPeriod: 2n, cpuWeight: 0n };
  assert.deepEqual(FrameDecoder.fromHost().push(Buffer.concat([create, exec, resize, update].map(encodeHost))), [create, exec, resize, update]);
});

test('the encoder refuses what the wire cannot carry', () => {
  assert.throws(() => encodeHost({ type: 'SPAWN', id: 1, root: '', cwd: 'a\0b', uid: 0, gid: 0, flags: 0, args: ['x'], env: [] }), /NUL/);
  assert.throws(() => encodeHost({ type: 'SIGNAL', id: 1, proc: -1, signal: 9, flags: 0 }), /u32/);
  assert.throws(() => encodeHost({ type: 'SPAWN', id: 1, root: '', cwd: '/', uid: 0, gid: 0, flags: 0, args: ['x'], env: Array(AGENT_LIMITS.MAX_STRS + 1).fill('A=1') }), /more than/);
  assert.throws(() => encodeHost({ type: 'CREATE', id: 1, name: 'c', flags: 0, plan: Buffer.alloc(AGENT_LIMITS.MAX_HOST_PAYLOAD) }), /exceeds/);
  assert.throws(() => encodeHost({ type: 'STDIN', id: 0, proc: 1, data: Buffer.alloc(AGENT_LIMITS.MAX_CHUNK + 1) }), /exceed/);
  assert.throws(() => encodeGuest({ type: 'PIDS_OK', id: 1, pids: Array(AGENT_LIMITS.MAX_U32S + 1).fill(1) }), /more than/);
  assert.throws(() => encodeGuest({ type: 'STATS_OK', id: 1, cpuUsageUsec: -1n, cpuUserUsec: 0n, cpuSystemUsec: 0n, memoryCurrent: 0n, memoryMax: 0n, memoryAnon: 0n, memoryFile: 0n, pidsCurrent: 0n, pidsMax: 0n, oomKills: 0n }), /u64/);
});

function refuses(bytes: Buffer, why: RegExp): void {
  const d = FrameDecoder.fromGuest();
  assert.throws(() => d.push(bytes), (e: unknown) => e instanceof ProtocolViolation && why.test(e.message));
  // Out of step once, the stream is never trusted again, even with a good frame after.
  assert.throws(() => d.push(encodeGuest({ type: 'OK', id: 1 })), ProtocolViolation);
}

test('hostile frames are refused with the reason', () => {
  const G = GUEST_MESSAGES;
  refuses(frame(0x7777, 1, Buffer.alloc(0)), /unknown message tag 0x7777/);
  // A host message tag is not something the guest may send.
  refuses(frame(0x03, 1, Buffer.alloc(0)), /unknown message tag/);
  refuses(frame(G.OK.tag, 1, Buffer.alloc(0), AGENT_LIMITS.MAX_GUEST_PAYLOAD + 1), /exceeds the limit/);
  refuses(frame(G.OK.tag, 1, Buffer.from([0])), /1 bytes after the last field/);
  refuses(frame(G.SPAWNED.tag, 1, u32(1)), /SPAWNED.pid: payload ends early/);
  refuses(frame(G.ERROR.tag, 1, Buffer.concat([u32(0), u32(3), Buffer.from('abc')])), /ERROR.message/);
  refuses(frame(G.ERROR.tag, 1, Buffer.concat([u32(0), u32(3), Buffer.from('abcX')])), /not NUL-terminated/);
  refuses(frame(G.ERROR.tag, 1, Buffer.concat([u32(0), u32(3), Buffer.from('a\0c\0')])), /holds a NUL/);
  refuses(frame(G.ERROR.tag, 1, Buffer.concat([u32(0), u32(2), Buffer.from([0xff, 0xfe, 0])])), /not UTF-8/);
  refuses(frame(G.ERROR.tag, 1, Buffer.concat([u32(0), u32(0xffffffff)])), /exceeds/);
  refuses(frame(G.OUTPUT.tag, 0, Buffer.concat([u32(1), u32(1), u32(AGENT_LIMITS.MAX_CHUNK + 1), Buffer.alloc(AGENT_LIMITS.MAX_CHUNK + 1)])), /exceed/);
  refuses(frame(G.OUTPUT.tag, 5, Buffer.concat([u32(1), u32(1), u32(0)])), /stream message with request id 5/);
  refuses(frame(G.OK.tag, 0, Buffer.alloc(0)), /id 0/);
  // The container messages: a pid list longer than the limit or than its frame, u64 cut short,
  // a reply without its last field, host-only tags (CREATE, RESIZE) from the guest.
  refuses(frame(G.PIDS_OK.tag, 1, u32(AGENT_LIMITS.MAX_U32S + 1)), /PIDS_OK.pids: 8193 numbers exceed/);
  refuses(frame(G.PIDS_OK.tag, 1, Buffer.concat([u32(3), u32(1), u32(2)])), /PIDS_OK.pids: payload ends early/);
  refuses(frame(G.PIDS_OK.tag, 1, Buffer.concat([u32(1), u32(1), Buffer.alloc(2)])), /2 bytes after the last field/);
  refuses(frame(G.STATS_OK.tag, 1, Buffer.alloc(8 * 8 + 4)), /STATS_OK.pidsMax: payload ends early/);
  // An agent from before oomKills was appended: its reply is short by that field, and refused.
  refuses(frame(G.STATS_OK.tag, 1, Buffer.alloc(9 * 8)), /STATS_OK.oomKills: payload ends early/);
  refuses(frame(G.STATS_OK.tag, 1, Buffer.alloc(10 * 8 + 1)), /1 bytes after the last field/);
  refuses(frame(G.HOOK.tag, 1, Buffer.concat([u32(1), u32(2)])), /HOOK.point: payload ends early/);
  refuses(frame(G.CREATED.tag, 0, Buffer.concat([u32(1), u32(2)])), /id 0/);
  refuses(frame(0x07, 1, Buffer.alloc(0)), /unknown message tag 0x7/);
  refuses(frame(0x12, 0, Buffer.alloc(12)), /unknown message tag 0x12/);
});

test('an oversized frame is refused from its header alone, before its payload is buffered', () => {
  const d = FrameDecoder.fromGuest();
  const head = frame(GUEST_MESSAGES.OUTPUT.tag, 0, Buffer.alloc(0), 0x7fffffff);
  assert.throws(() => d.push(head), /exceeds the limit/);
  assert.equal(d.buffered, 0);
});

test('fuzz: mutated and random frames either decode or raise ProtocolViolation, nothing else', () => {
  const valid = samples.map(encodeGuest);
  let decoded = 0;
  let refused = 0;
  for (let i = 0; i < 20000; i++) {
    const base = Buffer.from(valid[i % valid.length]!);
    const kind = i % 4;
    let input: Buffer;
    if (kind === 0) {
      for (let k = 0; k < 1 + (i % 3); k++) base[(i * 7 + k * 13) % base.length] = randomBytes(1)[0]!;
      input = base;
    } else if (kind === 1) {
      input = base.subarray(0, i % base.length);
    } else if (kind === 2) {
      input = Buffer.concat([base.subarray(0, 12), randomBytes(i % 64)]);
      input.writeUInt32LE(input.length - 12, 8);
    } else {
      input = randomBytes(1 + (i % 80));
    }
    try {
      decoded += FrameDecoder.fromGuest().push(input).length;
    } catch (e) {
      assert.ok(e instanceof ProtocolViolation, `frame ${input.toString('hex')} raised ${String(e)}`);
      refused++;
    }
  }
  assert.ok(refused > 1000 && decoded > 100, `refused ${refused}, decoded ${decoded}`);
});
