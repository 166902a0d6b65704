// Shared test helpers: run a compiled filter on one syscall, and a reference evaluator of the rule model's documented semantics.
import { actionOf, actionValue, formatAction } from '../../../src/seccomp/actions';
import type { Abi } from '../../../src/seccomp/arch';
import { abiOf, supportedArches, syscallNumber } from '../../../src/seccomp/arch';
import type { CompileOptions } from '../../../src/seccomp/compile';
import { runFilter } from '../../../src/seccomp/interpreter';
import type { SeccompAction, SeccompArch, SeccompProfile } from '../../../src/seccomp/types';

export const AUDIT_ARCH_X86_64 = 0xc000003e;
export const AUDIT_ARCH_I386 = 0x40000003;
export const AUDIT_ARCH_AARCH64 = 0xc00000b7;
export const AUDIT_ARCH_ARM = 0x40000028;
export const X32_BIT = 0x40000000;

export function nr(arch: SeccompArch, name: string): number {
  const n = syscallNumber(abiOf(arch) as Abi, name);
  if (n === undefined) throw new Error(`no ${name} on ${arch}`);
  return n;
}

export function auditArchOf(arch: SeccompArch): number {
  return (abiOf(arch) as Abi).auditArch;
}

/** "ERRNO(1)", "ALLOW", ... for one syscall through `program`. */
export function verdict(
  program: Buffer, arch: SeccompArch, name: string | number, args: readonly bigint[] = [],
): string {
  const n = typeof name === 'number' ? name : nr(arch, name);
  return formatAction(actionOf(runFilter(program, { nr: n, arch: auditArchOf(arch), args })));
}

export function profile(p: Partial<SeccompProfile> & Pick<SeccompProfile, 'defaultAction'>): SeccompProfile {
  return { architectures: [], flags: [], syscalls: [], ...p };
}

const U64 = (1n << 64n) - 1n;

/**
 * What the compiled filter should answer, computed straight from the semantics compile.ts
 * documents, with no BPF involved: the oracle for the randomized tests.
 */
export function expected(
  prof: SeccompProfile, opts: CompileOptions & { arch: SeccompArch }, auditArch: number, n: number, args: readonly bigint[],
): number {
  const dflt = actionValue(prof.defaultAction);
  const bad = actionValue(opts.badArchAction ?? { kind: 'KILL_THREAD' });
  const filtered: Abi[] = [abiOf(opts.arch) as Abi];
  for (const a of prof.architectures) {
    const abi = abiOf(a);
    if (abi !== undefined && !filtered.includes(abi)) filtered.push(abi);
  }
  if (!filtered.some((a) => a.auditArch === auditArch)) return bad;
  if (n === 0xffffffff) return dflt;
  const owner = supportedArches().map((a) => abiOf(a) as Abi)
    .find((a) => a.auditArch === auditArch && n >= a.nrFirst && n <= a.nrLast);
  if (owner === undefined || !filtered.includes(owner)) return bad;

  for (const rule of prof.syscalls) {
    if (!rule.names.some((name) => syscallNumber(owner, name) === n)) continue;
    const holds = rule.args.every((c) => {
      let v = BigInt.asUintN(64, args[c.index] ?? 0n);
      if (owner.argBits === 32) v &= 0xffffffffn;
      switch (c.op) {
        case 'EQ': return v === c.value;
        case 'NE': return v !== c.value;
        case 'LT': return v < c.value;
        case 'LE': return v <= c.value;
        case 'GT': return v > c.value;
        case 'GE': return v >= c.value;
        case 'MASKED_EQ': return (v & c.value & U64) === c.valueTwo;
      }
    });
    if (holds) return actionValue(rule.action);
  }
  const d = prof.defaultAction;
  const stub = (opts.enosysForNewerSyscalls ?? true) && !['ALLOW', 'LOG', 'TRACE'].includes(d.kind)
    && !(d.kind === 'ERRNO' && d.errno === 38);
  if (stub) {
    let max: number | undefined;
    for (const rule of prof.syscalls) {
      for (const name of rule.names) {
        const m = syscallNumber(owner, name);
        if (m !== undefined && (max === undefined || m > max)) max = m;
      }
    }
    if (max !== undefined && n > max) return actionValue({ kind: 'ERRNO', errno: 38 });
  }
  return dflt;
}

/** A small deterministic PRNG (xorshift32), so a failing random case can be replayed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 0x100000000;
  };
}

export function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)] as T;
}

export function act(a: SeccompAction): string {
  return formatAction(a);
}
