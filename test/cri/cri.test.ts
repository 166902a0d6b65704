// Kubernetes' CRI as the kubelet drives it, at every stockade level: one pod per level on one
// private containerd (its CRI plugin, the runc shim with BinaryName = stockade, a CNI bridge).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { integrationSkip } from '../integration/harness';
import { makeStateDir } from '../clients/daemons';
import { sleep } from '../clients/exec';
import type { ContainerConfig, ContainerState, CriClient, NamespaceOption, PodSandboxConfig } from './cri-client';
import { streamExec } from './cri-client';
import { criMissing, startCriNode, STOCKADE_CLASSES, WORKLOAD_IMAGE, type CriNode, type RuntimeClass } from './node';
import { RUN_TAG, processesMarked } from '../helpers/run-scope';
import { VMM_HEADROOM_MIB } from '../../src/vm/sizing';
import { qemusUnder } from '../integration/vm-helpers';

const skip = integrationSkip() ?? criMissing();

// What the kubelet asks for a pod's container by default: the pod's network and IPC, a PID namespace of its own.
const CONTAINER_NAMESPACES: NamespaceOption = { network: 'POD', pid: 'CONTAINER', ipc: 'POD' };

// The one containerd every level's pod runs on (started once: it is most of this file's time).
let node: CriNode | undefined;
let dir = '';

function theNode(): CriNode {
  if (node === undefined) throw new Error('the CRI node did not start (see the before hook)');
  return node;
}

async function waitState(cri: CriClient, id: string, state: ContainerState, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const { status } = await cri.containerStatus(id);
    if (status.state === state) return;
    if (Date.now() > end) assert.fail(`container ${id} is ${status.state} after ${ms} ms, not ${state}`);
    await sleep(100);
  }
}

/**
 * What stockade's state record says of a container (the runc shim runs its binary with --root
 * ROOT/NAMESPACE): its level, and at sentry the sentry serving it (the level's data).
 */
function stockadeRecord(cls: RuntimeClass, id: string): { level: string; sentry?: number } {
  const r = JSON.parse(readFileSync(join(theNode().stateRoot(cls.handler), 'k8s.io', id, 'state.json'), 'utf8')) as
    { level: string; levelData?: { supervisor?: { pid: number } } };
  const sentry = r.levelData?.supervisor?.pid;
  return sentry === undefined ? { level: r.level } : { level: r.level, sentry };
}

function cgroupDir(controller: string, cgroupsPath: string): string {
  return join('/sys/fs/cgroup', controller, cgroupsPath);
}

