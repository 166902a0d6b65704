// The command lines of the VMM (QEMU -M microvm) and of virtiofsd, and the jail both run in.
//
// Fds, not paths, carry the VM's channels: QEMU finds the agent's virtio-serial channel on fd 3
// (one end of a socketpair the host holds the other end of), virtiofsd's vhost-user socket on
// fd 4 (a connection the host made) and its QMP monitor on fd 5 (another socketpair: the host's
// balloon requests, balloon.ts), so QEMU opens no socket by name and needs no directory.
//
// The jail, outermost first:
//   setpriv --pdeathsig KILL          the wrapper dies with the host process that started it
//   unshare -n -i -u -p -f -m --kill-child
//                                     an empty network namespace, its own IPC, UTS, pid and mount
//                                     namespaces; its child dies with it
//   stockade-rbind STEPS --           a root holding /usr read-only, the kernel, the initramfs,
//                                     null/zero/urandom and its own /proc; chroot into it
//                                     (src/vm/jail.ts jailSteps)
//   setpriv --reuid U --regid U --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs
//           --pdeathsig KILL          an unprivileged uid of its own, no capabilities left to
//                                     regain (the uid change clears the parent-death signal, so
//                                     setpriv sets it again after)
//   qemu-system-x86_64 ... -sandbox on,...   QEMU's own seccomp filter
// virtiofsd must stay root (it serves files of every owner), so it gets only the first wrapper;
// its own sandbox (namespaces, pivot_root into the shared directory, seccomp) confines it, and
// it keeps only the capabilities it needs (-o modcaps drops mknod and setfcap on top).
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { packageRoot } from '../native/paths';
import type { MountIdmap } from '../container/plan';
import type { GuestAssets } from './assets';
import { shareServerFilter } from './share-filter';
import { VmError } from './errors';
import { JAIL_INITRAMFS, JAIL_KERNEL, jailSteps } from './jail';

/**
 * The VMM's binaries (STOCKADE_QEMU, STOCKADE_VIRTIOFSD override them), read at each use, not at
 * load: the resident planner serves many calls, each with its own environment.
 */
export function qemuBinary(): string {
  return process.env['STOCKADE_QEMU'] ?? '/usr/bin/qemu-system-x86_64';
}

export function virtiofsdBinary(): string {
  return process.env['STOCKADE_VIRTIOFSD'] ?? '/usr/lib/qemu/virtiofsd';
}
const SETPRIV = '/usr/bin/setpriv';
const UNSHARE = '/usr/bin/unshare';
const SH = '/bin/sh';

/** The virtiofs tag of the container's root file system. */
export const ROOTFS_TAG = 'rootfs';
/** The port the agent looks for (native/agent/agent.h AGENT_PORT_NAME). */
export const AGENT_PORT = 'stockade.agent';
/** QEMU's fds: the agent channel, the vhost-user connection to virtiofsd and the QMP monitor. */
export const AGENT_FD = 3;
export const VIRTIOFS_FD = 4;
export const QMP_FD = 5;
/** QEMU's fd of the first network device's tap (src/vm/network.ts); the next ones follow. */
export const FIRST_TAP_FD = 6;

export interface VmmConfig {
  readonly assets: GuestAssets;
  readonly accel: 'kvm' | 'tcg';
  readonly memoryMiB: number;
  readonly cpus: number;
  /** The uid and gid QEMU runs as. */
  readonly user: { readonly uid: number; readonly gid: number };
  /** Extra kernel command line words (e.g. for debugging: loglevel=7). */
  readonly kernelArgs?: readonly string[];
  /** One virtio-net device each, with this MAC, on QEMU's fd FIRST_TAP_FD + i (a tap the host opened). */
  readonly nics?: readonly { readonly mac: string }[];
}

/** Why the VM cannot run on this host, or undefined when it can. */
export function vmmUnavailable(): string | undefined {
  for (const [path, pkg] of [[qemuBinary(), 'qemu-system-x86'], [virtiofsdBinary(), 'qemu-system-common'], [SETPRIV, 'util-linux'], [UNSHARE, 'util-linux']] as const) {
    if (!existsSync(path)) return `${path} is missing (install ${pkg})`;
  }
  return undefined;
}

export function requireVmm(): void {
  const why = vmmUnavailable();
  if (why !== undefined) throw new VmError('VMM_MISSING', `vm: ${why}`);
}

