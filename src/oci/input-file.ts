// Reads a JSON input file the user names (a bundle's config.json, an `exec --process` file) only
// when it is a regular file of bounded size.
//
// readFileSync alone trusts the path: a FIFO blocks the open (and `create` with it) until someone
// writes, a device such as /dev/zero is read until memory runs out. Files this small cost nothing
// to check first.

import { closeSync, constants, fstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { errnoCode } from '../errors/index';

/** The largest input file read: far above any real config (Docker's default seccomp profile is ~20 KB). */
export const MAX_INPUT_BYTES = 8 << 20;

/**
 * The deepest nesting of arrays and objects parseJson accepts. Real configs nest about 8 deep;
 * past a few thousand levels the recursive walks over a document (the validator, structuredClone)
 * overflow the stack.
 */
export const MAX_JSON_DEPTH = 256;

export type InputRead =
  | { readonly ok: true; readonly text: string }
  /** `problem` completes a sentence that starts with the file's name: "is not a regular file (a FIFO)". */
  | { readonly ok: false; readonly problem: string; readonly errno?: string };

function kindOf(st: Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isDirectory()) return 'a directory';
  return 'not a file';
}

function refusal(e: unknown): InputRead {
  const errno = errnoCode(e);
  const problem = errno === 'ENOENT' ? 'does not exist'
    : errno === 'ENOTDIR' ? 'does not exist (a parent is not a directory)'
    : errno === 'EACCES' ? 'cannot be read (permission denied)'
    : errno === 'ELOOP' ? 'cannot be read (too many levels of symbolic links)'
    : `cannot be read (${errno ?? String(e)})`;
  return errno === undefined ? { ok: false, problem } : { ok: false, problem, errno };
}

const tooLarge = (): InputRead => ({ ok: false, problem: `is larger than ${MAX_INPUT_BYTES >> 20} MiB` });

/**
 * The text of `path` if it is a regular file (symlinks followed) of at most MAX_INPUT_BYTES.
 * Anything else is not opened at all where stat tells (a device's open can have effects), and is
 * never read past the cap where the file changes under us.
 */
export function readInputFile(path: string): InputRead {
  let st: Stats;
  try {
    st = statSync(path);
  } catch (e) {
    return refusal(e);
  }
  if (!st.isFile()) return { ok: false, problem: `is not a regular file (${kindOf(st)})` };
  if (st.size > MAX_INPUT_BYTES) return tooLarge();
  let fd: number;
  try {
    // O_NONBLOCK: had the path become a FIFO since the stat, the open must not wait for a writer.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    return refusal(e);
  }
  try {
    const opened = fstatSync(fd);
    if (!opened.isFile()) return { ok: false, problem: `is not a regular file (${kindOf(opened)})` };
    // Read to the end, not to the size fstat gave: the size of some regular files (in /proc) is 0,
    // and a file may grow meanwhile. Never more than one byte past the cap.
    let buf = Buffer.allocUnsafe(Math.min(Math.max(opened.size + 1, 1 << 16), MAX_INPUT_BYTES + 1));
    let length = 0;
    for (;;) {
      if (length === buf.length) {
        if (length > MAX_INPUT_BYTES) return tooLarge();
        const bigger = Buffer.allocUnsafe(Math.min(buf.length * 2, MAX_INPUT_BYTES + 1));
        buf.copy(bigger, 0, 0, length);
        buf = bigger;
      }
      const n = readSync(fd, buf, length, buf.length - length, null);
      if (n === 0) break;
      length += n;
    }
    if (length > MAX_INPUT_BYTES) return tooLarge();
    return { ok: true, text: buf.toString('utf8', 0, length) };
  } catch (e) {
    return refusal(e);
  } finally {
    closeSync(fd);
  }
}
