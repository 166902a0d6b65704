// Mounts left in the runtime's own mount namespace below a state directory: found and detached before the directory goes.
import { readFileSync, realpathSync } from 'node:fs';
import { StockadeError } from '../errors';
import { sentryNative } from '../native/addon';
import { abiOf, nativeArch, syscallNumber } from '../seccomp/arch';

const MNT_DETACH = 2;

// mountinfo writes space, tab, newline and backslash as \ooo.
function unescape(field: string): string {
  return field.replace(/\\([0-3][0-7]{2})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** The mountpoints at or below `dir` in this process's mount namespace, outermost first. */
export function mountsBelow(dir: string): string[] {
  let base: string;
  try {
    base = realpathSync(dir);
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const field = line.split(' ')[4];
    if (field === undefined) continue;
    const mp = unescape(field);
    if (mp === base || mp.startsWith(`${base}/`)) found.push(mp);
  }
  return found.sort((a, b) => a.length - b.length);
}

/**
 * Detaches everything mounted at or below `dir` (a container that shares the runtime's mount
 * namespace leaves its root and mounts there, as runc's would), so that removing the directory
 * can never walk into a bind of the container's root and delete the bundle's files. Throws, naming
 * what stays, when something cannot be detached: the caller keeps the directory then.
 */
export function detachMountsBelow(dir: string): void {
  const mounts = mountsBelow(dir);
  if (mounts.length === 0) return;
  const nr = (() => {
    const abi = abiOf(nativeArch());
    return abi === undefined ? undefined : syscallNumber(abi, 'umount2');
  })();
  if (nr === undefined) throw new StockadeError('UNSUPPORTED', `cannot detach the mounts below ${dir}: no umount2 on this architecture`, { path: dir });
  const sys = sentryNative().syscall;
  // Detaching the outermost takes every mount below it along; several stacked at one point need one each.
  for (let round = 0; round < 64; round++) {
    const left = mountsBelow(dir);
    const top = left[0];
    if (top === undefined) return;
    const r = sys(nr, top, MNT_DETACH);
    if (r < 0 && r !== -22 /* EINVAL: gone meanwhile */) {
      throw new StockadeError('SYSTEM', `cannot detach ${top} (mounted below ${dir}): errno ${-r}`, { path: top });
    }
  }
  const left = mountsBelow(dir);
  if (left.length > 0) throw new StockadeError('SYSTEM', `mounts stay below ${dir}: ${left.join(', ')}`, { path: dir });
}