/**
 * A uid and gid for one VM's QEMU, from a range no passwd entry uses: QEMUs of different VMs
 * then cannot signal or ptrace one another, as they could if all ran as `nobody`.
 */
export function vmmUser(): { uid: number; gid: number } {
  const id = 0x70000000 + randomInt(0, 1 << 24);
  return { uid: id, gid: id };
}

/** The guest kernel's command line before a caller's own arguments: the same for a cold boot and a template's. */
export const GUEST_KERNEL_ARGS: readonly string[] = [
  'console=ttyS0', 'quiet', 'panic=-1',
  // microvm has no PCI bus; without this the kernel spends time probing for one.
  'pci=off',
  // The crypto self-tests cost 0.7-1.1 s of a TCG boot here (time to "Run /init", measured
  // with and without); they check the implementations of Debian's own kernel, which the
  // guest runs unchanged.
  'cryptomgr.notests',
  // The guest's RAM is the container's memory limit: under the default heuristic, one
  // allocation larger than that RAM fails (MemoryError, ENOMEM) where on a host with more RAM it
  // succeeds and the container's cgroup OOM-kills the process at the limit. Always overcommitting
  // makes the limit act as it does at the other levels: the process is killed (137), and the
  // guest's cgroup (memory.max) or its OOM killer decides, never a refused mmap.
  'sysctl.vm.overcommit_memory=1',
];

export function qemuArgs(c: VmmConfig): string[] {
  if (!Number.isInteger(c.memoryMiB) || c.memoryMiB < 64 || c.memoryMiB > 65536) throw new RangeError(`vm memory ${c.memoryMiB} MiB is out of range (64..65536)`);
  if (!Number.isInteger(c.cpus) || c.cpus < 1 || c.cpus > 64) throw new RangeError(`vm cpus ${c.cpus} is out of range (1..64)`);
  const cmdline = [...GUEST_KERNEL_ARGS, ...(c.kernelArgs ?? [])].join(' ');
  return [
    '-M', 'microvm,memory-backend=mem,x-option-roms=off',
    '-accel', c.accel === 'tcg' ? `tcg,tb-size=${process.env['STOCKADE_VM_TB_MIB'] ?? 32}` : 'kvm',
    '-cpu', c.accel === 'kvm' ? 'host' : 'max',
    '-m', `${c.memoryMiB}M`,
    '-smp', String(c.cpus),
    // virtiofsd maps guest memory, so it must be a shared file mapping.
    '-object', `memory-backend-memfd,id=mem,size=${c.memoryMiB}M,share=on`,
    '-nodefaults', '-no-user-config', '-nographic', '-no-reboot',
    // vhost-user-fs needs modern virtio; microvm's virtio-mmio starts legacy otherwise.
    '-global', 'virtio-mmio.force-legacy=false',
    '-kernel', c.assets.kernel,
    '-initrd', c.assets.initramfs,
    '-append', cmdline,
    // The serial console goes to QEMU's stdout, which the host keeps the tail of for errors.
    '-serial', 'stdio',
    '-device', 'virtio-serial-device,max_ports=2',
    '-chardev', `socket,id=agent,fd=${AGENT_FD}`,
    '-device', `virtserialport,chardev=agent,name=${AGENT_PORT}`,
    '-chardev', `socket,id=fs,fd=${VIRTIOFS_FD}`,
    '-device', `vhost-user-fs-device,chardev=fs,tag=${ROOTFS_TAG}`,
    // Free page reporting: the guest hands pages it freed back to the host (QEMU drops them from
    // the memfd), so host memory follows what the guest uses, not the most it ever touched.
    // The balloon also changes the guest's RAM while it runs (`update --memory`, balloon.ts),
    // through the QMP monitor on QMP_FD, which only the host's end of a socketpair reaches.
    '-device', 'virtio-balloon-device,free-page-reporting=on',
    '-chardev', `socket,id=qmp,fd=${QMP_FD}`,
    '-mon', 'chardev=qmp,mode=control',
    // The container's interfaces: taps opened in its network namespace by the host, so QEMU
    // opens nothing and needs no CAP_NET_ADMIN.
    ...(c.nics ?? []).flatMap((n, i) => {
      if (!/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(n.mac)) throw new RangeError(`vm nic ${i}: MAC ${JSON.stringify(n.mac)} is not aa:bb:cc:dd:ee:ff`);
      return ['-netdev', `tap,id=net${i},fd=${FIRST_TAP_FD + i}`, '-device', `virtio-net-device,netdev=net${i},mac=${n.mac}`];
    }),
    '-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny',
  ];
}

