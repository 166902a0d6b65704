/*
 * stockade-light: the CLI calls that only act on a container that already exists — start, kill,
 * delete — served without starting Node; `wait`, what `do` and an attached `run` become once
 * their container runs; and `sentry-watch` (watch.c), which create leaves beside a sentry container.
 *
 * Clients call the runtime three or four times per container and Node's own start-up is most of
 * each call, so these calls are done here when the container is a plain one, and handed to the
 * TypeScript CLI (exec node) in every other case. Nothing is decided here: `create` computed, in
 * TypeScript, what these calls need and wrote it to <root>/<id>/light (src/container/light.ts);
 * a container without that file (it has hooks, or an older stockade made it) always goes to Node.
 *
 * The rule that keeps this safe: anything unexpected — an unknown flag, a status other than the
 * one the call needs, a frozen cgroup, a failed step — goes to Node before anything irreversible
 * happens, or after a step that Node repeats harmlessly (delete). Node then does the whole call
 * and writes any error in the runtime's format. STOCKADE_LIGHT=off sends every call to Node.
 */
#include <dirent.h>
#include <endian.h>
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
#include <strings.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stockade-abi.h"
#include "planner.h"
#include "relay.h"
#include "watch.h"

/* The state root, id rules, light record, start socket and status rules come from TypeScript
 * through stockade-abi.h (src/tools/gen-header.ts): both sides read them from one definition. */
#define MAX_CGROUPS 32
#define MAX_FREEZERS 8

static char **g_argv;

struct freezer_check {
	char *file;
	char *thawed;
};

struct light {
	pid_t pid;
	char *start_time;
	char *mnt_ns; /* NULL in records that do not carry it */
	int ncgroups;
	char *cgroups[MAX_CGROUPS];
	int nfreezers;
	struct freezer_check freezers[MAX_FREEZERS];
};

/* As StateStore.status names them, as bits (STK_STATUS_*); UNSURE (paused, or freezing) is none of
 * them, so no STK_CAN_* mask admits it and Node takes the call. */
enum status { UNSURE = 0, STOPPED = STK_STATUS_STOPPED, CREATED = STK_STATUS_CREATED, RUNNING = STK_STATUS_RUNNING };

/* Whether an operation whose allowed statuses are `mask` (STK_CAN_*) may act on a container in `s`. */
static bool can(unsigned mask, enum status s) { return (mask & (unsigned)s) != 0; }

/* Hands the whole call, as it was given, to the TypeScript CLI. Never returns. */
static void __attribute__((noreturn)) to_node(void)
{
	/* The calls TypeScript decides go to a resident planner first, when there is one to ask. */
	planner_try(g_argv);
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0) {
		dprintf(2, "stockade: cannot find its own executable: %s\n", strerror(errno));
		exit(1);
	}
	self[n] = '\0';
	/* <package>/build/Release/stockade-light -> <package>/dist/stockade.js */
	for (int up = 0; up < 3; up++) {
		char *slash = strrchr(self, '/');
		if (slash == NULL) {
			dprintf(2, "stockade: unexpected location %s\n", self);
			exit(1);
		}
		*slash = '\0';
	}
	char bundle[PATH_MAX + 32];
	snprintf(bundle, sizeof bundle, "%s/dist/stockade.js", self);

	int argc = 0;
	while (g_argv[argc] != NULL)
		argc++;
	char **args = calloc((size_t)argc + 3, sizeof *args);
	if (args == NULL)
		exit(1);
	args[0] = "node";
	args[1] = bundle;
	/* Node 20 takes an --env-file anywhere on its command line (`stockade do --env-file F`) for
	 * its own, unless a `--` comes before it; the CLI drops this one. */
	args[2] = "--";
	for (int i = 1; i < argc; i++)
		args[i + 2] = g_argv[i];
	execvp("node", args);
	dprintf(2, "stockade: cannot run node: %s\n", strerror(errno));
	exit(1);
}

