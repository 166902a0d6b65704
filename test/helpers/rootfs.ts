// Builds container root file systems (busybox, the probe, passwd/group) and OCI bundles for tests.
import { execFileSync } from 'node:child_process';
import {
  chmodSync, closeSync, copyFileSync, existsSync, lchownSync, mkdirSync, mkdtempSync, openSync, readdirSync,
  readSync, rmSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/native/paths';
import { listMountsUnder } from './cleanup';

/** The host busybox copied into every rootfs; it must be statically linked (busybox-static). */
export function busyboxPath(): string {
  return process.env['STOCKADE_TEST_BUSYBOX'] ?? '/bin/busybox';
}

// Reads the ELF program headers: a PT_INTERP entry means the binary needs a dynamic loader, which
// a bare rootfs does not have, and exec would fail inside the container with a baffling ENOENT.
export function isStaticElf(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const header = Buffer.alloc(64);
    if (readSync(fd, header, 0, 64, 0) < 64 || header.readUInt32BE(0) !== 0x7f454c46) return false;
    const is64 = header[4] === 2;
    const phoff = is64 ? Number(header.readBigUInt64LE(32)) : header.readUInt32LE(28);
    const phentsize = header.readUInt16LE(is64 ? 54 : 42);
    const phnum = header.readUInt16LE(is64 ? 56 : 44);
    const table = Buffer.alloc(phentsize * phnum);
    readSync(fd, table, 0, table.length, phoff);
    const PT_INTERP = 3;
    for (let i = 0; i < phnum; i++) {
      if (table.readUInt32LE(i * phentsize) === PT_INTERP) return false;
    }
    return true;
  } finally {
    closeSync(fd);
  }
}

/**
 * Why rootfs-based tests cannot run here, or undefined when they can; made for
 * `test('...', { skip: rootfsUnavailable() }, ...)`.
 */
export function rootfsUnavailable(): string | undefined {
  const busybox = busyboxPath();
  if (!existsSync(busybox)) return `${busybox} not found: install busybox-static or set STOCKADE_TEST_BUSYBOX`;
  if (!isStaticElf(busybox)) return `${busybox} is dynamically linked: install busybox-static or set STOCKADE_TEST_BUSYBOX`;
  return undefined;
}

let applets: string[] | undefined;

function busyboxApplets(busybox: string): string[] {
  applets ??= execFileSync(busybox, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .filter((name) => name !== '' && name !== 'busybox' && !name.includes('/'));
  return applets;
}

/** The static probe (test/fixtures/bin/probe), built first if its source is newer. */
export function probePath(): string {
  const fixtures = join(packageRoot(), 'test', 'fixtures');
  execFileSync('sh', [join(fixtures, 'build.sh')], { stdio: ['ignore', 'inherit', 'inherit'] });
  return join(fixtures, 'bin', 'probe');
}

export const TEST_USER = { uid: 1000, gid: 1000, name: 'test' } as const;
export const NOBODY = { uid: 65534, gid: 65534, name: 'nobody' } as const;

const PASSWD = [
  'root:x:0:0:root:/root:/bin/sh',
  `${TEST_USER.name}:x:${TEST_USER.uid}:${TEST_USER.gid}:test user:/home/test:/bin/sh`,
  `${NOBODY.name}:x:${NOBODY.uid}:${NOBODY.gid}:nobody:/nonexistent:/bin/false`,
].join('\n') + '\n';

const GROUP = [
  'root:x:0:',
  'users:x:100:test',
  `${TEST_USER.name}:x:${TEST_USER.gid}:`,
  `nogroup:x:${NOBODY.gid}:`,
].join('\n') + '\n';

export interface RootfsOptions {
  /** Owner for every file, e.g. the host ids that container root maps to in a user-namespace test. */
  readonly owner?: { readonly uid: number; readonly gid: number };
}

function chownTree(path: string, uid: number, gid: number): void {
  lchownSync(path, uid, gid);
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) chownTree(child, uid, gid);
    else lchownSync(child, uid, gid);
  }
}

