// The SDK at the vm level, lean: one sandbox (a boot is seconds under TCG) through exec, stdin,
// streaming, spawn, files and a timed-out command, then kill() leaving nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Sandbox, SandboxTimeoutError } from '../../src/sdk';
import { integrationSkip } from './harness';
import { guestAssetsOr } from './vm-helpers';
import { cgroupsOf, nothingLeft, sdkDir, sdkImage } from './sdk-helpers';

const { skip } = guestAssetsOr(integrationSkip);

describe('sdk at vm', { skip }, () => {
  let dir: string;
  let root: string;
  let sb: Sandbox;
  before(async () => {
    ({ dir, root } = sdkDir());
    sb = await Sandbox.create({ image: await sdkImage(dir), isolation: 'vm', root, env: { FROM_CREATE: 'yes' }, memoryMb: 256 });
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

  test('a timed-out command is killed and reported; the sandbox goes on; kill() leaves nothing', async () => {
    await assert.rejects(sb.exec('echo begun; exec sleep 1000', { timeoutMs: 1500 }), (e: unknown) => e instanceof SandboxTimeoutError && e.stdout === 'begun\n');
    assert.equal((await sb.exec('echo alive')).stdout, 'alive\n');
    const cgroups = cgroupsOf(root, sb.id);
    await sb.kill();
    // The template the VM was restored from stays for the next VMs, its holder with it (vm-templates.md).
    await nothingLeft(root, cgroups, 15_000, /stockade-template-hold /);
  });
});
