// The container's network inside its VM: each interface of its network namespace wired to a virtio-net device, the guest configured to match.
//
// The keeper lives in the network namespace the client gave the container (keeper-client.ts).
// There, for each interface but lo (Podman's and Docker's veth, a CNI plugin's), as Kata's
// default "tcfilter" mode does:
//
//   container netns (host kernel)                          guest
//     eth0 (veth; MAC m) --ingress: mirred redirect--> stk-tap0 ==fd==> QEMU virtio-net (MAC m) -> eth0
//     eth0 <--mirred redirect-- ingress of stk-tap0 <==========  what the guest sends
//
// Every frame arriving on the interface goes to the tap (so to the guest), and every frame the
// guest sends leaves by the interface: the guest's eth0, with the interface's MAC, addresses,
// routes and MTU, stands where the interface stood. The tap is opened here (the keeper is root in
// the namespace) and its fd handed to QEMU, which therefore needs no CAP_NET_ADMIN and stays in
// its jail's own, empty network namespace. The tap is not persistent: it goes with the last fd,
// when QEMU and the keeper are gone.
//
// DNS needs nothing here: the client's /etc/resolv.conf (and hosts, hostname) are bind mounts of
// the bundle, shared with the VM like any other bind.
import { execFileSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, statSync } from 'node:fs';
import { isIP } from 'node:net';
import { StockadeError } from '../errors';
import { sentryNative } from '../native/addon';
import { abiOf, nativeArch, syscallNumber } from '../seccomp/arch';
import { NET_FAMILIES, NET_ROUTE_FLAGS } from './protocol';

/** An address of an interface. */
export interface NetAddress {
  readonly family: 4 | 6;
  readonly address: string;
  readonly prefix: number;
}

/** An interface of the container's network namespace, as the guest gets it. */
export interface NetInterface {
  readonly name: string;
  /** aa:bb:cc:dd:ee:ff */
  readonly mac: string;
  readonly mtu: number;
  readonly addresses: readonly NetAddress[];
}

/** A route of the namespace's main table (the kernel's own prefix routes left out: the guest makes them). */
export interface NetRoute {
  readonly family: 4 | 6;
  /** undefined: the default route. */
  readonly dst?: string;
  readonly prefix: number;
  readonly gateway?: string;
  /** The interface it leaves by, if it names one. */
  readonly dev?: string;
  readonly metric?: number;
  readonly onlink?: boolean;
}

export interface ContainerNetwork {
  readonly interfaces: readonly NetInterface[];
  readonly routes: readonly NetRoute[];
  /** Interfaces left out because another VM's tap takes their traffic, for the log. */
  readonly heldElsewhere?: readonly string[];
}

/** A virtio-net device of the VM: QEMU gets the tap's fd; the guest's NIC gets the interface's MAC. */
export interface VmNic {
  readonly fd: number;
  readonly mac: string;
}

/** A tap wired to an interface of the namespace (what unwiring checks it still owns). */
export interface Wired {
  readonly iface: string;
  readonly tap: string;
}