/**
 * Fills dir (absent or empty) with a minimal root file system: /bin/busybox and a symlink per
 * applet (sh, ls, cat, mount, ...), /bin/probe, /etc/passwd and /etc/group with root, test (1000)
 * and nobody, and the usual empty mountpoints. /sbin, /usr/bin and /usr/sbin lead to /bin.
 * Throws, saying why, when busybox is missing or dynamically linked.
 */
export function makeRootfs(dir: string, opts: RootfsOptions = {}): void {
  const unavailable = rootfsUnavailable();
  if (unavailable !== undefined) throw new Error(`makeRootfs: ${unavailable}`);

  // 0755 rather than mkdtemp's 0700: container root in a user namespace is an unprivileged host
  // uid and must still traverse to its root.
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(dir, 0o755);
  for (const sub of ['bin', 'dev', 'etc', 'proc', 'sys', 'run', 'mnt', 'usr', 'home/test']) {
    mkdirSync(join(dir, sub), { recursive: true, mode: 0o755 });
  }
  mkdirSync(join(dir, 'root'), { recursive: true, mode: 0o700 });
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  chmodSync(join(dir, 'tmp'), 0o1777);
  symlinkSync('bin', join(dir, 'sbin'));
  symlinkSync('../bin', join(dir, 'usr', 'bin'));
  symlinkSync('../bin', join(dir, 'usr', 'sbin'));

  const bin = join(dir, 'bin');
  const busybox = busyboxPath();
  copyFileSync(busybox, join(bin, 'busybox'));
  chmodSync(join(bin, 'busybox'), 0o755);
  // Relative links keep working wherever the rootfs ends up mounted.
  for (const applet of busyboxApplets(busybox)) symlinkSync('busybox', join(bin, applet));
  copyFileSync(probePath(), join(bin, 'probe'));
  chmodSync(join(bin, 'probe'), 0o755);

  writeFileSync(join(dir, 'etc', 'passwd'), PASSWD, { mode: 0o644 });
  writeFileSync(join(dir, 'etc', 'group'), GROUP, { mode: 0o644 });
  lchownSync(join(dir, 'home', 'test'), TEST_USER.uid, TEST_USER.gid);

  if (opts.owner !== undefined) chownTree(dir, opts.owner.uid, opts.owner.gid);
}

export interface BundlePaths {
  /** The bundle directory (holds config.json). */
  readonly dir: string;
  /** Its rootfs directory, `rootfs` relative to dir: the spec's root.path should say 'rootfs'. */
  readonly rootfs: string;
}

export interface Bundle extends BundlePaths {
  readonly configPath: string;
  /** Replaces config.json. */
  writeSpec(spec: object): void;
  /** Deletes the bundle; refuses while anything is still mounted below it (see remove's note). */
  remove(): void;
}

export interface BundleOptions {
  /** The config.json content, or a function of the bundle's paths (for mounts of absolute host paths). */
  readonly spec: object | ((paths: BundlePaths) => object);
  /** Where the bundle directory is created; the system temp directory by default. */
  readonly parent?: string;
  readonly rootfs?: RootfsOptions;
}

/** A fresh bundle directory with a rootfs from makeRootfs and config.json from the given spec. */
export function makeBundle(opts: BundleOptions): Bundle {
  const dir = mkdtempSync(join(opts.parent ?? tmpdir(), 'stockade-bundle-'));
  chmodSync(dir, 0o755);
  const rootfs = join(dir, 'rootfs');
  const configPath = join(dir, 'config.json');
  const writeSpec = (spec: object): void => writeFileSync(configPath, `${JSON.stringify(spec, null, 2)}\n`);
  try {
    makeRootfs(rootfs, opts.rootfs);
    writeSpec(typeof opts.spec === 'function' ? opts.spec({ dir, rootfs }) : opts.spec);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    dir,
    rootfs,
    configPath,
    writeSpec,
    remove(): void {
      // A recursive delete would walk into a mount left behind by a failed test, and a bind mount
      // of a host directory would lose its files: better a loud failure here.
      const left = listMountsUnder(dir);
      if (left.length > 0) {
        throw new Error(`bundle ${dir} still has mounts: ${left.map((m) => m.mountpoint).join(', ')}`);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
