// Sizes and field offsets of the kernel structs the sentry reads and writes in a caller's memory
// or its own buffers: struct stat as on x86_64, statx and statfs (the same on x86_64 and aarch64).

export const STAT_SIZE = 144;
export const STAT_DEV = 0;
export const STAT_MODE = 24;

export const STATX_SIZE = 256;
export const STATX_MODE = 0x1c;
export const STATX_DEV_MAJOR = 0x88;
export const STATX_DEV_MINOR = 0x8c;
/** statx's mask bit for the file type in stx_mode. */
export const STATX_TYPE = 0x1;
/** statx's mask bit for stx_mnt_id, and that field's offset. */
export const STATX_MNT_ID = 0x1000;
/** struct statx's stx_ino. */
export const STATX_INO_OFFSET = 0x20;
/** struct stat's st_ino (x86_64). */
export const STAT_INO = 8;
/** struct stat's st_rdev (x86_64). */
export const STAT_RDEV = 40;
export const STATX_MNT_ID_OFFSET = 0x90;

export const STATFS_SIZE = 120;
/** f_type is at 0. */
export const STATFS_FLAGS = 80;

/** struct utsname: six fields of 65 bytes each. */
export const UTS_LEN = 65;
