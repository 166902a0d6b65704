/*
 * The front's half of the planner (docs/design/planner.md): the calls TypeScript decides (create,
 * run, exec) are asked of a resident Node planner of the state root, over <root>/.planner.sock,
 * instead of starting Node; this process carries the answer out. It spawns stockade-init itself
 * (the container stays a descendant of the CLI call, and only stockade-init gets the caller's
 * fds), relays init's plan pipe and sync socket, the planner's output and the caller's signals,
 * and exits with the status the planner says, or becomes stockade-light's wait.
 *
 * Nothing is decided here either: the planner answers COLD for any call it does not serve, and
 * every failure to reach a planner of this build and this host sends the call to Node, as if
 * there were none. The frames are src/planner/protocol.ts's, through stockade-abi.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "planner.h"
#include "relay.h"
#include "stockade-abi.h"

extern char **environ;

#define FRAME_MAX (16u << 20)
/* How long a front waits for a planner it started (Node's start under load, 2 cores, 20 jobs). */
#define START_WAIT_MS 5000
/* How long a running planner may take to greet (its event loop answers at once when it is well). */
#define HELLO_WAIT_MS 3000

static const char *const SERVED[] = STK_PLANNER_SERVED;
static const int FORWARDED[] = STK_FORWARDED_SIGNALS;
#define NFORWARDED ((int)(sizeof FORWARDED / sizeof FORWARDED[0]))

static int g_sigpipe[2] = {-1, -1};
static volatile sig_atomic_t g_relay;
/* Fds the planner passed (SCM_RIGHTS), each with the frame that uses it: received in order, then
 * taken by their frames in order (a TTY frame's pty master; an FD frame's, given to the next SPAWN
 * or SUPERVISE, which closes them). */
#define MAX_FDS 16
static int g_received[MAX_FDS], g_nreceived;
static int g_given[MAX_FDS], g_ngiven;

/* The supervisors this call started (SUPERVISE): watched by pidfd, reaped at their exit. */
#define MAX_SUPERVISORS 8
struct supervisor {
	pid_t pid;
	int pidfd;
	bool exited;
	int status; /* as exit() takes it */
};
static struct supervisor g_sup[MAX_SUPERVISORS];
static int g_nsup;

struct buf {
	char *data;
	size_t len, cap;
};

static bool buf_add(struct buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap == 0 ? 4096 : b->cap;
		while (cap < b->len + n)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (d == NULL)
			return false;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return true;
}

static bool buf_str(struct buf *b, const char *s) { return buf_add(b, s, strlen(s) + 1); }

/*
 * All of p to fd. To a socket (to_socket), a peer that is gone is an error here, not a SIGPIPE
 * that would end the call; the caller's stdout or a pipe is written as write(2) does.
 */
static int put_full(int fd, const void *p, size_t n, bool to_socket)
{
	const char *c = p;
	while (n > 0) {
		ssize_t w = to_socket ? send(fd, c, n, MSG_NOSIGNAL) : write(fd, c, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		c += w;
		n -= (size_t)w;
	}
	return 0;
}

static int write_full(int fd, const void *p, size_t n) { return put_full(fd, p, n, false); }

static int send_full(int fd, const void *p, size_t n) { return put_full(fd, p, n, true); }

static int send_frame(int conn, unsigned type, const void *p, size_t n)
{
	unsigned char head[5];
	uint32_t len = (uint32_t)n + 1;
	memcpy(head, &len, 4); /* little-endian: x86-64 and arm64 */
	head[4] = (unsigned char)type;
	if (send_full(conn, head, 5) < 0)
		return -1;
	return n == 0 ? 0 : send_full(conn, p, n);
}

static int send_ints(int conn, unsigned type, int a, int b)
{
	int32_t v[2] = {a, b};
	return send_frame(conn, type, v, sizeof v);
}

/* <package>/build/Release/stockade-light -> <package> */
static bool package_dir(char *out, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", out, size - 1);
	if (n <= 0)
		return false;
	out[n] = '\0';
	for (int up = 0; up < 3; up++) {
		char *slash = strrchr(out, '/');
		if (slash == NULL)
			return false;
		*slash = '\0';
	}
	return true;
}

/* As src/planner/host.ts buildIdOf: the bundle's device, inode, size and mtime in ns. */
static bool build_id(const char *bundle, char *out, size_t size)
{
	struct stat st;
	if (stat(bundle, &st) < 0)
		return false;
	unsigned long long mtime = (unsigned long long)st.st_mtim.tv_sec * 1000000000ull + (unsigned long long)st.st_mtim.tv_nsec;
	snprintf(out, size, "%llu:%llu:%lld:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino, (long long)st.st_size, mtime);
	return true;
}

static bool read_file(const char *path, struct buf *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	char tmp[4096];
	ssize_t n;
	while ((n = read(fd, tmp, sizeof tmp)) > 0)
		if (!buf_add(b, tmp, (size_t)n)) {
			close(fd);
			return false;
		}
	close(fd);
	return n == 0;
}

/* As src/planner/host.ts fingerprintOf: the namespaces, root, ids and capabilities of the process
 * whose /proc directory is proc ("/proc/self", or a peer's). */
static bool fingerprint_of(const char *proc, struct buf *b)
{
	static const char *const ns[] = {"ns/cgroup", "ns/ipc", "ns/mnt", "ns/net", "ns/pid", "ns/user", "ns/uts", "root"};
	static const char *const keys[] = {"Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp"};
	for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) {
		char path[96], link[PATH_MAX];
		snprintf(path, sizeof path, "%s/%s", proc, ns[i]);
		ssize_t n = readlink(path, link, sizeof link - 1);
		if (n <= 0)
			return false;
		if (!buf_add(b, link, (size_t)n) || !buf_add(b, "\n", 1))
			return false;
	}
	char path[96];
	snprintf(path, sizeof path, "%s/status", proc);
	struct buf status = {0};
	if (!read_file(path, &status) || !buf_add(&status, "", 1)) {
		free(status.data);
		return false;
	}
	for (char *line = status.data; line != NULL && *line != '\0';) {
		char *end = strchr(line, '\n');
		size_t len = end == NULL ? strlen(line) : (size_t)(end - line);
		char *colon = memchr(line, ':', len);
		if (colon != NULL)
			for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
				if ((size_t)(colon - line) == strlen(keys[k]) && strncmp(line, keys[k], strlen(keys[k])) == 0) {
					buf_add(b, line, len);
					buf_add(b, "\n", 1);
				}
		line = end == NULL ? NULL : end + 1;
	}
	free(status.data);
	return true;
}

static bool fingerprint(struct buf *b)
{
	return fingerprint_of("/proc/self", b);
}

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/*
 * Whether the process listening at the other end of conn is this one's equal: the same namespaces,
 * root, ids and capabilities, read from its /proc entry, not from what it says of itself. The
 * front carries out what the planner sends (SPAWN, WAIT and THEN name programs it execs), so a
 * listener of this uid with less power (no capabilities, another mount namespace, a chroot: a
 * process in a sandbox that can write the state root) must not be taken for a planner. Its pidfd
 * (SO_PEERPIDFD; before Linux 6.5, pidfd_open of the pid SO_PEERCRED gave) must still be alive once
 * its entry is read: a listener that exited could have left its pid to another process.
 */
static bool peer_is_equal(int conn, pid_t pid)
{
	int pidfd = -1;
	socklen_t len = sizeof pidfd;
	if (getsockopt(conn, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0)
		pidfd = pid > 0 ? (int)syscall(SYS_pidfd_open, pid, 0) : -1;
	if (pidfd < 0 || pid <= 0) {
		if (pidfd >= 0)
			close(pidfd);
		return false;
	}
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/%d", (int)pid);
	struct buf mine = {0}, theirs = {0};
	bool equal = fingerprint(&mine) && fingerprint_of(proc, &theirs) && mine.len == theirs.len && memcmp(mine.data, theirs.data, mine.len) == 0;
	free(mine.data);
	free(theirs.data);
	/* A pidfd polls readable once its process has exited. */
	struct pollfd alive = {.fd = pidfd, .events = POLLIN};
	if (equal && (poll(&alive, 1, 0) != 0))
		equal = false;
	close(pidfd);
	return equal;
}

static int connect_to(const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof addr.sun_path)
		return -1;
	strcpy(addr.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
		close(fd);
		return -1;
	}
	/* The planner must be this user's and this process's equal: a socket another user, or this user
	 * with less power, put there is not asked anything. */
	struct ucred cred;
	socklen_t len = sizeof cred;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != geteuid() || !peer_is_equal(fd, cred.pid)) {
		close(fd);
		return -1;
	}
	return fd;
}

