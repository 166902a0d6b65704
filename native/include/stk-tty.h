/* What a terminal in canonical mode holds before a relay makes it raw: the one copy the addon
 * (Node's relay, src/container/console-relay.ts) and the planner's front (native/light/relay.c)
 * both use. Written by hand, unlike stockade-abi.h beside it. */
#ifndef STK_TTY_H
#define STK_TTY_H

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <termios.h>
#include <unistd.h>

/*
 * The whole lines typed ahead on terminal fd, up to size bytes into buf, and whether an end of
 * file (VEOF) followed them. Made raw with an end of file pending, the line discipline hands it on
 * as a NUL byte (n_tty keeps it in its buffer as one): `script -c 'stockade do ...' </dev/null`
 * gave the command a "\0" for input and its echo "^@". A terminal already raw, or nothing
 * pending: 0 bytes and no end of file. Returns the bytes read.
 */
static inline size_t stk_take_cooked_input(int fd, char *buf, size_t size, bool *eof)
{
	size_t len = 0;
	struct termios t;
	*eof = false;
	if (tcgetattr(fd, &t) != 0 || !(t.c_lflag & ICANON))
		return 0;
	while (len < size) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN))
			break;
		ssize_t n = read(fd, buf + len, size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*eof = n == 0;
			break;
		}
		len += (size_t)n;
	}
	return len;
}

#endif
