// Sockets: made and addressed in the caller's network namespace; the sentry's egress policy is not there yet.
import { continueBecause } from './notification';
import type { Handler } from './handlers';

/**
 * A socket must belong to the caller's network namespace (a fresh one under `stockade do`), so
 * the kernel creates it there; the filter already refused raw, packet and netlink-audit sockets
 * and every family but unix, inet, inet6 and netlink. Addresses are not yet checked against an
 * egress policy: connect, bind and sendto/sendmsg with an address get the kernel's answer in the
 * container's network namespace, which is the namespaces level's wall, no weaker and no stronger.
 */
const IN_CALLER_NETNS = continueBecause('network: the kernel answers in the container\'s network namespace (no egress policy yet)');


const net: Handler = () => IN_CALLER_NETNS;

export const SOCKET_HANDLERS: Readonly<Record<string, Handler>> = {
  socket: net,
  connect: net,
  bind: net,
  sendto: net,
  sendmsg: net,
  sendmmsg: net,
};

