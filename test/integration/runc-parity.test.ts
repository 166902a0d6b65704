// runc's observable behaviour, each case run under runc (where installed) and stockade side by side.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, chownSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mountsBelow } from '../../src/container/mounts-below';
import type { Spec } from '../../src/oci/spec';
import { TEST_USER, type Bundle } from '../helpers/rootfs';
import { Runtime, STOCKADE, has, integrationSkip, json, probeSpec } from './harness';

const skip = integrationSkip();
const withRunc = has('runc');

interface Ran { readonly status: number | null; readonly stdout: string; readonly stderr: string }

const ran = (r: SpawnSyncReturns<string>): Ran => ({ status: r.status, stdout: r.stdout, stderr: r.stderr });

/** runc on its own state root, for comparison; undefined where runc is not installed. */
class Runc {
  readonly root = mkdtempSync(join(tmpdir(), 'runc-parity-'));
  #calls = 0;
  run(args: readonly string[], cwd?: string): Ran {
    // Files, not pipes: a detached container keeps its stdio open, and spawnSync would wait for it.
    const out = join(this.root, `out-${this.#calls}`);
    const err = join(this.root, `err-${this.#calls++}`);
    const fds = [openSync(out, 'w+'), openSync(err, 'w+')] as const;
    try {
      const r = spawnSync('runc', ['--root', this.root, ...args], { cwd, timeout: 30_000, stdio: ['ignore', fds[0], fds[1]] });
      return { status: r.status, stdout: readFileSync(out, 'utf8'), stderr: readFileSync(err, 'utf8') };
    } finally {
      for (const fd of fds) closeSync(fd);
      rmSync(out, { force: true });
      rmSync(err, { force: true });
    }
  }
  cleanup(): void {
    for (const id of json<{ id: string }[] | null>(this.run(['list', '--format', 'json']).stdout || 'null') ?? []) this.run(['delete', '-f', id.id]);
    rmSync(this.root, { recursive: true, force: true });
  }
}

