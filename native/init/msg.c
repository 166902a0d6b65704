/* stockade-init: frames on the sync fd and the start socket, and failure reporting. */
#include <endian.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "init.h"

int stk_write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	while (len > 0) {
		/* MSG_NOSIGNAL: a runtime that went away must read as EPIPE, not kill us silently. */
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		/* ENOSYS: the sentry's filter notifies sendto, and its listener is gone (a failed
		 * hand-off, see sentry.c); write(2) is not filtered. */
		if (n < 0 && (errno == ENOTSOCK || errno == ENOSYS))
			n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int stk_read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len > 0) {
		ssize_t n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return 1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int stk_send_frame(int fd, uint32_t type, const void *payload, uint32_t len)
{
	uint8_t buf[8 + 4096];
	uint32_t head[2] = { htole32(type), htole32(len) };

	/* One write per frame, so a frame is never split between two writers of the shared socket. */
	if (len <= sizeof buf - 8) {
		memcpy(buf, head, 8);
		if (len)
			memcpy(buf + 8, payload, len);
		return stk_write_all(fd, buf, 8 + (size_t)len);
	}
	if (stk_write_all(fd, head, 8) < 0)
		return -1;
	return stk_write_all(fd, payload, len);
}

static size_t put_str(uint8_t *out, size_t cap, const char *s)
{
	size_t n = strlen(s);
	if (n + 5 > cap)
		n = cap - 5;
	uint32_t le = htole32((uint32_t)n);
	memcpy(out, &le, 4);
	memcpy(out + 4, s, n);
	out[4 + n] = 0;
	return n + 5;
}

int stk_send_error(int fd, int err, const char *step, const char *message)
{
	uint8_t buf[4096];
	size_t off = 0;
	uint32_t e = htole32((uint32_t)err);

	memcpy(buf, &e, 4);
	off = 4;
	off += put_str(buf + off, 256, step);
	off += put_str(buf + off, sizeof buf - off, message);
	return stk_send_frame(fd, STK_MSG_ERROR, buf, (uint32_t)off);
}

int stk_recv_frame(int fd, uint32_t *type, uint32_t *len)
{
	uint32_t head[2];
	uint8_t sink[512];
	int r = stk_read_all(fd, head, sizeof head);
	if (r != 0)
		return r;
	*type = le32toh(head[0]);
	*len = le32toh(head[1]);
	if (*len > 65536) {
		errno = EPROTO;
		return -1;
	}
	for (uint32_t left = *len; left > 0;) {
		uint32_t chunk = left < sizeof sink ? left : (uint32_t)sizeof sink;
		r = stk_read_all(fd, sink, chunk);
		if (r != 0)
			return r;
		left -= chunk;
	}
	return 0;
}

int stk_recv_frame_payload(int fd, uint32_t *type, uint8_t **payload, uint32_t *len, uint32_t max)
{
	uint32_t head[2];
	*payload = NULL;
	int r = stk_read_all(fd, head, sizeof head);
	if (r != 0)
		return r;
	*type = le32toh(head[0]);
	*len = le32toh(head[1]);
	if (*len > max) {
		errno = EPROTO;
		return -1;
	}
	if (*len == 0)
		return 0;
	uint8_t *buf = malloc(*len);
	if (buf == NULL)
		return -1;
	r = stk_read_all(fd, buf, *len);
	if (r != 0) {
		int saved = errno;
		free(buf);
		errno = saved;
		return r;
	}
	*payload = buf;
	return 0;
}

void stk_fail(int err, const char *step, const char *fmt, ...)
{
	char message[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(message, sizeof message, fmt, ap);
	va_end(ap);

	if (stk.err_fd < 0 || stk_send_error(stk.err_fd, err, step, message) < 0)
		dprintf(2, "stockade-init: %s: %s: %s\n", step, message, strerror(err));

	if (stk.in_child)
		_exit(stk.exit_code);
	if (stk.child > 0) {
		kill(stk.child, SIGKILL);
		while (waitpid(stk.child, NULL, 0) < 0 && errno == EINTR)
			;
	}
	exit(1);
}