/**
 * QEMU's full command line inside its jail, [file, ...args]; jailRoot is made by makeQemuJail.
 * QEMU must live under /usr, the only host directory the jail shows it.
 */
export function jailedQemu(c: VmmConfig, jailRoot: string): string[] {
  const qemu = qemuBinary();
  if (!qemu.startsWith('/usr/')) throw new VmError('VMM_MISSING', `vm: ${qemu} is outside /usr, which is all of the host QEMU's jail holds`);
  const groups: string[] = [];
  if (c.accel === 'kvm') {
    // /dev/kvm's group, so the unprivileged QEMU can open it.
    groups.push(`--groups=${statSync('/dev/kvm').gid}`);
  }
  const inJail = { ...c.assets, kernel: JAIL_KERNEL, initramfs: JAIL_INITRAMFS };
  return [
    SETPRIV, '--pdeathsig', 'KILL',
    UNSHARE, '--net', '--ipc', '--uts', '--pid', '--fork', '--kill-child', '--mount', '--propagation', 'private',
    rbindBinary(), ...jailSteps(jailRoot, c.assets.kernel, c.assets.initramfs, c.accel === 'kvm'),
    SETPRIV, `--reuid=${c.user.uid}`, `--regid=${c.user.gid}`, ...(groups.length > 0 ? groups : ['--clear-groups']),
    '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--pdeathsig', 'KILL',
    qemuBinary(), ...qemuArgs({ ...c, assets: inJail }),
  ];
}

/** A host path bound into the share's directory, at `name` below it. */
export interface ShareEntry {
  readonly source: string;
  readonly name: string;
  readonly readonly: boolean;
  /**
   * Shared as an overlay instead of a bind: the source its read-only lower layer, its writes on a
   * tmpfs of these options (size=...) in virtiofsd's namespace, gone with it (do --rw).
   */
  readonly overlay?: string | undefined;
  /**
   * Shared through an id-mapped mount of its file system only, nosuid, nodev (stockade-rbind
   * --idmap): the ids the file server writes with are mapped to the owner's on the disk, and an
   * id the map lacks owns nothing there. The server then runs without CAP_FSETID, under
   * NO_SETID_RULES (shareServerFilter).
   */
  readonly idmap?: MountIdmap | undefined;
  /** A path its caller resolved and checked (do --bind): bound only if no symlink is on it now (stockade-rbind --nofollow). */
  readonly nofollow?: boolean | undefined;
}

/** The third word of an entry in SHARE_SCRIPT's and the template jail's arguments: how it is bound. */
export function shareEntryKind(e: ShareEntry): string {
  if (e.overlay !== undefined) return `overlay,${e.overlay}`;
  const nofollow = e.nofollow === true ? 'nofollow,' : '';
  if (e.idmap !== undefined) return `${nofollow}idmap,${e.idmap.uidMap},${e.idmap.gidMap}`;
  return `${nofollow}${e.readonly ? '1' : '0'}`;
}

/** The same arguments to stockade-rbind for each kind but overlay (a shell case, in SHARE_SCRIPT and the template's jail). */
export const RBIND_CASES = [
  '  idmap,*) M=${K#idmap,}; "$B" $N --idmap "${M%%,*}" "${M#*,}" "$1" "$S/$2" ;;',
  '  1) "$B" $N --ro "$1" "$S/$2" ;;',
  '  *) "$B" $N "$1" "$S/$2" ;;',
];

/** An entry's stockade-rbind step onto DIR/NAME (a template clone's jail takes all of them in one run). */
export function rbindStep(dir: string): (e: ShareEntry) => string[] {
  return (e) => [
    ...(e.nofollow === true ? ['--nofollow'] : []),
    ...(e.idmap !== undefined ? ['--idmap', e.idmap.uidMap, e.idmap.gidMap] : [e.readonly ? '--ro' : '--bind']),
    e.source, join(dir, e.name),
  ];
}

/** stockade-seccomp-exec (native/template/seccomp-exec.c): PROGRAM under a filter given as hex. */
export function seccompExecBinary(): string {
  return process.env['STOCKADE_SECCOMP_EXEC'] ?? join(packageRoot(), 'build', 'Release', 'stockade-seccomp-exec');
}

