/* stockade-init: the process's own attributes: sysctls, rlimits, keyring, executable, ids, caps,
 * no_new_privs, seccomp, and the fds that reach the container. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/fsuid.h>
#include <sys/stat.h>

#include "init.h"
#include "syscalls.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const char *const cap_names[] = STK_CAP_NAMES;

static const char *cap_name(int cap)
{
	static char buf[16];
	if (cap >= 0 && (size_t)cap < sizeof cap_names / sizeof cap_names[0])
		return cap_names[cap];
	snprintf(buf, sizeof buf, "cap %d", cap);
	return buf;
}

static const char *const rlimit_names[] = STK_RLIMIT_NAMES;

int stk_read_cap_last(void)
{
	char buf[16] = { 0 };
	int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n > 0) {
			int v = atoi(buf);
			if (v > 0 && v < 64)
				return v;
		}
	}
	/* No /proc: ask the kernel which numbers it accepts. */
	int cap = 0;
	while (cap < 63 && prctl(PR_CAPBSET_READ, cap + 1, 0, 0, 0) >= 0)
		cap++;
	return cap;
}

void stk_write_sysctls(const struct stk_plan *plan)
{
	if (plan->n_sysctls == 0)
		return;
	_cleanup_close_ int dir = open("/proc/sys", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		stk_fail_errno("sysctl", "open /proc/sys");
	for (size_t i = 0; i < plan->n_sysctls; i++) {
		const struct stk_sysctl *s = &plan->sysctls[i];
		_cleanup_free_ char *rel = strdup(s->key);
		if (rel == NULL)
			stk_fail(ENOMEM, "sysctl", "%s", s->key);
		for (char *p = rel; *p; p++)
			if (*p == '.')
				*p = '/';
		/* RESOLVE_BENEATH keeps a key like "..." or "a/../../x" inside /proc/sys. */
		_cleanup_close_ int fd = sys_openat2(dir, rel, O_WRONLY | O_CLOEXEC,
						      RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
		if (fd < 0)
			stk_fail_errno("sysctl", "%s", s->key);
		size_t len = strlen(s->value);
		ssize_t n = write(fd, s->value, len);
		if (n < 0)
			stk_fail_errno("sysctl", "%s = %s", s->key, s->value);
		if ((size_t)n != len)
			stk_fail(EIO, "sysctl", "%s = %s: short write", s->key, s->value);
	}
}

void stk_set_rlimits(const struct stk_plan *plan)
{
	for (size_t i = 0; i < plan->n_rlimits; i++) {
		const struct stk_rlimit *r = &plan->rlimits[i];
		struct rlimit rl = { .rlim_cur = (rlim_t)r->soft, .rlim_max = (rlim_t)r->hard };
		if (setrlimit((int)r->resource, &rl) < 0)
			stk_fail_errno("rlimit", "%s soft %llu hard %llu", rlimit_names[r->resource],
				       (unsigned long long)r->soft, (unsigned long long)r->hard);
	}
}

void stk_join_session_keyring(const struct stk_plan *plan)
{
	if (plan->session_keyring == NULL)
		return;
	if (sys_keyctl_join(plan->session_keyring) >= 0)
		return;
	/* Keyrings are best effort, as with runc: absent on some kernels, and in a user namespace
	 * the kernel may refuse a new one to a namespaced root. */
	if (errno == ENOSYS || (errno == EACCES && stk.in_userns))
		return;
	stk_fail_errno("keyring", "join session keyring \"%s\"", plan->session_keyring);
}

/* 0 when path is a regular file someone may execute; -1 with errno otherwise. */
static int check_executable(const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	if (S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		return -1;
	}
	if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111)) {
		errno = EACCES;
		return -1;
	}
	return 0;
}

/* `rel` as it will be seen after chdir(cwd). */
static char *absolute(const struct stk_plan *plan, const char *rel)
{
	char *out;
	if (rel[0] == '/')
		return strdup(rel);
	if (asprintf(&out, "%s/%s", plan->cwd ? plan->cwd : "/", rel) < 0)
		return NULL;
	return out;
}

