// The container's seccomp filter: linux.seccomp compiled (and cached) into the program stockade-init loads.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { StockadeError } from '../errors';
import type { Spec } from '../oci/spec';
import { compileCached, parseSeccomp } from '../seccomp';

export interface SeccompProgram {
  flags: number;
  program: Buffer;
}

/** Where compiled filters are kept under the state root, which is made first if missing. */
export function seccompCacheDir(stateRoot: string): string {
  // The cache would otherwise create a missing state root 0700, which a container's root in a user
  // namespace cannot traverse to its rootfs mountpoint (the store makes it 0711 for that reason).
  try {
    mkdirSync(stateRoot, { recursive: true, mode: 0o711 });
  } catch { /* then the cache is skipped too; it only saves time */ }
  return join(stateRoot, '.cache', 'seccomp');
}

/** The compiled filter for the spec's linux.seccomp, or undefined when it has none. */
export function seccompFor(spec: Spec, stateRoot: string, debug?: (msg: string) => void): SeccompProgram | undefined {
  const raw = spec.linux?.seccomp;
  if (raw === undefined) return undefined;
  const compiled = compileCached(parseSeccomp(raw), {}, seccompCacheDir(stateRoot));
  if (compiled.notify) {
    // A listener fd needs a supervisor to answer it; without one every notified call would hang.
    throw new StockadeError('UNSUPPORTED', 'config.json: linux.seccomp: SCMP_ACT_NOTIFY needs a seccomp agent, which the namespaces level does not run yet', { field: 'linux.seccomp' });
  }
  if (compiled.skippedSyscalls.length > 0) debug?.(`seccomp: syscalls unknown on this host skipped: ${compiled.skippedSyscalls.join(', ')}`);
  debug?.(`seccomp: ${compiled.instructions} instructions${compiled.cached ? ' (cached)' : ''}`);
  return { flags: compiled.flags, program: compiled.program };
}
