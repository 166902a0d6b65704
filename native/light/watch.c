/*
 * stockade-light sentry-watch: a sentry container dies with its sentry.
 *
 * A workload under the sentry's filter cannot live without its supervisor: once the listener is
 * closed, the kernel answers every call the filter sends to it with ENOSYS, and a workload left
 * like that is neither confined as asked nor able to work. Nothing in the kernel kills it then,
 * and a SIGKILLed sentry can do nothing itself, so create (src/container/supervisor-watch.ts)
 * leaves this small process beside every sentry container. It holds, as inherited fds:
 *
 *   3  a pidfd of the sentry serving the container (its own, or its pod's)
 *   4  a pidfd of the container's init
 *   5  the container's state directory
 *   6… the container's cgroup directories (argv says how many)
 *
 * and waits (poll, nothing else) until one of three things happens:
 *   - the sentry exits: the container is killed (SIGKILL to its init, which takes its pid
 *     namespace with it; without a pid namespace of its own, every process of its cgroups), a
 *     frozen cgroup is thawed so the kill lands, and the watch says so on stderr (sentry.log);
 *   - the state directory is removed (delete): there is nothing left to guard;
 *   - the init exits while the container has a pid namespace of its own: nothing is left either.
 * A sentry that exits because its last process did costs one SIGKILL to a process already gone.
 * Every fd names what it named at create, so a reused pid or a new container of the same id is
 * never touched.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "watch.h"

enum { SENTRY_FD = 3, INIT_FD = 4, STATE_FD = 5, FIRST_CGROUP_FD = 6, MAX_CGROUP_FDS = 32 };

/* Writes `text` to the file `name` of the directory `dirfd`; false when the file is not there or refuses it. */
static bool write_file_at(int dirfd, const char *name, const char *text)
{
	int fd = openat(dirfd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text);
}

/* SIGKILL to every pid listed in the cgroup's cgroup.procs; how many were listed (0: empty or unreadable). */
static int kill_listed(int dirfd)
{
	int fd = openat(dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char buf[65536];
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	int listed = 0;
	/* Straight from cgroup.procs to kill(2), as the TypeScript side's signalCgroup and runc do: a
	 * pid is reused only once its process is reaped. */
	for (char *p = buf, *end; *p != '\0'; p = end) {
		long pid = strtol(p, &end, 10);
		if (end == p)
			break;
		if (pid > 0) {
			kill((pid_t)pid, SIGKILL);
			listed++;
		}
	}
	return listed;
}

static void kill_container(bool own_pid_namespace, int ncgroups)
{
	if (syscall(SYS_pidfd_send_signal, INIT_FD, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
		dprintf(2, "stockade: cannot kill the container's init: %s\n", strerror(errno));
	if (!own_pid_namespace) {
		/* cgroup v2 kills a whole tree at once; a v1 hierarchy is emptied by hand, a few rounds
		 * for processes forked meanwhile. Every process is in each of the container's hierarchies. */
		bool killed = false;
		for (int i = 0; i < ncgroups && !killed; i++)
			killed = write_file_at(FIRST_CGROUP_FD + i, "cgroup.kill", "1");
		for (int round = 0; !killed && ncgroups > 0 && round < 50 && kill_listed(FIRST_CGROUP_FD) > 0; round++)
			usleep(10000);
	}
	/* A frozen task holds its SIGKILL until thawed (v1's freezer; v2's cgroup.freeze). */
	for (int i = 0; i < ncgroups; i++) {
		write_file_at(FIRST_CGROUP_FD + i, "freezer.state", "THAWED");
		write_file_at(FIRST_CGROUP_FD + i, "cgroup.freeze", "0");
	}
}

/* How long an init with a pid namespace of its own may take to exit after its sentry did. */
#define INIT_GRACE_MS 250

int sentry_watch(char **argv)
{
	/* argv: stockade-light sentry-watch ID pidns|shared NCGROUPS */
	const char *id = argv[2];
	const char *ns = id == NULL ? NULL : argv[3];
	const char *count = ns == NULL ? NULL : argv[4];
	char *end = NULL;
	long ncgroups = count == NULL ? -1 : strtol(count, &end, 10);
	if (count == NULL || *end != '\0' || ncgroups < 0 || ncgroups > MAX_CGROUP_FDS ||
	    (strcmp(ns, "pidns") != 0 && strcmp(ns, "shared") != 0)) {
		dprintf(2, "usage: stockade-light sentry-watch ID pidns|shared NCGROUPS (started by stockade create, with its fds)\n");
		return 2;
	}
	bool own_pid_namespace = strcmp(ns, "pidns") == 0;
	for (int fd = SENTRY_FD; fd < FIRST_CGROUP_FD + ncgroups; fd++) {
		if (fcntl(fd, F_GETFD) < 0) {
			dprintf(2, "stockade: sentry-watch %s: fd %d is not open\n", id, fd);
			return 2;
		}
	}
	/* Not something a person runs by hand: the first two must be the pidfds create passed. */
	for (int fd = SENTRY_FD; fd <= INIT_FD; fd++) {
		char link[64], target[64];
		snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, target, sizeof target - 1);
		if (n < 0 || (target[n] = '\0', strcmp(target, "anon_inode:[pidfd]") != 0)) {
			dprintf(2, "stockade: sentry-watch %s: fd %d is not a pidfd\n", id, fd);
			return 2;
		}
	}

	/* The state directory's removal: IN_DELETE_SELF, then IN_IGNORED. Without inotify the watch
	 * still ends with the sentry, which leaves once its last process is gone. */
	int ino = inotify_init1(IN_CLOEXEC);
	char self[64];
	snprintf(self, sizeof self, "/proc/self/fd/%d", STATE_FD);
	if (ino >= 0 && inotify_add_watch(ino, self, IN_DELETE_SELF | IN_MOVE_SELF) < 0) {
		close(ino);
		ino = -1;
	}
	struct pollfd p[3] = {
		{ .fd = SENTRY_FD, .events = POLLIN },
		{ .fd = ino, .events = POLLIN },
		{ .fd = own_pid_namespace ? INIT_FD : -1, .events = POLLIN },
	};
	for (;;) {
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			/* Fail closed: a watch that cannot wait any more takes the container down with it. */
			dprintf(2, "stockade: container %s: the sentry's watch failed (%s): the container is killed\n", id, strerror(errno));
			kill_container(own_pid_namespace, (int)ncgroups);
			return 1;
		}
		if (p[0].revents != 0) {
			/* Also when the init has gone first: the kill then finds nobody, and the message
			 * is only worth writing while the container was alive. An init in front of the
			 * command (stockade do) is no process of the sentry's: it outlives its command,
			 * whose exit ended the sentry, by the moment it takes to reap it and exit with its
			 * status, which a kill now would replace with 137. It gets that moment; meanwhile
			 * the kernel answers whatever the filter sends the gone sentry with ENOSYS. */
			struct pollfd init = { .fd = INIT_FD, .events = POLLIN };
			int r;
			do
				r = poll(&init, 1, own_pid_namespace ? INIT_GRACE_MS : 0);
			while (r < 0 && errno == EINTR);
			bool alive = r == 0; /* a pidfd reads as ready once its process has exited */
			if (!alive && own_pid_namespace)
				return 0;
			kill_container(own_pid_namespace, (int)ncgroups);
			if (alive)
				dprintf(2, "stockade: container %s: its sentry exited while the container ran: the container is killed\n", id);
			return 0;
		}
		if (p[1].revents != 0 || p[2].revents != 0)
			return 0;
	}
}
