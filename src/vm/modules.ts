// Finds the kernel modules the guest needs in an unpacked kernel package and orders them by their dependencies.
//
// The package ships no modules.dep (depmod writes it at install time, and the package is never
// installed), so each module's own `.modinfo` section is read: its `depends=` names the modules
// that must be loaded first.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StockadeError } from '../errors';

/** What the agent needs: the virtio-mmio transport, the console port it talks over, virtiofs. */
export const GUEST_MODULES = ['virtio_mmio', 'virtio_console', 'virtiofs', 'virtio_balloon'] as const;

/** The network device's driver, for a container with interfaces (src/vm/network.ts). */
export const NET_MODULES = ['virtio_net'] as const;
/**
 * The modules only the network needs (virtio_net and what it depends on beyond GUEST_MODULES'
 * set): the agent loads them at the first NET_LINK, so a VM without interfaces does not pay for
 * them at boot. A module listed here that GUEST_MODULES also needed would still load at boot.
 */
export const NET_ONLY_MODULES: ReadonlySet<string> = new Set(['virtio_net', 'net_failover', 'failover']);

export interface KernelModule {
  readonly name: string;
  readonly path: string;
  readonly depends: readonly string[];
}

/** The strings of an ELF64 file's .modinfo section ("key=value", NUL-separated). */
export function modinfo(elf: Buffer, what: string): Map<string, string> {
  const fail = (why: string): never => {
    throw new StockadeError('UNSUPPORTED', `kernel module ${what}: ${why}`, { path: what });
  };
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) {
    fail('not a little-endian ELF64 file (compressed modules are not supported)');
  }
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  if (shentsize < 64 || shoff + shnum * shentsize > elf.length || shstrndx >= shnum) fail('section table out of bounds');
  const section = (i: number): { name: number; offset: number; size: number } => {
    const at = shoff + i * shentsize;
    return { name: elf.readUInt32LE(at), offset: Number(elf.readBigUInt64LE(at + 0x18)), size: Number(elf.readBigUInt64LE(at + 0x20)) };
  };
  const names = section(shstrndx);
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    const nameAt = names.offset + s.name;
    const end = elf.indexOf(0, nameAt);
    if (end < 0 || elf.toString('latin1', nameAt, end) !== '.modinfo') continue;
    if (s.offset + s.size > elf.length) fail('.modinfo out of bounds');
    const out = new Map<string, string>();
    for (const entry of elf.toString('latin1', s.offset, s.offset + s.size).split('\0')) {
      const eq = entry.indexOf('=');
      if (eq > 0 && !out.has(entry.slice(0, eq))) out.set(entry.slice(0, eq), entry.slice(eq + 1));
    }
    return out;
  }
  return fail('no .modinfo section');
}

function indexModules(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ko')) out.set(e.name.slice(0, -3).replace(/-/g, '_'), p);
    }
  };
  walk(dir);
  return out;
}

/**
 * The modules `wanted` and everything they depend on, each after its dependencies. `moduleDir`
 * is the package's lib/modules/<release>. Throws naming the module that is missing.
 */
export function resolveModules(moduleDir: string, wanted: readonly string[] = GUEST_MODULES): KernelModule[] {
  const index = indexModules(moduleDir);
  const order: KernelModule[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, from: string): void => {
    const s = state.get(name);
    if (s === 'done') return;
    if (s === 'visiting') throw new StockadeError('UNSUPPORTED', `kernel modules: a dependency cycle through ${name}`);
    const path = index.get(name);
    if (path === undefined) {
      throw new StockadeError('UNSUPPORTED', `kernel module ${name} (needed by ${from}) is not in ${moduleDir}: is it built in, or the wrong kernel?`, { module: name });
    }
    state.set(name, 'visiting');
    const depends = (modinfo(readFileSync(path), path).get('depends') ?? '').split(',').filter((d) => d !== '');
    for (const d of depends) visit(d.replace(/-/g, '_'), name);
    state.set(name, 'done');
    order.push({ name, path, depends });
  };
  for (const w of wanted) visit(w, 'the guest');
  return order;
}

const SIG_MARKER = '~Module signature appended~\n';

/**
 * The module without its appended signature. The guest would spend about a second of a TCG boot
 * checking RSA signatures (measured: 0.8-0.9 s from /init to the last module under load) on
 * modules the host took from the package and wrote into the initramfs itself; the guest trusts
 * that initramfs whole anyway, so the check adds nothing. An unsigned module loads (signatures
 * are not enforced in Debian's kernel without Secure Boot) and taints the guest kernel, which
 * only the guest's dmesg shows.
 */
export function stripSignature(ko: Buffer): Buffer {
  const marker = Buffer.from(SIG_MARKER, 'latin1');
  if (ko.length < marker.length + 12 || !ko.subarray(ko.length - marker.length).equals(marker)) return ko;
  // struct module_signature: u8 algo, hash, id_type, signer_len, key_id_len, pad[3], be32 sig_len
  const info = ko.length - marker.length - 12;
  const sigLen = ko.readUInt32BE(info + 8);
  const signerLen = ko[info + 3]!;
  const keyIdLen = ko[info + 4]!;
  const end = info - sigLen - signerLen - keyIdLen;
  if (end <= 0) throw new StockadeError('UNSUPPORTED', 'kernel module: its signature block is larger than the module');
  return ko.subarray(0, end);
}
