// Turns a mount's `options` array into mount(2) flags, propagation changes, recursive attributes and fs data.
//
// The option names and meanings are those of the runtime-spec's mount options list, which runc
// (specconv) and crun implement the same way: a flag option sets or clears one MS_* bit (later
// options win), a propagation option is applied as its own mount(2) call, an `r*` option is a
// recursive mount_setattr(2) attribute, and anything unknown is fs-specific data (`mode=755`).

import {
  MS_BIND, MS_DIRSYNC, MS_LAZYTIME, MS_MANDLOCK, MS_NOATIME, MS_NODEV, MS_NODIRATIME, MS_NOEXEC,
  MS_NOSUID, MS_NOSYMFOLLOW, MS_PRIVATE, MS_RDONLY, MS_REC, MS_RELATIME, MS_REMOUNT, MS_SHARED,
  MS_SILENT, MS_SLAVE, MS_STRICTATIME, MS_SYNCHRONOUS, MS_UNBINDABLE,
  MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME, MOUNT_ATTR_NOEXEC,
  MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY, MOUNT_ATTR_STRICTATIME,
} from '../abi/linux/constants';
import { StockadeError } from '../errors/index';

// Not (yet) in src/abi/linux/constants.ts; kernel values from linux/mount.h. They belong there.
const MS_I_VERSION = 0x800000;
/** relatime is the absence of the other atime bits, so its "flag" is 0. */
const MOUNT_ATTR_RELATIME = 0x0;
/** The atime field of mount_attr: setting one atime mode requires clearing the whole field. */
const MOUNT_ATTR__ATIME = 0x70;

export interface MountOptions {
  /** MS_* flags for mount(2), propagation excluded. */
  flags: number;
  /** MS_* flags an option asked to turn off (`rw`, `suid`, ...), which a remount must honour. */
  clearFlags: number;
  /** MS_{PRIVATE,SHARED,SLAVE,UNBINDABLE}[|MS_REC] to apply after mounting; 0 for none. */
  propagation: number;
  /** MOUNT_ATTR_* to set recursively with mount_setattr(AT_RECURSIVE) (`rro`, `rnosuid`, ...); 0 for none. */
  recursiveAttr: number;
  /** MOUNT_ATTR_* to clear recursively (`rrw`, ...; MOUNT_ATTR__ATIME when an atime mode is set). */
  recursiveAttrClear: number;
  /** Unrecognised options, comma-joined, passed to the file system as mount(2) data. */
  data: string;
  bind: boolean;
  /** `tmpcopyup`: the new tmpfs starts with what the directory held in the image. */
  copyUp: boolean;
  /** `rbind`: the bind covers the submounts too. */
  recursive: boolean;
}

interface FlagOption { readonly flag: number; readonly clear: boolean }

const set = (flag: number): FlagOption => ({ flag, clear: false });
const clear = (flag: number): FlagOption => ({ flag, clear: true });

// Maps, not object literals: an option named "constructor" or "__proto__" must be plain data.
const FLAG_OPTIONS: ReadonlyMap<string, FlagOption> = new Map([
  ['ro', set(MS_RDONLY)], ['rw', clear(MS_RDONLY)],
  ['nosuid', set(MS_NOSUID)], ['suid', clear(MS_NOSUID)],
  ['nodev', set(MS_NODEV)], ['dev', clear(MS_NODEV)],
  ['noexec', set(MS_NOEXEC)], ['exec', clear(MS_NOEXEC)],
  ['sync', set(MS_SYNCHRONOUS)], ['async', clear(MS_SYNCHRONOUS)],
  ['dirsync', set(MS_DIRSYNC)],
  ['remount', set(MS_REMOUNT)],
  ['mand', set(MS_MANDLOCK)], ['nomand', clear(MS_MANDLOCK)],
  ['noatime', set(MS_NOATIME)], ['atime', clear(MS_NOATIME)],
  ['nodiratime', set(MS_NODIRATIME)], ['diratime', clear(MS_NODIRATIME)],
  ['relatime', set(MS_RELATIME)], ['norelatime', clear(MS_RELATIME)],
  ['strictatime', set(MS_STRICTATIME)], ['nostrictatime', clear(MS_STRICTATIME)],
  ['lazytime', set(MS_LAZYTIME)], ['nolazytime', clear(MS_LAZYTIME)],
  ['iversion', set(MS_I_VERSION)], ['noiversion', clear(MS_I_VERSION)],
  ['nosymfollow', set(MS_NOSYMFOLLOW)], ['symfollow', clear(MS_NOSYMFOLLOW)],
  ['silent', set(MS_SILENT)], ['loud', clear(MS_SILENT)],
  ['bind', set(MS_BIND)], ['rbind', set(MS_BIND | MS_REC)],
]);

const PROPAGATION_OPTIONS: ReadonlyMap<string, number> = new Map([
  ['private', MS_PRIVATE], ['rprivate', MS_PRIVATE | MS_REC],
  ['shared', MS_SHARED], ['rshared', MS_SHARED | MS_REC],
  ['slave', MS_SLAVE], ['rslave', MS_SLAVE | MS_REC],
  ['unbindable', MS_UNBINDABLE], ['runbindable', MS_UNBINDABLE | MS_REC],
]);

