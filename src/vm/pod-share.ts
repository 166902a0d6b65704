// A pod's later containers in its running VM: their root and bind sources bound into the share the VM already serves.
//
// microvm has no hot-plug, so no share can be added once the VM runs. The share's file server
// (virtiofsd, or a clone's QEMU for 9p) serves whatever its directory holds, mounts included:
// each later container gets `pods/NAME/` in it, and its root (`root`) and bind sources (`b0`,
// `b1`, ...) are bound there in the server's own mount namespace (stockade-rbind --ns: cloned
// here, where the host's paths are visible, attached there), read-only on every submount where
// asked, as the first container's are. The host's mount table never holds them; they go when the
// container is released, or with the server's namespace when the VM ends.
//
//   host                                 server's mount namespace             guest
//   /run/.../ID/rootfs  --open_tree-->   SHARE/pods/m1/root  --virtiofs/9p-->  /run/stockade/share/pods/m1/root
import { spawnSync } from 'node:child_process';
import { mkdirSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { VmError } from './errors';
import type { GuestShares } from './guest-plan';
import { GUEST_SHARE, type ShareServer } from './vm';
import { rbindBinary } from './vmm';

export interface PodShareOptions {
  readonly rootfs: string;
  readonly readonlyRoot: boolean;
  readonly binds: readonly { readonly source: string; readonly readonly: boolean; readonly nofollow?: boolean }[];
}

const NAME = /^m\d{1,9}$/;

function rbind(args: readonly string[]): void {
  const r = spawnSync(rbindBinary(), args, { encoding: 'utf8' });
  if (r.status !== 0) throw new VmError('ASSETS', `vm: pod share: ${(r.stderr || r.error?.message || `stockade-rbind exited ${r.status}`).trim()}`);
}

/** Binds a later container's root and bind sources into the running VM's share as `pods/NAME`; returns their guest paths. */
export function addPodShare(server: ShareServer, name: string, o: PodShareOptions): GuestShares {
  if (!NAME.test(name)) throw new VmError('ASSETS', `vm: pod share: ${JSON.stringify(name)} is not a pod share name`);
  const onHost = join(server.onHost, 'pods', name);
  const inNs = posix.join(server.inNamespace, 'pods', name);
  const ns = `/proc/${server.pid}/ns/mnt`;
  rmSync(onHost, { recursive: true, force: true });
  mkdirSync(join(onHost, 'root'), { recursive: true, mode: 0o755 });
  const root = realpathSync(o.rootfs);
  const made: string[] = [];
  try {
    const entries = [{ source: root, name: 'root', readonly: o.readonlyRoot }, ...o.binds.map((b, i) => ({ ...b, name: `b${i}` }))];
    for (const e of entries) {
      if (e.name !== 'root') {
        const st = statSync(e.source, { throwIfNoEntry: false });
        if (st === undefined) throw new VmError('ASSETS', `vm: bind source ${e.source} does not exist`, { path: e.source });
        if (st.isDirectory()) mkdirSync(join(onHost, e.name), { mode: 0o755 });
        else writeFileSync(join(onHost, e.name), '', { mode: 0o644 });
      }
      rbind(['--ns', ns, ...('nofollow' in e && e.nofollow === true ? ['--nofollow'] : []), ...(e.readonly ? ['--ro'] : []), e.source, posix.join(inNs, e.name)]);
      made.push(posix.join(inNs, e.name));
    }
  } catch (e) {
    for (const m of made.reverse()) spawnSync(rbindBinary(), ['--ns', ns, '--umount', m]);
    rmSync(onHost, { recursive: true, force: true });
    throw e;
  }
  return {
    rootfs: { host: root, guest: `${GUEST_SHARE}/pods/${name}/root` },
    binds: new Map(o.binds.map((b, i) => [b.source, `${GUEST_SHARE}/pods/${name}/b${i}`])),
  };
}

/** Takes a released container's binds out of the server's namespace and its directory out of the share (quietly: the VM may be gone). */
export function removePodShare(server: ShareServer, name: string, count: number): void {
  if (!NAME.test(name)) return;
  const inNs = posix.join(server.inNamespace, 'pods', name);
  for (const entry of ['root', ...Array.from({ length: count }, (_, i) => `b${i}`)]) {
    spawnSync(rbindBinary(), ['--ns', `/proc/${server.pid}/ns/mnt`, '--umount', posix.join(inNs, entry)]);
  }
  rmSync(join(server.onHost, 'pods', name), { recursive: true, force: true });
}
