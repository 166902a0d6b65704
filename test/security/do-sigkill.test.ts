// Issue 22, finding 4 (its end): killing the `do` process left the container running, orphaned,
// still listed as running. The `do` process owns the container's lifetime: SIGKILL of it ends the
// container and leaves nothing (state directory, cgroup, mount, process).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime, integrationSkip, waitFor } from '../integration/harness';
import { listMountsUnder } from '../helpers/cleanup';
import { runProcesses } from '../helpers/run-scope';

const skip = integrationSkip();

// This run's (another run on the host sleeps the same durations).
const sleeping = (arg: string): boolean => runProcesses(`sleep ${arg}`).some((p) => p.cmdline.startsWith('sleep '));

describe('do: SIGKILL of do ends its container and leaves nothing (issue 22, finding 4)', { skip }, () => {
  let rt: Runtime;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  for (const level of ['namespaces', 'sentry'] as const) {
    for (const when of ['while its command runs', 'in Node (STOCKADE_LIGHT=off)'] as const) {
      test(`${level}: ${when}`, async () => {
        const arg = `41.${level === 'sentry' ? 1 : 2}${when.startsWith('in Node') ? 1 : 2}`;
        const child = rt.spawn(['do', '--isolation', level, '--', 'sleep', arg], when.startsWith('in Node') ? { STOCKADE_LIGHT: 'off' } : undefined);
        const exited = new Promise((r) => child.once('exit', r));
        await waitFor(() => sleeping(arg), 15_000);
        const [id] = rt.containerDirs();
        assert.ok(id !== undefined);
        const cgroups = (JSON.parse(readFileSync(join(rt.root, id, 'state.json'), 'utf8')) as { cgroupPaths: string[] }).cgroupPaths;
        child.kill('SIGKILL');
        await exited;
        // The container goes with it, at once: its processes first.
        await waitFor(() => !sleeping(arg), 5000).catch(() => assert.fail(`sleep ${arg} still runs after do was killed`));
        await waitFor(() => runProcesses(id).length === 0, 5000)
          .catch(() => assert.fail(`left running: ${runProcesses(id).map((p) => p.cmdline).join('; ')}`));
        // Its state is cleaned up by the next stockade call at the latest.
        const next = rt.run(['list', '-q']);
        assert.equal(next.status, 0, next.stderr);
        assert.equal(next.stdout.trim(), '', 'the dead do\'s container is not listed');
        await waitFor(() => rt.containerDirs().length === 0, 5000).catch(() => assert.fail(`state left: ${rt.containerDirs().join(' ')}`));
        assert.deepEqual(cgroups.filter((p) => existsSync(p)), [], 'cgroups left');
        assert.deepEqual(listMountsUnder(rt.root), []);
      });
    }
  }
});
