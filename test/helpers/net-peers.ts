// The network peers of the sentry's network tests: TCP and UDP listeners and a DNS server, in a child process (the tests' stockade calls are synchronous).
//
// The child reads one JSON command a line on stdin and answers one JSON line on stdout:
//   {"tcp":[{"host":H,"port":P}]}      listens (port 0: any); answers {"ports":[...]}. Each connection
//                                      is written "H:P\n" (the address it reached) and closed.
//   {"udp":[{"host":H,"port":P}]}      binds; counts the datagrams each gets; answers {"ports":[...]}
//   {"counts":true}                    answers {"counts":{"H:P":N}}
//   {"dns":{"host":H,"stages":[{NAME:{"a":[IP...],"ttl":S}}...]}}
//                                      a DNS server on H:53 answering A queries from the first stage
//                                      (answers {"ok":true}, or {"error":...} when H:53 is taken);
//                                      a query for next.control.test moves to the next stage (the
//                                      workload itself changes the record between two connects).
//                                      Every query is counted: {"queries":N} from {"counts":true}.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { randomLoopback } from './net-scope';

const SCRIPT = String.raw`
const net = require('net'), dgram = require('dgram'), readline = require('readline');
const counts = {}; let queries = 0; let stages = [{}]; let stage = 0;
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
function name(m, at) { const l = []; for (;;) { const n = m[at]; if (n === 0) return [l.join('.').toLowerCase(), at + 1]; l.push(m.toString('latin1', at + 1, at + 1 + n)); at += 1 + n; } }
function answer(q) {
  const [qname, end] = name(q, 12); const qtype = q.readUInt16BE(end);
  queries++;
  if (qname === 'next.control.test') stage = Math.min(stage + 1, stages.length - 1);
  const rec = stages[stage][qname];
  const ips = rec === undefined || qtype !== 1 ? [] : rec.a;
  const head = Buffer.alloc(12); q.copy(head, 0, 0, 2);
  head.writeUInt16BE(0x8180 | (rec === undefined && qname !== 'next.control.test' ? 3 : 0), 2);
  head.writeUInt16BE(1, 4); head.writeUInt16BE(ips.length, 6);
  const parts = [head, q.subarray(12, end + 4)];
  for (const ip of ips) {
    const r = Buffer.alloc(16); r.writeUInt16BE(0xc00c, 0); r.writeUInt16BE(1, 2); r.writeUInt16BE(1, 4);
    r.writeUInt32BE(rec.ttl, 6); r.writeUInt16BE(4, 10); ip.split('.').forEach((b, i) => r.writeUInt8(Number(b), 12 + i));
    parts.push(r);
  }
  return Buffer.concat(parts);
}
readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const c = JSON.parse(line);
  if (c.tcp) {
    const ports = [];
    for (const l of c.tcp) ports.push(await new Promise((res, rej) => {
      const s = net.createServer((k) => { k.on('error', () => {}); k.end(l.host + ':' + s.address().port + '\n'); });
      s.on('error', rej); s.listen(l.port, l.host, () => res(s.address().port));
    }));
    out({ ports });
  } else if (c.udp) {
    const ports = [];
    for (const l of c.udp) ports.push(await new Promise((res, rej) => {
      const s = dgram.createSocket(l.host.includes(':') ? 'udp6' : 'udp4');
      s.on('error', rej);
      s.on('message', () => { const k = l.host + ':' + s.address().port; counts[k] = (counts[k] || 0) + 1; });
      s.bind(l.port, l.host, () => res(s.address().port));
    }));
    out({ ports });
  } else if (c.dns) {
    stages = c.dns.stages; stage = 0;
    const s = dgram.createSocket('udp4');
    s.on('message', (m, from) => { try { s.send(answer(m), from.port, from.address); } catch {} });
    s.once('error', (e) => { s.close(); out({ error: String(e) }); });
    s.bind(53, c.dns.host, () => { s.removeAllListeners('error'); s.on('error', () => {}); out({ ok: true }); });
  } else if (c.counts) {
    out({ counts, queries });
  }
});
`;

export class Peers {
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  readonly #waiting: ((l: string) => void)[] = [];

  /** Peers in this network namespace, or in `netns` (ip netns exec). */
  constructor(netns?: string) {
    const cmd = netns === undefined ? [process.execPath, '-e', SCRIPT] : ['ip', 'netns', 'exec', netns, process.execPath, '-e', SCRIPT];
    this.#child = spawn(cmd[0] as string, cmd.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
    createInterface({ input: this.#child.stdout as NodeJS.ReadableStream }).on('line', (l) => {
      const w = this.#waiting.shift();
      if (w !== undefined) w(l);
      else this.#lines.push(l);
    });
  }

  async #ask<T>(cmd: unknown): Promise<T> {
    this.#child.stdin?.write(`${JSON.stringify(cmd)}\n`);
    const line = this.#lines.shift() ?? await new Promise<string>((res, rej) => {
      const t = setTimeout(() => rej(new Error(`peers: no answer to ${JSON.stringify(cmd)}`)), 10_000);
      this.#waiting.push((l) => {
        clearTimeout(t);
        res(l);
      });
    });
    const r = JSON.parse(line) as T & { error?: string };
    if (r.error !== undefined) throw new Error(`peers: ${r.error}`);
    return r;
  }

  async tcp(host: string, port = 0): Promise<number> {
    return (await this.#ask<{ ports: number[] }>({ tcp: [{ host, port }] })).ports[0] as number;
  }

  async udp(host: string, port = 0): Promise<number> {
    return (await this.#ask<{ ports: number[] }>({ udp: [{ host, port }] })).ports[0] as number;
  }

  /**
   * A DNS server on port 53 of a loopback address of its own (the sentry's dns= rule names an
   * address, on port 53): a random 127.A.B.C, drawn again while another run holds it. Returns it.
   */
  async dns(stages: readonly Record<string, { a: string[]; ttl: number }>[]): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      const host = randomLoopback();
      try {
        await this.#ask({ dns: { host, stages } });
        return host;
      } catch (e) {
        if (attempt >= 8 || !/EADDRINUSE/.test((e as Error).message)) throw e;
      }
    }
  }

  async counts(): Promise<{ counts: Record<string, number>; queries: number }> {
    return this.#ask({ counts: true });
  }

  stop(): void {
    this.#child.kill('SIGKILL');
  }
}
