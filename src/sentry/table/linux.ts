// Linux constants the syscall table's argument rules compare against, in kernel spelling.
//
// They belong in src/abi/linux/constants.ts with the rest; they live here until that file, which
// feeds the C header, takes them (it is outside this module's reach for now).

export const EPERM = 1;
export const ENOSYS = 38;
export const EPROTONOSUPPORT = 93;
export const EOPNOTSUPP = 95;
export const EAFNOSUPPORT = 97;

export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const AF_PACKET = 17;

/** socket(2)'s type argument: the type is its low four bits (SOCK_TYPE_MASK), the rest flags. */
export const SOCK_TYPE_MASK = 0xf;
export const SOCK_RAW = 3;
export const SOCK_PACKET = 10;

export const NETLINK_AUDIT = 9;

/** Terminal ioctls that push input into a tty or reach the console. */
export const TIOCSTI = 0x5412;
export const TIOCLINUX = 0x541c;
/** Inode flag ioctls (chattr), which need only ownership, not a writable descriptor. */
export const FS_IOC_SETFLAGS = 0x40086602;
export const FS_IOC32_SETFLAGS = 0x40046602;
export const FS_IOC_FSSETXATTR = 0x401c5820;

/** personality(2) values that do not widen what the process may execute or map. */
export const PER_LINUX = 0x0000;
export const PER_LINUX32 = 0x0008;
export const UNAME26 = 0x0020000;
/** personality(0xffffffff) only reads the current persona. */
export const PERSONALITY_QUERY = 0xffffffff;