describe('CRI (containerd)', { skip: skip ?? false }, () => {
  before(async () => {
    dir = makeStateDir('cri');
    node = await startCriNode(join(dir, 'n'), STOCKADE_CLASSES);
  });

  after(async () => {
    const left = (await node?.stop()) ?? [];
    rmSync(dir, { recursive: true, force: true });
    if (left.length > 0) throw new Error(`the CRI node had to be swept up after stopping:\n${left.join('\n')}`);
  });

  for (const cls of STOCKADE_CLASSES) {
    const level = cls.level ?? 'namespaces';
    describe(`runtime class ${cls.handler} (${level})`, () => {
      // One pod's life, step by step: each test builds on the one before, as the kubelet's calls do.
      const pod: PodSandboxConfig = {
        metadata: { name: `pod-${level}`, uid: `uid-${level}-${RUN_TAG}`, namespace: 'stockade-test', attempt: 0 },
        hostname: `pod-${level}`,
        labels: { app: 'stockade-cri-test' },
        // At vm the pod's resources, as the kubelet sums its containers' (the workload's below), size the pod's VM.
        linux: {
          securityContext: { namespaceOptions: CONTAINER_NAMESPACES },
          ...(level === 'vm' ? { resources: { memoryLimitInBytes: 256 * 1024 * 1024, cpuPeriod: 100_000, cpuQuota: 50_000 } } : {}),
        },
      };
      let sandboxId = '';
      let podIp = '';
      let sandboxPid = 0;
      let netns = '';
      let workId = '';
      let sentryPid = 0;
      const made: string[] = [];
      const cgroups: string[] = [];

      test('RunPodSandbox: the pause container runs at the class\'s level, with an address from host-local\'s range', async () => {
        const n = theNode();
        pod.linux = { ...pod.linux, cgroupParent: n.cgroupParent(`pod-${level}`) };
        pod.logDirectory = join(n.dir, 'logs', `pod-${level}`);
        sandboxId = await n.client.runPodSandbox(pod, cls.handler);
        const { status, info } = await n.client.podSandboxStatus(sandboxId);
        assert.equal(status.state, 'SANDBOX_READY');
        assert.equal(status.runtimeHandler, cls.handler);
        podIp = status.network?.ip ?? '';
        assert.ok(podIp.startsWith(`${n.network.prefix}.`), `the pod's address ${podIp} is not in host-local's range ${n.network.subnet}`);
        assert.equal(stockadeRecord(cls, sandboxId).level, level, 'stockade ran the sandbox at the class\'s level');
        sandboxPid = info.pid;
        netns = info.runtimeSpec.linux?.namespaces?.find((ns) => ns.type === 'network')?.path ?? '';
        assert.ok(netns !== '' && existsSync(netns), `the pod's network namespace ${netns} exists`);
      });

      test('CreateContainer and StartContainer: CREATED, then RUNNING; ExecSync answers with output and exit code', async () => {
        const n = theNode();
        const config: ContainerConfig = {
          metadata: { name: 'work', attempt: 0 },
          image: { image: WORKLOAD_IMAGE },
          // SIGTERM is ignored, so StopContainer must kill it after the grace period.
          command: ['sh', '-c', 'trap "" TERM; echo started; while :; do sleep 1; done'],
          envs: [{ key: 'GREETING', value: 'hello-cri' }],
          logPath: 'work.log',
          linux: { securityContext: { namespaceOptions: CONTAINER_NAMESPACES }, resources: { memoryLimitInBytes: 256 * 1024 * 1024, cpuPeriod: 100_000, cpuQuota: 50_000 } },
        };
        workId = await n.client.createContainer(sandboxId, config, pod);
        made.push(workId);
        assert.equal((await n.client.containerStatus(workId)).status.state, 'CONTAINER_CREATED');
        await n.client.startContainer(workId);
        const { status, info } = await n.client.containerStatus(workId);
        assert.equal(status.state, 'CONTAINER_RUNNING');
        assert.ok(status.startedAt > 0, 'a running container has a start time');
        assert.equal(stockadeRecord(cls, workId).level, level, 'stockade ran the workload at the class\'s level');
        cgroups.push(info.runtimeSpec.linux?.cgroupsPath ?? '');

        const r = await n.client.execSync(workId, ['sh', '-c', 'echo "$GREETING from $(hostname)"; echo to-stderr >&2; exit 3']);
        assert.equal(r.stdout.toString(), `hello-cri from pod-${level}\n`);
        assert.equal(r.stderr.toString(), 'to-stderr\n');
        assert.equal(r.exitCode, 3);
        const ok = await n.client.execSync(workId, ['cat', '/proc/1/cmdline']);
        assert.equal(ok.exitCode, 0);
        assert.match(ok.stdout.toString(), /^sh\0-c\0trap/, 'ExecSync runs inside the workload container (its pid 1 is the workload)');
      });

      test('streaming Exec: the URL Exec returns runs the command over a websocket (stdout, stderr, exit code)', async () => {
        const n = theNode();
        const url = await n.client.exec(workId, ['sh', '-c', 'echo streamed-out; echo streamed-err >&2; exit 5']);
        const r = await streamExec(url);
        assert.deepEqual(r, { stdout: 'streamed-out\n', stderr: 'streamed-err\n', exitCode: 5 });
        // stdin reaches the process: head reads one line and exits.
        const withStdin = await streamExec(await n.client.exec(workId, ['head', '-n', '1'], { stdin: true }), 'through-stdin\n');
        assert.deepEqual(withStdin, { stdout: 'through-stdin\n', stderr: '', exitCode: 0 });
        // With a terminal: one stream, the line discipline's \r\n, and a pty the process sees as its tty.
        // stdin is asked for, as kubectl exec -it does: over a websocket containerd always sees a
        // stdin (an empty one when none was asked for), and on a terminal it closes the output once
        // that stdin ends, before a process that takes a moment to start has written anything.
        const onTty = await streamExec(await n.client.exec(workId, ['sh', '-c', 'tty; exit 4'], { tty: true, stdin: true }));
        assert.match(onTty.stdout, /^\/dev\/pts\/\d+\r\n$/);
        assert.equal(onTty.stderr, '', 'a terminal has one stream');
        assert.equal(onTty.exitCode, 4);
      });

      test('the pod network: the container reaches the host bridge, from the pod\'s address', async () => {
        const n = theNode();
        // A server on the bridge's own address (the gateway host-local gave the pods).
        const seen: string[] = [];
        const server: Server = createServer((req, res) => {
          seen.push(req.socket.remoteAddress ?? '');
          res.end(`you are ${req.socket.remoteAddress ?? '?'}\n`);
        });
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(0, n.network.gateway, () => resolve());
        });
        try {
          const port = (server.address() as { port: number }).port;
          const r = await n.client.execSync(workId, ['wget', '-q', '-O', '-', `http://${n.network.gateway}:${port}/`]);
          assert.equal(r.exitCode, 0, `wget from the pod to the bridge failed: ${r.stderr.toString()}`);
          assert.equal(r.stdout.toString(), `you are ${podIp}\n`);
          assert.deepEqual(seen, [podIp]);
        } finally {
          server.close();
        }
      });

      test('UpdateContainerResources: the new memory and CPU limits are in the container\'s cgroup on the host', async () => {
        const n = theNode();
        const path = cgroups[0] ?? '';
        assert.ok(path.startsWith(n.cgroupParent(`pod-${level}`)), `the container's cgroup ${path} is below the pod's cgroup parent`);
        const read = (controller: string, file: string): string => readFileSync(join(cgroupDir(controller, path), file), 'utf8').trim();
        // At vm the host cgroup holds the VM: the guest's RAM (the limit) and the VMM's headroom.
        const hostMemory = (bytes: number): string => String(level === 'vm' ? bytes + VMM_HEADROOM_MIB * 1024 * 1024 : bytes);
        assert.equal(read('memory', 'memory.limit_in_bytes'), hostMemory(256 * 1024 * 1024), 'CreateContainer\'s memory limit');
        assert.equal(read('cpu', 'cpu.cfs_quota_us'), '50000');
        await n.client.updateContainerResources(workId, { memoryLimitInBytes: 128 * 1024 * 1024, cpuPeriod: 100_000, cpuQuota: 20_000, cpuShares: 512 });
        assert.equal(read('memory', 'memory.limit_in_bytes'), hostMemory(128 * 1024 * 1024));
        assert.equal(read('cpu', 'cpu.cfs_quota_us'), '20000');
        assert.equal(read('cpu', 'cpu.shares'), '512');
        // The workload still runs under the new limits.
        assert.equal((await n.client.execSync(workId, ['true'])).exitCode, 0);
      });

      if (level === 'sentry') {
        test('one sentry serves the pod: the sandbox and the workload container name the same live sentry', () => {
          const sandbox = stockadeRecord(cls, sandboxId).sentry;
          const work = stockadeRecord(cls, workId).sentry;
          assert.ok(sandbox !== undefined && sandbox > 0, 'the sandbox has a sentry');
          assert.equal(work, sandbox, 'the workload container is served by its pod\'s sentry');
          assert.match(readFileSync(`/proc/${sandbox}/cmdline`, 'utf8'), /stockade-sentryd/, `process ${sandbox} is a live sentry`);
          sentryPid = sandbox;
        });
      }

      test('a container that exits by itself: EXITED with its exit code', async () => {
        const n = theNode();
        const id = await n.client.createContainer(sandboxId, {
          metadata: { name: 'exits', attempt: 0 }, image: { image: WORKLOAD_IMAGE }, command: ['sh', '-c', 'exit 7'], logPath: 'exits.log',
          linux: { securityContext: { namespaceOptions: CONTAINER_NAMESPACES } },
        }, pod);
        made.push(id);
        await n.client.startContainer(id);
        await waitState(n.client, id, 'CONTAINER_EXITED');
        const { status } = await n.client.containerStatus(id);
        assert.equal(status.exitCode, 7);
        // Not compared with startedAt: containerd stamps the start after the start call returns and
        // the exit with the shim's own clock, so a quick exit can come "before" its start.
        assert.ok(status.finishedAt >= status.createdAt && status.finishedAt > 0, 'an exited container has a finish time');
        cgroups.push((await n.client.containerStatus(id)).info.runtimeSpec.linux?.cgroupsPath ?? '');
      });

      if (level === 'vm') {
        test('one VM serves the pod: the sandbox\'s keeper holds the only QEMU, the pod\'s containers none of their own', async () => {
          const n = theNode();
          assert.equal(qemusUnder(sandboxPid).length, 1, 'the sandbox booted the pod\'s VM');
          // Sized from the pod's resources (containerd's sandbox annotations): 256 MiB + the guest's own 64, one vCPU.
          const qemuArgs = readFileSync(`/proc/${qemusUnder(sandboxPid)[0] ?? 0}/cmdline`, 'utf8').split('\0');
          assert.equal(qemuArgs[qemuArgs.indexOf('-m') + 1], '320M', qemuArgs.join(' '));
          assert.equal(qemuArgs[qemuArgs.indexOf('-smp') + 1], '1');
          for (const id of made) {
            const pid = (await n.client.containerStatus(id)).info.pid;
            if (pid > 0) assert.deepEqual(qemusUnder(pid), [], `container ${id} has no VM of its own`);
            assert.ok(!existsSync(join(n.stateRoot(cls.handler), 'k8s.io', id, 'vm.json')), `container ${id} booted no VM`);
          }
          // The workload answers from the pod's guest: the same kernel and namespaces as the sandbox's.
          assert.equal((await n.client.execSync(workId, ['true'])).exitCode, 0);
        });
      }

      test('StopContainer: SIGTERM ignored, so the container is killed once the grace period is over', async () => {
        const n = theNode();
        const grace = 2;
        const started = Date.now();
        await n.client.stopContainer(workId, grace);
        const took = Date.now() - started;
        const { status } = await n.client.containerStatus(workId);
        assert.equal(status.state, 'CONTAINER_EXITED');
        assert.equal(status.exitCode, 137, 'killed by SIGKILL (128 + 9), not ended by the SIGTERM it ignores');
        assert.ok(took >= grace * 1000 - 100, `StopContainer returned after ${took} ms, before the ${grace} s grace period was over`);
      });

      test('RemoveContainer, StopPodSandbox, RemovePodSandbox: nothing is left (state, processes, cgroups, netns)', async () => {
        const n = theNode();
        for (const id of made) await n.client.removeContainer(id);
        await n.client.stopPodSandbox(sandboxId);
        await n.client.removePodSandbox(sandboxId);
        const root = join(n.stateRoot(cls.handler), 'k8s.io');
        for (const id of [sandboxId, ...made]) {
          assert.ok(!existsSync(join(root, id)), `stockade's state directory of ${id} is gone`);
          // The shim (its argv names the sandbox id), the containers and the sentry are all gone.
          // The id is containerd's, 64 random hex digits: no other run's process names it.
          const procs = processesMarked(id).filter((p) => p.pid !== process.pid);
          assert.deepEqual(procs, [], `no process names ${id}`);
        }
        assert.ok(!existsSync(`/proc/${sandboxPid}`), `the sandbox's process ${sandboxPid} is gone`);
        if (sentryPid !== 0) assert.ok(!existsSync(`/proc/${sentryPid}`), `the pod's sentry ${sentryPid} is gone`);
        for (const path of cgroups) {
          for (const controller of ['memory', 'cpu', 'pids']) {
            assert.ok(!existsSync(cgroupDir(controller, path)), `the cgroup ${controller}:${path} is gone`);
          }
        }
        assert.ok(!existsSync(netns), `the pod's network namespace ${netns} is gone`);
      });
    });
  }
});
