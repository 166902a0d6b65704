// A container's root file system from an image: its snapshots as overlay lower dirs, an upper dir of its own.
import { execFileSync } from 'node:child_process';
// fs.promises is read where it is used: node:fs/promises loaded at start cost every CLI call.
import { mkdirSync, promises as fsp, rmSync } from 'node:fs';
import { join } from 'node:path';
import { StockadeError } from '../errors';
import { MS_NODEV, MS_NOSUID } from '../abi/linux/constants';
import { canMountInProcess, mount, unmount } from '../native/mount';
import { hexOf, type Digest } from './digest';
import type { ImageStore } from './store';

export interface ImageRootfs {
  /** The bundle directory: config.json goes here. */
  bundle: string;
  /** The overlay's mountpoint, bundle/rootfs. */
  rootfs: string;
}

// The mount data is one page. Within it the lower dirs are full paths and mount(2) is called from
// here; past it they are named relative to the snapshots directory, where a mount(8) is run, so
// that 64-character names, not full paths, count against it.
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
    const dirs = `upperdir=${join(bundle, 'upper')},workdir=${join(bundle, 'work')}`;
    const full = `lowerdir=${lowers.map((l) => join(store.snapshotsDir, l)).join(':')},${dirs}`;
    const relative = `lowerdir=${lowers.join(':')},${dirs}`;
    if (full.length <= MAX_MOUNT_DATA && canMountInProcess()) {
      try {
        mount(`stockade-${id}`, rootfs, 'overlay', MS_NOSUID | MS_NODEV, full);
      } catch (e) {
        throw new StockadeError('SYSTEM', `overlay mount for ${id} failed: ${(e as Error).message}`, { id });
      }
    } else {
      if (relative.length > MAX_MOUNT_DATA) throw new StockadeError('UNSUPPORTED', `image has ${diffIds.length} layers, more than one overlay mount can stack here`);
      try {
        execFileSync('mount', ['-t', 'overlay', '-o', `${relative},nosuid,nodev`, `stockade-${id}`, rootfs], { cwd: store.snapshotsDir, stdio: ['ignore', 'ignore', 'pipe'] });
      } catch (e) {
        throw new StockadeError('SYSTEM', `overlay mount for ${id} failed: ${failure(e)}`, { id });
      }
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
  const bundle = unmountImageRootfs(store, id);
  rmSync(bundle, { recursive: true, force: true });
  store.clearInUse(id);
}

/**
 * removeImageRootfs with the directories removed off the event loop: what a caller waiting on
 * other work meanwhile (the SDK's dispose, beside the cgroups' removal) uses.
 */
export async function removeImageRootfsAsync(store: ImageStore, id: string): Promise<void> {
  // Called once the container's processes are gone, so nothing holds the mount: detached at once
  // rather than waited for (a plain umount of an overlay waits out an RCU grace period here).
  const bundle = unmountImageRootfs(store, id, true);
  await fsp.rm(bundle, { recursive: true, force: true });
  store.clearInUse(id);
}

function unmountImageRootfs(store: ImageStore, id: string, detach = false): string {
  const bundle = join(store.dir, 'run', id);
  const rootfs = join(bundle, 'rootfs');
  try {
    unmount(rootfs, detach);
  } catch (e) {
    // Not mounted (EINVAL; ENOENT: already removed) is fine; busy is detached, so the directory can go.
    const code = (e as { code?: string }).code;
    if (code !== 'EINVAL' && code !== 'ENOENT') {
      try { unmount(rootfs, true); } catch { /* reported by the directory's removal if it fails */ }
    }
  }
  return bundle;
}
