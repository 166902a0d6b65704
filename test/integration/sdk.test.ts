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
  Sandbox, SandboxAbortError, SandboxClosedError, SandboxCreateError, SandboxExecError, SandboxExitError, SandboxFileError,
  SandboxOptionsError, SandboxOutOfMemoryError, SandboxTimeoutError,
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
