// A private dockerd (on its own containerd) with stockade registered in daemon.json, and its client.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { STOCKADE } from '../integration/harness';
import { RUN_TAG } from '../helpers/run-scope';
import { VM_OOM_UNREPORTED, runtimeArgs } from './client';
import { startContainerd } from './containerd';
import { Daemon, onPath, sweep } from './daemons';
import { DockerLikeClient } from './docker-like';
import { mustRun, runCmd } from './exec';
import type { StartedClient } from './suite';

// Per run: two runs on one host must not share (or sweep away) each other's cgroups.
const CGROUP_PARENT = `/stockade-clients-docker-${RUN_TAG}`;

/** The docker.io package's client, which speaks the daemon's API version, or any docker on PATH. */
function dockerClient(): string | undefined {
  return existsSync('/usr/bin/docker') ? '/usr/bin/docker' : onPath('docker');
}

/** Why the docker tier cannot run here, or undefined. */
export function dockerMissing(): string | undefined {
  if (onPath('dockerd') === undefined) return 'dockerd is not installed (apt-get install docker.io)';
  if (dockerClient() === undefined) return 'the docker client is not installed (apt-get install docker.io)';
  if (onPath('containerd') === undefined) return 'containerd is not installed (apt-get install containerd)';
  return undefined;
}

export async function startDocker(dir: string, archive: string): Promise<StartedClient> {
  const containerd = await startContainerd(join(dir, 'containerd'));
  let dockerd: Daemon | undefined;
  let client: DockerLikeClient | undefined;
  const stop = async (): Promise<string[]> => {
    await client?.removeAll().catch(() => undefined);
    const killed = await dockerd?.stop();
    // Read before the sweep deletes it: what dockerd said while it shut down is why anything is left.
    const log = dockerd?.logTail();
    await containerd.daemon.stop();
    const found = await sweep(dir, [CGROUP_PARENT]);
    if (found.length === 0) return found;
    return [...found, `dockerd ${killed === true ? 'did not exit on SIGTERM within the grace and was killed' : 'exited on SIGTERM'}; its log ends:\n${log ?? '(no log)'}`];
  };
  try {
    // Registered as a user would: a runtimes entry naming the absolute path of bin/stockade.
    const config = join(dir, 'daemon.json');
    writeFileSync(config, `${JSON.stringify({ runtimes: { stockade: { path: STOCKADE }, 'stockade-vm': { path: STOCKADE, runtimeArgs: runtimeArgs('stockade-vm') }, 'stockade-sentry': { path: STOCKADE, runtimeArgs: runtimeArgs('stockade-sentry') } } }, null, 2)}\n`);
    const socket = join(dir, 'docker.sock');
    const env = { ...process.env, DOCKER_CONFIG: join(dir, 'client-config') };
    mkdirSync(join(dir, 'client-config'), { recursive: true });
    const base = [dockerClient() ?? 'docker', '--host', `unix://${socket}`];
    dockerd = await Daemon.start([
      'dockerd', '--config-file', config, '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'),
      '--pidfile', join(dir, 'dockerd.pid'), '--host', `unix://${socket}`, '--containerd', containerd.address,
      '--bridge', 'none', '--iptables=false', '--ip6tables=false', '--ip-masq=false', '--storage-driver', 'vfs',
      '--cgroup-parent', CGROUP_PARENT,
    ], join(dir, 'dockerd.log'), async () => existsSync(socket) && (await runCmd([...base, 'version'], { env, timeout: 5000 })).status === 0);
    client = new DockerLikeClient({ name: 'docker', base, env, cwd: dir, runFlags: ['--network', 'none'], rmFlags: [], runtimeFlag: 'run',
      oomUnreported: (rt) => (rt === 'stockade-vm' ? VM_OOM_UNREPORTED : undefined),
      // Docker 20.10 gives every runtime the same root, <exec-root>/runtime-runc, with containerd's
      // namespace below it: the shim's options.json reads {"binary_name": ".../bin/stockade",
      // "root": ".../runtime-runc"}. So here the check shows that a runtime ran, not which.
      stateRoot: () => join(dir, 'exec', 'runtime-runc'),
    });
    await mustRun([...base, 'load', '--input', archive], { env, timeout: 120_000 });
  } catch (e) {
    await stop();
    throw e;
  }
  return { client, stop };
}
