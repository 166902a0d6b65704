// Issue 22, finding 4: the command ran as pid 1 of its pid namespace with no init in front, so
// the kernel dropped Ctrl-C, SIGTERM and SIGHUP for a program without handlers: `sleep` ignored
// all three and SIGTERM ended `do` with status 0. With an init in front, signals reach the command
// as they would outside, orphans are reaped, and the status is the command's (128+N for signal N).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Runtime, STOCKADE, integrationSkip, has, waitFor, checkoutShare } from '../integration/harness';
import { runProcesses } from '../helpers/run-scope';

const skip = integrationSkip();

/** The container's own `sleep ARG` (not the stockade command line that names it too). */
// This run's (another run on the host sleeps the same durations).
const sleeping = (arg: string): boolean => runProcesses(`sleep ${arg}`).some((p) => p.cmdline.startsWith('sleep '));

// A terminal of the test's own: python3's pty module runs stockade on a pseudo-terminal, waits for
// the command to run, types ^C and reports how stockade ended.
const PTY_DRIVER = `
import json, os, pty, select, sys, time
marker, argv = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
def running():
    for p in os.listdir('/proc'):
        if p.isdigit():
            try:
                if open('/proc/%s/cmdline' % p, 'rb').read().replace(b'\\0', b' ').decode().startswith(marker):
                    return True
            except OSError:
                pass
    return False
out = b''
def drain(t):
    global out
    r, _, _ = select.select([fd], [], [], t)
    if r:
        try:
            out += os.read(fd, 4096)
        except OSError:
            time.sleep(t)
end = time.time() + 20
while not running():
    if time.time() > end:
        print(json.dumps({'error': 'the command never ran', 'out': out.decode(errors='replace')}))
        sys.exit(0)
    drain(0.05)
drain(0.3)
os.write(fd, b'\\x03')
end = time.time() + 10
while time.time() < end:
    drain(0.1)
    w, st = os.waitpid(pid, os.WNOHANG)
    if w == pid:
        print(json.dumps({'code': os.waitstatus_to_exitcode(st), 'out': out.decode(errors='replace')}))
        sys.exit(0)
os.kill(pid, 9)
os.waitpid(pid, 0)
print(json.dumps({'error': 'still running 10 s after ^C', 'out': out.decode(errors='replace')}))
`;

describe('do: an init in front of the command (issue 22, finding 4)', { skip }, () => {
  let rt: Runtime;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  for (const level of ['namespaces', 'sentry'] as const) {
    test(`${level}: ^C at a terminal stops sleep, status 130`, { skip: has('python3') ? false : 'python3 (for a test-side pty) is not installed' }, () => {
      const marker = `sleep 27.${level === 'sentry' ? 1 : 2}`;
      const r = spawnSync('python3', ['-c', PTY_DRIVER, marker, STOCKADE, '--root', rt.root, 'do', ...checkoutShare(), '--isolation', level, '--', ...marker.split(' ')], { encoding: 'utf8', timeout: 40_000 });
      const report = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { code?: number; error?: string; out?: string };
      assert.equal(report.error, undefined, `${report.error ?? ''}: ${report.out ?? ''} ${r.stderr}`);
      assert.equal(report.code, 130);
      assert.equal(sleeping(marker.slice(6)), false);
      assert.deepEqual(rt.containerDirs(), []);
    });

    for (const [signal, code] of [['SIGTERM', 143], ['SIGINT', 130], ['SIGHUP', 129]] as const) {
      test(`${level}: ${signal} from kill stops sleep, status ${code}`, async () => {
        const arg = `31.${code}${level === 'sentry' ? 1 : 2}`;
        const child = rt.spawn(['do', '--isolation', level, '--', 'sleep', arg]);
        const exited = new Promise<number | null>((r) => child.once('exit', (c, s) => r(c ?? (s === null ? null : -1))));
        await waitFor(() => sleeping(arg), 15_000);
        child.kill(signal);
        const status = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running after 10 s'), 10_000))]);
        if (typeof status === 'string') child.kill('SIGKILL');
        assert.equal(status, code);
        await waitFor(() => !sleeping(arg), 5000);
        await waitFor(() => rt.containerDirs().length === 0, 5000);
      });
    }

    test(`${level}: a command killed by a signal gives 128+N`, () => {
      const r = rt.run(['do', '--isolation', level, '--', 'sh', '-c', 'kill -KILL $$; sleep 5; exit 3']);
      assert.equal(r.status, 137, r.stderr);
      const t = rt.run(['do', '--isolation', level, '--', 'sh', '-c', 'kill -TERM $$; sleep 5; exit 3']);
      assert.equal(t.status, 143, t.stderr);
    });

    test(`${level}: orphans are reaped`, { skip: has('python3') ? false : 'python3 is not installed' }, () => {
      // python3 never waits for a child it did not start: an orphan reparented to it would stay a zombie.
      const script = [
        'import os, time',
        'os.system("sleep 0.2 &")',
        'time.sleep(1.5)',
        'z = [p for p in os.listdir("/proc") if p.isdigit() and open("/proc/%s/stat" % p).read().rsplit(")", 1)[1].split()[0] == "Z"]',
        'print("zombies", len(z))',
      ].join('\n');
      const r = rt.run(['do', '--isolation', level, '--', 'python3', '-c', script]);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'zombies 0');
    });
  }
});
