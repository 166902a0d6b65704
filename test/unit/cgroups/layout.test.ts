// Layout detection from mountinfo and /proc/self/cgroup, and where cgroupsPath puts a container.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { hierarchyOf, layoutFrom, mountVisible } from '../../../src/cgroups/layout';
import { cgroupDir, cleanPath, containerDirs } from '../../../src/cgroups/paths';

// This machine's layout: v1 controllers one per mount, name=systemd, and an empty cgroup2 at unified.
const HYBRID_MOUNTINFO = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const HYBRID_CGROUP = `9:name=systemd:/
4:memory:/process_api/abc
6:freezer:/
2:cpuacct:/
1:cpu:/
0::/
`;

/** Every mount of a test's mountinfo is reachable at its mountpoint (none exists on this machine). */
const SEEN = (): boolean => true;

test('a mount another covers is not used: a tmpfs over /sys/fs/cgroup with v1 controllers mounted again on it is a v1 host', () => {
  // What a private mount namespace holds after `mount -t tmpfs none /sys/fs/cgroup` and a new memory mount.
  const covered = `${HYBRID_MOUNTINFO}90 31 0:90 / /sys/fs/cgroup rw - tmpfs tmpfs rw
91 90 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
`;
  const seen: string[] = [];
  const l = layoutFrom(covered, HYBRID_CGROUP, () => ['hugetlb'], (mountpoint, id) => {
    seen.push(`${mountpoint} ${id}`);
    return id === '90' || id === '91';
  });
  assert.equal(l.mode, 'v1');
  assert.equal(l.unified, undefined, 'the covered cgroup2 mount is left out (every create failed with ENOENT in it)');
  assert.deepEqual(l.v1.map((h) => h.mountpoint), ['/sys/fs/cgroup/memory']);
  assert.ok(seen.includes('/sys/fs/cgroup/unified 41'));
});

test('mountVisible compares the mount an fd on the path is on with the one mountinfo names', () => {
  // The last mount at / is the one on top.
  const own = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4] === '/').at(-1);
  const id = own?.split(' ')[0];
  assert.ok(id !== undefined);
  assert.equal(mountVisible('/', id), true);
  assert.equal(mountVisible('/', '999999999'), false);
  assert.equal(mountVisible('/no/such/mountpoint', id), false);
});

test('a hybrid host: v1 controllers, the unified mount, and the nested memory cgroup of this process', () => {
  const l = layoutFrom(HYBRID_MOUNTINFO, HYBRID_CGROUP, () => ['hugetlb'], SEEN);
  assert.equal(l.mode, 'hybrid');
  assert.deepEqual(l.v1.map((h) => [h.mountpoint, h.controllers.join(','), h.ownPath]), [
    ['/sys/fs/cgroup/cpu', 'cpu', '/'],
    ['/sys/fs/cgroup/cpuacct', 'cpuacct', '/'],
    ['/sys/fs/cgroup/memory', 'memory', '/process_api/abc'],
    ['/sys/fs/cgroup/freezer', 'freezer', '/'],
    ['/sys/fs/cgroup/systemd', 'name=systemd', '/'],
  ]);
  assert.deepEqual(l.unified, { version: 2, mountpoint: '/sys/fs/cgroup/unified', controllers: ['hugetlb'], ownPath: '/' });
  // Relative (and empty) cgroupsPath nests under this process's own cgroup, per hierarchy, as runc.
  const d = containerDirs(l, undefined, 'c1');
  assert.deepEqual([...d.v1.values()], ['/sys/fs/cgroup/cpu/c1', '/sys/fs/cgroup/cpuacct/c1', '/sys/fs/cgroup/memory/process_api/abc/c1', '/sys/fs/cgroup/freezer/c1', '/sys/fs/cgroup/systemd/c1']);
  assert.equal(d.unified, '/sys/fs/cgroup/unified/c1');
  const abs = containerDirs(l, '/docker/c1', 'c1');
  assert.equal([...abs.v1.values()][2], '/sys/fs/cgroup/memory/docker/c1');
  assert.equal(hierarchyOf(l, '/sys/fs/cgroup/memory/docker/c1')?.controllers[0], 'memory');
  assert.equal(hierarchyOf(l, '/sys/fs/cgroup/unified/x')?.version, 2);
});

test('co-mounted v1 controllers are one hierarchy; a v1-only host has no unified side', () => {
  const l = layoutFrom('1 0 0:1 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpuacct,cpu\n', '3:cpu,cpuacct:/user\n', undefined, SEEN);
  assert.equal(l.mode, 'v1');
  assert.deepEqual(l.v1[0]?.controllers, ['cpuacct', 'cpu']);
  assert.equal(l.v1[0]?.ownPath, '/user');
  assert.equal(l.unified, undefined);
});

test('a pure v2 host: relative paths go below the parent of this process cgroup, as runc fs2', () => {
  const l = layoutFrom('30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n', '0::/user.slice/session-1.scope\n', () => ['cpu', 'memory'], SEEN);
  assert.equal(l.mode, 'v2');
  const u = l.unified;
  assert.ok(u !== undefined);
  assert.equal(cgroupDir(u, '', 'c1', true), '/sys/fs/cgroup/user.slice/c1');
  assert.equal(cgroupDir(u, 'pods/c1', 'c1', true), '/sys/fs/cgroup/user.slice/pods/c1');
  assert.equal(cgroupDir(u, '/machine.slice/c1', 'c1', true), '/sys/fs/cgroup/machine.slice/c1');
});

test('a cgroup mount whose root is not / (a cgroup namespace) makes the own path relative to it', () => {
  const l = layoutFrom('30 23 0:26 /ns /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n', '0::/ns/inner\n', () => [], SEEN);
  assert.equal(l.unified?.ownPath, '/inner');
});

test('cleanPath keeps a relative path relative and never lets .. climb out', () => {
  assert.equal(cleanPath(''), '');
  assert.equal(cleanPath('/a/../b/'), '/b');
  assert.equal(cleanPath('../../etc'), 'etc');
  assert.equal(cleanPath('a/./b'), 'a/b');
  const l = layoutFrom('1 0 0:1 / /cg/memory rw - cgroup cgroup rw,memory\n', '4:memory:/own\n', undefined, SEEN);
  const h = l.v1[0];
  assert.ok(h !== undefined);
  assert.equal(cgroupDir(h, '../../../x', 'c1', false), '/cg/memory/own/x');
});