static long now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The planner's own process, in a session of its own: stdio on /dev/null, fd 3 the pipe its front
 * waits on (none when ready_fd < 0), nothing else of the caller's. Never returns. */
static void __attribute__((noreturn)) exec_planner(const char *pkg, const char *root, int ready_fd)
{
	/* Nothing of the caller's but the environment: a pipe it waits on must not stay open for a minute. */
	int null = open("/dev/null", O_RDWR);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	if (ready_fd >= 0 && dup2(ready_fd, 3) < 0)
		_exit(127);
	syscall(SYS_close_range, ready_fd >= 0 ? 4u : 3u, ~0u, 0u);
	if (chdir("/") < 0)
		_exit(127);
	for (int i = 0; i < NFORWARDED; i++)
		signal(FORWARDED[i], SIG_DFL);
	/* Nor the caller's environment: each call brings its own, and a process that outlives the
	 * call must not carry its marks (a test run's tag, a client's secrets) for a minute. */
	char serve[PATH_MAX + 64], path[4096], idle[64];
	const char *caller_path = getenv("PATH"), *caller_idle = getenv("STOCKADE_PLANNER_IDLE_MS");
	snprintf(serve, sizeof serve, "%s=%s", STK_PLANNER_SERVE_ENV, root);
	snprintf(path, sizeof path, "PATH=%s", caller_path != NULL ? caller_path : "/usr/local/bin:/usr/bin:/bin");
	snprintf(idle, sizeof idle, "STOCKADE_PLANNER_IDLE_MS=%s", caller_idle != NULL ? caller_idle : "");
	char *env[] = {serve, path, caller_idle != NULL ? idle : NULL, NULL};
	char bundle[PATH_MAX + 40];
	snprintf(bundle, sizeof bundle, "%s/dist/stockade-planner.js", pkg);
	/* The root on its command line too: `ps` shows which root a planner serves. */
	char *args[] = {"node", bundle, (char *)root, NULL};
	execvpe("node", args, env);
	_exit(127);
}

/* Starts a planner for root, detached (its own session, a grandchild so no client reaps it), and
 * waits until it listens, or has left because another planner holds the root (true: connect to
 * that one); false when it could not start at all. */
static bool start_planner(const char *pkg, const char *root)
{
	int ready[2];
	if (pipe2(ready, O_CLOEXEC) < 0)
		return false;
	pid_t pid = fork();
	if (pid == 0) {
		setsid();
		if (fork() != 0)
			_exit(0);
		exec_planner(pkg, root, ready[1]);
	}
	close(ready[1]);
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	struct pollfd p = {.fd = ready[0], .events = POLLIN};
	char c = 0;
	if (pid > 0 && poll(&p, 1, START_WAIT_MS) > 0 && read(ready[0], &c, 1) != 1)
		c = 0;
	close(ready[0]);
	return c == 'R' || c == 'L';
}

/* Reads one whole frame (blocking). Returns its type, or -1 at EOF or error. */
static int read_frame(int conn, struct buf *in, char **payload, size_t *plen)
{
	for (;;) {
		if (in->len >= 5) {
			uint32_t len;
			memcpy(&len, in->data, 4);
			if (len < 1 || len > FRAME_MAX)
				return -1;
			if (in->len >= 4 + (size_t)len) {
				*payload = in->data + 5;
				*plen = len - 1;
				return (unsigned char)in->data[4];
			}
		}
		char tmp[65536];
		ssize_t n = read(conn, tmp, sizeof tmp);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if (!buf_add(in, tmp, (size_t)n))
			return -1;
	}
}

static void drop_frame(struct buf *in)
{
	uint32_t len;
	memcpy(&len, in->data, 4);
	memmove(in->data, in->data + 4 + len, in->len - 4 - len);
	in->len -= 4 + len;
}

/* A frame is waiting whole in the buffer. */
static bool frame_ready(const struct buf *in)
{
	if (in->len < 5)
		return false;
	uint32_t len;
	memcpy(&len, in->data, 4);
	return in->len >= 4 + (size_t)len;
}

/* Connects to the root's planner of this build, starting one when there is none (or an older one). */
static int reach_planner(const char *pkg, const char *root, const char *sock, struct buf *in)
{
	char bundle[PATH_MAX + 40], want[128];
	snprintf(bundle, sizeof bundle, "%s/dist/stockade-planner.js", pkg);
	if (!build_id(bundle, want, sizeof want))
		return -1;
	struct buf host = {0};
	if (!fingerprint(&host) || !buf_add(&host, "", 1)) {
		free(host.data);
		return -1;
	}
	int conn = -1;
	/* Starts (at most two: one may lose the root to a planner of an older build that is leaving),
	 * and how long after the last one its planner, or another front's, may take to listen. */
	int starts = 0, quits = 0;
	long deadline = 0;
	for (;;) {
		conn = connect_to(sock);
		if (conn < 0) {
			if (deadline == 0 && starts < 2) {
				if (!start_planner(pkg, root))
					break;
				starts++;
				deadline = now_ms() + START_WAIT_MS;
				continue;
			}
			/* Two fronts started one at once: the other's is coming up. */
			if (deadline == 0 || now_ms() > deadline)
				break;
			struct timespec t = {0, 10 * 1000000};
			nanosleep(&t, NULL);
			continue;
		}
		char *p;
		size_t n;
		in->len = 0;
		/* A planner that does not even greet in time is stuck: the call is not left waiting on it. */
		struct pollfd greet = {.fd = conn, .events = POLLIN};
		if (poll(&greet, 1, HELLO_WAIT_MS) <= 0) {
			close(conn);
			conn = -1;
			break;
		}
		int type = read_frame(conn, in, &p, &n);
		if (type != (int)STK_TO_FRONT_HELLO || memchr(p, '\0', n) == NULL) {
			close(conn);
			conn = -1;
			break;
		}
		const char *build = p;
		const char *their_host = p + strlen(p) + 1;
		if ((size_t)(their_host - p) >= n || strcmp(build, want) != 0) {
			/* A planner of another build: it gives the root up at once, and one of this build is started. */
			send_frame(conn, STK_TO_PLANNER_QUIT, NULL, 0);
			close(conn);
			conn = -1;
			if (++quits > 50)
				break;
			deadline = 0;
			struct timespec t = {0, 20 * 1000000};
			nanosleep(&t, NULL);
			continue;
		}
		drop_frame(in);
		if (strcmp(their_host, host.data) != 0) {
			close(conn);
			conn = -1;
		}
		break;
	}
	free(host.data);
	return conn;
}

