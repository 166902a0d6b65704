// The sentry level through the runtime's own verbs: run, create/start/kill/delete, with a sentry process of its own, and the annotation.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, statSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { sendFd, socketpair, unixConnect } from '../../src/native/addon';
import { Runtime, integrationSkip, json, leftovers, leftoversGone, probeSpec, runProcesses, waitFor } from './harness';
import type { Spec } from '../../src/oci/spec';

const skip = integrationSkip();

/** This run's detached sentry processes serving the container of this id (its id is on their command line). */
function sentryProcesses(id: string): string[] {
  return runProcesses('stockade-sentryd').filter((p) => p.cmdline.includes(`"id":"${id}"`)).map((p) => String(p.pid));
}

/**
 * Returns once the `stockade trace` reader just started for container `id` is connected: a reader
 * is taken between two calls the sentry serves, and a call made before that is not in its stream.
 * Runs a probe exec until the trace shows its call.
 */
async function traceConnected(rt: Runtime, id: string, traced: () => string, reader?: ChildProcess): Promise<void> {
  let said = '';
  reader?.stderr?.on('data', (d: Buffer) => { said += d.toString(); });
  for (let i = 0; i < 20; i++) {
    assert.equal(reader?.exitCode ?? null, null, `the trace reader of ${id} ended: ${said}`);
    const r = rt.run(['exec', id, '/bin/sh', '-c', 'test -e /trace-ready; exit 0']);
    assert.equal(r.status, 0, r.stderr);
    try {
      await waitFor(() => traced().includes('"/trace-ready"'), 500);
      return;
    } catch { /* not connected yet */ }
  }
  throw new Error(`the trace of ${id} never showed a call`);
}

