// A nameserver on the container's network namespace's loopback (Docker's embedded DNS, 127.0.0.11), reached from the guest.
//
// Docker writes `nameserver 127.0.0.11` into a user network's containers' resolv.conf; dockerd
// answers there through a socket and NAT rules of its own in the container's network namespace.
// The guest's loopback is the guest's: nothing answers at 127.0.0.11 there. So the agent listens
// at that address in the guest (DNS_LISTEN) and hands each query to the keeper, which lives in
// the container's namespace and asks the real nameserver from there, one socket per query (so
// that an answer can only be the answer to it), and sends the answer back (native/agent/dns.c).
// UDP only: a resolver that gets a truncated answer and retries over TCP gets no answer.
import { createSocket } from 'node:dgram';
import { closeSync, constants as fsc, fstatSync, openSync, readSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { resolve } from 'node:path';
import { O_CLOEXEC, O_DIRECTORY, O_NOCTTY, O_NONBLOCK, O_PATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS } from '../abi/linux/constants';
import { openat2 } from '../native/addon';
import type { Spec } from '../oci/spec';
import type { AgentClient } from './agent-client';

/** How long the keeper waits for a nameserver's answer before it forgets the query (the guest's resolver retries on its own). */
const ANSWER_TIMEOUT_MS = 5000;
/** Queries in flight at most: beyond them a query is dropped, as a busy nameserver would drop it. */
const MAX_IN_FLIGHT = 64;
const DNS_PORT = 53;

/** More than any resolv.conf holds (the resolver reads three nameservers and six search domains). */
const RESOLV_CONF_MAX = 64 * 1024;

/**
 * The resolv.conf the container reads: the bind mount over /etc/resolv.conf (what Docker, Podman
 * and containerd give: a host path the runtime's caller chose), else its root's, resolved inside
 * the root (RESOLVE_IN_ROOT): the image is the workload's, and this process is root on the host, so
 * an image's /etc/resolv.conf -> /host/path must not name a host file. Either way only a regular
 * file is opened for reading (an image's FIFO there would hold the keeper's boot forever), and only
 * its first 64 KiB read.
 */
export function containerResolvConf(spec: Spec, bundle: string, rootfs: string): string | undefined {
  const m = [...(spec.mounts ?? [])].reverse().find((x) => x.destination === '/etc/resolv.conf' && x.source !== undefined);
  // Looked at first (O_PATH opens nothing: no device's open runs, no FIFO waits), read only if a regular file.
  let at: number;
  try {
    if (m?.source !== undefined) {
      at = openSync(resolve(bundle, m.source), O_PATH | O_CLOEXEC);
    } else {
      const root = openSync(rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
      try {
        at = openat2(root, 'etc/resolv.conf', O_PATH | O_CLOEXEC, 0, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
      } finally {
        closeSync(root);
      }
    }
  } catch {
    return undefined;
  }
  let fd = -1;
  try {
    if (!fstatSync(at).isFile()) return undefined;
    fd = openSync(`/proc/self/fd/${at}`, fsc.O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    const buf = Buffer.alloc(RESOLV_CONF_MAX);
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
    }
    return buf.toString('utf8', 0, n);
  } catch {
    return undefined;
  } finally {
    if (fd >= 0) closeSync(fd);
    closeSync(at);
  }
}

/** The IPv4 loopback nameservers of a resolv.conf (127.0.0.0/8), in its order, at most three (the resolver's own limit). */
export function loopbackNameservers(resolvConf: string): string[] {
  const out: string[] = [];
  for (const line of resolvConf.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    const addr = m?.[1];
    if (addr === undefined || !isIPv4(addr) || !addr.startsWith('127.') || out.includes(addr)) continue;
    out.push(addr);
    if (out.length === 3) break;
  }
  return out;
}

/**
 * Has the guest listen at each loopback nameserver and forwards its queries to that nameserver in
 * this process's network namespace (the container's).
 */
export async function forwardLoopbackDns(client: AgentClient, nameservers: readonly string[], log: (line: string) => void): Promise<void> {
  let inFlight = 0;
  const onQuery = (listener: number, query: number, data: Buffer): void => {
    const server = nameservers[listener];
    if (server === undefined || inFlight >= MAX_IN_FLIGHT) return;
    inFlight++;
    const sock = createSocket('udp4');
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      inFlight--;
      clearTimeout(timer);
      sock.close();
    };
    const timer = setTimeout(finish, ANSWER_TIMEOUT_MS);
    sock.on('error', (e) => {
      log(`dns: ${server}: ${e.message}`);
      finish();
    });
    // Only the nameserver's own answer: connected, the socket takes datagrams from it alone.
    sock.connect(DNS_PORT, server, () => sock.send(data));
    sock.on('message', (answer) => {
      client.dnsAnswer(query, answer);
      finish();
    });
  };
  for (const ns of nameservers) {
    await client.dnsListen(Buffer.from(ns.split('.').map(Number)), DNS_PORT, onQuery);
  }
  if (nameservers.length > 0) log(`dns: the guest's ${nameservers.join(', ')} port ${DNS_PORT} (udp) forwarded to the container's network namespace`);
}
