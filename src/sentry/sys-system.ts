// What the workload learns of the system: uname and sysinfo from the container's view, message queue names.
import { NR } from './native';
import { continueBecause, type Notification } from './notification';
import type { Sentry } from './kernel';
import type { Handler } from './handlers';
import { containerUtsname } from './uname';
import { containerMemory, containerUptime } from './procfs';

const SYSINFO_SIZE = 112;

/** mq_open and mq_unlink name queues in the caller's own IPC namespace's mqueue file system. */
const IN_CALLER_IPC = continueBecause('message queues of the container\'s own IPC namespace');

function uname(s: Sentry, n: Notification): number {
  const b = containerUtsname(s);
  return s.writeBack(n, n.args[0], b, b.length);
}

/**
 * The container's memory as /proc/meminfo shows it (its cgroup's limit and usage), its uptime as
 * /proc/uptime does, no host load. mem_unit stays the kernel's.
 */
function sysinfo(s: Sentry, n: Notification): number {
  const b = Buffer.alloc(SYSINFO_SIZE);
  const r = s.k.sys(NR.sysinfo, b);
  if (r < 0) return r;
  const unit = BigInt(b.readUInt32LE(104) || 1);
  const mem = s.onHost(() => ({ m: containerMemory(s, n.pid), up: containerUptime(s) }));
  b.writeBigInt64LE(BigInt(Math.floor(mem.up)), 0);
  for (let i = 0; i < 3; i++) b.writeBigUInt64LE(0n, 8 + 8 * i);
  b.writeBigUInt64LE(mem.m.total / unit, 32);
  b.writeBigUInt64LE((mem.m.total - mem.m.used) / unit, 40);
  b.writeBigUInt64LE((mem.m.stat.get('shmem') ?? 0n) / unit, 48);
  b.writeBigUInt64LE(0n, 56);
  b.writeBigUInt64LE(mem.m.swapTotal / unit, 64);
  b.writeBigUInt64LE((mem.m.swapTotal - mem.m.swapUsed) / unit, 72);
  b.writeUInt16LE(1, 80);
  return s.writeBack(n, n.args[0], b, SYSINFO_SIZE);
}

export const SYSTEM_HANDLERS: Readonly<Record<string, Handler>> = {
  uname,
  sysinfo,
  mq_open: () => IN_CALLER_IPC,
  mq_unlink: () => IN_CALLER_IPC,
};
