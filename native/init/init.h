/* stockade-init: declarations shared by the files of the pre-exec helper. */
#ifndef STOCKADE_INIT_H
#define STOCKADE_INIT_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#include "stockade-abi.h"

/* ---- cleanup helpers (crun style) ---------------------------------------------------------- */

static inline void stk_close_p(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
static inline void stk_free_p(void *p) { free(*(void **)p); }

#define _cleanup_close_ __attribute__((cleanup(stk_close_p)))
#define _cleanup_free_ __attribute__((cleanup(stk_free_p)))

/* Hands an fd out of a _cleanup_close_ variable. */
static inline int stk_steal_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}

/* ---- the parsed plan ------------------------------------------------------------------------ */

/* Strings point into the plan buffer, which stays alive until execve; every one is NUL-terminated
 * and free of inner NULs (checked by the parser). */

struct stk_join_ns {
	uint32_t nstype;
	const char *path;
};

struct stk_mount {
	uint32_t flags;       /* MS_* */
	uint32_t propagation; /* MS_SHARED/SLAVE/PRIVATE/UNBINDABLE [| MS_REC] */
	uint32_t rattr;       /* MOUNT_ATTR_* applied with AT_RECURSIVE */
	uint32_t mflags;      /* STK_MOUNTF_* */
	const char *source, *target, *fstype, *data;
	const char *uid_map, *gid_map; /* TAG_MOUNT_IDMAP: an id-mapped bind; NULL otherwise */
	int userns_fd;        /* the user namespace with those maps, made by P (stk_idmap_prepare); -1 */
};

struct stk_device {
	uint32_t type; /* 'c', 'b', 'u', 'p' */
	uint32_t major, minor, mode, uid, gid, dflags;
	const char *path;
};

struct stk_symlink {
	const char *target, *linkpath;
};

struct stk_sysctl {
	const char *key, *value;
};

struct stk_rlimit {
	uint32_t resource;
	uint64_t soft, hard;
};

struct stk_hook {
	uint32_t phase;      /* STK_HOOK_PHASE_* */
	uint32_t timeout_ms; /* 0: none */
	const char *path;
	const char **argv;   /* NULL-terminated; {path} when the config gave no args */
	const char **envp;   /* NULL-terminated, exactly the config's env */
};

/* How many mounts a plan may hand to the sentry (TAG_SENTRY_MOUNT). */
#define STK_MAX_SENTRY_MOUNTS 4

struct stk_plan {
	uint8_t *buf;
	size_t len;

	uint32_t clone_flags;
	struct stk_join_ns *join_ns;
	size_t n_join_ns;
	const char *uid_map, *gid_map;
	const char *hostname, *domainname;

	bool has_rootfs;
	uint32_t rootfs_flags;
	const char *rootfs_source, *rootfs_mountpoint;
	bool has_rootfs_propagation;
	uint32_t rootfs_propagation;

	struct stk_mount *mounts;
	size_t n_mounts;
	struct stk_device *devices;
	size_t n_devices;
	struct stk_symlink *symlinks;
	size_t n_symlinks;
	struct stk_sysctl *sysctls;
	size_t n_sysctls;
	const char **masked;
	size_t n_masked;
	const char **readonly;
	size_t n_readonly;
	struct stk_rlimit *rlimits;
	size_t n_rlimits;
	const char **cgroups;
	size_t n_cgroups;

	bool has_oom_score_adj;
	int32_t oom_score_adj;

	bool has_user;
	uint32_t uid, gid, umask;
	gid_t *gids;
	size_t n_gids;

	bool has_caps;
	uint64_t cap_bounding, cap_effective, cap_inheritable, cap_permitted, cap_ambient;

	bool no_new_privs, monitor, loopback_up, terminal;
	bool has_console_size; /* TAG_CONSOLE_SIZE: the pty's size, set before it is handed over */
	uint32_t console_rows, console_cols;
	bool init;          /* C stays pid 1 and forks the command (TAG_INIT) */
	bool hold;          /* no command: pid 2 waits for a signal where it would execve (TAG_HOLD) */
	uint32_t timeout_ms, grace_ms; /* the init's deadline for the command (TAG_INIT_TIMEOUT); 0: none */
	uint32_t tied_to;   /* P's parent, whose death ends the container (TAG_TIED); 0: none */
	const char *overlay_tmpfs; /* options of an overlay root's tmpfs (TAG_OVERLAY_TMPFS) */
	const char *cwd;
	const char *chroot_path; /* TAG_CHROOT: exec into a container that shares the host's mount namespace */

	const char **argv; /* NULL-terminated */
	size_t argc;
	const char **envp; /* NULL-terminated */
	size_t envc;

