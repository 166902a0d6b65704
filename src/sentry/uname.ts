// The system's names as the container sees them: uname's fields, which /proc/version and /proc/sys/kernel repeat.
import { UTS_LEN } from '../abi/linux/structs';
import { NR } from './native';
import type { Sentry } from './kernel';

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

/** The host kernel's major and minor version ([0, 0] if its release does not say). */
export function hostKernelVersion(s: Sentry): [number, number] {
  const v = /^(\d+)\.(\d+)/.exec(hostFields(s)[2] ?? '');
  return v === null ? [0, 0] : [Number(v[1]), Number(v[2])];
}

/**
 * The container's names, and of the host kernel only its major and minor version (programs gate
 * features on it) and the machine: not its build string, patch level or host name.
 */
export function containerUname(s: Sentry): string[] {
  const host = hostFields(s);
  const [major, minor] = hostKernelVersion(s);
  return [
    'Linux',
    s.opts.hostname,
    major === 0 && minor === 0 ? '6.0.0' : `${major}.${minor}.0-stockade`,
    '#1 SMP stockade sentry',
    host[4] ?? 'x86_64',
    s.opts.domainname === '' ? '(none)' : s.opts.domainname,
  ];
}

/** The container's uname as the kernel writes struct utsname: each field NUL-terminated in its 65 bytes. */
export function containerUtsname(s: Sentry): Buffer {
  const b = Buffer.alloc(UTS_LEN * 6);
  containerUname(s).forEach((f, i) => b.write(f.slice(0, UTS_LEN - 1), UTS_LEN * i, 'utf8'));
  return b;
}
