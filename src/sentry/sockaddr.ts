// Socket addresses as the workload writes them (struct sockaddr_in, _in6, _un), decoded once for the network wall.
import { AF_INET, AF_INET6, AF_UNIX, EINVAL } from '../abi/linux/constants';
import { AF_UNSPEC, SOCKADDR_IN6_SIZE, SOCKADDR_IN_SIZE, SOCKADDR_UN_SIZE, SUN_PATH_OFFSET } from '../abi/linux/net';
import { formatEndpoint, type IpAddr } from './net-policy';

/** sizeof(struct sockaddr_storage): the longest address the kernel copies in (EINVAL beyond). */
export const SOCKADDR_MAX = 128;

export type SockAddr =
  | { readonly kind: 'inet'; readonly ip: IpAddr; readonly port: number }
  | { readonly kind: 'unix-path'; readonly path: string }
  | { readonly kind: 'unix-abstract'; readonly name: string }
  | { readonly kind: 'unix-unnamed' }
  | { readonly kind: 'unspec' }
  | { readonly kind: 'other'; readonly family: number };

/**
 * What the bytes `b` of an address say, as the kernel reads them for a socket of that family: an
 * IPv4 address within the first 16 bytes, IPv6 within 24 (SIN6_LEN_RFC2133: sin6_scope_id may
 * be left out), a unix path up to its NUL. -EINVAL where the kernel says so too.
 */
export function decodeSockaddr(b: Buffer): SockAddr | number {
  if (b.length < 2) return -EINVAL;
  const family = b.readUInt16LE(0);
  switch (family) {
    case AF_UNSPEC:
      return { kind: 'unspec' };
    case AF_INET:
      if (b.length < SOCKADDR_IN_SIZE) return -EINVAL;
      return { kind: 'inet', ip: { v6: false, value: BigInt(b.readUInt32BE(4)) }, port: b.readUInt16BE(2) };
    case AF_INET6: {
      if (b.length < 24) return -EINVAL;
      const v = BigInt(`0x${b.toString('hex', 8, 24)}`);
      // An IPv4-mapped address on an IPv6 socket is IPv4 on the wire.
      const ip = v >> 32n === 0xffffn ? { v6: false, value: v & 0xffffffffn } : { v6: true, value: v };
      return { kind: 'inet', ip, port: b.readUInt16BE(2) };
    }
    case AF_UNIX: {
      if (b.length === SUN_PATH_OFFSET) return { kind: 'unix-unnamed' };
      if (b.length > SOCKADDR_UN_SIZE) return -EINVAL;
      if (b[SUN_PATH_OFFSET] === 0) return { kind: 'unix-abstract', name: b.toString('latin1', SUN_PATH_OFFSET + 1) };
      const end = b.indexOf(0, SUN_PATH_OFFSET);
      return { kind: 'unix-path', path: b.toString('utf8', SUN_PATH_OFFSET, end < 0 ? b.length : end) };
    }
    default:
      return { kind: 'other', family };
  }
}

/** An address as the log and trace name it: "10.0.0.1:80", "[::1]:53", "/run/x.sock", "@name". */
export function describeSockaddr(a: SockAddr): string {
  switch (a.kind) {
    case 'inet': return formatEndpoint(a.ip, a.port);
    case 'unix-path': return a.path;
    case 'unix-abstract': return `@${a.name}`;
    case 'unix-unnamed': return '(unnamed unix)';
    case 'unspec': return 'AF_UNSPEC';
    default: return `family ${a.family}`;
  }
}

/** struct sockaddr_in or sockaddr_in6 for (ip, port). */
export function encodeSockaddr(ip: IpAddr, port: number): Buffer {
  if (!ip.v6) {
    const b = Buffer.alloc(SOCKADDR_IN_SIZE);
    b.writeUInt16LE(AF_INET, 0);
    b.writeUInt16BE(port, 2);
    b.writeUInt32BE(Number(ip.value), 4);
    return b;
  }
  const b = Buffer.alloc(SOCKADDR_IN6_SIZE);
  b.writeUInt16LE(AF_INET6, 0);
  b.writeUInt16BE(port, 2);
  Buffer.from(ip.value.toString(16).padStart(32, '0'), 'hex').copy(b, 8);
  return b;
}

/** struct sockaddr_un naming `path`, or undefined when it does not fit sun_path (ENAMETOOLONG). */
export function unixSockaddr(path: string): Buffer | undefined {
  const bytes = Buffer.from(path, 'utf8');
  if (bytes.length >= SOCKADDR_UN_SIZE - SUN_PATH_OFFSET) return undefined;
  const b = Buffer.alloc(SUN_PATH_OFFSET + bytes.length + 1);
  b.writeUInt16LE(AF_UNIX, 0);
  bytes.copy(b, SUN_PATH_OFFSET);
  return b;
}
