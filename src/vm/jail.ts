// QEMU's file system jail: a root that holds /usr read-only, the guest's kernel and initramfs, four device nodes and its own /proc.
//
// Without it a QEMU the guest took over could read every world-readable file of the host (other
// containers' root file systems among them), uid and seccomp filter notwithstanding. The jail
// root is a directory in the VM's private directory; the mounts are made in QEMU's own mount
// namespace (unshare --mount, private propagation) by a few lines of sh run as that namespace's
// root, which then chroots into it and drops to QEMU's uid: the host's mount table never sees
// them, and they vanish with the namespace. Debian 12 has a merged /usr, so /lib, /lib64 and
// /bin are links into it, as on the host.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where the kernel and initramfs appear inside the jail. */
export const JAIL_KERNEL = '/boot/kernel';
export const JAIL_INITRAMFS = '/boot/initramfs';

const DEVICES = ['null', 'zero', 'urandom'] as const;

/**
 * The script that builds the jail and enters it:
 *   sh -c SCRIPT sh JAIL KERNEL INITRAMFS KVM(0|1) COMMAND...
 * Read-only binds are remounted read-only (a bind takes the source's flags otherwise); device
 * nodes are bound as they are.
 */
export const JAIL_SCRIPT = [
  'set -eu',
  'J=$1 K=$2 I=$3 KVM=$4',
  'shift 4',
  'ro() { mount --bind "$1" "$2"; mount -o remount,bind,ro,nosuid "$2"; }',
  'ro /usr "$J/usr"',
  `ro "$K" "$J${JAIL_KERNEL}"`,
  `ro "$I" "$J${JAIL_INITRAMFS}"`,
  `for d in ${DEVICES.join(' ')}; do mount --bind "/dev/$d" "$J/dev/$d"; done`,
  'if [ "$KVM" = 1 ]; then mount --bind /dev/kvm "$J/dev/kvm"; fi',
  'mount -t proc -o nosuid,nodev,noexec proc "$J/proc"',
  'exec /usr/sbin/chroot "$J" "$@"',
].join('\n');

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
