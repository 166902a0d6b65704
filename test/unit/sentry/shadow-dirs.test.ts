// Shadow directories: a listing's names, in order and of their types, standing for a directory the sentry names by the shadow's inode; old shadows evicted.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, fstatSync, lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { sentryNative } from '../../../src/native/addon';
import { mountShadowTmpfs, readListing, ShadowDirs, type Entry } from '../../../src/sentry/shadow-dirs';

const sys = sentryNative().syscall;
let rootFd = -1;
/** The tmpfs's root, as this process reaches it (the mount is detached: only through its fd). */
let dir = '';

const skip = process.getuid?.() !== 0 ? 'a tmpfs of its own (fsopen) needs root' : undefined;

before(() => {
  if (skip !== undefined) return;
  rootFd = mountShadowTmpfs(sys);
  assert.ok(rootFd >= 0, `mountShadowTmpfs: errno ${-rootFd}`);
  dir = `/proc/self/fd/${rootFd}`;
});
after(() => {
  if (rootFd >= 0) closeSync(rootFd);
});

const entries: Entry[] = [
  { name: 'self', dir: false, link: true }, { name: 'version', dir: false, link: false }, { name: '1', dir: true, link: false },
  { name: 'meminfo', dir: false, link: false },
];

test('a shadow lists the names in their order and of their types, and stands for its directory by inode', { skip }, () => {
  const shadows = new ShadowDirs(sys, rootFd, 'a');
  const fd = shadows.make(entries, '/proc');
  assert.ok(fd >= 0, `make: errno ${-fd}`);
  try {
    const listed = readListing(sys, fd, Buffer.alloc(4096));
    assert.deepEqual(listed, entries);
    // The mount is detached: its files are reached through the fd, not by a path.
    assert.equal(readlinkSync(`/proc/self/fd/${fd}`), '/a/0');
    const path = `/proc/self/fd/${fd}`;
    assert.equal(lstatSync(join(path, 'self')).isSymbolicLink(), true);
    assert.equal(lstatSync(join(path, '1')).isDirectory(), true);
    const version = lstatSync(join(path, 'version'));
    assert.equal(version.size, 0, 'a placeholder holds nothing');
    assert.equal(version.mode & 0o777, 0o444);
    assert.equal(shadows.standsFor(BigInt(fstatSync(fd).ino)), '/proc');
    assert.equal(shadows.standsFor(BigInt(version.ino)), undefined, 'an entry stands for nothing');
  } finally {
    closeSync(fd);
  }
});

test('old shadows are removed, the oldest first, yet still name their directory', { skip }, () => {
  const shadows = new ShadowDirs(sys, rootFd, 'b');
  const inodes: bigint[] = [];
  for (let i = 0; i < 40; i++) {
    const fd = shadows.make(entries, `/proc/${i}`);
    assert.ok(fd >= 0, `make ${i}: errno ${-fd}`);
    inodes.push(BigInt(fstatSync(fd).ino));
    closeSync(fd);
  }
  assert.equal(readdirSync(join(dir, 'b')).length, 32, 'at most 32 live shadows');
  assert.equal(shadows.standsFor(inodes[0] ?? 0n), '/proc/0');
  assert.equal(shadows.standsFor(inodes[39] ?? 0n), '/proc/39');
});
