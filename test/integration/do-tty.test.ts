// stockade do at a terminal (issue 19, item 1): the command gets a pseudo-terminal of its own,
// relayed raw, with the window size and its changes, job control for an interactive shell, ^C to
// its foreground job, and the caller's terminal restored however it ends. Driven through a real
// pseudo-terminal on the test's side (python3's pty module).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, realpathSync } from 'node:fs';
import { Runtime, STOCKADE, integrationSkip, has, checkoutShare, probeSpec, waitFor } from './harness';
import { processesMarked } from '../helpers/run-scope';
import { vmSkip } from './vm-helpers';

const skip = integrationSkip() ?? (has('python3') ? undefined : 'python3 (for a test-side pty) is not installed');

// Runs argv on a pty of the given size, then steps: ["wait", text] until the output holds text,
// ["write", text], ["resize", rows, cols], ["sleep", s], ["kill", pid, sig], ["signal", sig] (to
// argv's process); reports the exit code, the output, and
// whether the terminal was cooked (ICANON and ECHO) before and after.
const DRIVER = `
import fcntl, json, os, pty, select, struct, sys, termios, time
spec = json.loads(sys.argv[1])
pid, fd = pty.fork()
if pid == 0:
    os.execv(spec['argv'][0], spec['argv'])
def size(r, c):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', r, c, 0, 0))
size(spec['rows'], spec['cols'])
def cooked():
    l = termios.tcgetattr(fd)[3]
    return bool(l & termios.ICANON) and bool(l & termios.ECHO)
before = cooked()
out = b''
def drain(t):
    global out
    r, _, _ = select.select([fd], [], [], t)
    if r:
        try:
            out += os.read(fd, 65536)
        except OSError:
            time.sleep(t)
def fail(why):
    try:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
    except OSError:
        pass
    print(json.dumps({'error': why, 'out': out.decode(errors='replace')}))
    sys.exit(0)
for step in spec['steps']:
    if step[0] == 'wait':
        end = time.time() + spec['wait']
        while step[1].encode() not in out:
            if time.time() > end:
                fail('never saw %r' % step[1])
            drain(0.05)
    elif step[0] == 'write':
        os.write(fd, step[1].encode())
    elif step[0] == 'resize':
        size(step[1], step[2])
    elif step[0] == 'sleep':
        end = time.time() + step[1]
        while time.time() < end:
            drain(0.05)
    elif step[0] == 'kill':
        os.kill(step[1], step[2])
    elif step[0] == 'signal':
        os.kill(pid, step[1])
end = time.time() + spec['wait']
while True:
    drain(0.05)
    w, st = os.waitpid(pid, os.WNOHANG)
    if w == pid:
        break
    if time.time() > end:
        fail('still running')
drain(0.1)
print(json.dumps({'code': os.waitstatus_to_exitcode(st), 'out': out.decode(errors='replace'), 'before': before, 'after': cooked()}))
`;

interface Report { code?: number; out: string; before?: boolean; after?: boolean; error?: string }

