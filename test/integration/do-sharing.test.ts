// stockade do --tmpfs, --env-file and --user (issue 19, item 3 with --bind): what a user shares
// with the sandbox on purpose, and as whom the command runs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime, integrationSkip } from './harness';

const skip = integrationSkip();

describe('stockade do --tmpfs, --env-file, --user', { skip }, () => {
  let rt: Runtime;
  let dir: string;
  before(() => {
    rt = new Runtime();
    dir = mkdtempSync(join(rt.root, '..', 'share-'));
    writeFileSync(join(dir, 'env'), '# comment\nFROM_FILE=one two\nOVERRIDDEN=file\n\nCALLER_VAR\n');
  });
  after(() => rt.cleanup());

  for (const level of ['namespaces', 'sentry'] as const) {
    test(`${level}: --tmpfs gives a writable in-memory directory, sized within the memory limit`, () => {
      const r = rt.run(['do', '--isolation', level, '--memory', '256m', '--tmpfs', '/mnt', '--tmpfs', '/tmp/work', '--', 'sh', '-c',
        'echo a > /mnt/f && echo b > /tmp/work/g && cat /mnt/f /tmp/work/g; df -k /tmp /var/tmp /run /dev /dev/shm /mnt /tmp/work | tail -n +2']);
      assert.equal(r.status, 0, r.stderr);
      const [a, b, ...df] = r.stdout.trim().split('\n');
      assert.deepEqual([a, b], ['a', 'b']);
      const total = df.reduce((t, l) => t + Number(l.split(/\s+/)[1]), 0) * 1024;
      assert.ok(total <= 256 * 1024 ** 2, `${total} bytes of tmpfs under a 256m limit`);
    });

    test(`${level}: --env-file, then --env over it; a bare name takes the caller's value`, () => {
      process.env['CALLER_VAR'] = 'from the caller';
      const child = rt.run(['do', '--isolation', level, '--env-file', join(dir, 'env'), '-e', 'OVERRIDDEN=flag', '--', 'sh', '-c', 'echo "$FROM_FILE|$OVERRIDDEN|$CALLER_VAR"']);
      delete process.env['CALLER_VAR'];
      assert.equal(child.status, 0, child.stderr);
      assert.equal(child.stdout, 'one two|flag|from the caller\n');
    });

    test(`${level}: --user runs the command as that uid and gid, without capabilities, unable to read root's files`, () => {
      const r = rt.run(['do', '--isolation', level, '--user', '65534:65533', '--', 'sh', '-c',
        'id -u; id -g; grep CapEff /proc/self/status; cat /etc/shadow >/dev/null 2>&1 && echo READ-SHADOW; echo end']);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, '65534\n65533\nCapEff:\t0000000000000000\nend\n');
    });
  }

  test('bad --tmpfs, --env-file and --user are one-line errors', () => {
    for (const args of [['--tmpfs', 'relative'], ['--tmpfs', '/proc/x'], ['--tmpfs', '/'], ['--tmpfs', '/no-such-dir-xyz'],
      ['--env-file', join(dir, 'missing')], ['--user', 'nobody'], ['--user', '1:x'], ['--user', '-1']]) {
      const r = rt.run(['do', ...args, '--', 'true']);
      assert.notEqual(r.status, 0, args.join(' '));
      assert.match(r.stderr, new RegExp(args[0] ?? ''), r.stderr);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
    }
    writeFileSync(join(dir, 'bad-env'), 'GOOD=1\nnot a name=2\n');
    const bad = rt.run(['do', '--env-file', join(dir, 'bad-env'), '--', 'true']);
    assert.match(bad.stderr, /line 2/);
    assert.deepEqual(rt.containerDirs(), []);
  });
});
