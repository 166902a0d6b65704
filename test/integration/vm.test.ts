// The vm level's groundwork end to end: a real QEMU microVM over a busybox rootfs, its agent, and what it leaves behind.
//
// Boots are slow under TCG and the machine is shared: one VM serves every check that a fresh VM
// would not make stronger; the fail-closed checks each need a VM of their own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { StockadeError } from '../../src/errors';
import { VmError } from '../../src/vm/errors';
import { bootVm, vmProcesses, type Vm } from '../../src/vm/vm';
import { ensureGuestAssets } from '../../src/vm/assets';
import { probeBoot } from '../../src/vm/accel-probe';
import { makeRootfs, rootfsUnavailable } from '../helpers/rootfs';
import { guestAssetsOr } from './vm-helpers';

/**
 * vmProcesses' marker, for a lookup by the VM's uid alone: a word no command line holds (the
 * '\0none\0' it was matched every `docker run --network none` another test had running).
 */
const NO_MARKER = `\0stockade-no-marker-${randomBytes(8).toString('hex')}\0`;
import { processesMarked } from '../helpers/run-scope';

const { assets, skip } = guestAssetsOr(rootfsUnavailable);

/**
 * Every process one VM may leave on the host, found by what is its own (every run on the host
 * boots the same cached kernel and initramfs): QEMU by its drawn uid, virtiofsd and the jail by
 * the VM's directory, and the jail's root wrappers (setpriv, unshare, sh) by the `--reuid=UID`
 * they hand QEMU.
 */
function leftOf(uid: number, dir: string): string[] {
  const byUid = vmProcesses(uid, dir).map((pid) => `${pid} (uid ${uid} or naming ${dir})`);
  const wrappers = processesMarked(`--reuid=${uid}`).map((p) => `${p.pid} ${p.cmdline.slice(0, 120)}`);
  return [...byUid, ...wrappers];
}

function assertNothingLeft(vm: Vm): void {
  assert.deepEqual(leftOf(vm.vmmUid, vm.runDir), [], 'processes of the VM left');
  assert.equal(existsSync(vm.runDir), false, `${vm.runDir} left`);
}

function withRootfs<T>(fn: (rootfs: string, parent: string) => Promise<T>): Promise<T> {
  const parent = mkdtempSync(join(tmpdir(), 'stockade-vm-test-'));
  const rootfs = join(parent, 'rootfs');
  makeRootfs(rootfs);
  return fn(rootfs, parent).finally(() => rmSync(parent, { recursive: true, force: true }));
}

