// A VM booted with cgroup v2 alone, whose busybox shell the main thread drives synchronously, and
// a CgroupFs over it: the cgroup managers' reads, writes, mkdir and rmdir done by the guest's
// kernel. The managers are synchronous, so the VM lives in a worker thread and each call waits
// on it (Atomics.wait), which the main thread may do in Node.
import { once } from 'node:events';
import { join } from 'node:path';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { STRERROR, type CgroupFs } from '../../src/cgroups/fs';
import type { GuestAssets } from '../../src/vm/assets';
import type { Reply, Request, WorkerInit } from './guest-shell-worker';

const CODE_OF = new Map(Object.entries(STRERROR).map(([code, words]) => [words, code]));

/** Single quotes for sh: any string as one word. */
export function shq(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

export interface ShellResult { status: number; output: string }

export class GuestShell {
  readonly #worker: Worker;
  readonly #port: MessageChannel['port1'];
  readonly #flag: Int32Array;
  kernel = '';

  private constructor(worker: Worker, port: MessageChannel['port1'], flag: Int32Array) {
    this.#worker = worker;
    this.#port = port;
    this.#flag = flag;
  }

  /** Boots the VM (`cgroup_no_v1=all` on its command line) and its shell; resolves once the shell answered. */
  static async boot(o: { rootfs: string; runParent: string; assets: GuestAssets; memoryMiB?: number }): Promise<GuestShell> {
    const flag = new SharedArrayBuffer(4);
    const { port1, port2 } = new MessageChannel();
    const init: WorkerInit = {
      rootfs: o.rootfs, runParent: o.runParent, assets: o.assets, kernelArgs: ['cgroup_no_v1=all'],
      memoryMiB: o.memoryMiB ?? 256, flag, port: port2,
    };
    const worker = new Worker(join(__dirname, 'guest-shell-worker.js'), { workerData: init, transferList: [port2] });
    const g = new GuestShell(worker, port1, new Int32Array(flag));
    const [msg] = await Promise.race([once(worker, 'message'), once(worker, 'error').then(([e]) => { throw e; })]) as [{ ready: boolean; error?: string; kernel?: string }];
    if (!msg.ready) {
      await worker.terminate();
      throw new Error(`the cgroup v2 guest did not start: ${msg.error ?? ''}`);
    }
    g.kernel = msg.kernel ?? '';
    return g;
  }

  #call(req: Request, timeoutMs = 120000): ShellResult {
    Atomics.store(this.#flag, 0, 0);
    this.#port.postMessage(req);
    if (Atomics.wait(this.#flag, 0, 0, timeoutMs) === 'timed-out') throw new Error(`the guest did not answer within ${timeoutMs} ms: ${JSON.stringify(req)}`);
    const got = receiveMessageOnPort(this.#port);
    if (got === undefined) throw new Error('the guest worker flagged a reply but sent none');
    const r = got.message as Reply;
    if (!r.ok) throw new Error(`guest: ${r.error}`);
    return { status: r.status, output: r.output };
  }

  /** Runs LINE in the guest's shell itself (so `&` jobs are its children and `wait` works); stderr goes with stdout. */
  sh(line: string): ShellResult {
    return this.#call({ kind: 'sh', line, wrap: false });
  }

  /** Runs LINE in a subshell and collects its output whole (an `exit` ends only the subshell). */
  sub(line: string): ShellResult {
    return this.#call({ kind: 'sh', line, wrap: true });
  }

  /** sh(LINE), failing the test when its status is not 0. */
  must(line: string): string {
    const r = this.sh(line);
    if (r.status !== 0) throw new Error(`guest: \`${line}\` exited ${r.status}: ${r.output.trim()}`);
    return r.output;
  }

  async destroy(): Promise<void> {
    try {
      this.#call({ kind: 'destroy' });
    } finally {
      this.#port.close();
      await this.#worker.terminate();
    }
  }

  /**
   * The guest's cgroup file system as the managers reach files. Under TCG an exec'd applet costs
   * 300-600 ms and a shell builtin in a subshell about 30, so every operation but mkdir, rmdir and
   * rm is made of builtins (read, echo, test, globs).
   */
  readonly fs: CgroupFs = {
    readFile: (p) => this.#op(`${missing(p)}; while IFS= read -r l || [ -n "$l" ]; do printf '%s\\n' "$l"; done < ${shq(p)}`, p),
    // `>` would create a missing file; the host's write opens without O_CREAT.
    writeFile: (p, v) => { this.#op(`${missing(p)}; echo -n ${shq(v)} > ${shq(p)}`, p); },
    exists: (p) => this.sh(`[ -e ${shq(p)} ]`).status === 0,
    mkdir: (p) => { this.#op(`mkdir ${shq(p)}`, p); },
    rmdir: (p) => { this.#op(`rmdir ${shq(p)}`, p); },
    unlink: (p) => { this.#op(`rm ${shq(p)}`, p); },
    subdirs: (p) => lines(this.#op(`${missing(p)}; for d in ${shq(p)}/* ${shq(p)}/.[!.]*; do [ -d "$d" ] && [ ! -L "$d" ] && echo "\${d##*/}"; done; true`, p)),
    entries: (p) => lines(this.#op(`${missing(p)}; for d in ${shq(p)}/* ${shq(p)}/.[!.]*; do [ -e "$d" ] || continue; if [ -f "$d" ]; then echo "f \${d##*/}"; else echo "o \${d##*/}"; fi; done; true`, p))
      .map((l) => ({ name: l.slice(2), file: l.startsWith('f ') })),
  };

  // A failed command's message ends with strerror's words ("rmdir: 'P': Device or resource busy"):
  // they become the errno code node:fs would have thrown.
  #op(line: string, path: string): string {
    const r = this.sub(line);
    if (r.status === 0) return r.output;
    const message = r.output.trim();
    const words = message.slice(message.lastIndexOf(': ') + 2);
    const e = new Error(`${message} (guest, ${path})`) as Error & { code?: string };
    const code = CODE_OF.get(words);
    if (code !== undefined) e.code = code;
    throw e;
  }
}

/** Ends the subshell as node:fs would fail on a missing path. */
function missing(p: string): string {
  return `[ -e ${shq(p)} ] || { echo ": No such file or directory"; exit 1; }`;
}

function lines(s: string): string[] {
  return s.split('\n').filter((l) => l !== '');
}
