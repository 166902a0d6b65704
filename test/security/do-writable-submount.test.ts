// Issue 22, finding 2: started with no flag at all from a working directory under /run (or /tmp,
// /var/tmp) holding a writable submount, the command wrote into that host submount: the cwd was
// bound recursively with only its top mount read-only. The same bind showed other containers'
// state directories under /run.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime, integrationSkip } from '../integration/harness';

const skip = integrationSkip();

describe('do: no host submount below the working directory is writable (issue 22, finding 2)', { skip }, () => {
  let rt: Runtime;
  const base = `/run/stockade-do-sub-${process.pid}`;
  const sub = join(base, 'sub');
  before(() => {
    rt = new Runtime();
    mkdirSync(sub, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', sub]);
    writeFileSync(join(sub, 'secret'), 'host-only\n');
  });
  after(() => {
    rt.cleanup();
    try { execFileSync('umount', ['-l', sub]); } catch { /* not mounted */ }
    rmSync(base, { recursive: true, force: true });
  });

  for (const level of ['namespaces', 'sentry'] as const) {
    for (const how of ['the caller\'s working directory', '--cwd'] as const) {
      test(`${level}: from ${how} under /run, the host's tmpfs below it is neither writable nor visible`, () => {
        const script = 'touch sub/escaped 2>/dev/null && echo WROTE; cat sub/secret 2>/dev/null; touch /run/stockade-do-sub-' + process.pid + '/sub/escaped2 2>/dev/null && echo WROTE2; true';
        const args = ['do', '--isolation', level, ...(how === '--cwd' ? ['--cwd', base] : []), '--', 'sh', '-c', script];
        const r = rt.run(args, how === '--cwd' ? {} : { cwd: base });
        assert.doesNotMatch(r.stdout, /WROTE/);
        assert.doesNotMatch(r.stdout, /host-only/, 'the host directory was shown to the container');
        assert.deepEqual(readdirSync(sub).sort(), ['secret'], 'nothing was written into the host submount');
        assert.equal(existsSync(join(sub, 'escaped')), false);
        if (r.status !== 0) assert.match(r.stderr, /working directory|cwd/);
        assert.deepEqual(rt.containerDirs(), []);
      });
    }

    test(`${level}: started from /run itself, the host's /run (other containers' state) is not shown`, () => {
      const r = rt.run(['do', '--isolation', level, '--', 'sh', '-c', 'ls -A /run .'], { cwd: '/run' });
      assert.doesNotMatch(r.stdout, new RegExp(`stockade-do-sub-${process.pid}`));
      assert.deepEqual(rt.containerDirs(), []);
    });
  }
});
