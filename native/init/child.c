/* stockade-init: the container side (C), from the "go" byte to execve, in the order the steps depend on. */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "init.h"

/* Tied to P (TAG_TIED), C keeps the pipe: its write end closing is how C learns P died. */
static void wait_for_go(int go_fd, bool keep)
{
	char c;
	ssize_t n;
	do
		n = read(go_fd, &c, 1);
	while (n < 0 && errno == EINTR);
	/* EOF: P failed before releasing us and reports why itself. */
	if (n != 1)
		_exit(1);
	if (!keep)
		close(go_fd);
}

/* A user namespace whose setgroups file says "deny" refuses setgroups(2) for good. */
static bool setgroups_denied(void)
{
	char buf[16] = { 0 };
	_cleanup_close_ int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (read(fd, buf, sizeof buf - 1) < 0)
		return false;
	return strncmp(buf, "deny", 4) == 0;
}

/* The state JSON a hook reads comes from the runtime; annotations bound its size, not us. */
#define HOOK_STATE_MAX (16u << 20)

static void run_hook_point(const struct stk_plan *plan, uint32_t point)
{
	uint32_t type, len, le = htole32(point);
	_cleanup_free_ uint8_t *state = NULL;

	if (!(plan->hook_points & point))
		return;
	if (stk_send_frame(stk.sync_fd, STK_MSG_HOOK, &le, sizeof le) < 0)
		stk_fail_errno("hook", "report hook point 0x%x", point);
	int r = stk_recv_frame_payload(stk.sync_fd, &type, &state, &len, HOOK_STATE_MAX);
	if (r == 1)
		_exit(1); /* the runtime gave up on us: one of its hooks failed, or it was killed */
	if (r < 0)
		stk_fail_errno("hook", "wait to continue after hook point 0x%x", point);
	if (type != STK_MSG_CONTINUE)
		stk_fail(EPROTO, "hook", "message %u instead of continue after hook point 0x%x", type, point);
	/* After the runtime's own hooks, still before pivot_root: the paths resolve as our mount
	 * namespace sees the host's file system. */
	if (point == STK_HOOKF_CREATE)
		stk_run_hooks(plan, STK_HOOK_PHASE_CREATE_CONTAINER, state, len);
}

/* Blocks until `stockade start` connects and sends MSG_START; returns the connection, which
 * carries the hook or exec error if there is one and otherwise closes at execve. MSG_START's
 * payload is the state for the startContainer hooks. */
static int wait_for_start(uint8_t **state, uint32_t *state_len)
{
	for (;;) {
		int conn = accept4(stk.listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (conn < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			stk_fail_errno("start", "accept on the start socket");
		}
		/* A client that connects and says nothing must not hold up the real `start`. */
		struct timeval patience = { .tv_sec = 5, .tv_usec = 0 };
		setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &patience, sizeof patience);
		uint32_t type;
		if (stk_recv_frame_payload(conn, &type, state, state_len, HOOK_STATE_MAX) == 0 && type == STK_MSG_START) {
			close(stk.listen_fd);
			stk.listen_fd = -1;
			return conn;
		}
		free(*state);
		*state = NULL;
		close(conn);
	}
}

void stk_child_main(int go_fd)
{
	const struct stk_plan *plan = &stk.plan;

	stk.in_child = true;
	stk.child = 0;
	stk.exit_code = 1;
	stk.err_fd = stk.sync_fd;
	wait_for_go(go_fd, plan->tied_to != 0);
	/* Now, so that a caller killed during setup (C waiting for start) takes C along; again below,
	 * since a change of credentials may clear it. */
	stk_tie_to_p(plan, go_fd);

	/* Modes in the plan are exact; the process's own umask comes with its user. */
	umask(0);
	if (stk.in_userns)
		stk.setgroups_denied = setgroups_denied();
	stk_become_ns_root();
	if (setsid() < 0)
		stk_fail_errno("setsid", "start a new session");

	stk_set_names(plan);
	if (plan->loopback_up)
		stk_loopback_up();

	stk_rootfs_prepare(plan);
	for (size_t i = 0; i < plan->n_mounts; i++)
		stk_do_mount(&plan->mounts[i]);
	stk_idmap_release(&stk.plan);
	stk_create_devices(plan);
	stk_create_symlinks(plan);

	run_hook_point(plan, STK_HOOKF_CREATE);

	stk_rootfs_enter(plan);
	stk_rootfs_propagation(plan);
	/* Sysctls and the console before the masks and read-only remounts: /proc/sys and /dev may
	 * well be among the paths those freeze. */
	stk_write_sysctls(plan);
	stk_setup_terminal(plan);
	stk_masked_paths(plan);
	stk_readonly_paths(plan);
	stk_rootfs_readonly(plan);
	struct stk_sentry sentry;
	stk_sentry_detach_mounts(plan, &sentry);

	stk_set_rlimits(plan);
	stk_join_session_keyring(plan);
	/* In the root the process will have, before the user switch, as runc does. */
	stk_fill_home(&stk.plan);
	/* Held open, nothing is executed: the args need name no file of the root. */
	const char *exe = plan->hold ? NULL : stk_lookup_executable(plan);

	/* Without no_new_privs, loading a filter takes CAP_SYS_ADMIN, which the user switch below
	 * may drop, so the filter goes in now and the rest of setup runs under it (runc does the
	 * same; the profile must allow it). With no_new_privs it waits until just before execve. */
	if (plan->has_seccomp && !plan->no_new_privs)
		stk_load_seccomp(plan);
	bool cwd_as_user = stk_enter_cwd_first(plan);
	stk_set_user_and_caps(plan);
	if (cwd_as_user)
		stk_set_cwd(plan);
	stk_set_no_new_privs(plan);
	stk_seal_fds(plan);

	if (stk_send_frame(stk.sync_fd, STK_MSG_READY, NULL, 0) < 0)
		stk_fail_errno("sync", "report ready");
	uint8_t *start_state = NULL;
	uint32_t start_state_len = 0;
	if (stk.listen_fd >= 0) {
		close(stk.sync_fd);
		stk.sync_fd = -1;
		stk.err_fd = -1;
		stk.err_fd = wait_for_start(&start_state, &start_state_len);
	}
	/* Without a start socket the sync fd stays open until execve closes it: EOF after READY is
	 * success, an ERROR frame is the exec failure. */

	stk_clear_nonblock_stdio();
	/* With its final identity. */
	stk_tie_to_p(plan, go_fd);
	/* From here on, with an init, this is the command, pid 2: the init stays behind. */
	stk_become_init(plan);
	stk_sentry_prepare(plan, &sentry);
	if (plan->has_seccomp && plan->no_new_privs)
		stk_load_seccomp(plan);
	/* Last, under the config's filter: the config's answers (EPERM, kill) come before any NOTIFY
	 * reaches the supervisor, and nothing the runtime itself runs from here on is mediated but
	 * the hooks and execve. */
	stk_sentry_load(plan, &sentry);
	/* As runc: startContainer hooks run as the workload will, with its user, capabilities,
	 * no_new_privs and seccomp filter, after pivot_root, so their paths resolve in the container. */
	stk_run_hooks(plan, STK_HOOK_PHASE_START_CONTAINER, start_state, start_state_len);
	free(start_state);
	if (plan->hold)
		stk_hold();
	execve(exe, (char *const *)plan->argv, (char *const *)plan->envp);
	int err = errno;
	stk.exit_code = 127;
	stk_fail(err, "exec", "exec \"%s\": %s", exe, strerror(err));
}
