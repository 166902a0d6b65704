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
    const r = withEnv({ STOCKADE_VM_BOOT_TIMEOUT_MS: '200' }, () => rt.run(['--isolation', 'vm', 'create', '--bundle', b.dir, 'vm-slow'], VM_CALL));
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
      if (victim === 'qemu') assert.match(readFileSync(join(t.stateDir, 'keeper.log'), 'utf8'), /the VM failed: vm: qemu /);
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
    const said = [err, ...rt.logLines().map((l) => l.msg)].join('\n');
    assert.match(said, /container vm-run-qemu: vm: qemu /);
    await vmGone(t);
  });
});