static void on_signal(int sig)
{
	int saved = errno;
	/* A window size change is the relay's own too (relay.c), whoever else takes it. */
	if (g_relay || (sig == SIGWINCH && relay_active())) {
		unsigned char s = (unsigned char)sig;
		(void)!write(g_sigpipe[1], &s, 1);
	} else if (sig != SIGWINCH && sig != SIGCONT) {
		/* Nothing of the planner's takes it: what a cold call's Node would do, the default, with
		 * the caller's terminal given back first (Node resets its stdio on a fatal signal). */
		relay_restore();
		signal(sig, SIG_DFL);
		raise(sig);
	}
	errno = saved;
}

static bool is_valued_global(const char *name)
{
	return strcmp(name, "root") == 0 || strcmp(name, "log") == 0 || strcmp(name, "log-format") == 0 ||
	       strcmp(name, "isolation") == 0 || strcmp(name, "criu") == 0 || strcmp(name, "rootless") == 0;
}

/* The state root, --isolation (NULL when not given) and command as src/cli/main.ts splitGlobal finds them. */
static const char *root_and_command(char **argv, const char **root, const char **isolation)
{
	*root = STK_DEFAULT_ROOT;
	*isolation = NULL;
	int i = 1;
	if (argv[i] != NULL && strcmp(argv[i], "--") == 0)
		i++;
	for (; argv[i] != NULL && argv[i][0] == '-'; i++) {
		const char *a = argv[i] + (argv[i][1] == '-' ? 2 : 1);
		const char *eq = strchr(a, '=');
		size_t len = eq == NULL ? strlen(a) : (size_t)(eq - a);
		char name[32];
		if (len >= sizeof name)
			continue;
		memcpy(name, a, len);
		name[len] = '\0';
		if (!is_valued_global(name))
			continue;
		const char *value = eq != NULL ? eq + 1 : argv[i + 1];
		if (strcmp(name, "root") == 0 && value != NULL)
			*root = value;
		if (strcmp(name, "isolation") == 0 && value != NULL)
			*isolation = value;
		if (eq == NULL && argv[i + 1] != NULL)
			i++;
	}
	return argv[i];
}

/* What finishes a run once its workload was released, were the planner lost from then on (THEN). */
enum then_kind {
	THEN_NONE,   /* none said: wait for stockade-init and exit with its status */
	THEN_EXIT,   /* a detached run: done */
	THEN_WAIT,   /* an attached run: become stockade-light's wait (then_argv) */
};

struct child {
	pid_t pid;
	int pidfd;
	int plan; /* the plan pipe's write end */
	int sync; /* the sync socket's front end */
	bool exited; /* and reaped: its status below */
	int status;  /* as exit() takes it: the code, or 128 + the signal */
	int signal;  /* the signal that killed it, else 0 */
	bool started; /* this process released the workload (START): the call is never done again */
	enum then_kind then;
	char **then_argv; /* THEN_WAIT's: path, globals, wait, [--keep], ID, PID */
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Reaps stockade-init if it has exited (its pidfd was readable); true when it has. */
static bool reap_init(struct child *c)
{
	siginfo_t si = {0};
	if (c->exited || waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOHANG) != 0 || si.si_pid != c->pid)
		return false;
	c->exited = true;
	bool killed = si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED;
	c->signal = killed ? si.si_status : 0;
	c->status = killed ? 128 + si.si_status : si.si_status;
	return true;
}

static void close_given(void)
{
	for (int k = 0; k < g_ngiven; k++)
		close(g_given[k]);
	g_ngiven = 0;
}

/* FD: the next fd received goes to the next SPAWN or SUPERVISE. */
static int take_fd(void)
{
	if (g_nreceived == 0 || g_ngiven == MAX_FDS)
		return -1;
	g_given[g_ngiven++] = g_received[0];
	memmove(g_received, g_received + 1, (size_t)(g_nreceived - 1) * sizeof g_received[0]);
	g_nreceived--;
	return 0;
}

/* Reads what the planner sent, keeping the fds that came with it (close-on-exec) in order. */
static ssize_t receive(int conn, char *tmp, size_t size)
{
	union {
		struct cmsghdr h;
		char space[CMSG_SPACE(sizeof(int) * MAX_FDS)];
	} control;
	struct iovec iov = {.iov_base = tmp, .iov_len = size};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof control};
	ssize_t r = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
	if (r < 0)
		return r;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *fds = (int *)CMSG_DATA(c);
		for (size_t k = 0; k < n; k++) {
			if (g_nreceived < MAX_FDS)
				g_received[g_nreceived++] = fds[k];
			else
				close(fds[k]);
		}
	}
	return r;
}

/* After a fork whose child execs: the errno the child wrote on its report pipe (close-on-exec, so
 * a successful exec writes nothing), the child then reaped; 0 when the exec went through. Closes
 * the pipe's read end. */
static int exec_failed(pid_t pid, int report_rd)
{
	int child_err = 0;
	ssize_t got;
	while ((got = read(report_rd, &child_err, sizeof child_err)) < 0 && errno == EINTR)
		;
	close(report_rd);
	if (got != (ssize_t)sizeof child_err)
		return 0;
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return child_err;
}

