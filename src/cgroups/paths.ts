// Where a container's cgroups go: linux.cgroupsPath resolved per hierarchy as runc does without systemd.
//
// runc (libcontainer/cgroups/fs and fs2, cgroupfs driver):
//   - cgroupsPath absolute  -> MOUNTPOINT/cgroupsPath in every hierarchy (Docker sends /docker/ID,
//     Podman /libpod_parent/libpod-ID, containerd /NAMESPACE/ID);
//   - cgroupsPath relative  -> below the runtime's own cgroup in that hierarchy (v1, and the
//     unified mount of a hybrid host), or below its parent on a pure v2 host (the runtime's own
//     cgroup usually holds processes, so no controllers could be enabled below it);
//   - cgroupsPath empty     -> the container id, taken as a relative path.
// ".." can never climb out: the path is cleaned against "/" first (runc's utils.CleanPath).
import { posix } from 'node:path';
import type { Hierarchy, Layout } from './layout';

/** runc's CleanPath: lexically cleaned; a relative path stays relative but cannot escape with "..". */
export function cleanPath(p: string): string {
  if (p === '') return '';
  if (posix.isAbsolute(p)) return posix.normalize(p).replace(/(.)\/+$/, '$1');
  const abs = posix.normalize(`/${p}`);
  const rel = posix.relative('/', abs);
  return rel === '' ? '.' : rel;
}

/** The container's directory in one hierarchy. */
export function cgroupDir(h: Hierarchy, cgroupsPath: string | undefined, id: string, pureV2: boolean): string {
  const inner = cleanPath(cgroupsPath ?? '') || cleanPath(id);
  if (posix.isAbsolute(inner)) return posix.join(h.mountpoint, inner);
  const base = pureV2 ? posix.dirname(h.ownPath) : h.ownPath;
  return posix.join(h.mountpoint, base, inner);
}

export interface ContainerDirs {
  /** v1 hierarchy mountpoint -> the container's directory in it. */
  v1: Map<Hierarchy, string>;
  unified: string | undefined;
}

/**
 * The container's directories in every hierarchy of the layout. On a hybrid host the unified
 * hierarchy is joined too, as runc does, so cgroup-v2-only controllers and tools see the container.
 */
export function containerDirs(layout: Layout, cgroupsPath: string | undefined, id: string): ContainerDirs {
  const v1 = new Map<Hierarchy, string>();
  for (const h of layout.v1) v1.set(h, cgroupDir(h, cgroupsPath, id, false));
  const unified = layout.unified === undefined ? undefined : cgroupDir(layout.unified, cgroupsPath, id, layout.mode === 'v2');
  return { v1, unified };
}
