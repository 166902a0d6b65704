// stockade do: a host command in a sandbox, the host's root read-only, writes kept in memory.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, integrationSkip, runProcesses, waitFor, checkoutShare } from './harness';

const skip = integrationSkip();

describe('stockade do', { skip }, () => {
  let rt: Runtime;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  test('passes the exit status and stdio through', () => {
    const r = rt.run(['do', '--', 'sh', '-c', 'read x; echo "out $x"; echo err >&2; exit 7'], { input: 'in\n' });
    assert.equal(r.status, 7);
    assert.equal(r.stdout, 'out in\n');
    assert.equal(r.stderr, 'err\n');
    assert.deepEqual(rt.containerDirs(), []);
  });

  test('while the command runs, do becomes stockade-light\'s wait: signals passed on, the exit status its own, nothing left', async () => {
    const child = rt.spawn(['do', '--isolation', 'sentry', '--', 'sh', '-c', 'trap "echo got TERM; exit 12" TERM; echo ready; while :; do sleep 0.1; done']);
    let out = '';
    child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    assert.ok(child.pid !== undefined);
    await waitFor(() => out.includes('ready'), 10_000);
    await waitFor(() => readlinkSync(`/proc/${child.pid}/exe`).endsWith('/stockade-light'), 5000);
    // What waits for the container now is no Node process (its memory budget: bench/idle-pages.ts).
    child.kill('SIGTERM');
    assert.equal(await exited, 12);
    assert.match(out, /got TERM/);
    assert.deepEqual(rt.containerDirs(), []);
    // do's container id starts with its pid, and the sentry's command line names it.
    assert.deepEqual(runProcesses(`"id":"do-${child.pid}-`), []);
  });

  test('with STOCKADE_LIGHT=off do waits in Node, and passes the output and exit status on', async () => {
    const child = rt.spawn(['do', '--isolation', 'sentry', '--', 'sh', '-c', 'echo ready; sleep 1; ls -d /proc/self/fd; exit 7'], { STOCKADE_LIGHT: 'off' });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    const exited = new Promise<number | null>((r) => child.once('exit', r));
    const pid = child.pid;
    assert.ok(pid !== undefined);
    await waitFor(() => out.includes('ready'), 10_000);
    // bin/stockade is a shell script that execs the light entry, which execs Node, and Node stays.
    assert.match(realpathSync(`/proc/${pid}/exe`), /\/node$/);
    assert.equal(await exited, 7);
    assert.equal(out, 'ready\n/proc/self/fd\n');
    assert.deepEqual(rt.containerDirs(), []);
  });

  test('the host root is read-only, /tmp is writable and private', () => {
    const marker = `/tmp/stockade-do-${process.pid}`;
    const r = rt.run(['do', '--', 'sh', '-c', `touch /etc/stockade-x 2>/dev/null && echo wrote-etc; touch /usr/stockade-x 2>/dev/null && echo wrote-usr; echo ok > ${marker} && cat ${marker}`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'ok\n');
    assert.equal(existsSync('/etc/stockade-x'), false);
    assert.equal(existsSync(marker), false, 'the container /tmp is not the host /tmp');
  });

  test('--rw keeps writes in memory, where the command\'s user may write', () => {
    // Started by root, the command is nobody: a directory of nobody's on the host takes its
    // writes (in memory), root's /etc does not; --user 0 writes there too, in memory.
    const own = `/var/lib/stockade-do-rw-${process.pid}`;
    mkdirSync(own, { mode: 0o755 });
    chownSync(own, 65534, 65534);
    try {
      const r = rt.run(['do', '--rw', '--', 'sh', '-c', `echo data > ${own}/f && cat ${own}/f; echo x > /etc/stockade-rw 2>/dev/null || echo no-etc`]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'data\nno-etc\n');
      assert.deepEqual(readdirSync(own), []);
      const root = rt.run(['do', '--rw', '--user', '0', '--', 'sh', '-c', 'echo data > /etc/stockade-rw && cat /etc/stockade-rw']);
      assert.equal(root.status, 0, root.stderr);
      assert.equal(root.stdout, 'data\n');
      assert.equal(existsSync('/etc/stockade-rw'), false);
    } finally {
      rmSync(own, { recursive: true, force: true });
      rmSync('/etc/stockade-rw', { force: true });
    }
  });

  test('own namespaces; --network none has only loopback, --network host shares the host', () => {
    const r = rt.run(['do', '--', 'sh', '-c', 'echo $$; readlink /proc/self/ns/net /proc/self/ns/mnt /proc/self/ns/pid; ls /sys/class/net']);
    assert.equal(r.status, 0, r.stderr);
    const [pid, net, mnt, , ifaces] = r.stdout.trim().split('\n');
    // Its own pid namespace, where pid 1 is the init in front of the command.
    assert.equal(pid, '2');
    assert.notEqual(net, readlinkSync('/proc/self/ns/net'));
    assert.notEqual(mnt, readlinkSync('/proc/self/ns/mnt'));
    assert.equal(ifaces, 'lo');
    const h = rt.run(['do', '--network', 'host', '--', 'readlink', '/proc/self/ns/net']);
    assert.equal(h.status, 0, h.stderr);
    assert.equal(h.stdout.trim(), readlinkSync('/proc/self/ns/net'));
  });

  test('--env and --cwd; the host environment is passed on', () => {
    const r = rt.run(['do', '--env', 'FOO=bar', '-e', 'PATH=/usr/bin:/bin', '--cwd', '/usr', '--', 'sh', '-c', 'echo "$FOO $PATH"; pwd']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'bar /usr/bin:/bin\n/usr\n');
  });

  test('no capabilities as nobody, few as root (--user 0), and no_new_privs', () => {
    const status = 'grep -E "^(Uid|CapEff|NoNewPrivs)" /proc/self/status';
    const capEff = (out: string): bigint => BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(out)?.[1] ?? 'ff'}`);
    const r = rt.run(['do', '--', 'sh', '-c', status]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Uid:\s+65534\s/);
    assert.equal(capEff(r.stdout), 0n);
    assert.match(r.stdout, /NoNewPrivs:\s*1/);
    const root = rt.run(['do', '--user', '0', '--', 'sh', '-c', status]);
    assert.equal(root.status, 0, root.stderr);
    // CAP_KILL (5), CAP_NET_BIND_SERVICE (10), CAP_AUDIT_WRITE (29) only: no CAP_SYS_ADMIN, no CAP_DAC_OVERRIDE.
    assert.equal(capEff(root.stdout), (1n << 5n) | (1n << 10n) | (1n << 29n));
    assert.match(root.stdout, /NoNewPrivs:\s*1/);
  });

  test('a missing command is a one-line error', () => {
    const r = rt.run(['do', '--', 'no-such-command-xyz']);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /"no-such-command-xyz": executable file not found in \$PATH/);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1);
    assert.deepEqual(rt.containerDirs(), []);
  });

  test('no host state is visible: /run is empty, the runtime root is hidden', () => {
    const r = rt.run(['do', '--', 'sh', '-c', `ls -A /run; ls ${rt.root} 2>&1 | head -1`]);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /do-/);
  });

  test('a working directory below the fresh /tmp binds nothing: --cwd naming it is refused in one line, the caller\'s own starts the command in /', () => {
    const dir = mkdtempSync(join(tmpdir(), 'stockade-do-cwd-'));
    try {
      writeFileSync(join(dir, 'f'), 'host file\n');
      const r = rt.run(['do', '--cwd', dir, '--', 'sh', '-c', 'pwd; cat f'], { cwd: '/' });
      assert.notEqual(r.status, 0);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, new RegExp(`--cwd ${dir} is not in the sandbox`));
      assert.equal(r.stderr.trimEnd().split('\n').length, 1);
      // Started there without --cwd: the command runs in /, and the host's file is not in its view.
      const own = rt.run(['do', '--', 'sh', '-c', `pwd; cat ${dir}/f || echo unseen`], { cwd: dir });
      assert.equal(own.status, 0, own.stderr);
      assert.equal(own.stdout, '/\nunseen\n');
      // /tmp itself is the sandbox's own, empty /tmp.
      const t = rt.run(['do', '--', 'sh', '-c', 'pwd; ls -A'], { cwd: '/tmp' });
      assert.equal(t.status, 0, t.stderr);
      // Empty, but for the checkout the tests share when it lies below /tmp (checkoutShare).
      const shared = checkoutShare()[1] ?? '';
      assert.equal(t.stdout, `/tmp\n${shared.startsWith('/tmp/') ? `${shared.slice(5).split('/')[0] ?? ''}\n` : ''}`);
      assert.deepEqual(rt.containerDirs(), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
