/*
 * The caller's terminal relayed to a container's pty master by the planner's front (planner.c),
 * as src/container/console-relay.ts relays it in a cold call: the planner holds no terminal, so
 * the master comes to the front (SCM_RIGHTS with the TTY frame) and is relayed here, in C.
 *
 * Alike, step for step: the lines typed ahead while the terminal was still cooked go to the
 * command as typed (an end of file as the pty's own ^D); the caller's stdin goes raw as libuv's
 * raw mode makes it; ONLCR is cleared on its stdout (the container's pty has made "\r\n"
 * already); the master gets stdout's window size, and again on each SIGWINCH; stdin goes to the
 * master and the master to stdout until the master's end (EIO: every slave closed). The caller's
 * terminal is given back as it was when the relay stops, and on every way this process ends
 * that it can see: a signal's default action (relay_restore is async-signal-safe) or exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "relay.h"
#include "stk-tty.h"

/* ^D: VEOF of a fresh pty (the container's, as the kernel makes it). */
#define VEOF_DEFAULT 0x04

static struct {
	int master;      /* -1: no relay */
	bool raw;        /* fd 0 made raw here: `saved` is how it was */
	struct termios saved;
	bool onlcr;      /* ONLCR cleared on fd 1 here */
	bool stdout_tty;
	bool in_open;    /* fd 0 still read */
	bool out_open;   /* the master still read */
	char pending[16384 + 1]; /* read from fd 0 (or typed ahead), not yet written to the master */
	size_t pending_len, pending_off;
} g = { .master = -1 };

static int set_attr(int fd, int when, const struct termios *t)
{
	int r;
	do
		r = tcsetattr(fd, when, t);
	while (r < 0 && errno == EINTR);
	return r;
}

void relay_resize(void)
{
	struct winsize ws;
	if (g.master < 0 || !g.stdout_tty || ioctl(1, TIOCGWINSZ, &ws) < 0)
		return;
	/* Rows and columns, as Node's setWinsize sets them from process.stdout. */
	struct winsize size = { .ws_row = ws.ws_row, .ws_col = ws.ws_col };
	(void)ioctl(g.master, TIOCSWINSZ, &size);
}

void relay_start(int master)
{
	if (g.master >= 0)
		relay_stop();
	g.master = master;
	g.pending_len = g.pending_off = 0;
	bool eof = false;
	if (isatty(0) && tcgetattr(0, &g.saved) == 0) {
		g.pending_len = stk_take_cooked_input(0, g.pending, sizeof g.pending - 1, &eof);
		/* libuv's UV_TTY_MODE_RAW, from the terminal's mode before it */
		struct termios t = g.saved;
		t.c_iflag &= ~(tcflag_t)(BRKINT | ICRNL | INPCK | ISTRIP | IXON);
		t.c_oflag |= ONLCR;
		t.c_cflag |= CS8;
		t.c_lflag &= ~(tcflag_t)(ECHO | ICANON | IEXTEN | ISIG);
		t.c_cc[VMIN] = 1;
		t.c_cc[VTIME] = 0;
		g.raw = set_attr(0, TCSADRAIN, &t) == 0;
	}
	if (eof)
		g.pending[g.pending_len++] = VEOF_DEFAULT;
	g.stdout_tty = isatty(1);
	struct termios o;
	if (g.stdout_tty && tcgetattr(1, &o) == 0) {
		bool was = (o.c_oflag & ONLCR) != 0;
		o.c_oflag &= ~(tcflag_t)ONLCR;
		g.onlcr = was && set_attr(1, TCSANOW, &o) == 0;
	}
	relay_resize();
	/* Never blocked on a full pty: what stdin gives waits here until the master takes it. */
	int fl = fcntl(master, F_GETFL);
	if (fl >= 0)
		(void)fcntl(master, F_SETFL, fl | O_NONBLOCK);
	g.in_open = true;
	g.out_open = true;
}

bool relay_active(void) { return g.master >= 0; }

bool relay_output_open(void) { return g.master >= 0 && g.out_open; }

void relay_pollfds(struct pollfd fds[2])
{
	bool waiting = g.pending_off < g.pending_len;
	/* Once the command's output has ended, what is typed is left for the caller's shell. */
	fds[0] = (struct pollfd){ .fd = g.master >= 0 && g.in_open && g.out_open && !waiting ? 0 : -1, .events = POLLIN };
	short ev = (short)((g.out_open ? POLLIN : 0) | (waiting && g.out_open ? POLLOUT : 0));
	fds[1] = (struct pollfd){ .fd = g.master >= 0 && ev != 0 ? g.master : -1, .events = ev };
}

/* All of p to the caller's stdout, waiting while it is full (a non-blocking file description). */
static void to_stdout(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(1, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd out = { .fd = 1, .events = POLLOUT };
			(void)poll(&out, 1, -1);
			continue;
		}
		if (w < 0)
			return; /* stdout gone: the rest is nobody's */
		p += w;
		n -= (size_t)w;
	}
}

bool relay_serve(const struct pollfd fds[2])
{
	if (g.master < 0)
		return false;
	if (fds[0].fd >= 0 && fds[0].revents != 0) {
		ssize_t n = read(0, g.pending, sizeof g.pending - 1);
		if (n > 0) {
			g.pending_off = 0;
			g.pending_len = (size_t)n;
		} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			g.in_open = false; /* as Node: an end of stdin is not passed on */
		}
	}
	if (fds[1].fd >= 0 && (fds[1].revents & POLLOUT) && g.pending_off < g.pending_len) {
		ssize_t w = write(g.master, g.pending + g.pending_off, g.pending_len - g.pending_off);
		if (w > 0)
			g.pending_off += (size_t)w;
		else if (w < 0 && errno != EINTR && errno != EAGAIN)
			g.pending_off = g.pending_len; /* the container has gone; its output side ends the relay */
	}
	if (fds[1].fd >= 0 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
		char buf[65536];
		ssize_t n = read(g.master, buf, sizeof buf);
		if (n > 0) {
			to_stdout(buf, (size_t)n);
		} else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
			/* EIO: every slave closed and all of it read (n_tty hands over what it holds first). */
			g.out_open = false;
			return true;
		}
	}
	return false;
}

void relay_restore(void)
{
	if (g.raw) {
		(void)set_attr(0, TCSADRAIN, &g.saved);
		g.raw = false;
	}
	if (g.onlcr) {
		struct termios o;
		if (tcgetattr(1, &o) == 0) {
			o.c_oflag |= ONLCR;
			(void)set_attr(1, TCSANOW, &o);
		}
		g.onlcr = false;
	}
}

void relay_stop(void)
{
	if (g.master < 0)
		return;
	relay_restore();
	close(g.master);
	g.master = -1;
	g.in_open = g.out_open = false;
}
