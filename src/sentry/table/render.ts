// The syscall table for people and programs: a text table, a JSON document, and the Markdown of docs/sentry-syscalls.md.
import { constants } from 'node:os';
import { formatAction } from '../../seccomp/actions';
import type { ArgCondition, SeccompArch } from '../../seccomp/types';
import { compileSentryFilter, SENTRY_BAD_ARCH_ACTION, SENTRY_DEFAULT_ACTION } from './profile';
import { buildTable } from './table';
import type { SupportLevel, SyscallClass, SyscallEntry, Verdict } from './types';

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([k, v]) => [v, k]));

export function errnoName(e: number): string {
  return ERRNO_NAMES.get(e) ?? String(e);
}

function hex(v: bigint): string {
  return `0x${v.toString(16)}`;
}

export function formatCondition(c: ArgCondition): string {
  if (c.op === 'MASKED_EQ') {
    if (c.value === 0xffffffffn) return `(int)arg${c.index} == ${hex(c.valueTwo)}`;
    return `arg${c.index} & ${hex(c.value)} == ${hex(c.valueTwo)}`;
  }
  const op = { EQ: '==', NE: '!=', LT: '<', LE: '<=', GT: '>', GE: '>=' }[c.op];
  return `arg${c.index} ${op} ${hex(c.value)}`;
}

export function formatVerdict(v: Verdict): string {
  return v.class === 'DENIED' ? `DENIED ${errnoName(v.errno)}` : v.class;
}

function entryVerdict(e: SyscallEntry): Verdict {
  return e.class === 'DENIED' ? { class: 'DENIED', errno: e.errno } : { class: e.class };
}

/** One entry as `stockade features --syscalls --format json` prints it. */
export interface SyscallJson {
  readonly nr: number;
  readonly name: string;
  readonly class: SyscallClass;
  readonly errno: number | null;
  readonly rules: readonly {
    readonly when: readonly { readonly index: number; readonly op: string; readonly value: string; readonly valueTwo: string }[];
    readonly class: SyscallClass;
    readonly errno: number | null;
    readonly why: string;
  }[];
  readonly handler: string | null;
  readonly support: SupportLevel;
  readonly note: string;
}

export interface SyscallTableJson {
  readonly arch: SeccompArch;
  /** what numbers no entry names get */
  readonly defaultAction: string;
  /** what a syscall from an ABI the filter does not cover gets */
  readonly badArchAction: string;
  /** the compiled filter's size in BPF instructions, without and with the compat ABIs */
  readonly instructions: { readonly native: number; readonly withCompat: number };
  /** entries per class (the class an entry gets when no argument rule holds) */
  readonly counts: Readonly<Record<SyscallClass, number>>;
  readonly syscalls: readonly SyscallJson[];
}

/** The entries that have a number on `arch`, by number. */
export function entriesFor(arch: SeccompArch): { nr: number; entry: SyscallEntry }[] {
  const rows: { nr: number; entry: SyscallEntry }[] = [];
  for (const entry of buildTable()) {
    const nr = entry.numbers[arch];
    if (nr !== undefined) rows.push({ nr, entry });
  }
  return rows.sort((a, b) => a.nr - b.nr);
}

export function tableJson(arch: SeccompArch): SyscallTableJson {
  const rows = entriesFor(arch);
  const counts: Record<SyscallClass, number> = { ALLOW: 0, MEDIATED: 0, DENIED: 0 };
  for (const { entry } of rows) counts[entry.class]++;
  return {
    arch,
    defaultAction: formatAction(SENTRY_DEFAULT_ACTION),
    badArchAction: formatAction(SENTRY_BAD_ARCH_ACTION),
    instructions: {
      native: compileSentryFilter(arch).instructions,
      withCompat: compileSentryFilter(arch, { compat: true }).instructions,
    },
    counts,
    syscalls: rows.map(({ nr, entry: e }) => ({
      nr,
      name: e.name,
      class: e.class,
      errno: e.class === 'DENIED' ? e.errno : null,
      rules: e.rules.map((r) => ({
        when: r.when.map((c) => ({ index: c.index, op: c.op, value: hex(c.value), valueTwo: hex(c.valueTwo) })),
        class: r.verdict.class,
        errno: r.verdict.class === 'DENIED' ? r.verdict.errno : null,
        why: r.why,
      })),
      handler: e.handler,
      support: e.support,
      note: e.note,
    })),
  };
}

function pad(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => { widths[i] = Math.max(widths[i] ?? 0, cell.length); });
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd());
}

/** The text table: NR NAME CLASS HANDLER SUPPORT NOTE, argument rules on the lines below their call. */
export function renderTable(arch: SeccompArch): string {
  const rows: string[][] = [['NR', 'NAME', 'CLASS', 'HANDLER', 'SUPPORT', 'NOTE']];
  const ruleLines = new Map<number, string[]>();
  for (const { nr, entry: e } of entriesFor(arch)) {
    rows.push([String(nr), e.name, formatVerdict(entryVerdict(e)) + (e.rules.length > 0 ? '*' : ''), e.handler ?? '-', e.support, e.note]);
    if (e.rules.length > 0) {
      ruleLines.set(rows.length - 1, e.rules.map((r) => `    * ${r.when.map(formatCondition).join(' && ')}: ${formatVerdict(r.verdict)} (${r.why})`));
    }
  }
  const lines = pad(rows).flatMap((line, i) => [line, ...(ruleLines.get(i) ?? [])]);
  const j = tableJson(arch);
  lines.push('');
  lines.push(`* argument rules, tried first; CLASS is what the call gets when none holds. Other numbers: ${j.defaultAction}; other ABIs: ${j.badArchAction}.`);
  lines.push(`${j.counts.ALLOW} ALLOW, ${j.counts.MEDIATED} MEDIATED, ${j.counts.DENIED} DENIED; filter: ${j.instructions.native} BPF instructions (${j.instructions.withCompat} with the compat ABIs).`);
  return `${lines.join('\n')}\n`;
}

