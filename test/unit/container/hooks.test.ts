// The runtime-side hook runner (argv, env, stdin, timeout, errors) and the plan records of the container's hooks.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { containerHookRecords, encodeState, hasCreateHooks, runHook, runHooks, runHooksWarning, type HookState } from '../../../src/container/hooks';
import { isStockadeError } from '../../../src/errors';
import { encodePlan, HOOK_PHASE, PLAN } from '../../../src/native/protocol';
import type { Spec } from '../../../src/oci/spec';

const STATE: HookState = { ociVersion: '1.3.0', id: 'c1', status: 'creating', pid: 42, bundle: '/b' };

function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'stockade-hooks-'));
  return fn(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

test('a hook gets args[0] as argv[0], exactly its env and the state on stdin', () => withDir(async (dir) => {
  const script = 'cat /proc/$$/cmdline > "$1.argv"; cat /proc/$$/environ > "$1.env"; cat > "$1.state"';
  await runHook('hooks.createRuntime[0]', { path: '/bin/sh', args: ['my-hook', '-c', script, 'zero', join(dir, 'x')], env: ['ONLY=this'] },
    encodeState(STATE));
  assert.deepEqual(readFileSync(join(dir, 'x.argv'), 'utf8').split('\0').slice(0, 2), ['my-hook', '-c']);
  assert.deepEqual(readFileSync(join(dir, 'x.env'), 'utf8').split('\0').filter((e) => e !== ''), ['ONLY=this']);
  assert.deepEqual(JSON.parse(readFileSync(join(dir, 'x.state'), 'utf8')), STATE);
}));

test('exit status, signal, timeout and a missing program each give a one-line HOOK_FAILED naming the hook', async () => {
  const cases: [Parameters<typeof runHook>[1], RegExp][] = [
    [{ path: '/bin/sh', args: ['sh', '-c', 'echo "two\nlines" >&2; exit 3'] }, /^hooks\.poststop\[2\] \(\/bin\/sh\): exit status 3: two lines$/],
    [{ path: '/bin/sh', args: ['sh', '-c', 'kill -TERM $$'] }, /^hooks\.poststop\[2\] \(\/bin\/sh\): killed by SIGTERM$/],
    [{ path: '/bin/sh', args: ['sh', '-c', 'sleep 5'], timeout: 1 }, /^hooks\.poststop\[2\] \(\/bin\/sh\): timed out after 1s$/],
    [{ path: '/nonexistent/hook' }, /^hooks\.poststop\[2\] \(\/nonexistent\/hook\): cannot run: .*ENOENT/],
  ];
  for (const [hook, message] of cases) {
    const started = Date.now();
    await assert.rejects(runHook('hooks.poststop[2]', hook, Buffer.from('{}')), (e: unknown) => {
      assert.ok(isStockadeError(e));
      assert.equal(e.code, 'HOOK_FAILED');
      assert.match(e.message, message);
      return true;
    });
    assert.ok(Date.now() - started < 4000, `${hook.path} ran past its timeout`);
  }
});

test('a hook that never reads a large state on stdin still finishes', async () => {
  const big = Buffer.alloc(1 << 20, 'x');
  await runHook('hooks.prestart[0]', { path: '/bin/sh', args: ['sh', '-c', 'exit 0'] }, big);
});

test('runHooks stops at the first failure; runHooksWarning only warns', async () => {
  const spec: Spec = { ociVersion: '1.3.0', hooks: { poststart: [{ path: '/bin/false' }, { path: '/nonexistent' }] } };
  await assert.rejects(runHooks(spec, 'poststart', STATE), /hooks\.poststart\[0\] \(\/bin\/false\): exit status 1/);
  const warned: string[] = [];
  await runHooksWarning(spec, 'poststart', STATE, (m) => warned.push(m));
  assert.equal(warned.length, 1);
  assert.match(warned[0] ?? '', /hooks\.poststart\[0\]/);
  await runHooks({ ociVersion: '1.3.0' }, 'poststop', STATE);
});

test('container hooks become TAG_HOOK records in phase order; create hooks need the pause', () => {
  const spec: Spec = {
    ociVersion: '1.3.0',
    hooks: {
      startContainer: [{ path: '/s', timeout: 2 }],
      createContainer: [{ path: '/c', args: ['c', '-x'], env: ['A=1'] }],
      poststop: [{ path: '/p' }],
    },
  };
  assert.deepEqual(containerHookRecords(spec), [
    { tag: PLAN.TAG_HOOK, phase: HOOK_PHASE.CREATE_CONTAINER, timeoutMs: 0, path: '/c', args: ['c', '-x'], env: ['A=1'] },
    { tag: PLAN.TAG_HOOK, phase: HOOK_PHASE.START_CONTAINER, timeoutMs: 2000, path: '/s', args: [], env: [] },
  ]);
  assert.equal(hasCreateHooks(spec), true);
  assert.equal(hasCreateHooks({ ociVersion: '1.3.0', hooks: { startContainer: [{ path: '/s' }], poststart: [{ path: '/p' }] } }), false);
  assert.equal(hasCreateHooks({ ociVersion: '1.3.0', hooks: { prestart: [{ path: '/p' }] } }), true);

  // u32 phase, u32 timeout, str path, u32 n, str[n], u32 m, str[m]
  const b = encodePlan(containerHookRecords(spec).slice(0, 1));
  const body = b.subarray(12, 12 + b.readUInt32LE(8));
  assert.equal(b.readUInt32LE(4), PLAN.TAG_HOOK);
  assert.equal(body.readUInt32LE(0), HOOK_PHASE.CREATE_CONTAINER);
  assert.equal(body.readUInt32LE(4), 0);
  assert.equal(body.readUInt32LE(8), 2);
  assert.equal(body.toString('utf8', 12, 14), '/c');
  assert.equal(body.readUInt32LE(15), 2);
  assert.equal(body.length, 15 + 4 + (4 + 1 + 1) + (4 + 2 + 1) + 4 + (4 + 3 + 1));
});