/* SPAWN: stockade-init with the caller's fds 0 .. planFd-1, its plan pipe at planFd and sync socket at syncFd. */
static int spawn_init(int conn, struct child *c, const char *p, size_t n)
{
	if (n < 12 || memchr(p + 12, '\0', n - 12) == NULL)
		return -1;
	int32_t v[3];
	memcpy(v, p, 12);
	int plan_fd = v[1], sync_fd = v[2];
	/* path, then its arguments, each NUL-terminated */
	char *args[8] = {0};
	int argc = 0;
	for (const char *s = p + 12; s < p + n && argc < 7; s += strlen(s) + 1)
		args[argc++] = (char *)s;
	if (argc < 1 || plan_fd < 3 || sync_fd != plan_fd + 1)
		return -1;
	int plan[2], sync[2], report[2];
	if (pipe2(plan, O_CLOEXEC) < 0)
		return send_ints(conn, STK_TO_PLANNER_SPAWN_FAILED, errno, 0);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync) < 0 || pipe2(report, O_CLOEXEC) < 0)
		return send_ints(conn, STK_TO_PLANNER_SPAWN_FAILED, errno, 0);
	pid_t pid = fork();
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		for (int i = 0; i < NFORWARDED; i++)
			signal(FORWARDED[i], SIG_DFL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		/* Out of the way of planFd and syncFd first, then into place (dup2 clears close-on-exec). */
		int lo = plan_fd + 2 + g_ngiven;
		int r = fcntl(plan[0], F_DUPFD_CLOEXEC, lo), s = fcntl(sync[1], F_DUPFD_CLOEXEC, lo);
		int e = fcntl(report[1], F_DUPFD_CLOEXEC, lo);
		/* The fds the planner passed (the sentry's socket) go after the sync socket, in order. */
		int moved[MAX_FDS];
		bool ok = r >= 0 && s >= 0 && e >= 0;
		for (int k = 0; ok && k < g_ngiven; k++)
			ok = (moved[k] = fcntl(g_given[k], F_DUPFD_CLOEXEC, lo)) >= 0;
		ok = ok && dup2(r, plan_fd) >= 0 && dup2(s, sync_fd) >= 0;
		for (int k = 0; ok && k < g_ngiven; k++)
			ok = dup2(moved[k], sync_fd + 1 + k) >= 0;
		if (!ok) {
			int err = errno;
			(void)!write(e, &err, sizeof err);
			_exit(127);
		}
		execv(args[0], args);
		int err = errno;
		(void)!write(e, &err, sizeof err);
		_exit(127);
	}
	int err = errno;
	close(plan[0]);
	close(sync[1]);
	close(report[1]);
	close_given();
	if (pid < 0) {
		close(plan[1]);
		close(sync[0]);
		close(report[0]);
		return send_ints(conn, STK_TO_PLANNER_SPAWN_FAILED, err, 0);
	}
	int child_err = exec_failed(pid, report[0]);
	if (child_err != 0) {
		close(plan[1]);
		close(sync[0]);
		return send_ints(conn, STK_TO_PLANNER_SPAWN_FAILED, child_err, 0);
	}
	c->pid = pid;
	c->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	c->plan = plan[1];
	c->sync = sync[0];
	c->exited = false;
	return send_ints(conn, STK_TO_PLANNER_SPAWNED, pid, 0);
}

/* SUPERVISE (flags, nfds, the fd map, argc, then path, argv, env): a container's supervisor (the
 * sentry, its watch, a VM's keeper), started here as Node's spawn would start it in a cold call
 * (signals at their defaults and unblocked, a session of its own when asked, only the fds the map
 * names), so that it is this call's descendant and not the planner's. Answers SUPERVISED or
 * SUPERVISE_FAILED; the fds the planner passed are closed here either way. */
static int supervise(int conn, const char *p, size_t n)
{
	int32_t head[2];
	if (n < sizeof head)
		return -1;
	memcpy(head, p, sizeof head);
	int32_t flags = head[0], nfds = head[1];
	if (nfds < 0 || nfds > 64 || n < (size_t)(3 + nfds) * 4 || g_nsup == MAX_SUPERVISORS)
		return -1;
	int32_t map[64], argc;
	memcpy(map, p + 8, (size_t)nfds * 4);
	memcpy(&argc, p + 8 + (size_t)nfds * 4, 4);
	const char *str = p + 12 + (size_t)nfds * 4, *end = p + n;
	if (argc < 1 || argc > 4096 || str >= end || end[-1] != '\0')
		return -1;
	for (int i = 0; i < nfds; i++)
		if (map[i] < STK_SUPERVISE_FD_OWN || map[i] >= g_ngiven)
			return -1;
	/* path, argv[argc], env... */
	size_t count = 0;
	for (const char *q = str; q < end; q += strlen(q) + 1)
		count++;
	if (count < (size_t)argc + 1)
		return -1;
	char **list = calloc(count + 2, sizeof *list);
	if (list == NULL)
		return -1;
	size_t k = 0;
	for (const char *q = str; q < end; q += strlen(q) + 1)
		list[k++] = (char *)q;
	char *path = list[0], **args = list + 1, **env = list + 1 + argc + 1;
	/* argv ends where env begins: shifted by one to make room for argv's NULL. */
	memmove(env, list + 1 + argc, (count - 1 - (size_t)argc) * sizeof *list);
	args[argc] = NULL;
	env[count - 1 - (size_t)argc] = NULL;

	int report[2];
	if (pipe2(report, O_CLOEXEC) < 0) {
		free(list);
		close_given();
		return send_ints(conn, STK_TO_PLANNER_SUPERVISE_FAILED, errno, 0);
	}
	pid_t pid = fork();
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		for (int sig = 1; sig < NSIG; sig++)
			if (sig != SIGKILL && sig != SIGSTOP)
				signal(sig, SIG_DFL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if ((flags & STK_SUPERVISE_SETSID) != 0)
			setsid();
		/* Each source out of the way of every target first, then into place. */
		int lo = nfds + 3, moved[64];
		int e = fcntl(report[1], F_DUPFD_CLOEXEC, lo);
		bool ok = e >= 0;
		for (int i = 0; ok && i < nfds; i++) {
			int from = map[i] == STK_SUPERVISE_FD_NULL ? open("/dev/null", (i == 0 ? O_RDONLY : O_RDWR) | O_CLOEXEC)
				 : map[i] == STK_SUPERVISE_FD_OWN ? i : g_given[map[i]];
			ok = from >= 0 && (moved[i] = fcntl(from, F_DUPFD_CLOEXEC, lo)) >= 0;
		}
		for (int i = 0; ok && i < nfds; i++)
			ok = dup2(moved[i], i) >= 0;
		/* Nothing else of the caller's or of this process: the rest close at the exec. */
		ok = ok && syscall(SYS_close_range, (unsigned)nfds, ~0u, 4u /* CLOSE_RANGE_CLOEXEC */) == 0;
		if (ok)
			execve(path, args, env);
		int err = errno;
		(void)!write(e, &err, sizeof err);
		_exit(127);
	}
	int err = errno;
	free(list);
	close(report[1]);
	close_given();
	if (pid < 0) {
		close(report[0]);
		return send_ints(conn, STK_TO_PLANNER_SUPERVISE_FAILED, err, 0);
	}
	int child_err = exec_failed(pid, report[0]);
	if (child_err != 0)
		return send_ints(conn, STK_TO_PLANNER_SUPERVISE_FAILED, child_err, 0);
	struct supervisor *v = &g_sup[g_nsup++];
	v->pid = pid;
	v->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	v->exited = false;
	v->status = 0;
	return send_ints(conn, STK_TO_PLANNER_SUPERVISED, pid, 0);
}

