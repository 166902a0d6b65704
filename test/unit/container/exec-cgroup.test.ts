// exec --cgroup: runc's [CONTROLLER[,CONTROLLER...]:]PATH values and the directories they make.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSubCgroups, subCgroupDirs } from '../../../src/container/exec-cgroup';

const V1: Record<string, readonly string[]> = {
  '/cg/memory/c1': ['memory'],
  '/cg/cpu,cpuacct/c1': ['cpu', 'cpuacct'],
  '/cg/pids/c1': ['pids'],
};
const hybrid = (dir: string): readonly string[] | undefined => V1[dir];
const DIRS = [...Object.keys(V1), '/cg/unified/c1'];

test('one path for every hierarchy, or one per named controller (comma-separated), cleaned and relative', () => {
  assert.deepEqual([...parseSubCgroups(['sub'])], [['', 'sub']]);
  assert.deepEqual([...parseSubCgroups(['memory,pids:a/../b/', 'cpu:/x'])], [['memory', 'b'], ['pids', 'b'], ['cpu', 'x']]);
  assert.deepEqual(subCgroupDirs(DIRS, parseSubCgroups(['sub']), hybrid), DIRS.map((d) => `${d}/sub`));
  assert.deepEqual(subCgroupDirs(DIRS, parseSubCgroups(['memory:m', 'cpuacct:c']), hybrid),
    ['/cg/memory/c1/m', '/cg/cpu,cpuacct/c1/c', '/cg/pids/c1', '/cg/unified/c1']);
  assert.deepEqual(subCgroupDirs(DIRS, parseSubCgroups([]), hybrid), DIRS);
  assert.deepEqual(subCgroupDirs(DIRS, parseSubCgroups(['memory:']), hybrid), DIRS, 'an empty path is the container\'s own cgroup');
});

test('refused in one line: a path that leaves the container\'s cgroup, a mix of forms, a controller twice, an unknown one, controllers on cgroup v2', () => {
  assert.throws(() => parseSubCgroups(['../..']), { message: 'exec: --cgroup: ../..: ../.. is not a sub cgroup path' });
  assert.throws(() => parseSubCgroups(['memory:a/../../x']), /is not a sub cgroup path/);
  assert.throws(() => parseSubCgroups(['memory:a', 'sub']), /conflicts with other --cgroup values/);
  assert.throws(() => parseSubCgroups(['sub', 'memory:a']), /name the controllers of every value or of none/);
  assert.throws(() => parseSubCgroups(['memory:a', 'memory,pids:b']), /conflicts/);
  assert.throws(() => subCgroupDirs(DIRS, parseSubCgroups(['bogus:a']), hybrid), /unknown controller "bogus"/);
  assert.throws(() => subCgroupDirs(['/cg/c1'], parseSubCgroups(['memory:a']), () => undefined), /controllers cannot be named on cgroup v2/);
  for (const bad of [['../..'], ['memory:a', 'sub']]) {
    try {
      parseSubCgroups(bad);
    } catch (e) {
      assert.equal((e as { code?: string }).code, 'USAGE');
      assert.ok(!(e as Error).message.includes('\n'));
    }
  }
});
