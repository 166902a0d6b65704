// Loads compiled programs into the real kernel in a child (a tiny C loader built with gcc) and checks what the syscalls get.
import { test, after } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errno } from '../../../src/seccomp/actions';
import { nativeArch } from '../../../src/seccomp/arch';
import { decodeProgram } from '../../../src/seccomp/bpf';
import type { CompiledFilter } from '../../../src/seccomp/compile';
import { compile } from '../../../src/seccomp/compile';
import { SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW } from '../../../src/seccomp/constants';
import { defaultSeccompProfile } from '../../../src/seccomp/default-profile';
import { parseSeccomp } from '../../../src/seccomp/parse';
import type { SeccompArch, SeccompProfile } from '../../../src/seccomp/types';
import { nr, profile, X32_BIT } from './helpers';

// Reads the program, sets no_new_privs, installs the filter with the given flags, makes one
// syscall, and reports with write(2) and _exit(2) only, so a profile need allow no more than that.
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
  if (syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog) < 0) { printf("load-failed %d\\n", errno); return 67; }
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

function native(): SeccompArch | undefined {
  try {
    const arch = nativeArch();
    return arch === 'SCMP_ARCH_X86_64' || arch === 'SCMP_ARCH_AARCH64' ? arch : undefined;
  } catch {
    return undefined;
  }
}