/* A supervisor's pidfd is readable: reaped and said (SUPERVISOR_EXIT pid code signal). */
static void supervisor_ended(int conn, struct supervisor *v)
{
	siginfo_t si = {0};
	if (waitid(P_PID, (id_t)v->pid, &si, WEXITED | WNOHANG) != 0 || si.si_pid != v->pid)
		return;
	v->exited = true;
	bool killed = si.si_code == CLD_KILLED || si.si_code == CLD_DUMPED;
	v->status = killed ? 128 + si.si_status : si.si_status;
	close_fd(&v->pidfd);
	int32_t said[3] = {v->pid, killed ? -1 : si.si_status, killed ? si.si_status : 0};
	send_frame(conn, STK_TO_PLANNER_SUPERVISOR_EXIT, said, sizeof said);
}

/* The planner was lost before the call's commit point: what it had started here goes with it. */
static void end_supervisors(void)
{
	for (int i = 0; i < g_nsup; i++) {
		struct supervisor *v = &g_sup[i];
		if (v->exited)
			continue;
		kill(v->pid, SIGKILL);
		while (waitpid(v->pid, NULL, 0) < 0 && errno == EINTR)
			;
		v->exited = true;
		close_fd(&v->pidfd);
	}
}

/* Becomes the wait at path (stockade-light wait), with the forwarded signals blocked across the
 * exec and those caught but not yet relayed made pending again: the wait forwards them. Returns
 * the exec's errno, the mask restored, only when the exec failed. */
static int exec_wait(const char *path, char *const argv[])
{
	sigset_t held, old;
	sigemptyset(&held);
	for (int i = 0; i < NFORWARDED; i++)
		sigaddset(&held, FORWARDED[i]);
	sigprocmask(SIG_BLOCK, &held, &old);
	unsigned char s;
	while (read(g_sigpipe[0], &s, 1) == 1)
		raise(s);
	execv(path, argv);
	int err = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	return err;
}

/* WAIT (path, then argv): become stockade-light's wait, the caller's forwarded signals held pending
 * across the execve. Not once stockade-init is reaped: the planner then waits and deletes, as Node
 * does when its event loop reaped stockade-init first. */
static void become_wait(int conn, const struct child *c, const char *p, size_t n)
{
	if (c->exited) {
		send_ints(conn, STK_TO_PLANNER_WAIT_FAILED, ECHILD, 0);
		return;
	}
	char **args = calloc(n + 1, sizeof *args);
	if (args == NULL || n == 0 || p[n - 1] != '\0') {
		send_ints(conn, STK_TO_PLANNER_WAIT_FAILED, EINVAL, 0);
		free(args);
		return;
	}
	int argc = 0;
	for (const char *s = p; s < p + n; s += strlen(s) + 1)
		args[argc++] = (char *)s;
	int err = exec_wait(args[0], args + 1);
	free(args);
	send_ints(conn, STK_TO_PLANNER_WAIT_FAILED, err, 0);
}

/* START (the start socket's path, then the hook state): releases the container from here, as
 * src/namespaces/start.ts does, so that whether the workload was released is known in the process
 * that lives as long as the call. Answers STARTED: the connect's errno, or 0 and every byte
 * stockade-init sent until it closed the connection (its error, if its exec or hook failed). */
static int release_start(int conn, struct child *c, const char *p, size_t n, bool raw)
{
	const char *nul = memchr(p, '\0', n);
	if (nul == NULL)
		return -1;
	const char *path = p, *hook = nul + 1;
	size_t hook_len = n - (size_t)(hook - p);
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int dirfd = -1;
	if (strlen(path) < sizeof addr.sun_path)
		strcpy(addr.sun_path, path);
	else {
		/* sun_path holds 107 bytes; a long --root is reached through a directory fd instead. */
		char dir[PATH_MAX];
		const char *slash = strrchr(path, '/');
		if (slash == NULL || (size_t)(slash - path) >= sizeof dir)
			return send_ints(conn, STK_TO_PLANNER_STARTED, ENAMETOOLONG, 0);
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
		dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dirfd < 0)
			return send_ints(conn, STK_TO_PLANNER_STARTED, errno, 0);
		snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/%s", dirfd, slash + 1);
	}
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) {
		int err = errno;
		if (s >= 0)
			close(s);
		if (dirfd >= 0)
			close(dirfd);
		return send_ints(conn, STK_TO_PLANNER_STARTED, err, 0);
	}
	if (dirfd >= 0)
		close(dirfd);
	/* The status reads "running" from here on; a second start finds no socket and is refused. A
	 * VM's keeper (RELEASE, raw: the bytes are the keeper's own request) keeps its socket. */
	if (!raw)
		unlink(path);
	c->started = true;
	uint32_t head[2] = {STK_MSG_START, (uint32_t)hook_len}; /* little-endian, as the init protocol */
	struct buf said = {0};
	int32_t ok = 0;
	bool sent = buf_add(&said, &ok, sizeof ok);
	if ((raw || send_full(s, head, sizeof head) == 0) && (hook_len == 0 || send_full(s, hook, hook_len) == 0)) {
		char tmp[4096];
		ssize_t r;
		while ((r = read(s, tmp, sizeof tmp)) > 0 || (r < 0 && errno == EINTR))
			if (r > 0)
				sent = sent && buf_add(&said, tmp, (size_t)r);
	}
	close(s);
	int rc = sent ? send_frame(conn, STK_TO_PLANNER_STARTED, said.data, said.len) : -1;
	free(said.data);
	return rc;
}

/* What relay_stdin read of the caller's stdin, kept for a cold retry: were the planner lost, Node
 * would find fd 0 drained. */
static struct buf g_stdin;
static bool g_stdin_taken;

/* STDIN: the caller's stdin, read here to its end and sent on (update --resources -, as
 * containerd's shim gives them); STDIN_END says 0 or the errno Node's read would have met. */
static int relay_stdin(int conn)
{
	char tmp[65536];
	g_stdin_taken = true;
	for (;;) {
		ssize_t r = read(0, tmp, sizeof tmp);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			/* Nothing was taken that a cold read would not meet again. */
			g_stdin_taken = g_stdin.len > 0;
			return send_ints(conn, STK_TO_PLANNER_STDIN_END, errno, 0);
		}
		if (r == 0)
			return send_ints(conn, STK_TO_PLANNER_STDIN_END, 0, 0);
		(void)buf_add(&g_stdin, tmp, (size_t)r);
		if (send_frame(conn, STK_TO_PLANNER_STDIN_DATA, tmp, (size_t)r) < 0)
			return -1;
	}
}

/* The call goes cold after this process read the caller's stdin: what it read is fd 0 again, in a
 * memfd at its start, so the cold call reads the same bytes. */
static void give_stdin_back(void)
{
	if (!g_stdin_taken)
		return;
	int fd = (int)syscall(SYS_memfd_create, "stockade-stdin", 0u);
	if (fd < 0)
		return;
	if (put_full(fd, g_stdin.data, g_stdin.len, false) == 0 && lseek(fd, 0, SEEK_SET) == 0)
		dup2(fd, 0);
	close(fd);
}

