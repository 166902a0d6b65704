/* stockade-agent: the request loop: frames from the host, process pipes, child exits, one poll. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <linux/random.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>
#include "agent.h"

static uint8_t inbuf[STK_AGENT_FRAME_HEADER + STK_AGENT_MAX_HOST_PAYLOAD];
static uint32_t inlen;
static int shutting_down;
static int in_guest;

int agent_in_guest(void) { return in_guest; }

/* mkdir -p for a mount target inside the guest. */
int make_dirs(const char *path)
{
  char buf[4096];
  if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return errno = ENAMETOOLONG, -1;
  for (char *s = buf + 1; *s != 0; s++) {
    if (*s != '/') continue;
    *s = 0;
    if (mkdir(buf, 0755) < 0 && errno != EEXIST) return -1;
    *s = '/';
  }
  if (mkdir(buf, 0755) < 0 && errno != EEXIST) return -1;
  return 0;
}

static int do_mount(uint32_t id, const struct stk_agent_h_mount *m)
{
  if (m->target[0] != '/' || strstr(m->target, "/../") != NULL) return send_error(id, EINVAL, "mount: target %s is not a clean absolute path", m->target);
  if ((m->flags & ~STK_AGENT_MOUNT_RDONLY) != 0) return send_error(id, EINVAL, "mount: unknown flags 0x%x", m->flags);
  unsigned long flags = MS_NOSUID | (m->flags & STK_AGENT_MOUNT_RDONLY ? MS_RDONLY : 0);
  const char *type;
  const char *data = NULL;
  const char *source = m->source;
  switch (m->fstype) {
    case STK_AGENT_FS_VIRTIOFS: type = "virtiofs"; break;
    case STK_AGENT_FS_PROC: type = "proc"; source = "proc"; flags |= MS_NODEV | MS_NOEXEC; break;
    case STK_AGENT_FS_TMPFS: type = "tmpfs"; source = "tmpfs"; flags |= MS_NODEV; break;
    /* cache=mmap: page-cache backed mmap (executables, shared writable maps) with the host's
     * files read afresh otherwise, as Kata mounts a 9p root. */
    case STK_AGENT_FS_NINEP: type = "9p"; data = "trans=virtio,version=9p2000.L,msize=262144,cache=mmap"; break;
    default: return send_error(id, EINVAL, "mount: unknown file system type %u", m->fstype);
  }
  if (!in_guest) return send_error(id, EPERM, "mount: not in the guest");
  if (make_dirs(m->target) < 0) return send_error(id, errno, "mkdir %s: %s", m->target, strerror(errno));
  if (mount(source, m->target, type, flags, data) < 0) return send_error(id, errno, "mount %s on %s: %s", type, m->target, strerror(errno));
  return send_ok(id);
}

static int do_signal(uint32_t id, const struct stk_agent_h_signal *m)
{
  struct proc *p = proc_find(m->proc);
  if (p == NULL) return send_error(id, ESRCH, "signal: no process %u", m->proc);
  if (m->signal < 1 || m->signal > 64) return send_error(id, EINVAL, "signal: %u is not a signal", m->signal);
  if ((m->flags & ~STK_AGENT_SIGNAL_ALL) != 0) return send_error(id, EINVAL, "signal: unknown flags 0x%x", m->flags);
  if (m->flags & STK_AGENT_SIGNAL_ALL) return container_signal_all(id, p, (int)m->signal);
  if (p->exited) return send_error(id, ESRCH, "signal: process %u has exited", m->proc);
  if (p->pid <= 0) return send_error(id, ESRCH, "signal: process %u has no pid yet", m->proc);
  if (kill(p->pid, (int)m->signal) < 0) return send_error(id, errno, "kill: %s", strerror(errno));
  return send_ok(id);
}

static int do_wait(uint32_t id, const struct stk_agent_h_wait *m)
{
  struct proc *p = proc_find(m->proc);
  if (p == NULL) return send_error(id, ESRCH, "wait: no process %u", m->proc);
  if (p->wait_id != 0 || p->exit_reported) return send_error(id, EBUSY, "wait: process %u is already waited for", m->proc);
  if (!p->exited) {
    p->wait_id = id;
    return 0;
  }
  int rc = proc_send_exit(p, id);
  proc_release_if_done(p);
  return rc;
}

