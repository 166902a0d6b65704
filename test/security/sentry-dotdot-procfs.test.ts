// `..` from a directory of the /proc or /sys the sentry owns never reaches the real procfs or sysfs: the red team's fchdir into /proc, a FIFO at /version and open("../version") (issue 21, finding 4).
//
// The sentry took "../version" from a cwd in /proc to mean /version, found the FIFO planted there
// and let the kernel finish the open (it does so for FIFOs); the kernel, walking from the real
// procfs the cwd was in, opened procfs's own /version: the host's kernel version, which the sentry
// claims to generate. The same way the real /sys/block, /sys/devices/virtual and /sys/module.
// Each case runs the same program at the `namespaces` level, where ../NAME from /proc or /sys is
// the FIFO at /NAME, and under the sentry, which must never give a real file or directory of the
// tree: the FIFO, or a refusal.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../integration/harness';
import { attackSpec, buildAttacker, runAt, skip, type Level } from './sentry-creds-fixture';

interface Opened { how: string; ok: boolean; error?: string; type?: string; content?: string; names?: string[] }

describe('.. from a directory of a tree the sentry owns (finding 4)', { skip }, () => {
  let rt: Runtime;
  before(() => {
    buildAttacker();
    rt = new Runtime();
  });
  after(() => rt.cleanup());

  for (const [dir, name] of [['/proc', 'version'], ['/proc', 'meminfo'], ['/sys', 'block'], ['/sys', 'devices/virtual'], ['/sys', 'module']] as const) {
    test(`a FIFO at /${name}, then ../${name} from ${dir} (openat from a dirfd, O_PATH, fchdir then open): never the real ${dir}/${name}`, () => {
      const run = (level: Level): Opened[] => runAt<{ results: Opened[] }>(rt, level, attackSpec(['dotdot', dir, name, 'fifo']), `dotdot ${dir} ${name}`).results;
      const n = run('namespaces');
      const s = run('sentry');
      const table = `namespaces ${JSON.stringify(n)}\nsentry ${JSON.stringify(s)}`;
      // The kernel alone: ../NAME from DIR is the FIFO at /NAME, the cwd's path DIR.
      for (const o of n.slice(0, 3)) assert.equal(o.type, 'fifo', table);
      assert.equal(n[4]?.content, dir, table);
      for (const o of s.slice(0, 3)) {
        assert.ok(!o.ok || o.type === 'fifo', `the sentry let ${o.how} reach the real ${dir}/${name}: ${table}`);
      }
      // The cwd is still DIR as the workload sees it: listed through ".", named by getcwd.
      const dot = s[3];
      assert.equal(dot?.type, 'dir', table);
      assert.ok((dot?.names ?? []).includes(dir === '/proc' ? 'self' : 'devices'), table);
      assert.equal(s[4]?.content, dir, table);
    });
  }
});
