// STOCKADE_TIMING: the phase marks on stderr (=1) or appended to a file (=/abs/path), each line
// naming its process and that process's start, so several processes' marks lay on one time line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const timing = join(__dirname, '..', '..', '..', 'src', 'log', 'timing.js');
const script = `const t = require(${JSON.stringify(timing)}); t.mark('one'); t.mark('two');`;
const LINE = /^timing: \S+ (\d+) @(\d+): (\d+\.\d) one \| (\d+\.\d) two$/;

test('STOCKADE_TIMING=1: the marks on stderr at exit, with the pid and the start in wall-clock ms', () => {
  const before = Date.now();
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, STOCKADE_TIMING: '1' } });
  assert.equal(r.status, 0, r.stderr);
  const m = LINE.exec(r.stderr.trim());
  assert.ok(m, r.stderr);
  assert.equal(Number(m[1]), r.pid);
  assert.ok(Math.abs(Number(m[2]) - before) < 60_000, `start ${m[2]} vs ${before}`);
  assert.ok(Number(m[4]) >= Number(m[3]));
});

test('STOCKADE_TIMING=/file: two processes append their lines there, nothing on stderr; unset, nothing at all', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-timing-'));
  try {
    const file = join(dir, 'marks');
    for (let i = 0; i < 2; i++) {
      const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, STOCKADE_TIMING: file } });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stderr, '');
    }
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    assert.equal(lines.length, 2);
    for (const l of lines) assert.match(l, LINE);
    const off = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, STOCKADE_TIMING: '' } });
    assert.equal(off.stderr, '');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
