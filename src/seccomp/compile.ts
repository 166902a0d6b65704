// Compiles a seccomp profile (rules as data) into a classic BPF program for seccomp(SECCOMP_SET_MODE_FILTER).
//
// Shape of the program:
//
//   ld [arch]
//   jeq AUDIT_ARCH_<native> -> native section      (one jeq per AUDIT_ARCH the filter covers)
//   jeq AUDIT_ARCH_<other>  -> other section
//   ret <bad-arch action>
//   section: ld [nr]; binary search over the syscall-number line; each leaf is a `ret`, or the
//            rules of one syscall: argument checks, first matching rule's `ret`, else `ret default`.
//
// The number line of a section is cut into runs of numbers that get the same answer (the default,
// one syscall's rules, -ENOSYS above the profile's last syscall, or the bad-arch action for the
// x32 half of AUDIT_ARCH_X86_64 when x32 is not filtered), and the search compares against run
// boundaries. Docker's default profile becomes a few hundred runs per ABI; every syscall costs
// about ten instructions before its answer.
//
// Semantics, and where they follow runc + libseccomp or differ on purpose:
// - The native ABI is always filtered, whether `architectures` lists it or not (libseccomp's
//   seccomp_init adds it). A syscall from an ABI the filter does not cover gets the bad-arch
//   action: KILL_THREAD by default, libseccomp's SCMP_FLTATR_ACT_BADARCH default, which runc keeps.
//   On x86_64 that includes x32 calls (nr >= __X32_SYSCALL_BIT) when x32 is not listed, as
//   libseccomp does; nr == -1, which a tracer writes to skip a call, gets the default action instead.
// - Names an ABI has no number for are skipped on that ABI; names no filtered ABI knows are
//   skipped altogether and reported in `skippedSyscalls` (runc logs and ignores them too).
// - Rules are tried in profile order and the first whose conditions all hold decides; a rule
//   without conditions always holds. libseccomp instead lets an unconditional rule override
//   conditional ones for the same syscall, and runc drops rules whose action equals the default.
//   Profile order is what a reader of the profile expects, lets a profile carve an exception
//   out of a broader rule, and agrees with libseccomp on profiles that do not overlap (Docker's
//   and Podman's defaults do not).
// - Several conditions in one rule are ANDed, also when they test the same argument. runc turns
//   same-argument conditions into separate ORed rules, a workaround for old libseccomp that turns
//   `arg0 >= 10 && arg0 <= 20` into "anything".
// - Arguments compare as unsigned 64-bit values, one 32-bit half at a time. On the 32-bit ABIs
//   (i386, arm) only the low half is compared (see Abi.argBits).
// - Like runc's patchbpf, when the default action is not ALLOW, LOG or TRACE, syscall numbers
//   above the highest one the profile names for an ABI get ERRNO(ENOSYS) instead of the default,
//   so that libc falls back from syscalls newer than the profile instead of failing with EPERM.
// - Flags: SECCOMP_FILTER_FLAG_TSYNC is accepted and ignored (stockade-init is single-threaded
//   when it loads the filter, and TSYNC cannot be combined with NEW_LISTENER); NEW_LISTENER is
//   set when any syscall can get NOTIFY; WAIT_KILLABLE_RECV is dropped without NEW_LISTENER,
//   which the kernel would refuse (libseccomp drops it too). Unlike runc, an absent `flags` does
//   not turn on SPEC_ALLOW: the speculative-store-bypass mitigation stays unless asked off.
import { StockadeError } from '../errors';
import { actionValue, actionsEqual, KILL_THREAD } from './actions';
import type { Abi } from './arch';
import { abiOf, nativeArch, supportedArches, syscallNumber } from './arch';
import type { Label } from './bpf';
import { Assembler, encodeProgram, NEXT } from './bpf';
import {
  BPF_JEQ, BPF_JGE, BPF_JGT, BPF_MAXINSNS, ENOSYS, SECCOMP_DATA_ARCH, SECCOMP_DATA_ARGS, SECCOMP_DATA_NR,
  SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_NEW_LISTENER, SECCOMP_FILTER_FLAG_SPEC_ALLOW,
  SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, SECCOMP_RET_USER_NOTIF,
} from './constants';
import type { ArgCondition, CmpOp, SeccompAction, SeccompArch, SeccompProfile } from './types';

