// The test helpers: a bundle's rootfs really runs busybox and the probe, and the leftover checks see leftovers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync, readlinkSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { listMountsUnder, listOpenFds, processesWithCmdline } from '../../helpers/cleanup';
import { makeBundle, rootfsUnavailable, TEST_USER } from '../../helpers/rootfs';

const isRoot = process.getuid?.() === 0;
const chroot = ['/usr/sbin/chroot', '/sbin/chroot', '/usr/bin/chroot'].find((p) => existsSync(p));

test('makeBundle: config.json from the spec, a rootfs with busybox, applets, probe and users', { skip: rootfsUnavailable() }, (t) => {
  const bundle = makeBundle({ spec: ({ rootfs }) => ({ ociVersion: '1.2.0', root: { path: 'rootfs' }, annotations: { rootfs } }) });
  t.after(() => bundle.remove());
  assert.deepEqual(JSON.parse(readFileSync(bundle.configPath, 'utf8')), {
    ociVersion: '1.2.0', root: { path: 'rootfs' }, annotations: { rootfs: bundle.rootfs },
  });
  assert.equal(bundle.rootfs, join(bundle.dir, 'rootfs'));
  assert.equal(statSync(bundle.dir).mode & 0o777, 0o755);
  for (const applet of ['sh', 'ls', 'cat', 'echo', 'sleep', 'true', 'false', 'id', 'mount']) {
    assert.equal(readlinkSync(join(bundle.rootfs, 'bin', applet)), 'busybox', applet);
  }
  assert.equal(statSync(join(bundle.rootfs, 'bin', 'probe')).mode & 0o111, 0o111);
  assert.equal(statSync(join(bundle.rootfs, 'tmp')).mode & 0o7777, 0o1777);
  assert.equal(realpathSync(join(bundle.rootfs, 'usr', 'bin')), join(bundle.rootfs, 'bin'));
  assert.match(readFileSync(join(bundle.rootfs, 'etc', 'passwd'), 'utf8'), /^test:x:1000:1000:/m);
  assert.match(readFileSync(join(bundle.rootfs, 'etc', 'group'), 'utf8'), /^nogroup:x:65534:/m);

  bundle.writeSpec({ ociVersion: '1.0.0' });
  assert.deepEqual(JSON.parse(readFileSync(bundle.configPath, 'utf8')), { ociVersion: '1.0.0' });
});

test('the rootfs runs on its own: busybox sh and the probe under chroot', {
  skip: rootfsUnavailable() ?? (!isRoot ? 'needs root for chroot' : chroot === undefined ? 'no chroot(8)' : false),
}, (t) => {
  const bundle = makeBundle({ spec: {} });
  t.after(() => bundle.remove());
  const inRoot = (args: string[], userspec?: string): string =>
    execFileSync(chroot ?? 'chroot', [...(userspec === undefined ? [] : [`--userspec=${userspec}`]), bundle.rootfs, ...args], {
      encoding: 'utf8',
      env: { PATH: '/bin' },
    });
  assert.equal(inRoot(['/bin/sh', '-c', 'echo hello | cat']), 'hello\n');
  assert.equal(inRoot(['/bin/id', '-un'], `${TEST_USER.uid}:${TEST_USER.gid}`), 'test\n');
  const report = JSON.parse(inRoot(['/bin/probe', 'report'])) as { cwd: string; mounts: unknown };
  assert.equal(report.cwd, '/');
  assert.equal(report.mounts, null, 'no /proc in a bare chroot: fields from /proc read null');
});

test('remove refuses while a mount is left inside; listMountsUnder sees it', {
  skip: rootfsUnavailable() ?? (!isRoot ? 'needs root to mount' : false),
}, (t) => {
  const bundle = makeBundle({ spec: {} });
  const target = join(bundle.rootfs, 'mnt');
  execFileSync('mount', ['-t', 'tmpfs', 'stockade-test', target]);
  let mounted = true;
  t.after(() => {
    if (mounted) execFileSync('umount', [target]);
    bundle.remove();
  });
  assert.deepEqual(listMountsUnder(bundle.dir), [{ mountpoint: realpathSync(target), fstype: 'tmpfs', source: 'stockade-test' }]);
  assert.deepEqual(listMountsUnder(join(bundle.rootfs, 'bin')), []);
  assert.throws(() => bundle.remove(), /still has mounts/);
  assert.ok(existsSync(join(bundle.rootfs, 'bin', 'busybox')), 'nothing was deleted');
  execFileSync('umount', [target]);
  mounted = false;
  assert.deepEqual(listMountsUnder(bundle.dir), []);
});

test('processesWithCmdline finds a live process by its arguments, and not once it is gone', async () => {
  const marker = `stockade-marker-${process.pid}`;
  // One process whose own argv holds the marker: a shell would leave its sleep behind when killed.
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)', marker], { stdio: 'ignore' });
  try {
    await waitFor(() => processesWithCmdline(marker).length > 0);
    const [found] = processesWithCmdline(marker);
    assert.equal(found?.pid, child.pid);
    assert.equal(found?.ppid, process.pid);
    assert.match(found?.state ?? '', /^[RS]$/);
  } finally {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
  assert.deepEqual(processesWithCmdline(marker), []);
});

test('listOpenFds lists an fd while it is open', () => {
  const fd = openSync('/proc/self/status', 'r');
  try {
    assert.ok(listOpenFds().some((f) => f.fd === fd && f.target.endsWith('/status')));
  } finally {
    closeSync(fd);
  }
  assert.ok(!listOpenFds().some((f) => f.fd === fd && f.target.endsWith('/status')));
});

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
