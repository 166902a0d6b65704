// The syscall ABIs the compiler can filter: AUDIT_ARCH value, syscall table, number range, argument width.
import { AUDIT_ARCH_AARCH64, SYSCALLS_AARCH64 } from '../abi/linux/syscalls-aarch64';
import { AUDIT_ARCH_ARM, SYSCALLS_ARM } from '../abi/linux/syscalls-arm';
import { AUDIT_ARCH_I386, SYSCALLS_I386 } from '../abi/linux/syscalls-i386';
import { __X32_SYSCALL_BIT, SYSCALLS_X32 } from '../abi/linux/syscalls-x32';
import { AUDIT_ARCH_X86_64, SYSCALLS_X86_64 } from '../abi/linux/syscalls-x86_64';
import { StockadeError } from '../errors';
import type { SeccompArch } from './types';

export interface Abi {
  readonly arch: SeccompArch;
  /** seccomp_data.arch of a syscall made through this ABI */
  readonly auditArch: number;
  readonly table: Readonly<Record<string, number>>;
  /**
   * The syscall numbers this ABI owns under its AUDIT_ARCH, inclusive. Only x86_64 and x32 share
   * an AUDIT_ARCH; the kernel tells them apart by __X32_SYSCALL_BIT, and libseccomp by
   * `nr >= __X32_SYSCALL_BIT`, which is what these ranges say too.
   */
  readonly nrFirst: number;
  readonly nrLast: number;
  /**
   * 32 when the ABI's syscall arguments are 32-bit registers. The kernel still hands seccomp the
   * full 64-bit saved register (a 64-bit process can enter the i386 table with `int $0x80` and
   * garbage in the upper halves), but the syscall itself reads only the low word, so that is all
   * a rule may look at: otherwise garbage in the high word would slip past a deny rule.
   */
  readonly argBits: 32 | 64;
}

// All the ABIs below are little-endian, so args[i] has its low word at 16 + 8i and its high word
// at 20 + 8i; a big-endian ABI would swap them.
const ABIS: Readonly<Partial<Record<SeccompArch, Abi>>> = {
  SCMP_ARCH_X86_64: {
    arch: 'SCMP_ARCH_X86_64', auditArch: AUDIT_ARCH_X86_64, table: SYSCALLS_X86_64,
    nrFirst: 0, nrLast: __X32_SYSCALL_BIT - 1, argBits: 64,
  },
  SCMP_ARCH_X32: {
    arch: 'SCMP_ARCH_X32', auditArch: AUDIT_ARCH_X86_64, table: SYSCALLS_X32,
    // 0xffffffff is left out: it is the "skip this syscall" number a tracer writes, not an x32 call.
    nrFirst: __X32_SYSCALL_BIT, nrLast: 0xfffffffe, argBits: 64,
  },
  SCMP_ARCH_X86: {
    arch: 'SCMP_ARCH_X86', auditArch: AUDIT_ARCH_I386, table: SYSCALLS_I386,
    nrFirst: 0, nrLast: 0xfffffffe, argBits: 32,
  },
  SCMP_ARCH_AARCH64: {
    arch: 'SCMP_ARCH_AARCH64', auditArch: AUDIT_ARCH_AARCH64, table: SYSCALLS_AARCH64,
    nrFirst: 0, nrLast: 0xfffffffe, argBits: 64,
  },
  SCMP_ARCH_ARM: {
    arch: 'SCMP_ARCH_ARM', auditArch: AUDIT_ARCH_ARM, table: SYSCALLS_ARM,
    nrFirst: 0, nrLast: 0xfffffffe, argBits: 32,
  },
};

/** The ABI descriptor, or undefined for an architecture stockade has no syscall table for. */
export function abiOf(arch: SeccompArch): Abi | undefined {
  return ABIS[arch];
}

export function supportedArches(): SeccompArch[] {
  return Object.keys(ABIS) as SeccompArch[];
}

/** Look a name up without tripping over Object.prototype ("constructor", "__proto__"). */
export function syscallNumber(abi: Abi, name: string): number | undefined {
  return Object.prototype.hasOwnProperty.call(abi.table, name) ? abi.table[name] : undefined;
}

/** The ABI this Node process runs under, in spec spelling. */
export function nativeArch(nodeArch: string = process.arch): SeccompArch {
  switch (nodeArch) {
    case 'x64': return 'SCMP_ARCH_X86_64';
    case 'arm64': return 'SCMP_ARCH_AARCH64';
    case 'ia32': return 'SCMP_ARCH_X86';
    case 'arm': return 'SCMP_ARCH_ARM';
    default:
      throw new StockadeError('UNSUPPORTED', `seccomp: no syscall table for this host's architecture (${nodeArch})`, { arch: nodeArch });
  }
}
