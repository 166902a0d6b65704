// What a planner and its front must share to be interchangeable with a cold Node call: the build
// (the planner bundle's identity) and the host as the process sees it (namespaces, credentials).
import { readFileSync, readlinkSync, statSync } from 'node:fs';

/**
 * The bundle file's device, inode, size and change time: a rebuild makes a new one, so a planner
 * still running the code of before is told apart (the front computes the same from the same file).
 */
export function buildIdOf(bundle: string): string {
  const st = statSync(bundle, { bigint: true });
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}`;
}

const NAMESPACES = ['cgroup', 'ipc', 'mnt', 'net', 'pid', 'user', 'uts'] as const;
const STATUS_KEYS = ['Uid', 'Gid', 'Groups', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp'];

/**
 * Everything of this process that a call's outcome depends on and that the planner does not take
 * from the request: its namespaces, its ids and capabilities. A front whose own differ runs the
 * call cold. The front (C) computes the same text. The cgroup is not here: each request carries
 * its caller's, which the call's cgroups are placed relative to (setCallerCgroup).
 */
export function hostFingerprint(): string {
  const ns = NAMESPACES.map((n) => readlinkSync(`/proc/self/ns/${n}`)).join('\n');
  const status = readFileSync('/proc/self/status', 'utf8').split('\n')
    .filter((l) => STATUS_KEYS.includes(l.slice(0, l.indexOf(':'))))
    .join('\n');
  return `${ns}\n${status}\n`;
}
