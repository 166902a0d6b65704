// Socket constants the sentry's network wall reads and answers with (x86_64 and aarch64, asm-generic), in kernel spelling.

export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_SEQPACKET = 5;

export const SOL_SOCKET = 1;
export const SO_TYPE = 3;
export const SO_ERROR = 4;
export const SO_DOMAIN = 39;
export const SO_PROTOCOL = 38;

export const SOL_TCP = 6;
/** setsockopt(TCP_FASTOPEN_CONNECT): a later send on an unconnected socket connects it to the send's address. */
export const TCP_FASTOPEN_CONNECT = 30;

export const IPPROTO_IP = 0;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;
export const IPPROTO_UDPLITE = 136;
export const IPPROTO_MPTCP = 262;

export const NETLINK_ROUTE = 0;

export const MSG_DONTWAIT = 0x40;
/** sendto/sendmsg(MSG_FASTOPEN): connects an unconnected TCP socket to the message's address and sends with the SYN. */
export const MSG_FASTOPEN = 0x20000000;

export const SCM_RIGHTS = 1;
export const SCM_CREDENTIALS = 2;

export const AF_UNSPEC = 0;

/** sizeof(struct sockaddr_un), and where its path starts. */
export const SOCKADDR_UN_SIZE = 110;
export const SUN_PATH_OFFSET = 2;
/** sizeof(struct sockaddr_in) and sizeof(struct sockaddr_in6). */
export const SOCKADDR_IN_SIZE = 16;
export const SOCKADDR_IN6_SIZE = 28;
/** sizeof(struct msghdr), sizeof(struct mmsghdr) and sizeof(struct iovec) on 64-bit ABIs. */
export const MSGHDR_SIZE = 56;
export const MMSGHDR_SIZE = 64;
export const IOVEC_SIZE = 16;
/** UIO_MAXIOV: the most iovecs one call takes (EMSGSIZE beyond). */
export const UIO_MAXIOV = 1024;

export const EMSGSIZE = 90;
export const ENOPROTOOPT = 92;
export const ENOTSOCK = 88;
export const EISCONN = 106;
export const EALREADY = 114;
export const EINPROGRESS = 115;
export const ECONNREFUSED = 111;
export const ENETUNREACH = 101;
export const ETIMEDOUT = 110;
