// A workload in a user namespace of its own never gets the sentry's host capabilities: its root read a host root's 0600 file bound into the container, which the kernel refuses it (found while closing issue 21's finding 1).
//
// The kernel honours a user namespace's capabilities only over inodes whose owners the namespace
// maps; the sentry's thread holds its capabilities in the host's namespace and cannot enter the
// workload's (Node is multi-threaded), so it acted as host root for the namespace's root. The
// sentry level now refuses such a config at create, with a one-line error and nothing left.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeBundle, type Bundle } from '../helpers/rootfs';
import { Runtime, probeSpec } from '../integration/harness';
import { skip } from './sentry-creds-fixture';

const HOST_ID = 100000;

describe('a workload in a user namespace under the sentry', { skip }, () => {
  let rt: Runtime;
  let dir: string;
  let bundle: Bundle;
  before(() => {
    rt = new Runtime();
    dir = mkdtempSync(join(tmpdir(), 'stockade-userns-secret-'));
    // Traversable, so that the namespace's root can bind the file; the file itself is root's, 0600.
    chmodSync(dir, 0o755);
    writeFileSync(join(dir, 'secret'), 'HOST-ROOT-SECRET\n', { mode: 0o600 });
    bundle = makeBundle({
      rootfs: { owner: { uid: HOST_ID, gid: HOST_ID } },
      spec: ({ rootfs }) => {
        writeFileSync(join(rootfs, 'secret'), '');
        return probeSpec(['/bin/sh', '-c', 'cat /secret; echo "cat: $?"'], (s) => {
          s.linux?.namespaces?.push({ type: 'user' });
          if (s.linux !== undefined) {
            s.linux.uidMappings = [{ containerID: 0, hostID: HOST_ID, size: 65536 }];
            s.linux.gidMappings = [{ containerID: 0, hostID: HOST_ID, size: 65536 }];
          }
          s.mounts?.push({ destination: '/secret', type: 'bind', source: join(dir, 'secret'), options: ['bind', 'ro'] });
        });
      },
    });
  });
  after(() => {
    rt.cleanup();
    bundle.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  test('its root does not read a host root\'s 0600 file bound in: the kernel refuses it, and the sentry refuses the config', () => {
    const n = rt.run(['--isolation', 'namespaces', 'run', '--bundle', bundle.dir, 'userns-namespaces']);
    assert.equal(n.status, 0, n.stderr);
    assert.match(n.stdout, /cat: 1/, `the kernel refuses the namespace's root: ${n.stdout}${n.stderr}`);
    const s = rt.run(['--isolation', 'sentry', 'run', '--bundle', bundle.dir, 'userns-sentry']);
    assert.ok(!s.stdout.includes('HOST-ROOT-SECRET'), `the sentry read the host's file for the namespace's root: ${s.stdout}`);
    assert.notEqual(s.status, 0, s.stdout);
    assert.match(s.stderr, /^stockade: config\.json: linux\.namespaces: the sentry level does not run a container in a user namespace/m, s.stderr);
    assert.deepEqual(rt.containerDirs(), [], 'nothing of the refused container is left');
  });
});
