// The addon's sentry calls (native/addon/notify.c) against the real kernel: worker loading, -errno results, raw syscalls, remote memory.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { AT_FDCWD, EBADF, EEXIST, EFAULT, ENAMETOOLONG } from '../../../src/abi/linux/constants';
import { sentryNative } from '../../../src/native/addon';
import { abiOf, nativeArch, syscallNumber } from '../../../src/seccomp/arch';

const WRAPPER = require.resolve('../../../src/native/addon');

function nr(name: string): number {
  const abi = abiOf(nativeArch());
  const n = abi === undefined ? undefined : syscallNumber(abi, name);
  if (n === undefined) throw new Error(`no syscall number for ${name} on ${process.arch}`);
  return n;
}

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_PRIVATE = 2;
const MAP_ANONYMOUS = 0x20;
const PAGE = 4096;

test('the addon loads in a worker_thread, and notifSizes gives the kernel sizes there', async () => {
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     parentPort.postMessage(require(workerData).sentryNative().notifSizes());`,
    { eval: true, workerData: WRAPPER },
  );
  const [sizes] = (await once(worker, 'message')) as [unknown];
  await once(worker, 'exit');
  assert.deepEqual(sizes, { notif: 80, resp: 24, data: 64 });
  assert.deepEqual(sentryNative().notifSizes(), { notif: 80, resp: 24, data: 64 });
});

test('sentryNative hands out the native functions themselves', () => {
  const n = sentryNative();
  assert.equal(sentryNative(), n);
  assert.ok(Object.isFrozen(n));
  // A wrapper closure would have a JS source; a native function's text says [native code].
  assert.match(Function.prototype.toString.call(n.notifRecv), /\[native code\]/);
  assert.match(Function.prototype.toString.call(n.syscall), /\[native code\]/);
});

test('failed syscalls come back as -errno; bad argument types throw TypeError', () => {
  const n = sentryNative();
  assert.equal(n.notifSend(1 << 20, 1n, 0n, 0, 0), -EBADF);
  assert.equal(n.notifAddfd(1 << 20, 1n, 0, 0, true), -EBADF);
  assert.equal(n.notifIdValid(1 << 20, 1n), false);
  assert.equal(n.notifSetFlags(1 << 20, 0), -EBADF);
  assert.equal(n.notifRecv(1 << 20, Buffer.alloc(80)), -EBADF);
  assert.throws(() => n.notifRecv(0, Buffer.alloc(79)), RangeError);
  assert.throws(() => n.notifSend(0, 1 as unknown as bigint, 0n, 0, 0), TypeError);
  assert.throws(() => n.memRead(1, 0n, Buffer.alloc(4), 8), RangeError);
  assert.throws(() => n.syscall(nr('getpid'), {} as unknown as number), TypeError);
  assert.throws(() => n.syscall(nr('mkdirat'), AT_FDCWD, '/tmp/a\0b', 0o700), TypeError);
});

test('syscall passes numbers, bigints, strings and buffers, and returns -errno', (t) => {
  const n = sentryNative();
  const dir = mkdtempSync(join(tmpdir(), 'stockade-sentry-native-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.equal(n.syscall(nr('getpid')), process.pid);
  const sub = join(dir, 'sub');
  assert.equal(n.syscall(nr('mkdirat'), AT_FDCWD, sub, 0o700n), 0);
  assert.equal(n.syscall(nr('mkdirat'), AT_FDCWD, sub, 0o700), -EEXIST);
  const link = join(dir, 'link');
  symlinkSync('target'.repeat(600), link);
  const out = Buffer.alloc(8192);
  assert.equal(n.syscall(nr('readlinkat'), AT_FDCWD, link, out, out.length), 3600);
  assert.equal(out.toString('utf8', 0, 3600), 'target'.repeat(600));
  // A Uint8Array view at an offset passes the address of its first element.
  const view = new Uint8Array(out.buffer, out.byteOffset + 16, 32);
  out.fill(0);
  assert.equal(n.syscall(nr('readlinkat'), AT_FDCWD, link, view, 6), 6);
  assert.equal(out.toString('utf8', 16, 22), 'target');
  assert.equal(out[15], 0);
  // Longer than the stack arena: the string goes to the heap and still arrives whole.
  const file = join(dir, 'file');
  const fd = openSync(file, 'w');
  try {
    assert.equal(n.syscall(nr('write'), fd, 'y'.repeat(10_000), 10_000), 10_000);
  } finally {
    closeSync(fd);
  }
  assert.equal(readFileSync(file, 'utf8'), 'y'.repeat(10_000));
  // null is 0: fstat(0, NULL) faults on the null buffer rather than being refused for its type.
  assert.equal(n.syscall(nr('fstat'), 0, null), -EFAULT);
});

test('memReadString reads up to the end of a mapping, page by page; memRead and memWrite move bytes', () => {
  const n = sentryNative();
  const base = n.syscall(nr('mmap'), 0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  assert.ok(base > 0, `mmap: ${base}`);
  // Only the first page stays: a string ending just before it ends must still read.
  assert.equal(n.syscall(nr('munmap'), base + PAGE, PAGE), 0);
  try {
    const addr = BigInt(base);
    const text = Buffer.from('/bin/sh\0');
    const at = addr + BigInt(PAGE - text.length);
    assert.equal(n.memWrite(process.pid, at, text, text.length), text.length);
    assert.equal(n.memReadString(process.pid, at, 4096), '/bin/sh');
    assert.equal(n.memReadString(process.pid, at, 7), -ENAMETOOLONG);
    assert.equal(n.memReadString(process.pid, at, 8), '/bin/sh');
    const back = Buffer.alloc(8);
    assert.equal(n.memRead(process.pid, at, back, 8), 8);
    assert.deepEqual(back, text);
    assert.equal(n.memRead(process.pid, addr + BigInt(PAGE), back, 8), -EFAULT);
    // No NUL before the unmapped page.
    const noNul = Buffer.from('abcd');
    assert.equal(n.memWrite(process.pid, addr + BigInt(PAGE - 4), noNul, 4), 4);
    assert.equal(n.memReadString(process.pid, addr + BigInt(PAGE - 4), 4096), -EFAULT);
    assert.equal(n.memReadString(process.pid, addr + BigInt(PAGE), 4096), -EFAULT);
  } finally {
    n.syscall(nr('munmap'), base, PAGE);
  }
});
