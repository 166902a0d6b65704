// sb.files: files in and out of a sandbox, by small POSIX shell commands run in it.
//
// Each call is a command in the sandbox, behind its wall and with its user's rights: nothing is
// written or read by the host on a path the sandbox could have pointed elsewhere (a symlink to a
// host file resolves inside the sandbox's root), and it works the same at every level, a VM's
// guest included. The root needs /bin/sh, cat, mkdir and rm (busybox has them all).
import { posix } from 'node:path';
import { SandboxFileError, SandboxOptionsError } from './errors';
import type { FileEntry } from './types';

/** Runs argv in the sandbox to its end, its stdin given, its output as bytes. */
export type Runner = (argv: readonly string[], stdin: string | Uint8Array | undefined) => Promise<{ exitCode: number; stdout: Buffer; stderr: Buffer }>;

// Lists with shell built-ins only (cd, [, printf): NUL-separated "TYPE NAME" records, so any name survives.
const LIST = `cd -- "$1" || exit 2
for f in * .*; do
  case $f in .|..) continue;; esac
  [ -e "$f" ] || [ -L "$f" ] || continue
  if [ -L "$f" ]; then t=l; elif [ -d "$f" ]; then t=d; elif [ -f "$f" ]; then t=f; else t=o; fi
  printf '%s %s\\0' "$t" "$f"
done`;

const REMOVE = `[ -e "$1" ] || [ -L "$1" ] || { echo "$1: No such file or directory" >&2; exit 1; }
rm -rf -- "$1"`;

const TYPES: Readonly<Record<string, FileEntry['type']>> = { f: 'file', d: 'directory', l: 'symlink', o: 'other' };

function checkPath(path: unknown, what: string): string {
  if (typeof path !== 'string' || !path.startsWith('/')) throw new SandboxOptionsError(what, `must be an absolute path in the sandbox, not ${JSON.stringify(path)}`);
  if (path.includes('\0')) throw new SandboxOptionsError(what, 'must not contain a NUL byte');
  return path;
}

/** The first line of what the command said on stderr, else its status. */
function why(r: { exitCode: number; stderr: Buffer }): string {
  const line = r.stderr.toString('utf8').trim().split('\n')[0] ?? '';
  return line !== '' ? line : `exit status ${r.exitCode}`;
}

export class SandboxFiles {
  readonly #run: Runner;

  /** @internal Made by Sandbox. */
  constructor(run: Runner) {
    this.#run = run;
  }

  /** Writes `data` to `path` (made, or truncated), making its parent directories. */
  async write(path: string, data: string | Uint8Array): Promise<void> {
    const p = checkPath(path, 'path');
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) throw new SandboxOptionsError('data', 'must be a string or a Uint8Array');
    const r = await this.#run(['/bin/sh', '-c', 'mkdir -p -- "$1" && cat > "$2"', 'sh', posix.dirname(p), p], data);
    if (r.exitCode !== 0) throw new SandboxFileError(p, `files.write ${p}: ${why(r)}`);
  }

  /** The file's bytes; with 'utf8', as text. */
  read(path: string): Promise<Buffer>;
  read(path: string, encoding: 'utf8'): Promise<string>;
  async read(path: string, encoding?: 'utf8'): Promise<Buffer | string> {
    const p = checkPath(path, 'path');
    const r = await this.#run(['/bin/sh', '-c', 'exec cat -- "$1"', 'sh', p], undefined);
    if (r.exitCode !== 0) throw new SandboxFileError(p, `files.read ${p}: ${why(r)}`);
    return encoding === 'utf8' ? r.stdout.toString('utf8') : r.stdout;
  }

  /** The entries of a directory (not . and ..), sorted by name. */
  async list(path: string): Promise<FileEntry[]> {
    const p = checkPath(path, 'path');
    const r = await this.#run(['/bin/sh', '-c', LIST, 'sh', p], undefined);
    if (r.exitCode !== 0) throw new SandboxFileError(p, `files.list ${p}: ${why(r)}`);
    const out: FileEntry[] = [];
    for (const rec of r.stdout.toString('utf8').split('\0')) {
      if (rec === '') continue;
      const type = TYPES[rec.slice(0, 1)];
      if (type === undefined || rec[1] !== ' ') throw new SandboxFileError(p, `files.list ${p}: the sandbox's shell wrote an entry this cannot read: ${JSON.stringify(rec.slice(0, 80))}`);
      out.push({ name: rec.slice(2), type });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** Removes a file, or a directory and everything in it; a path that is not there is an error. */
  async remove(path: string): Promise<void> {
    const p = checkPath(path, 'path');
    if (posix.normalize(p) === '/') throw new SandboxOptionsError('path', 'files.remove will not remove /');
    const r = await this.#run(['/bin/sh', '-c', REMOVE, 'sh', p], undefined);
    if (r.exitCode !== 0) throw new SandboxFileError(p, `files.remove ${p}: ${why(r)}`);
  }
}