describe('runc\'s observable behaviour, side by side', { skip }, () => {
  const bundlesMade: Bundle[] = [];
  let rt: Runtime;
  let runc: Runc | undefined;
  before(() => {
    rt = new Runtime();
    runc = withRunc ? new Runc() : undefined;
  });
  after(() => {
    runc?.cleanup();
    rt.cleanup();
  });

  /** A bundle for each runtime (runc's mkdirs in a root must not change what stockade finds there). */
  const bundles = (spec: Spec, prepare?: (b: Bundle) => void): { stockade: Bundle; runc: Bundle } => {
    const make = (): Bundle => {
      const b = rt.bundle(spec);
      prepare?.(b);
      return b;
    };
    return { stockade: make(), runc: make() };
  };

  /** `run` of `spec` under both runtimes: [stockade, runc (undefined without it)]. */
  const runBoth = (id: string, spec: Spec, prepare?: (b: Bundle) => void): [Ran, Ran | undefined] => {
    const b = bundles(spec, prepare);
    const mine = rt.run(['run', '--bundle', b.stockade.dir, id]);
    const theirs = runc?.run(['run', id], b.runc.dir);
    return [mine, theirs];
  };

  /** Each runtime's container running `sleep`, and a function that runs `exec ARGS` in it (ID stands for the container). */
  const execBoth = (id: string, mutate?: (s: Spec) => void): { exec: (args: readonly string[]) => [Ran, Ran | undefined]; done: () => void } => {
    const spec = probeSpec(['/bin/sleep', '600'], mutate);
    const b = bundles(spec);
    assert.equal(rt.run(['run', '-d', '--bundle', b.stockade.dir, id]).status, 0);
    if (runc !== undefined) assert.equal(runc.run(['run', '-d', id], b.runc.dir).status, 0);
    const swap = (args: readonly string[]): string[] => args.map((a) => (a === 'ID' ? id : a));
    return {
      exec: (args) => [rt.run(['exec', ...swap(args)]), runc?.run(['exec', ...swap(args)])],
      done: () => {
        rt.run(['delete', '-f', id]);
        runc?.run(['delete', '-f', id]);
      },
    };
  };

  test('HOME comes from the container\'s /etc/passwd when the config leaves it unset or empty, for run and exec --user', () => {
    const cases: [string, (s: Spec) => void, string][] = [
      ['unset, root', (s) => { s.process!.env = ['PATH=/bin']; }, '/root'],
      ['empty, user 1000', (s) => { s.process!.env = ['PATH=/bin', 'HOME=']; s.process!.user = { uid: TEST_USER.uid, gid: TEST_USER.gid }; }, '/home/test'],
      ['a uid /etc/passwd lacks', (s) => { s.process!.env = ['PATH=/bin']; s.process!.user = { uid: 4242, gid: 4242 }; }, '/'],
      ['set by the config', (s) => { s.process!.env = ['PATH=/bin', 'HOME=/mine']; }, '/mine'],
    ];
    cases.forEach(([name, mutate, home], i) => {
      const [mine, theirs] = runBoth(`home-${i}`, probeSpec(['/bin/sh', '-c', 'echo "$HOME"'], mutate));
      assert.equal(mine.stdout, `${home}\n`, `${name}: ${mine.stderr}`);
      if (theirs !== undefined) assert.equal(theirs.stdout, mine.stdout, `runc, ${name}: ${theirs.stderr}`);
    });
    const c = execBoth('home-exec', (s) => { s.process!.env = ['PATH=/bin']; });
    try {
      const [mine, theirs] = c.exec(['--user', `${TEST_USER.uid}:${TEST_USER.gid}`, 'ID', '/bin/sh', '-c', 'echo "$HOME"']);
      assert.equal(mine.stdout, '/home/test\n', mine.stderr);
      if (theirs !== undefined) assert.equal(theirs.stdout, mine.stdout, theirs.stderr);
    } finally {
      c.done();
    }
  });

  test('the cwd is entered with the runtime\'s rights first, then as the user where root is refused', () => {
    // Root may enter /rootonly (0700 root), the user may not: runc enters it before the user switch.
    const rootOnly = (b: Bundle): void => {
      mkdirSync(join(b.rootfs, 'rootonly'), { mode: 0o700 });
    };
    const user = (s: Spec): void => { s.process!.user = { uid: TEST_USER.uid, gid: TEST_USER.gid }; s.process!.cwd = '/rootonly'; };
    const [mine, theirs] = runBoth('cwd-root', probeSpec(['/bin/sh', '-c', 'pwd'], user), rootOnly);
    assert.equal(mine.status, 0, mine.stderr);
    assert.equal(mine.stdout, '/rootonly\n');
    if (theirs !== undefined) assert.deepEqual([theirs.status, theirs.stdout], [0, mine.stdout], theirs.stderr);

    // In a user namespace, a directory whose owner is unmapped: root (no CAP_DAC_OVERRIDE over it)
    // is refused, the user's group may enter. runc tries again as the user.
    const base = 200000;
    const userns = (s: Spec): void => {
      s.linux!.namespaces = [...(s.linux!.namespaces ?? []), { type: 'user' }];
      s.linux!.uidMappings = [{ containerID: 0, hostID: base, size: 65536 }];
      s.linux!.gidMappings = [{ containerID: 0, hostID: base, size: 65536 }];
      s.process!.user = { uid: TEST_USER.uid, gid: TEST_USER.gid };
      s.process!.cwd = '/vol';
      // The default spec mounts sysfs and cgroup, which a user namespace may not.
      s.mounts = (s.mounts ?? []).filter((m) => m.type !== 'sysfs' && m.type !== 'cgroup');
    };
    const groupOnly = (b: Bundle): void => {
      spawnSync('chown', ['-R', `${base}:${base}`, b.rootfs]);
      chmodSync(join(b.dir), 0o755);
      const vol = join(b.rootfs, 'vol');
      mkdirSync(vol);
      chownSync(vol, 5, base + TEST_USER.gid);
      chmodSync(vol, 0o770);
    };
    const [mineNs, theirsNs] = runBoth('cwd-userns', probeSpec(['/bin/sh', '-c', 'pwd'], userns), groupOnly);
    assert.equal(mineNs.status, 0, mineNs.stderr);
    assert.equal(mineNs.stdout, '/vol\n');
    if (theirsNs !== undefined) assert.deepEqual([theirsNs.status, theirsNs.stdout], [0, mineNs.stdout], theirsNs.stderr);
  });

  test('a terminal relayed by the runtime passes a newline on as the pty wrote it ("\\r\\n", never "\\r\\r\\n")', { skip: has('script') ? false : 'script (util-linux) is needed to give the runtime a terminal' }, () => {
    const spec = probeSpec(['/bin/sh', '-c', 'printf "a\\nb\\n"'], (s) => { s.process!.terminal = true; });
    const b = bundles(spec);
    // `script` gives the runtime a terminal of its own, as a person's shell would.
    const onTerminal = (cmd: string, cwd: string): string => spawnSync('script', ['-qec', cmd, '/dev/null'], { cwd, encoding: 'utf8', timeout: 30_000, input: '' })
      .stdout.replace(/\^@/g, '');
    const q = (s: string): string => `'${s}'`;
    const mine = onTerminal(`${q(STOCKADE)} --root ${q(rt.root)} run tty-relay`, b.stockade.dir);
    assert.equal(mine, 'a\r\nb\r\n');
    if (runc !== undefined) assert.equal(onTerminal(`runc --root ${q(runc.root)} run tty-relay`, b.runc.dir), mine);
    // exec -t: the same relay (runc's own exec -t races here: output written before it clears
    // ONLCR on the pty arrives as "\r\r\n").
    const c = execBoth('tty-exec2');
    try {
      const out = onTerminal(`${q(STOCKADE)} --root ${q(rt.root)} exec -t tty-exec2 /bin/sh -c 'printf "a\\nb\\n"'`, b.stockade.dir);
      assert.equal(out, 'a\r\nb\r\n');
    } finally {
      c.done();
    }
  });

  test('a config that lists a default device (/dev/null, /dev/ptmx) again is accepted: the listed mode wins, /dev/ptmx stays the pts link', () => {
    const spec = probeSpec(['/bin/sh', '-c', 'stat -c "%a %F" /dev/null; readlink /dev/ptmx; echo x > /dev/null && echo written'], (s) => {
      s.linux!.devices = [
        { path: '/dev/null', type: 'c', major: 1, minor: 3, fileMode: 0o660, uid: 0, gid: 0 },
        { path: '/dev/ptmx', type: 'c', major: 5, minor: 2, fileMode: 0o666 },
      ];
      // runc drops a listed device from its default cgroup rules: allow them as a client would.
      s.linux!.resources = { devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 1, minor: 3, access: 'rwm' }, { allow: true, type: 'c', major: 5, minor: 2, access: 'rwm' }] };
    });
    const [mine, theirs] = runBoth('devices-again', spec);
    assert.equal(mine.status, 0, mine.stderr);
    assert.equal(mine.stdout, '660 character special file\npts/ptmx\nwritten\n');
    if (theirs !== undefined) assert.deepEqual([theirs.status, theirs.stdout], [0, mine.stdout], theirs.stderr);
  });

  test('kill ID 0 checks that the container runs: 0 while created or running, an error once stopped or gone', () => {
    const spec = probeSpec(['/bin/sleep', '600']);
    const b = bundles(spec);
    const steps = (run: (args: string[]) => Ran): number[] => {
      const codes: number[] = [];
      run(['create', 'kill0']);
      codes.push(run(['kill', 'kill0', '0']).status ?? -1);
      run(['start', 'kill0']);
      codes.push(run(['kill', 'kill0', '0']).status ?? -1);
      run(['kill', 'kill0', 'KILL']);
      for (let i = 0; i < 100 && json<{ status: string }>(run(['state', 'kill0']).stdout).status !== 'stopped'; i++) spawnSync('sleep', ['0.05']);
      codes.push(run(['kill', 'kill0', '0']).status ?? -1);
      run(['delete', 'kill0']);
      codes.push(run(['kill', 'kill0', '0']).status ?? -1);
      return codes;
    };
    const mine = steps((args) => rt.run(args[0] === 'create' ? ['create', '--bundle', b.stockade.dir, ...args.slice(1)] : args));
    assert.deepEqual(mine, [0, 0, 1, 1]);
    // Node's own kill too, not only the light entry's.
    const rb = rt.bundle(spec);
    assert.equal(rt.run(['create', '--bundle', rb.dir, 'kill0-node']).status, 0);
    const viaNode = spawnSync(STOCKADE, ['--root', rt.root, 'kill', 'kill0-node', '0'], { env: { ...process.env, STOCKADE_LIGHT: 'off' }, encoding: 'utf8' });
    assert.equal(viaNode.status, 0, viaNode.stderr);
    rt.run(['delete', '-f', 'kill0-node']);
    if (runc !== undefined) assert.deepEqual(steps((args) => runc!.run(args, b.runc.dir)), mine);
  });

  test('exec --cgroup joins a sub-cgroup of the container\'s; a path that leaves it, or an unknown controller, is refused (255)', () => {
    const c = execBoth('exec-cgroup');
    try {
      const dirs = (json<{ cgroupPaths: string[] }>(readFileSync(join(rt.root, 'exec-cgroup', 'state.json'), 'utf8'))).cgroupPaths;
      const memory = dirs.find((d) => d.startsWith('/sys/fs/cgroup/memory/')) ?? dirs.find((d) => !d.includes('/unified/')) ?? dirs[0];
      assert.ok(memory !== undefined, 'the container has cgroups');
      mkdirSync(join(memory, 'sub'));
      const v1 = memory.startsWith('/sys/fs/cgroup/memory/');
      const [joined] = c.exec([...(v1 ? ['--cgroup', 'memory:sub'] : ['--cgroup', 'sub']), 'ID', '/bin/cat', '/proc/self/cgroup']);
      assert.equal(joined.status, 0, joined.stderr);
      assert.match(joined.stdout, v1 ? /^\d+:memory:(.*\/)?sub$/m : /^0::(.*\/)?sub$/m);
      for (const [args, said] of [[['--cgroup', '../..'], /is not a sub cgroup path/], [['--cgroup', 'bogus:sub'], /unknown controller|cgroup v2/]] as const) {
        const [mine, theirs] = c.exec([...args, 'ID', '/bin/true']);
        assert.equal(mine.status, 255, mine.stderr);
        assert.match(mine.stderr, said);
        assert.equal(mine.stderr.split('\n').length, 2, mine.stderr);
        if (theirs !== undefined) assert.equal(theirs.status, 255, theirs.stderr);
      }
    } finally {
      c.done();
    }
  });

  test('exec -p with a process file that has no user runs as 0:0; exec failures exit 255 as runc\'s do, a bad flag 1', () => {
    const dir = mkdtempSync(join(tmpdir(), 'exec-process-'));
    const c = execBoth('exec-p', (s) => { s.process!.user = { uid: TEST_USER.uid, gid: TEST_USER.gid }; });
    try {
      const file = join(dir, 'process.json');
      writeFileSync(file, JSON.stringify({ args: ['/bin/sh', '-c', 'id -u; id -g'], cwd: '/', env: ['PATH=/bin'] }));
      const [mine, theirs] = c.exec(['-p', file, 'ID']);
      assert.equal(mine.status, 0, mine.stderr);
      assert.equal(mine.stdout, '0\n0\n');
      if (theirs !== undefined) assert.deepEqual([theirs.status, theirs.stdout], [0, mine.stdout], theirs.stderr);
      const failures: [string, string[], number][] = [
        ['a command not found', ['ID', 'nosuch'], 255],
        ['a directory', ['ID', '/'], 255],
        ['a cwd that is not there', ['--cwd', '/nonexistent', 'ID', '/bin/true'], 255],
        ['no such container', ['nosuch', '/bin/true'], 255],
        ['no command', ['ID'], 255],
        ['an unknown flag', ['--bogus', 'ID', '/bin/true'], 1],
        ['the process\'s own status', ['ID', '/bin/sh', '-c', 'exit 3'], 3],
      ];
      for (const [name, args, status] of failures) {
        const [m, t] = c.exec(args);
        assert.equal(m.status, status, `${name}: ${m.stderr}`);
        if (status !== 3) assert.equal(m.stderr.trim().split('\n').length, 1, `${name}: one line: ${m.stderr}`);
        if (t !== undefined) assert.equal(t.status, status, `runc, ${name}: ${t.stderr}`);
      }
    } finally {
      c.done();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('--log and --debug lines are runc\'s: logfmt text and JSON with level, msg and time (RFC 3339); without --log, debug lines on stderr', () => {
    const dir = mkdtempSync(join(tmpdir(), 'log-format-'));
    try {
      const lines = (file: string): string[] => readFileSync(file, 'utf8').trim().split('\n');
      const stk = (args: string[]): Ran => ran(spawnSync(STOCKADE, ['--root', rt.root, ...args], { encoding: 'utf8' }));
      const rfc3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
      stk(['--log', join(dir, 'text'), '--debug', 'state', 'nosuch']);
      const text = lines(join(dir, 'text'));
      assert.match(text[0] ?? '', /^time="[^"]+" level=debug msg="stockade --root .* state nosuch"$/);
      assert.match(text.at(-1) ?? '', /^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" level=error msg="container nosuch does not exist"/);
      stk(['--log', join(dir, 'json'), '--log-format', 'json', '--debug', 'state', 'nosuch']);
      for (const line of lines(join(dir, 'json'))) {
        const entry = json<{ level: string; msg: string; time: string }>(line);
        assert.ok(['debug', 'error'].includes(entry.level), line);
        assert.equal(typeof entry.msg, 'string');
        assert.match(entry.time, rfc3339, line);
      }
      assert.equal(json<{ msg: string }>(lines(join(dir, 'json')).at(-1) ?? '').msg, 'container nosuch does not exist');
      const debugOnly = stk(['--debug', 'list', '-q']);
      assert.match(debugOnly.stderr, /^time="[^"]+" level=debug msg="stockade --root .* --debug list -q"\n$/);
      if (runc !== undefined) {
        runc.run(['--log', join(dir, 'runc'), '--log-format', 'json', 'state', 'nosuch']);
        const theirs = json<{ level: string; msg: string; time: string }>(lines(join(dir, 'runc')).at(-1) ?? '');
        assert.equal(theirs.level, 'error');
        assert.match(theirs.time, rfc3339);
        runc.run(['--log', join(dir, 'runc-text'), 'state', 'nosuch']);
        assert.match(lines(join(dir, 'runc-text')).at(-1) ?? '', /^time="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ" level=error msg="container does not exist"/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a startContainer hook that names no env runs with the container process\'s environment (HOME filled in); one that does, with its own', () => {
    const hookSpec = (env?: string[]): Spec => probeSpec(['/bin/cat', '/hook-env'], (s) => {
      s.root!.readonly = false;
      s.process!.env = ['PATH=/bin', 'FROM_PROCESS=1'];
      s.hooks = { startContainer: [{ path: '/bin/sh', args: ['sh', '-c', 'env | grep -E "^(FROM_|HOME=|OWN=)" | sort > /hook-env'], ...(env === undefined ? {} : { env }) }] };
    });
    const [mine, theirs] = runBoth('hook-env', hookSpec());
    assert.equal(mine.status, 0, mine.stderr);
    assert.equal(mine.stdout, 'FROM_PROCESS=1\nHOME=/root\n');
    if (theirs !== undefined) assert.deepEqual([theirs.status, theirs.stdout], [0, mine.stdout], theirs.stderr);
    const [own, theirsOwn] = runBoth('hook-env-own', hookSpec(['OWN=1']));
    assert.equal(own.stdout, 'OWN=1\n', own.stderr);
    if (theirsOwn !== undefined) assert.equal(theirsOwn.stdout, own.stdout, theirsOwn.stderr);
  });

  test('a tmpfs over a directory of the rootfs takes that directory\'s mode when the mount gives none', () => {
    const spec = probeSpec(['/bin/sh', '-c', 'stat -c "%a" /data /fresh /given'], (s) => {
      s.mounts = [...(s.mounts ?? []),
        { destination: '/data', type: 'tmpfs', source: 'tmpfs', options: ['nosuid'] },
        { destination: '/fresh', type: 'tmpfs', source: 'tmpfs' },
        { destination: '/given', type: 'tmpfs', source: 'tmpfs', options: ['mode=750'] }];
    });
    const prepare = (b: Bundle): void => {
      for (const d of ['data', 'given']) mkdirSync(join(b.rootfs, d));
      chmodSync(join(b.rootfs, 'data'), 0o1770);
      chmodSync(join(b.rootfs, 'given'), 0o700);
    };
    const [mine, theirs] = runBoth('tmpfs-mode', spec, prepare);
    assert.equal(mine.status, 0, mine.stderr);
    // A directory that was not there: tmpfs's own 1777; mode= given: that mode (runc 1.1.5 still
    // put the directory's mode over it, a bug later runc fixed).
    assert.equal(mine.stdout, '1770\n1777\n750\n');
    if (theirs !== undefined) assert.equal(theirs.stdout.split('\n').slice(0, 2).join('\n'), mine.stdout.split('\n').slice(0, 2).join('\n'), theirs.stderr);
  });

  test('a config with no mount namespace runs in the runtime\'s, as the spec allows; its mounts are detached at delete (runc leaves them)', () => {
    const shared = (args: string[]): Spec => probeSpec(args, (s) => {
      s.linux!.namespaces = s.linux!.namespaces?.filter((n) => n.type !== 'mount') ?? [];
      delete s.linux!.maskedPaths;
      delete s.linux!.readonlyPaths;
    });
    const hostMnt = readlinkSync('/proc/self/ns/mnt');
    const [mine, theirs] = runBoth('no-mnt-ns', shared(['/bin/sh', '-c', 'readlink /proc/self/ns/mnt; ls /bin/sh; test -e /proc/self/status && echo proc']), (b) => bundlesMade.push(b));
    try {
      assert.equal(mine.status, 0, mine.stderr);
      assert.equal(mine.stdout, `${hostMnt}\n/bin/sh\nproc\n`);
      if (theirs !== undefined) assert.deepEqual([theirs.status, theirs.stdout], [0, mine.stdout], theirs.stderr);
      assert.deepEqual(mountsBelow(rt.root), [], 'the attached run deleted it: nothing mounted below the state root');
      // Detached: the container's mounts are the host's while it runs, and go with delete.
      const b = rt.bundle(shared(['/bin/sleep', '600']));
      const files = readdirSync(join(b.rootfs, 'bin')).length;
      assert.equal(rt.run(['run', '-d', '--bundle', b.dir, 'no-mnt-ns-d']).status, 0);
      assert.ok(mountsBelow(join(rt.root, 'no-mnt-ns-d')).some((m) => m.endsWith('/rootfs/proc')), 'its /proc is mounted in the host\'s namespace');
      assert.ok(!existsSync(join(rt.root, 'no-mnt-ns-d', 'light')), 'no light record: the C delete must not remove a tree with the root bound in it');
      // exec runs in the container's root, as its init does (runc's exec runs in the host's root here).
      const inside = rt.run(['exec', 'no-mnt-ns-d', '/bin/sh', '-c', 'test -x /bin/probe && cat /etc/passwd']);
      assert.equal(inside.status, 0, inside.stderr);
      assert.equal(inside.stdout, readFileSync(join(b.rootfs, 'etc', 'passwd'), 'utf8'));
      assert.equal(rt.run(['delete', '-f', 'no-mnt-ns-d']).status, 0);
      assert.deepEqual(mountsBelow(rt.root), []);
      assert.equal(readdirSync(join(b.rootfs, 'bin')).length, files, 'the bundle\'s root is untouched');
      // What still needs a mount namespace is refused in one line: masks (as runc), the sentry level.
      const masked = rt.bundle(probeSpec(['/bin/true'], (s) => { s.linux!.namespaces = s.linux!.namespaces?.filter((n) => n.type !== 'mount') ?? []; }));
      const refused = rt.run(['run', '--bundle', masked.dir, 'no-mnt-ns-masked']);
      assert.equal(refused.status, 1);
      assert.match(refused.stderr, /^stockade: config\.json: linux\.maskedPaths: needs a mount namespace/);
      const sentry = rt.run(['--isolation', 'sentry', 'run', '--bundle', b.dir, 'no-mnt-ns-sentry']);
      assert.equal(sentry.status, 1);
      assert.match(sentry.stderr, /^stockade: config\.json: linux\.namespaces: the sentry level needs a mount namespace/);
      assert.deepEqual(rt.containerDirs(), []);
    } finally {
      // runc made its mounts in the host's namespace and leaves them there: not ours to keep.
      for (const b of bundlesMade) spawnSync('umount', ['-R', '-l', b.rootfs]);
    }
  });

  test('nothing of these runs is left: no state directory of stockade\'s', () => {
    for (const id of rt.containerDirs()) rt.run(['delete', '-f', id]);
    assert.deepEqual(rt.containerDirs(), []);
    assert.ok(!existsSync(join(rt.root, 'tty-relay')));
  });
});
