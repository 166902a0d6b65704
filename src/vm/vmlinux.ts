// Extracts the uncompressed kernel (vmlinux) from a bzImage, so QEMU can boot it directly through its PVH entry.
//
// Why: a bzImage decompresses itself inside the guest, which under TCG is slow and touches
// about 120 MB of guest memory whatever the VM's size (measured: 115-121 MB of QEMU's memfd
// at 128, 256 and 512 MiB guests). QEMU's microvm loads an ELF vmlinux that carries a PVH note
// straight into place instead (Firecracker boots vmlinux the same way). The price: a kernel
// loaded at its link address has no KASLR (docs/design/vm.md says what that means).
//
// Debian's cloud kernel is LZ4-compressed (CONFIG_KERNEL_LZ4): the payload is the LZ4 "legacy"
// frame, a magic number then blocks of [u32 compressed length][LZ4 block], ending with the
// uncompressed size as a u32 (the kernel build's size_append).
import { StockadeError } from '../errors';

const LZ4_LEGACY_MAGIC = 0x184c2102;

function fail(why: string): never {
  throw new StockadeError('UNSUPPORTED', `vmlinux extraction: ${why}`);
}

/** Decodes one LZ4 block (src[from, to)) into out at op; returns the new op. */
export function lz4Block(src: Buffer, from: number, to: number, out: Buffer, op: number): number {
  let ip = from;
  while (ip < to) {
    const token = src[ip++]!;
    let lit = token >> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (ip >= to) fail('literal length runs past the block');
        b = src[ip++]!;
        lit += b;
      } while (b === 255);
    }
    if (ip + lit > to || op + lit > out.length) fail('literals run past the block or the output');
    src.copy(out, op, ip, ip + lit);
    ip += lit;
    op += lit;
    if (ip >= to) break; // the last sequence has literals only
    if (ip + 2 > to) fail('match offset runs past the block');
    const offset = src[ip]! | (src[ip + 1]! << 8);
    ip += 2;
    if (offset === 0 || offset > op) fail('match offset points before the output');
    let len = token & 15;
    if (len === 15) {
      let b: number;
      do {
        if (ip >= to) fail('match length runs past the block');
        b = src[ip++]!;
        len += b;
      } while (b === 255);
    }
    len += 4;
    if (op + len > out.length) fail('match runs past the output');
    if (offset >= len) {
      out.copy(out, op, op - offset, op - offset + len);
      op += len;
    } else {
      // An overlapping match repeats the last `offset` bytes: copy byte by byte.
      for (let i = 0; i < len; i++, op++) out[op] = out[op - offset]!;
    }
  }
  return op;
}

/** The LZ4 legacy-frame payload of a bzImage, decompressed. */
function unlz4Legacy(p: Buffer): Buffer {
  if (p.length < 12 || p.readUInt32LE(0) !== LZ4_LEGACY_MAGIC) fail('the payload is not LZ4 (only LZ4-compressed kernels are extracted)');
  const size = p.readUInt32LE(p.length - 4);
  if (size === 0 || size > 512 * 1024 * 1024) fail(`implausible uncompressed size ${size}`);
  const out = Buffer.alloc(size);
  let ip = 4;
  let op = 0;
  const end = p.length - 4;
  while (ip + 4 <= end && op < size) {
    const chunk = p.readUInt32LE(ip);
    ip += 4;
    if (chunk === LZ4_LEGACY_MAGIC) continue;
    if (ip + chunk > end) fail('a block runs past the payload');
    op = lz4Block(p, ip, ip + chunk, out, op);
    ip += chunk;
  }
  if (op !== size) fail(`decompressed ${op} bytes, the payload says ${size}`);
  return out;
}

/** Whether an ELF64 file carries the note (Xen's PHYS32_ENTRY, type 18) that QEMU's PVH boot needs. */
export function hasPvhNote(elf: Buffer): boolean {
  if (elf.length < 64 || elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2) return false;
  const phoff = Number(elf.readBigUInt64LE(32));
  const phentsize = elf.readUInt16LE(54);
  const phnum = elf.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (ph + 56 > elf.length || elf.readUInt32LE(ph) !== 4 /* PT_NOTE */) continue;
    let at = Number(elf.readBigUInt64LE(ph + 8));
    const stop = at + Number(elf.readBigUInt64LE(ph + 32));
    while (at + 12 <= stop && stop <= elf.length) {
      const namesz = elf.readUInt32LE(at);
      const descsz = elf.readUInt32LE(at + 4);
      const type = elf.readUInt32LE(at + 8);
      const name = elf.toString('latin1', at + 12, at + 12 + Math.max(0, namesz - 1));
      if (name === 'Xen' && type === 18) return true;
      at += 12 + Math.ceil(namesz / 4) * 4 + Math.ceil(descsz / 4) * 4;
    }
  }
  return false;
}

/**
 * The vmlinux inside a bzImage. Throws UNSUPPORTED when the image is not a bzImage, not LZ4,
 * or holds no PVH-bootable ELF; the caller then boots the bzImage as it is.
 */
export function extractVmlinux(bz: Buffer): Buffer {
  if (bz.length < 0x260 || bz.toString('latin1', 0x202, 0x206) !== 'HdrS') fail('not a bzImage');
  const setupSects = bz[0x1f1] === 0 ? 4 : bz[0x1f1]!;
  const pmStart = (setupSects + 1) * 512;
  const payloadOffset = bz.readUInt32LE(0x248);
  const payloadLength = bz.readUInt32LE(0x24c);
  const from = pmStart + payloadOffset;
  if (payloadLength === 0 || from + payloadLength > bz.length) fail('payload out of bounds');
  const elf = unlz4Legacy(bz.subarray(from, from + payloadLength));
  if (!hasPvhNote(elf)) fail('the kernel has no PVH entry note (CONFIG_PVH)');
  return elf;
}
