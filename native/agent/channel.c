/* stockade-agent: sending frames to the host over the virtio-serial port. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "agent.h"

static int port = -1;

void channel_init(int fd) { port = fd; }
int channel_fd(void) { return port; }

/* The port is non-blocking for the poll loop; a send waits for room, since the host always reads
 * (its own buffering is bounded by the credit it grants, not by stalling us). */
int channel_send(const uint8_t *frame, int32_t len)
{
  if (len < 0) {
    agent_log("a frame did not fit its buffer");
    return -1;
  }
  size_t off = 0;
  while (off < (size_t)len) {
    ssize_t n = write(port, frame + off, (size_t)len - off);
    if (n > 0) {
      off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      struct pollfd p = { .fd = port, .events = POLLOUT };
      poll(&p, 1, -1);
      continue;
    }
    agent_log("write to host: %s", n < 0 ? strerror(errno) : "short write");
    return -1;
  }
  return 0;
}

int send_ok(uint32_t id)
{
  uint8_t buf[64];
  struct stk_agent_g_ok m = { 0 };
  return channel_send(buf, stk_agent_encode_ok(buf, sizeof buf, id, &m));
}

int send_error(uint32_t id, int err, const char *fmt, ...)
{
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  uint8_t buf[sizeof msg + 64];
  struct stk_agent_g_error m = { .err = err, .message = msg };
  return channel_send(buf, stk_agent_encode_error(buf, sizeof buf, id, &m));
}
