// What the workload learns of the system: uname and sysinfo from the container's view, message queue names.
import { NR } from './native';
import { continueBecause, type Notification } from './notification';
import type { Sentry } from './kernel';
import type { Handler } from './handlers';

const UTS_LEN = 65;
const SYSINFO_SIZE = 112;

/** mq_open and mq_unlink name queues in the caller's own IPC namespace's mqueue file system. */
const IN_CALLER_IPC = continueBecause('message queues of the container\'s own IPC namespace');

let hostUname: string[] | undefined;

function hostFields(s: Sentry): string[] {
  if (hostUname !== undefined) return hostUname;
  const b = Buffer.alloc(UTS_LEN * 6);
  s.k.sys(NR.uname, b);
  hostUname = [0, 1, 2, 3, 4, 5].map((i) => {
    const f = b.subarray(UTS_LEN * i, UTS_LEN * (i + 1));
    const end = f.indexOf(0);
    return f.toString('utf8', 0, end < 0 ? UTS_LEN : end);
  });
  return hostUname;
}

/**
 * The container's names, and of the host kernel only its major and minor version (programs gate
 * features on it) and the machine: not its build string, patch level or host name.
 */
export function containerUname(s: Sentry): string[] {
  const host = hostFields(s);
  const version = /^(\d+)\.(\d+)/.exec(host[2] ?? '');
  return [
    'Linux',
    s.opts.hostname,
    version === null ? '6.0.0' : `${version[1] ?? '6'}.${version[2] ?? '0'}.0-stockade`,
    '#1 SMP stockade sentry',
    host[4] ?? 'x86_64',
    s.opts.domainname === '' ? '(none)' : s.opts.domainname,
  ];
}

function uname(s: Sentry, n: Notification): number {
  const b = Buffer.alloc(UTS_LEN * 6);
  containerUname(s).forEach((f, i) => b.write(f.slice(0, UTS_LEN - 1), UTS_LEN * i, 'utf8'));
  return s.writeBack(n, n.args[0], b, b.length);
}

/** The host's memory and swap totals (what /proc/meminfo shows a container too), its own uptime, no host load. */
function sysinfo(s: Sentry, n: Notification): number {
  const b = Buffer.alloc(SYSINFO_SIZE);
  const r = s.k.sys(NR.sysinfo, b);
  if (r < 0) return r;
  b.writeBigInt64LE(BigInt(Math.floor((Date.now() - s.started) / 1000)), 0);
  for (let i = 0; i < 3; i++) b.writeBigUInt64LE(0n, 8 + 8 * i);
  b.writeUInt16LE(1, 80);
  return s.writeBack(n, n.args[0], b, SYSINFO_SIZE);
}

export const SYSTEM_HANDLERS: Readonly<Record<string, Handler>> = {
  uname,
  sysinfo,
  mq_open: () => IN_CALLER_IPC,
  mq_unlink: () => IN_CALLER_IPC,
};