static const char *env_path(const struct stk_plan *plan)
{
	for (size_t i = 0; i < plan->envc; i++)
		if (strncmp(plan->envp[i], "PATH=", 5) == 0)
			return plan->envp[i] + 5;
	return DEFAULT_PATH;
}

static const char *lookup_executable(const struct stk_plan *plan)
{
	const char *name = plan->argv[0];

	if (name[0] == '\0')
		stk_fail(ENOENT, "exec-lookup", "\"\": executable file not found in $PATH");
	if (strchr(name, '/')) {
		_cleanup_free_ char *full = absolute(plan, name);
		if (full == NULL)
			stk_fail(ENOMEM, "exec-lookup", "\"%s\"", name);
		if (check_executable(full) < 0)
			stk_fail(errno, "exec-lookup", "\"%s\": %s", name, strerror(errno));
		return name;
	}

	const char *path = env_path(plan);
	for (const char *p = path;;) {
		size_t n = strcspn(p, ":");
		char *cand;
		/* An empty PATH element means the working directory. */
		if (asprintf(&cand, "%.*s/%s", (int)(n ? n : 1), n ? p : ".", name) < 0)
			stk_fail(ENOMEM, "exec-lookup", "\"%s\"", name);
		char *full = absolute(plan, cand);
		free(cand);
		if (full == NULL)
			stk_fail(ENOMEM, "exec-lookup", "\"%s\"", name);
		if (check_executable(full) == 0)
			return full;
		free(full);
		if (p[n] == '\0')
			break;
		p += n + 1;
	}
	stk_fail(ENOENT, "exec-lookup", "\"%s\": executable file not found in $PATH", name);
}

/* Looked up with the file system rights of the user the process will be, as execvp looks as it:
 * a PATH entry that user cannot search (root's 0700 home under a non-root --user, or stockade do's
 * nobody) is passed over instead of found by root and then refused at execve. */
const char *stk_lookup_executable(const struct stk_plan *plan)
{
	bool as_user = plan->has_user && plan->uid != 0;
	uid_t old_uid = 0;
	gid_t old_gid = 0;
	if (as_user) {
		old_gid = (gid_t)setfsgid(plan->gid);
		old_uid = (uid_t)setfsuid(plan->uid);
	}
	const char *exe = lookup_executable(plan);
	if (as_user) {
		setfsuid(old_uid);
		setfsgid(old_gid);
	}
	return exe;
}

void stk_load_seccomp(const struct stk_plan *plan)
{
	struct sock_fprog prog = { .len = plan->seccomp_len, .filter = plan->seccomp_filter };
	if (sys_seccomp(SECCOMP_SET_MODE_FILTER, plan->seccomp_flags, &prog) < 0)
		stk_fail_errno("seccomp", "load a filter of %u instructions with flags 0x%x", plan->seccomp_len,
			       plan->seccomp_flags);
}

static void capset_v3(const struct stk_plan *plan)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];

	for (int i = 0; i < 2; i++) {
		data[i].effective = (uint32_t)(plan->cap_effective >> (32 * i));
		data[i].permitted = (uint32_t)(plan->cap_permitted >> (32 * i));
		data[i].inheritable = (uint32_t)(plan->cap_inheritable >> (32 * i));
	}
	if (syscall(SYS_capset, &hdr, data) < 0)
		stk_fail_errno("capset", "effective 0x%llx permitted 0x%llx inheritable 0x%llx",
			       (unsigned long long)plan->cap_effective, (unsigned long long)plan->cap_permitted,
			       (unsigned long long)plan->cap_inheritable);
}