/** Bumped whenever the same profile would compile to a different program; part of the cache key. */
export const COMPILER_VERSION = 1;

export interface CompileOptions {
  /** The native ABI; this process's by default. */
  readonly arch?: SeccompArch;
  /** What a syscall from an ABI the filter does not cover gets; KILL_THREAD by default. */
  readonly badArchAction?: SeccompAction;
  /** runc's -ENOSYS for syscalls newer than the profile (see above); on by default. */
  readonly enosysForNewerSyscalls?: boolean;
}

export interface CompiledFilter {
  /** struct sock_filter[], 8 bytes per instruction, little-endian */
  readonly program: Buffer;
  readonly instructions: number;
  /** SECCOMP_FILTER_FLAG_* for seccomp(SECCOMP_SET_MODE_FILTER, flags, ...) */
  readonly flags: number;
  /** some syscall can get NOTIFY, so loading returns a listener fd (flags has NEW_LISTENER) */
  readonly notify: boolean;
  /** the ABIs the program filters, native first */
  readonly arches: readonly SeccompArch[];
  /** listed architectures stockade has no syscall table for; their syscalls get the bad-arch action */
  readonly skippedArchitectures: readonly SeccompArch[];
  /** names no filtered ABI has a number for, in profile order; worth a debug log line */
  readonly skippedSyscalls: readonly string[];
}

const UINT64_MAX = (1n << 64n) - 1n;
const U32 = 0xffffffff;

const lo32 = (v: bigint): number => Number(v & 0xffffffffn);
const hi32 = (v: bigint): number => Number((v >> 32n) & 0xffffffffn);

/** A condition after what is statically known about it on one ABI has been folded in. */
type Folded =
  | 'always'
  | 'never'
  | {
    readonly index: number;
    readonly op: CmpOp;
    readonly value: bigint;
    readonly valueTwo: bigint;
    /** the high word need not be looked at: it is known to be 0, or cannot change the result */
    readonly loOnly: boolean;
  };

interface FoldedRule {
  readonly action: SeccompAction;
  readonly conds: readonly Exclude<Folded, 'always' | 'never'>[];
}

/** What one run of syscall numbers gets. */
interface Outcome {
  readonly key: string;
  readonly ret?: number;
  readonly rules?: readonly FoldedRule[];
}

interface Run {
  readonly first: number;
  readonly last: number;
  readonly outcome: Outcome;
}

function foldLo(op: CmpOp, value: bigint, valueTwo: bigint, c: ArgCondition): Folded {
  // Comparisons of the low word alone that are decided by the constant.
  const v = lo32(op === 'MASKED_EQ' ? valueTwo : value);
  switch (op) {
    case 'LT': if (v === 0) return 'never'; break;
    case 'GE': if (v === 0) return 'always'; break;
    case 'GT': if (v === U32) return 'never'; break;
    case 'LE': if (v === U32) return 'always'; break;
    case 'MASKED_EQ': if (lo32(value) === 0) return v === 0 ? 'always' : 'never'; break;
    default: break;
  }
  return { index: c.index, op, value, valueTwo, loOnly: true };
}

function foldCondition(c: ArgCondition, argBits: 32 | 64): Folded {
  const { op, value, valueTwo } = c;
  if (argBits === 32) {
    // The argument's high word is 0 as far as the syscall is concerned; decide that half here.
    const vh = hi32(op === 'MASKED_EQ' ? valueTwo : value);
    if (vh !== 0) {
      switch (op) {
        case 'EQ': case 'GT': case 'GE': case 'MASKED_EQ': return 'never';
        case 'NE': case 'LT': case 'LE': return 'always';
      }
    }
    return foldLo(op, value, valueTwo, c);
  }
  switch (op) {
    case 'LT': if (value === 0n) return 'never'; break;
    case 'GE': if (value === 0n) return 'always'; break;
    case 'GT': if (value === UINT64_MAX) return 'never'; break;
    case 'LE': if (value === UINT64_MAX) return 'always'; break;
    case 'MASKED_EQ':
      if (hi32(value) === 0) {
        if (hi32(valueTwo) !== 0) return 'never';
        return foldLo(op, value, valueTwo, c);
      }
      break;
    default: break;
  }
  return { index: c.index, op, value, valueTwo, loOnly: false };
}

