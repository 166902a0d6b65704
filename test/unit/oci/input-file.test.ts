// readInputFile: regular files of bounded size only, refused in words that complete "<file> ...".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_INPUT_BYTES, readInputFile } from '../../../src/oci/input-file';

test('readInputFile reads regular files, and refuses the rest without opening or reading past the cap', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-input-'));
  try {
    const ok = join(dir, 'ok.json');
    writeFileSync(ok, '{"a": 1}');
    assert.deepEqual(readInputFile(ok), { ok: true, text: '{"a": 1}' });
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    assert.deepEqual(readInputFile(fifo), { ok: false, problem: 'is not a regular file (a FIFO)' });
    assert.deepEqual(readInputFile('/dev/zero'), { ok: false, problem: 'is not a regular file (a character device)' });
    assert.deepEqual(readInputFile(dir), { ok: false, problem: 'is not a regular file (a directory)' });
    assert.deepEqual(readInputFile(join(dir, 'absent')), { ok: false, problem: 'does not exist', errno: 'ENOENT' });
    assert.deepEqual(readInputFile(join(ok, 'x')), { ok: false, problem: 'does not exist (a parent is not a directory)', errno: 'ENOTDIR' });
    const big = join(dir, 'big');
    writeFileSync(big, '');
    truncateSync(big, MAX_INPUT_BYTES + 1);
    assert.deepEqual(readInputFile(big), { ok: false, problem: `is larger than ${MAX_INPUT_BYTES >> 20} MiB` });
    truncateSync(big, MAX_INPUT_BYTES);
    const exact = readInputFile(big);
    assert.ok(exact.ok && exact.text.length === MAX_INPUT_BYTES);
    // A regular file whose size stat gives as 0 is read to its end.
    const status = readInputFile('/proc/self/status');
    assert.ok(status.ok && status.text.includes('Pid:'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