test('a VM boots its own kernel over a busybox rootfs, runs processes with stdio, exit status and signals, and leaves nothing', { skip, timeout: 240000 }, () => withRootfs(async (rootfs, parent) => {
  const debug: string[] = [];
  const vm = await bootVm({ rootfs, assets: assets!, runParent: parent, debug: (l) => debug.push(l) });
  try {
    assert.match(debug.join('\n'), /vm: accelerator (tcg|kvm): /);
    // QEMU's jail: its own uid, no capabilities, no new privileges, seccomp on, and a root
    // that holds /usr, the kernel, the initramfs, three devices and its /proc, nothing else.
    const [qemu] = vmProcesses(vm.vmmUid, NO_MARKER);
    const status = readFileSync(`/proc/${qemu}/status`, 'utf8');
    assert.match(status, new RegExp(`^Uid:\\s+${vm.vmmUid}\\s`, 'm'));
    for (const line of [/^CapEff:\s+0+$/m, /^CapBnd:\s+0+$/m, /^NoNewPrivs:\s+1$/m, /^Seccomp:\s+2$/m]) assert.match(status, line);
    assert.deepEqual(readdirSync(`/proc/${qemu}/root`).sort(), ['bin', 'boot', 'dev', 'lib', 'lib64', 'proc', 'sbin', 'usr']);
    assert.deepEqual(readdirSync(`/proc/${qemu}/root/dev`).sort(), ['null', 'urandom', 'zero']);
    assert.equal(existsSync(`/proc/${qemu}/root/etc/passwd`), false);

    // The guest kernel is Debian's cloud kernel, not the host's.
    assert.equal(vm.kernelRelease, assets!.release);
    assert.notEqual(vm.kernelRelease, release());
    const version = await vm.run({ args: ['cat', '/proc/version'] });
    assert.equal(version.code, 0);
    assert.match(version.stdout.toString(), new RegExp(`^Linux version ${assets!.release.replace(/[.+]/g, '\\$&')} `));
    assert.equal((await vm.run({ args: ['uname', '-r'] })).stdout.toString(), `${assets!.release}\n`);

    const r = await vm.run({ args: ['sh', '-c', 'echo hello; echo oops >&2; exit 3'] });
    assert.deepEqual([r.code, r.signal, r.stdout.toString(), r.stderr.toString()], [3, null, 'hello\n', 'oops\n']);

    // What the guest sees is the rootfs, and a mount table of its own.
    assert.deepEqual((await vm.run({ args: ['ls', '/'] })).stdout.toString().trim().split('\n').sort(), readdirSync(rootfs).sort());
    const mounts = (await vm.run({ args: ['cat', '/proc/mounts'] })).stdout.toString();
    // The root is a directory of the virtiofs share (vm.ts GUEST_SHARE), whose own mount lies
    // outside the chroot: the process sees its /proc alone.
    assert.deepEqual(mounts.trim().split('\n').map((l) => l.split(' ').slice(0, 3).join(' ')), ['proc /proc proc']);
    // No network device reaches the guest: its kernel knows the loopback alone.
    const netdev = (await vm.run({ args: ['cat', '/proc/net/dev'] })).stdout.toString();
    assert.deepEqual(netdev.split('\n').slice(2).filter((l) => l.trim() !== '').map((l) => l.trim().split(':')[0]), ['lo']);

    // Identity and working directory are the ones asked for.
    const who = await vm.run({ args: ['sh', '-c', 'id -u; id -g; pwd'], uid: 1000, gid: 1000, cwd: '/home/test' });
    assert.equal(who.stdout.toString(), '1000\n1000\n/home/test\n');

    // A megabyte through cat: stdin and stdout under credit, nothing lost or reordered.
    const input = Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 7) & 0xff));
    const cat = await vm.run({ args: ['cat'], input });
    assert.equal(cat.code, 0);
    assert.ok(cat.stdout.equals(input), `cat returned ${cat.stdout.length} bytes`);

    // Output beyond what the caller will hold kills the process instead of filling the host.
    await assert.rejects(vm.run({ args: ['yes'], maxOutputBytes: 1 << 20 }),
      (e: unknown) => e instanceof VmError && e.reason === 'LIMIT' && /yes wrote more than 1048576 bytes to stdout/.test(e.message));

    // A signal reaches the process, and its status says so.
    const sleeper = await vm.spawn({ args: ['sleep', '1000'] });
    assert.ok(sleeper.pid > 1);
    await sleeper.signal('SIGTERM');
    assert.deepEqual(await sleeper.wait(), { code: null, signal: 15 });

    // stockade-init is in the guest, static, and runs under the guest kernel (here without a
    // plan, so it says how it wants to be called).
    const init = await vm.run({ args: ['/sbin/stockade-init'], root: 'guest' });
    assert.deepEqual([init.code, init.stderr.toString().trim()], [1, 'usage: stockade-init PLAN_FD SYNC_FD']);

    // A command that does not exist is the agent's error, with its errno.
    await assert.rejects(vm.spawn({ args: ['/no/such/command'] }), (e: unknown) => e instanceof VmError && e.reason === 'AGENT' && e.context['errno'] === 2 && /execve \/no\/such\/command/.test(e.message));
  } finally {
    await vm.destroy();
  }
  assert.equal(await vm.ended, null);
  assertNothingLeft(vm);
  await assert.rejects(vm.run({ args: ['true'] }), (e: unknown) => e instanceof VmError && e.reason === 'DESTROYED');
}));

for (const victim of ['qemu', 'virtiofsd'] as const) {
  test(`fail closed: ${victim} killed under a running process fails it with VMM_EXITED and leaves nothing`, { skip, timeout: 240000 }, () => withRootfs(async (rootfs, parent) => {
    const vm = await bootVm({ rootfs, assets: assets!, runParent: parent });
    try {
      const p = await vm.spawn({ args: ['sleep', '1000'] });
      const waited = p.wait();
      // QEMU by its uid; virtiofsd (the parent we started and its sandboxed worker) by its binary and the VM's directory.
      const pids = victim === 'qemu'
        ? vmProcesses(vm.vmmUid, NO_MARKER)
        : processesMarked(vm.runDir).filter((p) => p.cmdline.startsWith('/usr/lib/qemu/virtiofsd ')).map((p) => p.pid);
      assert.equal(pids.length, victim === 'qemu' ? 1 : 2, `${victim}: ${pids.join(',')}`);
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      await assert.rejects(waited, (e: unknown) => e instanceof VmError && e.reason === 'VMM_EXITED' && new RegExp(`vm: ${victim} `).test(e.message));
      const ended = await vm.ended;
      assert.equal(ended?.reason, 'VMM_EXITED');
    } finally {
      await vm.destroy();
    }
    assertNothingLeft(vm);
  }));
}