void stk_set_user_and_caps(const struct stk_plan *plan)
{
	uid_t uid = plan->has_user ? plan->uid : 0;
	gid_t gid = plan->has_user ? plan->gid : 0;

	for (int cap = 0; cap <= stk.cap_last; cap++) {
		if (plan->cap_bounding & (1ull << cap))
			continue;
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			stk_fail_errno("capbset", "drop %s from the bounding set", cap_name(cap));
	}
	/* Keep the permitted set across the switch to a non-zero uid; capset trims it below. */
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		stk_fail_errno("keepcaps", "set keepcaps");
	if (stk.setgroups_denied) {
		if (plan->n_gids > 0)
			stk_fail(EPERM, "setgroups", "%zu additional gids, but the user namespace denies setgroups",
				 plan->n_gids);
	} else if (setgroups(plan->n_gids, plan->gids) < 0) {
		stk_fail_errno("setgroups", "%zu additional gids", plan->n_gids);
	}
	if (setresgid(gid, gid, gid) < 0)
		stk_fail_errno("setresgid", "gid %u", (unsigned)gid);
	if (setresuid(uid, uid, uid) < 0)
		stk_fail_errno("setresuid", "uid %u", (unsigned)uid);
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		stk_fail_errno("keepcaps", "clear keepcaps");
	capset_v3(plan);
	for (int cap = 0; cap <= stk.cap_last && cap < 64; cap++) {
		if (!(plan->cap_ambient & (1ull << cap)))
			continue;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0 && errno != EINVAL)
			stk_fail_errno("ambient", "raise %s", cap_name(cap));
	}
	umask(plan->umask == STK_UMASK_UNSET ? 0022 : (mode_t)plan->umask);
}

/*
 * As runc: the working directory is entered first with the runtime's rights, so a directory the
 * process's user may not enter still works; when those rights are refused (a user namespace
 * where the directory's owner is unmapped, a root-squashed NFS export), it is entered again once
 * the user is set, who may well have the right: the directory is often a volume chowned to it.
 */
bool stk_enter_cwd_first(const struct stk_plan *plan)
{
	if (plan->cwd == NULL || chdir(plan->cwd) == 0)
		return false;
	if (errno == EACCES || errno == EPERM)
		return true;
	stk_fail_errno("cwd", "%s", plan->cwd);
}

void stk_set_cwd(const struct stk_plan *plan)
{
	if (plan->cwd && chdir(plan->cwd) < 0)
		stk_fail_errno("cwd", "%s", plan->cwd);
}

void stk_set_no_new_privs(const struct stk_plan *plan)
{
	if (plan->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		stk_fail_errno("no_new_privs", "set no_new_privs");
}

static void cloexec_from(unsigned int first)
{
	if (sys_close_range(first, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
		return;
	/* Kernels before 5.11: walk the fd table. */
	DIR *d = opendir("/proc/self/fd");
	if (d == NULL)
		stk_fail_errno("fds", "mark fds from %u close-on-exec", first);
	int self = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd == self || (unsigned)fd < first)
			continue;
		int fl = fcntl(fd, F_GETFD);
		if (fl >= 0 && fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
			stk_fail_errno("fds", "mark fd %d close-on-exec", fd);
	}
	closedir(d);
}

/* Only 0, 1, 2 and the preserved fds reach the container: everything else the runtime or this
 * helper holds (sync fd, start socket, console socket) closes at execve. */
void stk_seal_fds(const struct stk_plan *plan)
{
	unsigned int first = 3 + plan->preserve_fds;

	cloexec_from(first);
	for (unsigned int fd = 3; fd < first; fd++) {
		int fl = fcntl((int)fd, F_GETFD);
		if (fl < 0) {
			if (errno == EBADF)
				continue;
			stk_fail_errno("fds", "read flags of preserved fd %u", fd);
		}
		if ((fl & FD_CLOEXEC) && fcntl((int)fd, F_SETFD, fl & ~FD_CLOEXEC) < 0)
			stk_fail_errno("fds", "keep preserved fd %u open across exec", fd);
	}
}

/* The Node parent may have left O_NONBLOCK on pipes it shares with us; programs expect blocking stdio. */
void stk_clear_nonblock_stdio(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		int fl = fcntl(fd, F_GETFL);
		if (fl >= 0 && (fl & O_NONBLOCK))
			fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	}
}