/**
 * How a file server of `entries` starts: under NO_SETID_RULES when one of them is id-mapped (its
 * files land as the caller's, root's when root ran do: the server, root or not, may chmod them).
 */
export function shareServerWrap(entries: readonly ShareEntry[]): string[] {
  return entries.some((e) => e.idmap !== undefined) ? [seccompExecBinary(), shareServerFilter()] : [];
}

/**
 * Binds each entry's source (and every mount below it) onto SHARE/NAME (made by the caller: a
 * directory, or an empty file for a file) in the server's own mount namespace, read-only on
 * every mount where asked, then runs the server:
 *   sh -c SCRIPT sh SHARE RBIND SOURCE NAME MODE ... -- COMMAND...
 * MODE is 0 (a bind), 1 (a read-only bind) or overlay,TMPFS-OPTIONS: an overlay whose lower layer
 * is the source and whose upper layer and work directory are on a tmpfs at SHARE/../upper-NAME,
 * outside the share (virtiofsd's sandbox pivots into the share: the guest sees only the overlay,
 * whose lower layer is never written).
 * The host's mount table never sees these binds; they die with virtiofsd. A read-only entry is
 * read-only in the host kernel: the guest cannot write it whatever it does to its own.
 */
export const SHARE_SCRIPT = [
  'set -eu',
  'S=$1 B=$2',
  'shift 2',
  'while [ "$1" != -- ]; do',
  // N: stockade-rbind's --nofollow for an entry whose kind says so; K: the kind without it.
  '  N= K=$3',
  '  case "$K" in nofollow,*) N=--nofollow K=${K#nofollow,} ;; esac',
  '  case "$K" in',
  '  overlay,*)',
  '    U="${S%/*}/upper-$2"',
  '    O=${3#overlay}',
  '    mount -t tmpfs -o "mode=0755$O" tmpfs "$U"',
  '    mkdir "$U/upper" "$U/work"',
  '    mount -t overlay -o "nosuid,nodev,lowerdir=$1,upperdir=$U/upper,workdir=$U/work" overlay "$S/$2"',
  '    ;;',
  ...RBIND_CASES,
  '  esac',
  '  shift 3',
  'done',
  'shift',
  'exec "$@"',
].join('\n');

/**
 * stockade-rbind (native/template/rbind.c): a recursive bind, read-only on every submount when
 * asked (`mount --rbind` and a remount leave the submounts of a read-only source writable).
 */
export function rbindBinary(): string {
  return process.env['STOCKADE_RBIND'] ?? join(packageRoot(), 'build', 'Release', 'stockade-rbind');
}

/**
 * virtiofsd serving `share` on a socket it creates at socketPath, inside its own sandbox; the
 * entries are bound into `share` first, in a mount namespace of virtiofsd's own (SHARE_SCRIPT).
 * (Debian's C virtiofsd has no read-only export: a read-only entry is a read-only bind.)
 */
export function jailedVirtiofsd(share: string, socketPath: string, entries: readonly ShareEntry[] = []): string[] {
  const binds = entries.length === 0 ? [] : [
    UNSHARE, '--mount', '--propagation', 'private',
    SH, '-c', SHARE_SCRIPT, 'sh', share, rbindBinary(), ...entries.flatMap((e) => [e.source, e.name, shareEntryKind(e)]), '--',
  ];
  const mapped = entries.some((e) => e.idmap !== undefined);
  return [
    SETPRIV, '--pdeathsig', 'KILL',
    ...binds,
    ...shareServerWrap(entries),
    virtiofsdBinary(),
    `--socket-path=${socketPath}`,
    '-o', `source=${share}`,
    '-o', 'sandbox=namespace',
    '-o', 'cache=auto',
    '-o', 'no_posix_lock',
    '-o', 'no_xattr',
    // Fewer rights than its default set: no device nodes or file capabilities made on the host's disk.
    // Without CAP_FSETID too where a share is id-mapped: the kernel then clears a setuid or setgid
    // bit the server's writes or chowns would have kept (a file of the caller's it was given).
    '-o', `modcaps=-mknod:-setfcap${mapped ? ':-fsetid' : ''}`,
    '-o', 'log_level=warn',
    // Its thread pool is for throughput; a small VM does not need it.
    '--thread-pool-size=0',
  ];
}
