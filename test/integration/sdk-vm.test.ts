// The SDK at the vm level, lean: one sandbox (a boot is seconds under TCG) through exec, stdin,
// streaming, spawn, files, a terminal, per-exec users, maxBuffer, abort, check and a timed-out
// command, then kill() leaving nothing; a second one whose program is SIGKILLed takes its VM with
// it; a small one filled to its memory limit; the host's root in one that its timeoutMs ends.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  Sandbox, SandboxAbortError, SandboxExecError, SandboxExitError, SandboxOptionsError, SandboxOutOfMemoryError, SandboxOutputLimitError,
  SandboxTimeoutError,
} from '../../src/sdk';
import { integrationSkip, waitFor } from './harness';
import { guestAssetsOr } from './vm-helpers';
import { cgroupsOf, nothingLeft, sdkDir, sdkImage } from './sdk-helpers';

const { skip } = guestAssetsOr(integrationSkip);

describe('sdk at vm', { skip }, () => {
  let dir: string;
  let root: string;
  let sb: Sandbox;
  let image: string;
  before(async () => {
    ({ dir, root } = sdkDir());
    image = await sdkImage(dir);
    sb = await Sandbox.create({ image, isolation: 'vm', root, env: { FROM_CREATE: 'yes' }, memoryMb: 256 });
  });
  after(async () => {
    await sb?.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  test('exec, stdin, streaming, spawn and files in the guest', async () => {
    assert.deepEqual(await sb.exec('echo "$GREETING $FROM_CREATE"; pwd; echo e >&2; exit 5'), { exitCode: 5, stdout: 'from-image yes\n/work\n', stderr: 'e\n' });
    assert.equal((await sb.exec(['cat'], { stdin: 'into the guest' })).stdout, 'into the guest');
    const chunks: string[] = [];
    await sb.exec('echo one; sleep 1; echo two', { onStdout: (c) => chunks.push(c) });
    assert.deepEqual(chunks.join(''), 'one\ntwo\n');
    assert.ok(chunks.length >= 2, `streamed in ${chunks.length} piece(s)`);
    const p = await sb.spawn('read a; echo "got $a"');
    p.stdin.end('x\n');
    let out = '';
    for await (const c of p.stdout) out += String(c);
    assert.equal(out, 'got x\n');
    assert.deepEqual(await p.wait(), { exitCode: 0 });
    await sb.files.write('/w/f', Buffer.from([1, 2, 3]));
    assert.deepEqual(await sb.files.read('/w/f'), Buffer.from([1, 2, 3]));
    assert.deepEqual(await sb.files.list('/w'), [{ name: 'f', type: 'file' }]);
    await sb.files.remove('/w/f');
    assert.deepEqual(await sb.files.list('/w'), []);
  });

  test('a terminal in the guest (size, resize, input), per-exec users, and maxBuffer', async () => {
    const r = await sb.exec('stty size; [ -t 0 ] && echo on-a-tty', { tty: { rows: 33, cols: 101 } });
    assert.equal(r.stdout, '33 101\r\non-a-tty\r\n');
    const p = await sb.spawn(['sh', '-c', 'read a; stty size; echo "got $a"'], { tty: true });
    let out = '';
    p.stdout.on('data', (b: Buffer) => { out += b.toString('utf8'); });
    p.resize(40, 120);
    // The keeper looks at the size four times a second.
    await new Promise((r) => setTimeout(r, 1000));
    p.stdin.write('hello\n');
    assert.deepEqual(await p.wait(), { exitCode: 0 });
    await waitFor(() => out.includes('got hello'), 5000);
    assert.match(out, /hello\r\n40 120\r\ngot hello\r\n$/);
    assert.equal((await sb.exec('id -u; id -g; echo $HOME', { user: 'nobody' })).stdout, '65534\n65534\n/nonexistent\n');
    assert.equal((await sb.exec('id -u; id -g', { user: '123:45' })).stdout, '123\n45\n');
    assert.notEqual((await sb.exec('ls /root', { user: 'nobody' })).exitCode, 0);
    await assert.rejects(sb.exec('true', { user: 'ghost' }), (e: unknown) => e instanceof SandboxOptionsError && e.option === 'user');
    await assert.rejects(sb.exec('echo start; exec yes', { maxBuffer: 4096 }), (e: unknown) => e instanceof SandboxOutputLimitError && e.stream === 'stdout' && e.stdout.length === 4096 && e.stdout.startsWith('start\n'));
    assert.equal((await sb.exec("cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^yes$'")).stdout, '0\n');
  });

  test('abort and check in the guest: the aborted command killed, one not started; a non-zero exit and a missing program rejected', async () => {
    // Fired while it runs, and while it was being started (a start in the guest takes a while):
    // killed either way (its timeoutMs only bounds the test should it not be).
    const ac = new AbortController();
    const running = sb.spawn('echo begun; exec sleep 1000', { signal: ac.signal, timeoutMs: 60_000 });
    const first = await (await running).stdout[Symbol.asyncIterator]().next();
    assert.equal(String(first.value), 'begun\n');
    ac.abort(new Error('enough'));
    await assert.rejects((await running).wait(), (e: unknown) => e instanceof SandboxAbortError && (e.cause as Error).message === 'enough');
    const late = new AbortController();
    const starting = sb.exec(['sleep', '1000'], { signal: late.signal, timeoutMs: 60_000 });
    late.abort(new Error('meanwhile'));
    await assert.rejects(starting, (e: unknown) => e instanceof SandboxAbortError && (e.cause as Error).message === 'meanwhile');
    await assert.rejects(sb.exec(['true'], { signal: ac.signal }), (e: unknown) => e instanceof SandboxAbortError && /not started: its AbortSignal had fired/.test(e.message));
    // The aborted sleep is gone from the guest.
    assert.equal((await sb.exec("cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^sleep$'")).stdout, '0\n');
    await assert.rejects(sb.exec('echo out; exit 3', { check: true }), (e: unknown) => e instanceof SandboxExitError && e.exitCode === 3 && e.result.stdout === 'out\n');
    assert.equal((await sb.exec('true', { check: true })).exitCode, 0);
    await assert.rejects(sb.exec(['/no/such/program']), (e: unknown) => e instanceof SandboxExecError && /\/no\/such\/program/.test(e.message));
  });

  test('a process that fills the memory limit in the guest is reported, not hung; the sandbox goes on', async () => {
    await using small = await Sandbox.create({ image, isolation: 'vm', root, memoryMb: 64 });
    // The shell doubles a string until the OOM killer takes it.
    await assert.rejects(small.exec('x=0123456789abcdef; while :; do x="$x$x"; done'), (e: unknown) => {
      assert.ok(e instanceof SandboxOutOfMemoryError, String(e));
      assert.equal(e.result.exitCode, 137);
      assert.equal(e.memoryMb, 64);
      return true;
    });
    assert.deepEqual(await small.exec('echo after'), { exitCode: 0, stdout: 'after\n', stderr: '' });
    // A SIGKILL of another cause is no OOM: it resolves with 137.
    assert.equal((await small.exec('kill -KILL $$')).exitCode, 137);
  });

  test("the host's root in a VM: read-only, a /tmp of its own, no network but loopback, one identity; its timeoutMs ends it", async () => {
    // The lifetime leaves the checks below ample time under TCG; what runs after it is killed.
    const host = await Sandbox.create({ hostRoot: true, isolation: 'vm', root, timeoutMs: 15_000 });
    const r = await host.exec('cat /etc/hostname >/dev/null && echo read; touch /etc/stockade-sdk-probe 2>/dev/null || echo ro; echo w > /tmp/f && cat /tmp/f; id -u; ls /sys/class/net');
    assert.equal(r.stdout, 'read\nro\nw\n65534\nlo\n', r.stderr);
    await assert.rejects(host.exec('id', { user: 'root' }), (e: unknown) => e instanceof SandboxOptionsError && e.option === 'user' && /hostRoot/.test(e.message));
    assert.equal(existsSync('/etc/stockade-sdk-probe'), false);
    await assert.rejects(host.exec(['sleep', '1000']), (e: unknown) => e instanceof SandboxTimeoutError && /the sandbox ran past its timeoutMs \(15000 ms\)/.test(e.message));
    await host.kill();
    assert.equal(existsSync(join(root, host.id)), false);
    await assert.rejects(host.exec('true'), SandboxTimeoutError);
  });

  test('a program killed outright: its VM, keeper and virtiofsd die with it; the next create removes the rest', async () => {
    const script = `const { Sandbox } = require(${JSON.stringify(join(__dirname, '../../src/sdk'))});
      Sandbox.create({ image: ${JSON.stringify(image)}, isolation: 'vm', root: ${JSON.stringify(root)} })
        .then((sb) => { process.stdout.write(sb.id); process.kill(process.pid, 'SIGKILL'); });`;
    const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 180_000 });
    assert.equal(child.signal, 'SIGKILL', child.stderr);
    const id = child.stdout;
    assert.match(id, /^sdk-\d+-[0-9a-f]+$/);
    const cgroups = cgroupsOf(root, id);
    assert.ok(cgroups.length > 0);
    const procs = (): string => cgroups.map((c) => existsSync(join(c, 'cgroup.procs')) ? readFileSync(join(c, 'cgroup.procs'), 'utf8').trim() : '').join(' ').trim();
    assert.notEqual(procs(), '', 'the keeper, QEMU and virtiofsd run in the container\'s cgroups');
    // Nobody deletes it: the keeper sees its program's end and tears the VM down.
    await waitFor(() => procs() === '', 20_000);
    await (await Sandbox.create({ hostRoot: true, isolation: 'namespaces', root })).kill();
    assert.equal(existsSync(join(root, id)), false, 'its state went at the next create');
    assert.equal(existsSync(join(root, '.images', 'run', id)), false, 'its overlay is gone');
    for (const c of cgroups) assert.equal(existsSync(c), false, c);
  });

  test('a timed-out command is killed and reported; the sandbox goes on; kill() leaves nothing', async () => {
    await assert.rejects(sb.exec('echo begun; exec sleep 1000', { timeoutMs: 1500 }), (e: unknown) => e instanceof SandboxTimeoutError && e.stdout === 'begun\n');
    assert.equal((await sb.exec('echo alive')).stdout, 'alive\n');
    const cgroups = cgroupsOf(root, sb.id);
    await sb.kill();
    // The template the VM was restored from stays for the next VMs, its holder with it (vm-templates.md).
    await nothingLeft(root, cgroups, 15_000, /stockade-template-hold /);
  });
});
