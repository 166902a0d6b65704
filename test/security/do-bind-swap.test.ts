// `stockade do --bind SRC` resolves SRC on the host and decides on that path (never /proc, /sys,
// /dev or the state root); stockade-init then mounted the path by name, following whatever links
// were on it by then. Whoever owns a directory on the path (the user whose project root's `do`
// builds) could swap it for a symlink between the check and the mount, and bind what the check
// refuses. The resolved path is now walked with no symlink at all: a swapped path fails the mount.
//
// The swap is made at the moment stockade-init appears (at vm: the VM's keeper, which makes the
// share): after the CLI's check, before the mounts (stockade-init reads its plan, makes its
// namespaces and the fresh mounts first; the keeper boots its VM first). Before the fix the
// command listed the host's /proc there.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { STOCKADE, integrationSkip } from '../integration/harness';
import { vmSkip } from '../integration/vm-helpers';

const skip = integrationSkip();

/**
 * Waits (spinning: the window is milliseconds) for a descendant of the process `pid` named
 * stockade-init, or a VM keeper, then puts the link where the directory was.
 */
const SWAPPER = `
const fs = require('fs');
const [pid, proj, link, held] = process.argv.slice(1);
const kids = (p) => { try { return fs.readdirSync('/proc/' + p + '/task').flatMap((t) => fs.readFileSync('/proc/' + p + '/task/' + t + '/children', 'utf8').split(' ').filter(Boolean)); } catch { return []; } };
const named = (p) => { try { return fs.readFileSync('/proc/' + p + '/comm', 'utf8').trim() + ' ' + fs.readFileSync('/proc/' + p + '/cmdline', 'utf8'); } catch { return ''; } };
const end = Date.now() + 30000;
for (;;) {
  const todo = kids(pid); let found = false;
  while (todo.length > 0 && !found) { const k = todo.pop(); if (/^stockade-init |stockade-vmkeeper/.test(named(k))) found = true; else todo.push(...kids(k)); }
  if (found) { fs.renameSync(proj, held); fs.renameSync(link, proj); console.log('swapped'); break; }
  if (Date.now() > end) { console.log('no stockade-init'); break; }
}`;

describe('do: a --bind source swapped for a symlink after the check is not followed', { skip }, () => {
  let base = '';
  before(() => {
    base = mkdtempSync('/var/lib/stockade-redteam-bind-');
  });
  after(() => rmSync(base, { recursive: true, force: true }));

  for (const level of ['namespaces', 'vm'] as const) {
    test(`${level}: the directory checked, then a link to /proc in its place: the call fails, the host's /proc is not shown`, { skip: level === 'vm' ? vmSkip() : undefined, timeout: 240_000 }, async () => {
      const dir = join(base, level);
      const [proj, link, held] = ['proj', 'link', 'held'].map((n) => join(dir, n)) as [string, string, string];
      mkdirSync(proj, { recursive: true });
      writeFileSync(join(proj, 'mine'), 'the project\n');
      symlinkSync('/proc', link);
      const call = spawn(STOCKADE, ['--root', join(base, 'state'), '--isolation', level, 'do', '--bind', `${proj}:/tmp/x`, '--', '/bin/ls', '/tmp/x'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let errs = '';
      call.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      call.stderr.on('data', (d: Buffer) => { errs += d.toString(); });
      const swapper = spawnSync(process.execPath, ['-e', SWAPPER, String(call.pid), proj, link, held], { encoding: 'utf8', timeout: 40_000 });
      const status = await new Promise<number | null>((res) => call.once('close', (code) => res(code)));
      assert.equal(swapper.stdout.trim(), 'swapped', swapper.stderr);
      const names = out.split('\n');
      assert.ok(!names.includes('sysrq-trigger') && !names.includes('self'), `the host's /proc was bound: ${out.slice(0, 200)}`);
      // The swap came before the mount (else the project would be listed, which proves nothing).
      assert.notEqual(status, 0, `the call did not fail: ${out}`);
      assert.match(errs, /no longer the path that was checked/);
    });
  }
});
