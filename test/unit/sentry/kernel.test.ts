// The workload filter on the real kernel: a child loads it, drops the listener, and reports what one syscall got.
//
// The loader is test/unit/seccomp/kernel.test.ts's, plus one step: the sentry filter asks for a
// listener, and with nobody reading it a MEDIATED call would wait forever. Closing the listener
// makes the kernel answer every NOTIFY with ENOSYS, which is how these tests see NOTIFY.
import { test, after } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Abi } from '../../../src/seccomp/arch';
import { abiOf, nativeArch } from '../../../src/seccomp/arch';
import type { CompiledFilter } from '../../../src/seccomp/compile';
import { compileSentryFilter } from '../../../src/sentry/syscalls';

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

let workdir: string | undefined;
let loader: string | undefined;
let unavailable: string | undefined;

after(() => {
  if (workdir !== undefined) rmSync(workdir, { recursive: true, force: true });
});

function setup(t: TestContext): string | undefined {
  if (loader === undefined && unavailable === undefined) {
    let arch: string | undefined;
    try {
      arch = nativeArch();
    } catch {
      arch = undefined;
    }
    if (process.platform !== 'linux') unavailable = 'not Linux';
    else if (arch !== 'SCMP_ARCH_X86_64') unavailable = `these cases are written for x86_64, not ${process.arch}`;
    else {
      workdir = mkdtempSync(join(tmpdir(), 'stockade-sentry-kernel-'));
      writeFileSync(join(workdir, 'loader.c'), LOADER_C);
      const cc = spawnSync('gcc', ['-O2', '-Wall', '-o', join(workdir, 'loader'), join(workdir, 'loader.c')], { encoding: 'utf8' });
      if (cc.error !== undefined) unavailable = `gcc is not available (${cc.error.message})`;
      else if (cc.status !== 0) unavailable = `gcc failed: ${cc.stderr}`;
      else loader = join(workdir, 'loader');
    }
  }
  if (loader === undefined) t.skip(unavailable);
  return loader;
}

interface Outcome {
  readonly signal: NodeJS.Signals | null;
  readonly result?: bigint;
  readonly errno?: number;
}

let seq = 0;
function run(exe: string, filter: CompiledFilter, sysno: number, args: readonly bigint[] = []): Outcome {
  const file = join(workdir as string, `prog-${seq++}.bpf`);
  writeFileSync(file, filter.program);
  const r = spawnSync(exe, [file, String(filter.flags), String(sysno), ...args.map((a) => `0x${a.toString(16)}`)], { encoding: 'utf8', timeout: 10_000 });
  if (r.signal !== null) return { signal: r.signal };
  const m = /^result (-?\d+) errno (\d+)$/m.exec(r.stdout);
  if (r.status !== 0 || m === null) throw new Error(`loader exited ${r.status}: ${r.stdout}${r.stderr}`);
  return { signal: null, result: BigInt(m[1] as string), errno: Number(m[2]) };
}

const X86_64 = abiOf('SCMP_ARCH_X86_64') as Abi;
function nr(name: string): number {
  const n = X86_64.table[name];
  if (n === undefined) throw new Error(`no ${name}`);
  return n;
}

const EPERM = { signal: null, result: -1n, errno: 1 };
const ENOSYS = { signal: null, result: -1n, errno: 38 };

test('kernel: the sentry filter loads, denied calls get their errno, allowed ones run, mediated ones notify', (t) => {
  const exe = setup(t);
  if (exe === undefined) return;
  const f = compileSentryFilter('SCMP_ARCH_X86_64');

  const ppid = run(exe, f, nr('getppid'));
  assert.equal(ppid.errno, 0);
  assert.ok((ppid.result ?? 0n) > 0n, 'getppid returned a pid');

  // As root these would succeed or fail on their arguments; EPERM is the filter's.
  assert.deepEqual(run(exe, f, nr('unshare'), [0x10000000n]), EPERM, 'unshare(CLONE_NEWUSER)');
  assert.deepEqual(run(exe, f, nr('unshare'), [0n]), EPERM, 'unshare(0)');
  assert.deepEqual(run(exe, f, nr('mount'), [0n, 0n, 0n, 0n, 0n]), EPERM, 'mount');
  assert.deepEqual(run(exe, f, nr('ptrace'), [0n]), EPERM, 'ptrace(PTRACE_TRACEME)');
  assert.deepEqual(run(exe, f, nr('bpf'), [0n, 0n, 0n]), EPERM, 'bpf');
  assert.deepEqual(run(exe, f, nr('keyctl'), [0n, 0n]), EPERM, 'keyctl');
  assert.deepEqual(run(exe, f, nr('setns'), [0n, 0n]), EPERM, 'setns');
  assert.deepEqual(run(exe, f, nr('clone'), [0x10000000n | 17n]), EPERM, 'clone(CLONE_NEWUSER)');
  assert.deepEqual(run(exe, f, nr('personality'), [0x400000n]), EPERM, 'personality(READ_IMPLIES_EXEC)');
  assert.equal(run(exe, f, nr('personality'), [0xffffffffn]).errno, 0, 'personality query');

  assert.deepEqual(run(exe, f, nr('clone3'), [0n, 0n]), ENOSYS, 'clone3');
  assert.deepEqual(run(exe, f, nr('io_uring_setup'), [1n, 0n]), ENOSYS, 'io_uring_setup');
  assert.deepEqual(run(exe, f, 1000), ENOSYS, 'a number no table names');

  assert.deepEqual(run(exe, f, nr('socket'), [17n, 3n, 0x300n]), EPERM, 'AF_PACKET');
  assert.deepEqual(run(exe, f, nr('socket'), [2n, 3n | 0x80000n, 1n]), EPERM, 'AF_INET, SOCK_RAW|SOCK_CLOEXEC');
  assert.deepEqual(run(exe, f, nr('socket'), [16n, 3n, 9n]), { signal: null, result: -1n, errno: 93 }, 'NETLINK_AUDIT');

  // NOTIFY with the listener closed: the kernel's ENOSYS.
  assert.deepEqual(run(exe, f, nr('openat'), [0xffffff9cn, 0n, 0n]), ENOSYS, 'openat reaches the (absent) sentry');
  assert.deepEqual(run(exe, f, nr('socket'), [2n, 1n, 0n]), ENOSYS, 'AF_INET socket reaches the (absent) sentry');
});

test('kernel: a syscall through the x32 ABI kills the process', (t) => {
  const exe = setup(t);
  if (exe === undefined) return;
  const f = compileSentryFilter('SCMP_ARCH_X86_64');
  assert.deepEqual(run(exe, f, 0x40000000 | nr('getpid')), { signal: 'SIGSYS' });
});
