/* stockade-init: loads the sentry's seccomp filter in C and hands its listener to the supervisor. */
/*
 * Why a helper process: the sentry filter makes sendmsg, sendto and connect NOTIFY. Once it is
 * loaded, C could send the listener only with a call that waits for an answer from the very
 * supervisor that is to receive the listener, and would wait forever. So C first clones a helper
 * H with CLONE_FILES: H shares C's fd table (the listener appears in it when C loads the filter)
 * but not C's filters, which seccomp attaches per task and which H, cloned before either of them,
 * never gets (so the config's own filter need not allow sendmsg either). H waits on a pipe for the
 * listener's number, sends the listener over the sentry socket with SCM_RIGHTS and one byte "L",
 * and exits with 0 or the errno of what failed; C reaps it (wait4 is not filtered), closes the
 * listener and the socket, and goes on to execve, which waits for the supervisor's answer.
 *
 * Between loading the filter and reaping H, C makes no call the filter may send to the
 * supervisor: write, not send, on the pipe. On a failure C closes the listener before reporting,
 * so the kernel answers the filter's NOTIFY calls with ENOSYS instead of waiting for nobody, and
 * the report falls back from send to write (msg.c).
 *
 * Sentry mounts (TAG_SENTRY_MOUNT, /proc and /sys): the workload must not reach procfs or sysfs
 * through the kernel's own path walk, which the calls the sentry CONTINUEs (execve, chdir, O_PATH
 * and FIFO opens) still do: there a racing thread can swap the path the sentry checked for a magic
 * link. So C clones each such mount tree, masks included, into a detached tree the sentry resolves
 * those paths in, unmounts it from the workload's namespace, and sends the clone at once, as one
 * message "M<path>" with the fd: at create, so that the sentry holds the container's /proc before
 * its start (a process exec'd into a created container joins the sentry and finds it there). The
 * listener follows at start.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <limits.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "init.h"
#include "stk-scm.h"
#include "syscalls.h"

/* Sends `fd` with the bytes `tag` and `path` (may be NULL) over `sock`: 0 or an errno. */
static int send_fd(int sock, char tag, const char *path, int fd)
{
	char data[1 + PATH_MAX];
	size_t len = 1;
	data[0] = tag;
	if (path != NULL) {
		size_t plen = strlen(path);
		if (plen >= PATH_MAX)
			return ENAMETOOLONG;
		memcpy(data + 1, path, plen);
		len += plen;
	}
	ssize_t n = stk_send_fd(sock, fd, data, len);
	if (n < 0)
		return errno;
	return (size_t)n == len ? 0 : EIO;
}

/* H: runs on a copy of C's memory with C's fd table; only raw calls and _exit from here. */
__attribute__((noreturn)) static void helper_main(pid_t parent, int request_fd, int sock)
{
	int listener;
	ssize_t n;

	/* Outside a pid namespace of its own, a C that died would leave H blocked on a pipe whose
	 * write end H itself keeps open through the shared table. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != parent)
		_exit(ECHILD);
	do
		n = read(request_fd, &listener, sizeof listener);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		_exit(ECANCELED); /* C closed the pipe: the filter did not load, and C reports why */
	if (n != (ssize_t)sizeof listener)
		_exit(n < 0 ? errno : EPROTO);

	_exit(send_fd(sock, (char)STK_HANDOFF_LISTENER, NULL, listener));
}

/* The sentry gets procfs at /proc and sysfs at /sys, nothing else under those names. */
static void check_fs_type(int fd, const char *path)
{
	struct statfs st;
	if (fstatfs(fd, &st) < 0)
		stk_fail_errno("sentry", "statfs the clone of %s", path);
	long want = strcmp(path, "/proc") == 0 ? PROC_SUPER_MAGIC : strcmp(path, "/sys") == 0 ? SYSFS_MAGIC : 0;
	if (want == 0 || st.f_type != want)
		stk_fail(EINVAL, "sentry", "the clone of %s is not the file system the sentry serves there (type 0x%lx)", path,
			 (long)st.f_type);
}

/*
 * The exec links (STK_HANDOFF_EXEC_LINKS): execve("/proc/self/exe") is finished by the kernel,
 * which walks the path in this namespace, where no procfs is left. So /proc here becomes a small
 * tmpfs that only the sentry writes: for such an exec it puts a symlink there, "/proc/N" -> the
 * executable's path in the root, and rewrites the caller's path to name it (src/sentry/exec-links.ts).
 * A link leads only to a path of the root, walked by the kernel from the caller's root: nothing
 * the caller could not name itself. The workload's mount is read-only, nosuid, nodev and noexec;
 * the sentry gets a writable clone of it. Every path under /proc the workload gives the sentry
 * still resolves in the procfs clone; the kernel's own walks alone see this tmpfs.
 */
static void exec_links(const struct stk_plan *plan)
{
	const unsigned long flags = MS_NOSUID | MS_NODEV | MS_NOEXEC;
	if (mount("stockade-exec", "/proc", "tmpfs", flags, "mode=0711,size=3m,nr_inodes=2048") < 0)
		stk_fail_errno("sentry", "mount the exec links' tmpfs at /proc");
	int fd = sys_open_tree(AT_FDCWD, "/proc", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd < 0)
		stk_fail_errno("sentry", "clone the exec links' tmpfs for the sentry");
	if (mount(NULL, "/proc", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, NULL) < 0)
		stk_fail_errno("sentry", "make the exec links' tmpfs at /proc read-only");
	int err = send_fd((int)plan->sentry_fd, (char)STK_HANDOFF_EXEC_LINKS, NULL, fd);
	if (err != 0)
		stk_fail(err, "sentry", "hand the exec links' tmpfs to the sentry");
	close(fd);
}

