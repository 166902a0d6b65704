// A QMP client over the socket QEMU finds on an inherited fd: commands one at a time, events ignored.
//
// Only the host's own commands go over it (saving a template, restoring a clone); what QEMU
// answers is still read as untrusted: a line longer than 1 MiB or not JSON ends the session.
import type { Socket } from 'node:net';
import { VmError } from './errors';

type Reply = { return?: unknown; error?: { class?: string; desc?: string } };

export class Qmp {
  #buf = '';
  #waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  #failed: Error | undefined;
  /** Resolves at QEMU's greeting: its chardevs made (its machine not yet; commands are served once its main loop runs). */
  readonly greeted: Promise<void>;

  constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => this.#receive(d));
    socket.on('close', () => this.#fail(new VmError('VMM_EXITED', 'vm: QEMU closed its QMP channel')));
    socket.on('error', (e) => this.#fail(new VmError('VMM_EXITED', `vm: QMP channel: ${e.message}`)));
    // The greeting takes the place of a reply to the first (implicit) command.
    this.greeted = new Promise((resolve, reject) => this.#waiting.push({ resolve: () => resolve(), reject }));
    this.greeted.catch(() => undefined);
  }

  #fail(e: Error): void {
    this.#failed ??= e;
    for (const w of this.#waiting.splice(0)) w.reject(this.#failed);
  }

  #receive(d: string): void {
    this.#buf += d;
    if (this.#buf.length > 1 << 20) return this.#fail(new VmError('PROTOCOL', 'vm: QMP line over 1 MiB'));
    for (let i = this.#buf.indexOf('\n'); i >= 0; i = this.#buf.indexOf('\n')) {
      const line = this.#buf.slice(0, i).trim();
      this.#buf = this.#buf.slice(i + 1);
      if (line === '') continue;
      let m: Reply & { event?: unknown; QMP?: unknown };
      try {
        m = JSON.parse(line) as typeof m;
      } catch {
        return this.#fail(new VmError('PROTOCOL', 'vm: QMP sent a line that is not JSON'));
      }
      if (m.event !== undefined) continue;
      this.#waiting.shift()?.resolve(m);
    }
  }

  /** Runs a command; rejects with QEMU's own description of an error. */
  async execute(command: string, args?: Record<string, unknown>): Promise<unknown> {
    if (this.#failed !== undefined) throw this.#failed;
    const reply = await new Promise<Reply>((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.socket.write(`${JSON.stringify(args === undefined ? { execute: command } : { execute: command, arguments: args })}\n`);
    });
    if (reply.error !== undefined) throw new VmError('VMM_EXITED', `vm: QEMU refused ${command}: ${reply.error.desc ?? reply.error.class ?? 'an error'}`, { command });
    return reply.return;
  }

  /** Polls query-migrate until the migration ends; resolves when it completed, throws when it failed. */
  async migrationDone(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const r = (await this.execute('query-migrate')) as { status?: string; 'error-desc'?: string };
      if (r.status === 'completed') return;
      if (r.status === 'failed' || r.status === 'cancelled') throw new VmError('VMM_EXITED', `vm: migration ${r.status}${r['error-desc'] !== undefined ? `: ${r['error-desc']}` : ''}`);
      if (Date.now() > deadline) throw new VmError('BOOT_TIMEOUT', `vm: migration not done within ${timeoutMs} ms (status ${r.status ?? 'none'})`);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  close(): void {
    this.#fail(new VmError('DESTROYED', 'vm: QMP closed'));
    this.socket.destroy();
  }
}
