// Turns the syscall table into the workload's seccomp profile, and compiles it with stockade's BPF compiler.
import { actionValue, errno as errnoAction, ALLOW, KILL_PROCESS, NOTIFY } from '../../seccomp/actions';
import { nativeArch } from '../../seccomp/arch';
import type { CompiledFilter } from '../../seccomp/compile';
import { compile } from '../../seccomp/compile';
import { compileCached } from '../../seccomp/cache';
import type { SeccompAction, SeccompArch, SeccompProfile, SyscallRule } from '../../seccomp/types';
import { ENOSYS } from '../../abi/linux/constants';
import { buildTable } from './table';
import type { SyscallEntry, Verdict } from './types';

export interface SentryProfileOptions {
  /**
   * Also filter the ABIs a host of `arch` can run besides its own (i386 and x32 on x86_64, arm
   * on aarch64), with the same table. Off by default: the sentry's handlers read the native
   * ABI's structures only, so a compat syscall gets the bad-arch action (KILL_PROCESS).
   */
  readonly compat?: boolean;
  /**
   * Send the refusals worth recording (see `recordedDenial`) to the sentry instead of answering
   * them in the kernel: the sentry answers the same errno and records the attempt (the --log
   * file, `stockade trace`). A notified call never runs unless the sentry says CONTINUE, which
   * it never does for these; with the sentry gone the kernel answers ENOSYS. Off by default.
   */
  readonly reportDenials?: boolean;
}

/** What a syscall number no entry names gets: ENOSYS, as from a kernel that predates it. */
export const SENTRY_DEFAULT_ACTION: SeccompAction = errnoAction(ENOSYS);

/** What a syscall made through an ABI the filter does not cover gets. */
export const SENTRY_BAD_ARCH_ACTION: SeccompAction = KILL_PROCESS;

export function verdictAction(v: Verdict, opts: SentryProfileOptions = {}): SeccompAction {
  switch (v.class) {
    case 'ALLOW': return ALLOW;
    case 'MEDIATED': return NOTIFY;
    case 'DENIED': return opts.reportDenials === true && recordedDenial(v) ? NOTIFY : errnoAction(v.errno);
  }
}

/**
 * Whether a refusal says the workload tried something: every DENIED answer but ENOSYS. ENOSYS is
 * the "not in this kernel" answer libc and runtimes probe for on their own (clone3 on every
 * fork, io_uring, landlock); recording those would bury the attempts that matter and cost each
 * fork a round trip through the sentry.
 */
export function recordedDenial(v: Verdict): boolean {
  return v.class === 'DENIED' && v.errno !== ENOSYS;
}

function entryVerdict(e: SyscallEntry): Verdict {
  return e.class === 'DENIED' ? { class: 'DENIED', errno: e.errno } : { class: e.class };
}

function compatArches(arch: SeccompArch): SeccompArch[] {
  switch (arch) {
    case 'SCMP_ARCH_X86_64': return ['SCMP_ARCH_X86', 'SCMP_ARCH_X32'];
    case 'SCMP_ARCH_AARCH64': return ['SCMP_ARCH_ARM'];
    default: return [];
  }
}

/**
 * The table as a profile. Entries without argument rules are grouped into one rule per answer;
 * an entry with argument rules gets them in table order and then its own answer, so the first
 * rule that holds decides (compile.ts's semantics). MEDIATED becomes SCMP_ACT_NOTIFY.
 */
export function sentryProfile(arch: SeccompArch = nativeArch(), opts: SentryProfileOptions = {}): SeccompProfile {
  const grouped = new Map<number, { action: SeccompAction; names: string[] }>();
  const conditional: SyscallRule[] = [];
  for (const e of buildTable()) {
    const action = verdictAction(entryVerdict(e), opts);
    if (e.rules.length === 0) {
      const key = actionValue(action);
      let g = grouped.get(key);
      if (g === undefined) grouped.set(key, (g = { action, names: [] }));
      g.names.push(e.name);
      continue;
    }
    for (const r of e.rules) conditional.push({ names: [e.name], action: verdictAction(r.verdict, opts), args: r.when });
    conditional.push({ names: [e.name], action, args: [] });
  }
  const unconditional = [...grouped.values()].map((g) => ({ names: g.names, action: g.action, args: [] }));
  return {
    defaultAction: SENTRY_DEFAULT_ACTION,
    architectures: opts.compat === true ? compatArches(arch) : [],
    flags: [],
    syscalls: [...unconditional, ...conditional],
  };
}

/**
 * sentryProfile compiled for `arch`, with KILL_PROCESS for ABIs it does not cover. With
 * `cacheDir`, through the compiled-filter cache there (seccomp/cache.ts: keyed by the profile and
 * the compiler's version), which saves the runtime 8-12 ms of each sentry container's create.
 */
export function compileSentryFilter(arch: SeccompArch = nativeArch(), opts: SentryProfileOptions = {}, cacheDir?: string): CompiledFilter {
  const how = { arch, badArchAction: SENTRY_BAD_ARCH_ACTION };
  return cacheDir === undefined ? compile(sentryProfile(arch, opts), how) : compileCached(sentryProfile(arch, opts), how, cacheDir);
}
