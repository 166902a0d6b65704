// Phase marks for finding where a call's time goes: STOCKADE_TIMING=1 prints them on stderr at exit.
import { writeSync } from 'node:fs';

const enabled = process.env['STOCKADE_TIMING'] === '1';
const marks: string[] = [];

/** Records `name` with the milliseconds since the process started (Node's own start-up included). */
export function mark(name: string): void {
  if (!enabled) return;
  if (marks.length === 0) process.once('exit', flushTiming);
  marks.push(`${performance.now().toFixed(1)} ${name}`);
}

/** Prints the marks so far, now: before this process execs another program, which Node's exit never reaches. */
export function flushTiming(): void {
  if (marks.length === 0) return;
  writeSync(2, `timing: ${marks.join(' | ')}\n`);
  marks.length = 0;
}
