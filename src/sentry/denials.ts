// Refusals the filter sends to the sentry to be recorded (SentryProfileOptions.reportDenials): which
// notifications are refusals, and with what errno.
//
// A notification does not say why the filter sent it, and the same syscall can be served for some
// arguments and refused for others (socket(AF_UNIX) is served, socket(AF_PACKET) refused). So the
// sentry asks the filter itself: it runs the ordinary filter, the one that answers refusals in
// the kernel, on the notification's data in the BPF interpreter, and refuses with the errno that
// filter gives. Only syscalls with a recorded refusal somewhere in the table are asked; for them
// the check comes before any handler, so a refused call never reaches the handler that serves the
// call's other arguments.
import { actionOf } from '../seccomp/actions';
import type { SeccompArch } from '../seccomp/types';
import { checkedFilter, type SeccompData } from '../seccomp/interpreter';
import { abiOf } from '../seccomp/arch';
import { buildTable } from './table/table';
import { compileSentryFilter, recordedDenial } from './table/profile';
import type { Notification } from './notification';

export interface Denial {
  readonly syscall: string;
  /** the errno the caller got, positive */
  readonly errno: number;
}

export class DenialJudge {
  /** The ordinary filter, decoded and checked once: the judge runs it for every refusal. */
  readonly #filter: (data: SeccompData) => number;
  readonly #arch: number;
  /** syscall numbers with a recorded refusal for some arguments, and their names */
  readonly #names = new Map<number, string>();

  /** `cacheDir`: where compiled filters are kept between calls (the state root's cache), if anywhere. */
  constructor(arch: SeccompArch, cacheDir?: string) {
    this.#filter = checkedFilter(compileSentryFilter(arch, {}, cacheDir).program);
    this.#arch = abiOf(arch)?.auditArch ?? -1;
    for (const e of buildTable()) {
      const nr = e.numbers[arch];
      if (nr === undefined) continue;
      const own = e.class === 'DENIED' && recordedDenial({ class: 'DENIED', errno: e.errno });
      if (own || e.rules.some((r) => recordedDenial(r.verdict))) this.#names.set(nr, e.name);
    }
  }

  /** Whether the filter may send syscall `nr` to be recorded as a refusal for some arguments. */
  records(nr: number): boolean {
    return this.#names.has(nr);
  }

  /** The refusal this notification is, or undefined for a call the sentry serves. */
  judge(n: Notification): Denial | undefined {
    const syscall = this.#names.get(n.nr);
    if (syscall === undefined || n.arch !== this.#arch) return undefined;
    const action = actionOf(this.#filter({ nr: n.nr, arch: n.arch, args: n.args }));
    return action.kind === 'ERRNO' ? { syscall, errno: action.errno } : undefined;
  }
}

const judges = new Map<SeccompArch, DenialJudge>();

/**
 * The judge of `arch`'s refusals, made once per thread: it holds nothing of any one workload, and
 * making it compiles the whole sentry filter (milliseconds), which a sentry serving a container's
 * execs and its pod's containers would otherwise repeat for each.
 */
export function denialJudge(arch: SeccompArch, cacheDir?: string): DenialJudge {
  let j = judges.get(arch);
  if (j === undefined) {
    j = new DenialJudge(arch, cacheDir);
    judges.set(arch, j);
  }
  return j;
}
