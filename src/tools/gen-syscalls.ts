// Writes src/abi/linux/syscalls-<abi>.ts (name -> number per syscall ABI) from the kernel's uapi syscall numbers.
//
// Usage: node dist/tools/gen-syscalls.js --tables DIR [--headers DIR] [--kernel VERSION] [--out DIR]
//
// --tables DIR holds one file per ABI (syscalls-x86_64, syscalls-i386, syscalls-x32, syscalls-arm64,
// syscalls-arm), each line "name<TAB>number" with an empty number for a name the ABI lacks: the
// form in which hrw/syscalls-table publishes the numbers it extracts from a kernel's installed
// uapi headers (`make headers_install`). The Debian host headers lag the running kernel by years
// (linux-libc-dev 6.1 has no cachestat, futex_wake, lsm_*, mseal, ...), so they are only a
// cross-check and a source of retired names: --headers DIR (default /usr/include/x86_64-linux-gnu/asm)
// is read for unistd_64.h, unistd_32.h and unistd_x32.h; a name they define with a different number
// than the table stops the generator, a name the table lacks is added.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const X32_SYSCALL_BIT = 0x40000000;

interface AbiSpec {
  /** suffix of the input table and of the output file */
  readonly table: string;
  readonly file: string;
  readonly constName: string;
  readonly description: string;
  /** the AUDIT_ARCH_* constant this file exports, or undefined when another file owns it */
  readonly auditArch?: { readonly name: string; readonly value: number; readonly why: string };
  readonly header?: string;
  readonly x32?: boolean;
}

const ABIS: readonly AbiSpec[] = [
  {
    table: 'x86_64', file: 'syscalls-x86_64.ts', constName: 'SYSCALLS_X86_64',
    description: 'the x86_64 ABI',
    auditArch: { name: 'AUDIT_ARCH_X86_64', value: 0xc000003e, why: 'EM_X86_64 (62) | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE' },
    header: 'unistd_64.h',
  },
  {
    table: 'x32', file: 'syscalls-x32.ts', constName: 'SYSCALLS_X32',
    description: 'the x32 ABI (x86_64 registers, 32-bit pointers); numbers include __X32_SYSCALL_BIT',
    header: 'unistd_x32.h', x32: true,
  },
  {
    table: 'i386', file: 'syscalls-i386.ts', constName: 'SYSCALLS_I386',
    description: 'the i386 ABI (also what a 64-bit x86 kernel runs for 32-bit processes)',
    auditArch: { name: 'AUDIT_ARCH_I386', value: 0x40000003, why: 'EM_386 (3) | __AUDIT_ARCH_LE' },
    header: 'unistd_32.h',
  },
  {
    table: 'arm64', file: 'syscalls-aarch64.ts', constName: 'SYSCALLS_AARCH64',
    description: 'the aarch64 ABI (the asm-generic table with renameat, rlimit and memfd_secret)',
    auditArch: { name: 'AUDIT_ARCH_AARCH64', value: 0xc00000b7, why: 'EM_AARCH64 (183) | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE' },
  },
  {
    table: 'arm', file: 'syscalls-arm.ts', constName: 'SYSCALLS_ARM',
    description: 'the 32-bit ARM EABI (also what an aarch64 kernel runs for 32-bit processes), with the ARM-private calls at 0x0f0000',
    auditArch: { name: 'AUDIT_ARCH_ARM', value: 0x40000028, why: 'EM_ARM (40) | __AUDIT_ARCH_LE' },
  },
];

/**
 * Names the uapi headers define as aliases of another (`#define __NR_sync_file_range2
 * __NR_arm_sync_file_range`), which the tables list under one name only.
 */
const ALIASES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  arm: { arm_sync_file_range: 'sync_file_range2' },
};

function readTable(path: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const [name, num] = line.split('\t');
    if (name === undefined || name === '' || num === undefined || num.trim() === '') continue;
    if (!/^[a-z_][a-z0-9_]*$/.test(name) || !/^\d+$/.test(num.trim())) {
      throw new Error(`${path}: cannot read line ${JSON.stringify(line)}`);
    }
    out.set(name, Number(num.trim()));
  }
  return out;
}

