/* stockade-agent: a loopback nameserver of the container's network namespace, reached from the guest.
 *
 * Docker gives a user network's containers `nameserver 127.0.0.11`: its embedded DNS, served by a
 * socket dockerd holds in the container's network namespace on the host. In the guest, 127.0.0.11
 * is the guest's own loopback, where nothing listens. The agent listens there instead (DNS_LISTEN)
 * and passes each datagram to the host (DNS_QUERY); the keeper, which lives in the container's
 * namespace, asks the real nameserver and sends the answer back (DNS_ANSWER), which the agent
 * sends to the process that asked, from the address it asked.
 *
 *   guest process --udp 127.0.0.11:53--> agent --DNS_QUERY--> keeper --udp--> dockerd's resolver
 *   guest process <--------------------- agent <-DNS_ANSWER-- keeper <-------
 *
 * UDP only: a truncated answer (TC) sends a resolver to TCP, which is not forwarded. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "agent.h"

static int listeners[STK_AGENT_DNS_LISTENERS] = { -1, -1, -1, -1 };
static unsigned nlisteners;

/* The senders of the last DNS_PENDING queries: slot = query % DNS_PENDING. */
static struct {
  uint32_t query;
  int used;
  unsigned listener;
  struct sockaddr_in from;
} pending[STK_AGENT_DNS_PENDING];
static uint32_t next_query = 1;

int dns_listen(uint32_t id, const struct stk_agent_h_dns_listen *m)
{
  if (m->address_len != 4) return send_error(id, EINVAL, "dns listen: an IPv4 address of 4 bytes, not %u", m->address_len);
  if (m->address[0] != 127) return send_error(id, EINVAL, "dns listen: %u.%u.%u.%u is not a loopback address", m->address[0], m->address[1], m->address[2], m->address[3]);
  if (m->port == 0 || m->port > 65535) return send_error(id, EINVAL, "dns listen: port %u", m->port);
  if (!agent_in_guest()) return send_error(id, EPERM, "dns listen: not in the guest");
  if (nlisteners >= STK_AGENT_DNS_LISTENERS) return send_error(id, ENOSPC, "dns listen: %u sockets already", nlisteners);
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return send_error(id, errno, "dns listen: socket: %s", strerror(errno));
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)m->port) };
  memcpy(&a.sin_addr, m->address, 4);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    int e = errno;
    close(fd);
    return send_error(id, e, "dns listen: bind %u.%u.%u.%u:%u: %s", m->address[0], m->address[1], m->address[2], m->address[3], m->port, strerror(e));
  }
  listeners[nlisteners++] = fd;
  return send_ok(id);
}

unsigned dns_fds(int *fds)
{
  for (unsigned i = 0; i < nlisteners; i++) fds[i] = listeners[i];
  return nlisteners;
}

/* Datagrams waiting on listener i, each to the host as a DNS_QUERY. -1 only when the channel broke. */
int dns_receive(unsigned i)
{
  static uint8_t data[STK_AGENT_DNS_MAX_QUERY + 1];
  static uint8_t frame[STK_AGENT_DNS_MAX_QUERY + 64];
  if (i >= nlisteners) return 0;
  for (;;) {
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(listeners[i], data, sizeof data, MSG_TRUNC, (struct sockaddr *)&from, &fl);
    if (n < 0) return 0; /* EAGAIN: all read */
    if (n == 0 || n > STK_AGENT_DNS_MAX_QUERY || fl != sizeof from || from.sin_family != AF_INET) continue;
    uint32_t q = next_query++;
    if (next_query == 0) next_query = 1;
    unsigned slot = q % STK_AGENT_DNS_PENDING;
    pending[slot].query = q;
    pending[slot].used = 1;
    pending[slot].listener = i;
    pending[slot].from = from;
    struct stk_agent_g_dns_query m = { .listener = i, .query = q, .data = data, .data_len = (uint32_t)n };
    if (channel_send(frame, stk_agent_encode_dns_query(frame, sizeof frame, 0, &m)) < 0) return -1;
  }
}

void dns_answer(const struct stk_agent_h_dns_answer *m)
{
  unsigned slot = m->query % STK_AGENT_DNS_PENDING;
  if (!pending[slot].used || pending[slot].query != m->query || m->data_len == 0) return;
  pending[slot].used = 0;
  if (sendto(listeners[pending[slot].listener], m->data, m->data_len, MSG_DONTWAIT, (struct sockaddr *)&pending[slot].from, sizeof pending[slot].from) < 0) {
    agent_log("dns answer %u: %s", m->query, strerror(errno));
  }
}
