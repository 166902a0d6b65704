// The SDK's whole surface at namespaces and sentry, in this process, as a program uses it:
// create from an image and from the host's root, exec (argv and sh -c, stdin, env, cwd, exit
// status, streaming), spawn with a stdin of its own, files, timeouts, abort, a memory limit
// filled, bad options, and disposal that leaves nothing. The 50-at-once case is in
// sdk-concurrency.test.ts; the vm level's lean subset in sdk-vm.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  DEFAULT_MAX_BUFFER, Sandbox, SandboxAbortError, SandboxClosedError, SandboxCreateError, SandboxExecError, SandboxExitError, SandboxFileError,
  SandboxOptionsError, SandboxOutOfMemoryError, SandboxOutputLimitError, SandboxTimeoutError,
} from '../../src/sdk';
import { integrationSkip, waitFor } from './harness';
import { cgroupsOf, leftBehind, nothingLeft, sdkDir, sdkImage } from './sdk-helpers';

const skip = integrationSkip();

for (const isolation of ['namespaces', 'sentry'] as const) {
  describe(`sdk at ${isolation}`, { skip }, () => {
    let dir: string;
    let root: string;
    let image: string;
    let sb: Sandbox;
    before(async () => {
      ({ dir, root } = sdkDir());
      image = await sdkImage(dir);
      sb = await Sandbox.create({ image, isolation, root, env: { FROM_CREATE: 'yes' }, memoryMb: 256, pids: 200 });
    });
    after(async () => {
      await sb?.kill();
      rmSync(dir, { recursive: true, force: true });
    });

    test('exec: argv and sh -c, exit status, stdout and stderr, the image config and env applied', async () => {
      assert.equal(sb.isolation, isolation);
      const r = await sb.exec('echo "$GREETING $FROM_CREATE $EXTRA"; pwd; id -u; echo oops >&2; exit 7', { env: { EXTRA: 'x1' } });
      assert.deepEqual(r, { exitCode: 7, stdout: 'from-image yes x1\n/work\n0\n', stderr: 'oops\n' });
      assert.deepEqual(await sb.exec(['echo', 'a b', '$HOME'], { cwd: '/tmp' }), { exitCode: 0, stdout: 'a b $HOME\n', stderr: '' });
      assert.equal((await sb.exec('pwd', { cwd: '/tmp' })).stdout, '/tmp\n');
      // A signal's death reads as a shell shows it.
      assert.equal((await sb.exec('kill -TERM $$')).exitCode, 128 + 15);
    });

    test('exec: stdin as a string, as bytes, and as an async iterable', async () => {
      assert.equal((await sb.exec(['cat'], { stdin: 'text in' })).stdout, 'text in');
      const bytes = Uint8Array.from([0, 1, 2, 250, 255]);
      assert.equal((await sb.exec('od -An -tu1', { stdin: bytes })).stdout.trim().split(/\s+/).join(' '), '0 1 2 250 255');
      async function* lines(): AsyncIterable<string> {
        for (let i = 0; i < 3; i++) yield `line ${i}\n`;
      }
      assert.equal((await sb.exec(['wc', '-l'], { stdin: lines() })).stdout.trim(), '3');
      // No stdin: the command reads its end at once.
      assert.equal((await sb.exec(['cat'])).stdout, '');
    });

    test('exec streams stdout and stderr as they come, before the command ends', async () => {
      const seen: { stream: string; text: string; at: number }[] = [];
      const t0 = Date.now();
      const r = await sb.exec('echo first; echo warn >&2; sleep 1; echo second', {
        onStdout: (text) => seen.push({ stream: 'out', text, at: Date.now() - t0 }),
        onStderr: (text) => seen.push({ stream: 'err', text, at: Date.now() - t0 }),
      });
      const done = Date.now() - t0;
      assert.equal(r.stdout, 'first\nsecond\n');
      assert.equal(seen.map((s) => s.text).join('').replace(/\n/g, ' ').split(' ').filter(Boolean).sort().join(' '), 'first second warn');
      const first = seen.find((s) => s.text.includes('first'));
      const warn = seen.find((s) => s.stream === 'err');
      assert.ok(first !== undefined && warn !== undefined);
      // Each came a second before the end: as it was written, not collected at the exit.
      assert.ok(first.at <= done - 700, `first came at ${first.at} ms of ${done}`);
      assert.ok(warn.at <= done - 700, `warn came at ${warn.at} ms of ${done}`);
    });

    test('spawn: a long-running process with its own stdin, read as an async iterable', async () => {
      const p = await sb.spawn('while read line; do echo "got $line"; done; echo bye');
      const out = p.stdout[Symbol.asyncIterator]();
      p.stdin.write('one\n');
      assert.equal(String((await out.next()).value), 'got one\n');
      p.stdin.write('two\n');
      assert.equal(String((await out.next()).value), 'got two\n');
      p.stdin.end();
      let rest = '';
      for (let c = await out.next(); c.done !== true; c = await out.next()) rest += String(c.value);
      assert.equal(rest, 'bye\n');
      assert.deepEqual(await p.wait(), { exitCode: 0 });
      // kill(): a process that would run for good ends at once, with SIGKILL's status.
      const q = await sb.spawn(['sleep', '1000']);
      q.kill();
      assert.deepEqual(await q.wait(), { exitCode: 137 });
    });

    test('files: write, read, list, remove; binary kept; errors name the path', async () => {
      const bin = Buffer.from([0, 10, 13, 255, 0, 1]);
      await sb.files.write('/data/sub/a.bin', bin);
      await sb.files.write('/data/b.txt', 'hello\nworld');
      await sb.files.write('/data/we ird\nname', 'x');
      assert.deepEqual(await sb.files.read('/data/sub/a.bin'), bin);
      assert.equal(await sb.files.read('/data/b.txt', 'utf8'), 'hello\nworld');
      assert.deepEqual(await sb.files.list('/data'), [
        { name: 'b.txt', type: 'file' }, { name: 'sub', type: 'directory' }, { name: 'we ird\nname', type: 'file' },
      ]);
      // What a file command writes, a command sees, and the other way round.
      assert.equal((await sb.exec('cat /data/b.txt')).stdout, 'hello\nworld');
      await sb.exec('ln -s /etc/passwd /data/link && echo made > /data/made');
      assert.deepEqual((await sb.files.list('/data')).filter((e) => e.name === 'link' || e.name === 'made'), [{ name: 'link', type: 'symlink' }, { name: 'made', type: 'file' }]);
      await sb.files.remove('/data/sub');
      await sb.files.remove('/data/b.txt');
      assert.deepEqual((await sb.files.list('/data')).map((e) => e.name), ['link', 'made', 'we ird\nname']);
      await assert.rejects(sb.files.read('/data/nope'), (e: unknown) => e instanceof SandboxFileError && e.path === '/data/nope' && /^files\.read \/data\/nope: .*No such file/.test(e.message));
      await assert.rejects(sb.files.remove('/data/nope'), SandboxFileError);
      await assert.rejects(sb.files.list('/data/made'), SandboxFileError);
      await assert.rejects(sb.files.write('relative', 'x'), (e: unknown) => e instanceof SandboxOptionsError && e.option === 'path');
      await assert.rejects(sb.files.remove('/'), SandboxOptionsError);
    });

    test('a terminal: exec and spawn with tty get a pty of the size asked, follow resize, read input, end at ^D', async () => {
      const r = await sb.exec('stty size; tty; [ -t 1 ] && echo on-a-tty; echo to-stderr >&2', { tty: { rows: 33, cols: 101 } });
      assert.equal(r.exitCode, 0, r.stdout);
      // One pty for stdin, stdout and stderr: all of it is stdout, its newlines the terminal's.
      assert.match(r.stdout, /^33 101\r\n\/dev\/pts\/\d+\r\n(on-a-tty\r\n)?to-stderr\r\n$/);
      assert.equal(r.stderr, '');
      const p = await sb.spawn(['sh', '-c', 'stty size; read a; stty size; echo "got $a"'], { tty: true });
      assert.equal(p.tty, true);
      let out = '';
      p.stdout.on('data', (b: Buffer) => { out += b.toString('utf8'); });
      await waitFor(() => out.includes('24 80'), 10_000);
      p.resize(40, 120);
      p.stdin.write('hello\n');
      assert.deepEqual(await p.wait(), { exitCode: 0 });
      await waitFor(() => out.includes('got hello'), 5000);
      // The pty echoes what was typed, as a terminal does.
      assert.match(out, /^24 80\r\nhello\r\n40 120\r\ngot hello\r\n$/);
      // Ending stdin is ^D: cat reads its input to the end and exits.
      // Output written right before the exit is all there: a pty's last 100 KB, most of it still in
      // the kernel's buffers when the slave closed, came short in 4 runs of 10 (libuv's end of the
      // master's read at POLLHUP), and a spawn's last line once in CI.
      for (let i = 0; i < 4; i++) {
        const big = await sb.exec(`head -c 100000 /dev/zero | tr '\\0' x; echo END${i}`, { tty: true });
        assert.equal(big.stdout.length, 100_000 + 'ENDn\r\n'.length, `run ${i}: ends ${JSON.stringify(big.stdout.slice(-12))}`);
        assert.ok(big.stdout.endsWith(`xEND${i}\r\n`));
      }
      const c = await sb.exec(['cat'], { tty: true, stdin: 'typed\n', timeoutMs: 10_000 });
      assert.equal(c.exitCode, 0);
      assert.match(c.stdout, /typed\r\n/);
      const plain = await sb.spawn(['true']);
      assert.equal(plain.tty, false);
      assert.throws(() => plain.resize(10, 10), (e: unknown) => e instanceof SandboxOptionsError && e.option === 'tty');
      await plain.wait();
      await assert.rejects(sb.exec('true', { tty: { rows: 0, cols: 80 } }), (e: unknown) => e instanceof SandboxOptionsError && e.option === 'tty.rows');
    });

    test('per-exec user: a name, uid:gid and a number, HOME following, the identity applied; a wrong one refused in one line', async () => {
      assert.equal((await sb.exec('id -u; id -g; echo $HOME', { user: 'nobody' })).stdout, '65534\n65534\n/nonexistent\n');
      assert.equal((await sb.exec('id -u; id -g', { user: '123:45' })).stdout, '123\n45\n');
      assert.equal((await sb.exec('id -u', { user: 4000 })).stdout, '4000\n');
      assert.equal((await sb.exec('id -un; id -gn', { user: 'nobody:root' })).stdout, 'nobody\nroot\n');
      // Root's 0700 home, readable by the image's user (root), is not by nobody.
      assert.equal((await sb.exec('ls /root >/dev/null && echo read')).stdout, 'read\n');
      const denied = await sb.exec('ls /root', { user: 'nobody' });
      assert.notEqual(denied.exitCode, 0);
      assert.match(denied.stderr, /Permission denied/);
      await assert.rejects(sb.exec('true', { user: 'ghost' }), (e: unknown) => e instanceof SandboxOptionsError && e.option === 'user' && /"ghost" is not in the image's \/etc\/passwd/.test(e.message));
      await assert.rejects(sb.exec('true', { user: 'a b' }), (e: unknown) => e instanceof SandboxOptionsError && e.option === 'user' && !e.message.includes('\n'));
    });

    test('output past maxBuffer kills the command and rejects with what came up to the bound; 16 MiB by default', async () => {
      await assert.rejects(sb.exec('echo start; exec yes', { maxBuffer: 4096 }), (e: unknown) => {
        assert.ok(e instanceof SandboxOutputLimitError, String(e));
        assert.equal(e.code, 'SANDBOX_OUTPUT');
        assert.equal(e.stream, 'stdout');
        assert.equal(e.maxBuffer, 4096);
        assert.equal(e.stdout.length, 4096);
        assert.ok(e.stdout.startsWith('start\ny\n'));
        return true;
      });
      await assert.rejects(sb.exec('exec yes >&2', { maxBuffer: 1000 }), (e: unknown) => e instanceof SandboxOutputLimitError && e.stream === 'stderr' && e.stderr.length === 1000);
      // The killed writers are gone.
      assert.equal((await sb.exec("cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^yes$'")).stdout, '0\n');
      assert.equal((await sb.exec('head -c 4096 /dev/zero', { maxBuffer: 4096 })).stdout.length, 4096, 'up to the bound is kept');
      assert.equal(DEFAULT_MAX_BUFFER, 16 * 1024 * 1024);
      await assert.rejects(sb.exec(`head -c ${DEFAULT_MAX_BUFFER + 1} /dev/zero`), (e: unknown) => e instanceof SandboxOutputLimitError && e.maxBuffer === DEFAULT_MAX_BUFFER);
      assert.equal((await sb.exec('head -c 100000 /dev/zero', { maxBuffer: Infinity })).stdout.length, 100000);
      await assert.rejects(sb.exec('true', { maxBuffer: -1 }), (e: unknown) => e instanceof SandboxOptionsError && e.option === 'maxBuffer');
    });

    test('a timed-out exec is killed with everything it started, and reported with what it wrote', async () => {
      const t0 = Date.now();
      await assert.rejects(sb.exec('echo started; sleep 1000 & sleep 1000; echo never', { timeoutMs: 500 }), (e: unknown) => {
        assert.ok(e instanceof SandboxTimeoutError, String(e));
        assert.equal(e.timeoutMs, 500);
        assert.equal(e.stdout, 'started\n');
        assert.match(e.message, /ran past its timeoutMs \(500 ms\) and was killed/);
        return true;
      });
      assert.ok(Date.now() - t0 < 20_000);
      // Both sleeps are gone: no process of the sandbox is named sleep (a count of all its processes
      // also counted one still exiting from the test before, in CI).
      assert.equal((await sb.exec("cat /proc/[0-9]*/comm 2>/dev/null | grep -c '^sleep$'")).stdout, '0\n');
      assert.equal((await sb.exec('echo still here')).stdout, 'still here\n', 'the sandbox lives on');
    });

    test('abort: the command is killed when its signal fires, and not started when it had', async () => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(new Error('enough')), 300);
      await assert.rejects(sb.exec(['sleep', '1000'], { signal: ac.signal }), SandboxAbortError);
      await assert.rejects(sb.exec(['true'], { signal: ac.signal }), /not started: its AbortSignal had fired/);
      // Fired while the command was being started: killed once it runs, not left running (its
      // timeoutMs only bounds the test should it be).
      const late = new AbortController();
      const started = sb.exec(['sleep', '1000'], { signal: late.signal, timeoutMs: 30_000 });
      late.abort(new Error('meanwhile'));
      await assert.rejects(started, (e: unknown) => e instanceof SandboxAbortError && (e.cause as Error).message === 'meanwhile');
    });

    test('check: a non-zero exit rejects with SandboxExitError carrying the result; a missing program is SandboxExecError', async () => {
      await assert.rejects(sb.exec('echo out; exit 3', { check: true }), (e: unknown) => e instanceof SandboxExitError && e.exitCode === 3 && e.result.stdout === 'out\n');
      assert.equal((await sb.exec('true', { check: true })).exitCode, 0);
      await assert.rejects(sb.exec(['/no/such/program']), (e: unknown) => e instanceof SandboxExecError && /\/no\/such\/program/.test(e.message));
    });

    test('bad options: a one-line error naming the option, nothing made', async () => {
      const cases: [Parameters<typeof Sandbox.create>[0], RegExp][] = [
        [{} as never, /^image: give exactly one of image/],
        [{ image, hostRoot: true, root }, /^image: give exactly one/],
        [{ image, root, isolation: 'kvm' as never }, /^isolation: must be namespaces, sentry or vm, not "kvm"/],
        [{ image, root, memoryMb: 1 }, /^memoryMb: must be a whole number from 32/],
        [{ image, root, cpus: 0 }, /^cpus: must be a number from 0\.01/],
        [{ image, root, network: { allow: [] } }, /^network: must be 'none' or \{ allow/],
        [{ image, root, isolation: 'namespaces', network: { allow: ['10.0.0.1'] } }, /^network: an allow list needs isolation sentry/],
        [{ image, root, env: { 'A=B': 'x' } }, /^env: "A=B" is not a variable name/],
      ];
      for (const [opts, msg] of cases) {
        await assert.rejects(Sandbox.create(opts), (e: unknown) => e instanceof SandboxOptionsError && msg.test(e.message) && !e.message.includes('\n'), msg.source);
      }
      await assert.rejects(sb.exec(''), SandboxOptionsError);
      await assert.rejects(sb.exec(['ls'], { cwd: 'tmp' }), /^SandboxOptionsError: cwd: must be an absolute path/);
      // An image that is not there: refused, and no state, overlay or process of it left (the
      // shared sandbox's own are there before and after).
      const was = leftBehind(root).sort();
      await assert.rejects(Sandbox.create({ image: `oci:${join(dir, 'missing')}`, root, isolation }), (e: unknown) => e instanceof SandboxCreateError && !e.message.includes('\n'));
      assert.deepEqual(leftBehind(root).sort(), was);
    });

    test('a process that fills the memory limit is reported, not hung; the sandbox goes on', async () => {
      await using small = await Sandbox.create({ image, isolation, root, memoryMb: 48 });
      const t0 = Date.now();
      // The shell doubles a string until the OOM killer takes it.
      await assert.rejects(small.exec('x=0123456789abcdef; while :; do x="$x$x"; done'), (e: unknown) => {
        assert.ok(e instanceof SandboxOutOfMemoryError, String(e));
        assert.equal(e.result.exitCode, 137);
        assert.equal(e.memoryMb, 48);
        return true;
      });
      assert.ok(Date.now() - t0 < 60_000);
      const after = await small.exec('echo after');
      assert.deepEqual(after, { exitCode: 0, stdout: 'after\n', stderr: '' });
    });

    test('the host root, read-only, with a /tmp of its own; the network is loopback only', async () => {
      await using host = await Sandbox.create({ hostRoot: true, isolation, root });
      const r = await host.exec('cat /etc/hostname >/dev/null && echo read; touch /etc/stockade-sdk-probe 2>/dev/null || echo ro; echo w > /tmp/f && cat /tmp/f; id -u; ls /sys/class/net');
      assert.equal(r.stdout, `read\nro\nw\n65534\nlo\n`, r.stderr);
      // Its commands all run as its one identity (as do's): none can be chosen.
      await assert.rejects(host.exec('id', { user: 'root' }), (e: unknown) => e instanceof SandboxOptionsError && e.option === 'user' && /hostRoot/.test(e.message));
      assert.equal(existsSync('/etc/stockade-sdk-probe'), false);
      assert.deepEqual((await sb.exec('ls /sys/class/net')).stdout, 'lo\n');
    });

    test('await using disposes: the container, its cgroups, overlay, processes and state are gone; later calls are refused', async () => {
      let id = '';
      let cgroups: string[] = [];
      let kept: Sandbox | undefined;
      {
        await using s = await Sandbox.create({ image, isolation, root });
        id = s.id;
        kept = s;
        cgroups = cgroupsOf(root, id);
        assert.ok(cgroups.length > 0);
        const p = await s.spawn(['sleep', '1000']);
        void p.wait().catch(() => undefined);
        assert.ok(existsSync(join(root, id)));
      }
      assert.equal(existsSync(join(root, id)), false);
      assert.deepEqual(leftBehind(root, cgroups).filter((l) => !l.includes(sb.id) && !/^process/.test(l)), []);
      await assert.rejects(kept.exec('true'), (e: unknown) => e instanceof SandboxClosedError && /was killed/.test(e.message));
      await kept.kill();
    });

    test('a program killed outright: its sandbox dies with it, and the next create removes what it left', async () => {
      const script = `const { Sandbox } = require(${JSON.stringify(join(__dirname, '../../src/sdk'))});
        Sandbox.create({ image: ${JSON.stringify(image)}, isolation: ${JSON.stringify(isolation)}, root: ${JSON.stringify(root)} })
          .then((sb) => { process.stdout.write(sb.id); process.kill(process.pid, 'SIGKILL'); });`;
      const child = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(child.signal, 'SIGKILL', child.stderr);
      const id = child.stdout;
      assert.match(id, /^sdk-\d+-[0-9a-f]+$/);
      const cgroups = cgroupsOf(root, id);
      // Tied to its program: every process of the container is gone without anyone deleting it.
      await waitFor(() => cgroups.every((c) => !existsSync(join(c, 'cgroup.procs')) || readFileSync(join(c, 'cgroup.procs'), 'utf8').trim() === ''), 10_000);
      assert.ok(existsSync(join(root, id)), 'its state is there until the next create');
      await (await Sandbox.create({ hostRoot: true, isolation, root })).kill();
      assert.deepEqual(leftBehind(root, cgroups).filter((l) => l.includes(id) || cgroups.some((c) => l.includes(c))), []);
      assert.equal(existsSync(join(root, '.images', 'run', id)), false, 'its overlay is gone');
    });

    test("the sandbox's timeoutMs ends it, and what runs then fails with SandboxTimeoutError", async () => {
      const s = await Sandbox.create({ image, isolation, root, timeoutMs: 1500 });
      const id = s.id;
      await assert.rejects(s.exec(['sleep', '1000']), (e: unknown) => e instanceof SandboxTimeoutError && /the sandbox ran past its timeoutMs \(1500 ms\)/.test(e.message));
      await s.kill();
      assert.equal(existsSync(join(root, id)), false);
      await assert.rejects(s.exec('true'), SandboxTimeoutError);
    });

    if (isolation === 'sentry') {
      test('network: { allow } reaches what it names and nothing else', async () => {
        const servers: Server[] = [];
        const port = async (): Promise<number> => {
          const s = createServer((_, res) => res.end('served\n'));
          servers.push(s);
          await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
          return (s.address() as AddressInfo).port;
        };
        const [allowed, other] = [await port(), await port()];
        try {
          await using net = await Sandbox.create({ image, root, network: { allow: [`127.0.0.1:${allowed}`] } });
          assert.equal(net.isolation, 'sentry');
          const ok = await net.exec(['wget', '-q', '-O', '-', `http://127.0.0.1:${allowed}/`]);
          assert.equal(ok.stdout, 'served\n', ok.stderr);
          const no = await net.exec(['wget', '-q', '-O', '-', `http://127.0.0.1:${other}/`]);
          assert.notEqual(no.exitCode, 0);
          assert.equal(no.stdout, '');
        } finally {
          for (const s of servers) s.close();
        }
      });
    }

    test('after every sandbox here is killed, nothing of them is left', async () => {
      const cgroups = cgroupsOf(root, sb.id);
      await sb.kill();
      await nothingLeft(root, cgroups);
      assert.deepEqual(readdirSync(root).filter((d) => !d.startsWith('.')), []);
    });
  });
}
