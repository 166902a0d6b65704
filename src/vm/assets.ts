// The guest's boot assets: a kernel and the initramfs stockade writes for it, cached by a hash of every input.
//
// The initramfs holds the agent as /init, stockade-init, the modules in load order and nothing
// else. A guest lives in `<cache>/guests/<key>/`, where key hashes the kernel and modules, the
// agent, stockade-init and this file's format number: change any of them and the next boot
// builds a new guest (old ones stay until removed; nothing reads them again).
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StockadeError } from '../errors';
import { packageRoot } from '../native/paths';
import { writeCpio, type CpioEntry } from './cpio';
import { debianCloudKernel, userKernel, type GuestKernel, type KernelFlavour } from './kernel';
import { NET_ONLY_MODULES, stripSignature } from './modules';

/** Bump when the initramfs layout changes, so cached guests of the old layout are not used. */
const FORMAT = 3;

/** Where the guest finds its module list (native/agent/main.c reads it). */
export const MODULE_ORDER_FILE = 'lib/modules/load-order';
/**
 * The modules the agent loads at a VM's first NET_LINK (native/agent/net.c): every module, in
 * order, the boot ones again (finit_module's EEXIST is no failure), so the file is right whatever
 * NET_ONLY_MODULES' dependencies are.
 */
export const NET_MODULE_ORDER_FILE = 'lib/modules/net-order';

export interface GuestAssets {
  readonly kernel: string;
  readonly initramfs: string;
  /** The guest kernel's release: what `uname -r` says inside. */
  readonly release: string;
  readonly key: string;
}

export interface GuestAssetOptions {
  /** The cache root; STOCKADE_VM_CACHE, else /var/lib/stockade/vm. */
  readonly cacheDir?: string;
  /** The user's own kernel instead of Debian's cloud kernel. */
  readonly kernel?: { readonly vmlinuz: string; readonly moduleDir: string };
  /** The agent and stockade-init executables (both must be static); the build's by default. */
  readonly agent?: string;
  readonly init?: string;
  /** Boot the compressed bzImage even when an uncompressed vmlinux is at hand (for comparison). */
  readonly compressed?: boolean;
  /** Another of Debian's kernels than the cloud one (templates take the generic one for its 9p). */
  readonly flavour?: KernelFlavour;
}

export function defaultCacheDir(): string {
  return process.env['STOCKADE_VM_CACHE'] ?? '/var/lib/stockade/vm';
}

export function agentBinary(): string {
  return process.env['STOCKADE_AGENT'] ?? join(packageRoot(), 'build', 'Release', 'stockade-agent');
}

/** The static build of stockade-init: the guest has no libc to load a dynamic one with. */
export function guestInitBinary(): string {
  return process.env['STOCKADE_GUEST_INIT'] ?? join(packageRoot(), 'build', 'Release', 'stockade-init-static');
}

function readInput(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new StockadeError('UNSUPPORTED', `vm guest: cannot read ${what} ${path}: ${(e as Error).message}`, { path });
  }
}

// A dynamic executable would fail in the guest with a bare ENOENT from execve: say why here.
function requireStatic(elf: Buffer, what: string, path: string): void {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46) throw new StockadeError('UNSUPPORTED', `vm guest: ${what} ${path} is not an ELF file`, { path });
  const phoff = Number(elf.readBigUInt64LE(32));
  const phentsize = elf.readUInt16LE(54);
  const phnum = elf.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 <= elf.length && elf.readUInt32LE(at) === 3 /* PT_INTERP */) {
      throw new StockadeError('UNSUPPORTED', `vm guest: ${what} ${path} is dynamically linked; the guest has no libc`, { path });
    }
  }
}

/** The initramfs image for a kernel, agent and stockade-init. */
export function buildInitramfs(kernel: GuestKernel, agent: Buffer, init: Buffer): Buffer {
  const modules = kernel.modules.map((m) => ({ name: m.name, data: stripSignature(readInput(m.path, 'kernel module')) }));
  const entries: CpioEntry[] = [
    ...['dev', 'proc', 'sys', 'run', 'sbin', 'lib', 'lib/modules'].map((path) => ({ kind: 'dir' as const, path, mode: 0o755 })),
    // The kernel opens /dev/console for PID 1 before anything is mounted.
    { kind: 'chardev', path: 'dev/console', mode: 0o600, major: 5, minor: 1 },
    { kind: 'file', path: 'init', mode: 0o755, data: agent },
    { kind: 'file', path: 'sbin/stockade-init', mode: 0o755, data: init },
    ...modules.map((m) => ({ kind: 'file' as const, path: `lib/modules/${m.name}.ko`, mode: 0o644, data: m.data })),
    { kind: 'file', path: MODULE_ORDER_FILE, mode: 0o644, data: Buffer.from(modules.filter((m) => !NET_ONLY_MODULES.has(m.name)).map((m) => `/lib/modules/${m.name}.ko\n`).join('')) },
    { kind: 'file', path: NET_MODULE_ORDER_FILE, mode: 0o644, data: Buffer.from(modules.map((m) => `/lib/modules/${m.name}.ko\n`).join('')) },
  ];
  return writeCpio(entries);
}

