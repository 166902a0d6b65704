// Issue 21, finding 2: open("/proc/self/fd/N", O_RDWR|O_CREAT) raced against dup2(fd, N); close(N) made the sentry open the magic link as itself.
//
// The O_PATH descriptor of a file the caller may not read needs no right to that file. The first
// lookup of the link found nothing (fd N closed that instant), and the O_CREAT retry opened the
// path again as the sentry, with every capability and no type check: a read-write fd of the file.
// Now the sentry takes the caller's object with pidfd_getfd and opens it again as the caller, as
// the kernel does: the answers are the kernel's (ENOENT while N is closed, EACCES while it is not).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime, json, probeSpec } from '../integration/harness';
import { RACE, buildRace, endOwnSentries, race, raceSkip, report, show, type Counts } from './sentry-race-fixture';

const LINKS = ['/proc/self/fd/%d', '/dev/fd/%d', '/proc/thread-self/fd/%d', '/proc/%p/fd/%d'];
// Long enough that the race is won on the code this test was written against (it was, within a
// second or two, on a quiet machine); a crossing ends the run at once, so only a sentry that holds
// pays the whole of it.
const RACE_MS = process.env['STOCKADE_RACE_MS'] ?? '5000';

/** With kptr_restrict 0 every reader sees kernel addresses: there is nothing for the sentry to hide. */
function kptrSkip(): string | undefined {
  let v = '';
  try { v = readFileSync('/proc/sys/kernel/kptr_restrict', 'utf8').trim(); } catch { return undefined; }
  return v === '0' ? 'kernel.kptr_restrict is 0 on this host: kernel addresses are shown to every reader' : undefined;
}

/** Keys of outcomes that are a descriptor the caller got (not an errno name). */
const opened = (c: Record<string, number>): string[] => Object.keys(c).filter((k) => !/^E[A-Z0-9]+$/.test(k));