test('a guest whose init is not the agent: the boot fails naming the agent\'s death (or QEMU\'s exit) and the console, nothing left', { skip, timeout: 240000 }, () => withRootfs(async (rootfs, parent) => {
  // An init that exits at once: the kernel panics and, with panic=-1 and -no-reboot, QEMU exits;
  // the host must say so rather than wait out the boot timeout.
  const src = join(parent, 'exit0.c');
  writeFileSync(src, 'int main(void) { return 0; }\n');
  execFileSync('gcc', ['-static', '-O2', '-o', join(parent, 'exit0'), src]);
  const broken = ensureGuestAssets({ agent: join(parent, 'exit0') });
  const before = Date.now();
  // The uid drawn for this VM's QEMU, from the command line the boot logs.
  let uid: number | undefined;
  const debug = (l: string): void => {
    const m = /--reuid=(\d+)/.exec(l);
    if (m !== null) uid = Number(m[1]);
  };
  await assert.rejects(bootVm({ rootfs, assets: broken, runParent: parent, bootTimeoutMs: 50000, debug }),
    // Named as the agent's death when the console's panic line is in before QEMU's exit is handled
    // (vm.ts), else as QEMU's exit; either way with the console's words.
    (e: unknown) => e instanceof VmError && e.reason === 'VMM_EXITED' && /the agent \(the guest's init\) died: Kernel panic|qemu exited/.test(e.message) && /console: .*(panic|Kernel)/i.test(e.message));
  assert.ok(Date.now() - before < 45000, 'the failure was noticed, not timed out');
  assert.deepEqual(readdirSync(parent).filter((n) => n.startsWith('stockade-vm-')), []);
  assert.ok(uid !== undefined, 'the boot logged QEMU\'s command line');
  // This VM's only: another run on the host boots the same broken initramfs (the same agent bytes).
  assert.deepEqual(leftOf(uid, parent), [], 'processes of the VM left');
}));

test('a missing kernel or rootfs, or a memory size out of range, is refused before anything starts', { skip }, async () => {
  const parent = mkdtempSync(join(tmpdir(), 'stockade-vm-test-'));
  try {
    await assert.rejects(bootVm({ rootfs: parent, assets: { kernel: { vmlinuz: '/no/vmlinuz', moduleDir: '/no/modules' } }, runParent: parent }),
      (e: unknown) => e instanceof VmError && e.reason === 'ASSETS' && /\/no\/vmlinuz does not exist/.test(e.message));
    await assert.rejects(bootVm({ rootfs: join(parent, 'absent'), assets: assets!, runParent: parent }),
      (e: unknown) => e instanceof VmError && e.reason === 'ASSETS' && /rootfs .*absent does not exist/.test(e.message));
    await assert.rejects(bootVm({ rootfs: parent, assets: assets!, runParent: parent, memoryMiB: 3 }),
      (e: unknown) => e instanceof StockadeError && e.code === 'USAGE' && /memory of 3 MiB is out of range/.test(e.message));
    assert.deepEqual(readdirSync(parent), []);
  } finally {
    rmSync(parent, { recursive: true, force: true });
  }
});

test('the accelerator probe: a standard guest powers off under TCG; under a /dev/kvm served by kvm_pvm it does not', { skip, timeout: 120000 }, async () => {
  const tcg = await probeBoot(assets!, 'tcg', 60000);
  assert.equal(tcg.ok, true, tcg.why);
  if (existsSync('/sys/module/kvm_pvm') && existsSync('/dev/kvm')) {
    // What chooseAccel's rule spares every boot: the probe itself, seen to fail here.
    const kvm = await probeBoot(assets!, 'kvm', 8000);
    assert.equal(kvm.ok, false, kvm.why);
  }
});