/** Emits a test of one condition that falls through when it holds and jumps to `fail` when not. */
function emitCondition(asm: Assembler, c: Exclude<Folded, 'always' | 'never'>, fail: Label): void {
  const loOff = SECCOMP_DATA_ARGS + 8 * c.index;
  const hiOff = loOff + 4;
  const vl = lo32(c.value);
  const vh = hi32(c.value);
  const lo = (): void => {
    asm.ldAbs(loOff);
    switch (c.op) {
      case 'EQ': asm.jump(BPF_JEQ, vl, NEXT, fail); break;
      case 'NE': asm.jump(BPF_JEQ, vl, fail, NEXT); break;
      case 'GT': asm.jump(BPF_JGT, vl, NEXT, fail); break;
      case 'GE': asm.jump(BPF_JGE, vl, NEXT, fail); break;
      case 'LT': asm.jump(BPF_JGE, vl, fail, NEXT); break;
      case 'LE': asm.jump(BPF_JGT, vl, fail, NEXT); break;
      case 'MASKED_EQ':
        if (vl !== U32) asm.andK(vl);
        asm.jump(BPF_JEQ, lo32(c.valueTwo), NEXT, fail);
        break;
    }
  };
  if (c.loOnly) {
    lo();
    return;
  }
  asm.ldAbs(hiOff);
  switch (c.op) {
    case 'EQ':
      asm.jump(BPF_JEQ, vh, NEXT, fail);
      lo();
      return;
    case 'MASKED_EQ':
      if (vh !== U32) asm.andK(vh);
      asm.jump(BPF_JEQ, hi32(c.valueTwo), NEXT, fail);
      lo();
      return;
    case 'NE': {
      // Holds when either half differs.
      const ok = asm.label();
      asm.jump(BPF_JEQ, vh, NEXT, ok);
      lo();
      asm.bind(ok);
      return;
    }
    case 'GT':
    case 'GE': {
      // Decided by the high words unless they are equal.
      const ok = asm.label();
      asm.jump(BPF_JGT, vh, ok, NEXT);
      asm.jump(BPF_JEQ, vh, NEXT, fail);
      lo();
      asm.bind(ok);
      return;
    }
    case 'LT':
    case 'LE': {
      const ok = asm.label();
      asm.jump(BPF_JGT, vh, fail, NEXT);
      asm.jump(BPF_JEQ, vh, NEXT, ok);
      lo();
      asm.bind(ok);
      return;
    }
  }
}

interface AbiRules {
  readonly abi: Abi;
  /** syscall number -> the rules naming it, in profile order */
  readonly byNr: Map<number, { action: SeccompAction; args: readonly ArgCondition[] }[]>;
  readonly maxNr: number | undefined;
}

function resolve(profile: SeccompProfile, abi: Abi, known: Set<string>): AbiRules {
  const byNr = new Map<number, { action: SeccompAction; args: readonly ArgCondition[] }[]>();
  let maxNr: number | undefined;
  for (const rule of profile.syscalls) {
    const seen = new Set<number>();
    for (const name of rule.names) {
      const nr = syscallNumber(abi, name);
      if (nr === undefined) continue;
      known.add(name);
      if (maxNr === undefined || nr > maxNr) maxNr = nr;
      // Two names of one rule resolving to one number add nothing.
      if (seen.has(nr)) continue;
      seen.add(nr);
      let list = byNr.get(nr);
      if (list === undefined) byNr.set(nr, (list = []));
      list.push({ action: rule.action, args: rule.args });
    }
  }
  return { abi, byNr, maxNr };
}

function bigintJson(_key: string, v: unknown): unknown {
  return typeof v === 'bigint' ? `${v}n` : v;
}

