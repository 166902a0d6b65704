// The planner's socket trusted the uid alone (SO_PEERCRED), both ways: a process of the same uid
// with less power could have its call run with all of the planner's, or stand in for a planner
// and have the front exec what it named (SPAWN, WAIT and THEN name programs). Each side now reads
// the other's namespaces, root, ids and capabilities from /proc (not from what it says of itself)
// and talks only to its equal (docs/design/planner.md).
//
// - A command in `stockade do --user 0` (root, with three capabilities, in namespaces of its own)
//   sees the host's root read-only, and with it any state root outside /run and /tmp; a socket on
//   a read-only mount still takes connections. It sends the planner a call whose --log is a host
//   path it cannot write itself.
// - A root process without capabilities, which may write a state root it owns, listens at the
//   planner's path and greets with the build and fingerprint a front expects (both computable
//   from world-readable files and its own namespaces: here the test computes them for it), then
//   answers the call with a SPAWN of /bin/sh.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/native/paths';
import { buildIdOf, hostFingerprint } from '../../src/planner/host';
import { PLANNER_SOCKET } from '../../src/planner/protocol';
import { STOCKADE, integrationSkip } from '../integration/harness';
import { processesMarked } from '../helpers/run-scope';

// setpriv is util-linux's, which the vm level's jails need too (src/vm/vmm.ts).
const skip = integrationSkip();

/** Frames as src/planner/protocol.ts lays them out, for the attackers' scripts. */
const FRAMES = `
const str = (l) => Buffer.concat(l.map((s) => Buffer.from(s + '\\0')));
const frame = (t, p) => { const h = Buffer.alloc(5); h.writeUInt32LE(p.length + 1, 0); h.writeUInt8(t, 4); return Buffer.concat([h, p]); };
`;

/** A root process without a capability and with no_new_privs, running node SCRIPT ARGS. */
function powerless(script: string, args: readonly string[]): string[] {
  return ['setpriv', '--bounding-set=-all', '--inh-caps=-all', '--nnp', '--', process.execPath, '-e', script, ...args];
}

function plannersOf(root: string): number[] {
  return processesMarked(realpathSync(root)).filter((p) => p.state !== 'Z' && p.cmdline.includes('stockade-planner')).map((p) => p.pid);
}

describe('the planner talks only to its equal (same uid is not enough)', { skip }, () => {
  // Outside /tmp and /run, which `do` replaces with its own: the host's root shows it.
  let base = '';
  let root = '';
  before(() => {
    base = mkdtempSync('/var/lib/stockade-redteam-planner-');
    chmodSync(base, 0o711);
    root = join(base, 'state');
    mkdirSync(root, { mode: 0o700 });
  });
  after(() => {
    for (const pid of plannersOf(root)) {
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    rmSync(base, { recursive: true, force: true });
  });

  test('a command in `stockade do --user 0` that reaches a planner\'s socket gets no call run', () => {
    // A planner for the root, started by an ordinary call (an unknown container: nothing is made).
    spawnSync(STOCKADE, ['--root', root, 'state', 'nosuch'], { env: { ...process.env, STOCKADE_PLANNER: 'on' } });
    assert.ok(plannersOf(root).length === 1 && existsSync(join(root, PLANNER_SOCKET)), 'a planner serves the root');
    const target = join(base, 'escaped.json');
    const attack = `${FRAMES}
      const [sock, root, target] = process.argv.slice(1);
      try { require('fs').writeFileSync(target, 'x'); console.log('wrote it itself'); } catch (e) { console.log('itself: ' + e.code); }
      const argv = ['--root', root, '--log', target, '--log-format', 'json', 'create', '--bundle', '/nonexistent-bundle', 'x'];
      let greeted = false;
      const c = require('net').connect(sock);
      c.on('data', (d) => {
        if (!greeted) c.write(frame(1, str(['/', '22', '0::/\\n', String(argv.length), ...argv, 'PATH=/usr/bin:/bin'])));
        greeted = true;
        if (d.includes(Buffer.from([42]))) c.end();
      });
      c.on('close', () => console.log(greeted ? 'greeted' : 'refused'));
      c.on('error', (e) => console.log('error ' + e.code));
      setTimeout(() => c.destroy(), 10000);`;
    const scratch = join(base, 'do-root');
    const r = spawnSync(STOCKADE, ['--root', scratch, 'do', '--user', '0', '--', process.execPath, '-e', attack, join(root, PLANNER_SOCKET), root, target], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /itself: EROFS/, 'the command cannot write the host path itself');
    assert.equal(existsSync(target), false, `the planner wrote a host file for the sandboxed command: ${existsSync(target) ? readFileSync(target, 'utf8') : ''}`);
    assert.match(r.stdout, /refused/, `the planner refused the sandboxed peer: ${r.stdout}`);
  });

  test('a powerless root process listening at the planner\'s path is not asked, and nothing it names runs', async () => {
    for (const pid of plannersOf(root)) process.kill(pid, 'SIGKILL');
    const sock = join(root, PLANNER_SOCKET);
    rmSync(sock, { force: true });
    // Where only a process with CAP_DAC_OVERRIDE may write (the front has it; the fake has not).
    const closed = join(base, 'closed');
    mkdirSync(closed, { mode: 0o700 });
    chownSync(closed, 65534, 65534);
    const marker = join(closed, 'ran-as-front');
    const fakeScript = `${FRAMES}
      const [sock, build, host, marker] = process.argv.slice(1);
      try { require('fs').writeFileSync(marker, 'x'); console.log('wrote it itself'); } catch (e) { console.log('itself: ' + e.code); }
      const i32s = (...v) => { const b = Buffer.alloc(v.length * 4); v.forEach((x, i) => b.writeInt32LE(x, i * 4)); return b; };
      require('net').createServer((c) => {
        c.write(frame(32, str([build, host])));
        c.once('data', () => {
          console.log('asked');
          c.write(frame(36, Buffer.concat([i32s(0, 3, 4), str(['/bin/sh', '-c', 'grep CapEff /proc/self/status > ' + marker])])));
          setTimeout(() => c.end(frame(42, i32s(0))), 500);
        });
      }).listen(sock, () => console.log('up'));`;
    const build = buildIdOf(join(packageRoot(), 'dist', 'stockade-planner.js'));
    const [file, ...args] = powerless(fakeScript, [sock, build, hostFingerprint(), marker]);
    const fake = spawn(file as string, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let said = '';
    fake.stdout.on('data', (d: Buffer) => { said += d.toString(); });
    try {
      const end = Date.now() + 10_000;
      while (!said.includes('up') && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      assert.match(said, /itself: EACCES/, 'the fake cannot write there itself');
      assert.match(said, /up/);
      spawnSync(STOCKADE, ['--root', root, 'state', 'nosuch'], { env: { ...process.env, STOCKADE_PLANNER: 'on' }, timeout: 30_000 });
      assert.ok(!said.includes('asked'), 'the front sent its call to a listener less powerful than itself');
      assert.equal(existsSync(marker), false, `a program the fake named ran with the front's power: ${existsSync(marker) ? readFileSync(marker, 'utf8') : ''}`);
    } finally {
      fake.kill('SIGKILL');
    }
  });
});
