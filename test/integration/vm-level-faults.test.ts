// The vm level's faults through the CLI: what cannot boot fails create in one line and leaves nothing; a VMM or keeper killed under a running container stops it, and delete --force leaves nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, json, probeSpec, waitFor, has } from './harness';
import { vmGone, vmHostProcesses, vmSkip, vmTrace, VM_CALL } from './vm-helpers';

const skip = vmSkip();

/** The agent the build made: the dying agent below carries it inside. */
function agentBinary(): string {
  return join(__dirname, '..', '..', '..', 'build', 'Release', 'stockade-agent');
}

// /init for a guest whose agent dies on its own: the real agent (built in with .incbin) exec'd
// from a memfd, as PID 1, under a filter that kills it when it calls kill(2) with SIGUSR2.
const DYING_AGENT = `
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
__asm__(".section .rodata\\n.global agent_start\\nagent_start:\\n.incbin \\"" AGENT "\\"\\n.global agent_end\\nagent_end:\\n.previous");
extern const char agent_start[], agent_end[];
int main(int argc, char **argv, char **envp)
{
  (void)argc;
  int fd = memfd_create("stockade-agent", 0);
  for (const char *p = agent_start; p < agent_end;) {
    ssize_t n = write(fd, p, (size_t)(agent_end - p));
    if (n <= 0) return 1;
    p += n;
  }
  struct sock_filter f[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 5),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_kill, 0, 3),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[1])),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SIGUSR2, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = { sizeof f / sizeof f[0], f };
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) return 1;
  syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
  return 1;
}
`;