/** The outcome for one syscall: a plain `ret` when its rules reduce to one, else its rule list. */
function syscallOutcome(
  rules: readonly { action: SeccompAction; args: readonly ArgCondition[] }[],
  argBits: 32 | 64,
  defaultAction: SeccompAction,
): Outcome {
  const folded: FoldedRule[] = [];
  for (const r of rules) {
    const conds = r.args.map((c) => foldCondition(c, argBits));
    if (conds.includes('never')) continue;
    folded.push({ action: r.action, conds: conds.filter((c): c is Exclude<Folded, 'always' | 'never'> => typeof c !== 'string') });
    // Nothing after a rule that always matches is ever reached.
    if (folded[folded.length - 1]?.conds.length === 0) break;
  }
  // A trailing rule that answers what falling off the end answers anyway is dead weight.
  while (folded.length > 0 && actionsEqual((folded[folded.length - 1] as FoldedRule).action, defaultAction)) folded.pop();
  if (folded.length === 0) return retOutcome(actionValue(defaultAction));
  const only = folded[0] as FoldedRule;
  if (folded.length === 1 && only.conds.length === 0) return retOutcome(actionValue(only.action));
  return { key: `rules:${JSON.stringify(folded, bigintJson)}`, rules: folded };
}

function retOutcome(value: number): Outcome {
  return { key: `ret:${value >>> 0}`, ret: value >>> 0 };
}

/** Cuts [0, 2^32) into runs for one AUDIT_ARCH and merges neighbours with the same answer. */
function buildRuns(
  auditArch: number, filtered: readonly AbiRules[], defaultAction: SeccompAction, badArch: Outcome, enosys: boolean,
): Run[] {
  const dflt = retOutcome(actionValue(defaultAction));
  const enosysOutcome = retOutcome(actionValue({ kind: 'ERRNO', errno: ENOSYS }));
  const background: Run[] = [];
  const points = new Map<number, Outcome>();
  // Every ABI sharing this AUDIT_ARCH owns a range of numbers; the ones not filtered get bad-arch.
  const owners = supportedArches().map((a) => abiOf(a) as Abi).filter((abi) => abi.auditArch === auditArch)
    .sort((a, b) => a.nrFirst - b.nrFirst);
  for (const abi of owners) {
    const rules = filtered.find((r) => r.abi.arch === abi.arch);
    if (rules === undefined) {
      background.push({ first: abi.nrFirst, last: abi.nrLast, outcome: badArch });
      continue;
    }
    if (enosys && rules.maxNr !== undefined && rules.maxNr < abi.nrLast) {
      background.push({ first: abi.nrFirst, last: rules.maxNr, outcome: dflt });
      background.push({ first: rules.maxNr + 1, last: abi.nrLast, outcome: enosysOutcome });
    } else {
      background.push({ first: abi.nrFirst, last: abi.nrLast, outcome: dflt });
    }
    for (const [nr, list] of rules.byNr) points.set(nr, syscallOutcome(list, abi.argBits, defaultAction));
  }
  // -1: a tracer skipping the syscall; the filter runs again and must not kill for it.
  background.push({ first: 0xffffffff, last: 0xffffffff, outcome: dflt });

  const sortedPoints = [...points.keys()].sort((a, b) => a - b);
  const runs: Run[] = [];
  const push = (run: Run): void => {
    const prev = runs[runs.length - 1];
    if (prev !== undefined && prev.outcome.key === run.outcome.key && prev.last + 1 === run.first) {
      runs[runs.length - 1] = { first: prev.first, last: run.last, outcome: prev.outcome };
    } else {
      runs.push(run);
    }
  };
  let p = 0;
  for (const bg of background) {
    let cur = bg.first;
    while (p < sortedPoints.length && (sortedPoints[p] as number) <= bg.last) {
      const nr = sortedPoints[p] as number;
      if (nr > cur) push({ first: cur, last: nr - 1, outcome: bg.outcome });
      push({ first: nr, last: nr, outcome: points.get(nr) as Outcome });
      cur = nr + 1;
      p++;
    }
    if (cur <= bg.last) push({ first: cur, last: bg.last, outcome: bg.outcome });
  }
  return runs;
}

class Emitter {
  readonly asm = new Assembler();
  notify = false;
  readonly #defaultValue: number;

  constructor(defaultAction: SeccompAction) {
    this.#defaultValue = actionValue(defaultAction);
  }

  ret(value: number): void {
    if (value === SECCOMP_RET_USER_NOTIF) this.notify = true;
    this.asm.ret(value);
  }