static bool valid_id(const char *id)
{
	size_t len = strlen(id);
	if (len == 0 || len > STK_ID_MAX_LENGTH || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return false;
	for (const char *p = id; *p; p++) {
		char c = *p;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr(STK_ID_EXTRA_CHARS, c) != NULL;
		if (!ok)
			return false;
	}
	return true;
}

/* Reads a small file whole; NULL on any error. */
static char *read_small(int dirfd, const char *path, size_t max)
{
	int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	char *buf = malloc(max + 1);
	size_t len = 0;
	while (buf != NULL && len < max) {
		ssize_t n = read(fd, buf + len, max - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	if (buf != NULL)
		buf[len] = '\0';
	return buf;
}

/* Parses <dir>/light; false when it is missing, not understood, or does not let this entry act. */
static bool read_light(int dirfd, struct light *l)
{
	memset(l, 0, sizeof *l);
	char *text = read_small(dirfd, STK_LIGHT_RECORD, 65536);
	if (text == NULL)
		return false;
	char *save = NULL;
	char *line = strtok_r(text, "\n", &save);
	if (line == NULL || strcmp(line, STK_LIGHT_FORMAT) != 0)
		return false;
	/* The first key says whether this entry may act at all: the level's choice, made in TypeScript. */
	line = strtok_r(NULL, "\n", &save);
	if (line == NULL || strncmp(line, STK_LIGHT_KEY_ACT " ", sizeof STK_LIGHT_KEY_ACT) != 0 ||
	    strcmp(line + sizeof STK_LIGHT_KEY_ACT, STK_LIGHT_ACT_YES) != 0)
		return false;
	while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
		char *value = strchr(line, ' ');
		if (value == NULL)
			return false;
		*value++ = '\0';
		if (strcmp(line, STK_LIGHT_KEY_PID) == 0) {
			char *end;
			long pid = strtol(value, &end, 10);
			if (*end != '\0' || pid <= 0 || pid > INT_MAX)
				return false;
			l->pid = (pid_t)pid;
		} else if (strcmp(line, STK_LIGHT_KEY_STARTTIME) == 0) {
			l->start_time = value;
		} else if (strcmp(line, STK_LIGHT_KEY_MNTNS) == 0) {
			l->mnt_ns = value;
		} else if (strcmp(line, STK_LIGHT_KEY_CGROUP) == 0) {
			if (l->ncgroups == MAX_CGROUPS)
				return false;
			l->cgroups[l->ncgroups++] = value;
		} else if (strcmp(line, STK_LIGHT_KEY_THAWED) == 0) {
			/* "thawed FILE CONTENT": the container is not paused while FILE reads CONTENT. */
			char *want = strrchr(value, ' ');
			if (want == NULL || l->nfreezers == MAX_FREEZERS)
				return false;
			*want++ = '\0';
			l->freezers[l->nfreezers++] = (struct freezer_check){ value, want };
		} else {
			return false;
		}
	}
	return l->pid > 0 && l->start_time != NULL;
}

/* True when `pid` lives in the mount namespace whose inode is `mnt_ns` (NULL: not checked). */
static bool in_mount_namespace(pid_t pid, const char *mnt_ns)
{
	if (mnt_ns == NULL)
		return true;
	char path[64], link[64], want[64];
	snprintf(path, sizeof path, "/proc/%d/ns/mnt", pid);
	ssize_t n = readlink(path, link, sizeof link - 1);
	if (n < 0)
		return false;
	link[n] = '\0';
	snprintf(want, sizeof want, "mnt:[%s]", mnt_ns);
	return strcmp(link, want) == 0;
}

/*
 * True when `pid` is alive (not a zombie) and still the process that started at `start_time` in
 * the mount namespace `mnt_ns`: start times count 10 ms ticks, so a pid reused within one tick
 * has the same one (src/container/process-identity.ts).
 */
static bool same_live_process(pid_t pid, const char *start_time, const char *mnt_ns)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	char *stat = read_small(AT_FDCWD, path, 4096);
	if (stat == NULL)
		return false;
	bool same = false;
	/* comm may hold spaces and parentheses: fields resume after the last ')'. */
	char *p = strrchr(stat, ')');
	if (p != NULL && p[1] == ' ') {
		char *save = NULL;
		char *field = strtok_r(p + 2, " ", &save);
		char state = field != NULL ? field[0] : 'X';
		/* starttime is field 22; state is field 3. */
		for (int i = 0; i < 19 && field != NULL; i++)
			field = strtok_r(NULL, " ", &save);
		same = field != NULL && strcmp(field, start_time) == 0 && state != 'Z' && state != 'X';
	}
	free(stat);
	return same && in_mount_namespace(pid, mnt_ns);
}

static bool thawed(const struct light *l)
{
	for (int i = 0; i < l->nfreezers; i++) {
		char *now = read_small(AT_FDCWD, l->freezers[i].file, 64);
		if (now == NULL)
			return false;
		now[strcspn(now, "\n")] = '\0';
		bool same = strcmp(now, l->freezers[i].thawed) == 0;
		free(now);
		if (!same)
			return false;
	}
	return true;
}

/* As StateStore.status does it; UNSURE (paused, or freezing) is left to Node. */
static enum status status_of(int dirfd, const struct light *l)
{
	if (!same_live_process(l->pid, l->start_time, l->mnt_ns))
		return STOPPED;
	if (faccessat(dirfd, STK_START_SOCKET, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
		return CREATED;
	return thawed(l) ? RUNNING : UNSURE;
}

/* Opens and locks <root>/<id> as StateStore.lock does; -1 when Node should take the call. */
static int lock_container(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	}
	/* A delete may have removed the directory while we waited for it. */
	struct stat now, held;
	if (stat(dir, &now) < 0 || fstat(fd, &held) < 0 || now.st_ino != held.st_ino || now.st_dev != held.st_dev) {
		/* ENOENT when it is gone; replaced by another container of the same id is Node's to sort out. */
		int err = errno == ENOENT ? ENOENT : ESTALE;
		close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

static int pidfd_open_(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }

static int pidfd_send_signal_(int pidfd, int sig) { return (int)syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0); }

/* A pidfd of `l->pid`, checked once it pins the process to be the one that started at start_time; -1 if not. */
static int container_pidfd(const struct light *l)
{
	int pidfd = pidfd_open_(l->pid);
	if (pidfd >= 0 && !same_live_process(l->pid, l->start_time, l->mnt_ns)) {
		close(pidfd);
		return -1;
	}
	return pidfd;
}

int light_container_pidfd(const char *root, const char *id)
{
	char dir[PATH_MAX];
	if (!valid_id(id) || snprintf(dir, sizeof dir, "%s/%s", root, id) >= (int)sizeof dir)
		return -1;
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -1;
	struct light l;
	int pidfd = read_light(dirfd, &l) ? container_pidfd(&l) : -1;
	close(dirfd);
	return pidfd;
}

/* Signals `l->pid` through its pidfd (container_pidfd), which it returns. */
static int signal_container(const struct light *l, int sig)
{
	int pidfd = container_pidfd(l);
	if (pidfd < 0)
		return -1;
	if (pidfd_send_signal_(pidfd, sig) < 0) {
		close(pidfd);
		return -1;
	}
	return pidfd;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ---- start ----------------------------------------------------------------------------------- */

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads frames until the init closes the connection at execve; returns a malloc'd hex copy of an
 * error frame's body if one came. */
static char *await_exec(int conn)
{
	uint8_t buf[65536 + 8];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(conn, buf + len, sizeof buf - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof buf)
			break;
	}
	for (size_t off = 0; off + 8 <= len;) {
		uint32_t type, body;
		memcpy(&type, buf + off, 4);
		memcpy(&body, buf + off + 4, 4);
		type = le32toh(type);
		body = le32toh(body);
		if (off + 8 + body > len)
			break;
		if (type == STK_MSG_ERROR) {
			char *hex = malloc((size_t)body * 2 + 1);
			if (hex == NULL)
				return NULL;
			for (uint32_t i = 0; i < body; i++)
				sprintf(hex + i * 2, "%02x", buf[off + 8 + i]);
			hex[body * 2] = '\0';
			return hex;
		}
		off += 8 + body;
	}
	return NULL;
}

static int do_start(const char *dir)
{
	int dirfd = lock_container(dir);
	struct light l;
	if (dirfd < 0 || !read_light(dirfd, &l) || !can(STK_CAN_START, status_of(dirfd, &l)))
		to_node();

	int conn = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	/* Through the directory fd: sun_path holds 107 bytes and --root may be longer. */
	snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/" STK_START_SOCKET, dirfd);
	if (conn < 0 || connect(conn, (struct sockaddr *)&addr, sizeof addr) < 0)
		to_node();
	/* The status reads "running" from here on; a second start finds no socket and is refused. */
	unlinkat(dirfd, STK_START_SOCKET, 0);
	uint32_t frame[2] = { htole32(STK_MSG_START), 0 };
	char *error = write_all(conn, frame, sizeof frame) == 0 ? await_exec(conn) : NULL;
	if (error != NULL) {
		/* The process could not start (its hook or exec failed): Node words the error and logs it. */
		setenv("STOCKADE_LIGHT_START_ERROR", error, 1);
		to_node();
	}
	return 0;
}

/* ---- kill ------------------------------------------------------------------------------------ */

/* A signal number as runc reads it, or -1 for forms left to Node (RTMIN+n, unknown names). */
static int parse_signal(const char *raw)
{
	static const struct {
		const char *name;
		int number;
	} names[] = STK_SIGNALS;
	/* Digits only, as Node's parseSignal: strtol alone took "+10", which Node refuses (" 10" goes to Node, which trims it). */
	if (*raw >= '0' && *raw <= '9') {
		char *end;
		long n = strtol(raw, &end, 10);
		return *end == '\0' && n <= STK_SIGRTMAX ? (int)n : -1; /* 0: only checks the container runs, as runc */
	}
	const char *bare = strncasecmp(raw, "SIG", 3) == 0 ? raw + 3 : raw;
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcasecmp(bare, names[i].name + 3) == 0)
			return names[i].number;
	return -1;
}

static int do_kill(const char *dir, const char *signal)
{
	int sig = parse_signal(signal);
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct light l;
	if (sig < 0 || dirfd < 0 || !read_light(dirfd, &l))
		to_node();
	enum status s = status_of(dirfd, &l);
	/* A stopped container is an error Node words; a paused one needs a thaw after SIGKILL. */
	if (!can(STK_CAN_KILL, s))
		to_node();
	int pidfd = signal_container(&l, sig);
	if (pidfd < 0)
		to_node();
	return 0;
}

/* ---- delete ---------------------------------------------------------------------------------- */

/* Removes the tree under dirfd, staying on its file system; false at the first failure. */
static bool remove_tree(int dirfd)
{
	struct stat top;
	if (fstat(dirfd, &top) < 0)
		return false;
	int dup_fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
	DIR *d = dup_fd < 0 ? NULL : fdopendir(dup_fd);
	if (d == NULL)
		return false;
	bool ok = true;
	struct dirent *e;
	while (ok && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		struct stat st;
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			ok = errno == ENOENT;
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			/* Something mounted below the state directory is Node's to deal with. */
			if (st.st_dev != top.st_dev)
				ok = false;
			int sub = ok ? openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
			ok = sub >= 0 && remove_tree(sub);
			if (sub >= 0)
				close(sub);
			ok = ok && unlinkat(dirfd, e->d_name, AT_REMOVEDIR) == 0;
		} else {
			ok = unlinkat(dirfd, e->d_name, 0) == 0 || errno == ENOENT;
		}
	}
	closedir(d);
	return ok;
}

static bool cgroup_empty(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT;
	char *procs = read_small(fd, "cgroup.procs", 4096);
	close(fd);
	bool empty = procs != NULL && procs[0] == '\0';
	free(procs);
	return empty;
}

/* rmdir of a cgroup and its children; a cgroup whose last task just died answers EBUSY briefly. */
static bool remove_cgroup(const char *path)
{
	DIR *d = opendir(path);
	if (d == NULL)
		return errno == ENOENT;
	bool ok = true;
	struct dirent *e;
	while (ok && (e = readdir(d)) != NULL) {
		if (e->d_type != DT_DIR || strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char child[PATH_MAX];
		ok = snprintf(child, sizeof child, "%s/%s", path, e->d_name) < (int)sizeof child && remove_cgroup(child);
	}
	closedir(d);
	long deadline = now_ms() + 2000;
	for (long delay = 1; ok; delay = delay * 2 > 50 ? 50 : delay * 2) {
		if (rmdir(path) == 0 || errno == ENOENT)
			return true;
		if (errno != EBUSY || now_ms() > deadline)
			return false;
		sleep_ms(delay);
	}
	return false;
}

static int do_delete(const char *dir, bool force)
{
	int dirfd = lock_container(dir);
	/* As runc: a forced delete of a container that is already gone succeeds (containerd's shim
	 * sends one after every plain delete). */
	if (dirfd < 0 && errno == ENOENT && force)
		return 0;
	struct light l;
	if (dirfd < 0 || !read_light(dirfd, &l))
		to_node();
	enum status s = status_of(dirfd, &l);
	/* --force also takes a running container (as runc); never an UNSURE one. */
	if (!can(STK_CAN_DELETE, s) && !(force && s == RUNNING))
		to_node();
	if (s != STOPPED) {
		int pidfd = signal_container(&l, SIGKILL);
		struct pollfd p = { .fd = pidfd, .events = POLLIN };
		if (pidfd < 0 || poll(&p, 1, 5000) != 1)
			to_node();
		close(pidfd);
	}
	/* Processes that outlived init (no pid namespace of its own) are Node's to kill. */
	long deadline = now_ms() + 1000;
	for (int i = 0; i < l.ncgroups; i++) {
		for (long delay = 1; !cgroup_empty(l.cgroups[i]); delay = delay * 2 > 20 ? 20 : delay * 2) {
			if (now_ms() > deadline)
				to_node();
			sleep_ms(delay);
		}
	}
	for (int i = 0; i < l.ncgroups; i++)
		if (!remove_cgroup(l.cgroups[i]))
			to_node();
	if (!remove_tree(dirfd) || rmdir(dir) < 0)
		to_node();
	return 0;
}

/* ---- wait: what `do` and an attached `run` become -------------------------------------------- */

/* The signals an attached caller passes on to the container (FORWARDED_SIGNALS in src/abi/linux/constants.ts). */
static const int FORWARDED[] = STK_FORWARDED_SIGNALS;

static volatile int g_container_pidfd = -1;

static void forward(int sig)
{
	int saved = errno;
	if (g_container_pidfd >= 0)
		pidfd_send_signal_(g_container_pidfd, sig);
	errno = saved;
}

/*
 * wait [--keep] ID HELPER: run by execve from the Node process of `do` or an attached `run` once
 * the container has started (src/container/light-wait.ts), with the forwarded signals blocked so
 * that none is lost on the way. Passes those signals on to the container's init, waits for
 * stockade-init (HELPER, a child of this process: it exits with the container's status), deletes
 * the container as `delete --force` does (unless --keep; anything but the plain case goes to Node's
 * delete, in a child, so that this process still exits with the container's status), waits for
 * its other children (the container's sentry), and exits with that status. A Node process waiting
 * for a container holds 12 to 15 MB for as long as it runs; this one, a few hundred KB.
 */
static int do_wait(const char *dir, pid_t helper, bool keep, char **delete_argv)
{
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct light l;
	if (dirfd >= 0 && read_light(dirfd, &l))
		g_container_pidfd = container_pidfd(&l);
	if (dirfd >= 0)
		close(dirfd);
	struct sigaction sa = { .sa_handler = forward };
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigset_t forwarded;
	sigemptyset(&forwarded);
	for (size_t i = 0; i < sizeof FORWARDED / sizeof FORWARDED[0]; i++) {
		sigaction(FORWARDED[i], &sa, NULL);
		sigaddset(&forwarded, FORWARDED[i]);
	}
	sigprocmask(SIG_UNBLOCK, &forwarded, NULL);

	int status = 0;
	while (waitpid(helper, &status, 0) < 0) {
		if (errno != EINTR) {
			dprintf(2, "stockade: wait for stockade-init (pid %d): %s\n", (int)helper, strerror(errno));
			return 1;
		}
	}
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (g_container_pidfd >= 0) {
		int fd = g_container_pidfd;
		g_container_pidfd = -1;
		close(fd);
	}
	if (!keep) {
		pid_t deleter = fork();
		if (deleter == 0) {
			g_argv = delete_argv;
			_exit(do_delete(dir, true));
		}
		while (deleter > 0 && waitpid(deleter, NULL, 0) < 0 && errno == EINTR)
			;
	}
	/* The container's sentry, started by the Node process this one was: gone once the container is. */
	while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
		;
	return code;
}

/* ---- the command line ------------------------------------------------------------------------ */

/* Takes the value of --name X or --name=X at argv[*i]; NULL if argv[*i] is not that flag. */
static const char *flag_value(char **argv, int *i, const char *name)
{
	size_t len = strlen(name);
	const char *a = argv[*i];
	if (strncmp(a, name, len) != 0)
		return NULL;
	if (a[len] == '=')
		return a + len + 1;
	if (a[len] == '\0' && argv[*i + 1] != NULL)
		return argv[++*i];
	return NULL;
}

/*
 * `[globals] wait [--keep] ID HELPER`. Never handed to Node as it is (Node has no such command):
 * its delete, when Node must do it, is `[globals] delete --force ID`.
 */
static int wait_command(char **argv, int at, const char *root)
{
	char **rest = argv + at + 1;
	bool keep = rest[0] != NULL && strcmp(rest[0], "--keep") == 0;
	if (keep)
		rest++;
	char *end = NULL;
	long helper = rest[0] != NULL && rest[1] != NULL ? strtol(rest[1], &end, 10) : 0;
	char dir[PATH_MAX];
	if (rest[0] == NULL || !valid_id(rest[0]) || helper <= 0 || end == NULL || *end != '\0' || rest[2] != NULL ||
	    snprintf(dir, sizeof dir, "%s/%s", root, rest[0]) >= (int)sizeof dir) {
		dprintf(2, "usage: stockade-light [--root DIR] [--log FILE] [--log-format FMT] wait [--keep] ID HELPER_PID\n");
		return 2;
	}
	/* argv as Node's delete takes it: the globals, then delete --force ID. */
	char **delete_argv = calloc((size_t)at + 4, sizeof *delete_argv);
	if (delete_argv == NULL)
		return 1;
	for (int k = 0; k < at; k++)
		delete_argv[k] = argv[k];
	delete_argv[at] = "delete";
	delete_argv[at + 1] = "--force";
	delete_argv[at + 2] = rest[0];
	return do_wait(dir, (pid_t)helper, keep, delete_argv);
}

int main(int argc, char **argv)
{
	(void)argc;
	g_argv = argv;
	/* Not a CLI call: what create leaves beside a sentry container, STOCKADE_LIGHT=off or not. */
	if (argv[1] != NULL && strcmp(argv[1], "sentry-watch") == 0)
		return sentry_watch(argv);
	const char *mode = getenv("STOCKADE_LIGHT");
	if (mode != NULL && strcmp(mode, "off") == 0)
		to_node();

	const char *root = STK_DEFAULT_ROOT;
	int i = 1;
	for (; argv[i] != NULL && argv[i][0] == '-'; i++) {
		const char *v;
		if ((v = flag_value(argv, &i, "--root")) != NULL)
			root = v;
		else if ((v = flag_value(argv, &i, "--log")) != NULL) {
			/* Nothing is logged by a call that succeeds, but a --log that cannot be opened fails
			 * the call, as in Node (src/cli/main.ts), which words the error. */
			int fd = open(v, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
			if (fd < 0)
				to_node();
			close(fd);
		} else if (flag_value(argv, &i, "--log-format") != NULL)
			; /* every failure goes to Node, which writes the log in this format */
		else if (strcmp(argv[i], "--systemd-cgroup") != 0)
			to_node();
	}
	const char *command = argv[i];
	if (command == NULL || *root == '\0')
		to_node();
	if (strcmp(command, "wait") == 0)
		return wait_command(argv, i, root);
	char **rest = argv + i + 1;
	int nrest = 0;
	while (rest[nrest] != NULL)
		nrest++;

	bool force = false;
	if (strcmp(command, "delete") == 0 && nrest == 2 && (strcmp(rest[0], "--force") == 0 || strcmp(rest[0], "-f") == 0)) {
		force = true;
		rest++;
		nrest--;
	}
	if (nrest < 1 || rest[0][0] == '-' || !valid_id(rest[0]))
		to_node();
	for (int k = 1; k < nrest; k++)
		if (rest[k][0] == '-')
			to_node();

	char dir[PATH_MAX];
	if (snprintf(dir, sizeof dir, "%s/%s", root, rest[0]) >= (int)sizeof dir)
		to_node();
	/* start, kill and delete are what podman calls itself, not through conmon: where a planner
	 * conmon adopted is moved out from under it (planner.h). */
	int code;
	if (strcmp(command, "start") == 0 && nrest == 1)
		code = do_start(dir);
	else if (strcmp(command, "kill") == 0 && nrest <= 2)
		code = do_kill(dir, nrest == 2 ? rest[1] : "SIGTERM");
	else if (strcmp(command, "delete") == 0 && nrest == 1)
		code = do_delete(dir, force);
	else
		to_node();
	planner_rehome(root);
	return code;
	to_node();
}