	const char *console_socket, *start_socket;
	uint32_t preserve_fds;
	const char *session_keyring;

	bool has_seccomp;
	uint32_t seccomp_flags;
	uint16_t seccomp_len;
	void *seccomp_filter; /* struct sock_filter[seccomp_len] */

	bool has_sentry;
	const char *sentry_mounts[STK_MAX_SENTRY_MOUNTS]; /* destinations the sentry owns (TAG_SENTRY_MOUNT) */
	uint32_t n_sentry_mounts;
	uint32_t sentry_fd;   /* the socket the listener goes out on; hoisted and close-on-exec by main */
	uint32_t sentry_flags;
	uint16_t sentry_len;
	void *sentry_filter;  /* struct sock_filter[sentry_len] */

	uint32_t hook_points;
	struct stk_hook *hooks;
	size_t n_hooks;
};

/* ---- process-wide state --------------------------------------------------------------------- */

struct stk_ctx {
	struct stk_plan plan;
	int sync_fd;
	int err_fd;        /* where MSG_ERROR goes: the sync fd, then the start connection */
	int listen_fd;     /* start socket, -1 if none */
	int console_fd;    /* connected console socket, -1 if none */
	pid_t child;       /* in P: C once cloned */
	bool in_child;     /* false in P, true in C */
	bool in_userns;    /* C lives in a user namespace other than the host's */
	int exit_code;     /* _exit code after a reported failure */
	int cap_last;      /* highest capability number the kernel knows */
	bool setgroups_denied;
	int root_fd;       /* O_PATH fd of the container root while it is built, -1 otherwise */
	const char *root;  /* host path of the container root while it is built */
};

extern struct stk_ctx stk;

/* ---- errors and messages (msg.c) ------------------------------------------------------------ */

/* Reports {err, step, message} on stk.err_fd and ends the process (P kills C first). */
__attribute__((noreturn, format(printf, 3, 4))) void stk_fail(int err, const char *step, const char *fmt, ...);
/* stk_fail with errno. */
#define stk_fail_errno(step, ...) stk_fail(errno, (step), __VA_ARGS__)

int stk_write_all(int fd, const void *buf, size_t len);
int stk_read_all(int fd, void *buf, size_t len); /* 0 ok, -1 error (errno), 1 EOF before len */
int stk_send_frame(int fd, uint32_t type, const void *payload, uint32_t len);
int stk_send_error(int fd, int err, const char *step, const char *message);
/* Reads one frame header and discards a payload of up to 64 KiB. 0 ok, 1 EOF, -1 error. */
int stk_recv_frame(int fd, uint32_t *type, uint32_t *len);
/* Reads one frame with a payload of up to max bytes into *payload (malloc'd, NULL when empty; the
 * caller frees). 0 ok, 1 EOF, -1 error (errno; EPROTO for a payload over max). */
int stk_recv_frame_payload(int fd, uint32_t *type, uint8_t **payload, uint32_t *len, uint32_t max);

/* ---- running from a sealed copy (selfclone.c) ---------------------------------------------- */

/* Re-executes the process from a sealed memfd copy of its executable unless it already runs from
 * one; returns only in the copy. */
void stk_run_from_sealed_copy(char **argv);

/* ---- plan (plan.c) -------------------------------------------------------------------------- */

/* Reads the whole plan from fd and validates it; failures go through stk_fail("plan"). */
void stk_plan_read(int fd, struct stk_plan *plan);

/* ---- namespaces (ns.c) ---------------------------------------------------------------------- */

void stk_join_namespaces(const struct stk_plan *plan);
pid_t stk_clone_child(uint32_t clone_flags);
void stk_write_id_maps(const struct stk_plan *plan, pid_t child);
/* P: a user namespace fd for each id-mapped bind (TAG_MOUNT_IDMAP), numbered from `first` on. */
void stk_idmap_prepare(struct stk_plan *plan, unsigned int first);
/* Closes them: in P once C is cloned, in C once the mounts are made. */
void stk_idmap_release(struct stk_plan *plan);
void stk_write_oom_score_adj(const struct stk_plan *plan, pid_t child);
void stk_become_ns_root(void);
void stk_set_names(const struct stk_plan *plan);
void stk_loopback_up(void);

/* ---- safe paths inside the root (path.c) ---------------------------------------------------- */

enum stk_create {
	STK_CREATE_NONE, /* the final component must already exist */
	STK_CREATE_DIR,
	STK_CREATE_FILE,
};

/* O_PATH fd of `path` (absolute, container view) resolved in root_fd with RESOLVE_IN_ROOT, creating
 * missing directories (and the final component as asked) on the way. Returns -1 with errno set. */
