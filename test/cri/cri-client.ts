// A CRI client as the kubelet is one: runtime.v1's RuntimeService and ImageService over containerd's
// unix socket (gRPC), and the streaming Exec the kubelet hands kubectl (a websocket to the URL Exec returns).
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { WebSocket } from 'ws';
import { packageRoot } from '../../src/native/paths';

// Messages as proto-loader hands them over (camelCase fields, enums as names, int64 as numbers).
// Only the fields the tests read or write; test/cri/runtime-v1.proto holds the wire definitions.

export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';
export interface NamespaceOption { network?: NamespaceMode; pid?: NamespaceMode; ipc?: NamespaceMode }
export interface PodSandboxConfig {
  metadata: { name: string; uid: string; namespace: string; attempt?: number };
  hostname?: string;
  logDirectory?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: { cgroupParent?: string; securityContext?: { namespaceOptions?: NamespaceOption }; resources?: LinuxContainerResources };
}
export interface LinuxContainerResources {
  cpuPeriod?: number;
  cpuQuota?: number;
  cpuShares?: number;
  memoryLimitInBytes?: number;
}
export interface ContainerConfig {
  metadata: { name: string; attempt?: number };
  image: { image: string };
  command?: string[];
  args?: string[];
  envs?: { key: string; value: string }[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  logPath?: string;
  linux?: { resources?: LinuxContainerResources; securityContext?: { namespaceOptions?: NamespaceOption } };
}
export type ContainerState = 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';
export interface ContainerStatus {
  id: string;
  state: ContainerState;
  createdAt: number;
  startedAt: number;
  finishedAt: number;
  exitCode: number;
  reason: string;
  message: string;
}
export interface PodSandboxStatus {
  id: string;
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  network: { ip: string } | null;
  runtimeHandler: string;
}
export interface ExecSyncResult { stdout: Buffer; stderr: Buffer; exitCode: number }

/** What containerd's verbose "info" (JSON) says of a sandbox or container: its pid and its OCI spec. */
export interface RuntimeInfo {
  pid: number;
  runtimeSpec: {
    annotations?: Record<string, string>;
    linux?: { cgroupsPath?: string; namespaces?: { type: string; path?: string }[] };
  };
}

type Unary = (req: object, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

const PROTO = join(packageRoot(), 'test', 'cri', 'runtime-v1.proto');

function loadServices(): { runtime: grpc.ServiceClientConstructor; image: grpc.ServiceClientConstructor } {
  const def = protoLoader.loadSync(PROTO, { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { runtime: { v1: Record<string, grpc.ServiceClientConstructor> } };
  const runtime = pkg.runtime.v1['RuntimeService'];
  const image = pkg.runtime.v1['ImageService'];
  if (runtime === undefined || image === undefined) throw new Error(`${PROTO}: RuntimeService or ImageService missing`);
  return { runtime, image };
}

export class CriClient {
  readonly #runtime: grpc.Client;
  readonly #image: grpc.Client;

  constructor(socket: string) {
    const { runtime, image } = loadServices();
    this.#runtime = new runtime(`unix://${socket}`, grpc.credentials.createInsecure());
    this.#image = new image(`unix://${socket}`, grpc.credentials.createInsecure());
  }

  #call<T>(client: grpc.Client, method: string, req: object): Promise<T> {
    const fn = (client as unknown as Record<string, Unary | undefined>)[method];
    if (fn === undefined) throw new Error(`CRI has no method ${method}`);
    return new Promise((resolve, reject) => {
      fn.call(client, req, (err, res) => {
        if (err !== null) reject(new Error(`CRI ${method}: ${err.details || err.message}`));
        else resolve(res as T);
      });
    });
  }

  #rt<T>(method: string, req: object): Promise<T> { return this.#call<T>(this.#runtime, method, req); }

  /** Whether CRI answers (containerd up and its CRI plugin loaded). */
  async ready(): Promise<boolean> {
    try {
      await this.#rt('Version', { version: 'v1' });
      return true;
    } catch {
      return false;
    }
  }

  async waitForImage(image: string, ms = 30_000): Promise<void> {
    const end = Date.now() + ms;
    for (;;) {
      const r = await this.#call<{ image: { id: string } | null }>(this.#image, 'ImageStatus', { image: { image } });
      if (r.image !== null && r.image.id !== '') return;
      if (Date.now() > end) throw new Error(`CRI does not know the image ${image} after ${ms} ms`);
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  async runPodSandbox(config: PodSandboxConfig, runtimeHandler: string): Promise<string> {
    return (await this.#rt<{ podSandboxId: string }>('RunPodSandbox', { config, runtimeHandler })).podSandboxId;
  }

  async podSandboxStatus(id: string): Promise<{ status: PodSandboxStatus; info: RuntimeInfo }> {
    const r = await this.#rt<{ status: PodSandboxStatus; info: Record<string, string> }>('PodSandboxStatus', { podSandboxId: id, verbose: true });
    return { status: r.status, info: JSON.parse(r.info['info'] ?? '{}') as RuntimeInfo };
  }

  async stopPodSandbox(id: string): Promise<void> { await this.#rt('StopPodSandbox', { podSandboxId: id }); }
  async removePodSandbox(id: string): Promise<void> { await this.#rt('RemovePodSandbox', { podSandboxId: id }); }

  async createContainer(podSandboxId: string, config: ContainerConfig, sandboxConfig: PodSandboxConfig): Promise<string> {
    return (await this.#rt<{ containerId: string }>('CreateContainer', { podSandboxId, config, sandboxConfig })).containerId;
  }

  async startContainer(id: string): Promise<void> { await this.#rt('StartContainer', { containerId: id }); }
  async stopContainer(id: string, timeoutSeconds: number): Promise<void> { await this.#rt('StopContainer', { containerId: id, timeout: timeoutSeconds }); }
  async removeContainer(id: string): Promise<void> { await this.#rt('RemoveContainer', { containerId: id }); }

  async containerStatus(id: string): Promise<{ status: ContainerStatus; info: RuntimeInfo }> {
    const r = await this.#rt<{ status: ContainerStatus; info: Record<string, string> }>('ContainerStatus', { containerId: id, verbose: true });
    return { status: r.status, info: JSON.parse(r.info['info'] ?? '{}') as RuntimeInfo };
  }

  async updateContainerResources(id: string, linux: LinuxContainerResources): Promise<void> {
    await this.#rt('UpdateContainerResources', { containerId: id, linux });
  }

  async execSync(id: string, cmd: string[], timeoutSeconds = 30): Promise<ExecSyncResult> {
    return this.#rt<ExecSyncResult>('ExecSync', { containerId: id, cmd, timeout: timeoutSeconds });
  }

  /** Exec: the URL of containerd's streaming server for this exec (one use, short-lived). */
  async exec(id: string, cmd: string[], opts: { stdin?: boolean; tty?: boolean } = {}): Promise<string> {
    const tty = opts.tty === true;
    const r = await this.#rt<{ url: string }>('Exec', { containerId: id, cmd, tty, stdin: opts.stdin === true, stdout: true, stderr: !tty });
    return r.url;
  }

  close(): void {
    this.#runtime.close();
    this.#image.close();
  }
}

export interface StreamResult { stdout: string; stderr: string; exitCode: number }

/**
 * Runs the exec behind a streaming URL the way kubectl exec does over a websocket: the
 * v4.channel.k8s.io subprotocol, where every message starts with its channel (0 stdin, 1 stdout,
 * 2 stderr, 3 the exit status as a JSON Status object). stdin, when given, is sent whole; v4 has no
 * way to close it, so a command given stdin must know when it has read enough.
 */
export function streamExec(url: string, stdin?: string, timeoutMs = 30_000): Promise<StreamResult> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), ['v4.channel.k8s.io'], { origin: 'http://127.0.0.1' });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let status: string | undefined;
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`streaming exec ${url}: no end after ${timeoutMs} ms`));
    }, timeoutMs);
    ws.on('open', () => {
      if (stdin !== undefined) ws.send(Buffer.concat([Buffer.from([0]), Buffer.from(stdin)]));
    });
    ws.on('message', (data: Buffer) => {
      const channel = data[0];
      const body = data.subarray(1);
      if (channel === 1) out.push(body);
      else if (channel === 2) err.push(body);
      else if (channel === 3) status = (status ?? '') + body.toString();
    });
    ws.on('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`streaming exec ${url}: ${e.message}`));
    });
    ws.on('close', () => {
      clearTimeout(timer);
      if (ws.protocol !== 'v4.channel.k8s.io') {
        reject(new Error(`streaming exec ${url}: the server chose subprotocol ${JSON.stringify(ws.protocol)}, not v4.channel.k8s.io`));
        return;
      }
      try {
        resolve({ stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), exitCode: exitCodeOf(status) });
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}

// A v4 Status: {"status":"Success"}, or a Failure whose cause ExitCode carries the code.
function exitCodeOf(status: string | undefined): number {
  if (status === undefined) throw new Error('streaming exec: the server sent no exit status on channel 3');
  const s = JSON.parse(status) as { status?: string; reason?: string; message?: string; details?: { causes?: { reason?: string; message?: string }[] } };
  if (s.status === 'Success') return 0;
  const cause = s.details?.causes?.find((c) => c.reason === 'ExitCode');
  if (s.reason === 'NonZeroExitCode' && cause?.message !== undefined) return Number(cause.message);
  throw new Error(`streaming exec failed: ${status}`);
}
