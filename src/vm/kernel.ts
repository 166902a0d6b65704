// The guest kernel: Debian's cloud kernel, taken from its package without installing it, kept in a cache.
//
// `apt-get download` fetches the .deb into a private directory and `dpkg-deb -x` unpacks it
// there; only vmlinuz and the modules the guest needs are kept. The host's /boot, its module
// tree and dpkg's database are never touched.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { StockadeError } from '../errors';
import { GUEST_MODULES, NET_MODULES, resolveModules } from './modules';
import { extractVmlinux } from './vmlinux';

/** The metapackage that always depends on the current cloud kernel. */
export const KERNEL_METAPACKAGE = 'linux-image-cloud-amd64';

/**
 * Which of Debian's kernels: the cloud one (the default), or the generic one, which templates use
 * because it has 9p (the cloud kernel is built without CONFIG_NET_9P; see docs/design/vm-templates.md).
 */
export interface KernelFlavour {
  readonly metapackage: string;
  /** The kernel package the metapackage depends on. */
  readonly pattern: RegExp;
  readonly modules: readonly string[];
}

export const CLOUD_KERNEL: KernelFlavour = { metapackage: KERNEL_METAPACKAGE, pattern: /Depends:\s+(linux-image-[0-9][^\s]*-cloud-amd64)\s*$/m, modules: [...GUEST_MODULES, ...NET_MODULES] };

export interface GuestKernel {
  /** The bzImage as packaged. */
  readonly vmlinuz: string;
  /** The same kernel uncompressed, for QEMU's PVH entry, when it could be extracted (src/vm/vmlinux.ts). */
  readonly vmlinux: string | undefined;
  /** The kernel's release (uname -r inside the guest). */
  readonly release: string;
  /** Module files in load order. */
  readonly modules: readonly { readonly name: string; readonly path: string }[];
  /** What identifies this kernel in cache keys: package and version, or a user kernel's path. */
  readonly identity: string;
}

interface Manifest {
  readonly package: string;
  readonly version: string;
  readonly release: string;
  readonly modules: readonly string[];
}

function run(cmd: string, args: readonly string[], cwd?: string): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...(cwd !== undefined ? { cwd } : {}) });
  } catch (e) {
    const stderr = (e as { stderr?: unknown }).stderr;
    const why = typeof stderr === 'string' && stderr.trim() !== '' ? stderr.trim().split('\n').pop() : String(e);
    throw new StockadeError('UNSUPPORTED', `guest kernel: ${cmd} ${args.join(' ')} failed: ${why}`, { command: cmd });
  }
}

/**
 * The cloud kernel package the metapackage points at now, and its version (apt's local lists; no
 * network). apt-cache loads every package list and took 1.5-3 s a boot here under load, so the
 * answer is remembered in `<cacheDir>/kernels/current.json` with the modification times of apt's
 * lists and package cache: an `apt-get update` changes them, and the next boot asks apt again.
 */
export function currentKernelPackage(cacheDir?: string, flavour: KernelFlavour = CLOUD_KERNEL): { name: string; version: string } {
  const stamp = ['/var/lib/apt/lists', '/var/cache/apt/pkgcache.bin'].map((p) => {
    try {
      return String(statSync(p).mtimeMs);
    } catch {
      return '-';
    }
  }).join(',');
  const memo = cacheDir !== undefined ? join(cacheDir, 'kernels', flavour === CLOUD_KERNEL ? 'current.json' : `current-${flavour.metapackage}.json`) : undefined;
  if (memo !== undefined) {
    try {
      const m = JSON.parse(readFileSync(memo, 'utf8')) as { stamp?: unknown; name?: unknown; version?: unknown };
      if (m.stamp === stamp && typeof m.name === 'string' && typeof m.version === 'string') return { name: m.name, version: m.version };
    } catch {
      /* not remembered yet */
    }
  }
  const found = askApt(flavour);
  if (memo !== undefined) {
    mkdirSync(join(cacheDir!, 'kernels'), { recursive: true, mode: 0o755 });
    writeFileSync(`${memo}.${process.pid}`, `${JSON.stringify({ stamp, ...found })}\n`);
    renameSync(`${memo}.${process.pid}`, memo);
  }
  return found;
}

function askApt(flavour: KernelFlavour): { name: string; version: string } {
  const deps = run('apt-cache', ['depends', flavour.metapackage]);
  const m = flavour.pattern.exec(deps);
  if (m === null || m[1] === undefined) {
    throw new StockadeError('UNSUPPORTED', `guest kernel: apt-cache depends ${flavour.metapackage} names no kernel (run apt-get update?)`);
  }
  const name = m[1];
  const show = run('apt-cache', ['show', '--no-all-versions', name]);
  const v = /^Version:\s*(\S+)\s*$/m.exec(show);
  if (v === null || v[1] === undefined) throw new StockadeError('UNSUPPORTED', `guest kernel: apt-cache show ${name} gives no version`);
  return { name, version: v[1] };
}

