// The host's agent client against a fake guest: replies, streams and credit, and every way a guest can break them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Duplex, PassThrough } from 'node:stream';
import { AgentClient } from '../../../src/vm/agent-client';
import { FrameDecoder, encodeGuest } from '../../../src/vm/codec';
import { VmError } from '../../../src/vm/errors';
import { AGENT_LIMITS, type GuestMessage, type HostMessage } from '../../../src/vm/protocol';

class FakeGuest {
  readonly toHost = new PassThrough();
  readonly toGuest = new PassThrough();
  readonly channel = Duplex.from({ readable: this.toHost, writable: this.toGuest });
  readonly received: HostMessage[] = [];
  readonly violations: VmError[] = [];
  readonly client: AgentClient;
  #decoder = FrameDecoder.fromHost();

  constructor(requestTimeoutMs = 5000) {
    this.toGuest.on('data', (c: Buffer) => this.received.push(...this.#decoder.push(c)));
    this.client = new AgentClient(this.channel, { requestTimeoutMs, onViolation: (e) => this.violations.push(e) });
  }

  send(...ms: GuestMessage[]): void {
    this.toHost.write(Buffer.concat(ms.map(encodeGuest)));
  }

  /** The next host message of a type, once it has arrived. */
  async take<T extends HostMessage['type']>(type: T): Promise<Extract<HostMessage, { type: T }>> {
    for (let i = 0; i < 200; i++) {
      const at = this.received.findIndex((m) => m.type === type);
      if (at >= 0) return this.received.splice(at, 1)[0] as Extract<HostMessage, { type: T }>;
      await new Promise((r) => setImmediate(r));
    }
    throw new Error(`no ${type} from the host`);
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

async function spawned(g: FakeGuest, sinks: { out?: (c: Buffer) => void | Promise<void>; stdin?: boolean } = {}): Promise<number> {
  const p = g.client.spawn({ args: ['x'], env: [], cwd: '/', root: '/r', uid: 0, gid: 0, stdin: sinks.stdin ?? false, onStdout: sinks.out ?? (() => undefined), onStderr: () => undefined });
  const req = await g.take('SPAWN');
  g.send({ type: 'SPAWNED', id: req.id, proc: 1, pid: 100 });
  return (await p).proc;
}

test('a process: output flows (even in the same read as SPAWNED), credit returns, exit waits for both streams', async () => {
  const g = new FakeGuest();
  const out: string[] = [];
  const p = g.client.spawn({ args: ['echo'], env: [], cwd: '/', root: '/r', uid: 0, gid: 0, stdin: false, onStdout: (c) => void out.push(c.toString()), onStderr: () => undefined });
  const req = await g.take('SPAWN');
  assert.deepEqual(req.args, ['echo']);
  g.send({ type: 'SPAWNED', id: req.id, proc: 1, pid: 100 }, { type: 'OUTPUT', id: 0, proc: 1, stream: 1, data: Buffer.from('hi\n') });
  assert.deepEqual(await p, { proc: 1, pid: 100, outputDone: (await p).outputDone });
  const w = await g.take('WINDOW');
  assert.deepEqual([w.proc, w.stream, w.bytes], [1, 1, 3]);
  const waited = g.client.wait(1);
  const wreq = await g.take('WAIT');
  g.send({ type: 'EXITED', id: wreq.id, proc: 1, code: 0, signal: 0, oomKills: 0n }, { type: 'OUTPUT', id: 0, proc: 1, stream: 1, data: Buffer.alloc(0) });
  let settled = false;
  void waited.then(() => { settled = true; });
  await tick();
  assert.equal(settled, false, 'wait resolved before stderr ended');
  g.send({ type: 'OUTPUT', id: 0, proc: 1, stream: 2, data: Buffer.alloc(0) });
  assert.deepEqual(await waited, { code: 0, signal: null });
  assert.deepEqual(out, ['hi\n']);
  assert.deepEqual(g.violations, []);
});

test('back-pressure: no credit goes back until the sink has taken the chunk', async () => {
  const g = new FakeGuest();
  let release!: () => void;
  await spawned(g, { out: () => new Promise<void>((r) => { release = r; }) });
  g.send({ type: 'OUTPUT', id: 0, proc: 1, stream: 1, data: Buffer.alloc(1000) });
  await tick();
  await tick();
  assert.equal(g.received.filter((m) => m.type === 'WINDOW').length, 0);
  release();
  assert.equal((await g.take('WINDOW')).bytes, 1000);
});

test('stdin is sent only within the window the agent acknowledges', async () => {
  const g = new FakeGuest();
  await spawned(g, { stdin: true });
  const total = AGENT_LIMITS.STREAM_WINDOW + 5000;
  const written = g.client.writeStdin(1, Buffer.alloc(total, 1));
  for (let i = 0; i < 20; i++) await tick();
  const sent = (): number => g.received.filter((m) => m.type === 'STDIN').reduce((n, m) => n + (m.type === 'STDIN' ? m.data.length : 0), 0);
  assert.equal(sent(), AGENT_LIMITS.STREAM_WINDOW);
  g.send({ type: 'WINDOW', id: 0, proc: 1, stream: 0, bytes: 5000 });
  await written;
  assert.equal(sent(), total);
});

test('an ERROR reply rejects with the errno and the message', async () => {
  const g = new FakeGuest();
  const p = g.client.signal(3, 9);
  const req = await g.take('SIGNAL');
  g.send({ type: 'ERROR', id: req.id, err: 3, message: 'signal: no process 3' });
  await assert.rejects(p, (e: unknown) => e instanceof VmError && e.reason === 'AGENT' && e.context['errno'] === 3 && /no process 3/.test(e.message));
  assert.deepEqual(g.violations, []);
});

async function violation(g: FakeGuest, open: Promise<unknown>, why: RegExp): Promise<void> {
  await assert.rejects(open, (e: unknown) => e instanceof VmError && e.reason === 'PROTOCOL' && why.test(e.message));
  assert.equal(g.violations.length, 1);
  assert.match(g.violations[0]!.message, why);
  // Nothing more is accepted from this guest.
  await assert.rejects(g.client.signal(1, 9), VmError);
}

test('a reply to no open request ends the VM', async () => {
  const g = new FakeGuest();
  const open = g.client.signal(1, 9);
  await g.take('SIGNAL');
  g.send({ type: 'OK', id: 4242 });
  await violation(g, open, /answers request 4242, which is not open/);
});

test('a reply of the wrong type ends the VM', async () => {
  const g = new FakeGuest();
  const open = g.client.hello(1000);
  const req = await g.take('HELLO');
  g.send({ type: 'SPAWNED', id: req.id, proc: 1, pid: 1 });
  await violation(g, open, /SPAWNED cannot answer HELLO/);
});

test('output beyond the credit granted ends the VM', async () => {
  const g = new FakeGuest();
  await spawned(g, { out: () => new Promise<void>(() => undefined) });
  const open = g.client.wait(1);
  for (let sent = 0; sent <= AGENT_LIMITS.STREAM_WINDOW; sent += AGENT_LIMITS.MAX_CHUNK) {
    g.send({ type: 'OUTPUT', id: 0, proc: 1, stream: 1, data: Buffer.alloc(AGENT_LIMITS.MAX_CHUNK) });
  }
  await violation(g, open, /with 0 of credit/);
});

test('output for a process the host never spawned, or after its end, ends the VM', async () => {
  const g = new FakeGuest();
  const open = g.client.signal(1, 9);
  g.send({ type: 'OUTPUT', id: 0, proc: 77, stream: 1, data: Buffer.from('x') });
  await violation(g, open, /process 77, which the host did not spawn/);

  const g2 = new FakeGuest();
  await spawned(g2);
  const open2 = g2.client.wait(1);
  g2.send({ type: 'OUTPUT', id: 0, proc: 1, stream: 2, data: Buffer.alloc(0) }, { type: 'OUTPUT', id: 0, proc: 1, stream: 2, data: Buffer.from('late') });
  await violation(g2, open2, /after its end/);
});

test('a stdin acknowledgement for more than was sent ends the VM', async () => {
  const g = new FakeGuest();
  await spawned(g, { stdin: true });
  const open = g.client.wait(1);
  g.send({ type: 'WINDOW', id: 0, proc: 1, stream: 0, bytes: 1 });
  await violation(g, open, /returns 1 stdin bytes of 0 sent/);
});

test('garbage on the channel ends the VM', async () => {
  const g = new FakeGuest();
  const open = g.client.hello(1000);
  g.toHost.write(Buffer.from('this is not a frame at all'));
  await violation(g, open, /unknown message tag/);
});

test('an agent that does not answer in time ends the VM', async () => {
  const g = new FakeGuest(50);
  await assert.rejects(g.client.signal(1, 9), (e: unknown) => e instanceof VmError && e.reason === 'TIMEOUT');
  assert.equal(g.violations[0]?.reason, 'TIMEOUT');
});

const container = { name: 'c1', plan: Buffer.from('plan'), stdin: false, terminal: false };

test('a container: HOOK runs the host\'s hooks and CONTINUE carries their state; its output flows from the reply that names it', async () => {
  const g = new FakeGuest();
  const out: string[] = [];
  const hooks: [number, number][] = [];
  const created = g.client.create({ ...container, onStdout: (c) => void out.push(c.toString()), onStderr: () => undefined }, async (point, pid) => {
    hooks.push([point, pid]);
    return Buffer.from('{"status":"creating"}');
  });
  const req = await g.take('CREATE');
  assert.deepEqual([req.name, req.flags, req.plan.toString()], ['c1', 0, 'plan']);
  // Output in the same read as the HOOK that names the process.
  g.send({ type: 'HOOK', id: req.id, proc: 3, pid: 50, point: 1 }, { type: 'OUTPUT', id: 0, proc: 3, stream: 2, data: Buffer.from('x') });
  const cont = await g.take('CONTINUE');
  assert.deepEqual([cont.proc, cont.state.toString()], [3, '{"status":"creating"}']);
  g.send({ type: 'CREATED', id: cont.id, proc: 3, pid: 50 }, { type: 'OUTPUT', id: 0, proc: 3, stream: 1, data: Buffer.from('hi') });
  const c = await created;
  assert.deepEqual([c.proc, c.pid, hooks], [3, 50, [[1, 50]]]);
  await tick();
  assert.deepEqual(out, ['hi']);
  assert.deepEqual(g.violations, []);
});

test('a container whose hook fails is killed and waited for, and the failure is what create reports', async () => {
  const g = new FakeGuest();
  const created = g.client.create({ ...container, onStdout: () => undefined, onStderr: () => undefined }, async () => {
    throw new Error('prestart hook failed');
  });
  const req = await g.take('CREATE');
  g.send({ type: 'HOOK', id: req.id, proc: 3, pid: 50, point: 1 });
  const sig = await g.take('SIGNAL');
  assert.deepEqual([sig.proc, sig.signal, sig.flags], [3, 9, 0]);
  g.send({ type: 'OK', id: sig.id });
  const w = await g.take('WAIT');
  g.send({ type: 'EXITED', id: w.id, proc: 3, code: -1, signal: 9, oomKills: 0n }, { type: 'OUTPUT', id: 0, proc: 3, stream: 1, data: Buffer.alloc(0) },
    { type: 'OUTPUT', id: 0, proc: 3, stream: 2, data: Buffer.alloc(0) });
  await assert.rejects(created, /prestart hook failed/);
  assert.deepEqual(g.violations, []);
});

test('a terminal has one output stream: the exit waits for stdout alone, and stderr output is a breach', async () => {
  const g = new FakeGuest();
  const created = g.client.create({ ...container, terminal: true, onStdout: () => undefined, onStderr: () => undefined }, async () => undefined);
  const req = await g.take('CREATE');
  assert.equal(req.flags, 2);
  g.send({ type: 'CREATED', id: req.id, proc: 4, pid: 60 });
  await created;
  // A pty is written to even without the STDIN flag.
  await g.client.writeStdin(4, Buffer.from('ls\n'));
  assert.equal((await g.take('STDIN')).data.toString(), 'ls\n');
  g.client.resize(4, 33, 77);
  const rs = await g.take('RESIZE');
  assert.deepEqual([rs.proc, rs.rows, rs.cols], [4, 33, 77]);
  const waited = g.client.wait(4);
  const w = await g.take('WAIT');
  g.send({ type: 'EXITED', id: w.id, proc: 4, code: 0, signal: 0, oomKills: 0n }, { type: 'OUTPUT', id: 0, proc: 4, stream: 1, data: Buffer.alloc(0) });
  assert.deepEqual(await waited, { code: 0, signal: null });
  const g2 = new FakeGuest();
  const c2 = g2.client.create({ ...container, terminal: true, onStdout: () => undefined, onStderr: () => undefined }, async () => undefined);
  const r2 = await g2.take('CREATE');
  g2.send({ type: 'CREATED', id: r2.id, proc: 4, pid: 60 }, { type: 'OUTPUT', id: 0, proc: 4, stream: 2, data: Buffer.from('x') });
  await c2;
  await tick();
  assert.match(g2.violations[0]?.message ?? '', /stream 2 of process 4 after its end/);
});

test('a CREATED that names another process than its HOOK, or a process already running, ends the VM', async () => {
  const g = new FakeGuest();
  const created = g.client.create({ ...container, onStdout: () => undefined, onStderr: () => undefined }, async () => undefined);
  const req = await g.take('CREATE');
  g.send({ type: 'HOOK', id: req.id, proc: 3, pid: 50, point: 1 });
  const cont = await g.take('CONTINUE');
  g.send({ type: 'CREATED', id: cont.id, proc: 9, pid: 50 });
  await assert.rejects(created, /CREATED names process 9, not 3/);
  assert.equal(g.violations.length, 1);

  const g2 = new FakeGuest();
  await spawned(g2);
  const e = g2.client.exec(1, { ...container, onStdout: () => undefined, onStderr: () => undefined });
  const r = await g2.take('EXEC');
  g2.send({ type: 'CREATED', id: r.id, proc: 1, pid: 70 });
  await assert.rejects(e, /process 1, which is already running/);
});

test('pids and stats come back typed; a STATS_OK for a PIDS request ends the VM', async () => {
  const g = new FakeGuest();
  const pids = g.client.pids(3);
  const p = await g.take('PIDS');
  g.send({ type: 'PIDS_OK', id: p.id, pids: [50, 51] });
  assert.deepEqual(await pids, [50, 51]);
  const stats = g.client.stats(3);
  const s = await g.take('STATS');
  const figures = { cpuUsageUsec: 5n, cpuUserUsec: 3n, cpuSystemUsec: 2n, memoryCurrent: 1024n, memoryMax: 0xffffffffffffffffn, memoryAnon: 512n, memoryFile: 0n, pidsCurrent: 2n, pidsMax: 100n, oomKills: 1n };
  g.send({ type: 'STATS_OK', id: s.id, ...figures });
  assert.deepEqual(await stats, figures);
  const again = g.client.pids(3);
  const p2 = await g.take('PIDS');
  g.send({ type: 'STATS_OK', id: p2.id, ...figures });
  await assert.rejects(again, /STATS_OK cannot answer PIDS/);
});

/** The first breach a fake guest's client reported (read through a call: deepEqual's assertion narrows the field itself). */
function firstViolation(x: FakeGuest): string {
  return x.violations[0]?.message ?? '';
}

test('DNS: a query on a listener the host asked for reaches its handler and the answer goes back; one without a listener, or empty, ends the VM', async () => {
  const g = new FakeGuest();
  const seen: [number, number, string][] = [];
  const listening = g.client.dnsListen(Buffer.from([127, 0, 0, 11]), 53, (l, q, d) => void seen.push([l, q, d.toString()]));
  const req = await g.take('DNS_LISTEN');
  assert.deepEqual([...req.address], [127, 0, 0, 11]);
  assert.equal(req.port, 53);
  g.send({ type: 'OK', id: req.id });
  assert.equal(await listening, 0);
  g.send({ type: 'DNS_QUERY', id: 0, listener: 0, query: 7, data: Buffer.from('q') });
  await tick();
  assert.deepEqual(seen, [[0, 7, 'q']]);
  g.client.dnsAnswer(7, Buffer.from('a'));
  const ans = await g.take('DNS_ANSWER');
  assert.deepEqual([ans.query, ans.data.toString()], [7, 'a']);
  assert.deepEqual(g.violations, []);
  g.send({ type: 'DNS_QUERY', id: 0, listener: 1, query: 8, data: Buffer.from('q') });
  await tick();
  assert.match(firstViolation(g), /DNS_QUERY on listener 1, which the host did not ask for/);

  const h = new FakeGuest();
  h.send({ type: 'DNS_QUERY', id: 0, listener: 0, query: 1, data: Buffer.from('q') });
  await tick();
  assert.match(firstViolation(h), /which the host did not ask for/, 'no listener asked for at all');

  const k = new FakeGuest();
  const l = k.client.dnsListen(Buffer.from([127, 0, 0, 11]), 53, () => undefined);
  k.send({ type: 'OK', id: (await k.take('DNS_LISTEN')).id });
  await l;
  k.send({ type: 'DNS_QUERY', id: 0, listener: 0, query: 1, data: Buffer.alloc(AGENT_LIMITS.DNS_MAX_QUERY + 1) });
  await tick();
  assert.match(firstViolation(k), /DNS_QUERY of 4097 bytes/);
});
