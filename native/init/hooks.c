/* stockade-init: runs the container's own OCI hooks (createContainer, startContainer) with the state on stdin. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "init.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

/* Enough of a failing hook's output to say why it failed, on one line (as the runtime's side does). */
#define OUTPUT_KEPT 512
#define OUTPUT_SHOWN 300
/* Without a pidfd, how often the hook is checked for having exited. */
#define POLL_TICK_MS 10

struct hook_run {
	const struct stk_hook *hook;
	const char *label; /* "hooks.createContainer[0] (/path)" */
	pid_t pid;
	int pidfd, in_fd, out_fd, exec_err_fd;
	const uint8_t *state;
	size_t state_len, written;
	char output[OUTPUT_KEPT + 1];
	size_t output_len;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* Any failure after fork ends the hook first: outside a pid namespace of its own it would outlive us. */
static void kill_hook(struct hook_run *r)
{
	if (r->pid <= 0)
		return;
	kill(r->pid, SIGKILL);
	while (waitpid(r->pid, NULL, 0) < 0 && errno == EINTR)
		;
	r->pid = 0;
}

__attribute__((noreturn, format(printf, 3, 4))) static void hook_fail(struct hook_run *r, int err, const char *fmt, ...)
{
	char why[256];
	va_list ap;
	int saved = err;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	kill_hook(r);
	/* The output, squeezed onto the one line the error has. */
	char said[OUTPUT_SHOWN + 4];
	size_t n = 0;
	bool space = false;
	for (size_t i = 0; i < r->output_len && n < OUTPUT_SHOWN; i++) {
		unsigned char ch = (unsigned char)r->output[i];
		if (ch <= ' ' || ch == 0x7f) {
			space = n > 0;
			continue;
		}
		if (space)
			said[n++] = ' ';
		space = false;
		if (n < OUTPUT_SHOWN)
			said[n++] = (char)ch;
	}
	if (n >= OUTPUT_SHOWN) {
		memcpy(said + n, "...", 3);
		n += 3;
	}
	said[n] = '\0';
	if (n > 0)
		stk_fail(saved, "hook", "%s: %s: %s", r->label, why, said);
	stk_fail(saved, "hook", "%s: %s", r->label, why);
}

__attribute__((noreturn)) static void exec_hook(struct hook_run *r, int in_r, int out_w, int err_w)
{
	/* Back to the defaults the hook would get from any runtime: ours ignores SIGPIPE while hooks run. */
	signal(SIGPIPE, SIG_DFL);
	/* dup2 clears close-on-exec on the copies; every other fd of ours is close-on-exec already,
	 * except the preserved ones, which the hook shares with the container process as in runc. */
	if (dup2(in_r, 0) < 0 || dup2(out_w, 1) < 0 || dup2(out_w, 2) < 0) {
		int e = errno;
		(void)!write(err_w, &e, sizeof e);
		_exit(127);
	}
	/* As runc, whose init has taken on the process's environment by then: a startContainer hook
	 * that names no env of its own runs with the container process's (HOME filled in included). */
	const char **envp = r->hook->envp;
	if (r->hook->phase == STK_HOOK_PHASE_START_CONTAINER && envp[0] == NULL)
		envp = stk.plan.envp;
	execve(r->hook->path, (char *const *)r->hook->argv, (char *const *)envp);
	int e = errno;
	(void)!write(err_w, &e, sizeof e);
	_exit(127);
}

static void start_hook(struct hook_run *r)
{
	int in[2], out[2], err[2];

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
		hook_fail(r, errno, "cannot make its pipes");
	pid_t pid = fork();
	if (pid < 0)
		hook_fail(r, errno, "cannot fork");
	if (pid == 0)
		exec_hook(r, in[0], out[1], err[1]);
	r->pid = pid;
	close(in[0]);
	close(out[1]);
	close(err[1]);
	r->in_fd = in[1];
	r->out_fd = out[0];
	r->exec_err_fd = err[0];
	/* Non-blocking: a hook that neither reads its stdin nor writes must still be timed out. */
	fcntl(r->in_fd, F_SETFL, O_NONBLOCK);
	fcntl(r->out_fd, F_SETFL, O_NONBLOCK);
	r->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (r->pidfd >= 0)
		fcntl(r->pidfd, F_SETFD, FD_CLOEXEC);
	if (r->state_len == 0)
		close_fd(&r->in_fd);
}

static void feed_stdin(struct hook_run *r)
{
	while (r->written < r->state_len) {
		ssize_t n = write(r->in_fd, r->state + r->written, r->state_len - r->written);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			/* EPIPE: the hook stopped reading, which is its own business. */
			break;
		}
		r->written += (size_t)n;
	}
	close_fd(&r->in_fd);
}

