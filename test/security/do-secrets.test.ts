// Issue 19, item 2: the command of `stockade do` reads neither what only root may read on the host
// nor the credentials and histories of any home directory, unless the caller shows them.
//
// Planted: a root-only file (0600, in a directory of its own anyone may search), a fake
// ~/.ssh/id_ed25519 in /root and in a home made here for a user who "ran sudo", with that user's
// cloud credentials, history and an ordinary file. Each is tried at both levels; `--user 0` (root
// on purpose) is the control that shows the file would be read if the wall were not there.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Runtime, integrationSkip } from '../integration/harness';
import { vmSkip, VM_CALL } from '../integration/vm-helpers';

const skip = integrationSkip();

/** A uid no account on this host has: the user who "ran sudo". */
function unusedUid(): number {
  const taken = new Set(readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':')[2]));
  for (let uid = 64000 + (process.pid % 500); ; uid++) if (!taken.has(String(uid))) return uid;
}

describe('do: secrets stay unreadable (issue 19, item 2)', { skip }, () => {
  let rt: Runtime;
  const tag = `${process.pid}-${Date.now().toString(36)}`;
  const uid = unusedUid();
  const sudo = { SUDO_UID: String(uid), SUDO_GID: String(uid) };
  // On the host's root file system, which the sandbox shows (its /tmp is its own).
  const home = `/home/stockade-t-${tag}`;
  let secretDir = '';
  let rootOnly = '';
  let rootKey = '';
  const made: string[] = [];
  let madeRootSsh = false;
  before(() => {
    rt = new Runtime();
    secretDir = mkdtempSync('/var/lib/stockade-secret-');
    chmodSync(secretDir, 0o755);
    rootOnly = join(secretDir, 'root-only');
    writeFileSync(rootOnly, `ROOT-ONLY-${tag}\n`, { mode: 0o600 });
    // root's own key, of this run's own name (the whole directory is what is hidden): another run
    // on the host has its own beside it. /root/.ssh is made if the host has none, and removed
    // after only once empty: a run that removed it with everything in it took another run's key
    // away in the middle of its test (two suites at once, 2026-12-07).
    madeRootSsh = !existsSync('/root/.ssh');
    mkdirSync('/root/.ssh', { mode: 0o700, recursive: true });
    rootKey = `/root/.ssh/id_ed25519-stockade-${tag}`;
    writeFileSync(rootKey, `ROOT-KEY-${tag}\n`, { mode: 0o600 });
    made.push(rootKey);
    for (const d of ['.ssh', '.aws', 'project']) mkdirSync(join(home, d), { recursive: true, mode: 0o700 });
    writeFileSync(join(home, '.ssh', 'id_ed25519'), `HOME-KEY-${tag}\n`, { mode: 0o600 });
    writeFileSync(join(home, '.aws', 'credentials'), `AWS-${tag}\n`, { mode: 0o600 });
    writeFileSync(join(home, '.bash_history'), `HISTORY-${tag}\n`, { mode: 0o600 });
    writeFileSync(join(home, 'notes.txt'), `NOTES-${tag}\n`, { mode: 0o600 });
    for (const p of [home, ...['.ssh', '.aws', 'project', '.ssh/id_ed25519', '.aws/credentials', '.bash_history', 'notes.txt'].map((r) => join(home, r))]) chownSync(p, uid, uid);
  });
  after(() => {
    rt.cleanup();
    rmSync(secretDir, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
    for (const p of made.reverse()) rmSync(p, { recursive: true, force: true });
    if (madeRootSsh) {
      try { rmdirSync('/root/.ssh'); } catch { /* another run's key is in it, or it is gone: that run removes it */ }
    }
  });

  /** `cat` of each path, as a line "path: content" ("path: " for an empty file), or "path: -" when it could not be read. */
  const reads = (...paths: string[]): string => paths.map((p) => `printf '%s: ' ${p}; c=$(cat ${p} 2>/dev/null) && echo "$c" || echo -`).join('; ');

  // At vm the host's root reaches the guest through virtiofs, and the guest kernel checks the
  // modes and owners it shows (the command is nobody there too); a VM boots for each run.
  for (const level of ['namespaces', 'sentry', 'vm'] as const) {
    const opts = level === 'vm' ? { skip: vmSkip() } : {};
    const call = level === 'vm' ? VM_CALL : {};
    test(`${level}: started by root, the command reads neither a root-only file nor root's key; as root on purpose (--user 0) only the key stays hidden`, opts, () => {
      const r = rt.run(['do', '--isolation', level, '--', 'sh', '-c', `id -u; ${reads(rootOnly, rootKey)}`], call);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `65534\n${rootOnly}: -\n${rootKey}: -\n`);
      const root = rt.run(['do', '--isolation', level, '--user', '0', '--', 'sh', '-c', `${reads(rootOnly, rootKey)}; ls -A /root/.ssh`], call);
      assert.equal(root.status, 0, root.stderr);
      assert.equal(root.stdout, `${rootOnly}: ROOT-ONLY-${tag}\n${rootKey}: -\n`);
    });

    test(`${level}: started through sudo, the command is that user: its own files, not its credentials or history, nor root's file`, opts, () => {
      const r = rt.run(['do', '--isolation', level, '--', 'sh', '-c',
        `id -u; ${reads(join(home, 'notes.txt'), join(home, '.ssh/id_ed25519'), join(home, '.aws/credentials'), join(home, '.bash_history'), rootOnly)}`], { ...call, env: sudo });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, [
        String(uid), `${home}/notes.txt: NOTES-${tag}`, `${home}/.ssh/id_ed25519: -`, `${home}/.aws/credentials: -`,
        // A hidden file reads as empty.
        `${home}/.bash_history: `, `${rootOnly}: -`, '',
      ].join('\n'));
    });

    test(`${level}: --show makes one location visible, --hide hides another path; a bind of the home keeps its credentials hidden`, opts, () => {
      const r = rt.run(['do', '--isolation', level, '--show', join(home, '.ssh'), '--hide', join(home, 'notes.txt'), '--', 'sh', '-c',
        reads(join(home, '.ssh/id_ed25519'), join(home, 'notes.txt'), join(home, '.aws/credentials'))], { ...call, env: sudo });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `${home}/.ssh/id_ed25519: HOME-KEY-${tag}\n${home}/notes.txt: \n${home}/.aws/credentials: -\n`);
      const b = rt.run(['do', '--isolation', level, '--bind', `${home}:/tmp/h`, '--', 'sh', '-c', reads('/tmp/h/notes.txt', '/tmp/h/.ssh/id_ed25519')], { ...call, env: sudo });
      assert.equal(b.status, 0, b.stderr);
      assert.equal(b.stdout, `/tmp/h/notes.txt: NOTES-${tag}\n/tmp/h/.ssh/id_ed25519: -\n`);
    });

    // At vm the bind is id-mapped on the host, where the share is made: the template's 9p share
    // (a 256 MiB guest) started by root, a cold boot's virtiofs (do's default 2 GiB) through sudo.
    test(`${level}: --bind .:rw writes files owned by the caller: root started by root, the user who ran sudo through sudo; never setuid`, opts, () => {
      const byRoot = mkdtempSync('/var/lib/stockade-bind-');
      try {
        const r = rt.run(['do', '--isolation', level, ...(level === 'vm' ? ['--memory', '256m'] : []), '--bind', '.:rw', '--', 'sh', '-c',
          'id -u; echo built > out; mkdir d; ls -n out | cut -d" " -f3,4; cp /bin/true t; chmod 4755 t 2>/dev/null; echo "u+s $?"; chmod 2755 t 2>/dev/null; echo "g+s $?"'], { ...call, cwd: byRoot });
        assert.equal(r.status, 0, r.stderr);
        // The command is nobody, and the caller's files are its own through the bind; what it
        // writes is root's on the host, so it may not make it setuid or setgid.
        assert.equal(r.stdout, '65534\n65534 65534\nu+s 1\ng+s 1\n');
        for (const name of ['out', 'd', 't']) {
          const st = statSync(join(byRoot, name));
          assert.deepEqual([st.uid, st.gid, st.mode & 0o6000], [0, 0, 0], `${name} on the host`);
        }
      } finally {
        rmSync(byRoot, { recursive: true, force: true });
      }
      const project = join(home, 'project');
      const s = rt.run(['do', '--isolation', level, '--bind', '.:rw', '--', 'sh', '-c', 'echo built > out'], { ...call, cwd: project, env: sudo });
      assert.equal(s.status, 0, s.stderr);
      const st = statSync(join(project, 'out'));
      assert.deepEqual([st.uid, st.gid], [uid, uid]);
      rmSync(join(project, 'out'));
    });

    test(`${level}: --rw writes where the command's user may, in memory`, opts, () => {
      const r = rt.run(['do', '--isolation', level, '--rw', '--', 'sh', '-c', `echo mem > ${home}/new && cat ${home}/new; ${reads(join(home, '.ssh/id_ed25519'))}`], { ...call, env: sudo });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, `mem\n${home}/.ssh/id_ed25519: -\n`);
      assert.equal(existsSync(join(home, 'new')), false);
    });
  }

  test('--show of a path that is not hidden and --hide of a missing one are one-line errors, nothing left', () => {
    for (const [args, message] of [
      [['--show', secretDir], /^stockade: do: --show ".*": .* is not hidden: it names no credential location/],
      [['--hide', `${secretDir}/none`], /^stockade: do: --hide ".*": no such file or directory$/],
      [['--hide', '/tmp'], /^stockade: do: --hide "\/tmp": \/tmp is the sandbox's own/],
    ] as const) {
      const r = rt.run(['do', ...args, '--', 'true']);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr.trim(), message);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.deepEqual(rt.containerDirs(), []);
    }
    assert.deepEqual(readdirSync(secretDir), ['root-only']);
  });

  test('a working directory the command may not enter (/root, started by root): --cwd refused in one line, the caller\'s own becomes /', () => {
    const r = rt.run(['do', '--cwd', '/root', '--', 'pwd']);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'stockade: do: --cwd /root is not open to the command\'s user (uid 65534): start elsewhere, or give --user\n');
    const own = rt.run(['do', '--', 'pwd'], { cwd: '/root' });
    assert.equal(own.status, 0, own.stderr);
    assert.equal(own.stdout, '/\n');
    const root = rt.run(['do', '--user', '0', '--', 'pwd'], { cwd: '/root' });
    assert.equal(root.stdout, '/root\n', root.stderr);
  });

  test('a writable bind on a file system that cannot be id-mapped is a one-line error, nothing left', () => {
    // ramfs takes no id map; started by root, the command (nobody) would write it with root's ownership.
    const dir = mkdtempSync('/var/lib/stockade-ramfs-');
    execFileSync('mount', ['-t', 'ramfs', 'ramfs', dir]);
    try {
      const r = rt.run(['do', '--bind', `${dir}:rw`, '--', 'sh', '-c', `echo x > ${dir}/f`]);
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.stderr, `stockade: mount: id-map bind ${dir} on ${dir}: its file system cannot be id-mapped: invalid argument (EINVAL)\n`);
      assert.deepEqual(readdirSync(dir), []);
      assert.deepEqual(rt.containerDirs(), []);
    } finally {
      execFileSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
