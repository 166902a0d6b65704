// The --pid-file of create, run and exec: checked before anything is made, so a path that cannot
// be written fails the call with nothing to undo, and written atomically once the process exists.
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { StockadeError, errnoCode } from '../errors';
import { writeFileAtomic } from './atomic-file';

function refused(given: string, why: string): StockadeError {
  return new StockadeError('USAGE', `--pid-file ${given}: ${why}`, { path: given });
}

/** Throws, naming the path as given, unless the pid file's directory exists. */
export function checkPidFile(given: string): void {
  const dir = dirname(resolve(given));
  const st = statSync(dir, { throwIfNoEntry: false });
  if (st === undefined) throw refused(given, `its directory ${dir} does not exist`);
  if (!st.isDirectory()) throw refused(given, `${dir} is not a directory`);
}

/** Writes `pid`; a failure names the path as given, never the temporary file written first. */
export function writePidFile(given: string, pid: number): void {
  try {
    writeFileAtomic(resolve(given), String(pid));
  } catch (e) {
    const errno = errnoCode(e);
    throw refused(given, `cannot be written: ${errno === 'ENOENT' ? 'its directory does not exist' : errno ?? String(e)}`);
  }
}
