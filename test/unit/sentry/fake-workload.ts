// A workload that is only memory, for the sentry's handlers: its memory and listener in-process, the syscalls real.
import { fstatSync, readFileSync, readlinkSync, writeSync } from 'node:fs';
import { sentryNative } from '../../../src/native/addon';
import type { SentryKernel } from '../../../src/sentry/native';

/** A workload that is only memory: strings and buffers at made-up addresses. */
export class FakeWorkload {
  readonly #regions = new Map<bigint, Buffer>();
  #next = 0x10000n;
  reads = 0;
  gone = false;
  replies: { id: bigint; value: bigint; error: number; flags: number }[] = [];
  injected: { path: string; content: string | undefined; cloexec: boolean; mode: number; writable: boolean }[] = [];

  put(data: Buffer | string): bigint {
    const b = typeof data === 'string' ? Buffer.from(`${data}\0`) : data;
    const addr = this.#next;
    this.#regions.set(addr, b);
    this.#next += BigInt(b.length + 4096);
    return addr;
  }

  alloc(len: number): bigint {
    return this.put(Buffer.alloc(len));
  }

  at(addr: bigint): Buffer {
    const b = this.#regions.get(addr);
    if (b === undefined) throw new Error(`no region at ${addr}`);
    return b;
  }

  kernel(): SentryKernel {
    const sys = sentryNative().syscall;
    return {
      sys,
      listener: {
        recv: () => 1,
        send: (id, value, error, flags) => {
          this.replies.push({ id, value, error, flags });
          return 0;
        },
        addfd: (id, fd, newfdFlags) => {
          const path = readlinkSync(`/proc/self/fd/${fd}`);
          let content: string | undefined;
          try {
            content = readFileSync(`/proc/self/fd/${fd}`, 'utf8');
          } catch { /* a directory */ }
          let writable = true;
          try {
            // A zero-length write asks only whether the description was opened for writing.
            writeSync(fd, '');
          } catch {
            writable = false;
          }
          this.injected.push({ path, content, cloexec: newfdFlags !== 0, mode: fstatSync(fd).mode, writable });
          this.replies.push({ id, value: 100n, error: 0, flags: 0 });
          return 100;
        },
        idValid: () => !this.gone,
      },
      memory: {
        read: (_pid, addr, buf, len) => {
          this.reads++;
          const b = this.#regions.get(addr);
          if (b === undefined) return -14;
          b.copy(buf, 0, 0, len);
          return Math.min(len, b.length);
        },
        readString: (_pid, addr) => {
          this.reads++;
          const b = this.#regions.get(addr);
          if (b === undefined) return -14;
          return b.toString('utf8', 0, b.indexOf(0));
        },
        write: (_pid, addr, data, len) => {
          const b = this.#regions.get(addr);
          if (b === undefined) return -14;
          Buffer.from(data.buffer, data.byteOffset, len).copy(b);
          return len;
        },
      },
    };
  }
}