/* THEN: an empty one for a detached run, else the wait's argv. */
static int keep_then(struct child *c, const char *p, size_t n)
{
	if (n == 0) {
		c->then = THEN_EXIT;
		return 0;
	}
	if (p[n - 1] != '\0')
		return -1;
	size_t count = 0;
	for (size_t i = 0; i < n; i++)
		count += p[i] == '\0';
	char **args = calloc(count + 1, sizeof *args);
	char *copy = malloc(n);
	if (args == NULL || copy == NULL || count < 4) {
		free(args);
		free(copy);
		return -1;
	}
	memcpy(copy, p, n);
	size_t k = 0;
	for (char *s = copy; s < copy + n; s += strlen(s) + 1)
		args[k++] = s;
	c->then = THEN_WAIT;
	c->then_argv = args;
	return 0;
}

/* After the relay's master ends, how long its output may take (as src/container/run.ts waits). */
#define RELAY_REST_MS 500

/*
 * The planner is gone while this process relays the caller's terminal (an attached run or exec
 * with a terminal, a `do` at a terminal): becoming the wait would drop the relay, so this process
 * goes on relaying and passes the caller's signals to the container's init (its light record says
 * which, as the wait finds it), until stockade-init exits and the rest of the output is read; the
 * caller's terminal is then given back. Only for a container known from the wait's argv.
 */
static void relay_until_exit(struct child *c)
{
	int target = -1;
	if (c->then == THEN_WAIT) {
		size_t argc = 0;
		while (c->then_argv[argc] != NULL)
			argc++;
		if (argc >= 5 && strcmp(c->then_argv[1], "--root") == 0)
			target = light_container_pidfd(c->then_argv[2], c->then_argv[argc - 2]);
	}
	long end = 0;
	for (;;) {
		/* Without a pidfd to tell its exit, the relay's end is the sign (finish_started waits then). */
		if (!c->exited && c->pidfd < 0 && !relay_output_open())
			break;
		if (c->exited) {
			if (!relay_output_open())
				break;
			if (end == 0)
				end = now_ms() + RELAY_REST_MS;
			if (now_ms() >= end)
				break;
		}
		struct pollfd fds[4] = {
		    {.fd = g_sigpipe[0], .events = POLLIN},
		    {.fd = c->exited || c->pid <= 0 ? -1 : c->pidfd, .events = POLLIN},
		};
		relay_pollfds(&fds[2]);
		if (poll(fds, 4, c->exited ? (int)(end - now_ms()) : -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[0].revents != 0) {
			unsigned char s;
			while (read(g_sigpipe[0], &s, 1) == 1) {
				if (s == SIGWINCH)
					relay_resize();
				if (target >= 0)
					(void)syscall(SYS_pidfd_send_signal, target, s, NULL, 0);
			}
		}
		if (fds[1].revents != 0)
			reap_init(c);
		relay_serve(&fds[2]);
	}
	if (target >= 0)
		close(target);
	relay_stop();
}

/* The planner is gone after this process released the workload: the call ends here, as the run
 * would have, and is never done again. */
static void __attribute__((noreturn)) finish_started(struct child *c)
{
	if (c->then == THEN_EXIT)
		exit(0);
	if (relay_active())
		relay_until_exit(c);
	relay_stop();
	/* The process the wait waits for (its last argument): stockade-init, or a VM's keeper (a supervisor). */
	pid_t helper = c->pid;
	bool exited = c->exited;
	int status = c->status;
	if (c->then == THEN_WAIT) {
		size_t last = 0;
		while (c->then_argv[last + 1] != NULL)
			last++;
		pid_t named = (pid_t)atoi(c->then_argv[last]);
		for (int i = 0; i < g_nsup; i++)
			if (g_sup[i].pid == named && named != c->pid) {
				helper = named;
				exited = g_sup[i].exited;
				status = g_sup[i].status;
			}
	}
	if (c->then == THEN_WAIT && !exited) {
		exec_wait(c->then_argv[0], c->then_argv);
	}
	if (!exited && helper > 0) {
		int ws;
		while (waitpid(helper, &ws, 0) < 0 && errno == EINTR)
			;
		status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
	}
	if (c->then == THEN_WAIT) {
		/* path, globals..., wait, [--keep], ID, PID: the wait's own delete, unless --keep. */
		size_t argc = 0;
		while (c->then_argv[argc] != NULL)
			argc++;
		size_t at = argc - 3;
		bool keep = strcmp(c->then_argv[at], "--keep") == 0;
		if (keep)
			at--;
		if (!keep && strcmp(c->then_argv[at], "wait") == 0) {
			char *id = c->then_argv[argc - 2];
			c->then_argv[at] = "delete";
			c->then_argv[at + 1] = "--force";
			c->then_argv[at + 2] = id;
			c->then_argv[at + 3] = NULL;
			pid_t d = fork();
			if (d == 0) {
				execv(c->then_argv[0], c->then_argv);
				_exit(127);
			}
			while (d > 0 && waitpid(d, NULL, 0) < 0 && errno == EINTR)
				;
		}
	}
	exit(status);
}

/* The planner is gone mid-call. */
static void lost(struct child *c, const char *undo_id)
{
	if (c->started) {
		close_fd(&c->plan);
		close_fd(&c->sync);
		finish_started(c);
	}
	close_fd(&c->plan);
	close_fd(&c->sync);
	/* Not released: nothing the planner had started here may stay (a sentry, its watch, a keeper),
	 * and the cold call that follows starts its own. */
	end_supervisors();
	if (undo_id != NULL) {
		/* It had taken an id: its container is removed by the cold path, which then does the whole
		 * call (and relays the caller's terminal itself, from its start). */
		relay_stop();
		if (c->pid > 0 && !c->exited) {
			kill(c->pid, SIGKILL);
			while (waitpid(c->pid, NULL, 0) < 0 && errno == EINTR)
				;
		}
		setenv(STK_PLANNER_LOST_ENV, undo_id, 1);
		return;
	}
	if (c->pid > 0) {
		/* An exec's process: stockade-init, in monitor mode, exits with its status. */
		if (relay_active())
			relay_until_exit(c);
		relay_stop();
		if (c->exited)
			exit(c->status);
		int status;
		while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR)
			;
		exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	}
	relay_stop();
}

/* The caller's terminal back as it was, however this process exits while it relays. */
static void restore_at_exit(void) { relay_stop(); }

