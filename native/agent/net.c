/* stockade-agent: the guest's network made to match the container's (NET_LINK, NET_ADDR, NET_ROUTE).
 *
 * The host wired each interface of the container's network namespace to a virtio-net device
 * with the same MAC (src/vm/network.ts); here the guest's interface with that MAC takes the
 * interface's name, MTU, addresses and routes. Links by ioctl, addresses and routes by rtnetlink.
 * The container in the guest shares the guest's network namespace, so what is set here is what
 * it sees. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/if_addr.h>
#include "agent.h"

/* The network modules, loaded on the first NET_LINK: a VM without interfaces never pays for them
 * (src/vm/assets.ts NET_MODULE_ORDER_FILE). */
#define NET_MODULE_ORDER "/lib/modules/net-order"

static int net_modules_loaded;

static int ifreq_socket(void)
{
  return socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

static int set_flags(int s, const char *name, short on)
{
  struct ifreq ifr = { 0 };
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) return -1;
  ifr.ifr_flags = (short)(ifr.ifr_flags | on);
  return ioctl(s, SIOCSIFFLAGS, &ifr);
}

/* lo up, as a container's own network namespace has it (stockade-init's TAG_LOOPBACK_UP on the host). */
int net_loopback_up(void)
{
  int s = ifreq_socket();
  if (s < 0) return -1;
  int rc = set_flags(s, "lo", IFF_UP);
  close(s);
  return rc;
}

