// Long-lived stockade processes give back the pages of Node they do not use: which mappings qualify.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, realpathSync } from 'node:fs';
import { pageCacheMappings } from '../../../src/native/working-set';

/** One mapping of /proc/PID/smaps, with the fields that decide. */
function mapping(range: string, perms: string, inode: string, path: string, rss: number, anonymous: number): string {
  return [
    `${range} ${perms} 00000000 fe:01 ${inode}${path === '' ? '' : `                   ${path}`}`,
    `Size:               ${rss + 4} kB`,
    `Rss:                ${rss} kB`,
    `Pss:                ${rss} kB`,
    `Anonymous:          ${anonymous} kB`,
    'VmFlags: rd ex mr mw me',
  ].join('\n');
}

test('only mappings of a file, not writable, that hold pages and none of their own', () => {
  const smaps = [
    mapping('00400000-00b6f000', 'r--p', '1234', '/usr/bin/node', 14332, 0),
    mapping('00b72000-025fe000', 'r-xp', '1234', '/usr/bin/node', 20580, 0),
    // RELRO: written by relocations, then made read-only: its pages are the process's own.
    mapping('0563a000-0563e000', 'r--p', '1234', '/usr/bin/node', 12, 8),
    mapping('0563e000-0565d000', 'rw-p', '1234', '/usr/bin/node', 124, 104),
    // Touched by nobody: nothing to drop.
    mapping('7f0000000000-7f0000010000', 'r--p', '99', '/usr/lib/x86_64-linux-gnu/libm.so.6', 0, 0),
    mapping('7f0000100000-7f0000200000', 'r-xp', '98', '/usr/lib/x86_64-linux-gnu/libc.so.6', 1376, 0),
    // Anonymous memory and V8's heap and code.
    mapping('2a0000000000-2a0000040000', 'r-xp', '0', '', 244, 244),
    mapping('05660000-05689000', 'rw-p', '0', '[heap]', 1876, 1876),
    mapping('7ffdf74d9000-7ffdf74fa000', 'rw-p', '0', '[stack]', 60, 60),
    mapping('7ffdf7500000-7ffdf7502000', 'r-xp', '0', '[vdso]', 4, 0),
  ].join('\n');
  assert.deepEqual(pageCacheMappings(smaps), [
    { start: 0x400000n, length: 0x76f000n },
    { start: 0xb72000n, length: 0x1a8c000n },
    { start: 0x7f0000100000n, length: 0x100000n },
  ]);
});

test('this process\'s own smaps parses: its node binary is among the mappings that qualify', () => {
  const smaps = readFileSync('/proc/self/smaps', 'utf8');
  const ranges = pageCacheMappings(smaps);
  const exe = realpathSync('/proc/self/exe');
  const starts = smaps.split('\n').filter((l) => l.endsWith(exe) && / r-xp /.test(l)).map((l) => BigInt(`0x${l.split('-')[0]}`));
  assert.ok(starts.length > 0);
  assert.ok(starts.some((s) => ranges.some((r) => r.start === s)), 'the binary\'s code is page cache only');
});
