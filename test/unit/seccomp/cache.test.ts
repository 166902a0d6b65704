// compileCached: a miss compiles and writes one file atomically, a hit reads it back, damage or changes recompile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheKey, canonicalJson, compileCached } from '../../../src/seccomp/cache';
import { compile } from '../../../src/seccomp/compile';
import { defaultSeccompProfile } from '../../../src/seccomp/default-profile';
import { parseSeccomp } from '../../../src/seccomp/parse';
import { createHash } from 'node:crypto';
import { SYSCALL_TABLES_DIGEST } from '../../../src/abi/linux/syscalls-digest';
import { SYSCALLS_AARCH64 } from '../../../src/abi/linux/syscalls-aarch64';
import { SYSCALLS_ARM } from '../../../src/abi/linux/syscalls-arm';
import { SYSCALLS_I386 } from '../../../src/abi/linux/syscalls-i386';
import { SYSCALLS_X32 } from '../../../src/abi/linux/syscalls-x32';
import { SYSCALLS_X86_64 } from '../../../src/abi/linux/syscalls-x86_64';

const opts = { arch: 'SCMP_ARCH_X86_64' } as const;

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-seccomp-cache-'));
  try {
    fn(join(dir, 'cache'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('miss, then hit, with the same program as compile()', () => withDir((dir) => {
  const profile = parseSeccomp(defaultSeccompProfile(opts));
  const first = compileCached(profile, opts, dir);
  assert.equal(first.cached, false);
  assert.equal(first.cacheFile, join(dir, `${cacheKey(profile, opts)}.json`));
  assert.deepEqual(readdirSync(dir), [`${cacheKey(profile, opts)}.json`], 'no temporary file left behind');
  assert.equal(statSync(first.cacheFile).mode & 0o777, 0o600);

  const again = compileCached(parseSeccomp(defaultSeccompProfile(opts)), opts, dir);
  assert.equal(again.cached, true);
  const fresh = compile(profile, opts);
  assert.ok(again.program.equals(fresh.program));
  assert.equal(again.instructions, fresh.instructions);
  assert.equal(again.flags, fresh.flags);
  assert.deepEqual(again.skippedSyscalls, fresh.skippedSyscalls);
  assert.deepEqual(again.arches, fresh.arches);
}));

test('the key changes with the profile, the arch and the options, not with key order', () => {
  const a = parseSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] });
  const b = parseSeccomp({ syscalls: [{ action: 'SCMP_ACT_ALLOW', names: ['read'] }], defaultAction: 'SCMP_ACT_ERRNO' });
  const c = parseSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['write'], action: 'SCMP_ACT_ALLOW' }] });
  assert.equal(cacheKey(a, opts), cacheKey(b, opts));
  assert.notEqual(cacheKey(a, opts), cacheKey(c, opts));
  assert.notEqual(cacheKey(a, opts), cacheKey(a, { arch: 'SCMP_ARCH_AARCH64' }));
  assert.notEqual(cacheKey(a, opts), cacheKey(a, { ...opts, enosysForNewerSyscalls: false }));
  assert.notEqual(cacheKey(a, opts), cacheKey(a, { ...opts, badArchAction: { kind: 'KILL_PROCESS' } }));
  assert.equal(canonicalJson({ b: 1n, a: [undefined, { d: 1, c: 2 }] }), '{"a":[null,{"c":2,"d":1}],"b":"1n"}');
});

test('a damaged or foreign cache file is recompiled and replaced', () => withDir((dir) => {
  const profile = parseSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] });
  const { cacheFile } = compileCached(profile, opts, dir);
  const good = readFileSync(cacheFile, 'utf8');
  const rec = JSON.parse(good) as { program: string; instructions: number };

  for (const bad of [
    'not json',
    JSON.stringify({ ...rec, program: Buffer.from(rec.program, 'base64').subarray(8).toString('base64') }), // one instruction short
    JSON.stringify({ ...rec, key: 'someone else' }),
    JSON.stringify({ ...rec, program: Buffer.alloc(rec.instructions * 8).toString('base64') }), // ends without ret
  ]) {
    writeFileSync(cacheFile, bad);
    const out = compileCached(profile, opts, dir);
    assert.equal(out.cached, false, bad.slice(0, 40));
    assert.equal(readFileSync(cacheFile, 'utf8'), good);
  }
}));

test("a record of another input under this input's file name is a miss, never its program", () => withDir((dir) => {
  const mine = parseSeccomp({ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['read'], action: 'SCMP_ACT_ALLOW' }] });
  const theirs = parseSeccomp({ defaultAction: 'SCMP_ACT_ALLOW' });
  const { cacheFile: theirFile } = compileCached(theirs, opts, dir);
  const key = cacheKey(mine, opts);
  // As a name clash would leave it: their record, in the file this input looks up, under its key.
  const rec = JSON.parse(readFileSync(theirFile, 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, `${key}.json`), JSON.stringify({ ...rec, key }));
  const out = compileCached(mine, opts, dir);
  assert.equal(out.cached, false);
  assert.ok(out.program.equals(compile(mine, opts).program));
  assert.equal(compileCached(mine, opts, dir).cached, true, 'its own record replaced the other');
}));

test('an unwritable cache directory still compiles', () => withDir((dir) => {
  writeFileSync(`${dir}`, 'a file where the directory should be');
  const out = compileCached(parseSeccomp({ defaultAction: 'SCMP_ACT_ALLOW' }), opts, dir);
  assert.equal(out.cached, false);
  assert.ok(out.instructions > 0);
}));

test('the recorded digest of the syscall tables is theirs: a changed table changes every cache key', () => {
  const digest = createHash('sha256')
    .update(canonicalJson([SYSCALLS_X86_64, SYSCALLS_X32, SYSCALLS_I386, SYSCALLS_AARCH64, SYSCALLS_ARM]))
    .digest('hex');
  assert.equal(SYSCALL_TABLES_DIGEST, digest, `a syscall table changed: set SYSCALL_TABLES_DIGEST in src/abi/linux/syscalls-digest.ts to '${digest}'`);
});
