// O_CREAT where the lookup found nothing (open-as-caller.ts lookupOrCreate), with a second thread's moves played between its steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readlinkSync, rmSync, symlinkSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sentryNative } from '../../../src/native/addon';
import { AT_FDCWD, EAGAIN, EEXIST, ENOENT, EXDEV, O_CLOEXEC, O_CREAT, O_EXCL, O_PATH } from '../../../src/abi/linux/constants';
import type { Sentry } from '../../../src/sentry/kernel';
import { NR } from '../../../src/sentry/native';
import { lookupOrCreate, type Lookup } from '../../../src/sentry/open-as-caller';

/** open(2)'s O_RDONLY: no flag at all. */
const O_RDONLY = 0;

const skip = process.platform !== 'linux' ? 'Linux syscalls' : false;

/** What lookupOrCreate needs of a Sentry: its syscalls. */
function sentry(): Sentry {
  const sys = sentryNative().syscall;
  return { k: { sys }, close: (fd: number) => void sys(NR.close, fd) } as unknown as Sentry;
}

/** A lookup by absolute host path (openat2 with no resolve flags), with `before` run ahead of each call: the racing thread. */
function lookupWith(before: (call: number, flags: number) => void): { lookup: Lookup; calls: number[] } {
  const how = Buffer.alloc(24);
  const calls: number[] = [];
  const lookup: Lookup = (p, f, m) => {
    before(calls.length, f);
    calls.push(f);
    how.writeBigUInt64LE(BigInt(f | O_CLOEXEC), 0);
    how.writeBigUInt64LE(BigInt((f & O_CREAT) !== 0 ? m : 0), 8);
    how.writeBigUInt64LE(0n, 16);
    return sentryNative().syscall(NR.openat2, AT_FDCWD, p, how, 24);
  };
  return { lookup, calls };
}

function fdPath(fd: number): string {
  return readlinkSync(`/proc/self/fd/${fd}`);
}

test('a FIFO put at the name between the lookup and the create is looked up again, never opened by the create', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-create-'));
  try {
    const path = join(dir, 'x');
    // The second thread: a FIFO at the name right after the lookup said ENOENT.
    const { lookup, calls } = lookupWith((i) => { if (i === 1) execFileSync('mkfifo', [path]); });
    // O_RDONLY|O_CREAT: an open of the FIFO for reading would wait for a writer, this thread with it.
    const r = lookupOrCreate(sentry(), lookup, path, O_RDONLY | O_CREAT, 0o644, (t) => t);
    assert.ok(typeof r === 'object' && 'pinned' in r, `the FIFO is pinned (O_PATH) for the checks of a first lookup: ${JSON.stringify(r)}`);
    assert.ok((calls[1] ?? 0) & O_EXCL, 'the create was exclusive');
    // Then looked at (is it a dangling symlink? no) and looked up again: no second create.
    assert.deepEqual(calls.slice(2).map((f) => (f & O_CREAT) !== 0), [false, false], JSON.stringify(calls));
    assert.equal(calls[calls.length - 1], O_PATH);
    assert.ok(statSync(fdPath(r.pinned)).isFIFO());
    sentryNative().syscall(NR.close, r.pinned);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('nothing there: a new file is made; the caller\'s own O_EXCL on a name that appeared is EEXIST; a name that keeps flipping gives up', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-create-'));
  try {
    const made = lookupOrCreate(sentry(), lookupWith(() => undefined).lookup, join(dir, 'new'), O_RDONLY | O_CREAT, 0o600, (t) => t);
    assert.ok(typeof made === 'object' && 'created' in made, JSON.stringify(made));
    sentryNative().syscall(NR.close, made.created);
    const racy = join(dir, 'racy');
    const appear = lookupWith((i) => { if (i === 1) writeFileSync(racy, 'x'); });
    assert.equal(lookupOrCreate(sentry(), appear.lookup, racy, O_RDONLY | O_CREAT | O_EXCL, 0o600, (t) => t), -EEXIST);
    // Appears before every create, is gone before every lookup: bounded, not a loop forever.
    const flip = join(dir, 'flip');
    const flipping = lookupWith((_i, f) => { if ((f & O_CREAT) !== 0) writeFileSync(flip, 'x'); else rmSync(flip, { force: true }); });
    assert.equal(lookupOrCreate(sentry(), flipping.lookup, flip, O_RDONLY | O_CREAT, 0o600, (t) => t), -EAGAIN);
    assert.equal(lookupOrCreate(sentry(), lookupWith(() => undefined).lookup, join(dir, 'no', 'such'), O_RDONLY | O_CREAT, 0o600, (t) => t), -ENOENT);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a dangling symlink is followed to the name it points at, where the file is made, as the kernel\'s O_CREAT does', { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-create-'));
  try {
    symlinkSync('target', join(dir, 'link'));
    const r = lookupOrCreate(sentry(), lookupWith(() => undefined).lookup, join(dir, 'link'), O_RDONLY | O_CREAT, 0o600, (t) => t);
    assert.ok(typeof r === 'object' && 'created' in r, JSON.stringify(r));
    assert.equal(fdPath(r.created), join(dir, 'target'));
    sentryNative().syscall(NR.close, r.created);
    // Without a way to take an absolute link (RESOLVE_BENEATH's), refused.
    symlinkSync('/nowhere/at/all', join(dir, 'abs'));
    assert.equal(lookupOrCreate(sentry(), lookupWith(() => undefined).lookup, join(dir, 'abs'), O_RDONLY | O_CREAT, 0o600, undefined), -EXDEV);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
