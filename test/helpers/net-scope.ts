// Network names and addresses of this test process's own: a network namespace joined to the host by a veth pair, and loopback addresses, that no other run on the host (a second suite, another user) holds at the same time.
//
// Two suites at once both made "sn1234-ns" and 10.x.y.0/24 from their pids: the second `ip netns
// add` failed, or two host interfaces held the same subnet and one run's packets went to the
// other's peers. Every name here is random, made with the kernel's own refusal of a name in use
// (ip netns add, ip link add: EEXIST) as the arbiter, and the subnet is one no interface has.
import { execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';

/** Linux's interface names hold at most 15 bytes (IFNAMSIZ, 16 with the NUL). */
export const IFNAME_MAX = 15;

const ip = (...args: string[]): string => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });

/** `prefix` and random hex digits, `length` bytes in all (an interface name by default). */
export function shortName(prefix: string, length = IFNAME_MAX - 1): string {
  const digits = length - prefix.length;
  if (digits < 6) throw new Error(`shortName: "${prefix}" leaves ${digits} random digits in ${length} bytes; at least 6 keep two runs apart`);
  return prefix + randomBytes(Math.ceil(digits / 2)).toString('hex').slice(0, digits);
}

/** The IPv4 /24 prefixes ("a.b.c") of every address and route on the host now. */
function subnetsInUse(): Set<string> {
  const used = new Set<string>();
  for (const m of `${ip('-4', '-o', 'addr')}\n${ip('-4', 'route')}`.matchAll(/\b(\d+\.\d+\.\d+)\.\d+\b/g)) used.add(m[1] as string);
  return used;
}

export interface VethNetns {
  /** The network namespace (ip netns exec NAME). */
  readonly ns: string;
  /** The host's end of the pair, `net`.1. */
  readonly hostIf: string;
  /** The namespace's end, `net`.2 and `net`.3. */
  readonly nsIf: string;
  /** The /24's first three octets: "10.213.7". */
  readonly net: string;
  /** Takes the pair and the namespace away; quiet when they are gone already. */
  remove(): void;
}

/**
 * A network namespace of this process's own, joined to the host's by a veth pair: the host side
 * holds NET.1/24, the namespace's side NET.2 and NET.3, both up, with loopback up inside.
 * Names and subnet are random; one taken by someone else (EEXIST, or a subnet an interface holds
 * by the time ours is up) is given back and another drawn.
 */
export function makeVethNetns(): VethNetns {
  let lastError: unknown;
  for (let attempt = 0; attempt < 8; attempt++) {
    const base = shortName('st', 10);
    const ns = `${base}-ns`;
    const hostIf = `${base}h`;
    const nsIf = `${base}n`;
    const used = subnetsInUse();
    let net: string;
    do net = `10.${randomInt(200, 250)}.${randomInt(0, 256)}`; while (used.has(net));
    const made = { ns: false, link: false };
    const remove = (): void => {
      if (made.link) try { ip('link', 'del', hostIf); } catch { /* gone with the namespace */ }
      if (made.ns) try { ip('netns', 'del', ns); } catch { /* gone already */ }
    };
    try {
      ip('netns', 'add', ns);
      made.ns = true;
      ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
      made.link = true;
      ip('link', 'set', nsIf, 'netns', ns);
      ip('addr', 'add', `${net}.1/24`, 'dev', hostIf);
      ip('link', 'set', hostIf, 'up');
      ip('-n', ns, 'addr', 'add', `${net}.2/24`, 'dev', nsIf);
      ip('-n', ns, 'addr', 'add', `${net}.3/24`, 'dev', nsIf);
      ip('-n', ns, 'link', 'set', nsIf, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      // Another run may have drawn the same subnet between our look and our address: then two
      // host interfaces route it, and neither run knows whose peers it reaches. Look again.
      const holders = ip('-4', '-o', 'addr').split('\n').filter((l) => l.includes(` ${net}.`) && !l.includes(` ${hostIf} `));
      if (holders.length > 0) throw new Error(`subnet ${net}.0/24 is held by another interface too: ${holders.join('; ')}`);
      return { ns, hostIf, nsIf, net, remove };
    } catch (e) {
      lastError = e;
      remove();
    }
  }
  throw new Error(`makeVethNetns: no free namespace, veth pair and subnet after 8 draws: ${(lastError as Error).message}`);
}

/** A loopback address no one is likely to use: 127.A.B.C with A at least 1 (127.0.0.x has users: systemd-resolved's .53, /etc/hosts's .1). */
export function randomLoopback(): string {
  return `127.${randomInt(1, 255)}.${randomInt(0, 256)}.${randomInt(1, 255)}`;
}
