// The detached sentry's `stockade trace` readers, served from its wait for the next notification.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, rmSync, writeSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sentryNative, socketpair, unixListen } from '../../../src/native/addon';
import type { TraceRecord } from '../../../src/sentry/kernel';
import { Poller } from '../../../src/sentry/poll';
import { TRACE_READER_BACKLOG, TraceReaders } from '../../../src/sentry/trace-readers';

const record = (pid: number, path = '/etc/hostname'): TraceRecord => ({
  time: new Date(0).toISOString(), pid, syscall: 'openat', args: [path], result: 3,
});

/** A listening socket in a fresh directory, the readers serving it, and one wait of the sentry's for them. */
function setUp(): { readers: TraceReaders; path: string; wait: () => void; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-trace-'));
  const path = join(dir, 'trace.sock');
  const sys = sentryNative().syscall;
  const readers = new TraceReaders(sys, unixListen(path));
  const poller = new Poller(sys);
  return {
    readers, path,
    // Blocks until a reader connects, hangs up or has room: what the sentry's wait sees to between notifications.
    wait: () => poller.once(readers.watches()),
    done: () => {
      readers.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function collect(sock: Socket): { text: () => string; ended: Promise<void> } {
  let text = '';
  sock.on('data', (d: Buffer) => { text += d.toString(); });
  return { text: () => text, ended: new Promise((resolve) => sock.once('end', () => resolve())) };
}

test('a reader is accepted while the sentry waits, gets each record as a JSON line, and the stream ends with the sentry', async () => {
  const t = setUp();
  try {
    assert.equal(t.readers.enabled(), false, 'no reader: no records are built');
    // connect(2) completes in the socket's backlog; the wait accepts it.
    const sock = connect(t.path);
    const got = collect(sock);
    await new Promise((r) => sock.once('connect', r));
    t.wait();
    assert.equal(t.readers.readers, 1);
    assert.equal(t.readers.enabled(), true);
    t.readers.record(record(7));
    t.readers.record(record(8, '/etc/passwd'));
    t.readers.close();
    await got.ended;
    const lines = got.text().trim().split('\n').map((l) => JSON.parse(l) as TraceRecord);
    assert.deepEqual(lines.map((l) => [l.pid, l.args[0]]), [[7, '/etc/hostname'], [8, '/etc/passwd']]);
  } finally {
    t.done();
  }
});

test('a reader that hangs up is dropped at the next wait', async () => {
  const t = setUp();
  try {
    const sock = connect(t.path);
    await new Promise((r) => sock.once('connect', r));
    t.wait();
    assert.equal(t.readers.readers, 1);
    sock.destroy();
    await new Promise((r) => sock.once('close', r));
    t.wait();
    assert.equal(t.readers.readers, 0);
    assert.equal(t.readers.enabled(), false);
  } finally {
    t.done();
  }
});

test('a reader that does not read is dropped once it falls the backlog behind: the sentry never waits for it', async () => {
  const t = setUp();
  try {
    const sock = connect(t.path);
    await new Promise((r) => sock.once('connect', r));
    sock.pause();
    t.wait();
    assert.equal(t.readers.readers, 1);
    const big = record(1, 'x'.repeat(4000));
    const perLine = JSON.stringify(big).length + 1;
    // Each record() returns at once; the socket's buffer fills, then the backlog, then the reader goes.
    let written = 0;
    while (t.readers.readers > 0 && written < 4 * TRACE_READER_BACKLOG) {
      t.readers.record(big);
      written += perLine;
    }
    assert.equal(t.readers.readers, 0);
    assert.ok(written > TRACE_READER_BACKLOG, `dropped after ${written} bytes`);
    sock.destroy();
  } finally {
    t.done();
  }
});

test('the poller waits its whole timeout every time, though ppoll writes what is left of it back', () => {
  const poller = new Poller(sentryNative().syscall);
  const [r, w] = socketpair();
  try {
    const watches = [{ fd: r, events: 1 /* POLLIN */, ready: () => undefined }];
    for (let i = 0; i < 3; i++) {
      const start = performance.now();
      assert.equal(poller.once(watches, 30), false);
      // A timeout kept from one wait to the next is spent: the wait returns at once, and the
      // sentry then idles (a full collection, pages given back) after every call.
      assert.ok(performance.now() - start >= 25, `wait ${i} returned after ${(performance.now() - start).toFixed(1)} ms`);
    }
    writeSync(w, 'x');
    assert.equal(poller.once(watches, 30), true);
  } finally {
    closeSync(r);
    closeSync(w);
  }
});
