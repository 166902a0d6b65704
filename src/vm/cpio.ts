// Writes the guest's initramfs: a newc ("070701") cpio archive, the format the kernel unpacks at boot.
//
// Written here rather than by cpio(1) so the image depends on nothing but its inputs: fixed
// owners (root), fixed mtimes (0) and sorted entries make the same inputs give the same bytes,
// and device nodes need no root to create.

export type CpioEntry =
  | { readonly kind: 'dir'; readonly path: string; readonly mode: number }
  | { readonly kind: 'file'; readonly path: string; readonly mode: number; readonly data: Buffer }
  | { readonly kind: 'symlink'; readonly path: string; readonly target: string }
  | { readonly kind: 'chardev'; readonly path: string; readonly mode: number; readonly major: number; readonly minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio: ${n} does not fit a header field`);
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): Buffer {
  return Buffer.alloc((4 - (n % 4)) % 4);
}

function record(ino: number, mode: number, data: Buffer, name: string, rdev: { major: number; minor: number } | undefined): Buffer[] {
  const nameBytes = Buffer.from(`${name}\0`, 'utf8');
  const header = [
    '070701',
    hex8(ino),
    hex8(mode),
    hex8(0), // uid
    hex8(0), // gid
    hex8((mode & 0o170000) === S_IFDIR ? 2 : 1),
    hex8(0), // mtime
    hex8(data.length),
    hex8(0),
    hex8(0),
    hex8(rdev?.major ?? 0),
    hex8(rdev?.minor ?? 0),
    hex8(nameBytes.length),
    hex8(0),
  ].join('');
  const head = Buffer.from(header, 'ascii');
  return [head, nameBytes, pad4(head.length + nameBytes.length), data, pad4(data.length)];
}

function checkPath(path: string): string {
  const rel = path.replace(/^\/+/, '');
  if (rel === '' || rel.split('/').some((c) => c === '' || c === '.' || c === '..')) {
    throw new RangeError(`cpio: ${JSON.stringify(path)} is not a clean path`);
  }
  return rel;
}

/**
 * The archive of entries, in path order (so a directory precedes what it holds) and ending with
 * the TRAILER!!! record. Throws on a duplicate or unclean path.
 */
export function writeCpio(entries: readonly CpioEntry[]): Buffer {
  const sorted = entries.map((e) => ({ e, rel: checkPath(e.path) })).sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  const parts: Buffer[] = [];
  let ino = 1;
  let last: string | undefined;
  for (const { e, rel } of sorted) {
    if (rel === last) throw new RangeError(`cpio: ${rel} given twice`);
    last = rel;
    switch (e.kind) {
      case 'dir':
        parts.push(...record(ino++, S_IFDIR | (e.mode & 0o7777), Buffer.alloc(0), rel, undefined));
        break;
      case 'file':
        parts.push(...record(ino++, S_IFREG | (e.mode & 0o7777), e.data, rel, undefined));
        break;
      case 'symlink':
        parts.push(...record(ino++, S_IFLNK | 0o777, Buffer.from(e.target, 'utf8'), rel, undefined));
        break;
      case 'chardev':
        parts.push(...record(ino++, S_IFCHR | (e.mode & 0o7777), Buffer.alloc(0), rel, { major: e.major, minor: e.minor }));
        break;
    }
  }
  parts.push(...record(0, 0, Buffer.alloc(0), 'TRAILER!!!', undefined));
  return Buffer.concat(parts);
}

/** Reads an archive back (for tests): the entries in order, without the trailer. */
export function readCpio(buf: Buffer): { path: string; mode: number; data: Buffer; rdevMajor: number; rdevMinor: number }[] {
  const out: { path: string; mode: number; data: Buffer; rdevMajor: number; rdevMinor: number }[] = [];
  let off = 0;
  for (;;) {
    if (buf.toString('ascii', off, off + 6) !== '070701') throw new Error(`cpio: bad magic at ${off}`);
    const field = (i: number): number => parseInt(buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
    const mode = field(1);
    const size = field(6);
    const namesize = field(11);
    const nameStart = off + 110;
    const name = buf.toString('utf8', nameStart, nameStart + namesize - 1);
    const dataStart = nameStart + namesize + ((4 - ((110 + namesize) % 4)) % 4);
    if (name === 'TRAILER!!!') return out;
    out.push({ path: name, mode, data: buf.subarray(dataStart, dataStart + size), rdevMajor: field(9), rdevMinor: field(10) });
    off = dataStart + size + ((4 - (size % 4)) % 4);
  }
}
