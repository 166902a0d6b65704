// A pod in one VM at the vm level, through the CLI as containerd's CRI plugin drives it (issue 14 item 2): the
// sandbox container boots the VM, a container carrying CRI's annotations is made inside it, and the VM goes
// with the sandbox, leaving nothing.
//
// One pod (one VM boot) carries every check: the later containers' own roots and binds reaching the running
// VM, the namespaces they share with the sandbox in the guest and those they do not, run's stdio and exit
// status, exec, ps, signals, delete of one container while the pod runs, and fail-closed when the sandbox goes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, json, probeSpec, waitFor } from './harness';
import type { Bundle } from '../helpers/rootfs';
import { qemusUnder, vmGone, vmSkip, vmTrace, VM_CALL, type VmTrace } from './vm-helpers';
import { RUN_TAG } from '../helpers/run-scope';
import { startConsoleReceiver } from '../helpers/console-receiver';

const skip = vmSkip();

describe('a pod in one VM (CRI annotations) through the CLI', { skip }, () => {
  let rt: Runtime;
  const scope = `vmpod-${RUN_TAG}`;
  const sb = `${scope}-sb`;
  let sandbox: Bundle;
  let trace: VmTrace;
  let data: string;
  before(() => {
    rt = new Runtime();
    data = mkdtempSync(join(tmpdir(), 'stockade-vmpod-data-'));
    writeFileSync(join(data, 'f'), 'from the host\n');
  });
  after(() => {
    rt.cleanup();
    rmSync(data, { recursive: true, force: true });
  });

  /** A pod container's bundle: CRI's annotations, the sandbox's network, IPC and UTS joined by its pid, as containerd writes them. */
  function member(args: string[], edit?: (s: import('../../src/oci/spec').Spec) => void): Bundle {
    const keeper = json<{ pid: number }>(rt.run(['state', sb]).stdout).pid;
    const b = rt.bundle(probeSpec(args, (s) => {
      s.annotations = { 'io.kubernetes.cri.container-type': 'container', 'io.kubernetes.cri.sandbox-id': sb };
      delete s.hostname;
      s.linux = {
        ...s.linux,
        namespaces: (s.linux?.namespaces ?? []).map((ns) => ['network', 'ipc', 'uts'].includes(ns.type)
          ? { type: ns.type, path: `/proc/${keeper}/ns/${ns.type === 'network' ? 'net' : ns.type}` } : ns),
      };
      s.mounts = [...(s.mounts ?? []), { destination: '/data', type: 'bind', source: data, options: ['rbind', 'ro'] }];
      edit?.(s);
    }));
    mkdirSync(join(b.rootfs, 'data'), { recursive: true });
    writeFileSync(join(b.rootfs, 'marker'), `${scope} member\n`);
    return b;
  }

  test('the sandbox boots the pod\'s VM; a container of the pod is made in it, with its own root and binds, the pod\'s network, IPC and hostname', async () => {
    sandbox = rt.bundle(probeSpec(['/bin/sh', '-c', 'trap "exit 0" TERM; while true; do sleep 0.1; done'], (s) => {
      // The pod's resources as containerd writes them on the sandbox (the kubelet's sum of its containers' limits).
      s.annotations = {
        'dev.stockade.isolation': 'vm', 'io.kubernetes.cri.container-type': 'sandbox', 'io.kubernetes.cri.sandbox-id': sb,
        'io.kubernetes.cri.sandbox-memory': String(200 * 1024 * 1024), 'io.kubernetes.cri.sandbox-cpu-quota': '150000', 'io.kubernetes.cri.sandbox-cpu-period': '100000',
      };
      s.hostname = 'podhost';
    }));
    const c = rt.run(['create', '--bundle', sandbox.dir, sb], VM_CALL);
    assert.equal(c.status, 0, c.stderr);
    assert.equal(rt.run(['start', sb]).status, 0);
    trace = vmTrace(rt, sb);
    assert.equal(qemusUnder(trace.keeper).length, 1, 'the sandbox\'s VM');
    // Sized from the pod's resources: their memory plus the guest's own 64 MiB, 1.5 CPUs rounded up.
    const qemuArgs = readFileSync(`/proc/${qemusUnder(trace.keeper)[0] ?? 0}/cmdline`, 'utf8').split('\0');
    assert.equal(qemuArgs[qemuArgs.indexOf('-m') + 1], '264M');
    assert.equal(qemuArgs[qemuArgs.indexOf('-smp') + 1], '2');

    const id = `${scope}-app`;
    const app = member(['/bin/sh', '-c', 'trap "exit 7" TERM; while true; do sleep 0.1; done']);
    const cr = rt.run(['--debug', '--isolation', 'vm', 'create', '--bundle', app.dir, id], VM_CALL);
    assert.equal(cr.status, 0, cr.stderr);
    assert.ok(rt.logLines().some((l) => l.msg.startsWith(`vm: in the pod's VM (sandbox ${sb}; joins its ipc uts)`)), 'made in the pod\'s VM');
    const appKeeper = json<{ pid: number; status: string }>(rt.run(['state', id]).stdout);
    assert.equal(appKeeper.status, 'created');
    // ONE VM for the pod: none below the container's keeper, still one below the sandbox's.
    assert.deepEqual(qemusUnder(appKeeper.pid), []);
    assert.equal(qemusUnder(trace.keeper).length, 1);
    assert.equal(existsSync(join(rt.root, id, 'vm.json')), false, 'no VM of its own');
    assert.equal(rt.run(['start', id]).status, 0);
    assert.equal(json<{ status: string }>(rt.run(['state', id]).stdout).status, 'running');

    const ex = (cid: string, cmd: string): { status: number | null; stdout: string; stderr: string } => rt.run(['exec', cid, '/bin/sh', '-c', cmd], VM_CALL);
    // Its own root (the marker is in its bundle's rootfs only) and its bind, read-only.
    assert.equal(ex(id, 'cat /marker').stdout, `${scope} member\n`);
    assert.notEqual(ex(sb, 'cat /marker').status, 0, 'the sandbox\'s root is its own');
    assert.equal(ex(id, 'cat /data/f').stdout, 'from the host\n');
    assert.notEqual(ex(id, 'echo x > /data/g').status, 0);
    assert.equal(existsSync(join(data, 'g')), false);
    // The same guest kernel; the pod's IPC, UTS and network namespaces, its own pid and mount namespaces.
    const nsOf = (cid: string): Record<string, string> => Object.fromEntries(ex(cid, 'for n in ipc uts net pid mnt; do echo $n $(readlink /proc/self/ns/$n); done')
      .stdout.trim().split('\n').map((l) => l.split(' ') as [string, string]));
    const a = nsOf(id);
    const s = nsOf(sb);
    assert.equal(a['ipc'], s['ipc']);
    assert.equal(a['uts'], s['uts']);
    assert.equal(a['net'], s['net']);
    assert.notEqual(a['pid'], s['pid']);
    assert.notEqual(a['mnt'], s['mnt']);
    assert.equal(ex(id, 'hostname').stdout, 'podhost\n');
    assert.equal(ex(id, 'uname -r').stdout, ex(sb, 'uname -r').stdout);
    assert.equal(ex(id, 'exit 5').status, 5);
    // ps lists its processes (guest pids), and a signal reaches it: trap exits 7.
    assert.equal(rt.run(['ps', id]).status, 0);
    assert.equal(rt.run(['kill', id, 'TERM']).status, 0);
    await waitFor(() => json<{ status: string }>(rt.run(['state', id]).stdout).status === 'stopped', 30000);
    assert.match(readFileSync(join(rt.root, id, 'vm.exited'), 'utf8'), /"code":7/);
    assert.equal(rt.run(['delete', id]).status, 0);
    assert.equal(existsSync(join(rt.root, id)), false);
    // The pod's VM goes on.
    assert.equal(qemusUnder(trace.keeper).length, 1);
    assert.equal(ex(sb, 'true').status, 0);
  });

  test('pause of a pod\'s container freezes it in the guest; the pod\'s VM and sandbox run on; resume thaws it', async () => {
    const id = `${scope}-pause`;
    const rw = mkdtempSync(join(tmpdir(), 'stockade-vmpod-rw-'));
    try {
      const b = member(['/bin/sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /rw/n; sleep 0.1; done'], (s) => {
        s.mounts = [...(s.mounts ?? []), { destination: '/rw', type: 'bind', source: rw, options: ['rbind', 'rw'] }];
      });
      mkdirSync(join(b.rootfs, 'rw'), { recursive: true });
      assert.equal(rt.run(['--isolation', 'vm', 'create', '--bundle', b.dir, id], VM_CALL).status, 0);
      assert.equal(rt.run(['start', id]).status, 0);
      const count = (): number => Number(readFileSync(join(rw, 'n'), 'utf8').trim() || '0');
      await waitFor(() => existsSync(join(rw, 'n')) && count() > 2, 30000);
      const p = rt.run(['pause', id], VM_CALL);
      assert.equal(p.status, 0, p.stderr);
      assert.equal(json<{ status: string }>(rt.run(['state', id]).stdout).status, 'paused');
      const frozenAt = count();
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(count(), frozenAt, 'the counter stops while paused');
      // The pod's VM runs on: the sandbox answers, and is not paused.
      assert.equal(rt.run(['exec', sb, 'true'], VM_CALL).status, 0);
      assert.equal(json<{ status: string }>(rt.run(['state', sb]).stdout).status, 'running');
      assert.notEqual(rt.run(['exec', id, 'true'], VM_CALL).status, 0, 'no exec into a paused container');
      const r = rt.run(['resume', id], VM_CALL);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(json<{ status: string }>(rt.run(['state', id]).stdout).status, 'running');
      await waitFor(() => count() > frozenAt + 2, 30000);
      // Paused again, then killed: SIGKILL reaches the frozen processes in the guest.
      assert.equal(rt.run(['pause', id], VM_CALL).status, 0);
      assert.equal(rt.run(['kill', id, 'KILL']).status, 0);
      await waitFor(() => json<{ status: string }>(rt.run(['state', id]).stdout).status === 'stopped', 30000);
      assert.equal(rt.run(['delete', id]).status, 0);
      assert.equal(qemusUnder(trace.keeper).length, 1);
    } finally {
      rmSync(rw, { recursive: true, force: true });
    }
  });

  test('run of a pod\'s container: its stdin, stdout, stderr and exit status through the pod\'s VM', () => {
    const b = member(['/bin/sh', '-c', 'read l; echo "got $l"; cat /marker; echo err >&2; exit 3']);
    const r = rt.run(['--isolation', 'vm', 'run', '--bundle', b.dir, `${scope}-run`], { ...VM_CALL, input: 'hi\n' });
    assert.equal(r.status, 3, r.stderr);
    assert.equal(r.stdout, `got hi\n${scope} member\n`);
    assert.equal(r.stderr, 'err\n');
    assert.equal(qemusUnder(trace.keeper).length, 1);
  });

  test('a pod\'s container with a terminal: its pty\'s master to --console-socket, made in the pod\'s VM', async () => {
    const id = `${scope}-tty`;
    const b = member(['/bin/sh', '-c', 'tty; echo on-the-pty; exit 4']);
    const spec = json<{ process: { terminal: boolean } }>(readFileSync(b.configPath, 'utf8'));
    spec.process.terminal = true;
    b.writeSpec(spec);
    const sockDir = mkdtempSync(join(tmpdir(), 'stockade-vmpod-tty-'));
    const rx = await startConsoleReceiver(join(sockDir, 'console.sock'));
    try {
      const c = rt.run(['--isolation', 'vm', 'create', '--console-socket', join(sockDir, 'console.sock'), '--bundle', b.dir, id], VM_CALL);
      assert.equal(c.status, 0, c.stderr);
      assert.deepEqual(qemusUnder(json<{ pid: number }>(rt.run(['state', id]).stdout).pid), [], 'no VM of its own');
      assert.equal(rt.run(['start', id]).status, 0);
      await waitFor(() => json<{ status: string }>(rt.run(['state', id]).stdout).status === 'stopped', 30000);
      await waitFor(() => rx.output().split('\n').length > 2, 10000);
      assert.match(rx.output(), /\/dev\/pts\/0\\r\\non-the-pty\\r\\n/);
      assert.match(readFileSync(join(rt.root, id, 'vm.exited'), 'utf8'), /"code":4/);
      assert.equal(rt.run(['delete', id]).status, 0);
    } finally {
      rx.stop();
      rmSync(sockDir, { recursive: true, force: true });
    }
  });

  test('the sandbox killed: the pod\'s containers stop with its VM (fail closed); deleting them all leaves nothing', async () => {
    const id = `${scope}-late`;
    const b = member(['/bin/sh', '-c', 'while true; do sleep 0.1; done']);
    assert.equal(rt.run(['--isolation', 'vm', 'create', '--bundle', b.dir, id], VM_CALL).status, 0);
    assert.equal(rt.run(['start', id]).status, 0);
    const keeper = json<{ pid: number }>(rt.run(['state', id]).stdout).pid;
    assert.equal(rt.run(['kill', sb, 'KILL']).status, 0);
    await waitFor(() => json<{ status: string }>(rt.run(['state', id]).stdout).status === 'stopped', 30000);
    assert.match(readFileSync(join(rt.root, id, 'vm.exited'), 'utf8'), /the pod's VM ended/);
    await waitFor(() => !existsSync(`/proc/${keeper}`), 10000);
    assert.equal(rt.run(['delete', id]).status, 0);
    assert.equal(rt.run(['delete', sb]).status, 0);
    await vmGone(trace);
    assert.deepEqual(rt.containerDirs(), []);
  });
});
