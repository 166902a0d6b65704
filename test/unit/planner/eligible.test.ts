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

test('update with its resources on stdin, list and events are declined', () => {
  const root = rootWith({ plain: 'namespaces' });
  try {
    assert.equal(declined(['--root', root, 'update', '--resources', '-', 'plain'], '/'), 'update --resources -');
    assert.equal(declined(['--root', root, 'update', '-r', '-', 'plain'], '/'), 'update --resources -');
    assert.equal(declined(['--root', root, 'list'], '/'), 'command list');
    assert.equal(declined(['--root', root, 'events', 'plain'], '/'), 'command events');
    assert.equal(declined(['--root', root, '--isolation', 'sentry', 'state', 'plain'], '/'), '--isolation sentry');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
