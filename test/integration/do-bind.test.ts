// stockade do --bind SRC[:DST][:ro|:rw] (issue 19, item 3): sharing a host path on purpose,
// read-only all the way down unless :rw, every path resolved on the host before it is used.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime, integrationSkip } from './harness';

const skip = integrationSkip();

describe('stockade do --bind', { skip }, () => {
  let rt: Runtime;
  let dir: string;
  before(() => {
    rt = new Runtime();
    dir = mkdtempSync('/tmp/stockade-do-bind-');
    // A project directory as git makes it: the command (nobody, started by root) reads a
    // read-only bind with its own rights, which mkdtemp's 0700 would refuse it.
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'src.txt'), 'host file\n');
    mkdirSync(join(dir, 'sub'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', join(dir, 'sub')]);
    symlinkSync(dir, `${dir}-link`);
  });
  after(() => {
    try { execFileSync('umount', ['-l', join(dir, 'sub')]); } catch { /* gone */ }
    rmSync(dir, { recursive: true, force: true });
    rmSync(`${dir}-link`, { force: true });
    rt.cleanup();
  });

  for (const level of ['namespaces', 'sentry'] as const) {
    test(`${level}: read-only by default, every mount below it too; the working directory it shares is allowed`, () => {
      const r = rt.run(['do', '--isolation', level, '--bind', '.', '--', 'sh', '-c',
        'pwd; cat src.txt; touch new 2>/dev/null && echo WROTE; touch sub/new 2>/dev/null && echo WROTE-SUB; echo end'], { cwd: dir });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `${dir}\nhost file\nend\n`);
      assert.deepEqual(readdirSync(dir).sort(), ['src.txt', 'sub']);
      assert.deepEqual(readdirSync(join(dir, 'sub')), []);
    });

    test(`${level}: :rw writes that directory and nothing else`, () => {
      const r = rt.run(['do', '--isolation', level, '--bind', '.:rw', '--', 'sh', '-c',
        'echo built > out.txt && cat out.txt; touch /etc/stockade-bind-x 2>/dev/null && echo WROTE-ETC; echo end'], { cwd: dir });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'built\nend\n');
      assert.equal(readFileSync(join(dir, 'out.txt'), 'utf8'), 'built\n');
      assert.equal(existsSync('/etc/stockade-bind-x'), false);
      rmSync(join(dir, 'out.txt'), { force: true });
    });

    test(`${level}: a symlinked source is resolved on the host; DST puts it elsewhere, existing or in memory`, () => {
      const r = rt.run(['do', '--isolation', level, '--bind', `${dir}-link:/tmp/shared`, '--bind', `${dir}-link`, '--', 'sh', '-c',
        `cat /tmp/shared/src.txt; cat ${dir}/src.txt; ls ${dir}-link >/dev/null 2>&1 || echo no-link-in-tmp`]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'host file\nhost file\nno-link-in-tmp\n');
      // On the read-only host root a destination must exist already; with --rw it is made in memory.
      const missing = rt.run(['do', '--isolation', level, '--bind', `${dir}:/stockade-no-such-dir`, '--', 'true']);
      assert.notEqual(missing.status, 0);
      assert.match(missing.stderr, /does not exist in the sandbox's read-only root/);
      const rw = rt.run(['do', '--isolation', level, '--rw', '--bind', `${dir}:/stockade-no-such-dir`, '--', 'cat', '/stockade-no-such-dir/src.txt']);
      assert.equal(rw.status, 0, rw.stderr);
      assert.equal(rw.stdout, 'host file\n');
      assert.equal(existsSync('/stockade-no-such-dir'), false);
    });
  }

  test('refused in one line, nothing left: kernel interfaces, the state root, /, bad syntax, a missing source', () => {
    for (const b of ['/proc', '/sys/kernel', '/dev', `${dir}:/proc/x`, `${dir}:/dev/x`, `${dir}:/`, `${dir}:/../../..`, rt.root, join(rt.root, '..'), `${dir}:a:b:ro`, ':ro', `${dir}/missing`]) {
      const r = rt.run(['do', '--bind', b, '--', 'true']);
      assert.notEqual(r.status, 0, b);
      assert.match(r.stderr, /--bind/, b);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    }
    assert.deepEqual(rt.containerDirs(), []);
  });
});
