// Loads a compiled seccomp program into the real kernel in a child and reports what one syscall got.
//
// The child is a tiny C loader built with gcc once per test file. It reads the program, sets
// no_new_privs, installs the filter with the flags given, makes one syscall, and reports with
// write(2) and _exit(2) only, so a profile need allow no more than that. When the flags ask for a
// listener it closes it first: with nobody reading it a NOTIFY would wait forever, and a closed
// listener makes the kernel answer every NOTIFY with ENOSYS, which is how the tests see NOTIFY.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CompiledFilter } from '../../src/seccomp/compile';

const LOADER_C = `
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static struct sock_filter insns[4096];

int main(int argc, char **argv) {
  if (argc < 4) return 64;
  int fd = open(argv[1], O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0) return 65;
  if (st.st_size <= 0 || (size_t)st.st_size > sizeof insns || st.st_size % 8) return 65;
  if (read(fd, insns, st.st_size) != st.st_size) return 65;
  close(fd);
  struct sock_fprog prog = { .len = (unsigned short)(st.st_size / 8), .filter = insns };
  unsigned long flags = strtoul(argv[2], 0, 0);
  long nr = strtol(argv[3], 0, 0);
  unsigned long long a[6] = { 0 };
  for (int i = 4; i < argc && i < 10; i++) a[i - 4] = strtoull(argv[i], 0, 0);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) { printf("nnp-failed %d\\n", errno); return 66; }
  long listener = syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
  if (listener < 0) { printf("load-failed %d\\n", errno); return 67; }
  if ((flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) && close((int)listener) != 0) _exit(68);
  long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
  int e = r == -1 ? errno : 0;
  char buf[80];
  int n = snprintf(buf, sizeof buf, "result %ld errno %d\\n", r, e);
  if (write(1, buf, n) != n) _exit(3);
  _exit(0);
}
`;

export interface Outcome {
  readonly signal: NodeJS.Signals | null;
  readonly result?: bigint;
  readonly errno?: number;
}

/** Whether a command is on PATH: what a machine has, asked before anything is run. */
function onPath(cmd: string): boolean {
  return (process.env['PATH'] ?? '').split(':').some((d) => d !== '' && existsSync(join(d, cmd)));
}

export class SeccompLoader {
  readonly #prefix: string;
  /**
   * Why this machine cannot run the file's cases (not Linux, an architecture they are not written
   * for, no gcc), or false: for `test(name, { skip: loader.skip }, ...)`. Decided before any test
   * runs; a loader that then fails to compile fails the tests, it does not skip them.
   */
  readonly skip: string | false;
  #workdir: string | undefined;
  #exe: string | undefined;
  #compileError: Error | undefined;
  #seq = 0;

  /** `unsupported` says why this host cannot run the file's cases, or undefined when it can. */
  constructor(tmpPrefix: string, unsupported: () => string | undefined) {
    this.#prefix = tmpPrefix;
    this.skip = (process.platform !== 'linux' ? 'not Linux' : unsupported() ?? (onPath('gcc') ? undefined : 'gcc is not installed')) ?? false;
  }

  /** The loader's path, built on first use; throws when it does not build. */
  exe(): string {
    if (this.skip !== false) throw new Error(`SeccompLoader.exe on a machine that cannot run it: ${this.skip}`);
    if (this.#compileError !== undefined) throw this.#compileError;
    if (this.#exe === undefined) {
      const dir = mkdtempSync(join(tmpdir(), this.#prefix));
      this.#workdir = dir;
      writeFileSync(join(dir, 'loader.c'), LOADER_C);
      const cc = spawnSync('gcc', ['-O2', '-Wall', '-o', join(dir, 'loader'), join(dir, 'loader.c')], { encoding: 'utf8' });
      if (cc.error !== undefined || cc.status !== 0) {
        this.#compileError = new Error(`the seccomp test loader does not build: ${cc.error?.message ?? cc.stderr}`);
        throw this.#compileError;
      }
      this.#exe = join(dir, 'loader');
    }
    return this.#exe;
  }

  run(filter: CompiledFilter, flags: number, sysno: number, args: readonly bigint[] = []): Outcome {
    const exe = this.exe();
    if (this.#workdir === undefined) throw new Error('SeccompLoader.run without a work directory');
    const file = join(this.#workdir, `prog-${this.#seq++}.bpf`);
    writeFileSync(file, filter.program);
    const r = spawnSync(exe, [file, String(flags), String(sysno), ...args.map((a) => `0x${a.toString(16)}`)], { encoding: 'utf8', timeout: 10_000 });
    if (r.signal !== null) return { signal: r.signal };
    const m = /^result (-?\d+) errno (\d+)$/m.exec(r.stdout);
    if (r.status !== 0 || m === null) throw new Error(`loader exited ${r.status}: ${r.stdout}${r.stderr}`);
    return { signal: null, result: BigInt(m[1] as string), errno: Number(m[2]) };
  }

  cleanup(): void {
    if (this.#workdir !== undefined) rmSync(this.#workdir, { recursive: true, force: true });
  }
}
