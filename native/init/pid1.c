/* stockade-init: the container's lifetime bound to its caller (TAG_TIED), and the small init C
 * stays as in front of the command (TAG_INIT, what `docker run --init` adds), both for `stockade do`.
 *
 * Why an init: the pid 1 of a pid namespace gets only the signals it has a handler for, so a
 * command run as pid 1 ignores ^C, SIGTERM and SIGHUP unless it asked for them (`sleep` never
 * does), cannot be killed by a signal of its own, and inherits every orphan of the namespace
 * without reaping it. C forks the command as pid 2 after setup, once nothing is left but the
 * filters and execve, keeps every signal blocked and takes them with sigwaitinfo (a blocked signal
 * is queued even for pid 1), passes each one on to the command, reaps whatever exits, and exits
 * with the command's status, 128+N when signal N killed it. The kernel then kills whatever is left
 * in the namespace. With a deadline (`do --timeout`) it ends the command as timeout(1) does, and
 * everything else in the namespace after a grace, and exits with 124.
 *
 * The init runs no filter: it makes no call the workload chooses, holds no fd but the tie to P,
 * and cannot be traced or read (it is not dumpable and the workload has no CAP_SYS_PTRACE).
 *
 * Why a tie: `stockade do` owns its container. P asks to be killed when its parent (the `do`
 * process) dies and C asks the same of P; each checks after its prctl that the parent it asked
 * about is still there, since a parent that died before would never send the signal. C's check is
 * the go pipe, whose write end P keeps open for its whole life. The setting does not survive a
 * change of credentials, so C sets it as soon as P releases it (a caller killed while the
 * container waits for start takes it along) and again once it has its final identity. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "init.h"
#include "syscalls.h"

void stk_tie_to_caller(const struct stk_plan *plan)
{
	if (!plan->tied_to)
		return;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		stk_fail_errno("tie", "ask for SIGKILL at the death of the caller");
	if ((uint32_t)getppid() != plan->tied_to)
		stk_fail(ESRCH, "tie", "the caller (pid %u) is gone", plan->tied_to);
}

void stk_tie_to_p(const struct stk_plan *plan, int tie_fd)
{
	if (!plan->tied_to)
		return;
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
		stk_fail_errno("tie", "ask for SIGKILL at the death of stockade-init");
	struct pollfd p = { .fd = tie_fd, .events = POLLIN };
	int r;
	do
		r = poll(&p, 1, 0);
	while (r < 0 && errno == EINTR);
	/* P wrote nothing more after "go": any event is its end of the pipe closing, P's death. */
	if (r != 0)
		_exit(1);
}

/* Signals that only the kernel raises, for a fault of the init itself: never passed on. */
static bool synchronous(int sig)
{
	return sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP ||
	       sig == SIGSYS || sig == SIGABRT;
}

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* A deadline (TAG_INIT_TIMEOUT): SIGTERM to the command when it passes, SIGKILL to everything in
 * the namespace (kill(-1) from its pid 1 spares only the init) once the grace has passed too. */
struct deadline {
	int64_t at;   /* ms on CLOCK_MONOTONIC; 0: none left */
	int64_t grace;
	bool expired; /* the command ran out of time: the init exits with 124 */
};

static void on_deadline(struct deadline *d, pid_t command)
{
	if (!d->expired) {
		d->expired = true;
		kill(command, SIGTERM);
		d->at = d->grace > 0 ? now_ms() + d->grace : 0;
		if (d->grace > 0)
			return;
	}
	kill(-1, SIGKILL);
	d->at = 0;
}

__attribute__((noreturn)) static void serve(pid_t command, const struct stk_plan *plan)
{
	sigset_t all;
	sigfillset(&all);
	struct deadline d = { .at = plan->timeout_ms ? now_ms() + plan->timeout_ms : 0, .grace = plan->grace_ms };

	/* Nothing of the container stays open in the init: the start connection must see EOF at
	 * the command's execve, the sentry's socket is the command's, and a reader of the command's
	 * output must see its end when the command closes it, not when the init exits. */
	sys_close_range(0, ~0U, 0);

	for (;;) {
		siginfo_t si;
		int sig;
		if (d.at > 0) {
			int64_t left = d.at - now_ms();
			if (left <= 0) {
				on_deadline(&d, command);
				continue;
			}
			struct timespec ts = { .tv_sec = left / 1000, .tv_nsec = (left % 1000) * 1000000 };
			sig = sigtimedwait(&all, &si, &ts);
		} else {
			sig = sigwaitinfo(&all, &si);
		}
		if (sig < 0)
			continue; /* EAGAIN: the deadline, met at the top; EINTR */
		if (sig != SIGCHLD) {
			if (!synchronous(sig))
				kill(command, sig);
			continue;
		}
		int status;
		pid_t pid;
		while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
			if (pid != command)
				continue;
			if (d.expired)
				_exit(124);
			if (WIFEXITED(status))
				_exit(WEXITSTATUS(status));
			if (WIFSIGNALED(status))
				_exit(128 + WTERMSIG(status));
		}
	}
}

void stk_become_init(const struct stk_plan *plan)
{
	sigset_t all, old;

	if (!plan->init)
		return;
	/* Blocked before the fork: a signal sent meanwhile waits for sigwaitinfo instead of being
	 * dropped (pid 1 has no handler) or lost. */
	sigfillset(&all);
	if (sigprocmask(SIG_SETMASK, &all, &old) < 0)
		stk_fail_errno("init", "block signals");
	pid_t command = fork();
	if (command < 0)
		stk_fail_errno("init", "fork the command");
	if (command > 0)
		serve(command, plan);
	/* On a terminal the command leads a process group of its own, the terminal's foreground one:
	 * ^C and ^Z reach it (and what it starts) from the line discipline, and not the init too,
	 * which would pass them on a second time. SIGTTOU is still blocked here, as tcsetpgrp needs. */
	if (plan->terminal && (setpgid(0, 0) < 0 || tcsetpgrp(0, getpid()) < 0))
		stk_fail_errno("init", "make the command the terminal's foreground process group");
	if (sigprocmask(SIG_SETMASK, &old, NULL) < 0)
		stk_fail_errno("init", "unblock signals");
}

/* TAG_HOLD: the command that is none. It is pid 2 under the init, with the workload's identity,
 * no_new_privs and filters already in place, so it can do nothing the workload could not; it holds
 * no fd (the start connection's EOF tells the runtime it has started, as an execve would), and
 * waits in sigsuspend (allowed by every filter: signals) until a signal the init passes on, or
 * SIGKILL, ends it, and with it the container. */
__attribute__((noreturn)) void stk_hold(void)
{
	sys_close_range(0, ~0U, 0);
	/* The default action of the signals that end a process, whatever the runtime set before. */
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	const int ending[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM };
	for (size_t i = 0; i < sizeof ending / sizeof ending[0]; i++)
		sigaction(ending[i], &dfl, NULL);
	sigset_t none;
	sigemptyset(&none);
	for (;;)
		sigsuspend(&none);
}
