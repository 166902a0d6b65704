// What a root process in a default container can reach of the host kernel: masked, read-only, no devices, no host pids.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Runtime, integrationSkip, json, probeSpec } from '../integration/harness';

const skip = integrationSkip();

describe('kernel surface of a default container', { skip }, () => {
  let rt: Runtime;
  let n = 0;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  const probe = (args: string[], caps?: 'all'): Record<string, unknown> => {
    const b = rt.bundle(probeSpec(['/bin/probe', ...args], (s) => {
      if (caps === 'all') delete s.process!.capabilities;
    }));
    const r = rt.run(['run', '--bundle', b.dir, `ks${n++}`]);
    assert.equal(r.status, 0, r.stderr);
    return json<Record<string, unknown>>(r.stdout);
  };

  test('read-only /proc/sys and /sys refuse writes even with every capability', () => {
    assert.equal(probe(['try-write', '/proc/sys/kernel/hostname', 'x'], 'all')['error'], 'EROFS');
    assert.equal(probe(['try-write', '/proc/sys/vm/drop_caches', '1'], 'all')['error'], 'EROFS');
    assert.equal(probe(['try-write', '/sys/kernel/profiling', '1'], 'all')['error'], 'EROFS');
  });

  test('masked paths show nothing of the host: they open and read empty (unmasked, this host shows keys and firmware tables)', () => {
    // A failed read would also show no content: the probe must have read them, and found nothing.
    assert.deepEqual(probe(['cat', '/proc/keys'], 'all'), { ok: true, content: '' });
    assert.deepEqual(probe(['ls', '/sys/firmware'], 'all'), { ok: true, names: [] });
  });

  test('no device nodes can be made without CAP_MKNOD, and /dev holds only the defaults', () => {
    assert.equal(probe(['try-mknod', '/dev/sda'])['error'], 'EPERM');
    const names = (probe(['ls', '/dev'])['names'] as string[]).sort();
    // No /dev/console: the probe runs without a terminal, and a console is made only for one (as runc).
    assert.deepEqual(names, ['fd', 'full', 'mqueue', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero']);
  });

  test('host processes are invisible', () => {
    const names = probe(['ls', '/proc'])['names'] as string[];
    const pids = names.filter((x) => /^\d+$/.test(x));
    assert.deepEqual(pids, ['1']);
  });
});
