// mount(2) and umount2(2) from this process, through the addon: a spawned mount(8) or umount(8) costs
// a fork and exec of a large Node process, several times a sandbox's whole setup work.
import { constants as osConstants } from 'node:os';
import { SYSCALLS_AARCH64 } from '../abi/linux/syscalls-aarch64';
import { SYSCALLS_X86_64 } from '../abi/linux/syscalls-x86_64';
import { sentryNative } from './addon';

/** umount2's flag (linux/fs.h). */
const MNT_DETACH = 0x2;

/** The failed call's errno name (EBUSY, EINVAL, ...), as node:fs names its errors. */
export class MountError extends Error {
  readonly code: string;
  constructor(call: string, target: string, errno: number) {
    const code = Object.entries(osConstants.errno).find(([, n]) => n === errno)?.[0] ?? `errno ${errno}`;
    super(`${call} ${target}: ${code}`);
    this.code = code;
  }
}

function numbers(): { mount: number; umount2: number } | undefined {
  const table = process.arch === 'x64' ? SYSCALLS_X86_64 : process.arch === 'arm64' ? SYSCALLS_AARCH64 : undefined;
  return table === undefined ? undefined : { mount: table['mount'] as number, umount2: table['umount2'] as number };
}

/** Whether mount and unmount can be called here (an architecture whose numbers this build knows). */
export function canMountInProcess(): boolean {
  return numbers() !== undefined;
}

/** mount(source, target, fstype, flags, data); throws MountError. */
export function mount(source: string, target: string, fstype: string, flags: number, data: string): void {
  const nr = numbers();
  if (nr === undefined) throw new MountError('mount', target, osConstants.errno.ENOSYS);
  const r = sentryNative().syscall(nr.mount, source, target, fstype, flags, data);
  if (r < 0) throw new MountError('mount', target, -r);
}

/** umount2(target, detach ? MNT_DETACH : 0); throws MountError (EINVAL: not a mount point). */
export function unmount(target: string, detach = false): void {
  const nr = numbers();
  if (nr === undefined) throw new MountError('umount', target, osConstants.errno.ENOSYS);
  const r = sentryNative().syscall(nr.umount2, target, detach ? MNT_DETACH : 0);
  if (r < 0) throw new MountError('umount', target, -r);
}
