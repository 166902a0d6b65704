// Which calls the planner takes: the verbs on one container by that container's level, and no input it cannot read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { declined } from '../../../src/planner/eligible';

function rootWith(levels: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'eligible-'));
  for (const [id, level] of Object.entries(levels)) {
    mkdirSync(join(root, id));
    writeFileSync(join(root, id, 'state.json'), JSON.stringify({ id, level }));
  }
  return root;
}

test('state, ps, pause, resume and update are served for a namespaces container, declined for one at another level', () => {
  const root = rootWith({ plain: 'namespaces', walled: 'sentry', guest: 'vm' });
  try {
    const calls: string[][] = [['state', 'ID'], ['ps', '--format', 'json', 'ID'], ['ps', 'ID', '-o', 'pid'], ['pause', 'ID'], ['resume', 'ID'], ['update', '--pids-limit', '5', 'ID']];
    for (const c of calls) {
      const on = (id: string): string | undefined => declined(['--root', root, ...c.map((a) => (a === 'ID' ? id : a))], '/');
      assert.equal(on('plain'), undefined, c.join(' '));
      assert.equal(on('walled'), 'level sentry', c.join(' '));
      assert.equal(on('guest'), 'level vm', c.join(' '));
      // No such container, or a usage error: the planner words it, as the cold call does.
      assert.equal(on('ghost'), undefined, c.join(' '));
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('update with its resources on stdin, list, spec, features, images, rmi, events --stats and run --image are served; a streaming events is not', () => {
  const root = rootWith({ plain: 'namespaces', walled: 'sentry' });
  try {
    const on = (...args: string[]): string | undefined => declined(['--root', root, ...args], '/');
    assert.equal(on('update', '--resources', '-', 'plain'), undefined);
    assert.equal(on('update', '-r', '-', 'plain'), undefined);
    assert.equal(on('update', '-r', '-', 'walled'), 'level sentry');
    // list reads every container at any level (and removes what a killed do left); spec and features none.
    for (const c of [['list'], ['list', '-q'], ['spec', '--bundle', '/x'], ['features'], ['features', '--syscalls'], ['images'], ['rmi', 'x']]) assert.equal(on(...c), undefined, c.join(' '));
    assert.equal(on('events', '--stats', 'plain'), undefined);
    assert.equal(on('events', '--stats', 'walled'), 'level sentry');
    assert.equal(on('events', 'plain'), 'events (a stream)');
    assert.equal(on('events', '--interval', '1s', 'plain'), 'events (a stream)');
    // A usage error is worded by the planner, as the cold call words it.
    assert.equal(on('events', '--no-such-flag', 'plain'), undefined);
    assert.equal(on('run', '--image', 'oci:/layout:v1', 'img'), undefined);
    assert.equal(on('run', '--image=oci:/layout:v1', '--', 'true'), undefined);
    assert.equal(on('--isolation', 'sentry', 'run', '--image', 'oci:/layout:v1'), '--isolation sentry');
    assert.equal(on('--isolation', 'sentry', 'list'), '--isolation sentry');
    for (const c of ['pull', 'trace']) assert.equal(on(c), `command ${c}`);
    assert.equal(on('--isolation', 'sentry', 'state', 'plain'), '--isolation sentry');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('do is served at namespaces and declined at the level its own options ask for', () => {
  const root = rootWith({});
  try {
    const on = (...args: string[]): string | undefined => declined(['--root', root, ...args], '/');
    assert.equal(on('do', '--', 'true'), undefined);
    assert.equal(on('do', '-t', '--isolation', 'namespaces', '--', 'sh'), undefined);
    // A usage error is the planner's to word, as the cold call words it.
    assert.equal(on('do', '--bogus', '--', 'true'), undefined);
    assert.equal(on('do', '--isolation', 'sentry', '--', 'true'), 'do --isolation sentry');
    assert.equal(on('do', '--isolation=vm', '--', 'true'), 'do --isolation vm');
    // --allow-net asks for the level with a network policy.
    assert.equal(on('do', '--allow-net', '127.0.0.1', '--', 'true'), 'do --isolation sentry');
    assert.equal(on('--isolation', 'sentry', 'do', '--', 'true'), '--isolation sentry');
    // What follows -- is the command's, not do's.
    assert.equal(on('do', '--', 'env', '--isolation', 'sentry'), undefined);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('exec is served into a namespaces or sentry container, and detached only into a vm one; create and run at every level', () => {
  const root = rootWith({ plain: 'namespaces', walled: 'sentry', guest: 'vm' });
  try {
    const exec = (...a: string[]): string | undefined => declined(['--root', root, 'exec', ...a, '/bin/true'], '/');
    assert.equal(exec('plain'), undefined);
    assert.equal(exec('walled'), undefined);
    // Attached, the calling process relays its own stdio to the keeper: the planner's is not the caller's.
    assert.equal(exec('guest'), 'level vm');
    assert.equal(exec('-d', 'guest'), undefined);
    // --isolation names the level a create makes, not the container an exec joins.
    assert.equal(declined(['--root', root, '--isolation', 'vm', 'exec', 'walled', '/bin/true'], '/'), undefined);
    for (const level of ['namespaces', 'sentry', 'vm']) {
      for (const command of ['create', 'run']) {
        assert.equal(declined(['--root', root, '--isolation', level, command, '-b', '/nonexistent-bundle', 'x'], '/'), undefined, `${command} at ${level}`);
      }
    }
    assert.equal(declined(['--root', root, '--isolation', 'bogus', 'run', 'x'], '/'), '--isolation bogus');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a terminal to relay is served: the front relays it', () => {
  const root = rootWith({ plain: 'namespaces' });
  const bundle = mkdtempSync(join(tmpdir(), 'eligible-bundle-'));
  try {
    writeFileSync(join(bundle, 'config.json'), JSON.stringify({ ociVersion: '1.0.2', process: { terminal: true, args: ['sh'], cwd: '/' }, root: { path: 'rootfs' } }));
    assert.equal(declined(['--root', root, 'run', '-b', bundle, 'tty1'], '/'), undefined);
    assert.equal(declined(['--root', root, 'exec', '-t', 'plain', 'sh'], '/'), undefined);
  } finally {
    rmSync(root, { recursive: true, force: true });
    rmSync(bundle, { recursive: true, force: true });
  }
});