void stk_sentry_detach_mounts(const struct stk_plan *plan, struct stk_sentry *s)
{
	for (uint32_t i = 0; i < STK_MAX_SENTRY_MOUNTS; i++)
		s->mount_fds[i] = -1;
	for (uint32_t i = 0; i < plan->n_sentry_mounts; i++) {
		const char *path = plan->sentry_mounts[i];
		int fd = sys_open_tree(AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
		if (fd < 0)
			stk_fail_errno("sentry", "clone the mount at %s for the sentry", path);
		check_fs_type(fd, path);
		s->mount_fds[i] = fd;
		/* Everything stacked there goes: beneath the config's procfs may lie the host's, which a
		 * recursive bind of the host's root (stockade do) brought along. */
		if (umount2(path, MNT_DETACH) < 0)
			stk_fail_errno("sentry", "detach %s from the container's mount namespace", path);
		while (umount2(path, MNT_DETACH) == 0)
			;
		if (errno != EINVAL)
			stk_fail_errno("sentry", "detach the mounts beneath %s", path);
		struct statx st;
		if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, 0, &st) < 0)
			stk_fail_errno("sentry", "stat %s once detached", path);
		if ((st.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) == 0 || (st.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0)
			stk_fail(EBUSY, "sentry", "%s is still a mount point in the container (a locked mount beneath it?)", path);
	}
	/* No filter is loaded yet: a plain sendmsg. The sentry holds the clones from here on. */
	bool proc = false;
	for (uint32_t i = 0; i < plan->n_sentry_mounts; i++) {
		int err = send_fd((int)plan->sentry_fd, (char)STK_HANDOFF_MOUNT, plan->sentry_mounts[i], s->mount_fds[i]);
		if (err != 0)
			stk_fail(err, "sentry", "hand the clone of %s to the sentry", plan->sentry_mounts[i]);
		close(s->mount_fds[i]);
		s->mount_fds[i] = -1;
		proc = proc || strcmp(plan->sentry_mounts[i], "/proc") == 0;
	}
	if (proc)
		exec_links(plan);
}

static void close_mounts(struct stk_sentry *s)
{
	for (uint32_t i = 0; i < STK_MAX_SENTRY_MOUNTS; i++) {
		if (s->mount_fds[i] >= 0) {
			int saved = errno;
			close(s->mount_fds[i]);
			errno = saved;
		}
		s->mount_fds[i] = -1;
	}
}

void stk_sentry_prepare(const struct stk_plan *plan, struct stk_sentry *s)
{
	int req[2];

	s->helper = -1;
	s->request_fd = s->reply_fd = -1;
	if (!plan->has_sentry)
		return;
	if (pipe2(req, O_CLOEXEC) < 0)
		stk_fail_errno("sentry", "pipe for the listener hand-off");
	pid_t parent = getpid();
	/* No new stack and no CLONE_VM: H continues on a copy of ours, as after fork(). */
	long pid = sys_clone_fork(CLONE_FILES | SIGCHLD);
	if (pid < 0)
		stk_fail_errno("sentry", "clone the listener hand-off helper");
	if (pid == 0)
		helper_main(parent, req[0], (int)plan->sentry_fd);
	s->helper = (pid_t)pid;
	s->request_fd = req[0];
	s->reply_fd = req[1];
}

/* The status H exited with: 0, an errno, or -signal. */
static int reap_helper(pid_t helper)
{
	int status;
	while (waitpid(helper, &status, 0) < 0)
		if (errno != EINTR)
			return errno;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return -WTERMSIG(status);
}

/* Closes without touching errno, as the failure paths report it after. */
static void close_quietly(int fd)
{
	int saved = errno;
	if (fd >= 0)
		close(fd);
	errno = saved;
}

void stk_sentry_load(const struct stk_plan *plan, struct stk_sentry *s)
{
	if (!plan->has_sentry)
		return;
	struct sock_fprog prog = { .len = plan->sentry_len, .filter = plan->sentry_filter };
	unsigned int flags = plan->sentry_flags | SECCOMP_FILTER_FLAG_NEW_LISTENER;
	int listener = sys_seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog);
	if (listener < 0) {
		int err = errno;
		close_mounts(s);
		/* The only reference to the pipe's write end: H reads EOF and leaves. */
		close_quietly(s->reply_fd);
		reap_helper(s->helper);
		stk_fail(err, "sentry", "load the sentry filter of %u instructions with flags 0x%x", plan->sentry_len,
			 flags);
	}

	ssize_t n;
	do
		n = write(s->reply_fd, &listener, sizeof listener);
	while (n < 0 && errno == EINTR);
	int werr = n == (ssize_t)sizeof listener ? 0 : n < 0 ? errno : EIO;
	if (werr != 0)
		close_quietly(listener); /* before H can send it: it reads EOF next */
	close_quietly(s->reply_fd);
	int status = reap_helper(s->helper);
	close_quietly(s->request_fd);
	if (werr == 0)
		close_quietly(listener);
	close_quietly((int)plan->sentry_fd);
	close_mounts(s);
	s->helper = -1;
	s->request_fd = s->reply_fd = -1;

	if (werr != 0)
		stk_fail(werr, "sentry", "pass the listener's number to the hand-off helper");
	if (status < 0)
		stk_fail(0, "sentry", "the listener hand-off helper died of signal %d", -status);
	if (status != 0)
		stk_fail(status, "sentry", "send the seccomp listener over the sentry socket (fd %u)", plan->sentry_fd);
}
