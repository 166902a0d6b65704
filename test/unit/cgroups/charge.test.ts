// Which of a container's cgroup directories its sentry joins (src/cgroups/charge.ts): those that charge CPU and memory, on each layout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chargedDirs } from '../../../src/cgroups/charge';
import { layoutFrom } from '../../../src/cgroups/layout';

const V1_MOUNTINFO = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
const V1_CGROUP = '9:name=systemd:/\n0::/\n';
const SEEN = (): boolean => true;

test('v1 and hybrid: cpu, cpuacct, cpuset and memory; not pids, freezer, devices, name=systemd, nor a unified tree without cpu or memory', () => {
  const layout = layoutFrom(V1_MOUNTINFO, V1_CGROUP, () => ['hugetlb'], SEEN);
  const dirs = ['cpu,cpuacct', 'cpuset', 'memory', 'pids', 'freezer', 'devices', 'systemd', 'unified'].map((h) => `/sys/fs/cgroup/${h}/c1`);
  assert.deepEqual(chargedDirs(dirs, layout), ['/sys/fs/cgroup/cpu,cpuacct/c1', '/sys/fs/cgroup/cpuset/c1', '/sys/fs/cgroup/memory/c1']);
});

test('v2: the container\'s one directory, where cpu or memory is offered; none where neither is', () => {
  const mountinfo = '41 23 0:38 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw\n';
  const full = layoutFrom(mountinfo, '0::/\n', () => ['cpuset', 'cpu', 'io', 'memory', 'pids'], SEEN);
  assert.deepEqual(chargedDirs(['/sys/fs/cgroup/c1'], full), ['/sys/fs/cgroup/c1']);
  const bare = layoutFrom(mountinfo, '0::/\n', () => ['pids'], SEEN);
  assert.deepEqual(chargedDirs(['/sys/fs/cgroup/c1'], bare), []);
  assert.deepEqual(chargedDirs(['/elsewhere/c1'], full), [], 'a directory in no hierarchy is not joined');
});
