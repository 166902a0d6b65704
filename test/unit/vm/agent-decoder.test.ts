// The agent's own decoder (native/agent, generated from src/vm/protocol.ts) against malformed and random host frames.
//
// The agent runs on the host with --channel-fd: the same request loop as in the guest, with
// MOUNT and SPAWN refused (EPERM) after they decode, so a well-formed request and a malformed
// one give different answers and nothing is mounted or run on the host.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { release } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { FrameDecoder, encodeHost } from '../../../src/vm/codec';
import { agentBinary } from '../../../src/vm/assets';
import { AGENT_LIMITS, AGENT_PROTOCOL_VERSION, HOST_MESSAGES, type GuestMessage, type HostMessage } from '../../../src/vm/protocol';
import { frame } from '../../helpers/agent-frame';

const skip = existsSync(agentBinary()) ? undefined : `${agentBinary()} is not built (npm run build:native)`;

class Agent {
  readonly child: ChildProcess;
  readonly channel: Socket;
  readonly exited: Promise<number | null>;
  #decoder = FrameDecoder.fromGuest();
  #got: GuestMessage[] = [];
  #waiters: (() => void)[] = [];

  constructor() {
    this.child = spawn(agentBinary(), ['--channel-fd', '3'], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    this.channel = this.child.stdio[3] as Socket;
    this.channel.on('data', (c: Buffer) => {
      this.#got.push(...this.#decoder.push(c));
      for (const w of this.#waiters.splice(0)) w();
    });
    this.channel.on('error', () => undefined);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  send(b: Buffer): void {
    this.channel.write(b);
  }

  async next(): Promise<GuestMessage> {
    while (this.#got.length === 0) {
      await Promise.race([new Promise<void>((r) => this.#waiters.push(r)), this.exited.then(() => { throw new Error('agent exited'); })]);
    }
    return this.#got.shift()!;
  }

  async ask(m: HostMessage): Promise<GuestMessage> {
    this.send(encodeHost(m));
    return this.next();
  }

  stop(): Promise<number | null> {
    this.child.kill('SIGKILL');
    return this.exited;
  }
}


test('the agent answers HELLO, and refuses MOUNT and SPAWN outside a guest only after they decode', { skip }, async () => {
  const a = new Agent();
  try {
    const v = AGENT_PROTOCOL_VERSION;
    assert.deepEqual(await a.ask({ type: 'HELLO', id: 1, version: v }), { type: 'HELLO_OK', id: 1, version: v, kernel: release() });
    const wrongVersion = await a.ask({ type: 'HELLO', id: 2, version: 99 });
    assert.equal(wrongVersion.type, 'ERROR');
    const spawn1 = await a.ask({ type: 'SPAWN', id: 3, root: '', cwd: '/', uid: 0, gid: 0, flags: 0, args: ['true'], env: [] });
    assert.deepEqual(spawn1, { type: 'ERROR', id: 3, err: 1, message: 'spawn: not in the guest' });
    const mount = await a.ask({ type: 'MOUNT', id: 4, fstype: 1, source: 'rootfs', target: '/mnt', flags: 0 });
    assert.deepEqual(mount, { type: 'ERROR', id: 4, err: 1, message: 'mount: not in the guest' });
    assert.deepEqual(await a.ask({ type: 'MOUNT', id: 5, fstype: 99, source: '', target: '/mnt', flags: 0 }),
      { type: 'ERROR', id: 5, err: 22, message: 'mount: unknown file system type 99' });
    assert.deepEqual(await a.ask({ type: 'MOUNT', id: 6, fstype: 2, source: '', target: 'relative', flags: 0 }),
      { type: 'ERROR', id: 6, err: 22, message: 'mount: target relative is not a clean absolute path' });
    assert.deepEqual(await a.ask({ type: 'SIGNAL', id: 7, proc: 12, signal: 9, flags: 0 }), { type: 'ERROR', id: 7, err: 3, message: 'signal: no process 12' });
    assert.deepEqual(await a.ask({ type: 'SIGNAL', id: 9, proc: 12, signal: 9, flags: 0x80 }), { type: 'ERROR', id: 9, err: 3, message: 'signal: no process 12' });
    // Containers: CREATE and EXEC decode (a plan of any bytes: it is stockade-init's to read) and
    // are refused outside a guest; the rest name a container that does not exist.
    const plan = Buffer.from('STK1 not read here');
    assert.deepEqual(await a.ask({ type: 'CREATE', id: 10, name: 'c1', flags: 0, plan }), { type: 'ERROR', id: 10, err: 1, message: 'create: not in the guest' });
    assert.deepEqual(await a.ask({ type: 'EXEC', id: 11, container: 1, name: 'x1', flags: 0, plan }), { type: 'ERROR', id: 11, err: 1, message: 'exec: not in the guest' });
    assert.deepEqual(await a.ask({ type: 'CONTINUE', id: 12, proc: 1, state: Buffer.from('{}') }), { type: 'ERROR', id: 12, err: 22, message: 'continue: process 1 is not at a hook point' });
    assert.deepEqual(await a.ask({ type: 'START', id: 13, proc: 1, state: Buffer.alloc(0) }), { type: 'ERROR', id: 13, err: 22, message: 'start: container 1 is not created and waiting' });
    assert.deepEqual(await a.ask({ type: 'PIDS', id: 14, proc: 1 }), { type: 'ERROR', id: 14, err: 3, message: 'pids: no container 1' });
    assert.deepEqual(await a.ask({ type: 'STATS', id: 15, proc: 1 }), { type: 'ERROR', id: 15, err: 3, message: 'stats: no container 1' });
    assert.deepEqual(await a.ask({ type: 'UPDATE', id: 16, proc: 1, pidsMax: 5n, memoryMax: 0n, cpuQuota: 0n, cpuPeriod: 0n, cpuWeight: 0n }),
      { type: 'ERROR', id: 16, err: 3, message: 'update: no container 1' });
    // A resize is a stream message: no answer, and the agent goes on.
    a.send(encodeHost({ type: 'RESIZE', id: 0, proc: 1, rows: 0xffffffff, cols: 80 }));
    assert.deepEqual(await a.ask({ type: 'SHUTDOWN', id: 8 }), { type: 'OK', id: 8 });
    assert.equal(await a.exited, 0);
  } finally {
    await a.stop();
  }
});

test('malformed requests get EBADMSG naming the field; the agent keeps serving', { skip }, async () => {
  const a = new Agent();
  try {
    const u32 = (n: number): Buffer => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b; };
    const str = (s: string): Buffer => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s), Buffer.alloc(1)]);
    const cases: [Buffer, string][] = [
      [frame(HOST_MESSAGES.HELLO.tag, 1, Buffer.alloc(2)), 'hello: field version malformed'],
      [frame(HOST_MESSAGES.HELLO.tag, 2, Buffer.concat([u32(1), Buffer.alloc(1)])), 'hello: field (end) malformed'],
      // A string whose NUL is missing, one with a NUL inside, one longer than the payload.
      [frame(HOST_MESSAGES.MOUNT.tag, 3, Buffer.concat([u32(1), u32(3), Buffer.from('abcd')])), 'mount: field source malformed'],
      [frame(HOST_MESSAGES.MOUNT.tag, 4, Buffer.concat([u32(1), u32(3), Buffer.from('a\0c\0')])), 'mount: field source malformed'],
      [frame(HOST_MESSAGES.MOUNT.tag, 5, Buffer.concat([u32(1), u32(0xfffffff0)])), 'mount: field source malformed'],
      // argv with more strings than the limit, and with a count larger than what follows.
      [frame(HOST_MESSAGES.SPAWN.tag, 6, Buffer.concat([str(''), str('/'), u32(0), u32(0), u32(0), u32(AGENT_LIMITS.MAX_STRS + 1)])), 'spawn: field args malformed'],
      [frame(HOST_MESSAGES.SPAWN.tag, 7, Buffer.concat([str(''), str('/'), u32(0), u32(0), u32(0), u32(2), str('sh')])), 'spawn: field args malformed'],
      [frame(HOST_MESSAGES.SIGNAL.tag, 8, u32(1)), 'signal: field signal malformed'],
      [frame(HOST_MESSAGES.SIGNAL.tag, 9, Buffer.concat([u32(1), u32(9)])), 'signal: field flags malformed'],
      // A plan longer than what follows; a name without its NUL; a state blob cut short; bytes after the last field.
      [frame(HOST_MESSAGES.CREATE.tag, 10, Buffer.concat([str('c1'), u32(0), u32(100), Buffer.alloc(10)])), 'create: field plan malformed'],
      [frame(HOST_MESSAGES.CREATE.tag, 11, Buffer.concat([u32(2), Buffer.from('c1x'), u32(0), u32(0)])), 'create: field name malformed'],
      [frame(HOST_MESSAGES.CONTINUE.tag, 12, Buffer.concat([u32(1), u32(5), Buffer.from('{}')])), 'continue: field state malformed'],
      [frame(HOST_MESSAGES.START.tag, 13, u32(1)), 'start: field state malformed'],
      [frame(HOST_MESSAGES.EXEC.tag, 14, Buffer.concat([u32(1), str('x1'), u32(0)])), 'exec: field plan malformed'],
      [frame(HOST_MESSAGES.PIDS.tag, 15, Buffer.concat([u32(1), u32(1)])), 'pids: field (end) malformed'],
      [frame(HOST_MESSAGES.STATS.tag, 16, Buffer.alloc(3)), 'stats: field proc malformed'],
      // A u64 cut in half.
      [frame(HOST_MESSAGES.UPDATE.tag, 17, Buffer.alloc(4 + 8 * 4 + 4)), 'update: field cpuWeight malformed'],
    ];
    for (const [bytes, message] of cases) {
      const r = await (a.send(bytes), a.next());
      assert.deepEqual(r, { type: 'ERROR', id: bytes.readUInt32LE(4), err: 74, message });
    }
    // A malformed RESIZE (a stream message) is logged and dropped, not answered.
    a.send(frame(HOST_MESSAGES.RESIZE.tag, 0, u32(1)));
    assert.equal((await a.ask({ type: 'HELLO', id: 99, version: AGENT_PROTOCOL_VERSION })).type, 'HELLO_OK');
  } finally {
    await a.stop();
  }
});

test('a frame that breaks the stream ends the agent: oversized, unknown tag, stream with an id', { skip }, async () => {
  for (const bad of [
    frame(HOST_MESSAGES.HELLO.tag, 1, Buffer.alloc(0), AGENT_LIMITS.MAX_HOST_PAYLOAD + 1),
    frame(0x4242, 1, Buffer.alloc(0)),
    frame(HOST_MESSAGES.STDIN.tag, 3, Buffer.alloc(8)),
    frame(HOST_MESSAGES.HELLO.tag, 0, Buffer.alloc(4)),
  ]) {
    const a = new Agent();
    a.send(bad);
    assert.equal(await a.exited, 1, `frame ${bad.subarray(0, 12).toString('hex')}`);
  }
});

test('fuzz: 3000 random payloads for every request each get one answer, and the agent survives', { skip }, async () => {
  const a = new Agent();
  try {
    // SHUTDOWN decodes from an empty payload and ends the loop: it has its own test above.
    const requests = Object.values(HOST_MESSAGES).filter((d) => !('stream' in d) && d.tag !== HOST_MESSAGES.SHUTDOWN.tag);
    let id = 1;
    let errors = 0;
    for (let i = 0; i < 3000; i++) {
      const def = requests[i % requests.length]!;
      const payload = randomBytes(i % 97);
      // Lengths that point inside the payload make the decoder walk further than all-random ones.
      if (payload.length >= 8) payload.writeUInt32LE(i % 7, 0);
      a.send(frame(def.tag, id, payload));
      const r = await a.next();
      assert.equal(r.id, id);
      if (r.type === 'ERROR') errors++;
      id++;
    }
    assert.ok(errors > 100, `${errors} errors`);
    assert.equal(a.child.exitCode, null);
  } finally {
    await a.stop();
  }
});