/* Serves the call through the planner; returns only when Node must do it (the cold path). */
static void through_planner(int conn, char **argv)
{
	struct buf req = {0};
	char cwd[PATH_MAX];
	if (getcwd(cwd, sizeof cwd) == NULL)
		return;
	mode_t mask = umask(0);
	umask(mask);
	char num[32];
	int argc = 0;
	int first = argv[1] != NULL && strcmp(argv[1], "--") == 0 ? 2 : 1;
	while (argv[first + argc] != NULL)
		argc++;
	bool ok = buf_str(&req, cwd);
	snprintf(num, sizeof num, "%o", (unsigned)mask);
	ok = ok && buf_str(&req, num);
	/* The caller's cgroup: a container's relative cgroupsPath goes below it, as in a cold call. */
	ok = ok && read_file("/proc/self/cgroup", &req) && buf_add(&req, "", 1);
	snprintf(num, sizeof num, "%d", argc);
	ok = ok && buf_str(&req, num);
	for (int i = 0; i < argc; i++)
		ok = ok && buf_str(&req, argv[first + i]);
	for (char **e = environ; *e != NULL; e++)
		ok = ok && buf_str(&req, *e);
	if (!ok || pipe2(g_sigpipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return;
	struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < NFORWARDED; i++)
		sigaction(FORWARDED[i], &sa, NULL);
	atexit(restore_at_exit);
	/* Who asks: what a call takes from its own process (`do` names its container after the pid and
	 * ties it to this process; a terminal on stdin gives it one) is this process's. */
	int ttys = (isatty(0) ? 1 : 0) | (isatty(1) ? 2 : 0) | (isatty(2) ? 4 : 0);
	if (send_ints(conn, STK_TO_PLANNER_CALLER, (int)getpid(), ttys) < 0 ||
	    send_frame(conn, STK_TO_PLANNER_REQUEST, req.data, req.len) < 0)
		return;
	free(req.data);

	struct child c = {.pid = -1, .pidfd = -1, .plan = -1, .sync = -1};
	struct buf in = {0};
	char *undo = NULL;
	bool eof = false;
	for (;;) {
		while (frame_ready(&in)) {
			uint32_t len;
			memcpy(&len, in.data, 4);
			unsigned type = (unsigned char)in.data[4];
			char *p = in.data + 5;
			size_t n = len - 1;
			switch (type) {
			case STK_TO_FRONT_COLD:
				if (c.pid > 0 || undo != NULL) {
					lost(&c, undo);
					return;
				}
				close(conn);
				return;
			case STK_TO_FRONT_OUT:
			case STK_TO_FRONT_ERR:
				(void)write_full(type == STK_TO_FRONT_OUT ? 1 : 2, p, n);
				break;
			case STK_TO_FRONT_UNDO:
				free(undo);
				undo = n > 1 ? strndup(p, n - 1) : NULL;
				break;
			case STK_TO_FRONT_SPAWN:
				if (c.pid > 0 || spawn_init(conn, &c, p, n) < 0) {
					lost(&c, undo);
					return;
				}
				break;
			case STK_TO_FRONT_PLAN:
				if (c.plan >= 0)
					(void)write_full(c.plan, p, n);
				close_fd(&c.plan);
				break;
			case STK_TO_FRONT_SYNC:
				if (c.sync >= 0)
					(void)write_full(c.sync, p, n);
				break;
			case STK_TO_FRONT_SYNC_CLOSE:
				close_fd(&c.sync);
				break;
			case STK_TO_FRONT_RELAY:
				g_relay = n >= 4 && p[0] != 0;
				break;
			case STK_TO_FRONT_WAIT:
				become_wait(conn, &c, p, n);
				break;
			case STK_TO_FRONT_THEN:
				if (keep_then(&c, p, n) < 0) {
					lost(&c, undo);
					return;
				}
				break;
			case STK_TO_FRONT_START:
			case STK_TO_FRONT_RELEASE:
				if (release_start(conn, &c, p, n, type == STK_TO_FRONT_RELEASE) < 0 && !c.started) {
					lost(&c, undo);
					return;
				}
				break;
			case STK_TO_FRONT_FD:
				if (take_fd() < 0) {
					lost(&c, undo);
					return;
				}
				break;
			case STK_TO_FRONT_SUPERVISE:
				if (supervise(conn, p, n) < 0) {
					lost(&c, undo);
					return;
				}
				break;
			case STK_TO_FRONT_TTY:
				/* The master came with this frame: from now on the caller's terminal is relayed to it. */
				if (g_nreceived == 0) {
					lost(&c, undo);
					return;
				}
				relay_start(g_received[0]);
				memmove(g_received, g_received + 1, (size_t)(g_nreceived - 1) * sizeof g_received[0]);
				g_nreceived--;
				break;
			case STK_TO_FRONT_TTY_STOP:
				relay_stop();
				break;
			case STK_TO_FRONT_STDIN:
				(void)relay_stdin(conn);
				break;
			case STK_TO_FRONT_DONE: {
				int32_t code = 1;
				if (n >= 4)
					memcpy(&code, p, 4);
				exit(code);
			}
			default:
				lost(&c, undo);
				return;
			}
			drop_frame(&in);
		}
		if (eof) {
			lost(&c, undo);
			return;
		}
		struct pollfd fds[6 + MAX_SUPERVISORS] = {
		    {.fd = conn, .events = POLLIN},
		    {.fd = g_sigpipe[0], .events = POLLIN},
		    {.fd = c.sync, .events = POLLIN},
		    {.fd = c.exited ? -1 : c.pidfd, .events = POLLIN},
		};
		relay_pollfds(&fds[4]);
		for (int i = 0; i < g_nsup; i++)
			fds[6 + i] = (struct pollfd){.fd = g_sup[i].exited ? -1 : g_sup[i].pidfd, .events = POLLIN};
		if (poll(fds, (nfds_t)(6 + g_nsup), -1) < 0) {
			if (errno == EINTR)
				continue;
			lost(&c, undo);
			return;
		}
		if (fds[0].revents != 0) {
			char tmp[65536];
			ssize_t r = receive(conn, tmp, sizeof tmp);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0 || !buf_add(&in, tmp, (size_t)r))
				eof = true;
		}
		if (fds[1].revents != 0) {
			unsigned char s;
			while (read(g_sigpipe[0], &s, 1) == 1) {
				if (s == SIGWINCH)
					relay_resize();
				if (g_relay)
					send_ints(conn, STK_TO_PLANNER_SIGNAL, s, 0);
			}
		}
		if (fds[2].revents != 0) {
			char tmp[65536];
			ssize_t r = read(c.sync, tmp, sizeof tmp);
			if (r > 0)
				send_frame(conn, STK_TO_PLANNER_SYNC, tmp, (size_t)r);
			else if (r == 0 || errno != EINTR) {
				close_fd(&c.sync);
				send_frame(conn, STK_TO_PLANNER_SYNC_EOF, NULL, 0);
			}
		}
		if (fds[3].revents != 0) {
			/* Reaped at once, as Node reaps its child: an unreaped stockade-init would still count in
			 * the container's cgroup (pids.current, and a cgroup that will not go). The planner
			 * signals it only until it hears of this exit. */
			if (reap_init(&c))
				send_ints(conn, STK_TO_PLANNER_EXIT, c.signal != 0 ? -1 : c.status, c.signal);
		}
		/* The master's output read to its end: the planner stops waiting for it. */
		if (relay_serve(&fds[4]))
			send_frame(conn, STK_TO_PLANNER_TTY_ENDED, NULL, 0);
		for (int i = 0; i < g_nsup; i++)
			if (fds[6 + i].revents != 0)
				supervisor_ended(conn, &g_sup[i]);
	}
}

/* A `do` that asks for another level with its own options (--isolation, or --allow-net, which
 * needs the sentry's network policy): declined by the planner anyway (eligible.ts), so not asked. */