describe('a caller\'s fd reopened by its magic link (stockade do --isolation sentry)', { skip: raceSkip() }, () => {
  let rt: Runtime;
  before(() => {
    buildRace();
    rt = new Runtime();
  });
  after(() => {
    endOwnSentries(rt);
    rt.cleanup();
  });

  test('an O_PATH fd of a file the caller may not read (mode 0000), raced into fd 100: /proc/self/fd/100 and the other links, opened O_RDWR|O_CREAT, never give an fd of it', () => {
    const s = report<Counts>(race(rt, 'sentry', ['fd-race', 'secret', 'rdwr|creat', RACE_MS, ...LINKS]), 'fd-race secret (sentry)');
    const n = report<Counts>(race(rt, 'namespaces', ['fd-race', 'secret', 'rdwr|creat', RACE_MS, ...LINKS]), 'fd-race secret (namespaces)');
    const outcomes = `sentry ${show(s.counts)}, namespaces ${show(n.counts)}`;
    assert.deepEqual(opened(n.counts), [], `the kernel gives no fd of it: ${outcomes}`);
    assert.deepEqual(opened(s.counts), [], `the caller got an fd of a file it may not open: ${outcomes}`);
    // Both halves of the race were met: fd 100 closed (ENOENT) and open (EACCES, the caller's own check).
    assert.ok((s.counts['ENOENT'] ?? 0) > 0 && (s.counts['EACCES'] ?? 0) > 0, outcomes);
  });

  test('an fd of /proc/kallsyms, raced into fd 100 and reopened with O_CREAT: never the kernel\'s addresses the caller\'s own open hides', { skip: kptrSkip() }, () => {
    const n = report<Counts>(race(rt, 'namespaces', ['fd-race', 'kallsyms', 'rdonly|creat', '1000', '/proc/self/fd/%d']), 'fd-race kallsyms (namespaces)');
    assert.equal(n.counts['kallsyms:real'] ?? 0, 0, `the container's own reads hide kernel addresses (the control): ${show(n.counts)}`);
    const s = report<Counts>(race(rt, 'sentry', ['fd-race', 'kallsyms', 'rdonly|creat', RACE_MS, ...LINKS]), 'fd-race kallsyms (sentry)');
    const outcomes = `sentry ${show(s.counts)}, namespaces ${show(n.counts)}`;
    assert.equal(s.counts['kallsyms:real'], undefined, `real kernel addresses: ${outcomes}`);
    assert.ok((s.counts['kallsyms:zero'] ?? 0) > 0 && (s.counts['ENOENT'] ?? 0) > 0, `both halves of the race were met: ${outcomes}`);
  });

  test('an O_PATH fd of a read-only file (0444), raced into fd 100, opened for writing with O_CREAT|O_TRUNC, O_WRONLY|O_TRUNC and O_RDWR|O_APPEND: never writable, the file unchanged', () => {
    for (const flags of ['rdwr|creat|trunc', 'wronly|trunc', 'rdwr|append', 'wronly|creat|nonblock']) {
      const s = report<Counts & { ro_content: string }>(race(rt, 'sentry', ['fd-race', 'readonly', flags, String(Number(RACE_MS) / 2), ...LINKS]), `fd-race readonly ${flags}`);
      assert.deepEqual(opened(s.counts), [], `${flags}: ${show(s.counts)}`);
      assert.equal(s.ro_content, 'RO', `${flags}: the file was changed: ${show(s)}`);
      assert.ok((s.counts['EACCES'] ?? 0) > 0, `${flags}: the object was met: ${show(s.counts)}`);
    }
  });

  test('every open flavour on the raced fd of the 0000 file (O_EXCL, O_TMPFILE, O_PATH, O_NONBLOCK, O_DIRECTORY): never an fd of it', () => {
    for (const flags of ['rdonly', 'rdwr|creat|excl', 'tmpfile|rdwr', 'path', 'rdonly|creat|nonblock', 'rdonly|directory', 'wronly|creat|trunc']) {
      const s = report<Counts>(race(rt, 'sentry', ['fd-race', 'secret', flags, String(Number(RACE_MS) / 4), ...LINKS]), `fd-race secret ${flags}`);
      assert.deepEqual(opened(s.counts), [], `${flags}: ${show(s.counts)}`);
    }
  });

  interface Opened { results: { link: string; key: string }[] }

  test('without a race the links open what the kernel opens: the caller\'s files, pipes, directories and devices, with its checks', () => {
    const cases: [string, string][] = [
      ['readable', 'rdonly'], ['readable-fd', 'rdonly'], ['readable-fd', 'rdwr'], ['secret', 'rdonly'], ['readonly', 'rdwr'],
      ['readable', 'rdwr|creat|excl'], ['readable', 'rdonly|directory'], ['readable', 'rdonly|nofollow'], ['closed', 'rdonly'],
      ['closed', 'rdwr|creat'], ['pipe', 'rdonly'], ['tmpdir', 'rdonly'], ['tmpdir', 'tmpfile|rdwr'], ['tmpdir', 'wronly'],
      ['readable', 'tmpfile|rdwr'], ['null', 'rdwr'], ['fifo', 'rdonly|nonblock'], ['fifo', 'rdwr'],
    ];
    // From the main thread, and from another thread of the process (no pidfd of its own without PIDFD_THREAD).
    const table = (level: 'sentry' | 'namespaces'): string[] => cases.flatMap(([obj, flags]) => ['fd-open', 'fd-open-thread'].map((cmd) => {
      const r = report<Opened>(race(rt, level, [cmd, obj, flags, ...LINKS]), `${cmd} ${obj} ${flags} (${level})`);
      return `${cmd} ${obj} ${flags}: ${r.results.map((x) => x.key).join(' ')}`;
    }));
    assert.deepEqual(table('sentry'), table('namespaces'));
  });

  test('what programs do with the links works as under namespaces: cat /dev/stdin of a pipe, > /dev/stderr, > /proc/self/fd/3, bash\'s <(...)', () => {
    const script = 'echo piped | cat /dev/stdin; echo to-stderr > /dev/stderr; exec 3>/tmp/x; echo via-3 > /proc/self/fd/3; cat /tmp/x; if [ -x /bin/bash ]; then /bin/bash -c "cat <(echo substituted)"; else echo substituted; fi';
    const out = (level: 'sentry' | 'namespaces'): string => {
      const r = rt.run(['do', '--isolation', level, '--', '/bin/sh', '-c', `(${script}) 2>&1 | cat`], { cwd: '/' });
      assert.equal(r.status, 0, `${level}: ${r.stdout} ${r.stderr}`);
      return r.stdout;
    };
    const n = out('namespaces');
    assert.equal(n, 'piped\nto-stderr\nvia-3\nsubstituted\n');
    assert.equal(out('sentry'), n);
  });

  test('the finding as reported: a uid-1000 workload of a bundle (run) races its O_PATH fd of /etc/shadow (0600, root\'s) into fd 100: never the file\'s content', () => {
    const outcome = (level: 'sentry' | 'namespaces'): Record<string, number> => {
      const b = rt.bundle(({ rootfs }) => {
        copyFileSync(RACE, join(rootfs, 'bin', 'sentry-race'));
        chmodSync(join(rootfs, 'bin', 'sentry-race'), 0o755);
        writeFileSync(join(rootfs, 'etc', 'shadow'), 'root:SHADOW-HASH:19000::::::\n', { mode: 0o600 });
        return probeSpec(['/bin/sentry-race', 'fd-race', 'path:/etc/shadow', 'rdonly|creat', RACE_MS, ...LINKS], (spec) => {
          if (spec.process !== undefined) spec.process.user = { uid: 1000, gid: 1000 };
        });
      });
      const id = `shadow-${level}`;
      const r = rt.run(['--isolation', level, 'run', '--bundle', b.dir, id], { timeout: 60_000 });
      rt.run(['delete', '--force', id]);
      assert.equal(r.status, 0, `${level}: ${r.stdout} ${r.stderr}`);
      return json<Counts>(r.stdout.trim()).counts;
    };
    const n = outcome('namespaces');
    const s = outcome('sentry');
    const outcomes = `sentry ${show(s)}, namespaces ${show(n)}`;
    assert.deepEqual(opened(n), [], outcomes);
    assert.deepEqual(opened(s), [], `the uid-1000 caller got an fd of /etc/shadow: ${outcomes}`);
    assert.ok((s['ENOENT'] ?? 0) > 0 && (s['EACCES'] ?? 0) > 0, outcomes);
  });
});