int stk_open_in_root(int root_fd, const char *path, enum stk_create create);
void stk_copy_up(int under_fd, int mounted_fd, const char *target);
/* O_PATH fd of the parent directory of `path` (created as needed) and its last component. */
int stk_open_parent_in_root(int root_fd, const char *path, const char **base);
/* Magic-link path of an fd: "/proc/self/fd/N". */
const char *stk_fd_path(int fd, char buf[static 32]);

/* ---- mounts and the root (mounts.c, rootfs.c) ----------------------------------------------- */

void stk_do_mount(const struct stk_mount *m);
/* MS_* flags of the mount fd lies on, as a remount must repeat them where the kernel locked them. */
unsigned long stk_locked_flags(int fd);
/* mount(MS_REMOUNT|MS_BIND|flags) on a magic-link or plain path, keeping locked flags on EPERM. */
int stk_bind_remount(const char *path, int fd, unsigned long flags, bool always_keep);

void stk_rootfs_prepare(const struct stk_plan *plan);
/* pid1.c */
void stk_tie_to_caller(const struct stk_plan *plan);
void stk_tie_to_p(const struct stk_plan *plan, int tie_fd);
void stk_become_init(const struct stk_plan *plan);
__attribute__((noreturn)) void stk_hold(void);
void stk_rootfs_enter(const struct stk_plan *plan);
void stk_rootfs_propagation(const struct stk_plan *plan);
void stk_rootfs_readonly(const struct stk_plan *plan);
void stk_masked_paths(const struct stk_plan *plan);
void stk_readonly_paths(const struct stk_plan *plan);

/* ---- devices (devices.c) -------------------------------------------------------------------- */

void stk_create_devices(const struct stk_plan *plan);
void stk_create_symlinks(const struct stk_plan *plan);

/* ---- terminal (terminal.c) ------------------------------------------------------------------ */

void stk_setup_terminal(const struct stk_plan *plan);

/* ---- process setup (process.c) -------------------------------------------------------------- */

void stk_write_sysctls(const struct stk_plan *plan);
void stk_set_rlimits(const struct stk_plan *plan);
void stk_join_session_keyring(const struct stk_plan *plan);
const char *stk_lookup_executable(const struct stk_plan *plan);
void stk_load_seccomp(const struct stk_plan *plan);
void stk_set_user_and_caps(const struct stk_plan *plan);
void stk_set_cwd(const struct stk_plan *plan);
/* chdir to the plan's cwd with the runtime's own rights; true when that was refused (EACCES,
 * EPERM) and stk_set_cwd must try again once the process's user is set. */
bool stk_enter_cwd_first(const struct stk_plan *plan);
/* Sets HOME=<home of the process's uid in the container's /etc/passwd> (or "/") when the
 * environment has no HOME or an empty one; reads /etc/passwd as the process will see it. */
void stk_fill_home(struct stk_plan *plan);
void stk_set_no_new_privs(const struct stk_plan *plan);
void stk_seal_fds(const struct stk_plan *plan);
void stk_clear_nonblock_stdio(void);
int stk_read_cap_last(void);

/* ---- the sentry's filter (sentry.c) --------------------------------------------------------- */

struct stk_sentry {
	pid_t helper;   /* H, which sends the listener; -1 when none */
	int request_fd; /* the pipe H reads the listener's number from */
	int reply_fd;   /* its write end, C's */
	int mount_fds[STK_MAX_SENTRY_MOUNTS]; /* the detached clones of plan->sentry_mounts, or -1 */
};

/* Clones each of the plan's sentry mounts into a detached tree for the sentry and unmounts it
 * from the workload's mount namespace (needs CAP_SYS_ADMIN: before the user switch). */
void stk_sentry_detach_mounts(const struct stk_plan *plan, struct stk_sentry *s);

/* Clones the helper that will send the listener: before any filter is loaded (see sentry.c). */
void stk_sentry_prepare(const struct stk_plan *plan, struct stk_sentry *s);
/* Loads the plan's sentry filter with a new listener, has the helper send the listener over the
 * sentry socket, and closes both; failures go through stk_fail("sentry"). */
void stk_sentry_load(const struct stk_plan *plan, struct stk_sentry *s);

/* ---- the container's hooks (hooks.c) -------------------------------------------------------- */

/* Runs the plan's hooks of one STK_HOOK_PHASE_* in order, each with state on its stdin; the first
 * failure goes through stk_fail("hook") naming the hook. */
void stk_run_hooks(const struct stk_plan *plan, uint32_t phase, const uint8_t *state, size_t state_len);

/* ---- the container side (child.c) ----------------------------------------------------------- */

__attribute__((noreturn)) void stk_child_main(int go_fd);

#endif
