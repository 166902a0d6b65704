/* stockade-init: entry point and the host side (P): read the plan, open the sockets, join and
 * create namespaces, map ids, report C's pid, release C, then leave or wait for C (monitor). */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "init.h"
#include "syscalls.h"

struct stk_ctx stk = {
	.sync_fd = -1,
	.err_fd = -1,
	.listen_fd = -1,
	.console_fd = -1,
	.child = 0,
	.exit_code = 1,
	.root_fd = -1,
};

static int parse_fd(const char *s)
{
	long v = 0;
	if (*s == '\0' || strlen(s) > 9)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	return (int)v;
}

static void clear_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
}

static void reset_signals(void)
{
	sigset_t none;
	struct sigaction dfl;

	sigemptyset(&none);
	if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
		stk_fail_errno("signals", "clear the signal mask");
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &dfl, NULL); /* EINVAL for the numbers libc keeps for itself */
}

/* Moves an internal fd above the preserved range, so it can never pose as a preserved fd. */
static int hoist_fd(int fd, unsigned int first, const char *what)
{
	if ((unsigned int)fd >= first)
		return fd;
	int nfd = fcntl(fd, F_DUPFD_CLOEXEC, (int)first);
	if (nfd < 0)
		stk_fail_errno("fds", "move the %s fd above the preserved fds", what);
	close(fd);
	return nfd;
}

/* The sentry socket came from the runtime like the sync fd: it must be open, neither of the other
 * two, above the preserved fds and closed at execve (it is used just before, see sentry.c). */
static int take_sentry_socket(int fd, int plan_fd, int sync_fd, unsigned int first)
{
	if (fd == plan_fd || fd == sync_fd)
		stk_fail(EINVAL, "sentry", "sentry socket fd %d is also the plan or sync fd", fd);
	if (fcntl(fd, F_GETFD) < 0)
		stk_fail_errno("sentry", "sentry socket fd %d", fd);
	fd = hoist_fd(fd, first, "sentry socket");
	if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		stk_fail_errno("fds", "mark the sentry socket close-on-exec");
	return fd;
}

/*
 * Fills addr for path. sun_path holds 107 bytes, and a client's --root plus a 64-character id can
 * pass that (Docker's /var/run/docker/runtime-NAME/moby does): a longer path is reached through
 * an fd of its directory, returned for the caller to close once bound or connected (else -1).
 */
static int unix_address(struct sockaddr_un *addr, const char *path, const char *step)
{
	memset(addr, 0, sizeof *addr);
	addr->sun_family = AF_UNIX;
	if (strlen(path) < sizeof addr->sun_path) {
		strcpy(addr->sun_path, path);
		return -1;
	}
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	if (slash == NULL || slash == path || (size_t)(slash - path) >= sizeof dir)
		stk_fail(ENAMETOOLONG, step, "socket path %s is longer than %zu bytes", path, sizeof addr->sun_path - 1);
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	int dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		stk_fail_errno(step, "open the directory of %s", path);
	if ((size_t)snprintf(addr->sun_path, sizeof addr->sun_path, "/proc/self/fd/%d/%s", dir_fd, slash + 1) >= sizeof addr->sun_path)
		stk_fail(ENAMETOOLONG, step, "socket name in %s is too long", path);
	return dir_fd;
}

static int open_start_socket(const char *path, unsigned int first)
{
	struct sockaddr_un addr;
	_cleanup_close_ int dir_fd = unix_address(&addr, path, "start-socket");
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		stk_fail_errno("start-socket", "socket for %s", path);
	fd = hoist_fd(fd, first, "start socket");
	/* bind fails with EADDRINUSE on a leftover file: a stale socket is the runtime's to clean. */
	if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
		stk_fail_errno("start-socket", "bind %s", path);
	if (listen(fd, 1) < 0)
		stk_fail_errno("start-socket", "listen on %s", path);
	return fd;
}

static int connect_console_socket(const char *path, unsigned int first)
{
	struct sockaddr_un addr;
	_cleanup_close_ int dir_fd = unix_address(&addr, path, "console-socket");
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		stk_fail_errno("console-socket", "socket for %s", path);
	fd = hoist_fd(fd, first, "console socket");
	while (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0)
		if (errno != EINTR)
			stk_fail_errno("console-socket", "connect to %s", path);
	return fd;
}

/* Closes every fd from 3 on but keep_fd (-1: none). */
static void close_fds_from_3(int keep_fd)
{
	if (keep_fd < 3) {
		if (sys_close_range(3, ~0U, 0) == 0)
			return;
	} else if ((keep_fd == 3 || sys_close_range(3, (unsigned)keep_fd - 1, 0) == 0) &&
		   sys_close_range((unsigned)keep_fd + 1, ~0U, 0) == 0) {
		return;
	}
	for (int fd = 3; fd < 65536; fd++)
		if (fd != keep_fd)
			close(fd);
}

/* Attached mode: stand in for C towards our caller, exiting as it exits. */
__attribute__((noreturn)) static void monitor(pid_t child, int keep_fd)
{
	int status;
	static const int from_terminal[] = { SIGINT, SIGQUIT, SIGHUP, SIGTSTP, SIGTTIN, SIGTTOU };

	/* We share the caller's process group, so a ^C on its terminal reaches us too; the runtime
	 * passes such signals on to C itself, and dying of one would lose C's status. */
	for (size_t i = 0; i < sizeof from_terminal / sizeof from_terminal[0]; i++)
		signal(from_terminal[i], SIG_IGN);
	close_fds_from_3(keep_fd);
	while (waitpid(child, &status, 0) < 0)
		if (errno != EINTR)
			_exit(1);
	if (WIFEXITED(status))
		_exit(WEXITSTATUS(status));
	_exit(128 + WTERMSIG(status));
}