/** Runs fn with these variables in this process's environment (which the CLI and its keeper inherit). */
function withEnv<T>(vars: Record<string, string>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  try {
    return fn();
  } finally {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}

function oneLine(stderr: string): string {
  const lines = stderr.trim().split('\n');
  assert.equal(lines.length, 1, `not one line: ${stderr}`);
  return lines[0]!;
}

describe('the vm level when something fails', { skip }, () => {
  let rt: Runtime;
  let work: string;
  before(() => {
    rt = new Runtime();
    work = mkdtempSync(join(tmpdir(), 'stockade-vm-faults-'));
  });
  after(() => {
    rt.cleanup();
    rmSync(work, { recursive: true, force: true });
  });

  test('QEMU missing: create fails in one line naming it, before anything is made', () => {
    const b = rt.bundle(probeSpec(['/bin/true']));
    const r = withEnv({ STOCKADE_QEMU: join(work, 'no-qemu') }, () => rt.run(['--isolation', 'vm', 'create', '--bundle', b.dir, 'vm-noqemu'], VM_CALL));
    assert.notEqual(r.status, 0);
    assert.match(oneLine(r.stderr), /no-qemu is missing/);
    assert.deepEqual(rt.containerDirs(), []);
  });

  test('a broken initramfs (an init that exits at once): create fails naming the guest\'s panic, nothing left', { skip: has('gcc') ? undefined : 'gcc is not installed' }, async () => {
    const src = join(work, 'bad-init.c');
    writeFileSync(src, 'int main(void) { return 1; }\n');
    const bin = join(work, 'bad-init');
    execFileSync('gcc', ['-static', '-O1', '-o', bin, src]);
    const b = rt.bundle(probeSpec(['/bin/true']));
    const r = withEnv({ STOCKADE_AGENT: bin }, () => rt.run(['--isolation', 'vm', 'create', '--bundle', b.dir, 'vm-badinit'], VM_CALL));
    assert.notEqual(r.status, 0);
    assert.match(oneLine(r.stderr), /vm-badinit: .*qemu exited.*Kernel panic|vm-badinit: .*Attempted to kill init/);
    await waitFor(() => rt.containerDirs().length === 0);
  });

  test('a missing agent (an initramfs that cannot be built): create fails naming the file', () => {
    const b = rt.bundle(probeSpec(['/bin/true']));
    const r = withEnv({ STOCKADE_AGENT: join(work, 'no-agent') }, () => rt.run(['--isolation', 'vm', 'create', '--bundle', b.dir, 'vm-noagent'], VM_CALL));
    assert.notEqual(r.status, 0);
    assert.match(oneLine(r.stderr), /no-agent/);
    assert.deepEqual(rt.containerDirs(), []);
  });

  test('a VM that does not boot in time: create fails naming the boot timeout, nothing left', async () => {
    const b = rt.bundle(probeSpec(['/bin/true']));
    const r = withEnv({ STOCKADE_VM_BOOT_TIMEOUT_MS: '200', STOCKADE_VM_TEMPLATE: '0' }, () => rt.run(['--isolation', 'vm', 'create', '--bundle', b.dir, 'vm-slow'], VM_CALL));
    assert.notEqual(r.status, 0);
    assert.match(oneLine(r.stderr), /did not answer|within 200 ms/);
    await waitFor(() => rt.containerDirs().length === 0);
  });

  for (const victim of ['qemu', 'keeper'] as const) {
    test(`kill -9 of the ${victim} of a running container: it stops (the workload with it), delete --force leaves nothing`, async () => {
      const id = `vm-kill-${victim}`;
      const b = rt.bundle(probeSpec(['/bin/sleep', '1000']));
      const r = rt.run(['--isolation', 'vm', 'run', '-d', '--bundle', b.dir, id], VM_CALL);
      assert.equal(r.status, 0, r.stderr);
      const t = vmTrace(rt, id);
      const qemu = vmHostProcesses(t).find((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith('/usr/bin/qemu-system') || /qemu-system/.test(readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[0] ?? ''));
      assert.ok(qemu !== undefined, 'no QEMU found');
      process.kill(victim === 'qemu' ? qemu : t.keeper, 'SIGKILL');
      await waitFor(() => json<{ status: string }>(rt.run(['state', id]).stdout).status === 'stopped', 20000);
      // Fail closed: nothing of the VM runs on without its keeper, nor the keeper without its VM.
      await waitFor(() => vmHostProcesses(t).length === 0, 15000);
      // QEMU named, with what happened to it (not its jail wrapper's own words).
      if (victim === 'qemu') assert.match(readFileSync(join(t.stateDir, 'keeper.log'), 'utf8'), /the VM failed: vm: qemu killed by SIGKILL\n/);
      const d = rt.run(['delete', '--force', id], VM_CALL);
      assert.equal(d.status, 0, d.stderr);
      await vmGone(t);
      assert.equal(existsSync(t.stateDir), false);
    });
  }

  test('an attached run whose QEMU is killed: the error names QEMU, the status is not the workload\'s, nothing left', async () => {
    const id = 'vm-run-qemu';
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'echo up; sleep 1000']));
    const child = rt.spawn(['--isolation', 'vm', 'run', '--bundle', b.dir, id]);
    let out = '';
    let err = '';
    child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr?.on('data', (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await waitFor(() => out.includes('up'), 120000);
    const t = vmTrace(rt, id);
    const qemu = vmHostProcesses(t).find((p) => /qemu-system/.test(readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[0] ?? ''));
    assert.ok(qemu !== undefined, 'no QEMU found');
    process.kill(qemu, 'SIGKILL');
    // unref: a pending timer would keep this file's process alive its full minute after the last test.
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running 60 s after'), 60000).unref())]);
    assert.equal(code, 255, err);
    // Said as a warning: on stderr, or in the --log file when there is one (as here).
    const said = [err, ...rt.logLines().map((l) => l.msg).filter((m) => m.includes(id))].join('\n');
    assert.match(said, /container vm-run-qemu: vm: qemu killed by SIGKILL/);
    assert.doesNotMatch(said, /unshare/);
    await vmGone(t);
  });

  // The agent, PID 1 of the guest, dying on its own (a crash): here a seccomp filter its /init
  // wrapper installs kills it when it sends SIGUSR2 (kill(2) with signal 12), which `stockade kill
  // ID USR2` makes it do. The guest kernel panics ("Attempted to kill init"), QEMU exits.
  test('the agent dies under a running container: it stops, the error names the agent in one line, delete --force leaves nothing', { skip: has('gcc') ? undefined : 'gcc is not installed' }, async () => {
    const src = join(work, 'dying-agent.c');
    writeFileSync(src, DYING_AGENT);
    const bin = join(work, 'dying-agent');
    execFileSync('gcc', ['-static', '-O1', `-DAGENT="${agentBinary()}"`, '-o', bin, src]);
    const id = 'vm-agent-dies';
    const b = rt.bundle(probeSpec(['/bin/sleep', '1000']));
    const r = withEnv({ STOCKADE_AGENT: bin }, () => rt.run(['--isolation', 'vm', 'run', '-d', '--bundle', b.dir, id], VM_CALL));
    assert.equal(r.status, 0, r.stderr);
    const t = vmTrace(rt, id);
    assert.equal(json<{ status: string }>(rt.run(['state', id]).stdout).status, 'running');
    // The agent dies sending it: the kill itself gets no answer but the VM's end.
    rt.run(['kill', id, 'USR2'], VM_CALL);
    await waitFor(() => json<{ status: string }>(rt.run(['state', id]).stdout).status === 'stopped', 30000);
    await waitFor(() => vmHostProcesses(t).length === 0, 15000);
    const failed = readFileSync(join(t.stateDir, 'keeper.log'), 'utf8').split('\n').filter((l) => / the VM failed: /.test(l));
    assert.equal(failed.length, 1, failed.join('\n'));
    assert.match(failed[0] ?? '', /the VM failed: vm: the agent \(the guest's init\) died: .*Attempted to kill init/);
    const k = rt.run(['kill', id, 'TERM']);
    assert.notEqual(k.status, 0);
    assert.match(oneLine(k.stderr), /stopped/);
    const d = rt.run(['delete', '--force', id], VM_CALL);
    assert.equal(d.status, 0, d.stderr);
    await vmGone(t);
  });
});