function classCell(e: SyscallEntry): string {
  return formatVerdict(entryVerdict(e)) + (e.rules.length > 0 ? ' \\*' : '');
}

function mdCell(s: string): string {
  return s.replace(/\|/g, '\\|');
}

/** docs/sentry-syscalls.md. */
export function renderMarkdown(): string {
  const arch: SeccompArch = 'SCMP_ARCH_X86_64';
  const j = tableJson(arch);
  const out: string[] = [
    '<!-- Generated by src/tools/gen-syscall-doc.ts from src/sentry/table/entries.ts; do not edit. -->',
    '# The sentry\'s syscalls',
    '',
    'What a workload under `--isolation sentry` gets for each syscall, from the table the workload\'s',
    'seccomp filter is compiled from (`stockade features --syscalls` prints the same table for the host\'s ABI).',
    '',
    '- **ALLOW**: the kernel serves the call (compute, memory, futexes, signals, time, I/O on held descriptors).',
    '- **MEDIATED**: the filter answers `SECCOMP_RET_USER_NOTIF` and the sentry serves the call: paths, socket',
    '  creation and addresses, identity, exec, and what the workload may see of the system.',
    '- **DENIED**: the workload gets the errno shown. Refusals other than ENOSYS pass through the sentry,',
    '  which answers that errno and records the attempt (`--log`, JSON lines with `--log-format json`, and',
    '  `stockade trace`); ENOSYS, the answer programs probe for on their own, stays in the kernel. A',
    '  refusal by the container\'s own seccomp profile (config.json\'s `linux.seccomp`) wins over the',
    '  sentry\'s and is not recorded.',
    '',
    'A `*` marks calls whose answer depends on register arguments; their rules are listed with them and',
    'are tried first. SUPPORT says how much of the call\'s Linux behaviour the workload gets: `full`, or',
    '`partial` (the note says what is missing).',
    '',
    `On ${arch}: ${j.counts.ALLOW} ALLOW, ${j.counts.MEDIATED} MEDIATED, ${j.counts.DENIED} DENIED. Numbers no entry`,
    `names get ${j.defaultAction} (as from a kernel older than the call); syscalls through another ABI (i386, x32) get`,
    `${j.badArchAction} unless the filter is built with the compat ABIs. The compiled filter has ${j.instructions.native} BPF`,
    `instructions (${j.instructions.withCompat} with i386 and x32); the kernel takes at most 4096.`,
    '',
    'Choices worth knowing (the reasons are in `src/sentry/table/entries.ts`):',
    '',
    '- Denied calls answer EPERM where an unprivileged container would get EPERM from the kernel, and',
    '  ENOSYS where the call is absent by design (io_uring, Landlock, obsolete calls) or has a fallback',
    '  the filter can see (clone3 -> clone); unknown numbers get ENOSYS, as gVisor answers for what it',
    '  does not implement, so that libc falls back instead of failing.',
    '- fork, vfork and clone without CLONE_NEW* flags are ALLOW: a seccomp supervisor cannot learn the',
    '  child from the notification nor fork for the workload, so mediating would only cost a round trip',
    '  per thread. The sentry knows processes from the pid each notification carries.',
    '- personality accepts only what Docker\'s profile accepts: PER_LINUX, PER_LINUX32, UNAME26 and the',
    '  query; READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE and the rest get EPERM.',
    '',
    '| NR | NAME | CLASS | HANDLER | SUPPORT | NOTE |',
    '|---:|---|---|---|---|---|',
  ];
  for (const { nr, entry: e } of entriesFor(arch)) {
    const rules = e.rules.map((r) => `<br>• \`${r.when.map(formatCondition).join(' && ')}\`: ${formatVerdict(r.verdict)} (${r.why})`).join('');
    out.push(`| ${nr} | ${e.name} | ${classCell(e)} | ${e.handler ?? ''} | ${e.support} | ${mdCell(e.note + rules)} |`);
  }
  const others = buildTable().filter((e) => e.numbers.SCMP_ARCH_X86_64 === undefined);
  out.push('', '## Calls only other ABIs have', '',
    'Used when the filter covers i386 and x32 (`compat`), or on an aarch64 host with arm.', '',
    '| NAME | ABIs | CLASS | HANDLER | SUPPORT | NOTE |', '|---|---|---|---|---|---|');
  for (const e of others) {
    const abis = Object.keys(e.numbers).map((a) => a.replace('SCMP_ARCH_', '').toLowerCase()).join(', ');
    out.push(`| ${e.name} | ${abis} | ${classCell(e)} | ${e.handler ?? ''} | ${e.support} | ${mdCell(e.note)} |`);
  }
  out.push('');
  return out.join('\n');
}
