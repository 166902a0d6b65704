// QEMU's file system jail: a root that holds /usr read-only, the guest's kernel and initramfs, four device nodes and its own /proc.
//
// Without it a QEMU the guest took over could read every world-readable file of the host (other
// containers' root file systems among them), uid and seccomp filter notwithstanding. The jail
// root is a directory in the VM's private directory; the mounts are made in QEMU's own mount
// namespace (unshare --mount, private propagation) by stockade-rbind run as that namespace's
// root, which then chroots into it and execs the wrapper that drops to QEMU's uid: the host's mount table never sees
// them, and they vanish with the namespace. Debian 12 has a merged /usr, so /lib, /lib64 and
// /bin are links into it, as on the host.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where the kernel and initramfs appear inside the jail. */
export const JAIL_KERNEL = '/boot/kernel';
export const JAIL_INITRAMFS = '/boot/initramfs';

const DEVICES = ['null', 'zero', 'urandom'] as const;

/**
 * stockade-rbind's steps that build the jail at `jail` and enter it (native/template/rbind.c):
 *   stockade-rbind STEPS... -- COMMAND...
 * Read-only binds are read-only, nosuid and nodev on every mount of them; device nodes are bound
 * as they are. One process for all of them: a `mount` run per mount (ten, from a shell script)
 * cost about half a second of every VM's start here under load. With `wrap`, the command is
 * `WRAP... chroot JAIL COMMAND...` instead (the share server's seccomp loader, vmm.ts).
 */
export function jailSteps(jail: string, kernel: string, initramfs: string, kvm: boolean, wrap: readonly string[] = []): string[] {
  return [
    '--ro', '/usr', join(jail, 'usr'),
    '--ro', kernel, join(jail, JAIL_KERNEL),
    '--ro', initramfs, join(jail, JAIL_INITRAMFS),
    ...[...DEVICES, ...(kvm ? ['kvm'] : [])].flatMap((d) => ['--bind', `/dev/${d}`, join(jail, 'dev', d)]),
    '--proc', join(jail, 'proc'),
    // A wrapper that must run outside the jail (its binary is not in it) chroots through chroot(8).
    ...(wrap.length === 0 ? ['--chroot', jail, '--'] : ['--', ...wrap, '/usr/sbin/chroot', jail]),
  ];
}

/** Makes the jail's empty skeleton under runDir (mount points, links) and returns its path. */
export function makeQemuJail(runDir: string, kvm: boolean): string {
  const j = join(runDir, 'qemu-root');
  for (const d of ['usr', 'boot', 'dev', 'proc']) mkdirSync(join(j, d), { recursive: true, mode: 0o755 });
  for (const [link, target] of [['lib', 'usr/lib'], ['lib64', 'usr/lib64'], ['bin', 'usr/bin'], ['sbin', 'usr/sbin']] as const) {
    symlinkSync(target, join(j, link));
  }
  // Files to bind the kernel, initramfs and devices onto.
  for (const f of [JAIL_KERNEL, JAIL_INITRAMFS, ...DEVICES.map((d) => `/dev/${d}`), ...(kvm ? ['/dev/kvm'] : [])]) {
    writeFileSync(join(j, f), '', { mode: 0o644 });
  }
  return j;
}