/* The name of the interface whose address (/sys/class/net/NAME/address) is `mac`; 0 when found. */
static int find_by_mac(const uint8_t *mac, char *name, size_t len)
{
  char want[18], entry[256];
  snprintf(want, sizeof want, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
  if (agent_find_in_class("net", "address", want, entry, sizeof entry) < 0) return -1;
  snprintf(name, len, "%.*s", IFNAMSIZ - 1, entry);
  return 0;
}

static int valid_ifname(const char *name)
{
  size_t n = strlen(name);
  if (n == 0 || n >= IFNAMSIZ || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return 0;
  for (const char *c = name; *c != 0; c++)
    if (*c == '/' || *c == ':' || *c <= ' ' || *c > '~') return 0;
  return 1;
}

int net_link(uint32_t id, const struct stk_agent_h_net_link *m)
{
  if (m->mac_len != 6) return send_error(id, EINVAL, "net link: a MAC of %u bytes", m->mac_len);
  if (!valid_ifname(m->name)) return send_error(id, EINVAL, "net link: %s is not an interface name", m->name);
  if (m->mtu < 68 || m->mtu > 65535) return send_error(id, EINVAL, "net link %s: MTU %u (68 to 65535)", m->name, m->mtu);
  if (!agent_in_guest()) return send_error(id, EPERM, "net link: not in the guest");
  if (!net_modules_loaded) {
    if (agent_load_modules(NET_MODULE_ORDER) < 0) return send_error(id, ENOENT, "net link %s: the network modules did not load (the guest console says why)", m->name);
    net_modules_loaded = 1;
  }
  char cur[IFNAMSIZ];
  if (find_by_mac(m->mac, cur, sizeof cur) < 0) {
    return send_error(id, ENODEV, "net link %s: the guest has no interface with MAC %02x:%02x:%02x:%02x:%02x:%02x", m->name,
                      m->mac[0], m->mac[1], m->mac[2], m->mac[3], m->mac[4], m->mac[5]);
  }
  int s = ifreq_socket();
  if (s < 0) return send_error(id, errno, "net link: socket: %s", strerror(errno));
  struct ifreq ifr = { 0 };
  const char *step = "rename";
  int rc = 0;
  /* Renamed while down (the kernel refuses to rename a running interface). */
  if (strcmp(cur, m->name) != 0) {
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", cur);
    snprintf(ifr.ifr_newname, sizeof ifr.ifr_newname, "%s", m->name);
    rc = ioctl(s, SIOCSIFNAME, &ifr);
  }
  if (rc == 0) {
    step = "mtu";
    memset(&ifr, 0, sizeof ifr);
    snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", m->name);
    ifr.ifr_mtu = (int)m->mtu;
    rc = ioctl(s, SIOCSIFMTU, &ifr);
  }
  if (rc == 0) {
    step = "up";
    rc = set_flags(s, m->name, IFF_UP);
  }
  int err = errno;
  close(s);
  if (rc < 0) return send_error(id, err, "net link %s (%s): %s: %s", m->name, cur, step, strerror(err));
  return send_ok(id);
}

/* One rtnetlink request and its acknowledgement: 0, or -errno. */
static int nl_talk(struct nlmsghdr *h)
{
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) return -errno;
  struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
  h->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  h->nlmsg_seq = 1;
  int rc = -EIO;
  if (sendto(s, h, h->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof sa) < 0) {
    rc = -errno;
  } else {
    char buf[4096];
    ssize_t n = recv(s, buf, sizeof buf, 0);
    if (n < 0) rc = -errno;
    else {
      struct nlmsghdr *r = (struct nlmsghdr *)buf;
      if (NLMSG_OK(r, (uint32_t)n) && r->nlmsg_type == NLMSG_ERROR) rc = ((struct nlmsgerr *)NLMSG_DATA(r))->error;
    }
  }
  close(s);
  return rc;
}

/* A request is built in a buffer of NL_BUF bytes: the header, the message, its attributes. */
#define NL_BUF 512

static void add_attr(struct nlmsghdr *h, unsigned short type, const void *data, size_t len)
{
  if (NLMSG_ALIGN(h->nlmsg_len) + RTA_SPACE(len) > NL_BUF) return;
  struct rtattr *a = (struct rtattr *)(void *)((char *)h + NLMSG_ALIGN(h->nlmsg_len));
  a->rta_type = type;
  a->rta_len = (unsigned short)RTA_LENGTH(len);
  memcpy(RTA_DATA(a), data, len);
  h->nlmsg_len = (uint32_t)(NLMSG_ALIGN(h->nlmsg_len) + RTA_SPACE(len));
}

/* The address length of a family, or 0 for a family NET_ADDR and NET_ROUTE do not take. */
static uint32_t family_len(uint32_t family)
{
  return family == STK_AGENT_NET_INET ? 4 : family == STK_AGENT_NET_INET6 ? 16 : 0;
}

static const char *show(uint32_t family, const uint8_t *a, char *buf, size_t len)
{
  if (inet_ntop(family == STK_AGENT_NET_INET ? AF_INET : AF_INET6, a, buf, (socklen_t)len) == NULL) snprintf(buf, len, "?");
  return buf;
}

int net_addr(uint32_t id, const struct stk_agent_h_net_addr *m)
{
  uint32_t alen = family_len(m->family);
  if (alen == 0) return send_error(id, EAFNOSUPPORT, "net addr: family %u", m->family);
  if (m->address_len != alen) return send_error(id, EINVAL, "net addr: an address of %u bytes for family %u", m->address_len, m->family);
  if (m->prefix > alen * 8) return send_error(id, EINVAL, "net addr: prefix /%u", m->prefix);
  if (!agent_in_guest()) return send_error(id, EPERM, "net addr: not in the guest");
  unsigned idx = if_nametoindex(m->name);
  if (idx == 0) return send_error(id, ENODEV, "net addr: no interface %s", m->name);
  char a[INET6_ADDRSTRLEN];
  static char buf[NL_BUF] __attribute__((aligned(8)));
  memset(buf, 0, sizeof buf);
  struct nlmsghdr *h = (struct nlmsghdr *)(void *)buf;
  struct ifaddrmsg *ifa = NLMSG_DATA(h);
  h->nlmsg_len = NLMSG_LENGTH(sizeof *ifa);
  h->nlmsg_type = RTM_NEWADDR;
  h->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  ifa->ifa_family = (unsigned char)(m->family == STK_AGENT_NET_INET ? AF_INET : AF_INET6);
  ifa->ifa_prefixlen = (unsigned char)m->prefix;
  ifa->ifa_index = idx;
  add_attr(h, IFA_LOCAL, m->address, alen);
  add_attr(h, IFA_ADDRESS, m->address, alen);
  if (m->family == STK_AGENT_NET_INET && m->prefix < 31) {
    uint8_t brd[4];
    uint32_t host = m->prefix == 0 ? 0xffffffffu : (1u << (32 - m->prefix)) - 1;
    uint32_t v;
    memcpy(&v, m->address, 4);
    v = htonl(ntohl(v) | host);
    memcpy(brd, &v, 4);
    add_attr(h, IFA_BROADCAST, brd, 4);
  }
  /* The host's namespace already did duplicate detection for this address: the guest's would
   * only hold the address back ("tentative") for a second or more. */
  uint32_t flags = m->family == STK_AGENT_NET_INET6 ? IFA_F_NODAD : 0;
  if (flags != 0) add_attr(h, IFA_FLAGS, &flags, sizeof flags);
  int rc = nl_talk(h);
  if (rc < 0) return send_error(id, -rc, "net addr %s/%u on %s: %s", show(m->family, m->address, a, sizeof a), m->prefix, m->name, strerror(-rc));
  return send_ok(id);
}

int net_route(uint32_t id, const struct stk_agent_h_net_route *m)
{
  uint32_t alen = family_len(m->family);
  if (alen == 0) return send_error(id, EAFNOSUPPORT, "net route: family %u", m->family);
  if (m->dst_len != 0 && m->dst_len != alen) return send_error(id, EINVAL, "net route: a destination of %u bytes", m->dst_len);
  if (m->gateway_len != 0 && m->gateway_len != alen) return send_error(id, EINVAL, "net route: a gateway of %u bytes", m->gateway_len);
  if (m->prefix > alen * 8 || (m->dst_len == 0 && m->prefix != 0)) return send_error(id, EINVAL, "net route: prefix /%u", m->prefix);
  if ((m->flags & ~STK_AGENT_NET_ROUTE_ONLINK) != 0) return send_error(id, EINVAL, "net route: unknown flags 0x%x", m->flags);
  if (m->name[0] == 0 && m->gateway_len == 0) return send_error(id, EINVAL, "net route: neither an interface nor a gateway");
  if (!agent_in_guest()) return send_error(id, EPERM, "net route: not in the guest");
  unsigned idx = 0;
  if (m->name[0] != 0 && (idx = if_nametoindex(m->name)) == 0) return send_error(id, ENODEV, "net route: no interface %s", m->name);
  static char buf[NL_BUF] __attribute__((aligned(8)));
  memset(buf, 0, sizeof buf);
  struct nlmsghdr *h = (struct nlmsghdr *)(void *)buf;
  struct rtmsg *rt = NLMSG_DATA(h);
  h->nlmsg_len = NLMSG_LENGTH(sizeof *rt);
  h->nlmsg_type = RTM_NEWROUTE;
  h->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  rt->rtm_family = (unsigned char)(m->family == STK_AGENT_NET_INET ? AF_INET : AF_INET6);
  rt->rtm_dst_len = (unsigned char)m->prefix;
  rt->rtm_table = RT_TABLE_MAIN;
  rt->rtm_protocol = RTPROT_STATIC;
  rt->rtm_scope = m->gateway_len == 0 ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;
  rt->rtm_type = RTN_UNICAST;
  if (m->flags & STK_AGENT_NET_ROUTE_ONLINK) rt->rtm_flags |= RTNH_F_ONLINK;
  if (m->dst_len != 0) add_attr(h, RTA_DST, m->dst, alen);
  if (m->gateway_len != 0) add_attr(h, RTA_GATEWAY, m->gateway, alen);
  if (idx != 0) add_attr(h, RTA_OIF, &idx, sizeof idx);
  if (m->metric != 0) add_attr(h, RTA_PRIORITY, &m->metric, sizeof m->metric);
  int rc = nl_talk(h);
  if (rc < 0) {
    char d[INET6_ADDRSTRLEN], g[INET6_ADDRSTRLEN];
    return send_error(id, -rc, "net route %s/%u via %s dev %s: %s", m->dst_len != 0 ? show(m->family, m->dst, d, sizeof d) : "default", m->prefix,
                      m->gateway_len != 0 ? show(m->family, m->gateway, g, sizeof g) : "-", m->name[0] != 0 ? m->name : "-", strerror(-rc));
  }
  return send_ok(id);
}