function ip(args: readonly string[]): unknown {
  let out: string;
  try {
    out = execFileSync('ip', ['-j', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const stderr = (e as { stderr?: unknown }).stderr;
    throw new StockadeError('SYSTEM', `vm network: ip ${args.join(' ')} failed: ${typeof stderr === 'string' ? stderr.trim() : String(e)}`);
  }
  return out.trim() === '' ? [] : JSON.parse(out) as unknown;
}

function run(cmd: string, args: readonly string[]): void {
  try {
    execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (e) {
    const stderr = (e as { stderr?: unknown }).stderr;
    const why = Buffer.isBuffer(stderr) ? stderr.toString('utf8').trim() : String(e);
    throw new StockadeError('SYSTEM', `vm network: ${cmd} ${args.join(' ')} failed: ${why}`);
  }
}

type Json = Record<string, unknown>;
const str = (o: Json, k: string): string | undefined => (typeof o[k] === 'string' ? o[k] : undefined);
const num = (o: Json, k: string): number | undefined => (typeof o[k] === 'number' ? o[k] : undefined);
const list = (v: unknown): Json[] => (Array.isArray(v) ? v.filter((x): x is Json => typeof x === 'object' && x !== null) : []);

/** Whether the network namespace this process is in has no interface but lo (/proc/self/net/dev). */
function onlyLoopback(): boolean {
  try {
    const names = readFileSync('/proc/self/net/dev', 'utf8').split('\n').slice(2).map((l) => l.split(':')[0]?.trim() ?? '').filter((n) => n !== '');
    return names.length === 1 && names[0] === 'lo';
  } catch {
    return false;
  }
}

/**
 * The interfaces and routes of the network namespace this process is in. An interface that is
 * not Ethernet (a tun, a WireGuard link) cannot stand behind a virtio-net device: refused by name.
 */
export function readNetwork(): ContainerNetwork {
  // A namespace with only its loopback (`--network none`, `run` of a bundle's new namespace): no
  // interface to give and no route through one. Said by the kernel's own list, without the three
  // `ip` runs below (~0.2 s of a vm container's start here under load).
  if (onlyLoopback()) return { interfaces: [], routes: [] };
  const addrs = list(ip(['address', 'show']));
  const interfaces: NetInterface[] = [];
  const heldElsewhere: string[] = [];
  for (const l of addrs) {
    const name = str(l, 'ifname') ?? '';
    // lo is the guest's own; a tap of another VM wired to this namespace (a pod's other container) is not the container's.
    if (str(l, 'link_type') === 'loopback' || TAP_NAME.test(name)) continue;
    const mac = str(l, 'address') ?? '';
    if (str(l, 'link_type') !== 'ether' || !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/.test(mac)) {
      throw new StockadeError('UNSUPPORTED', `vm network: interface ${name} is not an Ethernet interface (${str(l, 'link_type') ?? 'unknown'}); a vm container's interfaces are given to its VM as Ethernet devices`, { interface: name });
    }
    const addresses: NetAddress[] = [];
    for (const a of list(l['addr_info'])) {
      const family = str(a, 'family') === 'inet' ? 4 : str(a, 'family') === 'inet6' ? 6 : undefined;
      const address = str(a, 'local');
      const prefix = num(a, 'prefixlen');
      // The guest makes its own IPv6 link-local address, the same one, from the same MAC.
      if (family === undefined || address === undefined || prefix === undefined || str(a, 'scope') === 'host') continue;
      if (family === 6 && str(a, 'scope') === 'link') continue;
      addresses.push({ family, address, prefix });
    }
    // Another VM on this namespace (a pod's container before this one) holds it: its traffic goes
    // there, and taking it would cut that VM off. One VM per pod (issue 14 item 2) is not done.
    const holder = redirectTarget(name);
    if (holder !== undefined && TAP_NAME.test(holder) && linkExists(holder)) {
      heldElsewhere.push(`${name} (by ${holder})`);
      continue;
    }
    interfaces.push({ name, mac, mtu: num(l, 'mtu') ?? 1500, addresses });
  }
  const names = new Set(interfaces.map((i) => i.name));
  const routes: NetRoute[] = [];
  for (const family of [4, 6] as const) {
    for (const r of list(ip([`-${family}`, 'route', 'show', 'table', 'main']))) {
      // The kernel's own routes (an address's prefix) come back in the guest with the address.
      if (str(r, 'protocol') === 'kernel' || (str(r, 'type') ?? 'unicast') !== 'unicast') continue;
      const dev = str(r, 'dev');
      if (dev !== undefined && !names.has(dev)) continue;
      const dst = str(r, 'dst') ?? 'default';
      let to: { dst?: string; prefix: number } = { prefix: 0 };
      if (dst !== 'default') {
        const [a, p] = dst.split('/');
        if (a === undefined || isIP(a) === 0) continue;
        to = { dst: a, prefix: p === undefined ? (family === 4 ? 32 : 128) : Number(p) };
      }
      const gateway = str(r, 'gateway');
      const metric = num(r, 'metric');
      const flags = Array.isArray(r['flags']) ? r['flags'] : [];
      routes.push({
        family, ...to, ...(gateway !== undefined ? { gateway } : {}), ...(dev !== undefined ? { dev } : {}),
        ...(metric !== undefined ? { metric } : {}), ...(flags.includes('onlink') ? { onlink: true } : {}),
      });
    }
  }
  // Routes on the link first: a route through a gateway needs the gateway reachable.
  routes.sort((a, b) => Number(a.gateway !== undefined) - Number(b.gateway !== undefined));
  return { interfaces, routes, heldElsewhere };
}

/** Where tc's ingress filter of `dev` redirects its frames, if it does (a tap of a VM). */
export function redirectTarget(dev: string): string | undefined {
  try {
    const out = execFileSync('tc', ['filter', 'show', 'dev', dev, 'ingress'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    return /Redirect to device (\S+?)\)/.exec(out)?.[1];
  } catch {
    return undefined;
  }
}

function linkExists(dev: string): boolean {
  try {
    execFileSync('ip', ['link', 'show', 'dev', dev], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const TUNSETIFF = 0x400454ca;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;

/** Our taps' names: the kernel numbers them (TUNSETIFF with "%d"), so two VMs on one namespace do not collide. */
const TAP_PATTERN = 'stk-tap%d';
const TAP_NAME = /^stk-tap\d+$/;

/** A tap device in this network namespace, non-persistent (it goes with its last fd): its fd and the name the kernel gave it. */
function openTap(): { fd: number; name: string } {
  const fd = openSync('/dev/net/tun', 'r+');
  const ifr = Buffer.alloc(40);
  ifr.write(TAP_PATTERN, 0, 15, 'ascii');
  ifr.writeUInt16LE(IFF_TAP | IFF_NO_PI, 16);
  const abi = abiOf(nativeArch());
  const nr = abi === undefined ? undefined : syscallNumber(abi, 'ioctl');
  const r = nr === undefined ? -38 : sentryNative().syscall(nr, fd, TUNSETIFF, ifr);
  if (r < 0) {
    closeSync(fd);
    throw new StockadeError('SYSTEM', `vm network: TUNSETIFF ${TAP_PATTERN}: errno ${-r}`);
  }
  const name = ifr.subarray(0, 16).toString('ascii').replace(/\0.*$/s, '');
  return { fd, name };
}

/** Namespaces' inodes below this are the kernel's first ones (include/linux/proc_ns.h). */
export const FIRST_NS_INO_END = 0xf0000000;

/**
 * Whether this process is in the network namespace of the machine's (or its container's) init. PID
 * 1's namespace cannot always be read (a non-dumpable init, as in a Firecracker guest); then the
 * inode says it: the kernel numbers every first namespace below 0xf0000000 (include/linux/proc_ns.h;
 * the network's too since 6.x), the others from there up. On an older kernel with PID 1 unreadable
 * it cannot tell, and does not refuse: the container's namespace and the host's look alike there.
 */
export function inHostNetns(): boolean {
  let own: number;
  try {
    own = statSync('/proc/self/ns/net').ino;
  } catch {
    return true;
  }
  try {
    return own === statSync('/proc/1/ns/net').ino;
  } catch {
    return own < FIRST_NS_INO_END;
  }
}

/**
 * For each interface: a tap, and tc's mirred redirecting every frame both ways between them (the
 * ingress qdisc of each, a u32 filter matching all). Returns the devices QEMU gets, in the
 * interfaces' order; on a failure, the taps opened so far are closed (their filters go with them).
 */
export function wireInterfaces(net: ContainerNetwork): { nics: VmNic[]; wired: Wired[] } {
  // Wiring redirects every packet of an interface into the VM: in the host's own namespace (a
  // keeper run by hand, or a path that forgot its namespace) that would take the host's network
  // away. Host networking is refused at vm before this; here it is refused again, at the act.
  if (net.interfaces.length > 0 && inHostNetns()) {
    throw new StockadeError('UNSUPPORTED', `vm network: refusing to give ${net.interfaces.map((i) => i.name).join(', ')} to a VM from the host's own network namespace`, {});
  }
  const nics: VmNic[] = [];
  const wired: Wired[] = [];
  try {
    for (const itf of net.interfaces) {
      const { fd, name: tap } = openTap();
      nics.push({ fd, mac: itf.mac });
      wired.push({ iface: itf.name, tap });
      run('ip', ['link', 'set', 'dev', tap, 'mtu', String(itf.mtu), 'up']);
      // A keeper killed before its cleanup (SIGKILL) leaves its redirect on the interface, pointing
      // at a tap that is gone (readNetwork left out those with a live one): replaced, not stacked.
      try {
        execFileSync('tc', ['qdisc', 'del', 'dev', itf.name, 'ingress'], { stdio: 'ignore' });
      } catch { /* there was none */ }
      for (const [from, to] of [[itf.name, tap], [tap, itf.name]] as const) {
        run('tc', ['qdisc', 'add', 'dev', from, 'ingress']);
        run('tc', ['filter', 'add', 'dev', from, 'parent', 'ffff:', 'protocol', 'all', 'u32', 'match', 'u8', '0', '0',
          'action', 'mirred', 'egress', 'redirect', 'dev', to]);
      }
    }
  } catch (e) {
    for (const n of nics) closeSync(n.fd);
    unwireInterfaces(wired);
    throw e;
  }
  return { nics, wired };
}

/**
 * Takes the redirects off the namespace's interfaces (the taps go with their fds), each only if it
 * still leads to this VM's tap, or to none (another VM may hold the interface since). Best effort: the
 * namespace may be gone.
 */
export function unwireInterfaces(wired: readonly Wired[]): void {
  for (const w of wired) {
    // "*": the tap is gone (with QEMU), and the redirect leads nowhere.
    const target = redirectTarget(w.iface);
    if (target !== w.tap && target !== '*') continue;
    try {
      execFileSync('tc', ['qdisc', 'del', 'dev', w.iface, 'ingress'], { stdio: 'ignore' });
    } catch { /* gone with its namespace */ }
  }
}

function addressBytes(family: 4 | 6, a: string): Buffer {
  if (family === 4) return Buffer.from(a.split('.').map(Number));
  // Expanded to 8 groups: "::" stands for as many zero groups as are missing.
  const [head = '', tail] = a.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

export function macBytes(mac: string): Buffer {
  return Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
}

/** The agent's requests that make the guest's network the container's (in order: links, addresses, routes). */
export function guestNetworkRequests(net: ContainerNetwork): (
  | { type: 'NET_LINK'; mac: Buffer; name: string; mtu: number }
  | { type: 'NET_ADDR'; name: string; family: number; address: Buffer; prefix: number }
  | { type: 'NET_ROUTE'; name: string; family: number; dst: Buffer; prefix: number; gateway: Buffer; metric: number; flags: number }
)[] {
  const fam = (f: 4 | 6): number => (f === 4 ? NET_FAMILIES.INET : NET_FAMILIES.INET6);
  return [
    ...net.interfaces.map((i) => ({ type: 'NET_LINK' as const, mac: macBytes(i.mac), name: i.name, mtu: i.mtu })),
    ...net.interfaces.flatMap((i) => i.addresses.map((a) => ({
      type: 'NET_ADDR' as const, name: i.name, family: fam(a.family), address: addressBytes(a.family, a.address), prefix: a.prefix,
    }))),
    ...net.routes.map((r) => ({
      type: 'NET_ROUTE' as const, name: r.dev ?? '', family: fam(r.family), dst: r.dst === undefined ? Buffer.alloc(0) : addressBytes(r.family, r.dst),
      prefix: r.prefix, gateway: r.gateway === undefined ? Buffer.alloc(0) : addressBytes(r.family, r.gateway), metric: r.metric ?? 0,
      flags: r.onlink === true ? NET_ROUTE_FLAGS.ONLINK : 0,
    })),
  ];
}
