// Runs client commands for the client tier: plain, and under a pseudo-terminal from script(1).
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CmdResult {
  readonly argv: readonly string[];
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Milliseconds from spawn to exit. */
  readonly ms: number;
}

export interface CmdOptions {
  readonly input?: string;
  /** Milliseconds before the command is killed; 60 s by default. */
  readonly timeout?: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

/** A one-line account of a result for assertion messages. */
export function describeResult(r: CmdResult): string {
  const how = r.signal !== null ? `signal ${r.signal}` : `status ${String(r.status)}`;
  return `${r.argv.join(' ')}: ${how}\nstdout: ${r.stdout.slice(-2000)}\nstderr: ${r.stderr.slice(-2000)}`;
}

/**
 * Runs argv to completion. stdout and stderr go to files, not pipes: a client that starts a
 * daemon or a detached container may hand our pipe on to something that outlives it, and the
 * wait would then be for that rather than for the client.
 */
export async function runCmd(argv: readonly string[], opts: CmdOptions = {}): Promise<CmdResult> {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-cmd-'));
  const outFd = openSync(join(dir, 'out'), 'w+');
  const errFd = openSync(join(dir, 'err'), 'w+');
  const started = Date.now();
  try {
    const [file, ...args] = argv;
    if (file === undefined) throw new Error('runCmd: empty argv');
    const child = spawn(file, args, { stdio: ['pipe', outFd, errFd], env: opts.env ?? process.env, ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}) });
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(opts.input ?? '');
    const timeout = opts.timeout ?? 60_000;
    const { status, signal } = await new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
      child.on('error', (e) => { clearTimeout(timer); reject(e); });
      child.on('exit', (code, sig) => { clearTimeout(timer); resolve({ status: code, signal: sig }); });
    });
    return {
      argv, status, signal, ms: Date.now() - started,
      stdout: readFileSync(join(dir, 'out'), 'utf8'),
      stderr: readFileSync(join(dir, 'err'), 'utf8'),
    };
  } finally {
    closeSync(outFd);
    closeSync(errFd);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Like runCmd, but throws, with the output, unless the command exits 0. */
export async function mustRun(argv: readonly string[], opts: CmdOptions = {}): Promise<CmdResult> {
  const r = await runCmd(argv, opts);
  if (r.status !== 0) throw new Error(describeResult(r));
  return r;
}

/** Quotes a word for sh. */
export function shQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface PtyOptions {
  /** Typed once `prompt` has appeared in the output, or at once when there is no prompt. */
  readonly input?: string;
  readonly prompt?: RegExp;
  readonly timeout?: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

/**
 * Runs argv on a pseudo-terminal made by script(1), as a user at a terminal would, and returns
 * its exit status (script -e passes it through) and everything it wrote, \r\n and all. Input
 * waits for the prompt: typed earlier, it could reach the terminal before the client has put it
 * in raw mode, and come back twice.
 */
export async function runOnPty(argv: readonly string[], opts: PtyOptions = {}): Promise<CmdResult> {
  const started = Date.now();
  const command = argv.map(shQuote).join(' ');
  // script runs the command with $SHELL -c: pin it, as CI's login shell is not ours to choose.
  const env = { ...(opts.env ?? process.env), SHELL: '/bin/sh' };
  const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env, ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}) });
  let stdout = '';
  let stderr = '';
  let typed = opts.input === undefined;
  const type = (): void => {
    if (typed) return;
    typed = true;
    child.stdin.write(opts.input ?? '');
  };
  child.stdin.on('error', () => undefined);
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString('utf8');
    if (opts.prompt !== undefined && opts.prompt.test(stdout)) type();
  });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
  if (opts.prompt === undefined) type();
  const timeout = opts.timeout ?? 30_000;
  const { status, signal } = await new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, sig) => { clearTimeout(timer); resolve({ status: code, signal: sig }); });
  });
  return { argv: ['script', '-qec', command], status, signal, stdout, stderr, ms: Date.now() - started };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until check returns a value other than undefined, or throws after timeout ms. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeout = 20_000): Promise<T> {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(100);
  }
}
