/* stockade-init: the container's pty (process.terminal): master to the console socket, slave as stdio. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <termios.h>

#include "init.h"
#include "stk-scm.h"

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

void stk_setup_terminal(const struct stk_plan *plan)
{
	char name[64];
	int unlock = 0, ptn = -1;

	if (!plan->terminal)
		return;
	_cleanup_close_ int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		stk_fail_errno("terminal", "open /dev/ptmx");
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		stk_fail_errno("terminal", "unlock the pty");
	if (ioctl(master, TIOCGPTN, &ptn) < 0)
		stk_fail_errno("terminal", "get the pty number");
	snprintf(name, sizeof name, "/dev/pts/%d", ptn);
	if (plan->has_console_size) {
		struct winsize ws = { .ws_row = (unsigned short)plan->console_rows, .ws_col = (unsigned short)plan->console_cols };
		if (ioctl(master, TIOCSWINSZ, &ws) < 0)
			stk_fail_errno("terminal", "set the size of %s to %ux%u", name, plan->console_rows, plan->console_cols);
	}

	/* TIOCGPTPEER opens the slave through the master, with no path lookup to be fooled. */
	_cleanup_close_ int slave = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0 && (errno == EINVAL || errno == ENOTTY))
		slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		stk_fail_errno("terminal", "open %s", name);
	if (plan->has_user && fchown(slave, plan->uid, (gid_t)-1) < 0 && errno != EPERM && errno != EINVAL)
		stk_fail_errno("terminal", "chown %s to uid %u", name, plan->uid);

	if (plan->has_rootfs) {
		int fd = open("/dev/console", O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST)
			stk_fail_errno("terminal", "create /dev/console");
		if (fd >= 0)
			close(fd);
		if (mount(name, "/dev/console", NULL, MS_BIND, NULL) < 0)
			stk_fail_errno("terminal", "bind %s on /dev/console", name);
	}

	/* The payload names the pty as runc does; clients such as conmon and containerd keep only the fd. */
	if (stk_send_fd(stk.console_fd, master, name, strlen(name)) < 0)
		stk_fail_errno("terminal", "send the pty master to the console socket %s", plan->console_socket);
	close(stk.console_fd);
	stk.console_fd = -1;

	for (int i = 0; i <= 2; i++)
		if (slave != i && dup2(slave, i) < 0)
			stk_fail_errno("terminal", "dup %s onto fd %d", name, i);
	if (slave <= 2)
		slave = -1; /* it is stdio now */
	if (ioctl(0, TIOCSCTTY, 0) < 0)
		stk_fail_errno("terminal", "make %s the controlling terminal", name);
}
