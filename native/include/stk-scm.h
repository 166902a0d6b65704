/* Sending a file descriptor over a unix socket (SCM_RIGHTS): the one copy stockade-init and the
 * addon both use. Written by hand, unlike stockade-abi.h beside it. */
#ifndef STK_SCM_H
#define STK_SCM_H

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

/*
 * Sends `fd` with the first of `len` bytes of `data` over `sock` (len must be at least 1: a stream
 * socket drops ancillary data that comes with no payload), retrying on EINTR and never raising
 * SIGPIPE. Returns what sendmsg does: the bytes sent, which on a stream socket may be fewer than
 * `len`, or -1 with errno set.
 */
static inline ssize_t stk_send_fd(int sock, int fd, const void *data, size_t len)
{
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	memset(&control, 0, sizeof control);
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			      .msg_controllen = sizeof control.buf };
	struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
	ssize_t n;
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n;
}

#endif
