// stockade do --timeout (issue 19, item 4 in part): the init in front of the command ends it when
// its time runs out, as timeout(1) does (SIGTERM, status 124), and everything left 5 s later.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime, integrationSkip } from './harness';
import { runProcesses } from '../helpers/run-scope';
import { vmSkip, VM_CALL } from './vm-helpers';

const skip = integrationSkip();

describe('stockade do --timeout', { skip }, () => {
  let rt: Runtime;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  for (const level of ['namespaces', 'sentry'] as const) {
    test(`${level}: a command that runs out of time ends with 124; one that finishes in time keeps its status`, () => {
      const start = Date.now();
      // 3 s for the shell to reach its trap, under the sentry on a loaded host (see below).
      const r = rt.run(['do', '--isolation', level, '--timeout', '3s', '--', 'sh', '-c', 'trap "echo got TERM; exit 3" TERM; sleep 30 & wait']);
      const took = Date.now() - start;
      assert.equal(r.status, 124, r.stderr);
      assert.match(r.stdout, /got TERM/, 'SIGTERM first, as timeout(1)');
      assert.ok(took < 8000, `took ${took} ms`);
      const fast = rt.run(['do', '--isolation', level, '--timeout', '20', '--', 'sh', '-c', 'exit 7']);
      assert.equal(fast.status, 7);
      assert.deepEqual(rt.containerDirs(), []);
    });

    test(`${level}: a command that ignores SIGTERM, and what it started, are killed after the grace`, () => {
      const start = Date.now();
      // Durations of this run's own: another run on the host sleeps too.
      const nap = `61.${process.pid}`;
      // 2 s: on a loaded host a shell under the sentry took more than 500 ms to reach its trap,
      // and SIGTERM ended it at once (seen at a load of 20 on 2 cores, main's build alike).
      const r = rt.run(['do', '--isolation', level, '--timeout', '2s', '--', 'sh', '-c', `trap "" TERM; echo trapped; sleep ${nap}7 & sleep ${nap}8; wait`]);
      const took = Date.now() - start;
      assert.equal(r.status, 124, r.stderr);
      assert.equal(r.stdout, 'trapped\n', 'the shell set its trap before the timeout');
      assert.ok(took >= 7000 && took < 15_000, `took ${took} ms`);
      assert.deepEqual(runProcesses(`sleep ${nap}`).filter((p) => p.cmdline.startsWith('sleep')), []);
      assert.deepEqual(rt.containerDirs(), []);
    });
  }

  // In the guest, stockade-init's init keeps the deadline as at the other levels, from the
  // command's start (after the boot, which the host's clock cannot tell apart from the run).
  test('vm: SIGTERM at the deadline, then everything killed after the grace; the status is 124', { skip: vmSkip() }, () => {
    const start = Date.now();
    const r = rt.run(['do', '--isolation', 'vm', '--timeout', '2s', '--', 'sh', '-c',
      'trap "echo got TERM" TERM; echo trapped; sleep 30 & wait; echo after; sleep 30 & wait; echo survived'], VM_CALL);
    const took = Date.now() - start;
    assert.equal(r.status, 124, r.stderr);
    assert.equal(r.stdout, 'trapped\ngot TERM\nafter\n', 'SIGTERM first, as timeout(1); SIGKILL after the grace');
    // 2 s and the 5 s grace after the boot, not the 60 s of sleeps.
    assert.ok(took >= 7000 && took < 60_000, `took ${took} ms`);
    assert.deepEqual(rt.containerDirs(), []);
  });

  test('a bad duration is a one-line error', () => {
    for (const d of ['0', '-1', 'soon', '1d', '']) {
      const r = rt.run(['do', '--timeout', d, '--', 'true']);
      assert.notEqual(r.status, 0, d);
      assert.match(r.stderr, /--timeout/);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1);
    }
    assert.deepEqual(rt.containerDirs(), []);
  });
});
