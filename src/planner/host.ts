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

/** The links compared: the namespaces, and the root (a chroot's differs). */
const LINKS = ['ns/cgroup', 'ns/ipc', 'ns/mnt', 'ns/net', 'ns/pid', 'ns/user', 'ns/uts', 'root'] as const;
const STATUS_KEYS = ['Uid', 'Gid', 'Groups', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'NoNewPrivs', 'Seccomp'];

/**
 * Everything of a process that a call's outcome depends on and that the planner does not take
 * from the request: its namespaces, its root, its ids and capabilities, read from its /proc
 * directory (`proc`). A front whose own differ runs the call cold, and a planner serves no peer
 * whose own differ (server.ts). The front (C) computes the same text. The cgroup is not here: each
 * request carries its caller's, which the call's cgroups are placed relative to (setCallerCgroup).
 */
export function fingerprintOf(proc: string): string {
  const links = LINKS.map((n) => readlinkSync(`${proc}/${n}`)).join('\n');
  const status = readFileSync(`${proc}/status`, 'utf8').split('\n')
    .filter((l) => STATUS_KEYS.includes(l.slice(0, l.indexOf(':'))))
    .join('\n');
  return `${links}\n${status}\n`;
}

/** This process's fingerprint (fingerprintOf). */
export function hostFingerprint(): string {
  return fingerprintOf('/proc/self');
}
