// The --log file in logrus text or JSON lines, as runc writes it, and the one-line error on stderr.
import { appendFileSync, openSync, readFileSync, writeSync } from 'node:fs';

export type LogFormat = 'text' | 'json';
export type Level = 'debug' | 'info' | 'warning' | 'error';

export class Logger {
  readonly #path: string | undefined;
  readonly #format: LogFormat;
  readonly #debug: boolean;
  /** The file, held open (Logger.held); else it is opened for each line. */
  #fd: number | undefined;
  constructor(path: string | undefined, format: LogFormat, debug: boolean) {
    this.#path = path;
    this.#format = format;
    this.#debug = debug;
  }

  /** A logger that opens its file once: for a process that may not open files later (the confined sentry). */
  static held(path: string, format: LogFormat, debug = false): Logger {
    const l = new Logger(path, format, debug);
    try {
      l.#fd = openSync(path, 'a');
    } catch { /* each line tries the path again, and fails quietly as an unwritable log does */ }
    return l;
  }

  /** The --log file and its format, for a process of stockade's that outlives this one and logs there too. */
  get file(): { readonly path: string; readonly format: LogFormat } | undefined {
    return this.#path === undefined ? undefined : { path: this.#path, format: this.#format };
  }

  /** Whether debug lines are written (--debug). */
  get debugging(): boolean {
    return this.#debug;
  }

  log(level: Level, msg: string, fields: Readonly<Record<string, string | number | boolean | undefined>> = {}): void {
    if (level === 'debug' && !this.#debug) return;
    const line = formatLine(this.#format, level, msg, fields);
    if (this.#path === undefined) {
      // As runc without --log: its debug and warning lines go to stderr, in the format asked for.
      // Errors are said there once, by main, as one line.
      if (level === 'debug' || level === 'warning') err(`${line}\n`);
      return;
    }
    try {
      appendFileSync(this.#fd ?? this.#path, `${line}\n`);
    } catch { /* a log we cannot write must not hide the error itself */ }
  }
  debug(msg: string): void { this.log('debug', msg); }
  warn(msg: string): void { this.log('warning', msg); }
}

/** The keys of every line; a field of the same name is kept as `fields.NAME`, as logrus keeps it. */
const RESERVED = new Set(['time', 'level', 'msg']);

/**
 * One line as runc's logrus writes it: logfmt (`time="…" level=… msg=…`, then the fields) or a
 * JSON object with `level`, `msg` and `time`, the time in RFC 3339 to the second. containerd's
 * shim decodes each JSON line (a time it cannot parse as RFC 3339 loses the error) and reports
 * the last `error` line's msg as the reason a call failed.
 */
export function formatLine(format: LogFormat, level: Level, msg: string, fields: Readonly<Record<string, string | number | boolean | undefined>> = {}): string {
  const time = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const extra: [string, string | number | boolean][] = [];
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) extra.push([RESERVED.has(k) ? `fields.${k}` : k, v]);
  if (format === 'json') return JSON.stringify({ level, msg, time, ...Object.fromEntries(extra) });
  return [`time=${quote(time)}`, `level=${level}`, `msg=${quote(msg)}`, ...extra.map(([k, v]) => `${k}=${quote(String(v))}`)].join(' ');
}

/** logrus's rule: a value of anything but letters, digits and - . _ / @ ^ + is quoted (an empty one is not). */
function quote(s: string): string {
  return /^[A-Za-z0-9._/@^+-]*$/.test(s) ? s : JSON.stringify(s);
}

/**
 * Where the caller's stdio is: this process's fds 0, 1 and 2, or, in the resident planner
 * (src/planner/), the front that asked it, which writes what it is sent to its own and reads its
 * own stdin when asked.
 */
export interface Stdio {
  out(data: Buffer): void;
  err(data: Buffer): void;
  /** All of the caller's stdin, to its end; rejects as readFileSync(0) throws. */
  readIn(): Promise<Buffer>;
}

let stdio: Stdio | undefined;

/** The planner routes a request's output to its front; undefined restores this process's own. */
export function setStdio(s: Stdio | undefined): void {
  stdio = s;
}

/** Writes to the caller's stderr (the one-line error, and debug and warning lines without --log). */
export function err(text: string): void {
  if (stdio !== undefined) {
    stdio.err(Buffer.from(text));
    return;
  }
  writeSync(2, text);
}

/** The caller's stdin, read to its end (update --resources -, as containerd's shim gives them). */
export function readStdin(): Promise<Buffer> {
  if (stdio !== undefined) return stdio.readIn();
  try {
    return Promise.resolve(readFileSync(0));
  } catch (e) {
    return Promise.reject(e as Error);
  }
}

/** Writes to stdout without touching process.stdout, whose setup would make a shared pipe non-blocking. */
export function out(text: string): void {
  if (stdio !== undefined) {
    stdio.out(Buffer.from(text));
    return;
  }
  const buf = Buffer.from(text);
  let off = 0;
  while (off < buf.length) {
    try {
      off += writeSync(1, buf, off);
    } catch (e) {
      const code = (e as { code?: string }).code;
      // A reader that went away (`| head`) wants no more: as a program killed by SIGPIPE, say nothing.
      if (code === 'EPIPE') return;
      if (code !== 'EAGAIN') throw e;
    }
  }
}
