// Issue 22, findings 1 and 3: `stockade do` bound the working directory when its text began with
// /tmp, /var/tmp or /run, without resolving it; `--cwd /tmp/..` (or a symlink to /) then put the
// host's root over the container's, its procfs writable (core_pattern: root on the host) and the
// host's process list in view. The working directory must never decide what is mounted.
//
// The probes never change the host: `: >> FILE` opens core_pattern for writing and writes nothing
// (in a subshell: a failed redirection of `:` ends the shell it runs in).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime, integrationSkip } from '../integration/harness';

const skip = integrationSkip();

// What the command reports, for every place the host's /proc and /sys could show up: under its
// working directory (where a bind of the host's root would land) and at the usual paths.
const PROBE = [
  'for p in . ./proc /proc; do',
  '  if (: >> $p/sys/kernel/core_pattern) 2>/dev/null; then echo "WRITABLE $p/sys/kernel/core_pattern"; fi',
  '  tr "\\0" " " < $p/1/cmdline 2>/dev/null | sed "s|^|PID1 $p |"; echo',
  'done',
  'for s in ./sys /sys; do ls $s/class/net 2>/dev/null | sed "s|^|NET $s |"; done',
  'for p in . ./proc /proc; do ls $p 2>/dev/null | grep -c "^[0-9]" | sed "s|^|PIDS |"; done',
  'echo PROBED',
].join('\n');

describe('do: the working directory decides no mount (issue 22, findings 1 and 3)', { skip }, () => {
  let rt: Runtime;
  let dir: string;
  const hostCorePattern = readFileSync('/proc/sys/kernel/core_pattern', 'utf8');
  const hostPid1 = readFileSync('/proc/1/cmdline', 'utf8').split('\0').join(' ').trim();
  before(() => {
    rt = new Runtime();
    dir = mkdtempSync('/tmp/stockade-do-cwd-');
    symlinkSync('/', join(dir, 'to-root'));
    symlinkSync('/proc', join(dir, 'to-proc'));
  });
  after(() => {
    rt.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  const check = (out: string): void => {
    assert.doesNotMatch(out, /^WRITABLE/m, 'the host\'s core_pattern was writable from the container');
    for (const line of out.split('\n').filter((l) => l.startsWith('PID1 '))) {
      assert.ok(!line.trim().endsWith(hostPid1), `the host's pid 1 is visible: ${line}`);
    }
    // Its own network namespace has lo alone: any other interface is the host's /sys.
    for (const line of out.split('\n').filter((l) => l.startsWith('NET '))) assert.match(line, / lo$/, `host sysfs visible: ${line}`);
    for (const [, n] of out.matchAll(/^PIDS (\d+)/gm)) assert.ok(Number(n) < 20, `${n} processes listed: the host's process list`);
    assert.equal(readFileSync('/proc/sys/kernel/core_pattern', 'utf8'), hostCorePattern);
  };

  for (const level of ['namespaces', 'sentry'] as const) {
    for (const [name, cwd] of [
      ['--cwd /tmp/..', () => '/tmp/..'],
      ['--cwd /run/../', () => '/run/../'],
      ['--cwd naming a symlink to /', () => join(dir, 'to-root')],
      ['--cwd /tmp/../proc', () => '/tmp/../proc'],
      ['--cwd naming a symlink to /proc under /tmp', () => join(dir, 'to-proc')],
    ] as const) {
      test(`${level}: ${name} shows nothing of the host's /proc or /sys, and core_pattern is not writable`, () => {
        const r = rt.run(['do', '--isolation', level, '--cwd', cwd(), '--', 'sh', '-c', PROBE]);
        // Refused, or run harmlessly: either way nothing of the host.
        check(r.stdout);
        if (!r.stdout.includes('PROBED')) assert.match(r.stderr, /cwd|working directory/);
        assert.deepEqual(rt.containerDirs(), []);
      });
    }

    test(`${level}: started from a symlink's target under /tmp (no --cwd), nothing of the host`, () => {
      const r = rt.run(['do', '--isolation', level, '--', 'sh', '-c', PROBE], { cwd: join(dir, 'to-root') });
      check(r.stdout);
      assert.deepEqual(rt.containerDirs(), []);
    });
  }
});
