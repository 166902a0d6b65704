/* stockade-init: joining and creating namespaces, id maps, and the per-namespace identity (names, lo). */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "init.h"
#include "syscalls.h"

static const char *ns_name(uint32_t t)
{
	switch (t) {
	case CLONE_NEWNS: return "mnt";
	case CLONE_NEWCGROUP: return "cgroup";
	case CLONE_NEWUTS: return "uts";
	case CLONE_NEWIPC: return "ipc";
	case CLONE_NEWUSER: return "user";
	case CLONE_NEWPID: return "pid";
	case CLONE_NEWNET: return "net";
	case CLONE_NEWTIME: return "time";
	default: return "?";
	}
}

void stk_join_namespaces(const struct stk_plan *plan)
{
	_cleanup_free_ int *fds = calloc(plan->n_join_ns ? plan->n_join_ns : 1, sizeof(int));
	if (fds == NULL)
		stk_fail(ENOMEM, "setns", "out of memory");

	/* Open them all first: once the mount namespace is joined, the paths (usually under /proc/PID/ns)
	 * would resolve in the container's file system instead of ours. */
	for (size_t i = 0; i < plan->n_join_ns; i++) {
		const struct stk_join_ns *j = &plan->join_ns[i];
		fds[i] = open(j->path, O_RDONLY | O_CLOEXEC);
		if (fds[i] < 0)
			stk_fail_errno("setns", "open %s namespace %s", ns_name(j->nstype), j->path);
	}
	for (size_t i = 0; i < plan->n_join_ns; i++) {
		const struct stk_join_ns *j = &plan->join_ns[i];
		if (sys_setns(fds[i], (int)j->nstype) < 0)
			stk_fail_errno("setns", "join %s namespace %s", ns_name(j->nstype), j->path);
		close(fds[i]);
		if (j->nstype == CLONE_NEWUSER)
			stk.in_userns = true;
	}
}

/* Creates C with the new namespaces. Returns 0 in C and C's pid in P, like fork(). */
pid_t stk_clone_child(uint32_t clone_flags)
{
	struct clone_args args;
	long r;

	memset(&args, 0, sizeof args);
	args.flags = clone_flags;
	args.exit_signal = SIGCHLD;
	r = sys_clone3(&args);
	/* clone(2) cannot express CLONE_NEWTIME (it shares its bit with CSIGNAL), so only fall back
	 * to it on kernels older than clone3 when no time namespace is asked for. */
	if (r < 0 && errno == ENOSYS && !(clone_flags & CLONE_NEWTIME))
		r = sys_clone_fork((unsigned long)clone_flags | SIGCHLD);
	if (r < 0)
		stk_fail_errno("clone", "create the container process (namespace flags 0x%x)", clone_flags);
	return (pid_t)r;
}

static void write_proc_file(pid_t pid, const char *name, const char *content, const char *step)
{
	char path[64];
	size_t len = strlen(content);

	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		stk_fail_errno(step, "open %s", path);
	/* The kernel takes an id map in a single write. */
	ssize_t n = write(fd, content, len);
	if (n < 0)
		stk_fail_errno(step, "write %s", path);
	if ((size_t)n != len)
		stk_fail(EIO, step, "short write to %s", path);
}

/*
 * A user namespace with these maps, as an fd, for id-mapped binds (TAG_MOUNT_IDMAP): a child is
 * cloned into a new one, where it waits on a pipe while its maps are written and the namespace
 * opened, then goes. In P, before C exists: P sees the host's /proc and pids, and may write any
 * map (CAP_SETUID and CAP_SETGID over the namespace's parent).
 */
static int userns_with_maps(const char *uid_map, const char *gid_map, const char *target)
{
	int hold[2];
	if (pipe2(hold, O_CLOEXEC) < 0)
		stk_fail_errno("idmap", "pipe for the id map of %s", target);
	pid_t pid = (pid_t)sys_clone_fork(CLONE_NEWUSER | SIGCHLD);
	if (pid < 0)
		stk_fail_errno("idmap", "create a user namespace for the id map of %s", target);
	if (pid == 0) {
		char c;
		close(hold[1]);
		while (read(hold[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(hold[0]);
	char path[64];
	write_proc_file(pid, "uid_map", uid_map, "idmap");
	write_proc_file(pid, "gid_map", gid_map, "idmap");
	snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int saved = errno;
	close(hold[1]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (fd < 0) {
		errno = saved;
		stk_fail_errno("idmap", "open the user namespace for the id map of %s", target);
	}
	return fd;
}

void stk_idmap_prepare(struct stk_plan *plan, unsigned int first)
{
	for (size_t i = 0; i < plan->n_mounts; i++) {
		struct stk_mount *m = &plan->mounts[i];
		if (m->uid_map == NULL)
			continue;
		int fd = userns_with_maps(m->uid_map, m->gid_map, m->target);
		if ((unsigned int)fd < first) {
			/* Above the preserved fds, as every fd of ours. */
			int high = fcntl(fd, F_DUPFD_CLOEXEC, (int)first);
			if (high < 0)
				stk_fail_errno("idmap", "move the user namespace fd of %s", m->target);
			close(fd);
			fd = high;
		}
		m->userns_fd = fd;
	}
}

void stk_idmap_release(struct stk_plan *plan)
{
	for (size_t i = 0; i < plan->n_mounts; i++) {
		if (plan->mounts[i].userns_fd >= 0)
			close(plan->mounts[i].userns_fd);
		plan->mounts[i].userns_fd = -1;
	}
}

void stk_write_id_maps(const struct stk_plan *plan, pid_t child)
{
	if (!(plan->clone_flags & CLONE_NEWUSER))
		return;
	write_proc_file(child, "uid_map", plan->uid_map, "uid_map");
	write_proc_file(child, "gid_map", plan->gid_map, "gid_map");
}

void stk_write_oom_score_adj(const struct stk_plan *plan, pid_t child)
{
	char value[16];
	if (!plan->has_oom_score_adj)
		return;
	snprintf(value, sizeof value, "%d", (int)plan->oom_score_adj);
	write_proc_file(child, "oom_score_adj", value, "oom_score_adj");
}

/* Until C takes ids that its user namespace maps, everything it creates would fail with EOVERFLOW:
 * it still carries the host's root ids, which the namespace does not map. */
void stk_become_ns_root(void)
{
	if (!stk.in_userns)
		return;
	if (setresgid(0, 0, 0) < 0)
		stk_fail_errno("setresgid", "become gid 0 in the user namespace");
	if (!stk.setgroups_denied && setgroups(0, NULL) < 0 && errno != EPERM)
		stk_fail_errno("setgroups", "drop the host's supplementary groups");
	if (setresuid(0, 0, 0) < 0)
		stk_fail_errno("setresuid", "become uid 0 in the user namespace");
}

void stk_set_names(const struct stk_plan *plan)
{
	if (plan->hostname && sethostname(plan->hostname, strlen(plan->hostname)) < 0)
		stk_fail_errno("sethostname", "hostname \"%s\"", plan->hostname);
	if (plan->domainname && setdomainname(plan->domainname, strlen(plan->domainname)) < 0)
		stk_fail_errno("setdomainname", "domainname \"%s\"", plan->domainname);
}

void stk_loopback_up(void)
{
	struct ifreq ifr;
	_cleanup_close_ int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		stk_fail_errno("loopback", "socket for interface lo");
	memset(&ifr, 0, sizeof ifr);
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0)
		stk_fail_errno("loopback", "read flags of interface lo");
	if (ifr.ifr_flags & IFF_UP)
		return;
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0)
		stk_fail_errno("loopback", "bring up interface lo");
}
