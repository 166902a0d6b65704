// Issue 21, finding 3: an O_PATH fd of a FIFO through the /proc/self/fd race made the sentry's only serving thread block in the FIFO's open.
//
// Every other process of the container then stopped at its next mediated call, and an attached
// run did not end after pid 1 exited, until the sentry was killed by hand. Now an open that may
// wait (a FIFO, a device) is made by a thread of its own, as the caller, and answers the caller
// itself: the serving thread goes on serving, the wait is bounded and reported in the --log file,
// and the workload's end still ends the container.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime, waitFor } from '../integration/harness';
import { processesMarked } from '../helpers/run-scope';
import { buildRace, endOwnSentries, race, raceSkip, report, show } from './sentry-race-fixture';

describe('a FIFO opened through a caller\'s fd (stockade do --isolation sentry)', { skip: raceSkip() }, () => {
  let rt: Runtime;
  before(() => {
    buildRace();
    rt = new Runtime();
  });
  after(() => {
    endOwnSentries(rt);
    rt.cleanup();
  });

  interface Stall { stats: number; max_gap_ms: number; tries: number; opened: string; opened_after_ms: number }

  test('the FIFO race: the open waits for a writer on a thread of its own while another process\'s stat loop is served; the container ends', () => {
    const started = Date.now();
    const s = report<Stall>(race(rt, 'sentry', ['fifo-stall', '1000'], { timeout: 30_000 }), 'fifo-stall');
    const seen = show(s);
    assert.equal(s.opened, 'fifo', `the open of the FIFO completed once its writer came: ${seen}`);
    assert.ok(s.opened_after_ms >= 900, `it waited for the writer (1 s in): ${seen}`);
    // The bystander stats "/" in a loop for 2 s: served all along, never held for the FIFO.
    assert.ok(s.stats > 500, `the other process's calls were served meanwhile: ${seen}`);
    assert.ok(s.max_gap_ms < 500, `no call of the other process waited behind the FIFO: ${seen}`);
    assert.ok(Date.now() - started < 20_000);
  });

  test('pid 1 exits while its child waits in such an open of a FIFO no one writes: the attached do ends, nothing left behind', async () => {
    const started = Date.now();
    const r = report<{ child: number }>(race(rt, 'sentry', ['fifo-hold'], { timeout: 30_000 }), 'fifo-hold');
    assert.ok(r.child > 0, show(r));
    assert.ok(Date.now() - started < 15_000, `do took ${Date.now() - started} ms`);
    // This test's own: its sentry names its state root on its command line (other tests' run beside it).
    const mine = (): string[] => [...rt.containerDirs(), ...processesMarked(rt.root).filter((p) => p.cmdline.includes('stockade-sentryd')).map((p) => `${p.pid}`)];
    await waitFor(() => mine().length === 0, 5000).catch(() => assert.deepEqual(mine(), [], 'left behind'));
  });

  test('a wait past STOCKADE_SENTRY_BLOCK_LIMIT_MS is answered EINTR, as a signal would, and written in the --log file', () => {
    const r = report<{ key: string; waited_ms: number }>(
      race(rt, 'sentry', ['fifo-wait'], { env: { STOCKADE_SENTRY_BLOCK_LIMIT_MS: '1000' }, timeout: 30_000 }), 'fifo-wait');
    assert.equal(r.key, 'EINTR', show(r));
    assert.ok(r.waited_ms >= 950 && r.waited_ms < 5000, show(r));
    const stuck = rt.logLines().filter((l) => l.level === 'warning' && /openat of pid \d+ waited \d+ ms for a FIFO or device and was answered EINTR/.test(l.msg));
    assert.equal(stuck.length, 1, show(rt.logLines()));
  });

  test('a bad STOCKADE_SENTRY_BLOCK_LIMIT_MS is refused with a one-line error naming it', () => {
    const r = race(rt, 'sentry', ['fifo-wait'], { env: { STOCKADE_SENTRY_BLOCK_LIMIT_MS: 'soon' } });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /STOCKADE_SENTRY_BLOCK_LIMIT_MS must be a number of milliseconds/);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });

  test('sync, which waits for the writeback of the whole root, is served on a thread of its own and answered 0 (the sentry answered EBADF before: syncfs of its O_PATH fd)', () => {
    const saved = process.env['STOCKADE_SENTRY_TRACE'];
    process.env['STOCKADE_SENTRY_TRACE'] = '1';
    try {
      // The thread answers sync, and its report reaches the trace on a later turn of the sentry's
      // loop: calls after it give the loop those turns before the workload ends (with sync last,
      // the record went missing once on a loaded machine).
      const r = rt.run(['do', '--isolation', 'sentry', '--', '/bin/sh', '-c', 'sync; for i in 1 2 3 4 5 6 7 8 9 10; do cat /etc/hostname > /dev/null; done'], { cwd: '/' });
      assert.equal(r.status, 0, r.stderr.slice(-2000));
      const syncs = r.stderr.split('\n').filter((l) => l.startsWith('{') && l.includes('"syscall":"sync"')).map((l) => JSON.parse(l) as { result: unknown });
      assert.deepEqual(syncs.map((x) => x.result), [0], r.stderr.slice(-2000));
    } finally {
      if (saved === undefined) delete process.env['STOCKADE_SENTRY_TRACE'];
      else process.env['STOCKADE_SENTRY_TRACE'] = saved;
    }
  });

  test('300 threads wait in such opens at once: 256 wait on threads of the sentry\'s, the rest are answered EAGAIN and logged; the process\'s other calls are served; one writer releases every waiter', () => {
    const r = report<{ stats: number; writer: boolean; ok: number; EAGAIN: number; other: number }>(race(rt, 'sentry', ['fifo-flood', '300']), 'fifo-flood');
    assert.deepEqual({ writer: r.writer, ok: r.ok, EAGAIN: r.EAGAIN, other: r.other }, { writer: true, ok: 256, EAGAIN: 44, other: 0 }, show(r));
    assert.ok(r.stats > 100, `stat was served while they waited: ${show(r)}`);
    assert.ok(rt.logLines().filter((l) => /found no thread to wait on/.test(l.msg)).length >= 44, 'each refusal is in the --log file');
  });
});
