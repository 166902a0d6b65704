// The sentry's syscall table and the workload filter compiled from it: the public surface other modules import.
//
// Stable API (the supervisor and the CLI build on these names):
//
//   sentrySyscallTable(): readonly SyscallEntry[]
//       every syscall of the ABIs stockade has tables for, each with its class (ALLOW | MEDIATED |
//       DENIED), errno (DENIED), argument rules, handler (`family.name`, for calls that can reach
//       the sentry), support level, note, and its number per ABI. Ordered by x86_64 number.
//   sentrySyscall(name): SyscallEntry | undefined
//   sentrySyscallByNumber(arch, nr): SyscallEntry | undefined
//       the entry a notification's (data.arch's ABI, data.nr) stands for: what the supervisor
//       dispatches on.
//   sentryProfile(arch?, { compat? }): SeccompProfile
//       the table as a seccomp profile: ALLOW -> SCMP_ACT_ALLOW, MEDIATED -> SCMP_ACT_NOTIFY,
//       DENIED -> SCMP_ACT_ERRNO(errno), argument rules first, unknown numbers ENOSYS.
//   compileSentryFilter(arch?, { compat? }): CompiledFilter
//       sentryProfile compiled by src/seccomp/compile.ts, KILL_PROCESS for ABIs not covered.
//       Its `flags` carry SECCOMP_FILTER_FLAG_NEW_LISTENER: loading it returns the listener fd.
//
//   renderTable(arch), tableJson(arch), renderMarkdown()
//       the table as `stockade features --syscalls` prints it, and as docs/sentry-syscalls.md.
//
// The data lives in table/entries.ts; docs/sentry-syscalls.md is generated from it.
import { abiOf } from '../seccomp/arch';
import type { SeccompArch } from '../seccomp/types';
import { buildTable } from './table/table';
import type { SyscallEntry } from './table/types';

export type { ArgRule, HandlerFamily, SupportLevel, SyscallClass, SyscallEntry, Verdict } from './table/types';
export type { SentryProfileOptions } from './table/profile';
export {
  compileSentryFilter, sentryProfile, SENTRY_BAD_ARCH_ACTION, SENTRY_DEFAULT_ACTION, verdictAction,
} from './table/profile';
export type { SyscallJson, SyscallTableJson } from './table/render';
export { renderMarkdown, renderTable, tableJson } from './table/render';

export function sentrySyscallTable(): readonly SyscallEntry[] {
  return buildTable();
}

let byName: Map<string, SyscallEntry> | undefined;

export function sentrySyscall(name: string): SyscallEntry | undefined {
  byName ??= new Map(buildTable().map((e) => [e.name, e]));
  return byName.get(name);
}

const byNumber = new Map<SeccompArch, Map<number, SyscallEntry>>();

export function sentrySyscallByNumber(arch: SeccompArch, nr: number): SyscallEntry | undefined {
  let m = byNumber.get(arch);
  if (m === undefined) {
    m = new Map();
    if (abiOf(arch) !== undefined) {
      for (const e of buildTable()) {
        const n = e.numbers[arch];
        if (n !== undefined) m.set(n, e);
      }
    }
    byNumber.set(arch, m);
  }
  return m.get(nr);
}