const RECURSIVE_OPTIONS: ReadonlyMap<string, FlagOption> = new Map([
  ['rro', set(MOUNT_ATTR_RDONLY)], ['rrw', clear(MOUNT_ATTR_RDONLY)],
  ['rnosuid', set(MOUNT_ATTR_NOSUID)], ['rsuid', clear(MOUNT_ATTR_NOSUID)],
  ['rnodev', set(MOUNT_ATTR_NODEV)], ['rdev', clear(MOUNT_ATTR_NODEV)],
  ['rnoexec', set(MOUNT_ATTR_NOEXEC)], ['rexec', clear(MOUNT_ATTR_NOEXEC)],
  ['rnodiratime', set(MOUNT_ATTR_NODIRATIME)], ['rdiratime', clear(MOUNT_ATTR_NODIRATIME)],
  ['rrelatime', set(MOUNT_ATTR_RELATIME)], ['rnorelatime', clear(MOUNT_ATTR_RELATIME)],
  ['rnoatime', set(MOUNT_ATTR_NOATIME)], ['ratime', clear(MOUNT_ATTR_NOATIME)],
  ['rstrictatime', set(MOUNT_ATTR_STRICTATIME)], ['rnostrictatime', clear(MOUNT_ATTR_STRICTATIME)],
  ['rnosymfollow', set(MOUNT_ATTR_NOSYMFOLLOW)], ['rsymfollow', clear(MOUNT_ATTR_NOSYMFOLLOW)],
]);

/**
 * Options other runtimes know that stockade does not implement. Passing them on as fs data would
 * fail later with a confusing EINVAL from the kernel, so they are refused by name instead.
 */
const UNSUPPORTED_OPTIONS: ReadonlyMap<string, string> = new Map([
  ['idmap', 'id-mapped mounts are not implemented'],
  ['ridmap', 'id-mapped mounts are not implemented'],
]);

/** `defaults` means "no flags" (fstab(5)); it is dropped rather than handed to the fs as data. */
const NO_OP_OPTIONS: ReadonlySet<string> = new Set(['defaults']);

/** Every option name parseMountOptions gives a meaning to, sorted (for `stockade features`). */
export const SUPPORTED_MOUNT_OPTIONS: readonly string[] = [
  ...FLAG_OPTIONS.keys(), ...PROPAGATION_OPTIONS.keys(), ...RECURSIVE_OPTIONS.keys(), ...NO_OP_OPTIONS, 'tmpcopyup',
].sort();

/**
 * Parses `options` of one mount. `field` names the options array in errors
 * (e.g. `mounts[3].options`). Throws StockadeError UNSUPPORTED for a known option stockade lacks.
 */
export function parseMountOptions(options: readonly string[] | undefined, field = 'options'): MountOptions {
  let flags = 0;
  let clearFlags = 0;
  let attrSet = 0;
  let attrClear = 0;
  let propagation = 0;
  let propagationOption = '';
  let copyUp = false;
  const data: string[] = [];

  (options ?? []).forEach((option, i) => {
    const flag = FLAG_OPTIONS.get(option);
    if (flag !== undefined) {
      if (flag.clear) {
        flags &= ~flag.flag;
        clearFlags |= flag.flag;
      } else {
        flags |= flag.flag;
        clearFlags &= ~flag.flag;
      }
      return;
    }
    const prop = PROPAGATION_OPTIONS.get(option);
    if (prop !== undefined) {
      // runc applies each propagation option in turn (slave then shared makes a slave-shared
      // mount); the plan carries one value, so a second, different one is refused, not dropped.
      if (propagation !== 0 && prop !== propagation) {
        throw new StockadeError('UNSUPPORTED', `${field}[${i}]: mount option "${option}" after "${propagationOption}": combining propagation options is not supported`,
          { field: `${field}[${i}]`, option });
      }
      propagation = prop;
      propagationOption = option;
      return;
    }
    const attr = RECURSIVE_OPTIONS.get(option);
    if (attr !== undefined) {
      if (attr.clear) {
        attrClear |= attr.flag;
        attrSet &= ~attr.flag;
      } else {
        // mount_setattr(2): an atime mode is a field, not a bit. Setting one replaces any
        // earlier mode and needs the whole field in attr_clr, or the kernel answers EINVAL.
        if ((attr.flag & ~MOUNT_ATTR__ATIME) === 0) {
          attrSet &= ~MOUNT_ATTR__ATIME;
          attrClear |= MOUNT_ATTR__ATIME;
        } else {
          attrClear &= ~attr.flag;
        }
        attrSet |= attr.flag;
      }
      return;
    }
    const unsupported = UNSUPPORTED_OPTIONS.get(option);
    if (unsupported !== undefined) {
      throw new StockadeError('UNSUPPORTED', `${field}[${i}]: mount option "${option}" is not supported: ${unsupported}`,
        { field: `${field}[${i}]`, option });
    }
    if (option === 'tmpcopyup') {
      copyUp = true;
      return;
    }
    if (NO_OP_OPTIONS.has(option)) return;
    data.push(option);
  });

  return {
    flags,
    clearFlags,
    propagation,
    recursiveAttr: attrSet,
    recursiveAttrClear: attrClear,
    data: data.join(','),
    bind: (flags & MS_BIND) !== 0,
    copyUp,
    recursive: (flags & MS_BIND) !== 0 && (flags & MS_REC) !== 0,
  };
}
