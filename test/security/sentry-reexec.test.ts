// Re-executing through /proc/self/exe under the sentry (exec links, src/sentry/exec-links.ts): busybox applets run as under namespaces, and the links the kernel walks are out of the workload's reach.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Runtime, has, integrationSkip, probeSpec } from '../integration/harness';

type Level = 'namespaces' | 'sentry';

function skip(): string | undefined {
  return integrationSkip() ?? (has('busybox') ? undefined : 'busybox is not installed');
}

const sha256 = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

describe('re-executing through /proc/self/exe (stockade do --isolation sentry)', { skip: skip() }, () => {
  let rt: Runtime;
  before(() => {
    rt = new Runtime();
  });
  after(() => rt.cleanup());

  const sh = (level: Level, script: string): { status: number | null; stdout: string; stderr: string } =>
    rt.run(['do', '--isolation', level, '--', 'busybox', 'sh', '-c', script], { timeout: 60_000 });

  test('busybox applets through /proc/self/exe, /proc/PID/exe and /proc/thread-self/exe: the same output as under namespaces', () => {
    // `exec -a NAME` gives the applet its name; the last one keeps argv[0] "/proc/self/exe",
    // which busybox takes as the applet "exe" at both levels (the path rewritten keeps that name).
    const script = '(exec -a echo /proc/self/exe one); (exec -a echo /proc/$$/exe two); (exec -a echo /proc/thread-self/exe three); ' +
      '(exec -a echo /proc/self/exe four); /proc/self/exe echo five; echo "status $?"';
    const n = sh('namespaces', script);
    const s = sh('sentry', script);
    assert.equal(n.stdout, 'one\ntwo\nthree\nfour\nstatus 127\n', n.stderr);
    assert.deepEqual({ out: s.stdout, err: s.stderr.trim() }, { out: n.stdout, err: n.stderr.trim() });
  });

  test('the links the kernel walks are out of the workload\'s reach: not listed, read, written, made or mounted, and the program is unchanged', () => {
    const busybox = '/usr/bin/busybox';
    const before = sha256(busybox);
    // A re-exec first, so that a link exists ("/proc/a/exe", the first name).
    const script = '(exec -a true /proc/self/exe); ls /proc/a 2>/dev/null && echo listed; cat /proc/a/exe >/dev/null 2>&1 && echo read; ' +
      'echo x 2>/dev/null > /proc/a/exe && echo written; echo x 2>/dev/null >> /proc/self/exe && echo appended; ' +
      'mkdir /proc/zz 2>/dev/null && echo made; ln -s / /proc/a/x 2>/dev/null && echo linked; ' +
      'echo "mounts $(grep -c " /proc " /proc/self/mounts) tmpfs $(grep " /proc " /proc/self/mountinfo | grep -c tmpfs)"; ' +
      'cd /proc && ls | grep -c "^[0-9]"';
    const s = sh('sentry', script);
    const lines = s.stdout.trim().split('\n');
    assert.equal(lines[0], 'mounts 1 tmpfs 0', `${s.stdout}${s.stderr}`);
    // In /proc, the listing is the sentry's procfs (processes), not the links.
    assert.ok(Number(lines[1]) >= 1, `${s.stdout}${s.stderr}`);
    assert.equal(lines.length, 2, `the workload reached a link: ${s.stdout}${s.stderr}`);
    assert.equal(sha256(busybox), before);
  });
  test('a process exec\'d into a container re-execs too, after the container\'s own did (the links are the container\'s, not each process\'s)', () => {
    const b = rt.bundle(probeSpec(['/bin/busybox', 'sh', '-c', '(exec -a echo /proc/self/exe first) > /tmp/first; exec sleep 100'], (spec) => {
      spec.mounts = [...(spec.mounts ?? []), { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev'] }];
    }));
    const id = `reexec-${process.pid}`;
    assert.equal(rt.run(['--isolation', 'sentry', 'run', '-d', '-b', b.dir, id], { timeout: 60_000 }).status, 0);
    try {
      let first = '';
      for (let i = 0; i < 20 && first === ''; i++) first = rt.run(['exec', id, '/bin/busybox', 'sh', '-c', 'sleep 0.2; cat /tmp/first']).stdout;
      assert.equal(first, 'first\n', 'the container\'s own re-exec ran');
      // A program other than the first one's target makes a link of its own; the same one reuses it.
      const r = rt.run(['exec', id, '/bin/busybox', 'sh', '-c', '(exec -a echo /proc/self/exe second); cp /bin/busybox /tmp/busybox; /tmp/busybox sh -c "(exec -a echo /proc/self/exe third)"'], { timeout: 60_000 });
      assert.deepEqual({ status: r.status, out: r.stdout, err: r.stderr }, { status: 0, out: 'second\nthird\n', err: '' });
    } finally {
      rt.run(['delete', '--force', id]);
    }
  });
});
