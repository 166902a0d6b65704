// A second thread swaps a dirfd (dup2) and the cwd (fchdir) between /tmp and a directory of the sentry's /proc or /sys while the first opens a FIFO's name from them: the kernel, finishing the open after the sentry's check, never walks the real procfs or sysfs (issue 21, finding 4, raced).
//
// The sentry sees the name in /tmp, a FIFO, and lets the kernel open it (CONTINUE); the kernel
// resolves the name again from whatever the descriptor and the cwd are by then. Had the workload
// a descriptor of the real procfs (as it had before the sentry handed out shadows), that walk
// opened procfs's own /version, the host's kernel version, and the real /sys/block. What the
// workload holds of /proc and /sys is now a shadow with empty entries: a raced walk finds an
// empty file, an empty directory or nothing. The same program at the `namespaces` level shows what
// the real files hold, and none of it may show under the sentry.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../integration/harness';
import { attackSpec, buildAttacker, runAt, skip } from './sentry-creds-fixture';

interface Race { iters: number; counts: Record<string, number> }

describe('dirfd and cwd swapped to /proc or /sys under a CONTINUEd open (finding 4, raced)', { skip }, () => {
  let rt: Runtime;
  before(() => {
    buildAttacker();
    rt = new Runtime();
  });
  after(() => rt.cleanup());

  for (const [dir, name] of [['/proc', 'version'], ['/sys', 'block'], ['/sys', 'module']] as const) {
    test(`a FIFO /tmp/${name} opened from a dirfd and a cwd swapped with ${dir}: never the real ${dir}/${name}`, () => {
      const args = ['race-start', dir, name, '20000'];
      const n = runAt<Race>(rt, 'namespaces', attackSpec(args), `race-start ${dir}`).counts;
      const s = runAt<Race>(rt, 'sentry', attackSpec(args), `race-start ${dir}`).counts;
      const outcomes = `namespaces ${JSON.stringify(n)}\nsentry ${JSON.stringify(s)}`;
      // The kernel alone opens the real one whenever the swap lands first: what a leak looks like.
      const real = Object.keys(n).filter((k) => k.startsWith('file:') || (k.startsWith('dir:') && k !== 'dir:'));
      assert.ok(real.length > 0, `the race ran: ${outcomes}`);
      assert.deepEqual(Object.keys(s).filter((k) => real.includes(k)), [], `the kernel walked the real ${dir}: ${outcomes}`);
      // What the sentry may give: the FIFO, its own generated file (served when its check saw the
      // shadow), a shadow's empty entries, refusals; never a directory's names.
      const allowed = (k: string): boolean => k === 'fifo' || k === 'empty' || k === 'dir:' || /^E[A-Z]+$/.test(k) || (k.startsWith('file:') && dir === '/proc');
      assert.deepEqual(Object.keys(s).filter((k) => !allowed(k)), [], outcomes);
      assert.ok((s['fifo'] ?? 0) > 0, `the FIFO was opened, so the race ran: ${outcomes}`);
    });
  }
});
