// Mount points of a read-only root, made on the host before the VM boots.
//
// On the host, stockade-init makes a mount's missing destination in the root and only then makes
// the root read-only (as runc does). A vm container's read-only root is read-only in the host
// kernel (virtiofsd's bind), so the guest's stockade-init cannot make it: a pause image without
// /etc/resolv.conf failed CRI's RunPodSandbox with EROFS. The keeper makes them here instead,
// every path resolved inside the root (openat2 RESOLVE_IN_ROOT: a symlink in the image cannot lead
// the creation out of it), the last component created by name below a directory fd (mkdir and
// O_EXCL follow no symlink).
import { closeSync, constants, mkdirSync, openSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { O_PATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS } from '../abi/linux/constants';
import { openat2 } from '../native/addon';
import type { Spec } from '../oci/spec';

const O_DIRECTORY = constants.O_DIRECTORY;

/** Makes each missing destination of spec.mounts in `rootfs`: a file for a bind of a file, a directory otherwise. */
export function makeMountPoints(spec: Spec, rootfs: string, bundle: string): void {
  const root = openSync(rootfs, O_PATH | O_DIRECTORY);
  const dests = (spec.mounts ?? []).map((m) => posix.normalize(m.destination));
  try {
    for (const m of spec.mounts ?? []) {
      const dest = posix.normalize(m.destination);
      if (!dest.startsWith('/') || dest === '/') continue;
      // Below another mount (/dev/shm in /dev's tmpfs): made in that mount, in the guest.
      if (dests.some((d) => d !== dest && (d === '/' ? false : dest.startsWith(`${d}/`)))) continue;
      const opts = m.options ?? [];
      let file = false;
      if (m.type === 'bind' || opts.includes('bind') || opts.includes('rbind')) {
        const source = m.source === undefined ? '' : posix.isAbsolute(m.source) ? m.source : posix.join(bundle, m.source);
        file = statSync(source, { throwIfNoEntry: false })?.isFile() === true;
      }
      // Best effort: what cannot be made here (a dangling symlink on the way) the guest reports in one line.
      try {
        makePath(root, dest.split('/').filter((p) => p !== ''), file);
      } catch { /* see above */ }
    }
  } finally {
    closeSync(root);
  }
}

/** Makes each missing component of `parts` below the root fd, the last a file when `file`. */
function makePath(root: number, parts: readonly string[], file: boolean): void {
  let dir = '/';
  for (const [i, name] of parts.entries()) {
    const parent = openat2(root, dir, O_PATH | O_DIRECTORY, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
    try {
      const at = `/proc/self/fd/${parent}/${name}`;
      if (statSync(at, { throwIfNoEntry: false }) === undefined) {
        if (i === parts.length - 1 && file) closeSync(openSync(at, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o644));
        else mkdirSync(at, { mode: 0o755 });
      }
    } finally {
      closeSync(parent);
    }
    dir = posix.join(dir, name);
  }
}
