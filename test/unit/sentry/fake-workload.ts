// A workload that is only memory, for the sentry's handlers: its memory and listener in-process, the syscalls real.
import { fstatSync, readFileSync, readlinkSync, writeSync } from 'node:fs';
import { sentryNative } from '../../../src/native/addon';
import { AUDIT_ARCH_X86_64, SYSCALLS_X86_64 } from '../../../src/abi/linux/syscalls-x86_64';
import { UTS_LEN } from '../../../src/abi/linux/structs';
import type { Sentry } from '../../../src/sentry/kernel';
import type { SentryKernel } from '../../../src/sentry/native';
import type { Notification } from '../../../src/sentry/notification';

/** Every capability: the identity of a root caller in these tests. */
export const ALL_CAPS = (1n << 41n) - 1n;

let nextId = 1n;

/** A notification of syscall `call` (a name, or a number no table has) from this process, with a fresh id. */
export function notification(call: string | number, ...args: bigint[]): Notification {
  const nr = typeof call === 'number' ? call : SYSCALLS_X86_64[call];
  if (nr === undefined) throw new Error(`no syscall ${call}`);
  const full = [...args, 0n, 0n, 0n, 0n, 0n, 0n].slice(0, 6) as unknown as Notification['args'];
  return { id: nextId++, pid: process.pid, nr, arch: AUDIT_ARCH_X86_64, args: full };
}

/** Has `s` serve syscall `name` from this process, then gives the thread back its own identity. */
export function call(s: Sentry, name: string, ...args: bigint[]): Notification {
  const n = notification(name, ...args);
  s.answer(n);
  // The sentry's thread keeps the caller's identity after an answer; this thread is the test's too.
  s.creds.asSentry();
  return n;
}

/** Has `s` serve uname into `w`'s memory: the six fields of the struct utsname it wrote. */
export function unameOf(s: Sentry, w: FakeWorkload): string[] {
  const out = w.alloc(UTS_LEN * 6);
  call(s, 'uname', out);
  return [0, 1, 2, 3, 4, 5].map((i) => {
    const f = w.at(out).subarray(UTS_LEN * i, UTS_LEN * (i + 1));
    return f.toString('utf8', 0, f.indexOf(0));
  });
}

/** A workload that is only memory: strings and buffers at made-up addresses. */
export class FakeWorkload {
  readonly #regions = new Map<bigint, Buffer>();
  #next = 0x10000n;
  reads = 0;
  gone = false;
  replies: { id: bigint; value: bigint; error: number; flags: number }[] = [];
  injected: { path: string; content: string | undefined; cloexec: boolean; mode: number; writable: boolean }[] = [];
  /** The caller's effective capabilities as the sentry reads them: the caller is this root process, whose own are all. */
  caps = ALL_CAPS;

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
      callerCaps: () => this.caps,
      listener: {
        recv: () => 1,
        send: (id, value, error, flags) => {
          this.replies.push({ id, value, error, flags });
          return 0;
        },
        addfd: (id, fd, newfdFlags) => {
          const path = readlinkSync(`/proc/self/fd/${fd}`);
          let content: string | undefined;
          // Reopening a FIFO by its link would wait for a writer: only regular files are read.
          if (fstatSync(fd).isFile()) content = readFileSync(`/proc/self/fd/${fd}`, 'utf8');
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
