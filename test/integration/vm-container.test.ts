// Containers inside the guest: stockade-init there with a plan computed on the host, the namespaces level's wall inside a VM.
//
// One VM serves every check: each container in it is made by its own stockade-init run, so a
// fresh VM per container would show nothing more (the VM's own boot and teardown are vm.test's).
// It is the vm level's VM: restored from the template (startVm), its root and bind source served
// by QEMU's 9p from binds in QEMU's own mount namespace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildExecPlan } from '../../src/container/exec-plan';
import { buildPlan, heldCapabilities, type PlanOptions } from '../../src/container/plan';
import { seccompFor } from '../../src/container/seccomp';
import type { Process, Spec } from '../../src/oci/spec';
import { GUEST_PLAN_PLACEHOLDERS } from '../../src/vm/guest-plan';
import { startVm } from '../../src/vm/template';
import { vmProcesses, type Vm, type VmContainer } from '../../src/vm/vm';
import { probeSpec } from './harness';
import { makeRootfs, rootfsUnavailable } from '../helpers/rootfs';
import { guestAssetsOr, templateRelease } from './vm-helpers';

const { skip } = guestAssetsOr(rootfsUnavailable);

const hex = (bits: readonly number[]): string => bits.reduce((m, b) => m | (1n << BigInt(b)), 0n).toString(16).padStart(16, '0');