// Extracted once, next to the bzImage; a kernel that cannot be extracted is booted compressed.
function ensureVmlinux(dir: string): string | undefined {
  const out = join(dir, 'vmlinux');
  if (existsSync(out)) return out;
  let elf: Buffer;
  try {
    elf = extractVmlinux(readFileSync(join(dir, 'vmlinuz')));
  } catch {
    return undefined;
  }
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, elf, { mode: 0o644 });
  renameSync(tmp, out);
  return out;
}

function fromDir(dir: string, identity: string, m: Manifest): GuestKernel {
  return {
    vmlinuz: join(dir, 'vmlinuz'),
    vmlinux: ensureVmlinux(dir),
    release: m.release,
    modules: m.modules.map((name) => ({ name, path: join(dir, 'modules', `${name}.ko`) })),
    identity,
  };
}

function readManifest(dir: string): Manifest | undefined {
  try {
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
    return existsSync(join(dir, 'vmlinuz')) ? m : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The cached kernel of the current cloud kernel package, downloaded and unpacked on first use.
 * `cacheDir` holds `kernels/<package>_<version>-<module set>/{vmlinuz, vmlinux, modules/, manifest.json}`; a
 * directory appears there whole (renamed from a private temporary one) or not at all.
 */
export function debianCloudKernel(cacheDir: string, flavour: KernelFlavour = CLOUD_KERNEL): GuestKernel {
  const pkg = currentKernelPackage(cacheDir, flavour);
  const identity = `${pkg.name}_${pkg.version}`;
  const kernels = join(cacheDir, 'kernels');
  // The module set is part of the name: a stockade that needs another module fetches anew.
  const moduleSet = createHash('sha256').update(flavour.modules.join(',')).digest('hex').slice(0, 8);
  const final = join(kernels, `${identity.replace(/[^A-Za-z0-9._+-]/g, '_')}-${moduleSet}`);
  const cached = readManifest(final);
  if (cached !== undefined) return fromDir(final, identity, cached);

  mkdirSync(kernels, { recursive: true, mode: 0o755 });
  const work = mkdtempSync(join(kernels, '.fetch-'));
  try {
    // Sandbox::User=root: the download lands in our private directory, which _apt cannot enter.
    run('apt-get', ['download', '-q', '-o', 'APT::Sandbox::User=root', `${pkg.name}=${pkg.version}`], work);
    const deb = readdirSync(work).find((f) => f.endsWith('.deb'));
    if (deb === undefined) throw new StockadeError('UNSUPPORTED', `guest kernel: apt-get download ${pkg.name} left no .deb`);
    const unpacked = join(work, 'x');
    run('dpkg-deb', ['-x', join(work, deb), unpacked]);
    const releases = readdirSync(join(unpacked, 'lib', 'modules'));
    const release = releases[0];
    if (releases.length !== 1 || release === undefined) {
      throw new StockadeError('UNSUPPORTED', `guest kernel: ${deb} holds ${releases.length} module trees, expected one`);
    }
    const out = join(work, 'kernel');
    mkdirSync(join(out, 'modules'), { recursive: true, mode: 0o755 });
    copyFileSync(join(unpacked, 'boot', `vmlinuz-${release}`), join(out, 'vmlinuz'));
    const modules = resolveModules(join(unpacked, 'lib', 'modules', release), flavour.modules);
    for (const m of modules) copyFileSync(m.path, join(out, 'modules', `${m.name}.ko`));
    const manifest: Manifest = { package: pkg.name, version: pkg.version, release, modules: modules.map((m) => m.name) };
    writeFileSync(join(out, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o644 });
    try {
      renameSync(out, final);
    } catch (e) {
      // Another process cached the same kernel first: theirs is as good as ours.
      if (readManifest(final) === undefined) throw e;
    }
    return fromDir(final, identity, readManifest(final) ?? manifest);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * A kernel the user supplies: a bzImage and the lib/modules/<release> directory it came with.
 * Its modules are resolved the same way; its identity is its path, and the guest cache key also
 * hashes the files, so a rebuilt kernel at the same path makes a new guest.
 */
export function userKernel(vmlinuz: string, moduleDir: string): GuestKernel {
  if (!existsSync(vmlinuz)) throw new StockadeError('UNSUPPORTED', `guest kernel ${vmlinuz} does not exist`, { path: vmlinuz });
  const modules = resolveModules(moduleDir, GUEST_MODULES);
  const release = moduleDir.replace(/\/+$/, '').split('/').pop() ?? 'unknown';
  // Booted as given: a bzImage, or a vmlinux with a PVH note, which QEMU takes as it is.
  return { vmlinuz, vmlinux: undefined, release, modules: modules.map((m) => ({ name: m.name, path: m.path })), identity: `user:${vmlinuz}` };
}
