// The kernel-surface battery of kernel-surface.test.ts at the vm level, through one VM: what a root process with every capability reaches is the guest's kernel, walled as at namespaces.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Runtime, json, probeSpec } from '../integration/harness';
import { templateRelease, vmSkip, VM_CALL } from '../integration/vm-helpers';

const skip = vmSkip();

describe('kernel surface of a vm container', { skip }, () => {
  let rt: Runtime;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  test('every probe of the namespaces battery holds in the guest, and the kernel it reaches is the guest\'s', () => {
    // One container, every capability (the battery's strongest case), one probe per line.
    const probes = [
      ['try-write', '/proc/sys/kernel/hostname', 'x'],
      ['try-write', '/proc/sys/vm/drop_caches', '1'],
      ['try-write', '/sys/kernel/profiling', '1'],
      ['cat', '/proc/keys'],
      ['ls', '/sys/firmware'],
      ['cat', '/proc/version'],
      ['ls', '/proc'],
    ];
    const script = probes.map((p) => `/bin/probe ${p.join(' ')}; echo`).join('\n');
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', script], (s) => { delete s.process!.capabilities; }));
    const r = rt.run(['--isolation', 'vm', 'run', '--bundle', b.dir, 'ks-vm'], VM_CALL);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n').filter((l) => l !== '');
    assert.equal(lines.length, probes.length, r.stdout);
    const [hostname, dropCaches, profiling, keys, firmware, version, proc] = lines.map((l) => json<Record<string, unknown>>(l));
    assert.equal(hostname?.['error'], 'EROFS');
    assert.equal(dropCaches?.['error'], 'EROFS');
    assert.equal(profiling?.['error'], 'EROFS');
    assert.deepEqual(keys, { ok: true, content: '' });
    assert.deepEqual(firmware, { ok: true, names: [] });
    // The kernel behind /proc is the guest's, not the host's.
    assert.equal(version?.['ok'], true);
    assert.notEqual(version?.['content'], readFileSync('/proc/version', 'utf8'));
    // The template's kernel (Debian's generic one): the guest a vm container starts from.
    assert.ok(String(version?.['content']).startsWith(`Linux version ${templateRelease()} `), String(version?.['content']));
    // No host process: the container's shell (1) and the probe listing.
    const pids = (proc?.['names'] as string[]).filter((x) => /^\d+$/.test(x));
    assert.equal(pids.length, 2, pids.join(' '));
    assert.ok(pids.includes('1'));
    assert.deepEqual(rt.containerDirs(), []);
  });
});
