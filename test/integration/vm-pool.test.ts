// The vm pool (src/vm/pool.ts) through the CLI: warmed VMs handed to containers once each, with
// their own entropy and name; a pool VM whose owner died thrown away; the pool ended with its
// state root and by `vm-template --prune`, nothing of it left.
//
// Each pool VM is a clone restored and run once ahead of need (seconds under TCG), so the checks
// share the few this state root's pool warms: the first container starts the refill, and every
// later one waits for a warmed VM before it runs.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { poolDir } from '../../src/vm/pool';
import { Runtime, alive, probeSpec, waitFor } from './harness';
import { vmSkip, VM_CALL } from './vm-helpers';
import { processesMarked } from '../helpers/run-scope';

const skip = vmSkip();
/** The pool on for this file's calls (run-scope turns it off for every other test). */
const POOL = { STOCKADE_VM_POOL: '1' };

/** Processes whose command line names `marker` (a pool entry's directory: its owner and its VM's jail). */
function processesNaming(marker: string): number[] {
  return processesMarked(marker).map((p) => p.pid).filter((pid) => pid !== process.pid && alive(pid));
}

describe('the vm pool through the CLI', { skip }, () => {
  let rt: Runtime;
  let bundle: string;
  before(() => {
    rt = new Runtime();
    // No UTS namespace of its own: the container shows the guest's name, the one REFRESH gave it.
    bundle = rt.bundle(probeSpec(['/bin/sh', '-c', 'cat /proc/sys/kernel/random/uuid; hostname'], (s) => {
      delete s.hostname;
      if (s.linux?.namespaces !== undefined) s.linux.namespaces = s.linux.namespaces.filter((ns) => ns.type !== 'uts');
    })).dir;
  });
  after(() => rt.cleanup());

  const waiting = (): string[] => {
    try {
      return readdirSync(poolDir(rt.root)).filter((n) => n.startsWith('p-')).map((n) => join(poolDir(rt.root), n));
    } catch {
      return [];
    }
  };
  const warmed = async (): Promise<string> => {
    await waitFor(() => waiting().some((e) => existsSync(join(e, 'ready'))), 240000);
    return waiting().find((e) => existsSync(join(e, 'ready')))!;
  };
  /** `run` of the bundle as `id`: its output's lines and the debug lines this call wrote to the log. */
  const run = (id: string): { out: string[]; logs: string[] } => {
    const seen = rt.logLines().length;
    const r = rt.run(['--debug', '--isolation', 'vm', 'run', '--bundle', bundle, id], { ...VM_CALL, env: POOL });
    assert.equal(r.status, 0, r.stderr);
    return { out: r.stdout.trim().split('\n'), logs: rt.logLines().slice(seen).map((l) => l.msg) };
  };

  test('two containers each get a warmed VM of their own, handed over once: their random bytes and hostname their own, nothing of it left after delete', { timeout: 900000 }, async () => {
    // The state root's first vm container finds no pool: it is restored, and starts the refill.
    const first = run('pool-fill');
    assert.ok(!first.logs.some((l) => /a warmed VM from the pool/.test(l)));
    const used: string[] = [];
    const uuids: string[] = [];
    for (const id of ['pool-a', 'pool-b']) {
      const entry = await warmed();
      const owner = Number(readFileSync(join(entry, 'owner.pid'), 'utf8'));
      const r = run(id);
      assert.ok(r.logs.some((l) => l.includes(`vm: a warmed VM from the pool (${entry})`)), `${id} took ${entry}: ${r.logs.join(' | ')}`);
      const [uuid, hostname] = r.out;
      // REFRESH at the hand-over: the guest's name is the container's (the pool VM had a random one).
      assert.equal(hostname, id);
      uuids.push(uuid ?? '');
      used.push(entry);
      // The VM went with its container: its entry, its owner, its QEMU and jail.
      await waitFor(() => !existsSync(entry) && !alive(owner) && processesNaming(entry).length === 0, 10000);
    }
    assert.notEqual(used[0], used[1], 'never the same VM twice');
    assert.match(uuids[0]!, /^[0-9a-f-]{36}$/);
    assert.notEqual(uuids[0], uuids[1]);
    assert.deepEqual(rt.containerDirs(), []);
  });

  test('a pool VM whose owner died is thrown away at the claim, and the container gets a clone restored for it', { timeout: 600000 }, async () => {
    const entry = await warmed();
    const owner = Number(readFileSync(join(entry, 'owner.pid'), 'utf8'));
    process.kill(owner, 'SIGKILL');
    // Its QEMU dies with it (the jail's parent-death signal).
    await waitFor(() => processesNaming(entry).length === 0, 10000);
    assert.ok(existsSync(join(entry, 'ready')), 'the dead owner left its entry as ready');
    const r = run('pool-dead');
    assert.ok(r.logs.some((l) => l.includes(`vm pool: ${basename(entry)} discarded: its owner is gone`)), r.logs.join(' | '));
    assert.ok(!r.logs.some((l) => /a warmed VM from the pool/.test(l)), 'not handed the dead VM');
    assert.equal(r.out[1], 'pool-dead');
    assert.equal(existsSync(entry), false);
  });

  test('the pool ends with `vm-template --prune` and with its state root: owners and VMs gone', { timeout: 600000 }, async () => {
    const entry = await warmed();
    const r = rt.run(['vm-template', '--prune'], { ...VM_CALL, env: POOL });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /ended 1 pool VM/);
    await waitFor(() => !existsSync(entry) && processesNaming(entry).length === 0, 10000);
    // Warmed again (a container's create refills it), then the state root removed under it.
    run('pool-refill');
    const again = await warmed();
    rmSync(rt.root, { recursive: true, force: true });
    await waitFor(() => processesNaming(again).length === 0, 15000);
  });
});
