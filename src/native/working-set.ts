// A long-lived Node process's start-up leftovers: the pages of Node's binary and libraries that
// starting Node touched (its snapshot, ICU, the bootstrap) and waiting or serving never touch again.
// Given back by the sentry process, and by a `do` or attached `run` that waits in Node.
import { readFileSync } from 'node:fs';
import { SYSCALLS_AARCH64 } from '../abi/linux/syscalls-aarch64';
import { SYSCALLS_ARM } from '../abi/linux/syscalls-arm';
import { SYSCALLS_I386 } from '../abi/linux/syscalls-i386';
import { SYSCALLS_X86_64 } from '../abi/linux/syscalls-x86_64';
import { mallocTrim, sentryNative, type SyscallArg } from './addon';

/** One run of pages of a mapping, by address. */
export interface PageRange {
  readonly start: bigint;
  readonly length: bigint;
}

const MADV_DONTNEED = 4;
// This process's own madvise, by Node's name for the architecture it runs on (-1: none known,
// and the call is refused like any other).
const MADVISE_BY_ARCH: Readonly<Partial<Record<string, number>>> = {
  x64: SYSCALLS_X86_64.madvise, arm64: SYSCALLS_AARCH64.madvise, ia32: SYSCALLS_I386.madvise, arm: SYSCALLS_ARM.madvise,
};
const NR_MADVISE = MADVISE_BY_ARCH[process.arch] ?? -1;

/**
 * The mappings in `smaps` (the text of /proc/PID/smaps) that only hold pages of the page cache:
 * backed by a file, not writable, and with no page of their own (Anonymous 0: nothing was ever
 * written to them, as relocations write to a library's RELRO pages). Dropping such a mapping's
 * pages loses nothing: the next access finds the same page in the page cache.
 */
export function pageCacheMappings(smaps: string): PageRange[] {
  const out: PageRange[] = [];
  let current: { start: bigint; length: bigint; ok: boolean; rss: number } | undefined;
  const close = (): void => {
    if (current?.ok && current.rss > 0) out.push({ start: current.start, length: current.length });
  };
  for (const line of smaps.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (head !== null) {
      close();
      const [, from = '0', to = '0', perms = '', inode = '0', path = ''] = head;
      const start = BigInt(`0x${from}`);
      current = { start, length: BigInt(`0x${to}`) - start, ok: path.startsWith('/') && inode !== '0' && !perms.includes('w'), rss: 0 };
      continue;
    }
    if (current === undefined) continue;
    const field = /^(\w+):\s+(\d+) kB$/.exec(line);
    if (field === null) continue;
    if (field[1] === 'Rss') current.rss = Number(field[2]);
    else if (field[1] === 'Anonymous' && field[2] !== '0') current.ok = false;
  }
  close();
  return out;
}

/** This process's page-cache-only mappings, read now (before the thread is confined: it opens /proc). */
export function ownPageCacheMappings(): PageRange[] {
  return pageCacheMappings(readFileSync('/proc/self/smaps', 'utf8'));
}

/**
 * Unmaps the pages of `ranges` from this process (MADV_DONTNEED): they stay in the page cache,
 * one copy for the whole host, and what is used again comes back on its first access (a minor
 * fault). Returns how many ranges the kernel refused (none is expected).
 */
export function dropPages(sys: (nr: number, ...args: SyscallArg[]) => number, ranges: readonly PageRange[]): number {
  let refused = 0;
  // Highest address first, so that Node's own binary (mapped low) goes last: the JavaScript that
  // runs between two calls here faults back in what it runs, and after the last call none does.
  for (let i = ranges.length - 1; i >= 0; i--) {
    const r = ranges[i] as PageRange;
    if (sys(NR_MADVISE, r.start, r.length, MADV_DONTNEED) < 0) refused++;
  }
  return refused;
}

/** dropPages, and the free memory of malloc's heaps (malloc_trim): what a process gives back when it idles. */
export function giveBack(sys: (nr: number, ...args: SyscallArg[]) => number, ranges: readonly PageRange[]): void {
  dropPages(sys, ranges);
  mallocTrim();
}

const collectGarbage = (globalThis as { gc?: () => void }).gc;

/**
 * For a Node process that waits while its container runs (`do`, an attached `run`, when it does
 * not become stockade-light's wait): gives back its page-cache-only pages `firstMs` after the
 * call, then every `everyMs`; what the wait needs again comes back on first access. Returns the stop.
 */
export function trimWhileWaiting(firstMs = 1000, everyMs = 30_000): () => void {
  let ranges: PageRange[] | undefined;
  const trim = (): void => {
    try {
      // V8's full collection where the process exposes it (the vm keeper's --expose-gc): an idle
      // Node process's event loop runs no collection, and what start-up left on V8's pages stays.
      collectGarbage?.();
      ranges ??= ownPageCacheMappings();
      giveBack(sentryNative().syscall, ranges);
    } catch {
      // Memory only: a process that cannot do it keeps its pages.
    }
  };
  let every: NodeJS.Timeout | undefined;
  const first = setTimeout(() => {
    trim();
    every = setInterval(trim, everyMs).unref();
  }, firstMs).unref();
  return () => {
    clearTimeout(first);
    clearInterval(every);
  };
}
