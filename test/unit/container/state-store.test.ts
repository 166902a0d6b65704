// The state directory: exclusive ids, atomic records, live status, and the per-container lock.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseContainerId } from '../../../src/container/id';
import { readProcessStat } from '../../../src/container/process-identity';
import { StateStore, type ContainerRecord } from '../../../src/container/state-store';
import { hostStatus } from '../../../src/namespaces/status';

function store(): StateStore {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-state-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return new StateStore(join(dir, 'root'));
}

function record(id: string, pid: number, startTime: string): ContainerRecord {
  return {
    ociVersion: '1.3.0', id, pid, pidStartTime: startTime, bundle: '/b', rootfs: '/b/rootfs', created: new Date().toISOString(),
    owner: 'root', annotations: {}, level: 'namespaces', ownPidNamespace: true, createdOk: true, cgroupPaths: [],
  };
}

test('an id can be taken once', () => {
  const s = store();
  const id = parseContainerId('a');
  s.createLocked(id).release();
  assert.throws(() => s.createLocked(id), /container with id a already exists/);
});

test('records are written atomically and read back; list shows only complete containers', () => {
  const s = store();
  const id = parseContainerId('c');
  s.createLocked(id).release();
  assert.deepEqual(s.list(), []);
  s.write(id, record('c', 1, '0'));
  assert.deepEqual(readdirSync(s.dir(id)), ['state.json'], 'no temporary file left');
  assert.equal(s.read(id).bundle, '/b');
  assert.deepEqual(s.list(), ['c']);
  assert.throws(() => s.read(parseContainerId('nope')), /container nope does not exist/);
});

test('host-process status: stopped when the pid is gone or reused, created while the start socket exists', () => {
  const s = store();
  const id = parseContainerId('c');
  s.createLocked(id).release();
  const me = readProcessStat(process.pid);
  assert.ok(me !== undefined);
  const status = (r: ContainerRecord): string => hostStatus({ store: s, id, record: r, data: undefined });
  assert.equal(status(record('c', process.pid, me.startTime)), 'running');
  writeFileSync(s.startSocket(id), '');
  assert.equal(status(record('c', process.pid, me.startTime)), 'created');
  assert.equal(status(record('c', process.pid, String(Number(me.startTime) + 1))), 'stopped', 'a reused pid is not the container');
  assert.equal(status(record('c', 2 ** 22 + 7, '1')), 'stopped');
  assert.equal(status({ ...record('c', process.pid, me.startTime), createdOk: false }), 'creating');
});

test('a record from before `level` reads as the level its `isolation` named', () => {
  const s = store();
  const id = parseContainerId('old');
  s.createLocked(id).release();
  const { level: _level, ...rest } = record('old', 1, '0');
  writeFileSync(join(s.dir(id), 'state.json'), JSON.stringify({ ...rest, isolation: 'sentry', supervisor: { pid: 1, startTime: '0' } }));
  const read = s.read(id);
  assert.equal(read.level, 'sentry');
  assert.equal(read.levelData, undefined);
});

test('the lock serialises two commands on one container, and a deleted container is not found after waiting', async () => {
  const s = store();
  const id = parseContainerId('c');
  const first = s.createLocked(id);
  let got = false;
  const second = s.lock(id).then((l) => { got = true; return l; });
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(got, false, 'the second command waits');
  first.release();
  (await second).release();
  assert.equal(got, true);

  const holder = s.createLocked(parseContainerId('d'));
  const waiter = s.lock(parseContainerId('d'));
  s.remove(parseContainerId('d'));
  holder.release();
  await assert.rejects(waiter, /container d does not exist/);
});

test('a lock held by another process blocks this one', async () => {
  const s = store();
  const id = parseContainerId('x');
  s.createLocked(id).release();
  const child = spawn(process.execPath, ['-e', `
    const fs = require('fs'); const { flockSync } = require(${JSON.stringify(join(__dirname, '../../../src/native/addon.js'))});
    const fd = fs.openSync(${JSON.stringify(s.dir(id))}, 'r'); flockSync(fd, 'ex'); console.log('locked'); setTimeout(() => process.exit(0), 300);
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((r) => child.stdout.once('data', () => r()));
  const t0 = Date.now();
  (await s.lock(id)).release();
  assert.ok(Date.now() - t0 >= 150, 'waited for the other process');
});