describe('the sentry level through create and start', { skip }, () => {
  let rt: Runtime;
  before(() => { rt = new Runtime(); });
  after(() => rt.cleanup());

  test('run --isolation sentry: the container\'s syscalls are served, its status passed on', () => {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'echo in > /tmp/f && cat /tmp/f && ls /bin/sh && exit 5'], (s) => {
      s.mounts = [...(s.mounts ?? []), { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid'] }];
    }));
    const r = rt.run(['--isolation', 'sentry', 'run', '--bundle', b.dir, 'sentry-run']);
    assert.equal(r.status, 5, r.stderr);
    assert.equal(r.stdout, 'in\n/bin/sh\n');
    assert.deepEqual(leftovers(rt, b), []);
  });

  test('with --debug the sentry says in the --log file what it served', () => {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'ls / > /dev/null']));
    const r = rt.run(['--debug', '--isolation', 'sentry', 'run', '--bundle', b.dir, 'sentry-debug']);
    assert.equal(r.status, 0, r.stderr);
    const line = rt.logLines().find((l) => l.level === 'debug' && l.msg.startsWith('sentry: sentry-debug: '));
    assert.ok(line !== undefined, 'no debug line of the sentry');
    const served = Number(/(\d+) calls served/.exec(line.msg)?.[1]);
    assert.ok(served > 3, line.msg);
  });

  test('create, start, trace, kill, delete: a sentry process serves the container and leaves with it', async () => {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'while :; do cat /etc/hostname > /dev/null; sleep 0.1; done']));
    assert.equal(rt.run(['--isolation', 'sentry', 'create', '--bundle', b.dir, 'sentry-cs']).status, 0);
    const state = json<{ status: string; pid: number }>(rt.run(['state', 'sentry-cs']).stdout);
    assert.equal(state.status, 'created');
    assert.equal(rt.run(['start', 'sentry-cs']).status, 0);
    // The trace reader stops at the first records: a killed container ends the stream too.
    const reader = rt.spawn(['trace', 'sentry-cs']);
    let out = '';
    reader.stdout?.on('data', (d: Buffer) => { out += d.toString(); });
    await waitFor(() => out.includes('"/etc/hostname"'), 10_000);
    assert.equal(rt.run(['kill', 'sentry-cs', 'KILL']).status, 0);
    await new Promise((r) => reader.once('exit', r));
    const st = json<{ status: string }>(rt.run(['state', 'sentry-cs']).stdout);
    assert.equal(st.status, 'stopped');
    assert.equal(rt.run(['delete', 'sentry-cs']).status, 0);
    await leftoversGone(rt, b);
  });

  test('the sentry\'s serving thread has network and IPC namespaces of its own, empty, and a seccomp filter of its own', async () => {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'sleep 100']));
    assert.equal(rt.run(['--isolation', 'sentry', 'create', '--bundle', b.dir, 'sentry-ns']).status, 0);
    assert.equal(rt.run(['start', 'sentry-ns']).status, 0);
    const host = { net: readlinkSync('/proc/self/ns/net'), ipc: readlinkSync('/proc/self/ns/ipc') };
    const walled = (): string[] => {
      const found: string[] = [];
      for (const pid of sentryProcesses('sentry-ns')) {
        for (const tid of readdirSync(`/proc/${pid}/task`)) {
          try {
            const net = readlinkSync(`/proc/${pid}/task/${tid}/ns/net`);
            const ipc = readlinkSync(`/proc/${pid}/task/${tid}/ns/ipc`);
            // And it is the thread that confined itself: its own seccomp filter (mode 2).
            const confined = /^Seccomp:\s+2$/m.test(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'));
            if (net !== host.net && ipc !== host.ipc && confined) found.push(tid);
          } catch { /* a thread that just ended */ }
        }
      }
      return found;
    };
    await waitFor(() => walled().length === 1, 10_000);
    assert.equal(rt.run(['delete', '--force', 'sentry-ns']).status, 0);
    await leftoversGone(rt, b);
  });

  test('a detached sentry leaves quietly: when its container ends, and when its init dies before start, sentry.log says only what went wrong', async () => {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'cat /etc/hostname > /dev/null; exit 3']));
    assert.equal(rt.run(['--isolation', 'sentry', 'run', '--detach', '--bundle', b.dir, 'sentry-quiet']).status, 0);
    await waitFor(() => sentryProcesses('sentry-quiet').length === 0, 10_000);
    // Node's own exit, on the confined thread, aborted with an assertion and a stack on this file.
    assert.equal(readFileSync(join(rt.root, 'sentry-quiet', 'sentry.log'), 'utf8'), '');
    assert.equal(rt.run(['delete', 'sentry-quiet']).status, 0);

    assert.equal(rt.run(['--isolation', 'sentry', 'create', '--bundle', b.dir, 'sentry-orphan']).status, 0);
    const { pid } = json<{ pid: number }>(rt.run(['state', 'sentry-orphan']).stdout);
    process.kill(pid, 'SIGKILL');
    await waitFor(() => sentryProcesses('sentry-orphan').length === 0, 10_000);
    assert.equal(readFileSync(join(rt.root, 'sentry-orphan', 'sentry.log'), 'utf8'),
      'stockade sentry: stockade-init closed the sentry socket without sending a listener\n');
    assert.equal(rt.run(['delete', 'sentry-orphan']).status, 0);
    await leftoversGone(rt, b);
  });

  test('a sentry serves on after it has idled (and given back its pages: bench/idle-pages.ts measures how many)', async () => {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'ls / > /dev/null; sleep 100']));
    assert.equal(rt.run(['--isolation', 'sentry', 'run', '--detach', '--bundle', b.dir, 'sentry-idle']).status, 0);
    const [pid] = sentryProcesses('sentry-idle');
    assert.ok(pid !== undefined);
    // It idles a second after its last call (IDLE_MS in src/sentry/daemon.ts).
    await new Promise((r) => setTimeout(r, 1500));
    assert.deepEqual(sentryProcesses('sentry-idle'), [pid], 'the idle sentry is still there');
    const r = rt.run(['exec', 'sentry-idle', '/bin/sh', '-c', 'ls -d /proc/self/fd /bin/sh']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '/bin/sh\n/proc/self/fd\n');
    assert.equal(rt.run(['delete', '--force', 'sentry-idle']).status, 0);
    await leftoversGone(rt, b);
  });

  test('a container whose sentry is gone is stopped (fail-closed.test.ts): exec into it is refused in one line, and starts nothing', async () => {
    const b = rt.bundle(probeSpec(['/bin/sleep', '100']));
    assert.equal(rt.run(['--isolation', 'sentry', 'run', '--detach', '--bundle', b.dir, 'sentry-gone']).status, 0);
    // Once its execve is through (the sentry served it): with no sentry a call of its start-up would fail.
    const { pid } = json<{ pid: number }>(rt.run(['state', 'sentry-gone']).stdout);
    await waitFor(() => readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('/bin/sleep'), 5000);
    const [sentry] = sentryProcesses('sentry-gone');
    assert.ok(sentry !== undefined);
    process.kill(Number(sentry), 'SIGKILL');
    await waitFor(() => sentryProcesses('sentry-gone').length === 0, 5000);
    await waitFor(() => json<{ status: string }>(rt.run(['state', 'sentry-gone']).stdout).status === 'stopped', 5000);
    const r = rt.run(['exec', 'sentry-gone', '/bin/true']);
    assert.equal(r.status, 255, "runc's status for a failed exec");
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.match(r.stderr, /sentry-gone.*stopped/);
    assert.equal(rt.run(['delete', '--force', 'sentry-gone']).status, 0);
    await leftoversGone(rt, b);
  });

  test('a container created but never started: delete stops its sentry', async () => {
    const b = rt.bundle(probeSpec(['/bin/true']));
    assert.equal(rt.run(['--isolation', 'sentry', 'create', '--bundle', b.dir, 'sentry-never']).status, 0);
    assert.equal(rt.run(['delete', '--force', 'sentry-never']).status, 0);
    await leftoversGone(rt, b);
  });

  test('a refused call is answered with its errno and recorded in the --log file, by an attached and by a detached sentry', async () => {
    const records = (): { level: string; syscall?: string; errno?: string; container?: string; pid?: number }[] =>
      readFileSync(rt.log, 'utf8').trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: string });
    const script = 'mount -t tmpfs none /tmp 2>/dev/null; echo "mount: $?"';
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', script]));
    const r = rt.run(['--isolation', 'sentry', 'run', '--bundle', b.dir, 'sentry-denied']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^mount: [1-9]\d*$/m, 'the mount failed');
    const attached = records().filter((l) => l.container === 'sentry-denied');
    assert.ok(attached.some((l) => l.level === 'warning' && l.syscall === 'mount' && l.errno === 'EPERM' && typeof l.pid === 'number'),
      JSON.stringify(attached));
    // The detached sentry of create/start writes to the same --log file.
    const d = rt.bundle(probeSpec(['/bin/sh', '-c', script]));
    assert.equal(rt.run(['--isolation', 'sentry', 'create', '--bundle', d.dir, 'sentry-denied-d']).status, 0);
    assert.equal(rt.run(['start', 'sentry-denied-d']).status, 0);
    await waitFor(() => records().some((l) => l.container === 'sentry-denied-d' && l.syscall === 'mount'), 10_000);
    await waitFor(() => json<{ status: string }>(rt.run(['state', 'sentry-denied-d']).stdout).status === 'stopped', 10_000);
    assert.equal(rt.run(['delete', 'sentry-denied-d']).status, 0);
    await leftoversGone(rt, d);
  });

  test('exec into a sentry container: the process joins the container\'s sentry (no second one), is traced and recorded there, and leaves nothing behind', async () => {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'sleep 100']));
    assert.equal(rt.run(['--isolation', 'sentry', 'create', '--bundle', b.dir, 'sentry-exec']).status, 0);
    assert.equal(rt.run(['start', 'sentry-exec']).status, 0);
    const sentries = (): number => sentryProcesses('sentry-exec').length;
    await waitFor(() => sentries() === 1, 5000);
    const reader = rt.spawn(['trace', 'sentry-exec']);
    let traced = '';
    reader.stdout?.on('data', (d: Buffer) => { traced += d.toString(); });
    await traceConnected(rt, 'sentry-exec', () => traced, reader);
    // A detached exec that lingers: while it runs, the container still has one sentry.
    assert.equal(rt.run(['exec', '-d', 'sentry-exec', '/bin/sh', '-c', 'test -e /exec-marker-1; sleep 100']).status, 0);
    await waitFor(() => traced.includes('/exec-marker-1'), 10_000);
    assert.equal(sentries(), 1, 'the exec\'d process is served by the container\'s sentry');
    const r = rt.run(['exec', 'sentry-exec', '/bin/sh', '-c',
      'grep -E "^(NoNewPrivs|Seccomp_filters)" /proc/self/status; ls -d /proc/1; test -e /exec-marker-2; mount -t tmpfs none /tmp 2>/dev/null; echo "mount: $?"']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^NoNewPrivs:\s+1$/m, 'the sentry level sets no_new_privs for an exec too');
    assert.match(r.stdout, /^Seccomp_filters:\s+1$/m, 'the one filter is the sentry\'s');
    assert.match(r.stdout, /^\/proc\/1$/m, 'the container\'s sentry serves the exec\'d process its procfs');
    assert.match(r.stdout, /^mount: [1-9]\d*$/m);
    await waitFor(() => traced.includes('/exec-marker-2'), 10_000);
    // The sentry serves each joined process as who it runs as: a file it creates is its own.
    const u = rt.run(['exec', '--user', '1000:1000', 'sentry-exec', '/bin/sh', '-c', 'id -u; echo x > /dev/shm/u && stat -c %u:%g /dev/shm/u']);
    assert.equal(u.status, 0, u.stderr);
    assert.equal(u.stdout, '1000\n1000:1000\n');
    const denied = readFileSync(rt.log, 'utf8').split('\n').filter((l) => l.includes('"syscall":"mount"') && l.includes('"container":"sentry-exec"'));
    assert.ok(denied.length > 0, 'the sentry recorded the exec\'d process\'s refusal');
    assert.equal(rt.run(['delete', '--force', 'sentry-exec']).status, 0);
    await new Promise((resolve) => reader.once('exit', resolve));
    await leftoversGone(rt, b);
  });

  test('exec into a sentry container created but not started joins its sentry too: its /proc, its trace', async () => {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'echo started > /dev/shm/started; sleep 100']));
    assert.equal(rt.run(['--isolation', 'sentry', 'create', '--bundle', b.dir, 'sentry-early']).status, 0);
    // There once create returns, whether the sentry process is up yet or not: a `trace` started at
    // once failed on a slow machine when the sentry made them itself.
    for (const s of ['trace.sock', 'sentry.sock']) assert.ok(existsSync(join(rt.root, 'sentry-early', s)), s);
    const reader = rt.spawn(['trace', 'sentry-early']);
    let traced = '';
    reader.stdout?.on('data', (d: Buffer) => { traced += d.toString(); });
    await traceConnected(rt, 'sentry-early', () => traced, reader);
    const r = rt.run(['exec', 'sentry-early', '/bin/sh', '-c', 'test -e /early-marker; ls -d /proc/1 /sys/kernel']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '/proc/1\n/sys/kernel\n');
    await waitFor(() => traced.includes('/early-marker'), 10_000);
    assert.equal(sentryProcesses('sentry-early').length, 1);
    assert.equal(json<{ status: string }>(rt.run(['state', 'sentry-early']).stdout).status, 'created');
    // The container still starts, under the same sentry.
    assert.equal(rt.run(['start', 'sentry-early']).status, 0);
    const s = rt.run(['exec', 'sentry-early', '/bin/sh', '-c', 'cat /dev/shm/started']);
    assert.equal(s.stdout, 'started\n', s.stderr);
    assert.equal(sentryProcesses('sentry-early').length, 1);
    assert.equal(rt.run(['delete', '--force', 'sentry-early']).status, 0);
    await new Promise((resolve) => { if (reader.exitCode !== null) resolve(null); else reader.once('exit', resolve); });
    await leftoversGone(rt, b);
  });

  test('the sentry\'s join socket takes nothing but a seccomp listener: junk and a wrong fd are dropped, the container goes on', { timeout: 30_000 }, async () => {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'sleep 100']));
    // Created with umask 0: the sockets are root's alone all the same (a joined process is served as who its join names).
    const umask = process.umask(0);
    try {
      assert.equal(rt.run(['--isolation', 'sentry', 'create', '--bundle', b.dir, 'sentry-join-bad']).status, 0);
    } finally {
      process.umask(umask);
    }
    assert.equal(rt.run(['start', 'sentry-join-bad']).status, 0);
    const sock = join(rt.root, 'sentry-join-bad', 'sentry.sock');
    assert.ok(existsSync(sock), 'the join socket is there once create returns');
    for (const s of [sock, join(rt.root, 'sentry-join-bad', 'trace.sock')]) assert.equal(statSync(s).mode & 0o777, 0o600, s);
    const devNull = openSync('/dev/null', 'r');
    try {
      // Not a join message.
      let c = unixConnect(sock);
      sendFd(c, devNull, Buffer.from('Jnot json'));
      closeSync(c);
      // A well-formed join, whose hand-off then brings /dev/null for a listener.
      c = unixConnect(sock);
      const [mine, theirs] = socketpair();
      const who = { user: { uid: 0, gid: 0, groups: [], caps: '0' }, hostname: '', domainname: '' };
      sendFd(c, mine, Buffer.from(`J${JSON.stringify(who)}`));
      closeSync(mine);
      closeSync(c);
      sendFd(theirs, devNull, Buffer.from('L'));
      // The sentry looked, refused, and closed its end: ours reads end of file.
      assert.equal(readSync(theirs, Buffer.alloc(1)), 0);
      closeSync(theirs);
    } finally {
      closeSync(devNull);
    }
    assert.equal(sentryProcesses('sentry-join-bad').length, 1, 'the sentry is still there');
    const r = rt.run(['exec', 'sentry-join-bad', '/bin/sh', '-c', 'ls -d /proc/1']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '/proc/1\n');
    assert.equal(json<{ status: string }>(rt.run(['state', 'sentry-join-bad']).stdout).status, 'running');
    assert.equal(rt.run(['delete', '--force', 'sentry-join-bad']).status, 0);
    await leftoversGone(rt, b);
  });

  test('a pod\'s containers (CRI annotations) share its sandbox\'s sentry: one process, each its own /proc, trace and --log records; it outlives whichever goes first', async () => {
    const inPod = (type: string) => (spec: Spec): void => {
      spec.annotations = { ...spec.annotations, 'io.kubernetes.cri.container-type': type, 'io.kubernetes.cri.sandbox-id': 'pod-sb' };
      spec.hostname = type;
    };
    const sb = rt.bundle(probeSpec(['/bin/sh', '-c', 'sleep 100'], inPod('sandbox')));
    const app = rt.bundle(probeSpec(['/bin/sh', '-c', 'while :; do test -e /app-marker; sleep 0.1; done'], inPod('container')));
    for (const [b, id] of [[sb, 'pod-sb'], [app, 'pod-app']] as const) {
      assert.equal(rt.run(['--isolation', 'sentry', 'create', '--bundle', b.dir, id]).status, 0);
      assert.equal(rt.run(['start', id]).status, 0);
    }
    assert.equal(sentryProcesses('pod-sb').length, 1);
    assert.equal(sentryProcesses('pod-app').length, 0, 'the container joined the sandbox\'s sentry');
    const traced = { app: '', sb: '' };
    const readers = (['app', 'sb'] as const).map((k) => {
      const r = rt.spawn(['trace', `pod-${k}`]);
      r.stdout?.on('data', (d: Buffer) => { traced[k] += d.toString(); });
      return r;
    });
    await waitFor(() => traced.app.includes('/app-marker'), 10_000);
    await traceConnected(rt, 'pod-sb', () => traced.sb, readers[1]);
    assert.equal(rt.run(['exec', 'pod-sb', '/bin/sh', '-c', 'test -e /sb-marker; exit 0']).status, 0);
    await waitFor(() => traced.sb.includes('/sb-marker'), 10_000);
    assert.ok(!traced.sb.includes('/app-marker') && !traced.app.includes('/sb-marker'), 'each container\'s trace is its own');
    // The container's own /proc (its pid namespace, its host name), and its refusals under its id.
    const r = rt.run(['exec', 'pod-app', '/bin/sh', '-c', 'cat /proc/sys/kernel/hostname; tr "\\0" " " < /proc/1/cmdline; echo; mount -t tmpfs none /tmp 2>/dev/null; echo "mount: $?"']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^container\n\/bin\/sh -c while :; do test -e \/app-marker; sleep 0.1; done \nmount: [1-9]\d*\n$/);
    await waitFor(() => readFileSync(rt.log, 'utf8').includes('"syscall":"mount"') &&
      readFileSync(rt.log, 'utf8').split('\n').some((l) => l.includes('"syscall":"mount"') && l.includes('"container":"pod-app"')), 5000);
    assert.equal(sentryProcesses('pod-sb').length, 1, 'exec\'d processes joined it too');
    // The sandbox goes first: the sentry keeps serving the other container.
    assert.equal(rt.run(['delete', '--force', 'pod-sb']).status, 0);
    const after = rt.run(['exec', 'pod-app', '/bin/sh', '-c', 'ls -d /proc/1']);
    assert.equal(after.status, 0, after.stderr);
    assert.equal(after.stdout, '/proc/1\n');
    assert.equal(rt.run(['delete', '--force', 'pod-app']).status, 0);
    await Promise.all(readers.map((rd) => new Promise((resolve) => { if (rd.exitCode !== null) resolve(null); else rd.once('exit', resolve); })));
    await waitFor(() => leftovers(rt, sb).length === 0 && leftovers(rt, app).length === 0, 5000);
  });

  test('an attached run\'s sentry is a process of its own too: exec joins it, traced, and it leaves with the container', async () => {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'sleep 100']));
    const attached = rt.spawn(['--isolation', 'sentry', 'run', '--bundle', b.dir, 'sentry-exec-run']);
    const runEnded = new Promise((resolve) => attached.once('exit', resolve));
    await waitFor(() => json<{ status: string }>(rt.run(['state', 'sentry-exec-run']).stdout || '{}').status === 'running', 10_000);
    assert.equal(sentryProcesses('sentry-exec-run').length, 1);
    const reader = rt.spawn(['trace', 'sentry-exec-run']);
    const traceEnded = new Promise((resolve) => reader.once('exit', resolve));
    let traced = '';
    reader.stdout?.on('data', (d: Buffer) => { traced += d.toString(); });
    await traceConnected(rt, 'sentry-exec-run', () => traced);
    let r = rt.run(['exec', 'sentry-exec-run', '/bin/sh', '-c', 'grep -E "^Seccomp_filters" /proc/self/status; ls -d /proc/1']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Seccomp_filters:\s+1$/m);
    assert.match(r.stdout, /^\/proc\/1$/m, 'the container\'s sentry serves the exec its procfs');
    r = rt.run(['exec', 'sentry-exec-run', '/bin/ls', '/proc/self/fd']);
    assert.equal(r.status, 0, r.stderr);
    await waitFor(() => traced.includes('"/proc/self/fd"'), 10_000);
    assert.equal(sentryProcesses('sentry-exec-run').length, 1, 'no second sentry');
    assert.equal(rt.run(['kill', 'sentry-exec-run', 'KILL']).status, 0);
    // The attached run deletes the container once its init is gone, and waits for its sentry.
    await runEnded;
    assert.deepEqual(sentryProcesses('sentry-exec-run'), []);
    await traceEnded;
    await leftoversGone(rt, b);
  });

  test('callers of different users in turn are each served as themselves (the thread keeps the last caller\'s identity between calls)', () => {
    // Root and uid 1000 alternate: relative paths (the caller's cwd read from the host's /proc),
    // files made and stat'ed, and a root-only file the user must not read.
    const script = 'cd /dev/shm && mkdir u && chown 1000:1000 u && echo r > rootonly && chmod 600 rootonly && for i in 1 2 3; do '
      + 'stat -c "%u" /etc/passwd; '
      + 'su test -s /bin/sh -c "cd /dev/shm/u && echo x > m$i && stat -c \'%s %u\' m$i ../u/m$i; cat ../rootonly 2>/dev/null || echo denied"; '
      + 'cat rootonly; ls u | tr "\\n" " "; echo; done';
    const out: string[] = [];
    for (const level of ['namespaces', 'sentry']) {
      const b = rt.bundle(probeSpec(['/bin/sh', '-c', script], (spec) => {
        // Docker's file and identity capabilities, to make the directory and change user.
        const caps = ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_SETUID', 'CAP_SETGID', 'CAP_KILL'];
        if (spec.process !== undefined) spec.process.capabilities = { bounding: caps, effective: caps, permitted: caps };
      }));
      const r = rt.run(['--isolation', level, 'run', '--bundle', b.dir, `sentry-users-${level}`]);
      assert.equal(r.status, 0, `${level}: ${r.stderr}`);
      out.push(r.stdout);
      assert.deepEqual(leftovers(rt, b), []);
    }
    assert.match(out[0] ?? '', /^0\n2 1000\n2 1000\ndenied\nr\nm1 \n0\n/, out[0]);
    assert.equal(out[1], out[0]);
  });

  test('the dev.stockade.isolation annotation picks the level; an unknown level is refused, leaving nothing', () => {
    const b = rt.bundle(probeSpec(['/bin/sh', '-c', 'exec cat /proc/self/status'], (s) => {
      s.annotations = { 'dev.stockade.isolation': 'sentry' };
    }));
    const r = rt.run(['run', '--bundle', b.dir, 'sentry-annotated']);
    assert.equal(r.status, 0, r.stderr);
    // The config has no seccomp profile: the one filter is the sentry's.
    assert.match(r.stdout, /^Seccomp_filters:\s+1$/m);
    const plain = rt.bundle(probeSpec(['/bin/sh', '-c', 'exec cat /proc/self/status']));
    assert.match(rt.run(['run', '--bundle', plain.dir, 'sentry-plain']).stdout, /^Seccomp:\s+0$/m, 'without the annotation, no filter');
    assert.match(r.stdout, /^NoNewPrivs:\s+1$/m, 'the sentry level sets no_new_privs');
    const bad = rt.bundle(probeSpec(['/bin/true'], (s) => { s.annotations = { 'dev.stockade.isolation': 'moat' }; }));
    const e = rt.run(['run', '--bundle', bad.dir, 'sentry-bad']);
    assert.notEqual(e.status, 0);
    assert.match(e.stderr, /annotations\["dev\.stockade\.isolation"\]: must be namespaces, sentry or vm, not "moat"/);
    assert.deepEqual(leftovers(rt, bad), []);
  });
});
