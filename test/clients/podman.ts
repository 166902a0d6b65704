// podman on private storage with stockade registered in its containers.conf.
import { chmodSync, mkdirSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { STOCKADE } from '../integration/harness';
import { RUN_TAG } from '../helpers/run-scope';
import { runtimeArgs } from './client';
import { onPath, sweep } from './daemons';
import { DockerLikeClient } from './docker-like';
import { mustRun, shQuote } from './exec';
import type { StartedClient } from './suite';

// Per run: two runs on one host must not share (or sweep away) each other's cgroups.
const CGROUP_PARENT = `/stockade-clients-podman-${RUN_TAG}`;

// Seen on Debian 12 with podman 4.3.1 and conmon 2.1.6 on a hybrid host: runc's OOM-killed
// containers read OOMKilled=false too (exit status 137), so the report says nothing of the runtime.
// conmon does see the kill: its v1 handler writes the marker file `oom` into its working directory
// (podman's), not where podman looks for it.
const OOM_UNREPORTED = 'podman 4.3 (conmon 2.1.6) reports OOMKilled=false on a host without a unified cgroup hierarchy, with runc as well';

function unifiedCgroups(): boolean {
  const CGROUP2_SUPER_MAGIC = 0x63677270;
  return statfsSync('/sys/fs/cgroup').type === CGROUP2_SUPER_MAGIC;
}

/** Why the podman tier cannot run here, or undefined. */
export function podmanMissing(): string | undefined {
  for (const p of ['podman', 'conmon']) if (onPath(p) === undefined) return `${p} is not installed (apt-get install podman)`;
  return undefined;
}

/**
 * Each runtime is registered through a two-line wrapper that pins its --root to dir. podman 4.3
 * passes --runtime-flag to create and start but not to the delete its cleanup process runs, which
 * would then look in the runtime's default root (/run/runc, /run/stockade) and leave the state.
 */
function runtimeWrapper(dir: string, name: string, binary: string, args: readonly string[] = []): string {
  const path = join(dir, 'runtimes', name);
  mkdirSync(join(dir, 'runtimes'), { recursive: true });
  writeFileSync(path, `#!/bin/sh\nexec ${[binary, '--root', join(dir, `state-${name}`), ...args].map(shQuote).join(' ')} "$@"\n`);
  chmodSync(path, 0o755);
  return path;
}

export async function startPodman(dir: string, archive: string): Promise<StartedClient> {
  const conf = join(dir, 'containers.conf');
  writeFileSync(conf, [
    '[containers]',
    'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]',
    '[engine]',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    '[engine.runtimes]',
    `stockade = ["${runtimeWrapper(dir, 'stockade', STOCKADE)}"]`,
    `runc = ["${runtimeWrapper(dir, 'runc', onPath('runc') ?? 'runc')}"]`,
    `stockade-vm = ["${runtimeWrapper(dir, 'stockade-vm', STOCKADE, runtimeArgs('stockade-vm'))}"]`,
    `stockade-sentry = ["${runtimeWrapper(dir, 'stockade-sentry', STOCKADE, runtimeArgs('stockade-sentry'))}"]`,
    '',
  ].join('\n'));
  const env = { ...process.env, CONTAINERS_CONF: conf };
  const base = [
    'podman', '--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--tmpdir', join(dir, 'tmp'),
    '--volumepath', join(dir, 'volumes'), '--network-config-dir', join(dir, 'networks'), '--storage-driver', 'vfs',
  ];
  const client = new DockerLikeClient({
    name: 'podman', base, env, cwd: dir,
    runFlags: ['--network', 'none', '--cgroup-parent', CGROUP_PARENT],
    rmFlags: ['--time', '0'],
    runtimeFlag: 'global',
    stateRoot: (rt) => join(dir, `state-${rt}`),
    // At vm the keeper writes the `oom` file itself (conmon watches the VMM's host cgroup, where no
    // OOM happens), in the bundle directory, where podman 4.3 looks.
    oomUnreported: (rt) => (rt === 'stockade-vm' || unifiedCgroups() ? undefined : OOM_UNREPORTED),
  });
  const stop = async (): Promise<string[]> => {
    await client.removeAll().catch(() => undefined);
    return sweep(dir, [CGROUP_PARENT]);
  };
  try {
    await mustRun([...base, 'load', '--input', archive], { env, cwd: dir, timeout: 120_000 });
  } catch (e) {
    await stop();
    throw e;
  }
  return { client, stop };
}
