// `stockade features --syscalls`: the table and JSON forms print the sentry's table, and plain `features` is unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { nativeArch } from '../../../src/seccomp/arch';
import type { SyscallTableJson } from '../../../src/sentry/table/render';
import { sentrySyscallTable } from '../../../src/sentry/syscalls';

// The CLI's main() as the bundle runs it, from this test build (bin/stockade needs a full build).
const MAIN = join(__dirname, '..', '..', '..', 'src', 'cli', 'main.js');

function stockade(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const script = `require(${JSON.stringify(MAIN)}).main(${JSON.stringify(args)}).then((c) => { process.exitCode = c; })`;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('features --syscalls --format json parses and matches the table', () => {
  const r = stockade(['features', '--syscalls', '--format', 'json']);
  assert.equal(r.status, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as SyscallTableJson;
  const arch = nativeArch();
  assert.equal(doc.arch, arch);
  const expected = sentrySyscallTable().filter((e) => e.numbers[arch] !== undefined);
  assert.equal(doc.syscalls.length, expected.length);
  const byName = new Map(doc.syscalls.map((s) => [s.name, s]));
  for (const e of expected) {
    const s = byName.get(e.name);
    assert.ok(s !== undefined, e.name);
    assert.equal(s.nr, e.numbers[arch]);
    assert.equal(s.class, e.class, e.name);
    assert.equal(s.errno, e.class === 'DENIED' ? e.errno : null, e.name);
    assert.equal(s.handler, e.handler);
    assert.equal(s.support, e.support);
    assert.equal(s.note, e.note);
    assert.equal(s.rules.length, e.rules.length);
  }
  assert.equal(doc.counts.ALLOW + doc.counts.MEDIATED + doc.counts.DENIED, expected.length);
  assert.ok(doc.instructions.native > 0 && doc.instructions.withCompat <= 4096);
  const clone = byName.get('clone');
  assert.deepEqual(clone?.rules[0]?.when[0], { index: 0, op: 'MASKED_EQ', value: '0x20000', valueTwo: '0x20000' });
});

test('features --syscalls prints NR NAME CLASS HANDLER SUPPORT NOTE', () => {
  const r = stockade(['features', '--syscalls']);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.split('\n');
  assert.match(lines[0] ?? '', /^NR\s+NAME\s+CLASS\s+HANDLER\s+SUPPORT\s+NOTE$/);
  assert.ok(lines.some((l) => /^\d+\s+openat\s+MEDIATED\s+file\.openat\s+full\s/.test(l)));
  assert.ok(lines.some((l) => /^\d+\s+mount\s+DENIED EPERM\s+-\s+none\s/.test(l)));
  assert.ok(lines.some((l) => /^\d+\s+clone\s+ALLOW\*\s+-\s+partial\s/.test(l)));
  assert.ok(lines.some((l) => /^\s+\* arg0 & 0x10000000 == 0x10000000: DENIED EPERM/.test(l)));
});

test('plain features is still the runtime-spec document; bad --format is a usage error', () => {
  const plain = stockade(['features']);
  assert.equal(plain.status, 0, plain.stderr);
  const doc = JSON.parse(plain.stdout) as { ociVersionMin?: string };
  assert.equal(typeof doc.ociVersionMin, 'string');
  const bad = stockade(['features', '--syscalls', '--format', 'yaml']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--format takes table or json/);
});
