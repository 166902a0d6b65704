// A Kubernetes node's runtime half, made for one test run: Debian's containerd with its CRI plugin,
// a runtime class per stockade level (and runc's), a CNI bridge network and test-built images.
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { STOCKADE } from '../integration/harness';
import { RUN_TAG } from '../helpers/run-scope';
import { Daemon, onPath, sweep } from '../clients/daemons';
import { mustRun } from '../clients/exec';
import { buildImageArchive } from '../clients/image';
import { CriClient } from './cri-client';

export interface RuntimeClass {
  /** The CRI runtime handler name a pod's RuntimeClass names. */
  readonly handler: string;
  /** The stockade level, or undefined for runc (the peer). */
  readonly level?: string;
}

/**
 * One runtime class per stockade level, each containerd's runc shim with BinaryName naming a
 * two-line executable this file writes: `exec stockade --isolation LEVEL "$@"`. Why not less:
 * - the runc shim's options (BinaryName, Root, ...) hold no arguments for the binary;
 * - a class-wide annotation through base_runtime_spec reaches the pod's containers but not its
 *   sandbox: containerd 1.6 builds the sandbox container's spec without the base spec (seen here:
 *   the pause container ran at the default level), and at `sentry` the sandbox is what starts the
 *   pod's sentry;
 * - the pod_annotations pass-through would make the level each pod's choice, not the class's.
 * At vm each of a pod's containers is a VM of its own for now (issue 14 item 2: one VM per pod).
 */
export const STOCKADE_CLASSES: readonly RuntimeClass[] = [
  { handler: 'stockade', level: 'namespaces' },
  { handler: 'stockade-sentry', level: 'sentry' },
  { handler: 'stockade-vm', level: 'vm' },
];

/** runc's class, for the benchmark's baseline. */
export const RUNC_CLASS: RuntimeClass = { handler: 'runc' };

export const PAUSE_IMAGE = 'docker.io/library/stockade-pause:test';
export const WORKLOAD_IMAGE = 'docker.io/library/stockade-test:busybox';

/** Why the CRI node cannot be started here, or undefined. */
export function criMissing(): string | undefined {
  for (const p of ['containerd', 'ctr', 'containerd-shim-runc-v2', 'runc']) {
    if (onPath(p) === undefined) return `${p} is not installed (apt-get install containerd runc)`;
  }
  for (const p of ['bridge', 'host-local', 'loopback']) {
    if (!existsSync(join(CNI_BIN, p))) return `${p} (containernetworking-plugins) is needed to give the CRI test's pods a network`;
  }
  return undefined;
}

const CNI_BIN = '/usr/lib/cni';

export interface PodNetwork {
  /** The bridge on the host; unique per run (two suites may run at once). */
  readonly bridge: string;
  /** host-local's range, a /24 picked per run from 10.200.0.0/13. */
  readonly subnet: string;
  /** The bridge's own address, the pods' gateway. */
  readonly gateway: string;
  /** The first three octets, for "is this address in the range". */
  readonly prefix: string;
}

export interface CriNode {
  readonly dir: string;
  readonly client: CriClient;
  readonly network: PodNetwork;
  /** The stockade --root (or runc --root) each runtime class's shim hands its binary. */
  stateRoot(handler: string): string;
  /** A cgroup parent below this run's own, for a pod's LinuxPodSandboxConfig. */
  cgroupParent(pod: string): string;
  /** Stops containerd, sweeps what is left; returns what had to be swept (a clean run leaves nothing). */
  stop(): Promise<string[]>;
}

const CAP_SYS_RESOURCE = 24;

function hasCapability(cap: number): boolean {
  const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('CapEff:'));
  return line !== undefined && ((BigInt(`0x${line.slice('CapEff:'.length).trim()}`) >> BigInt(cap)) & 1n) === 1n;
}

function toml(s: string): string {
  return JSON.stringify(s);
}

