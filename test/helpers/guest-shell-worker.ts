// The worker thread behind guest-shell.ts: boots a VM with cgroup v2 alone and keeps one busybox
// shell running in it; each request from the main thread (which waits on it synchronously) is a
// shell command line whose output and status come back.
import { randomBytes } from 'node:crypto';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { bootVm, type Vm, type VmProcess } from '../../src/vm/vm';
import type { GuestAssets } from '../../src/vm/assets';

export interface WorkerInit {
  rootfs: string;
  runParent: string;
  assets: GuestAssets;
  kernelArgs: string[];
  memoryMiB: number;
  /** Int32 flag: the worker sets it to 1 once a reply is on `port`. */
  flag: SharedArrayBuffer;
  port: MessagePort;
}

/** A command line run in the guest's shell; `wrap` runs it in a subshell whose output (stdout and stderr) is collected whole. */
export interface ShellRequest { kind: 'sh'; line: string; wrap: boolean }
export type Request = ShellRequest | { kind: 'destroy' };
export type Reply = { ok: true; status: number; output: string } | { ok: false; error: string };

const init = workerData as WorkerInit;
const flag = new Int32Array(init.flag);

let vm: Vm | undefined;
let shell: VmProcess | undefined;
let out = '';
let waiter: (() => void) | undefined;
let shellEnded = false;

function reply(r: Reply): void {
  init.port.postMessage(r);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
}

async function runLine(line: string, wrap: boolean): Promise<{ status: number; output: string }> {
  if (shell === undefined) throw new Error('the guest shell is not running');
  // A marker no command's output can hold by chance ends each reply.
  const nonce = randomBytes(8).toString('hex');
  const script = wrap
    ? `r=$( { ${line}\n} 2>&1 ); s=$?; printf '%s\\n@@${nonce} %d\\n' "$r" "$s"\n`
    : `{ ${line}\n} 2>&1; printf '\\n@@${nonce} %d\\n' "$?"\n`;
  const marker = new RegExp(`\\n@@${nonce} (\\d+)\\n`);
  await shell.write(script);
  for (;;) {
    const m = marker.exec(out);
    if (m !== null) {
      const output = out.slice(0, m.index);
      out = out.slice(m.index + m[0].length);
      return { status: Number(m[1]), output };
    }
    if (vm?.failure !== undefined) throw vm.failure;
    if (shellEnded) throw new Error(`the guest's shell ended; its last output: ${out.slice(-500)}`);
    await new Promise<void>((r) => { waiter = r; });
  }
}

async function boot(): Promise<void> {
  vm = await bootVm({ rootfs: init.rootfs, runParent: init.runParent, assets: init.assets, kernelArgs: init.kernelArgs, memoryMiB: init.memoryMiB });
  shell = await vm.spawn({
    args: ['/bin/sh'],
    stdin: true,
    onStdout: (b) => { out += b.toString('utf8'); waiter?.(); },
    onStderr: (b) => { out += b.toString('utf8'); waiter?.(); },
  });
  // The shell ending (or the VM failing under it) wakes a pending request, which then says why.
  const ended = (): void => { shellEnded = true; waiter?.(); };
  void shell.wait().then(ended, ended);
  // The chroot's own /proc, /sys and cgroup2 at /sys/fs/cgroup (nothing else mounts a cgroup file
  // system in the guest), a tmpfs for scratch files, and the guest's devices.
  const setup = await runLine('mount -t proc proc /proc && mount -t sysfs sysfs /sys && mount -t cgroup2 cgroup2 /sys/fs/cgroup && mount -t tmpfs tmpfs /tmp && mount -t devtmpfs devtmpfs /dev', false);
  if (setup.status !== 0) throw new Error(`guest setup failed (${setup.status}): ${setup.output}`);
}

init.port.on('message', (req: Request) => {
  void (async () => {
    try {
      if (req.kind === 'destroy') {
        await vm?.destroy();
        reply({ ok: true, status: 0, output: '' });
        return;
      }
      const r = await runLine(req.line, req.wrap);
      reply({ ok: true, ...r });
    } catch (e) {
      reply({ ok: false, error: e instanceof Error ? e.message : String(e) });
    }
  })();
});

boot().then(
  () => parentPort?.postMessage({ ready: true, kernel: vm?.kernelRelease ?? '' }),
  (e: unknown) => parentPort?.postMessage({ ready: false, error: e instanceof Error ? e.message : String(e) }),
);