static void drain_output(struct hook_run *r)
{
	char sink[4096];
	for (;;) {
		ssize_t n = read(r->out_fd, sink, sizeof sink);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return; /* EAGAIN: more may come */
		if (n == 0) {
			close_fd(&r->out_fd);
			return;
		}
		size_t room = OUTPUT_KEPT - r->output_len;
		size_t take = (size_t)n < room ? (size_t)n : room;
		memcpy(r->output + r->output_len, sink, take);
		r->output_len += take;
	}
}

/* Runs one hook to its end; a failure does not return. */
static void run_hook(struct hook_run *r)
{
	int status = 0;
	int64_t deadline = r->hook->timeout_ms ? now_ms() + r->hook->timeout_ms : -1;

	start_hook(r);
	for (;;) {
		pid_t w = waitpid(r->pid, &status, WNOHANG);
		if (w == r->pid)
			break;
		if (w < 0 && errno != EINTR)
			hook_fail(r, errno, "cannot wait for it");
		int wait = -1;
		if (deadline >= 0) {
			int64_t left = deadline - now_ms();
			if (left <= 0) {
				drain_output(r);
				if (r->hook->timeout_ms % 1000 == 0)
					hook_fail(r, 0, "timed out after %us", r->hook->timeout_ms / 1000);
				hook_fail(r, 0, "timed out after %ums", r->hook->timeout_ms);
			}
			wait = left > 60000 ? 60000 : (int)left;
		}
		if (r->pidfd < 0 && (wait < 0 || wait > POLL_TICK_MS))
			wait = POLL_TICK_MS;
		struct pollfd p[3] = {
			{ .fd = r->pidfd, .events = POLLIN },
			{ .fd = r->in_fd, .events = POLLOUT },
			{ .fd = r->out_fd, .events = POLLIN },
		};
		if (poll(p, 3, wait) < 0 && errno != EINTR)
			hook_fail(r, errno, "cannot poll it");
		if (r->in_fd >= 0 && p[1].revents)
			feed_stdin(r);
		if (r->out_fd >= 0 && p[2].revents)
			drain_output(r);
	}
	r->pid = 0;
	/* What it wrote before exiting; a child it left holding the pipe is not waited for. */
	if (r->out_fd >= 0)
		drain_output(r);

	int exec_errno = 0;
	ssize_t got = read(r->exec_err_fd, &exec_errno, sizeof exec_errno);
	if (got == (ssize_t)sizeof exec_errno)
		hook_fail(r, exec_errno, "cannot run");
	if (WIFSIGNALED(status)) {
		const char *sig = sigabbrev_np(WTERMSIG(status));
		if (sig != NULL)
			hook_fail(r, 0, "killed by SIG%s", sig);
		hook_fail(r, 0, "killed by signal %d", WTERMSIG(status));
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
		hook_fail(r, 0, "exit status %d", WEXITSTATUS(status));
	close_fd(&r->in_fd);
	close_fd(&r->out_fd);
	close_fd(&r->exec_err_fd);
	close_fd(&r->pidfd);
}

void stk_run_hooks(const struct stk_plan *plan, uint32_t phase, const uint8_t *state, size_t state_len)
{
	const char *name = phase == STK_HOOK_PHASE_CREATE_CONTAINER ? "createContainer" : "startContainer";
	struct sigaction ignore = { .sa_handler = SIG_IGN }, saved;
	size_t index = 0;
	char label[4352];

	/* A hook that exits before reading its stdin must show up as EPIPE, not kill the container;
	 * the default comes back before execve, which would pass an ignored SIGPIPE on. */
	sigemptyset(&ignore.sa_mask);
	if (sigaction(SIGPIPE, &ignore, &saved) < 0)
		stk_fail_errno("hook", "ignore SIGPIPE while hooks run");
	for (size_t i = 0; i < plan->n_hooks; i++) {
		const struct stk_hook *h = &plan->hooks[i];
		if (h->phase != phase)
			continue;
		snprintf(label, sizeof label, "hooks.%s[%zu] (%s)", name, index++, h->path);
		struct hook_run r = {
			.hook = h, .label = label, .pid = 0, .pidfd = -1, .in_fd = -1, .out_fd = -1,
			.exec_err_fd = -1, .state = state, .state_len = state_len,
		};
		run_hook(&r);
	}
	if (sigaction(SIGPIPE, &saved, NULL) < 0)
		stk_fail_errno("hook", "restore SIGPIPE after hooks");
}