  outcome(o: Outcome): void {
    if (o.ret !== undefined) {
      this.ret(o.ret);
      return;
    }
    for (const rule of o.rules ?? []) {
      const next = this.asm.label();
      for (const c of rule.conds) emitCondition(this.asm, c, next);
      this.ret(actionValue(rule.action));
      this.asm.bind(next);
    }
    this.ret(this.#defaultValue);
  }

  /** Binary search over run boundaries; A holds the syscall number on entry. */
  search(runs: readonly Run[], from: number, to: number): void {
    if (to - from === 1) {
      this.outcome((runs[from] as Run).outcome);
      return;
    }
    const mid = (from + to) >>> 1;
    const upper = this.asm.label();
    this.asm.jump(BPF_JGE, (runs[mid] as Run).first, upper, NEXT);
    this.search(runs, from, mid);
    this.asm.bind(upper);
    this.search(runs, mid, to);
  }
}

function isAllowLike(a: SeccompAction): boolean {
  // runc's patchbpf: a permissive default gains nothing from -ENOSYS; TRACE counts as permissive
  // because a tracer is expected to handle new syscalls itself.
  return a.kind === 'ALLOW' || a.kind === 'LOG' || a.kind === 'TRACE';
}

export function compile(profile: SeccompProfile, opts: CompileOptions = {}): CompiledFilter {
  const native = opts.arch ?? nativeArch();
  const nativeAbi = abiOf(native);
  if (nativeAbi === undefined) {
    throw new StockadeError('UNSUPPORTED', `seccomp: no syscall table for the native architecture ${native}`, { arch: native });
  }
  const badArch = retOutcome(actionValue(opts.badArchAction ?? KILL_THREAD));

  const abis: Abi[] = [nativeAbi];
  const skippedArchitectures: SeccompArch[] = [];
  for (const arch of profile.architectures) {
    const abi = abiOf(arch);
    if (abi === undefined) {
      if (!skippedArchitectures.includes(arch)) skippedArchitectures.push(arch);
    } else if (!abis.includes(abi)) {
      abis.push(abi);
    }
  }

  const known = new Set<string>();
  const resolved = abis.map((abi) => resolve(profile, abi, known));
  const skippedSyscalls: string[] = [];
  for (const rule of profile.syscalls) {
    for (const name of rule.names) if (!known.has(name) && !skippedSyscalls.includes(name)) skippedSyscalls.push(name);
  }

  const d = profile.defaultAction;
  const enosys = (opts.enosysForNewerSyscalls ?? true) && !isAllowLike(d) && !(d.kind === 'ERRNO' && d.errno === ENOSYS);

  // One section per AUDIT_ARCH, the native one first: x86_64 and x32 share theirs.
  const auditArches: number[] = [];
  for (const abi of abis) if (!auditArches.includes(abi.auditArch)) auditArches.push(abi.auditArch);

  const em = new Emitter(d);
  const { asm } = em;
  asm.ldAbs(SECCOMP_DATA_ARCH);
  const sections = auditArches.map(() => asm.label());
  auditArches.forEach((aa, i) => asm.jump(BPF_JEQ, aa, sections[i] as Label, NEXT));
  em.ret(badArch.ret as number);
  auditArches.forEach((aa, i) => {
    asm.bind(sections[i] as Label);
    asm.ldAbs(SECCOMP_DATA_NR);
    const runs = buildRuns(aa, resolved.filter((r) => r.abi.auditArch === aa), d, badArch, enosys);
    em.search(runs, 0, runs.length);
  });

  const insns = asm.assemble();
  if (insns.length > BPF_MAXINSNS) {
    throw new StockadeError(
      'SECCOMP_INVALID',
      `linux.seccomp: the compiled filter has ${insns.length} instructions; the kernel takes at most ${BPF_MAXINSNS}`,
      { field: 'linux.seccomp', instructions: insns.length },
    );
  }

  let flags = 0;
  if (profile.flags.includes('SECCOMP_FILTER_FLAG_LOG')) flags |= SECCOMP_FILTER_FLAG_LOG;
  if (profile.flags.includes('SECCOMP_FILTER_FLAG_SPEC_ALLOW')) flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
  if (em.notify) {
    flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
    if (profile.flags.includes('SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV')) flags |= SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
  }

  return {
    program: encodeProgram(insns),
    instructions: insns.length,
    flags,
    notify: em.notify,
    arches: abis.map((a) => a.arch),
    skippedArchitectures,
    skippedSyscalls,
  };
}
