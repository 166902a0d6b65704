// Issue 22, finding 6 and what finding 2 showed: every variable of the caller, secrets included,
// sat in the state directory's config.json for the container's life, and a state root the
// container could see showed other containers' directories. The environment given to a `do`
// container is on no disk; state directories are private to root; no container sees the state root.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime, integrationSkip, probeSpec, waitFor } from '../integration/harness';
import { runProcesses } from '../helpers/run-scope';

const skip = integrationSkip();

/** Every regular file under dir whose bytes contain needle. */
function filesHolding(dir: string, needle: string): string[] {
  const found: string[] = [];
  const walk = (d: string): void => {
    let names: string[];
    try { names = readdirSync(d); } catch { return; }
    for (const n of names) {
      const p = join(d, n);
      let st;
      try { st = statSync(p); } catch { continue; }
      if (st.isDirectory()) {
        if (n !== 'rootfs') walk(p);
      } else if (st.isFile()) {
        try { if (readFileSync(p).includes(needle)) found.push(p); } catch { /* gone */ }
      }
    }
  };
  walk(dir);
  return found;
}

describe('do: no secret at rest, no state root in view (issue 22, finding 6)', { skip }, () => {
  let rt: Runtime;
  // A state root outside /tmp, /var/tmp and /run, which do replaces: on the host's root file system.
  const visibleRoot = `/var/lib/stockade-do-test-${process.pid}`;
  before(() => { rt = new Runtime(); });
  after(() => {
    rt.cleanup();
    rmSync(visibleRoot, { recursive: true, force: true });
  });

  for (const level of ['namespaces', 'sentry'] as const) {
    test(`${level}: the caller's environment and --env are in no file of the state directory`, async () => {
      const secret = `s3cr3t-${level}-${process.pid}`;
      const arg = `61.${level === 'sentry' ? 1 : 2}`;
      const child = rt.spawn(['do', '--isolation', level, '--env', `API_TOKEN=${secret}-flag`, '--', 'sh', '-c', `echo "$CALLER_SECRET $API_TOKEN"; exec sleep ${arg}`], { CALLER_SECRET: `${secret}-env` });
      let out = '';
      child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
      const exited = new Promise((r) => child.once('exit', r));
      try {
        await waitFor(() => runProcesses(`sleep ${arg}`).some((p) => p.cmdline.startsWith('sleep ')), 15_000);
        await waitFor(() => out.includes(secret), 5000);
        // The command has its environment ...
        assert.equal(out.trim(), `${secret}-env ${secret}-flag`);
        // ... and no file stockade keeps holds it.
        assert.deepEqual(filesHolding(join(rt.root, '..'), secret), []);
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    });

    test(`${level}: a state root on the host's root file system is not visible to the command`, () => {
      mkdirSync(visibleRoot, { recursive: true });
      const r = rt.run(['--root', visibleRoot, 'do', '--isolation', level, '--', 'sh', '-c', `ls -A ${visibleRoot} 2>&1; ls -A ${visibleRoot}/* 2>&1; true`]);
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stdout, /do-\d+|state\.json|config\.json/, r.stdout);
    });
  }

  test('the state root and each container directory are private to root (0700)', () => {
    const b = rt.bundle(probeSpec(['/bin/probe', 'sleep', '1']));
    const r = rt.run(['create', '--bundle', b.dir, 'private-dirs']);
    assert.equal(r.status, 0, r.stderr);
    try {
      assert.equal(statSync(rt.root).mode & 0o777, 0o700);
      assert.equal(statSync(join(rt.root, 'private-dirs')).mode & 0o777, 0o700);
    } finally {
      rt.run(['delete', '--force', 'private-dirs']);
    }
  });
});
