// A sentry container's CPU limit holds for the workload and its sentry together: the sentry is in the container's CPU and memory cgroups, and leaves nothing there at delete.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { hierarchyOf, hostLayout } from '../../src/cgroups';
import { Runtime, integrationSkip, json, leftoversGone, probeSpec, runProcesses, waitFor } from './harness';

/** Why the CPU limit cannot be tried here: no v1 cpu hierarchy and no cpu controller on the unified one. */
function cpuSkip(): string | undefined {
  const skip = integrationSkip();
  if (skip !== undefined) return skip;
  const layout = hostLayout();
  if (layout.v1.some((h) => h.controllers.includes('cpu')) || layout.unified?.controllers.includes('cpu') === true) return undefined;
  return 'no cpu cgroup controller here';
}

/** The CPU time a process has used, all its threads, in seconds (utime + stime of /proc/PID/stat). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of stat(5), counted from the state (field 3) here; clock ticks of 1/100 s.
  return (Number(f[11]) + Number(f[12])) / 100;
}

describe('the sentry in its container\'s cgroup', { skip: cpuSkip() }, () => {
  let rt: Runtime;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  test('at --cpus 0.1 (a quota of 10 ms per 100 ms) a workload making mediated calls and its sentry together use no more than the limit; delete leaves no process or cgroup', async () => {
    const id = 'sentry-cpu-limit';
    // Every `test -e` is a stat the sentry serves: without the sentry in the container's cgroup,
    // its CPU for the calls (several times the workload's own) came on top of the quota.
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'while :; do test -e /etc/hostname; done'], (s) => {
      s.linux = { ...s.linux, resources: { cpu: { quota: 10_000, period: 100_000 } } };
    }));
    assert.equal(rt.run(['--isolation', 'sentry', 'create', '--bundle', b.dir, id]).status, 0);
    const sentry = runProcesses('stockade-sentryd').find((p) => p.cmdline.includes(`"id":"${id}"`));
    assert.ok(sentry !== undefined, 'no sentry process');
    const record = json<{ cgroupPaths: string[] }>(readFileSync(join(rt.root, id, 'state.json'), 'utf8'));
    const layout = hostLayout();
    const charged = record.cgroupPaths.filter((p) => hierarchyOf(layout, p)?.controllers.some((c) => ['cpu', 'cpuacct', 'memory'].includes(c)) === true);
    assert.ok(charged.length > 0, `no cpu or memory cgroup among ${record.cgroupPaths.join(', ')}`);
    for (const dir of charged) {
      const procs = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n');
      assert.ok(procs.includes(String(sentry.pid)), `the sentry (${sentry.pid}) is not in ${dir}`);
    }
    assert.equal(rt.run(['start', id]).status, 0);
    const { pid } = json<{ pid: number }>(rt.run(['state', id]).stdout);
    // Past the start-up (Node's, which ran before the move), then a window of 3 s.
    await new Promise((r) => setTimeout(r, 1000));
    const used = (): number => cpuSeconds(sentry.pid) + cpuSeconds(pid);
    const t0 = process.hrtime.bigint();
    const u0 = used();
    await new Promise((r) => setTimeout(r, 3000));
    const u1 = used();
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const sentryShare = cpuSeconds(sentry.pid);
    assert.ok(sentryShare > 0.02, `the sentry served nothing (${sentryShare} s of CPU): the loop made no mediated calls`);
    // 0.1 CPU over the window, and a period and two ticks of rounding at each end.
    const allowed = 0.1 * wall + 0.1 + 0.04;
    assert.ok(u1 - u0 <= allowed, `workload and sentry used ${(u1 - u0).toFixed(2)} s of CPU in ${wall.toFixed(2)} s at a limit of 0.1 CPU (allowed ${allowed.toFixed(2)})`);

    assert.equal(rt.run(['delete', '--force', id]).status, 0);
    await leftoversGone(rt, b);
    for (const dir of record.cgroupPaths) assert.ok(!existsSync(dir), `cgroup ${dir} is left after delete`);
    await waitFor(() => !existsSync(`/proc/${sentry.pid}`), 5000);
  });
});
