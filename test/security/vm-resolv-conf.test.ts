// The vm keeper reads the container's resolv.conf on the host, as root, to learn which loopback
// nameservers to forward (Docker's 127.0.0.11, src/vm/dns-forward.ts). Without a bind over it, the
// file is the image's, and the image is the workload's: its /etc/resolv.conf as a symlink to a
// host path made the keeper read that host file, and as a FIFO held the keeper's boot forever.
// It is now resolved inside the root, and opened for reading only when it is a regular file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containerResolvConf } from '../../src/vm/dns-forward';
import type { Spec } from '../../src/oci/spec';

const SPEC: Spec = { ociVersion: '1.0.2', mounts: [] };

describe('vm: the image\'s /etc/resolv.conf is read inside the root, and only a regular file', () => {
  let dir = '';
  const rootfs = (name: string): string => {
    const r = join(dir, name);
    mkdirSync(join(r, 'etc'), { recursive: true });
    return r;
  };
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'stockade-redteam-resolv-'));
    writeFileSync(join(dir, 'host-file'), 'nameserver 127.0.0.77\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('a symlink to a host path names the root\'s own path, not the host file', () => {
    const r = rootfs('abs-link');
    symlinkSync(join(dir, 'host-file'), join(r, 'etc', 'resolv.conf'));
    assert.equal(containerResolvConf(SPEC, dir, r), undefined);
    // The same link where the root holds that path: the root's file is read.
    mkdirSync(join(r, dir), { recursive: true });
    writeFileSync(join(r, dir, 'host-file'), 'nameserver 127.0.0.11\n');
    assert.equal(containerResolvConf(SPEC, dir, r), 'nameserver 127.0.0.11\n');
    // Climbing with ".." stops at the root too.
    const up = rootfs('dotdot-link');
    symlinkSync(`../../../../../../../..${join(dir, 'host-file')}`, join(up, 'etc', 'resolv.conf'));
    assert.equal(containerResolvConf(SPEC, dir, up), undefined);
  });

  test('a FIFO is not opened for reading: the keeper goes on at once', () => {
    const r = rootfs('fifo');
    assert.equal(spawnSync('mkfifo', [join(r, 'etc', 'resolv.conf')]).status, 0);
    // In a child: the old code blocked in open(2), which no test timeout can interrupt.
    const code = `const { containerResolvConf } = require(${JSON.stringify(require.resolve('../../src/vm/dns-forward'))});
      console.log(JSON.stringify(containerResolvConf({ ociVersion: '1.0.2', mounts: [] }, '/', process.argv[1]) ?? null));`;
    const c = spawnSync(process.execPath, ['-e', code, r], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(c.signal, null, 'the read of the FIFO did not return within 10 s');
    assert.equal(c.stdout.trim(), 'null', c.stderr);
  });
});