/* A clone of a template: its own entropy, clock and name before anything runs in it. */
static int do_refresh(uint32_t id, const struct stk_agent_h_refresh *m)
{
  if (m->seed_len < 32 || m->seed_len > 512) return send_error(id, EINVAL, "refresh: seed of %u bytes (32 to 512)", m->seed_len);
  size_t hn = strlen(m->hostname);
  if (hn == 0 || hn > 64) return send_error(id, EINVAL, "refresh: hostname of %zu bytes (1 to 64)", hn);
  if (m->nanoseconds >= 1000000000u) return send_error(id, EINVAL, "refresh: %u nanoseconds", m->nanoseconds);
  if (!in_guest) return send_error(id, EPERM, "refresh: not in the guest");
  struct { struct rand_pool_info info; uint8_t bytes[512]; } pool;
  pool.info.entropy_count = (int)(m->seed_len * 8);
  pool.info.buf_size = (int)m->seed_len;
  memcpy(pool.bytes, m->seed, m->seed_len);
  int fd = open("/dev/urandom", O_RDWR | O_CLOEXEC);
  if (fd < 0) return send_error(id, errno, "refresh: open /dev/urandom: %s", strerror(errno));
  /* Added and credited, then the CRNG reseeded now: without the reseed the clone would go on
   * drawing from the template's CRNG state until the next scheduled reseed. */
  int bad = ioctl(fd, RNDADDENTROPY, &pool) < 0 ? 1 : ioctl(fd, RNDRESEEDCRNG) < 0 ? 2 : 0;
  int e = errno;
  close(fd);
  explicit_bzero(&pool, sizeof pool);
  if (bad != 0) return send_error(id, e, "refresh: %s: %s", bad == 1 ? "RNDADDENTROPY" : "RNDRESEEDCRNG", strerror(e));
  struct timespec ts = { .tv_sec = (time_t)(((uint64_t)m->secondsHigh << 32) | m->secondsLow), .tv_nsec = (long)m->nanoseconds };
  if (clock_settime(CLOCK_REALTIME, &ts) < 0) return send_error(id, errno, "refresh: clock_settime: %s", strerror(errno));
  if (sethostname(m->hostname, hn) < 0) return send_error(id, errno, "refresh: sethostname: %s", strerror(errno));
  return send_ok(id);
}

static int do_hello(uint32_t id, const struct stk_agent_h_hello *m)
{
  if (m->version != STK_AGENT_VERSION) return send_error(id, EPROTO, "hello: host speaks version %u, agent %u", m->version, STK_AGENT_VERSION);
  struct utsname u;
  uname(&u);
  uint8_t buf[512];
  struct stk_agent_g_hello_ok r = { .version = STK_AGENT_VERSION, .kernel = u.release };
  return channel_send(buf, stk_agent_encode_hello_ok(buf, sizeof buf, id, &r));
}