function containerdConfig(dir: string, classes: readonly RuntimeClass[]): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  const lines = [
    'version = 2',
    `root = ${toml(join(dir, 'root'))}`,
    `state = ${toml(join(dir, 'state'))}`,
    '[grpc]',
    `  address = ${toml(join(dir, 'containerd.sock'))}`,
    '[ttrpc]',
    '  address = ""',
    '[debug]',
    '  address = ""',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${toml(join(dir, 'opt'))}`,
    `[${cri}]`,
    `  sandbox_image = ${toml(PAUSE_IMAGE)}`,
    // The streaming server (Exec's URL) on loopback, on a port of the kernel's choosing.
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    '  enable_selinux = false',
    // CRI gives a pod's sandbox oom_score_adj -998, below containerd's own; lowering it takes
    // CAP_SYS_RESOURCE, which root lacks where it runs inside a container (as on these machines):
    // containerd's own switch for that case caps the score at its own.
    `  restrict_oom_score_adj = ${String(!hasCapability(CAP_SYS_RESOURCE))}`,
    `[${cri}.containerd]`,
    '  snapshotter = "overlayfs"',
    '  default_runtime_name = "runc"',
  ];
  for (const c of classes) {
    const rt = `${cri}.containerd.runtimes.${toml(c.handler)}`;
    const binary = c.level === undefined ? onPath('runc') ?? 'runc' : writeWrapper(dir, { ...c, level: c.level });
    lines.push(`[${rt}]`, '  runtime_type = "io.containerd.runc.v2"', `[${rt}.options]`,
      `  BinaryName = ${toml(binary)}`,
      `  Root = ${toml(join(dir, 'runtime', c.handler))}`);
  }
  lines.push(`[${cri}.cni]`, `  bin_dir = ${toml(CNI_BIN)}`, `  conf_dir = ${toml(join(dir, 'net.d'))}`, '  max_conf_num = 1', '');
  return lines.join('\n');
}

/** The /24s (as "a.b.c") the host already routes, which a pod range must not shadow. */
function routedPrefixes(): Set<string> {
  const out = spawnSync('ip', ['-4', 'route', 'show'], { encoding: 'utf8' }).stdout ?? '';
  return new Set(out.split('\n').map((l) => /^(\d+\.\d+\.\d+)\.\d+/.exec(l)?.[1]).filter((p): p is string => p !== undefined));
}

function pickNetwork(): PodNetwork {
  // Per run: two suites at once must not share a bridge or a range (their gateways would collide).
  const taken = routedPrefixes();
  let prefix: string;
  do prefix = `10.${200 + randomInt(8)}.${randomInt(256)}`; while (taken.has(prefix));
  return { bridge: `scri${RUN_TAG.split('-')[1] ?? randomInt(1 << 24).toString(16)}`.slice(0, 15), subnet: `${prefix}.0/24`, gateway: `${prefix}.1`, prefix };
}

function writeCniConfig(dir: string, net: PodNetwork): void {
  const confDir = join(dir, 'net.d');
  mkdirSync(confDir, { recursive: true });
  writeFileSync(join(confDir, '10-stockade.conflist'), JSON.stringify({
    cniVersion: '0.4.0',
    name: `stockade-cri-${RUN_TAG}`,
    plugins: [{
      type: 'bridge',
      bridge: net.bridge,
      isGateway: true,
      // No masquerade: nothing here leaves the host, and no iptables rule is left to clean.
      ipMasq: false,
      ipam: {
        type: 'host-local',
        ranges: [[{ subnet: net.subnet, gateway: net.gateway }]],
        routes: [{ dst: '0.0.0.0/0' }],
        // host-local keeps its leases here rather than in the host's /var/lib/cni.
        dataDir: join(dir, 'cni-ipam'),
      },
    }],
  }, null, 2));
}

/** The executable a stockade class's shim runs as its runc: stockade at the class's level. */
function writeWrapper(dir: string, c: RuntimeClass & { level: string }): string {
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  const path = join(bin, `stockade-${c.level}`);
  writeFileSync(path, `#!/bin/sh\nexec ${STOCKADE} --isolation ${c.level} "$@"\n`, { mode: 0o755 });
  return path;
}

/** The cgroup directory every pod of this run is placed below (absolute, in every hierarchy). */
const CGROUP_TOP = `/stockade-cri-${RUN_TAG}`;

/**
 * Starts containerd on dir (short: unix socket paths must fit in 107 bytes) with CRI on, the
 * classes given, the pod network, and the pause and workload images imported into CRI's k8s.io
 * namespace from an archive built here.
 */
export async function startCriNode(dir: string, classes: readonly RuntimeClass[]): Promise<CriNode> {
  mkdirSync(dir, { recursive: true });
  const network = pickNetwork();
  writeCniConfig(dir, network);
  const config = join(dir, 'config.toml');
  // runc is CRI's default handler (a pod that names none), so it is always configured.
  const all = [RUNC_CLASS, ...classes.filter((c) => c.handler !== RUNC_CLASS.handler)];
  writeFileSync(config, containerdConfig(dir, all));
  const address = join(dir, 'containerd.sock');
  const imageDir = join(dir, 'image');
  mkdirSync(imageDir);
  const archive = buildImageArchive(imageDir, [
    { name: WORKLOAD_IMAGE, cmd: ['sh'] },
    // The pod's sandbox container holds its namespaces and does nothing else, as k8s' pause does.
    { name: PAUSE_IMAGE, cmd: ['/bin/sleep', '2147483647'] },
  ]);
  let client: CriClient | undefined;
  const log = join(dir, 'containerd.log');
  const daemon = await Daemon.start(['containerd', '--config', config], log, async () => {
    if (!existsSync(address)) return false;
    // containerd serves on without a plugin it could not load; CRI's absence would only show as a timeout.
    const failed = readFileSync(log, 'utf8').split('\n').find((l) => l.includes('failed to load plugin io.containerd.grpc.v1.cri'));
    if (failed !== undefined) throw new Error(`containerd's CRI plugin did not load: ${failed}`);
    client ??= new CriClient(address);
    return client.ready();
  });
  const stop = async (): Promise<string[]> => {
    client?.close();
    await daemon.stop();
    const left = await sweep(dir, [CGROUP_TOP]);
    // The bridge outlives its last pod (CNI's bridge plugin never deletes it).
    spawnSync('ip', ['link', 'delete', network.bridge], { stdio: 'ignore' });
    return left;
  };
  try {
    await mustRun(['ctr', '--address', address, '--namespace', 'k8s.io', 'images', 'import', archive], { timeout: 120_000 });
    if (client === undefined) throw new Error('containerd answered no CRI Version');
    // CRI learns of imported images from containerd's events: wait until it knows both.
    for (const image of [PAUSE_IMAGE, WORKLOAD_IMAGE]) await client.waitForImage(image);
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }
  return {
    dir, client, network,
    stateRoot: (handler) => join(dir, 'runtime', handler),
    cgroupParent: (pod) => `${CGROUP_TOP}/${pod}`,
    stop,
  };
}
