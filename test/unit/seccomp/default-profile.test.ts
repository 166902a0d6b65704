// The default profile: fits the kernel's limit and allows and denies what Docker's default does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compile } from '../../../src/seccomp/compile';
import { defaultSeccompProfile } from '../../../src/seccomp/default-profile';
import { checkProgram, runFilter } from '../../../src/seccomp/interpreter';
import { parseSeccomp } from '../../../src/seccomp/parse';
import type { SeccompArch } from '../../../src/seccomp/types';
import { AUDIT_ARCH_X86_64, X32_BIT, nr, verdict } from './helpers';

const CLONE_NEWUSER = 0x10000000n;
const CLONE_NEWNS = 0x00020000n;
const FORK_FLAGS = 0x01200011n; // CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD, what glibc's fork passes
const THREAD_FLAGS = 0x003d0f00n; // pthread_create's CLONE_VM | CLONE_FS | ... | CLONE_SETTLS | ...

function compiled(arch: SeccompArch, capabilities?: readonly string[]): Buffer {
  const oci = defaultSeccompProfile(capabilities === undefined ? { arch } : { arch, capabilities });
  // Round-trip through JSON: this is what `stockade spec` writes and `create` reads back.
  const out = compile(parseSeccomp(JSON.parse(JSON.stringify(oci))), { arch });
  checkProgram(out.program);
  return out.program;
}

test('compiles within the kernel limit on x86_64 and aarch64 (instruction counts)', (t) => {
  for (const arch of ['SCMP_ARCH_X86_64', 'SCMP_ARCH_AARCH64'] as const) {
    const out = compile(parseSeccomp(defaultSeccompProfile({ arch })), { arch });
    assert.ok(out.instructions <= 4096, `${arch}: ${out.instructions}`);
    t.diagnostic(`${arch}: ${out.instructions} instructions, ABIs ${out.arches.join(' ')}; no number on any: ${out.skippedSyscalls.join(' ')}`);
  }
});

test('x86_64: the everyday calls are allowed, on every ABI it filters', () => {
  const p = compiled('SCMP_ARCH_X86_64');
  for (const name of ['read', 'write', 'exit_group', 'openat', 'mmap', 'futex', 'execve', 'rt_sigaction', 'arch_prctl', 'chroot']) {
    assert.equal(verdict(p, 'SCMP_ARCH_X86_64', name), 'ALLOW', name);
  }
  for (const name of ['read', 'write', 'exit_group', 'socketcall', 'modify_ldt']) {
    assert.equal(verdict(p, 'SCMP_ARCH_X86', name), 'ALLOW', `i386 ${name}`);
    if (name !== 'socketcall') assert.equal(verdict(p, 'SCMP_ARCH_X32', name), 'ALLOW', `x32 ${name}`);
  }
});

test('x86_64: administration calls are denied with EPERM', () => {
  const p = compiled('SCMP_ARCH_X86_64');
  for (const name of ['mount', 'umount2', 'kexec_load', 'kexec_file_load', 'init_module', 'bpf', 'unshare', 'setns',
    'reboot', 'swapon', 'io_uring_setup', 'userfaultfd', 'perf_event_open', 'keyctl', 'add_key', 'open_by_handle_at',
    'pivot_root', 'sethostname', 'fsopen', 'clock_settime', 'iopl']) {
    assert.equal(verdict(p, 'SCMP_ARCH_X86_64', name), 'ERRNO(1)', name);
  }
  assert.equal(verdict(p, 'SCMP_ARCH_X86', 'mount'), 'ERRNO(1)');
});

test('clone: threads and fork yes, new namespaces no; clone3 gets ENOSYS', () => {
  for (const arch of ['SCMP_ARCH_X86_64', 'SCMP_ARCH_AARCH64'] as const) {
    const p = compiled(arch);
    assert.equal(verdict(p, arch, 'clone', [FORK_FLAGS]), 'ALLOW');
    assert.equal(verdict(p, arch, 'clone', [THREAD_FLAGS]), 'ALLOW');
    assert.equal(verdict(p, arch, 'clone', [FORK_FLAGS | CLONE_NEWUSER]), 'ERRNO(1)');
    assert.equal(verdict(p, arch, 'clone', [FORK_FLAGS | CLONE_NEWNS]), 'ERRNO(1)');
    assert.equal(verdict(p, arch, 'clone3'), 'ERRNO(38)');
  }
  const x86 = compiled('SCMP_ARCH_X86_64');
  assert.equal(verdict(x86, 'SCMP_ARCH_X86', 'clone', [FORK_FLAGS | CLONE_NEWUSER]), 'ERRNO(1)');
  assert.equal(verdict(x86, 'SCMP_ARCH_X86', 'clone3'), 'ERRNO(38)');
});

test('with CAP_SYS_ADMIN, clone, clone3 and mount are allowed (as Docker --cap-add SYS_ADMIN)', () => {
  const p = compiled('SCMP_ARCH_X86_64', ['CAP_SYS_ADMIN']);
  assert.equal(verdict(p, 'SCMP_ARCH_X86_64', 'clone', [CLONE_NEWUSER]), 'ALLOW');
  assert.equal(verdict(p, 'SCMP_ARCH_X86_64', 'clone3'), 'ALLOW');
  assert.equal(verdict(p, 'SCMP_ARCH_X86_64', 'mount'), 'ALLOW');
  assert.equal(verdict(p, 'SCMP_ARCH_X86_64', 'chroot'), 'ERRNO(1)', 'CAP_SYS_CHROOT is not in this set');
});

test('socket: every family but AF_ALG and AF_VSOCK, whatever sits in the high half', () => {
  const p = compiled('SCMP_ARCH_X86_64');
  const at = (d: bigint): string => verdict(p, 'SCMP_ARCH_X86_64', 'socket', [d, 1n, 0n]);
  for (const family of [1n, 2n, 10n, 16n, 17n, 37n, 39n, 41n, 45n]) assert.equal(at(family), 'ALLOW', `family ${family}`);
  assert.equal(at(38n), 'ERRNO(1)');
  assert.equal(at(40n), 'ERRNO(1)');
  // socket() reads the family as an int: 0x1_00000026 is AF_ALG to the kernel.
  assert.equal(at((1n << 32n) | 38n), 'ERRNO(1)');
  assert.equal(at((1n << 32n) | 40n), 'ERRNO(1)');
});

test('personality: only the usual execution domains', () => {
  const p = compiled('SCMP_ARCH_X86_64');
  for (const v of [0n, 8n, 0x20000n, 0x20008n, 0xffffffffn]) assert.equal(verdict(p, 'SCMP_ARCH_X86_64', 'personality', [v]), 'ALLOW');
  assert.equal(verdict(p, 'SCMP_ARCH_X86_64', 'personality', [0x0040000n]), 'ERRNO(1)'); // ADDR_NO_RANDOMIZE
});

test('syscalls newer than the profile answer ENOSYS, x32 calls outside its table too', () => {
  const p = compiled('SCMP_ARCH_X86_64');
  assert.equal(verdict(p, 'SCMP_ARCH_X86_64', 999), 'ERRNO(38)');
  assert.equal(runFilter(p, { nr: X32_BIT + 600, arch: AUDIT_ARCH_X86_64 }), 0x50000 | 38);
  assert.equal(runFilter(p, { nr: nr('SCMP_ARCH_X86_64', 'read'), arch: 0xdead }), 0); // other ABIs: KILL_THREAD
});
