// 50 sandboxes created, used and disposed at once at namespaces, from one image: each gets its
// own answer, and nothing of any is left (state dirs, cgroups, mounts, overlays, processes, fds).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { Sandbox } from '../../src/sdk';
import { listOpenFds } from '../helpers/cleanup';
import { integrationSkip } from './harness';
import { cgroupsOf, leftBehind, nothingLeft, sdkDir, sdkImage } from './sdk-helpers';

const N = 50;

/** This process's pipes, sockets and other kernel objects (a leaked one would be a sandbox's). */
function kernelFds(): string[] {
  return listOpenFds().map((f) => f.target).filter((t) => /^(?:pipe|socket|anon_inode):/.test(t)).sort();
}

describe(`${N} sandboxes at once`, { skip: integrationSkip() }, () => {
  let dir: string;
  let root: string;
  let image: string;
  before(async () => {
    ({ dir, root } = sdkDir());
    image = await sdkImage(dir);
    // The image is pulled once, before the rush: the 50 then share its snapshots.
    await (await Sandbox.create({ image, root })).kill();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test(`${N} created, each running its own command, disposed in parallel: nothing left`, async () => {
    const fdsBefore = kernelFds();
    const cgroups: string[] = [];
    const ids = new Set<string>();
    const answers = await Promise.all(Array.from({ length: N }, async (_, i) => {
      await using sb = await Sandbox.create({ image, root, memoryMb: 64, pids: 64 });
      ids.add(sb.id);
      cgroups.push(...cgroupsOf(root, sb.id));
      await sb.files.write('/n', String(i));
      return (await sb.exec('echo "$(cat /n) $(hostname)"')).stdout;
    }));
    assert.equal(ids.size, N);
    assert.deepEqual(answers, Array.from({ length: N }, (_, i) => `${i} sandbox\n`));
    assert.ok(cgroups.length >= N);
    await nothingLeft(root, cgroups);
    assert.deepEqual(leftBehind(root, cgroups), []);
    // Node may keep its own handles; none of the sandboxes' pipes or sockets may stay.
    const fdsAfter = kernelFds();
    assert.ok(fdsAfter.length <= fdsBefore.length, `fds before: ${fdsBefore.join(' ')}; after: ${fdsAfter.join(' ')}`);
  });
});