/* Writing "0" to cgroup.procs moves the writer itself, on v1 and v2 alike. */
static void join_cgroups(const struct stk_plan *plan)
{
	char path[PATH_MAX];

	for (size_t i = 0; i < plan->n_cgroups; i++) {
		if ((size_t)snprintf(path, sizeof path, "%s/cgroup.procs", plan->cgroups[i]) >= sizeof path)
			stk_fail(ENAMETOOLONG, "cgroup", "join %s", plan->cgroups[i]);
		int fd = open(path, O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			stk_fail_errno("cgroup", "join %s", plan->cgroups[i]);
		if (write(fd, "0", 1) != 1) {
			int saved = errno;
			close(fd);
			errno = saved;
			stk_fail_errno("cgroup", "join %s", plan->cgroups[i]);
		}
		close(fd);
	}
}

int main(int argc, char **argv)
{
	struct stk_plan *plan = &stk.plan;
	int plan_fd, sync_fd, go[2];

	if (argc != 3 || (plan_fd = parse_fd(argv[1])) < 0 || (sync_fd = parse_fd(argv[2])) < 0) {
		dprintf(2, "usage: stockade-init PLAN_FD SYNC_FD\n");
		return 1;
	}
	if (fcntl(sync_fd, F_GETFD) < 0) {
		dprintf(2, "stockade-init: sync fd %d: %s\n", sync_fd, strerror(errno));
		return 1;
	}
	stk.sync_fd = stk.err_fd = sync_fd;
	/* First, before any namespace is joined: from here on only a sealed copy of us runs. */
	stk_run_from_sealed_copy(argv);
	/* Both ends are ours to block on, whatever flags the spawning side left on them. */
	clear_nonblock(plan_fd);
	clear_nonblock(sync_fd);

	/* Not dumpable: a container process without CAP_SYS_PTRACE over the host's user namespace
	 * cannot open /proc/<us>/exe or our memory; one with it reaches only the sealed copy (see
	 * selfclone.c). execve of the workload makes it dumpable again. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		stk_fail_errno("prctl", "clear dumpable");
	reset_signals();

	stk_plan_read(plan_fd, plan);
	close(plan_fd);
	stk_tie_to_caller(plan);
	unsigned int first = 3 + plan->preserve_fds;
	if ((unsigned int)sync_fd < first || (unsigned int)plan_fd < first)
		stk_fail(EINVAL, "plan", "plan fd %d or sync fd %d lies among the %u preserved fds", plan_fd,
			 sync_fd, plan->preserve_fds);
	if (fcntl(sync_fd, F_SETFD, FD_CLOEXEC) < 0)
		stk_fail_errno("fds", "mark the sync fd close-on-exec");
	if (plan->has_sentry)
		plan->sentry_fd = (uint32_t)take_sentry_socket((int)plan->sentry_fd, plan_fd, sync_fd, first);
	stk.cap_last = stk_read_cap_last();

	if (plan->start_socket)
		stk.listen_fd = open_start_socket(plan->start_socket, first);
	if (plan->console_socket)
		stk.console_fd = connect_console_socket(plan->console_socket, first);

	/* Before any setns: a joined mount namespace would resolve the host's cgroup paths
	 * differently, and the container must be created inside its cgroups so that its cgroup
	 * namespace, and everything it allocates during setup, belongs to them. */
	join_cgroups(plan);

	stk.in_userns = (plan->clone_flags & CLONE_NEWUSER) != 0;
	stk_join_namespaces(plan);
	/* In the namespaces joined (a joined user namespace owns these too), before C is cloned with them. */
	stk_idmap_prepare(plan, first);

	if (pipe2(go, O_CLOEXEC) < 0)
		stk_fail_errno("clone", "pipe for the go signal");
	go[0] = hoist_fd(go[0], first, "go pipe");
	go[1] = hoist_fd(go[1], first, "go pipe");

	pid_t child = stk_clone_child(plan->clone_flags);
	if (child == 0) {
		close(go[1]);
		stk_child_main(go[0]);
	}
	stk.child = child;
	close(go[0]);
	stk_idmap_release(plan);
	/* A C that died early must show up as EPIPE on the go pipe, not kill us unreported. */
	signal(SIGPIPE, SIG_IGN);

	stk_write_id_maps(plan, child);
	stk_write_oom_score_adj(plan, child);

	uint32_t pid_le = htole32((uint32_t)child);
	if (stk_send_frame(sync_fd, STK_MSG_PID, &pid_le, sizeof pid_le) < 0)
		stk_fail_errno("sync", "report the container's pid %d", (int)child);
	if (stk_write_all(go[1], "g", 1) < 0)
		stk_fail_errno("go", "release the container process");
	/* Tied (TAG_TIED): the write end stays open as long as P lives, C's sign that it does. */
	if (!plan->tied_to) {
		close(go[1]);
		go[1] = -1;
	}

	if (plan->monitor)
		monitor(child, go[1]);
	return 0;
}
