// The host processes of one VM: starting QEMU and virtiofsd in their jails, watching them, killing them without a trace.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { VmError } from './errors';

/** The last bytes of a child's output, for error messages. */
export class Tail {
  #buf = Buffer.alloc(0);
  constructor(readonly limit = 8192) {}
  push(chunk: Buffer): void {
    this.#buf = Buffer.concat([this.#buf, chunk]);
    if (this.#buf.length > this.limit) this.#buf = this.#buf.subarray(this.#buf.length - this.limit);
  }
  lastLine(): string {
    const lines = this.#buf.toString('utf8').split('\n').map((l) => l.trim()).filter((l) => l !== '');
    return lines[lines.length - 1] ?? '';
  }
  text(): string {
    return this.#buf.toString('utf8');
  }
}

export interface Jailed {
  readonly name: 'qemu' | 'virtiofsd';
  readonly child: ChildProcess;
  readonly exited: Promise<string>;
  readonly tail: Tail;
}

export function startJailed(name: 'qemu' | 'virtiofsd', argv: readonly string[], stdio: ('ignore' | 'pipe' | Socket | number)[]): Jailed {
  const [file, ...args] = argv;
  // detached: its own process group, so one kill reaches the wrappers and what they started.
  const child = spawn(file!, args, { stdio, detached: true, env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
  const tail = new Tail();
  child.stdout?.on('data', (c: Buffer) => tail.push(c));
  child.stderr?.on('data', (c: Buffer) => tail.push(c));
  const exited = new Promise<string>((resolve) => {
    child.once('error', (e) => resolve(`could not start: ${e.message}`));
    child.once('exit', (code, signal) => resolve(signal !== null ? `killed by ${signal}` : `exited with status ${code}`));
  });
  return { name, child, exited, tail };
}

/**
 * A jailed QEMU this process did not start (a pool VM handed over by its owner, pool.ts): its
 * wrapper's pid (its process group), the agent channel taken from the owner, and its end as the
 * owner tells it. Its exit status is the owner's to reap; here it is only gone or not.
 */
export function adoptedJailed(pid: number, channel: Socket, exited: Promise<string>): Jailed {
  let gone = false;
  void exited.then(() => { gone = true; });
  const alive = (): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const child = {
    pid, stdio: [null, null, null, channel], stdout: null, stderr: null, signalCode: null,
    get exitCode(): number | null {
      return gone || !alive() ? 0 : null;
    },
  };
  return { name: 'qemu', child: child as unknown as ChildProcess, exited, tail: new Tail() };
}

/**
 * How a jailed VMM ended, in its own terms: the host only sees its jail's wrapper exit. When
 * QEMU (unshare's forked child) dies of SIGKILL, unshare tries to die of the same signal, cannot
 * reset SIGKILL's handler, and exits 1 saying "unshare: sigprocmask unblock failed: Invalid
 * argument": that is QEMU killed, not a message of QEMU's. Other wrapper lines are named as the jail's.
 */
export function vmmExit(j: Jailed, how: string): string {
  const last = j.tail.lastLine();
  if (/^unshare: sigprocmask unblock failed/.test(last)) return `${j.name} killed by SIGKILL`;
  if (/^(unshare|setpriv|sh): /.test(last)) return `${j.name} ${how} (its jail's ${last})`;
  return `${j.name} ${how}${last !== '' ? `: ${last}` : ''}`;
}

export function killGroup(j: Jailed | undefined): void {
  if (j?.child.pid === undefined || j.child.exitCode !== null || j.child.signalCode !== null) return;
  try {
    process.kill(-j.child.pid, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits for p, or ms at most; the timer does not outlive the wait. */
export async function within(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([p, new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** The processes that run as `uid` or name `marker` on their command line (the VM's own). */
export function vmProcesses(uid: number, marker: string): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(name)) continue;
    try {
      const status = readFileSync(`/proc/${name}/status`, 'utf8');
      const m = /^Uid:\s+(\d+)/m.exec(status);
      if ((m !== null && Number(m[1]) === uid) || readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(marker)) out.push(Number(name));
    } catch {
      /* exited while we looked */
    }
  }
  return out;
}

/**
 * Kills a VM's processes so that none is left, not even as a zombie. QEMU is PID 1 of its own
 * pid namespace and virtiofsd's worker a child of virtiofsd: killed first, each is reaped by
 * its own parent (unshare, the virtiofsd that forked it), which then exits to us. Killed all at
 * once, they would be orphans that only the host's init reaps, when it gets round to it.
 */
export async function killVm(jailed: readonly (Jailed | undefined)[], uid: number, marker: string): Promise<void> {
  const ours = new Set(jailed.map((j) => j?.child.pid));
  const deadline = performance.now() + 10000;
  let left: number[] = [];
  for (let round = 0; ; round++) {
    left = vmProcesses(uid, marker);
    const live = jailed.filter((j) => j !== undefined && j.child.exitCode === null && j.child.signalCode === null);
    if (left.length === 0 && live.length === 0) return;
    if (performance.now() > deadline) break;
    for (const pid of left) {
      if (ours.has(pid)) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone already */
      }
    }
    // The wrappers get a moment to reap what they started; then they are killed too.
    if (round === 20 || left.every((pid) => ours.has(pid))) for (const j of live) killGroup(j);
    await delay(10);
  }
  throw new VmError('VMM_EXITED', `vm: processes ${left.join(', ')} of the VM are still there 10 s after the kill`);
}

function connectOnce(path: string): Promise<Socket | NodeJS.ErrnoException> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => resolve(s));
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e));
  });
}

/**
 * A connection to virtiofsd's socket, once it listens: the file appears at bind(), a moment
 * before listen(), so a refused connection is tried again until virtiofsd is ready or gone.
 */
export async function connectVirtiofsd(path: string, virtiofsd: Jailed, timeoutMs: number): Promise<Socket> {
  let gone: string | undefined;
  void virtiofsd.exited.then((how) => {
    gone = how;
  });
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (gone !== undefined) {
      const why = virtiofsd.tail.lastLine();
      throw new VmError('VMM_EXITED', `vm: virtiofsd ${gone}${why !== '' ? `: ${why}` : ''}`, { process: 'virtiofsd' });
    }
    const r = existsSync(path) ? await connectOnce(path) : undefined;
    if (r !== undefined && !(r instanceof Error)) return r;
    if (r !== undefined && r.code !== 'ECONNREFUSED' && r.code !== 'ENOENT') {
      throw new VmError('VMM_EXITED', `vm: cannot connect to virtiofsd: ${r.message}`, { process: 'virtiofsd' });
    }
    if (performance.now() > deadline) throw new VmError('BOOT_TIMEOUT', `vm: virtiofsd did not listen within ${timeoutMs} ms`);
    await delay(5);
  }
}