static bool do_elsewhere(char **argv, const char *command)
{
	int i = 1;
	while (argv[i] != NULL && argv[i] != command)
		i++;
	for (i++; argv[i] != NULL && strcmp(argv[i], "--") != 0; i++) {
		const char *a = argv[i];
		if (a[0] != '-')
			continue;
		a += a[1] == '-' ? 2 : 1;
		if (strncmp(a, "allow-net", 9) == 0 && (a[9] == '\0' || a[9] == '='))
			return true;
		if (strncmp(a, "isolation", 9) != 0 || (a[9] != '\0' && a[9] != '='))
			continue;
		const char *level = a[9] == '=' ? a + 10 : argv[i + 1];
		if (level != NULL && strcmp(level, "namespaces") != 0)
			return true;
	}
	return false;
}

void planner_try(char **argv)
{
	/* The planner is the default; STOCKADE_PLANNER=off sends every call to Node, as before it. */
	const char *mode = getenv("STOCKADE_PLANNER");
	if ((mode != NULL && strcmp(mode, "off") == 0) || getenv(STK_PLANNER_LOST_ENV) != NULL)
		return;
	const char *root, *isolation;
	const char *command = root_and_command(argv, &root, &isolation);
	/* Another level is declined by the planner anyway (src/planner/eligible.ts): not even asked. */
	static const char *const LEVELS[] = STK_PLANNER_LEVELS;
	bool level = isolation == NULL;
	for (size_t i = 0; i < sizeof LEVELS / sizeof LEVELS[0]; i++)
		level = level || strcmp(isolation, LEVELS[i]) == 0;
	/* `do` is served at namespaces only: another level, even at the top, is not asked. */
	if (command == NULL || !level || (strcmp(command, "do") == 0 && isolation != NULL && strcmp(isolation, "namespaces") != 0))
		return;
	bool served = false;
	for (size_t i = 0; i < sizeof SERVED / sizeof SERVED[0]; i++)
		served = served || strcmp(command, SERVED[i]) == 0;
	if (served && strcmp(command, "do") == 0 && do_elsewhere(argv, command))
		return;
	/* A streaming events is declined (it would hold the planner for as long as it is read): no
	 * planner is started only to say so. --stats, a single answer, is asked. */
	if (served && strcmp(command, "events") == 0) {
		bool stats = false;
		for (char **a = argv; *a != NULL; a++)
			if (*a == command)
				for (char **b = a + 1; *b != NULL && strcmp(*b, "--") != 0; b++)
					stats = stats || strncmp(*b, "--stats", 7) == 0;
		served = stats;
	}
	char real[PATH_MAX], pkg[PATH_MAX], sock[PATH_MAX + 32];
	/* A root that does not exist yet is made by the cold call, as it would be without a planner. */
	if (!served || realpath(root, real) == NULL || !package_dir(pkg, sizeof pkg))
		return;
	snprintf(sock, sizeof sock, "%s/%s", real, STK_PLANNER_SOCKET);
	/* A root too deep for a socket address has no planner: its calls run cold. */
	if (strlen(sock) >= sizeof ((struct sockaddr_un *)0)->sun_path)
		return;
	/* A closed fd 0, 1 or 2 is /dev/null, as Node makes it at its start: what the cold call reads,
	 * writes and hands stockade-init. Else the planner's socket would take the lowest free fd, and
	 * the caller's stdin or stdout would be it. */
	for (int fd = 0; fd <= 2; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF) {
			int null = open("/dev/null", O_RDWR);
			if (null < 0)
				return;
			if (null != fd) {
				dup2(null, fd);
				close(null);
			}
		}
	struct buf in = {0};
	int conn = reach_planner(pkg, real, sock, &in);
	if (conn < 0)
		return;
	free(in.data);
	through_planner(conn, argv);
	relay_stop();
	close_given();
	for (int k = 0; k < g_nreceived; k++)
		close(g_received[k]);
	g_nreceived = 0;
	give_stdin_back();
	for (int i = 0; i < NFORWARDED; i++)
		signal(FORWARDED[i], SIG_DFL);
}

/* The parent of pid as /proc shows it; 0 when it cannot be read (gone, or not in this pid namespace). */
static pid_t parent_of(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	struct buf b = {0};
	pid_t ppid = 0;
	if (read_file(path, &b) && buf_add(&b, "", 1)) {
		/* pid (comm) state ppid ...: comm may hold spaces and parentheses, so from the last ')' */
		char *close = strrchr(b.data, ')');
		int parsed;
		char state;
		if (close != NULL && sscanf(close + 1, " %c %d", &state, &parsed) == 2)
			ppid = (pid_t)parsed;
	}
	free(b.data);
	return ppid;
}

void planner_rehome(const char *root)
{
	const char *mode = getenv("STOCKADE_PLANNER");
	if (mode != NULL && strcmp(mode, "off") == 0)
		return;
	char real[PATH_MAX], pkg[PATH_MAX], sock[PATH_MAX + 32];
	if (realpath(root, real) == NULL || !package_dir(pkg, sizeof pkg))
		return;
	snprintf(sock, sizeof sock, "%s/%s", real, STK_PLANNER_SOCKET);
	int conn = connect_to(sock);
	if (conn < 0)
		return;
	struct ucred cred;
	socklen_t len = sizeof cred;
	/* Adopted by init (parent 1) already, or not to be seen from here: nothing to do. */
	if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || parent_of(cred.pid) <= 1) {
		close(conn);
		return;
	}
	/* A byte once mid is reaped here: by then the kernel has given its orphan to its new parent. */
	int go[2];
	if (pipe2(go, O_CLOEXEC) < 0) {
		close(conn);
		return;
	}
	pid_t pid = fork();
	if (pid == 0) {
		/* The caller's stdio at once: podman reads this call's output to its end. The connection
		 * to the old planner at fd 3, for the QUIT; the go pipe at fd 4. */
		int null = open("/dev/null", O_RDWR);
		/* Out of the way of 3 and 4 first, then into place. */
		int c = fcntl(conn, F_DUPFD_CLOEXEC, 10), g = fcntl(go[0], F_DUPFD_CLOEXEC, 10);
		if (null < 0 || c < 0 || g < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 || dup2(c, 3) < 0 || dup2(g, 4) < 0)
			_exit(127);
		syscall(SYS_close_range, 5u, ~0u, 0u);
		setsid();
		if (fork() != 0)
			_exit(0);
		/* Whose child this process is once mid is gone: init's, or a subreaper's between this call
		 * and init (then it would be no better placed than the planner it replaces). */
		char byte;
		while (read(4, &byte, 1) < 0 && errno == EINTR)
			;
		close(4);
		if (getppid() != 1)
			_exit(0);
		/* The old planner gives the root up at once and leaves when its call, if any, is done. */
		send_frame(3, STK_TO_PLANNER_QUIT, NULL, 0);
		close(3);
		exec_planner(pkg, real, -1);
	}
	close(conn);
	close(go[0]);
	while (pid > 0 && waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	(void)!write(go[1], "g", 1);
	close(go[1]);
}
