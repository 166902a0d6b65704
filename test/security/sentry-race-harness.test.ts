// Issue 21, item 5: a race harness over every call the sentry lets the kernel finish and every open of a caller's fd, with a second thread rewriting paths, descriptors and directories.
//
// Each case runs for a bounded time (RACE_MS) in a `stockade do --isolation sentry` container and
// counts what every attempt came to (test/fixtures/sentry-race.c). The sentry's rule, whatever the
// second thread does: the kernel never finishes a call the sentry refused (a program it would not
// run, a magic link, the real /proc or /sys), a caller never gets more of a file than its own
// rights give, and no caller's wait holds anyone else's call. The same cases under the namespaces
// level show the crossings are real ones (the kernel alone follows what the sentry refuses).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime } from '../integration/harness';
import { buildRace, endOwnSentries, race, raceSkip, report, show, type Counts } from './sentry-race-fixture';

const RACE_MS = process.env['STOCKADE_RACE_MS'] ?? '2500';
const LINKS = ['/proc/self/fd/%d', '/dev/fd/%d', '/proc/thread-self/fd/%d', '/proc/%p/fd/%d'];

const crossed = (c: Record<string, number>): string[] => Object.keys(c).filter((k) => k.includes('CROSSED'));
const sum = (c: Record<string, number>, keys: readonly string[]): number => keys.reduce((n, k) => n + (c[k] ?? 0), 0);

describe('the race harness (stockade do --isolation sentry)', { skip: raceSkip() }, () => {
  let rt: Runtime;
  before(() => {
    buildRace();
    rt = new Runtime();
  });
  after(() => {
    endOwnSentries(rt);
    rt.cleanup();
  });

  /** Runs a case at both levels: the sentry never crosses; the kernel alone does (so the case can tell). */
  function both(args: readonly string[], what: string): { s: Counts; n: Counts; outcomes: string } {
    const s = report<Counts>(race(rt, 'sentry', args), `${what} (sentry)`);
    const n = report<Counts>(race(rt, 'namespaces', args), `${what} (namespaces)`);
    const outcomes = `sentry ${show(s.counts)}, namespaces ${show(n.counts)}`;
    assert.deepEqual(crossed(s.counts), [], `${what}: the sentry's rule was crossed: ${outcomes}`);
    return { s, n, outcomes };
  }

  test('execve of a path flipped between a program and ones the sentry refuses (not executable, magic links to another): only the program runs', () => {
    const { s, n, outcomes } = both(['race-exec', RACE_MS], 'race-exec');
    assert.ok((s.counts['ok'] ?? 0) > 0 && sum(s.counts, ['EACCES', 'ELOOP', 'ENOENT']) > 0, `both paths were met: ${outcomes}`);
    assert.ok(crossed(n.counts).length > 0, `the kernel alone runs through a magic link: ${outcomes}`);
  });

  test('execve of /proc/self/exe (the sentry writes its exec link over the path) while a thread rewrites the path to ones the sentry refuses: only the program itself runs', () => {
    const { s, n, outcomes } = both(['race-reexec', RACE_MS], 'race-reexec');
    assert.ok((s.counts['reexec'] ?? 0) > 0, `the re-exec ran: ${outcomes}`);
    assert.ok(crossed(n.counts).length > 0, `the kernel alone runs through a magic link: ${outcomes}`);
  });

  test('chdir to a path flipped between a directory and /proc, /sys and magic links: the cwd reached is never the real /proc or /sys, nor a directory through a magic link', () => {
    const { s, n, outcomes } = both(['race-chdir', RACE_MS], 'race-chdir');
    assert.ok((s.counts['good'] ?? 0) > 0 && sum(s.counts, ['ELOOP', 'ENOENT']) > 0, `both paths were met: ${outcomes}`);
    assert.ok(crossed(n.counts).length > 0, outcomes);
  });

  for (const mode of ['opath', 'fifo', 'dev'] as const) {
    test(`the opens the kernel finishes (${mode}), the path flipped to magic links, files of /proc the sentry makes and of /sys it hides: never reached`, () => {
      const { s, n, outcomes } = both(['race-kernel-open', mode, RACE_MS], `race-kernel-open ${mode}`);
      assert.ok((s.counts['good'] ?? 0) > 0 && sum(s.counts, ['ELOOP', 'ENOENT']) > 0, `both paths were met: ${outcomes}`);
      assert.ok(crossed(n.counts).length > 0, outcomes);
    });
  }

  test('a directory swapped with a symlink through /proc/self/root (RENAME_EXCHANGE) while a file below it is opened and O_PATH-opened: never the file through the link', () => {
    const { s, n, outcomes } = both(['race-dir', RACE_MS], 'race-dir');
    assert.ok((s.counts['read:good'] ?? 0) > 0 && (s.counts['read:ELOOP'] ?? 0) + (s.counts['opath:ELOOP'] ?? 0) + (s.counts['opath:ENOENT'] ?? 0) > 0, `both were met: ${outcomes}`);
    assert.ok(crossed(n.counts).length > 0, outcomes);
  });

  test('descriptors rewritten under the fd links (dup2/close of an O_PATH fd), every flavour of open: never a file the caller may not open, never a write to a read-only one', () => {
    const cases: [string, string][] = [
      ['secret', 'rdwr|creat'], ['secret', 'rdonly'], ['secret', 'rdwr|creat|excl'], ['secret', 'tmpfile|rdwr'], ['secret', 'path'],
      ['readonly', 'wronly|creat|trunc'], ['readonly', 'rdwr|append'], ['fifo', 'rdonly|nonblock|creat'],
    ];
    for (const [obj, flags] of cases) {
      // The whole RACE_MS each: the first crossing ends a run early.
      const ms = RACE_MS;
      const s = report<Counts & { ro_content: string }>(race(rt, 'sentry', ['fd-race', obj, flags, ms, ...LINKS]), `fd-race ${obj} ${flags}`);
      const bad = Object.keys(s.counts).filter((k) => k.includes('SECRET') || k.startsWith('w:') || k.startsWith('opath'));
      assert.deepEqual(bad, [], `${obj} ${flags}: ${show(s.counts)}`);
      if (obj === 'readonly') assert.equal(s.ro_content, 'RO', `${obj} ${flags}: ${show(s)}`);
      assert.ok((s.counts['ENOENT'] ?? 0) > 0, `${obj} ${flags}: the fd was closed at times, so the race ran: ${show(s.counts)}`);
    }
  });

  test('a file whose lease is being broken: the writer\'s open waits on a thread of its own; another process\'s calls are served meanwhile', () => {
    interface Lease { stats: number; max_gap_ms: number; open: string; open_ms: number }
    const s = report<Lease>(race(rt, 'sentry', ['lease-stall', '1000']), 'lease-stall');
    assert.equal(s.open, 'opened', show(s));
    assert.ok(s.open_ms >= 900, `the open waited for the lease, as the kernel's does: ${show(s)}`);
    assert.ok(s.stats > 500 && s.max_gap_ms < 500, `no call of the other process waited behind it: ${show(s)}`);
  });
});