/** How many input stamps the key memo keeps (one per build of stockade, kernel or module set seen). */
const KEY_MEMO_ENTRIES = 32;

/**
 * A stamp of the files a guest's key hashes: each one's path, size, inode, mtime and ctime. The
 * key hashes about 10 MB (the kernel, its modules, the agent, stockade-init), which took 0.3-0.5 s
 * of every vm container's create here under load; the stamp takes a few stat calls. A file
 * rewritten in place gets a new ctime, which user space cannot set back.
 */
function inputStamp(identity: string, paths: readonly string[]): string | undefined {
  const parts = [`${FORMAT}`, identity];
  for (const p of paths) {
    try {
      const st = statSync(p, { bigint: true });
      parts.push(`${p}:${st.size}:${st.ino}:${st.mtimeNs}:${st.ctimeNs}`);
    } catch {
      return undefined;
    }
  }
  return createHash('sha256').update(parts.join('\0')).digest('hex');
}

/** The key remembered for a stamp (`<cache>/guests/keys.json`), if any. */
function memoKey(guests: string, stamp: string): string | undefined {
  try {
    const m = JSON.parse(readFileSync(join(guests, 'keys.json'), 'utf8')) as Record<string, unknown>;
    const key = m[stamp];
    return typeof key === 'string' && /^[0-9a-f]{32}$/.test(key) ? key : undefined;
  } catch {
    return undefined;
  }
}

function rememberKey(guests: string, stamp: string, key: string): void {
  const file = join(guests, 'keys.json');
  let m: Record<string, unknown> = {};
  try {
    m = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch { /* none yet */ }
  delete m[stamp];
  const entries = [...Object.entries(m), [stamp, key] as const].slice(-KEY_MEMO_ENTRIES);
  try {
    mkdirSync(guests, { recursive: true, mode: 0o755 });
    writeFileSync(`${file}.${process.pid}`, `${JSON.stringify(Object.fromEntries(entries))}\n`, { mode: 0o644 });
    renameSync(`${file}.${process.pid}`, file);
  } catch { /* not remembered: hashed again next time */ }
}

/**
 * The kernel and initramfs to boot, built into the cache when missing. Throws UNSUPPORTED naming
 * the input that is missing or unusable (the kernel package, the agent, stockade-init).
 */
export function ensureGuestAssets(opts: GuestAssetOptions = {}): GuestAssets {
  const cacheDir = opts.cacheDir ?? defaultCacheDir();
  const kernel = opts.kernel !== undefined ? userKernel(opts.kernel.vmlinuz, opts.kernel.moduleDir) : debianCloudKernel(cacheDir, opts.flavour);
  const agentPath = opts.agent ?? agentBinary();
  const initPath = opts.init ?? guestInitBinary();
  const guests = join(cacheDir, 'guests');
  const boot = opts.compressed === true || process.env['STOCKADE_VM_BZIMAGE'] === '1' ? kernel.vmlinuz : kernel.vmlinux ?? kernel.vmlinuz;
  // The key of inputs seen before, by their stamp, when their guest is built: nothing to hash or write.
  const stamp = inputStamp(kernel.identity, [kernel.vmlinuz, ...kernel.modules.map((m) => m.path), agentPath, initPath]);
  const known = stamp === undefined ? undefined : memoKey(guests, stamp);
  if (known !== undefined && existsSync(join(guests, known, 'initramfs.cpio'))) {
    return { kernel: boot, initramfs: join(guests, known, 'initramfs.cpio'), release: kernel.release, key: known };
  }
  const agent = readInput(agentPath, 'the agent');
  const init = readInput(initPath, 'stockade-init');
  requireStatic(agent, 'the agent', agentPath);
  requireStatic(init, 'stockade-init', initPath);

  const hash = createHash('sha256').update(`stockade-guest-${FORMAT}\0${kernel.identity}\0`);
  hash.update(readInput(kernel.vmlinuz, 'the kernel'));
  for (const m of kernel.modules) hash.update(`${m.name}\0`).update(readInput(m.path, 'kernel module'));
  hash.update(agent).update(init);
  const key = hash.digest('hex').slice(0, 32);

  const final = join(guests, key);
  const done = (): GuestAssets => {
    if (stamp !== undefined) rememberKey(guests, stamp, key);
    return { kernel: boot, initramfs: join(final, 'initramfs.cpio'), release: kernel.release, key };
  };
  if (existsSync(join(final, 'initramfs.cpio'))) return done();

  mkdirSync(guests, { recursive: true, mode: 0o755 });
  const work = mkdtempSync(join(guests, '.build-'));
  try {
    chmodSync(work, 0o755);
    // 0644 under 0755: QEMU reads these as an unprivileged user.
    writeFileSync(join(work, 'initramfs.cpio'), buildInitramfs(kernel, agent, init), { mode: 0o644 });
    writeFileSync(join(work, 'inputs.json'), `${JSON.stringify({ kernel: kernel.identity, release: kernel.release, agent: agentPath, init: initPath }, null, 2)}\n`, { mode: 0o644 });
    try {
      renameSync(work, final);
    } catch (e) {
      if (!existsSync(join(final, 'initramfs.cpio'))) throw e;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return done();
}