/* One frame. -1 only when the channel itself can no longer be trusted or written. */
static int dispatch(uint32_t tag, uint32_t id, const uint8_t *p, uint32_t n)
{
  static struct stk_agent_h_spawn spawn; /* 64 KiB of pointers: not on the stack */
  struct proc *pr;
  const char *bad;
  int stream = STK_AGENT_H_IS_STREAM(tag);
  if (stream != (id == 0)) {
    agent_log("frame tag 0x%x with id %u: streams carry id 0, requests do not", tag, id);
    return -1;
  }
#define DECODE(name, var) \
  if ((bad = stk_agent_decode_##name(p, n, &var)) != NULL) \
    return stream ? (agent_log(#name ": field %s malformed", bad), 0) : send_error(id, EBADMSG, #name ": field %s malformed", bad)
  switch (tag) {
    case STK_AGENT_H_HELLO: { struct stk_agent_h_hello m; DECODE(hello, m); return do_hello(id, &m); }
    case STK_AGENT_H_MOUNT: { struct stk_agent_h_mount m; DECODE(mount, m); return do_mount(id, &m); }
    case STK_AGENT_H_REFRESH: { struct stk_agent_h_refresh m; DECODE(refresh, m); return do_refresh(id, &m); }
    case STK_AGENT_H_SPAWN:
      DECODE(spawn, spawn);
      if (!in_guest) return send_error(id, EPERM, "spawn: not in the guest");
      return proc_spawn(id, &spawn);
    case STK_AGENT_H_SIGNAL: { struct stk_agent_h_signal m; DECODE(signal, m); return do_signal(id, &m); }
    case STK_AGENT_H_WAIT: { struct stk_agent_h_wait m; DECODE(wait, m); return do_wait(id, &m); }
    case STK_AGENT_H_CREATE: { struct stk_agent_h_create m; DECODE(create, m); return container_create(id, &m); }
    case STK_AGENT_H_CONTINUE: { struct stk_agent_h_continue m; DECODE(continue, m); return container_continue(id, &m); }
    case STK_AGENT_H_START: { struct stk_agent_h_start m; DECODE(start, m); return container_start(id, &m); }
    case STK_AGENT_H_EXEC: { struct stk_agent_h_exec m; DECODE(exec, m); return container_exec(id, &m); }
    case STK_AGENT_H_PIDS: { struct stk_agent_h_pids m; DECODE(pids, m); return container_pids(id, &m); }
    case STK_AGENT_H_STATS: { struct stk_agent_h_stats m; DECODE(stats, m); return container_stats(id, &m); }
    case STK_AGENT_H_UPDATE: { struct stk_agent_h_update m; DECODE(update, m); return container_update(id, &m); }
    case STK_AGENT_H_FREEZE: { struct stk_agent_h_freeze m; DECODE(freeze, m); return container_freeze(id, &m); }
    case STK_AGENT_H_NET_LINK: { struct stk_agent_h_net_link m; DECODE(net_link, m); return net_link(id, &m); }
    case STK_AGENT_H_NET_ADDR: { struct stk_agent_h_net_addr m; DECODE(net_addr, m); return net_addr(id, &m); }
    case STK_AGENT_H_NET_ROUTE: { struct stk_agent_h_net_route m; DECODE(net_route, m); return net_route(id, &m); }
    case STK_AGENT_H_RESIZE: { struct stk_agent_h_resize m; DECODE(resize, m); container_resize(&m); return 0; }
    case STK_AGENT_H_DNS_LISTEN: { struct stk_agent_h_dns_listen m; DECODE(dns_listen, m); return dns_listen(id, &m); }
    case STK_AGENT_H_DNS_ANSWER: { struct stk_agent_h_dns_answer m; DECODE(dns_answer, m); dns_answer(&m); return 0; }
    case STK_AGENT_H_SHUTDOWN: {
      struct stk_agent_h_shutdown m;
      DECODE(shutdown, m);
      shutting_down = 1;
      return send_ok(id);
    }
    case STK_AGENT_H_STDIN: {
      struct stk_agent_h_stdin m;
      DECODE(stdin, m);
      pr = proc_find(m.proc);
      if (pr != NULL && pr->announced) proc_stdin_data(pr, m.data, m.data_len);
      return 0;
    }
    case STK_AGENT_H_WINDOW: {
      struct stk_agent_h_window m;
      DECODE(window, m);
      pr = proc_find(m.proc);
      if (pr == NULL || (m.stream != STK_AGENT_STREAM_STDOUT && m.stream != STK_AGENT_STREAM_STDERR)) return 0;
      /* Saturate: a confused host must not wrap the counter into a huge credit. */
      uint64_t c = (uint64_t)pr->credit[m.stream] + m.bytes;
      pr->credit[m.stream] = c > 2ull * STK_AGENT_STREAM_WINDOW ? 2u * STK_AGENT_STREAM_WINDOW : (uint32_t)c;
      return 0;
    }
  }
#undef DECODE
  agent_log("unknown frame tag 0x%x", tag);
  return -1;
}

/* Reads what the port has and runs every whole frame in it. -1 on EOF or a broken stream. */
static int read_frames(void)
{
  ssize_t n = read(channel_fd(), inbuf + inlen, sizeof inbuf - inlen);
  if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
  if (n == 0) {
    /* virtio-serial reads 0 while the host side is not connected; stdio mode: the end. */
    return in_guest ? 1 : -1;
  }
  inlen += (uint32_t)n;
  uint32_t off = 0;
  while (inlen - off >= STK_AGENT_FRAME_HEADER) {
    uint32_t tag = stk_get_u32(inbuf + off), id = stk_get_u32(inbuf + off + 4), len = stk_get_u32(inbuf + off + 8);
    if (len > STK_AGENT_MAX_HOST_PAYLOAD) {
      agent_log("frame of %u bytes exceeds %u", len, STK_AGENT_MAX_HOST_PAYLOAD);
      return -1;
    }
    if (inlen - off - STK_AGENT_FRAME_HEADER < len) break;
    if (dispatch(tag, id, inbuf + off + STK_AGENT_FRAME_HEADER, len) < 0) return -1;
    off += STK_AGENT_FRAME_HEADER + len;
  }
  memmove(inbuf, inbuf + off, inlen - off);
  inlen -= off;
  return 0;
}

int agent_serve(int guest)
{
  in_guest = guest;
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  signal(SIGPIPE, SIG_IGN);
  int sfd = signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) {
    agent_log("signalfd: %s", strerror(errno));
    return -1;
  }
  /* Per process: stdin, stdout, stderr, and a container's sync or start socket (stream 3, 4). */
  struct pollfd fds[2 + 5 * STK_AGENT_MAX_PROCS + STK_AGENT_DNS_LISTENERS];
  struct { struct proc *p; int stream; } who[5 * STK_AGENT_MAX_PROCS];
  int disconnected = 0;
  while (!shutting_down) {
    int n = 0;
    fds[n++] = (struct pollfd){ .fd = disconnected ? -1 : channel_fd(), .events = POLLIN };
    fds[n++] = (struct pollfd){ .fd = sfd, .events = POLLIN };
    struct proc *t = proc_table();
    int k = 0;
    for (unsigned i = 0; i < STK_AGENT_MAX_PROCS; i++) {
      if (!t[i].used) continue;
      if (t[i].sync_fd >= 0) {
        who[k++] = (typeof(who[0])){ &t[i], 3 };
        fds[n++] = (struct pollfd){ .fd = t[i].sync_fd, .events = POLLIN };
      }
      if (t[i].start_fd >= 0) {
        who[k++] = (typeof(who[0])){ &t[i], 4 };
        fds[n++] = (struct pollfd){ .fd = t[i].start_fd, .events = POLLIN };
      }
      /* Output waits until the host knows the process it belongs to. */
      if (!t[i].announced) continue;
      for (int s = 1; s <= 2; s++)
        if (t[i].fd[s] >= 0 && t[i].credit[s] > 0) {
          who[k++] = (typeof(who[0])){ &t[i], s };
          fds[n++] = (struct pollfd){ .fd = t[i].fd[s], .events = POLLIN };
        }
      if (t[i].fd[0] >= 0 && t[i].inlen > 0) {
        who[k++] = (typeof(who[0])){ &t[i], 0 };
        fds[n++] = (struct pollfd){ .fd = t[i].fd[0], .events = POLLOUT };
      }
    }
    /* The DNS listeners last: fds[dns0 + i] is listener i. */
    int dnsfd[STK_AGENT_DNS_LISTENERS];
    unsigned ndns = dns_fds(dnsfd);
    int dns0 = n;
    for (unsigned i = 0; i < ndns; i++) fds[n++] = (struct pollfd){ .fd = dnsfd[i], .events = POLLIN };
    /* A host that is not connected makes the port poll as hung up and read 0 at once: look again
     * in a while instead of spinning on it. */
    if (poll(fds, (nfds_t)n, disconnected ? 20 : -1) < 0 && errno != EINTR) {
      agent_log("poll: %s", strerror(errno));
      return -1;
    }
    if (fds[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) > 0) {}
      proc_reap();
    }
    for (unsigned i = 0; i < ndns; i++)
      if ((fds[dns0 + (int)i].revents & POLLIN) && dns_receive(i) < 0) return -1;
    for (int j = 2; j < dns0; j++) {
      if (fds[j].revents == 0) continue;
      struct proc *p = who[j - 2].p;
      int s = who[j - 2].stream;
      if (!p->used) continue;
      int rc;
      switch (s) {
        case 0: rc = p->fd[0] >= 0 ? proc_stdin_flush(p) : 0; break;
        case 3: rc = p->sync_fd >= 0 ? container_sync(p) : 0; break;
        case 4: rc = p->start_fd >= 0 ? container_start_reply(p) : 0; break;
        default: rc = p->fd[s] >= 0 ? proc_output(p, s) : 0;
      }
      if (rc < 0) return -1;
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      int r = read_frames();
      if (r < 0) return -1;
      disconnected = r == 1;
    } else {
      disconnected = 0;
    }
  }
  return 0;
}
