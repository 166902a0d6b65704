// The --log file in logrus text or JSON lines, as runc writes it, and the one-line error on stderr.
import { appendFileSync, openSync, writeSync } from 'node:fs';

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
    const time = new Date().toISOString();
    if (this.#path === undefined) {
      if (level === 'debug' || level === 'warning') writeSync(2, `${level}: ${msg}\n`);
      return;
    }
    let line: string;
    if (this.#format === 'json') {
      line = JSON.stringify({ level, msg, time, ...fields });
    } else {
      const extra = Object.entries(fields).filter(([, v]) => v !== undefined).map(([k, v]) => ` ${k}=${quote(String(v))}`).join('');
      line = `time="${time}" level=${level} msg=${quote(msg)}${extra}`;
    }
    try {
      appendFileSync(this.#fd ?? this.#path, `${line}\n`);
    } catch { /* a log we cannot write must not hide the error itself */ }
  }
  debug(msg: string): void { this.log('debug', msg); }
  warn(msg: string): void { this.log('warning', msg); }
}

function quote(s: string): string {
  return /^[\w./:-]+$/.test(s) ? s : JSON.stringify(s);
}

/** Writes to stdout without touching process.stdout, whose setup would make a shared pipe non-blocking. */
export function out(text: string): void {
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
