// The sentry's syscall table as types: what each syscall gets from the workload's filter, and who serves it.
import type { ArgCondition, SeccompArch } from '../../seccomp/types';

/**
 * ALLOW: the kernel serves the call directly (compute, memory, futexes, signals, time, I/O on
 * descriptors the workload already holds). MEDIATED: the filter answers SECCOMP_RET_USER_NOTIF
 * and the sentry serves the call. DENIED: the filter answers an errno.
 */
export type SyscallClass = 'ALLOW' | 'MEDIATED' | 'DENIED';

/**
 * How much of the call's Linux behaviour a workload gets: all of it, some of it (some argument
 * values refused, or a handler that covers part), or none.
 */
export type SupportLevel = 'full' | 'partial' | 'none';

/** The sentry source file a MEDIATED call's handler lives in: src/sentry/sys-<family>.ts. */
export type HandlerFamily = 'file' | 'socket' | 'identity' | 'process' | 'system';

export type Verdict =
  | { readonly class: 'ALLOW' }
  | { readonly class: 'MEDIATED' }
  | { readonly class: 'DENIED'; readonly errno: number };

/** An answer that depends on register arguments; the conditions are ANDed, the first rule that holds decides. */
export interface ArgRule {
  readonly when: readonly ArgCondition[];
  readonly verdict: Verdict;
  /** why this argument value gets a different answer, for the docs */
  readonly why: string;
}

interface EntryBase {
  readonly name: string;
  /** argument rules tried before the entry's own class, in order */
  readonly rules: readonly ArgRule[];
  /** `family.name` of the sentry handler for calls that reach the sentry; null when none do */
  readonly handler: string | null;
  readonly support: SupportLevel;
  readonly note: string;
  /** the call's number on each ABI that has it */
  readonly numbers: Readonly<Partial<Record<SeccompArch, number>>>;
}

/** One syscall. `class` (and `errno`) is what it gets when no argument rule holds. */
export type SyscallEntry =
  | (EntryBase & { readonly class: 'ALLOW' })
  | (EntryBase & { readonly class: 'MEDIATED' })
  | (EntryBase & { readonly class: 'DENIED'; readonly errno: number });
