// A container's root file system from an image: its snapshots as overlay lower dirs, an upper dir of its own.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { StockadeError } from '../errors';
import { hexOf, type Digest } from './digest';
import type { ImageStore } from './store';

export interface ImageRootfs {
  /** The bundle directory: config.json goes here. */
  bundle: string;
  /** The overlay's mountpoint, bundle/rootfs. */
  rootfs: string;
}

// The mount data is one page: lower dirs are named relative to the snapshots directory (the
// mount runs there) so that 64-character names, not full paths, count against it.
const MAX_MOUNT_DATA = 4000;

function failure(e: unknown): string {
  const stderr = (e as { stderr?: unknown }).stderr;
  return (Buffer.isBuffer(stderr) ? stderr.toString('utf8') : String(e)).trim().split('\n')[0] ?? '';
}

/**
 * Mounts the image's layers at <store>/run/<id>/rootfs, nosuid and nodev: a setuid file or device
 * in an image grants nothing through this mount, on the host or (no_new_privs aside) inside.
 */
export function mountImageRootfs(store: ImageStore, id: string, diffIds: readonly Digest[]): ImageRootfs {
  store.ensure();
  mkdirSync(join(store.dir, 'run'), { recursive: true, mode: 0o700 });
  const bundle = join(store.dir, 'run', id);
  const rootfs = join(bundle, 'rootfs');
  try {
    mkdirSync(bundle, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new StockadeError('CONTAINER_EXISTS', `container with id ${id} already exists`, { id });
    throw e;
  }
  // The layers this container stacks are kept by rmi until it is gone.
  store.markInUse(id, diffIds);
  try {
    for (const d of ['rootfs', 'upper', 'work']) mkdirSync(join(bundle, d), { mode: 0o755 });
    // Top layer first, as overlayfs stacks lowerdir.
    const lowers = [...diffIds].reverse().map(hexOf);
    for (const d of diffIds) {
      if (!store.hasSnapshot(d)) throw new StockadeError('IMAGE_NOT_FOUND', `layer snapshot ${d} is missing from the store; pull the image again`);
    }
    // An image with no layers still needs one lower dir: an empty one of its own.
    if (lowers.length === 0) {
      mkdirSync(join(bundle, 'empty'), { mode: 0o755 });
      lowers.push(join(bundle, 'empty'));
    }
    const data = `lowerdir=${lowers.join(':')},upperdir=${join(bundle, 'upper')},workdir=${join(bundle, 'work')}`;
    if (data.length > MAX_MOUNT_DATA) throw new StockadeError('UNSUPPORTED', `image has ${diffIds.length} layers, more than one overlay mount can stack here`);
    try {
      execFileSync('mount', ['-t', 'overlay', '-o', `${data},nosuid,nodev`, `stockade-${id}`, rootfs], { cwd: store.snapshotsDir, stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      throw new StockadeError('SYSTEM', `overlay mount for ${id} failed: ${failure(e)}`, { id });
    }
    return { bundle, rootfs };
  } catch (e) {
    rmSync(bundle, { recursive: true, force: true });
    store.clearInUse(id);
    throw e;
  }
}

/** Unmounts and removes a container's overlay, upper dir and bundle; safe to call twice. */
export function removeImageRootfs(store: ImageStore, id: string): void {
  const bundle = join(store.dir, 'run', id);
  const rootfs = join(bundle, 'rootfs');
  try {
    execFileSync('umount', [rootfs], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    // Not mounted (already removed) is fine; busy is detached, so the directory can go.
    if (!/not mounted|no mount point|not found/i.test(failure(e))) {
      try { execFileSync('umount', ['-l', rootfs], { stdio: 'ignore' }); } catch { /* reported below if rm fails */ }
    }
  }
  rmSync(bundle, { recursive: true, force: true });
  store.clearInUse(id);
}