/** `#define __NR_read 0` and `#define __NR_read (__X32_SYSCALL_BIT + 0)` */
function readHeader(path: string): Map<string, number> {
  const out = new Map<string, number>();
  const re = /^#define __NR_([a-z0-9_]+)\s+(?:\(__X32_SYSCALL_BIT \+ (\d+)\)|(\d+))\s*$/;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = re.exec(line);
    if (m === null) continue;
    const name = m[1] as string;
    out.set(name, m[2] !== undefined ? X32_SYSCALL_BIT + Number(m[2]) : Number(m[3]));
  }
  return out;
}

function render(abi: AbiSpec, table: Map<string, number>, kernel: string): string {
  const rows = [...table.entries()].sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
  const key = (n: string): string => (/^[A-Za-z_$][\w$]*$/.test(n) ? n : JSON.stringify(n));
  const value = (v: number): string => (abi.x32 === true ? `__X32_SYSCALL_BIT + ${v - X32_SYSCALL_BIT}` : String(v));
  const lines: string[] = [
    `// Syscall numbers of ${abi.description}: generated from Linux ${kernel} by src/tools/gen-syscalls.ts; do not edit.`,
    '',
  ];
  if (abi.auditArch !== undefined) {
    lines.push(`/** seccomp_data.arch of this ABI: ${abi.auditArch.why}. */`);
    lines.push(`export const ${abi.auditArch.name} = 0x${abi.auditArch.value.toString(16).padStart(8, '0')};`, '');
  }
  if (abi.x32 === true) {
    lines.push('/** x32 shares AUDIT_ARCH_X86_64; the kernel tells its syscalls apart by this bit in the number. */');
    lines.push(`export const __X32_SYSCALL_BIT = 0x${X32_SYSCALL_BIT.toString(16)};`, '');
  }
  lines.push(`export const ${abi.constName}: Readonly<Record<string, number>> = Object.freeze({`);
  for (const [name, nr] of rows) lines.push(`  ${key(name)}: ${value(nr)},`);
  lines.push('});', '');
  return lines.join('\n');
}

function main(argv: readonly string[]): void {
  const opt = (flag: string): string | undefined => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const tables = opt('--tables');
  if (tables === undefined) {
    throw new Error('usage: gen-syscalls --tables DIR [--headers DIR] [--kernel VERSION] [--out DIR]');
  }
  const headers = opt('--headers') ?? '/usr/include/x86_64-linux-gnu/asm';
  const kernel = opt('--kernel') ?? 'unknown';
  const outDir = opt('--out') ?? join(__dirname, '..', '..', 'src', 'abi', 'linux');
  mkdirSync(outDir, { recursive: true });

  for (const abi of ABIS) {
    const table = readTable(join(tables, `syscalls-${abi.table}`));
    for (const [alias, of] of Object.entries(ALIASES[abi.table] ?? {})) {
      const nr = table.get(of);
      if (nr !== undefined && !table.has(alias)) table.set(alias, nr);
    }
    if (abi.header !== undefined && existsSync(join(headers, abi.header))) {
      const host = readHeader(join(headers, abi.header));
      let checked = 0;
      for (const [name, nr] of host) {
        const ours = table.get(name);
        if (ours === undefined) {
          // A call the kernel has since dropped (create_module, tuxcall, ...): keep its number so a
          // profile naming it resolves as it does with libseccomp; the kernel answers it with ENOSYS.
          table.set(name, nr);
          continue;
        }
        if (ours !== nr) throw new Error(`${abi.table}: ${name} is ${ours} in the table but ${nr} in ${abi.header}`);
        checked++;
      }
      process.stdout.write(`${abi.table}: ${checked} numbers agree with ${join(headers, abi.header)}\n`);
    }
    writeFileSync(join(outDir, abi.file), render(abi, table, kernel));
    process.stdout.write(`${abi.table}: ${table.size} syscalls -> ${join(outDir, abi.file)}\n`);
  }
}

if (require.main === module) main(process.argv.slice(2));
