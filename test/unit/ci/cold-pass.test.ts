// run-suite's second pass: the files that drive the CLI run again with the planner off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { COLD_TOO, coldPass } from '../../ci/run-suite';

const distTest = join(__dirname, '..', '..');
const src = join(__dirname, '..', '..', '..', '..', 'test');

test('the cold pass takes the listed files of a run, and none when the whole run is cold', () => {
  const files = [join(distTest, 'integration', 'lifecycle.test.js'), join(distTest, 'integration', 'vm.test.js'), join(distTest, 'unit', 'lifecycle.test.js')];
  assert.deepEqual(coldPass(files, {}), [files[0]]);
  assert.deepEqual(coldPass(files, { STOCKADE_PLANNER: 'on' }), [files[0]]);
  assert.deepEqual(coldPass(files, { STOCKADE_PLANNER: 'off' }), []);
});

test('every file the cold pass names exists (a rename would silently drop it)', () => {
  for (const f of COLD_TOO) assert.ok(existsSync(join(src, f.replace(/\.js$/, '.ts'))), f);
});