describe('stockade do at a terminal', { skip }, () => {
  let rt: Runtime;
  before(() => {
    rt = new Runtime();
    // Made first: a root that does not exist yet goes cold, and these run through the planner by default.
    mkdirSync(rt.root, { mode: 0o700 });
  });
  after(() => rt.cleanup());

  const onPty = (args: readonly string[], steps: unknown[], rows = 33, cols = 101, env: Readonly<Record<string, string>> = {}): Report =>
    onPtyRun(['do', ...checkoutShare(), ...args], steps, rows, cols, env);
  /** Any stockade command line on the test's pty. */
  const onPtyRun = (args: readonly string[], steps: unknown[], rows = 33, cols = 101, env: Readonly<Record<string, string>> = {}): Report => {
    // A VM boots first (seconds under TCG, more on a loaded host): the first wait allows for it.
    const wait = args.includes('vm') ? 120 : 20;
    const spec = { argv: [STOCKADE, '--root', rt.root, ...args], rows, cols, steps, wait };
    const r = spawnSync('python3', ['-c', DRIVER, JSON.stringify(spec)], { encoding: 'utf8', timeout: wait * 3 * 1000, env: { ...process.env, ...env } });
    const report = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Report;
    assert.equal(report.error, undefined, `${report.error ?? ''}: ${report.out} ${r.stderr}`);
    return report;
  };

  for (const level of ['namespaces', 'sentry', 'vm'] as const) {
    const levelSkip = level === 'vm' ? vmSkip() : undefined;
    test(`${level}: a terminal of its own, its size and its changes; the caller's terminal restored`, { skip: levelSkip }, () => {
      const r = onPty(['--isolation', level, '--', 'sh', '-c', 'tty; stty size; echo ready; read x; stty size; exit 3'],
        [['wait', 'ready'], ['resize', 20, 70], ['sleep', 0.5], ['write', 'go\r']]);
      assert.equal(r.code, 3, r.out);
      // Node's raw mode keeps the caller's ONLCR: the container's \r\n arrives as \r\r\n, as with run -t.
      assert.match(r.out, /^\/dev\/pts\/\d+\r+\n33 101\r+\nready\r+\n/);
      assert.match(r.out, /20 70\r+\n$/);
      assert.deepEqual([r.before, r.after], [true, true]);
    });

    test(`${level}: an interactive shell has job control; ^C and ^Z reach its foreground job, not the shell`, { skip: levelSkip ?? (has('bash') ? false : 'bash is not installed') }, () => {
      const r = onPty(['--isolation', level, '-e', 'PS1=ready> ', '--', 'bash', '--norc', '--noprofile', '-i'],
        // Each job says it runs (a sum the echoed command line does not hold) before ^C or ^Z is
        // typed: the job has the terminal then; a time to wait instead was too short under TCG.
        [['wait', 'ready> '], ['write', 'bash -c \'echo up-$((20+10)); exec sleep 30\'\r'], ['wait', 'up-30'], ['write', '\x03'], ['wait', 'ready> '], ['write', 'echo "status $?"\r'],
          ['wait', 'status'], ['write', 'bash -c \'echo up-$((20+11)); exec sleep 31\'\r'], ['wait', 'up-31'], ['write', '\x1a'], ['wait', 'Stopped'], ['write', 'kill -9 %1; sleep 0.5\r'], ['wait', 'Killed'], ['write', 'exit 5\r']]);
      assert.equal(r.code, 5, r.out);
      assert.match(r.out, /\[1\]\+\s+Stopped\s+bash -c .*sleep 31/, '^Z stops the foreground job');
      assert.doesNotMatch(r.out, /no job control|cannot set terminal process group/);
      assert.match(r.out, /status 130/);
      assert.deepEqual([r.before, r.after], [true, true]);
    });

    test(`${level}: killed by a signal, the command gives 128+N and the terminal comes back cooked; -T gives none`, { skip: levelSkip }, () => {
      const r = onPty(['--isolation', level, '--', 'sh', '-c', 'echo up; kill -KILL $$'], [['wait', 'up']]);
      assert.equal(r.code, 137, r.out);
      assert.deepEqual([r.before, r.after], [true, true]);
      const t = onPty(['--isolation', level, '-T', '--', 'sh', '-c', 'tty || true'], []);
      assert.match(t.out, /not a tty/);
    });

    // Typed before do made the caller's terminal raw (script(1) with stdin at its end does this at
    // once): the line reaches the command and the end of file ends its read, where raw mode had
    // turned the pending end of file into a NUL byte ("^@" echoed, cat waiting on). The relay is
    // run.ts's at every level; vm's boot adds nothing to it.
    if (level !== 'vm') test(`${level}: a line and an end of file typed before the relay started reach the command as typed`, () => {
      const r = onPty(['--isolation', level, '--', 'sh', '-c', 'cat; echo "ended $?"'], [['write', 'early line\n\x04']]);
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /early line\r+\n[^]*ended 0/);
      assert.doesNotMatch(r.out, /\^@|\0/);
    });
  }

  // Through the planner (docs/design/planner.md): the planner holds no terminal, so the pty master
  // goes to the C front, which relays it. Forced on here, whatever the suite's pass.
  describe('through the planner', () => {
    const ON = { STOCKADE_PLANNER: 'on' };
    /** The planner serving this root (a mkdtemp path, this run's alone), started by a first call. */
    const planner = (): number => {
      assert.equal(rt.run(['do', '--', 'true'], { env: ON }).status, 0);
      const real = realpathSync(rt.root);
      const pids = processesMarked(real).filter((p) => p.state !== 'Z' && p.cmdline.includes('stockade-planner')).map((p) => p.pid)
        .filter((pid) => readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`STOCKADE_PLANNER_SERVE=${real}`));
      assert.equal(pids.length, 1, 'one planner serves the root');
      return pids[0] ?? 0;
    };

    test('the terminal is relayed by the front: served without a Node of its own, same as cold', () => {
      planner();
      // A Node started for the call would fail at once on this NODE_OPTIONS; the planner never reads it.
      const noNode = { ...ON, NODE_OPTIONS: '--require=/nonexistent/a-cold-node-fails-here' };
      const steps = [['wait', 'ready'], ['resize', 20, 70], ['sleep', 0.5], ['write', 'go\r']];
      const args = ['--', 'sh', '-c', 'tty; stty size; echo ready; read x; echo "got $x"; stty size; exit 3'];
      const warm = onPty(args, steps, 33, 101, noNode);
      const cold = onPty(args, steps, 33, 101, { STOCKADE_PLANNER: 'off' });
      for (const r of [warm, cold]) {
        assert.equal(r.code, 3, r.out);
        assert.match(r.out, /^\/dev\/pts\/\d+\r+\n33 101\r+\nready\r+\n/);
        assert.match(r.out, /got go\r+\n20 70\r+\n$/);
        assert.deepEqual([r.before, r.after], [true, true]);
      }
      assert.equal(warm.out.replace(/pts\/\d+/, 'pts/N'), cold.out.replace(/pts\/\d+/, 'pts/N'));
      assert.deepEqual(rt.containerDirs(), []);
    });

    test('an attached run and an exec of a terminal process, with no console socket, are relayed by the front too', () => {
      planner();
      const noNode = { ...ON, NODE_OPTIONS: '--require=/nonexistent/a-cold-node-fails-here' };
      const steps = [['wait', 'ready'], ['write', 'go\r']];
      const script = (code: number): string => `tty; echo ready; read x; echo "got $x"; exit ${code}`;
      const b = rt.bundle(probeSpec(['/bin/sh', '-c', script(4)], (s) => { s.process!.terminal = true; }));
      const run = onPtyRun(['run', '-b', b.dir, 'tty-run'], steps, 33, 101, noNode);
      assert.equal(run.code, 4, run.out);
      assert.match(run.out, /\/dev\/pts\/\d+\r+\nready\r+\n[^]*got go\r+\n$/);
      assert.deepEqual([run.before, run.after], [true, true]);
      const sleeper = rt.bundle(probeSpec(['/bin/probe', 'sleep', '100']));
      assert.equal(rt.run(['run', '-d', '-b', sleeper.dir, 'tty-exec'], { env: ON }).status, 0);
      try {
        const exec = onPtyRun(['exec', '-t', 'tty-exec', '/bin/sh', '-c', script(5)], steps, 33, 101, noNode);
        assert.equal(exec.code, 5, exec.out);
        assert.match(exec.out, /\/dev\/pts\/\d+\r+\nready\r+\n[^]*got go\r+\n$/);
        assert.deepEqual([exec.before, exec.after], [true, true]);
      } finally {
        rt.run(['delete', '--force', 'tty-exec']);
      }
      assert.deepEqual(rt.containerDirs(), []);
    });

    test('the planner killed mid-do: the front goes on relaying and passing signals, deletes, and gives the terminal back', () => {
      const pid = planner();
      const r = onPty(['--', 'sh', '-c', 'trap "echo got-term; exit 9" TERM; echo ready; read x; echo "got $x"; sleep 30 & wait'],
        [['wait', 'ready'], ['kill', pid, 9], ['sleep', 0.3], ['write', 'go\r'], ['wait', 'got go'], ['signal', 15]], 33, 101, ON);
      assert.equal(r.code, 9, r.out);
      assert.match(r.out, /got-term/, 'SIGTERM to the front reached the command after the planner was gone');
      assert.deepEqual([r.before, r.after], [true, true]);
      assert.deepEqual(rt.containerDirs(), []);
    });

    test('the planner killed, then the front: the workload does not run on', async () => {
      const pid = planner();
      const marker = `77.${process.pid}${Date.now() % 1000}`;
      const r = onPty(['--', 'sh', '-c', `echo ready; exec sleep ${marker}`], [['wait', 'ready'], ['kill', pid, 9], ['sleep', 0.3], ['signal', 9]], 33, 101, ON);
      assert.equal(r.code, -9, r.out);
      // Tied to the front (stockade-init's parent): its death takes the container along.
      await waitFor(() => processesMarked(marker).length === 0, 10_000);
      // What the killed front could not delete, the next call's sweep does.
      assert.equal(rt.run(['list'], { env: ON }).status, 0);
      assert.deepEqual(rt.containerDirs(), []);
    });
  });
});
