// Builds the syscall table from the specs: one entry per name, with its numbers, handler and support level.
import { abiOf, supportedArches, syscallNumber } from '../../seccomp/arch';
import type { Abi } from '../../seccomp/arch';
import type { SeccompArch } from '../../seccomp/types';
import { SYSCALL_SPECS } from './entries';
import type { SyscallSpec } from './entries';
import type { SupportLevel, SyscallEntry, Verdict } from './types';

function support(spec: SyscallSpec): SupportLevel {
  const verdicts: Verdict[] = [...(spec.rules ?? []).map((r) => r.verdict), spec.verdict];
  const levels = verdicts.map((v): SupportLevel => (v.class === 'ALLOW' ? 'full' : v.class === 'MEDIATED' ? spec.served ?? 'none' : 'none'));
  if (levels.every((l) => l === 'full')) return 'full';
  return levels.every((l) => l === 'none') ? 'none' : 'partial';
}

function entryOf(name: string, spec: SyscallSpec, abis: readonly Abi[]): SyscallEntry {
  const numbers: Partial<Record<SeccompArch, number>> = {};
  for (const abi of abis) {
    const nr = syscallNumber(abi, name);
    if (nr !== undefined) numbers[abi.arch] = nr;
  }
  const mediated = spec.verdict.class === 'MEDIATED' || (spec.rules ?? []).some((r) => r.verdict.class === 'MEDIATED');
  if (mediated && spec.family === undefined) throw new Error(`sentry syscall table: ${name} is mediated but names no handler family`);
  const base = {
    name,
    rules: spec.rules ?? [],
    handler: mediated ? `${spec.family as string}.${name}` : null,
    support: support(spec),
    note: spec.note,
    numbers: Object.freeze(numbers),
  };
  const v = spec.verdict;
  return Object.freeze(v.class === 'DENIED' ? { ...base, class: v.class, errno: v.errno } : { ...base, class: v.class });
}

let cached: readonly SyscallEntry[] | undefined;

/**
 * Every syscall the specs name, ordered by x86_64 number, then the names x86_64 lacks by name.
 * Throws if a name is listed twice: a table with two answers for one call is a bug.
 */
export function buildTable(): readonly SyscallEntry[] {
  if (cached !== undefined) return cached;
  const abis = supportedArches().map((a) => abiOf(a) as Abi);
  const byName = new Map<string, SyscallEntry>();
  for (const spec of SYSCALL_SPECS) {
    for (const name of spec.names) {
      if (byName.has(name)) throw new Error(`sentry syscall table: ${name} is listed twice`);
      byName.set(name, entryOf(name, spec, abis));
    }
  }
  const x64 = (e: SyscallEntry): number => e.numbers.SCMP_ARCH_X86_64 ?? Number.MAX_SAFE_INTEGER;
  cached = Object.freeze([...byName.values()].sort((a, b) => x64(a) - x64(b) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)));
  return cached;
}