/** The loader's path, or undefined after t.skip() with the reason it cannot run here. */
function setup(t: TestContext): string | undefined {
  if (loader === undefined && unavailable === undefined) {
    if (process.platform !== 'linux') unavailable = 'not Linux';
    else if (native() === undefined) unavailable = `no test loader for ${process.arch}`;
    else {
      workdir = mkdtempSync(join(tmpdir(), 'stockade-seccomp-kernel-'));
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
function run(exe: string, filter: CompiledFilter, flags: number, sysno: number, args: readonly bigint[] = []): Outcome {
  const file = join(workdir as string, `prog-${seq++}.bpf`);
  writeFileSync(file, filter.program);
  const r = spawnSync(exe, [file, String(flags), String(sysno), ...args.map((a) => `0x${a.toString(16)}`)], { encoding: 'utf8', timeout: 10_000 });
  if (r.signal !== null) return { signal: r.signal };
  const m = /^result (-?\d+) errno (\d+)$/m.exec(r.stdout);
  if (r.status !== 0 || m === null) {
    throw new Error(`loader exited ${r.status}: ${r.stdout}${r.stderr}`);
  }
  return { signal: null, result: BigInt(m[1] as string), errno: Number(m[2]) };
}

function compileFor(arch: SeccompArch, prof: SeccompProfile): CompiledFilter {
  return compile(prof, { arch });
}

test('kernel: a denied call gets its errno, an allowed one runs, KILL_PROCESS dies of SIGSYS', (t) => {
  const exe = setup(t);
  const arch = native();
  if (exe === undefined || arch === undefined) return;
  const f = compileFor(arch, profile({
    defaultAction: { kind: 'ALLOW' },
    syscalls: [
      { names: ['getppid'], action: errno(13), args: [] },
      { names: ['getpgid'], action: { kind: 'KILL_PROCESS' }, args: [] },
      { names: ['getpriority'], action: errno(22), args: [{ index: 1, op: 'EQ', value: 0x1_7fff_fff0n, valueTwo: 0n }] },
    ],
  }));
  assert.deepEqual(run(exe, f, 0, nr(arch, 'getppid')), { signal: null, result: -1n, errno: 13 });
  const pid = run(exe, f, 0, nr(arch, 'getpid'));
  assert.equal(pid.signal, null);
  assert.ok((pid.result ?? 0n) > 0n, 'getpid returned a pid');
  assert.deepEqual(run(exe, f, 0, nr(arch, 'getpgid'), [0n]), { signal: 'SIGSYS' });
  // The high half of a 64-bit argument reaches the filter.
  assert.deepEqual(run(exe, f, 0, nr(arch, 'getpriority'), [0n, 0x1_7fff_fff0n]), { signal: null, result: -1n, errno: 22 });
  assert.equal(run(exe, f, 0, nr(arch, 'getpriority'), [0n, 0x7fff_fff0n]).errno, 3, 'no such process: ESRCH from the kernel itself');
});

test('kernel: the flags the compiler returns are accepted', (t) => {
  const exe = setup(t);
  const arch = native();
  if (exe === undefined || arch === undefined) return;
  const f = compile(parseSeccomp({
    defaultAction: 'SCMP_ACT_ALLOW', flags: ['SECCOMP_FILTER_FLAG_LOG', 'SECCOMP_FILTER_FLAG_SPEC_ALLOW'],
    syscalls: [{ names: ['getppid'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }],
  }), { arch });
  assert.equal(f.flags, SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW);
  assert.deepEqual(run(exe, f, f.flags, nr(arch, 'getppid')), { signal: null, result: -1n, errno: 1 });
});

test('kernel: the default profile, with its trampolines, allows and denies as Docker\'s does', (t) => {
  const exe = setup(t);
  const arch = native();
  if (exe === undefined || arch === undefined) return;
  const f = compile(parseSeccomp(defaultSeccompProfile({ arch })), { arch });
  assert.ok(decodeProgram(f.program).some((i) => i.code === 0x05), 'the program exercises long jumps');
  assert.equal(run(exe, f, f.flags, nr(arch, 'getppid')).errno, 0);
  assert.deepEqual(run(exe, f, f.flags, nr(arch, 'mount')), { signal: null, result: -1n, errno: 1 });
  assert.deepEqual(run(exe, f, f.flags, nr(arch, 'unshare'), [0x10000000n]), { signal: null, result: -1n, errno: 1 });
  assert.deepEqual(run(exe, f, f.flags, nr(arch, 'kexec_load')), { signal: null, result: -1n, errno: 1 });
  assert.deepEqual(run(exe, f, f.flags, nr(arch, 'clone3')), { signal: null, result: -1n, errno: 38 });
  assert.deepEqual(run(exe, f, f.flags, nr(arch, 'socket'), [40n, 1n, 0n]), { signal: null, result: -1n, errno: 1 });
  assert.deepEqual(run(exe, f, f.flags, nr(arch, 'socket'), [(1n << 32n) | 38n, 5n, 0n]), { signal: null, result: -1n, errno: 1 });
  // An AF_UNIX socket is allowed: the loader exits right after, so the descriptor does not matter.
  assert.equal(run(exe, f, f.flags, nr(arch, 'socket'), [1n, 1n, 0n]).errno, 0);
});

test('kernel: an x32 syscall from a filter without x32 takes the bad-arch action', (t) => {
  const exe = setup(t);
  const arch = native();
  if (exe === undefined || arch === undefined) return;
  if (arch !== 'SCMP_ARCH_X86_64') {
    t.skip('x32 is an x86_64 ABI');
    return;
  }
  const getpid = nr(arch, 'getpid');
  const only64 = compileFor(arch, profile({ defaultAction: { kind: 'ALLOW' } }));
  assert.deepEqual(run(exe, only64, 0, X32_BIT | getpid), { signal: 'SIGSYS' });
  // With x32 filtered, its rules answer before the kernel looks at whether it supports x32 at all.
  const withX32 = compileFor(arch, profile({
    defaultAction: { kind: 'ALLOW' }, architectures: ['SCMP_ARCH_X32'],
    syscalls: [{ names: ['getpid'], action: errno(77), args: [] }],
  }));
  assert.deepEqual(run(exe, withX32, 0, X32_BIT | getpid), { signal: null, result: -1n, errno: 77 });
  assert.equal(run(exe, withX32, 0, getpid).errno, 77, 'and x86_64 getpid, named by the same rule');
});