/** Output collected as it comes, with a wait for a pattern in it. */
class Collected {
  #text = '';
  #waiters: (() => void)[] = [];
  readonly sink = (c: Buffer): void => {
    this.#text += c.toString();
    for (const w of this.#waiters.splice(0)) w();
  };
  get text(): string { return this.#text; }
  async until(re: RegExp, ms = 60000): Promise<string> {
    const deadline = Date.now() + ms;
    while (!re.test(this.#text)) {
      if (Date.now() > deadline) throw new Error(`no ${re} in output: ${JSON.stringify(this.#text)}`);
      await new Promise<void>((r) => { this.#waiters.push(r); setTimeout(r, 200); });
    }
    return this.#text;
  }
}

interface Ctx { vm: Vm; parent: string; bundle: string; hostDir: string }

function plan(ctx: Ctx, spec: Spec, id: string): ReturnType<typeof buildPlan> {
  writeFileSync(join(ctx.bundle, 'config.json'), JSON.stringify(spec));
  const opts: PlanOptions = {
    id, bundle: ctx.bundle, ...GUEST_PLAN_PLACEHOLDERS, cgroupPaths: [], noPivot: false, noNewKeyring: false,
    rootfsMode: 'bind', createHooks: false, heldCapabilities: heldCapabilities(), seccomp: seccompFor(spec, ctx.parent),
  };
  return buildPlan(spec, opts);
}

async function exec(ctx: Ctx, c: VmContainer, spec: Spec, proc: Partial<Process> & { args: string[] }): Promise<{ code: number | null; out: string }> {
  const out = new Collected();
  const process: Process = { ...spec.process!, ...proc };
  const p = await c.exec({
    plan: buildExecPlan(spec, process, {
      id: 'x', initPid: c.pid, cgroupPaths: [], consoleSocket: process.terminal === true ? GUEST_PLAN_PLACEHOLDERS.consoleSocket : undefined,
      preserveFds: 0, monitor: false, seccomp: seccompFor(spec, ctx.parent), heldCapabilities: heldCapabilities(),
    }),
    onStdout: out.sink, onStderr: out.sink,
  });
  const status = await p.wait();
  return { code: status.code, out: out.text };
}

test('containers in the guest: the config applied by stockade-init there, exec, a pty, pids and stats, kill --all, failures', { skip, timeout: 300000 }, async () => {
  const parent = mkdtempSync(join(tmpdir(), 'stockade-vmc-test-'));
  const bundle = join(parent, 'bundle');
  const rootfs = join(bundle, 'rootfs');
  makeRootfs(rootfs);
  const hostDir = join(parent, 'shared');
  makeRootfs(hostDir);
  writeFileSync(join(hostDir, 'data'), 'from the host');
  // A mount below the read-only source: read-only too in QEMU's namespace (stockade-rbind), where
  // a bind and a remount would have left it writable.
  const sub = join(hostDir, 'sub');
  mkdirSync(sub);
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'stockade-vmc-sub', sub]);
  let vm: Vm | undefined;
  try {
    vm = await startVm({ rootfs, runParent: parent, binds: [{ source: hostDir, readonly: true }] });
    assert.match(vm.accel.reason, /^restored from template /);
    const ctx: Ctx = { vm, parent, bundle, hostDir };

    // The config-field probe, from inside a container made in the guest.
    const spec = probeSpec(['sh', '-c', '/bin/probe report; echo; uname -r; exec /bin/probe signal-exit'], (s) => {
      s.hostname = 'vmbox';
      s.root = { path: 'rootfs', readonly: true };
      const p = s.process!;
      p.user = { uid: 1000, gid: 1000, additionalGids: [10, 20] };
      p.cwd = '/home/test';
      p.env = ['PATH=/bin', 'FOO=bar baz'];
      p.rlimits = [{ type: 'RLIMIT_NOFILE', soft: 1000, hard: 2000 }];
      p.capabilities = { bounding: ['CAP_KILL', 'CAP_CHOWN', 'CAP_NET_RAW'], effective: ['CAP_KILL'], permitted: ['CAP_KILL', 'CAP_CHOWN'], inheritable: ['CAP_KILL'], ambient: ['CAP_KILL'] };
      p.noNewPrivileges = true;
      s.mounts!.push({ destination: '/mnt/host', type: 'bind', source: hostDir, options: ['rbind', 'ro'] });
      s.linux!.maskedPaths = ['/proc/keys', '/proc/acpi'];
      s.linux!.readonlyPaths = ['/proc/sys'];
      s.linux!.seccomp = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['kexec_load'], action: 'SCMP_ACT_ERRNO' }] };
    });
    const out = new Collected();
    const c = await vm.createContainer({ plan: plan(ctx, spec, 'probe'), onStdout: out.sink, onStderr: out.sink });
    assert.ok(c.pid > 1, `the container's init has a guest pid (${c.pid})`);
    // Created, it waits for start: nothing ran yet.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(out.text, '');
    await c.start();
    const text = await out.until(/"ready":true/);
    const [json, ...rest] = text.split('\n');
    const kernel = rest.find((l) => /^\d+\.\d+/.test(l));
    const rep = JSON.parse(json!) as Record<string, unknown> & { caps: Record<string, string>; rlimits: Record<string, number[]>; mounts: { mountpoint: string; fstype: string; options: string }[] };
    assert.equal(rep['pid'], 2, 'its own pid namespace: sh is 1 there, the probe its child');
    assert.equal(rep['hostname'], 'vmbox');
    assert.equal(rep['uid'], 1000);
    assert.equal(rep['gid'], 1000);
    assert.deepEqual([...(rep['groups'] as number[])].sort((a, b) => a - b), [10, 20]);
    assert.equal(rep['cwd'], '/home/test');
    // sh adds SHLVL and PWD; the config's entries and HOME (from /etc/passwd, as runc sets it) are there.
    for (const e of ['PATH=/bin', 'FOO=bar baz', 'HOME=/home/test']) assert.ok((rep['env'] as string[]).includes(e), `${e} in ${String(rep['env'])}`);
    assert.deepEqual(rep.rlimits['NOFILE'], [1000, 2000]);
    assert.equal(rep.caps['bnd'], hex([0, 5, 13]));
    assert.equal(rep.caps['eff'], hex([5]));
    assert.equal(rep['seccomp'], 2, 'the config\'s seccomp filter is on');
    assert.equal(rep['noNewPrivs'], true);
    const mount = (mp: string): { fstype: string; options: string } | undefined => rep.mounts.filter((m) => m.mountpoint === mp).at(-1);
    assert.match(mount('/')?.options ?? '', /^ro\b/, 'read-only root');
    assert.match(mount('/mnt/host')?.options ?? '', /^ro\b/, 'read-only bind');
    assert.equal(mount('/proc')?.fstype, 'proc');
    assert.match(mount('/proc/sys')?.options ?? '', /^ro\b/, 'read-only path');
    assert.ok(mount('/proc/keys') !== undefined, 'masked file covered');
    assert.equal(mount('/proc/acpi')?.fstype, 'tmpfs', 'masked directory covered');
    assert.ok(rep.mounts.every((m) => !m.mountpoint.startsWith('/run/stockade')), 'no guest plumbing visible');
    assert.equal(kernel, templateRelease(), 'uname -r is the guest kernel');
    assert.notEqual(kernel, release());

    // exec: the container's namespaces, identity and filter; the bind's content, read-only.
    const inside = await exec(ctx, c, spec, { args: ['/bin/probe', 'report'] });
    assert.equal(inside.code, 0, inside.out);
    const er = JSON.parse(inside.out) as Record<string, unknown>;
    assert.equal(er['hostname'], 'vmbox');
    assert.notEqual(er['pid'], 1);
    assert.equal(er['uid'], 1000);
    assert.equal(er['seccomp'], 2);
    assert.match((await exec(ctx, c, spec, { args: ['/bin/probe', 'cat', '/mnt/host/data'] })).out, /from the host/);
    assert.match((await exec(ctx, c, spec, { args: ['/bin/probe', 'try-write', '/mnt/host/new'] })).out, /"error":"EROFS"/);
    const failed = await exec(ctx, c, spec, { args: ['sh', '-c', 'exit 7'] });
    assert.equal(failed.code, 7);
    await assert.rejects(exec(ctx, c, spec, { args: ['/no/such/program'] }), /no\/such\/program.*No such file/);

    // pids and stats from the guest's cgroup.
    const pids = await c.pids();
    assert.ok(pids.includes(c.pid), `${c.pid} in ${pids.join(',')}`);
    const stats = await c.stats();
    assert.ok(stats.pidsCurrent >= 1n, `pids.current ${stats.pidsCurrent}`);
    assert.ok(stats.memoryCurrent > 0n, `memory.current ${stats.memoryCurrent}`);
    assert.ok(stats.cpuUsageUsec > 0n, `cpu usage ${stats.cpuUsageUsec}`);
    // Limits of its cgroup in the guest: seen in the stats, and kept: with pids.max at what runs
    // now, an exec (one process more in the cgroup) cannot start.
    await c.update({ pidsMax: BigInt(pids.length), memoryMax: 64n << 20n, cpuQuota: 50000n, cpuPeriod: 100000n });
    const limited = await c.stats();
    assert.deepEqual([limited.pidsMax, limited.memoryMax], [BigInt(pids.length), 64n << 20n]);
    await assert.rejects(exec(ctx, c, spec, { args: ['true'] }), /Resource temporarily unavailable|EAGAIN/);
    await assert.rejects(c.update({ cpuWeight: 20000n }), /cpu weight 20000 is not 1 to 10000/);
    await c.update({ pidsMax: 0xffffffffffffffffn });
    assert.equal((await c.stats()).pidsMax, 0xffffffffffffffffn);

    await c.signal('SIGTERM');
    assert.deepEqual(await c.wait(), { code: 0, signal: null });
    assert.match(out.text, /"signal":15/);
    // Gone from the agent once waited for: its directory and cgroup with it.
    await assert.rejects(c.pids(), /pids: no container/);

    // Stdio through the agent's streams: stdin to the container's process, and a MiB of output to a
    // slow reader (credit runs out and comes back; nothing is lost).
    let got = 0;
    const slow = async (chunk: Buffer): Promise<void> => { got += chunk.length; await new Promise((r) => setTimeout(r, 2)); };
    const big = await vm.createContainer({ plan: plan(ctx, probeSpec(['sh', '-c', 'yes 0123456789abcdef | head -c 1048576']), 'big'), onStdout: slow });
    await big.start();
    assert.deepEqual(await big.wait(), { code: 0, signal: null });
    assert.equal(got, 1048576);
    const echoed = new Collected();
    const cat = await vm.createContainer({ plan: plan(ctx, probeSpec(['cat']), 'cat'), stdin: true, onStdout: echoed.sink });
    await cat.start();
    await cat.write('through the guest\n');
    await cat.end();
    assert.deepEqual(await cat.wait(), { code: 0, signal: null });
    assert.equal(echoed.text, 'through the guest\n');

    // A pty for the container's process: tty, and a resize seen by stty.
    const tspec = probeSpec(['sh', '-c', 'tty; stty size; read x; stty size; echo "got $x"; exec sleep 1000'], (s) => {
      s.process!.terminal = true;
    });
    const tout = new Collected();
    const t = await vm.createContainer({ plan: plan(ctx, tspec, 't'), onStdout: tout.sink });
    assert.equal(t.terminal, true);
    await t.start();
    await tout.until(/\/dev\/pts\/0\r?\n.*\r?\n/);
    t.resize(33, 77);
    await t.write('go\n');
    await tout.until(/got go/);
    assert.match(tout.text, /^\/dev\/pts\/0\r\n/);
    assert.match(tout.text, /33 77\r\ngot go/);
    // exec with a pty of its own.
    const ttyExec = await exec(ctx, t, tspec, { args: ['tty'], terminal: true });
    assert.equal(ttyExec.code, 0);
    assert.match(ttyExec.out, /^\/dev\/pts\/\d+\r\n$/);

    // kill --all: every process of the container's cgroup.
    await t.exec({ plan: buildExecPlan(tspec, { ...tspec.process!, terminal: false, args: ['sleep', '1000'] }, {
      id: 't', initPid: t.pid, cgroupPaths: [], consoleSocket: undefined, preserveFds: 0, monitor: false, seccomp: undefined, heldCapabilities: heldCapabilities(),
    }) });
    assert.ok((await t.pids()).length >= 2);
    await t.signal('SIGKILL', { all: true });
    assert.deepEqual(await t.wait(), { code: null, signal: 9 });

    // The runtime's hooks at the create point run on the host while the container waits in the
    // guest, and what they return is the state the container's own hooks get.
    const hooked: [number, number][] = [];
    const hspec = probeSpec(['/bin/probe', 'exit', '0']);
    const hrecords = buildPlan(hspec, {
      id: 'h', bundle, ...GUEST_PLAN_PLACEHOLDERS, cgroupPaths: [], noPivot: false, noNewKeyring: false,
      rootfsMode: 'bind', createHooks: true, heldCapabilities: heldCapabilities(), seccomp: undefined,
    });
    const h = await vm.createContainer({ plan: hrecords, onHook: async (point, pid) => { hooked.push([point, pid]); return Buffer.from('{}'); } });
    assert.deepEqual(hooked, [[1, h.pid]]);
    await h.start();
    assert.deepEqual(await h.wait(), { code: 0, signal: null });

    // Failures: one line naming what failed; the VM serves the next container.
    const bad = probeSpec(['true'], (s) => { s.mounts!.push({ destination: '/mnt/x', type: 'no-such-fs', source: 'none' }); });
    await assert.rejects(vm.createContainer({ plan: plan(ctx, bad, 'bad') }), (e: Error) => /no-such-fs/.test(e.message) && !e.message.includes('\n'));
    const unshared = probeSpec(['true'], (s) => { s.mounts!.push({ destination: '/mnt/x', type: 'bind', source: parent, options: ['rbind'] }); });
    await assert.rejects(vm.createContainer({ plan: plan(ctx, unshared, 'unshared') }), new RegExp(`bind source ${parent} was not shared`));
    const noCmd = probeSpec(['/no/such/cmd']);
    // As runc: the command is looked up at create, in the container's root.
    await assert.rejects(vm.createContainer({ plan: plan(ctx, noCmd, 'nocmd') }), /vm agent: exec-lookup: "\/no\/such\/cmd": No such file or directory \(ENOENT\)$/);
    // A bind asked read-write of a source the VM got read-only: the host kernel refuses the write
    // (virtiofsd's read-only bind), whatever the guest's mount says.
    const rwOut = new Collected();
    const rw = probeSpec(['sh', '-c', '/bin/probe try-write /mnt/rw/new; echo; /bin/probe try-write /mnt/rw/sub/new'], (s) => { s.mounts!.push({ destination: '/mnt/rw', type: 'bind', source: hostDir, options: ['rbind', 'rw'] }); });
    const ok = await vm.createContainer({ plan: plan(ctx, rw, 'after'), onStdout: rwOut.sink });
    await ok.start();
    assert.deepEqual(await ok.wait(), { code: 0, signal: null });
    assert.equal(rwOut.text.match(/"error":"EROFS"/g)?.length, 2, `both writes refused by the host kernel: ${rwOut.text}`);
    assert.equal(existsSync(join(hostDir, 'new')), false);
    assert.equal(existsSync(join(sub, 'new')), false);
  } finally {
    execFileSync('umount', [sub]);
    await vm?.destroy();
    if (vm !== undefined) assert.deepEqual(vmProcesses(vm.vmmUid, vm.runDir), []);
    rmSync(parent, { recursive: true, force: true });
  }
});
