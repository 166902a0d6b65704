// Phase marks for finding where a call's time goes: STOCKADE_TIMING=1 prints them on stderr at exit,
// STOCKADE_TIMING=/ABSOLUTE/FILE appends them to that file (every process of the call alike).
//
// Each line names the process and its start as wall-clock milliseconds (`@EPOCH`), so the marks of
// the several processes one call runs (the CLI, a vm container's keeper) can be laid on one time line.
import { closeSync, openSync, writeSync } from 'node:fs';

const setting = process.env['STOCKADE_TIMING'] ?? '';
const toFile = setting.startsWith('/');
const enabled = setting === '1' || toFile;
const marks: string[] = [];
/** Where the marks go: stderr, unless the process has set another fd (the keeper's stderr is its workload's). */
let out = 2;

/** Whether marks are recorded (STOCKADE_TIMING=1). */
export function timingEnabled(): boolean {
  return enabled;
}

/** Records `name` with the milliseconds since the process started (Node's own start-up included). */
export function mark(name: string): void {
  if (!enabled) return;
  if (marks.length === 0) process.once('exit', flushTiming);
  marks.push(`${performance.now().toFixed(1)} ${name}`);
}

/** Sends the marks to `fd` instead of stderr (unless they go to STOCKADE_TIMING's file). */
export function timingTo(fd: number): void {
  out = fd;
}

/** Prints the marks so far, now: before this process execs another program, which Node's exit never reaches. */
export function flushTiming(): void {
  if (marks.length === 0) return;
  const who = `${process.argv[1]?.split('/').pop() ?? 'node'} ${process.pid} @${performance.timeOrigin.toFixed(0)}`;
  const line = `timing: ${who}: ${marks.join(' | ')}\n`;
  try {
    if (toFile) {
      const fd = openSync(setting, 'a', 0o600);
      writeSync(fd, line);
      closeSync(fd);
    } else writeSync(out, line);
  } catch { /* nowhere to say it */ }
  marks.length = 0;
}
