/* stockade-init: the container's TAG_MOUNT entries, mounted onto targets resolved inside the root. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <linux/magic.h>

#include "init.h"
#include "syscalls.h"

#define PROPAGATION_FLAGS (MS_SHARED | MS_SLAVE | MS_PRIVATE | MS_UNBINDABLE)
#define ATIME_FLAGS (MS_NOATIME | MS_RELATIME | MS_STRICTATIME | MS_NODIRATIME)

unsigned long stk_locked_flags(int fd)
{
	struct statvfs sv;
	unsigned long f = 0;

	if (fstatvfs(fd, &sv) < 0)
		return 0;
	if (sv.f_flag & ST_RDONLY)
		f |= MS_RDONLY;
	if (sv.f_flag & ST_NOSUID)
		f |= MS_NOSUID;
	if (sv.f_flag & ST_NODEV)
		f |= MS_NODEV;
	if (sv.f_flag & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sv.f_flag & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sv.f_flag & ST_NOATIME)
		f |= MS_NOATIME;
	else if (sv.f_flag & ST_RELATIME)
		f |= MS_RELATIME;
	else
		f |= MS_STRICTATIME; /* a remount without an atime flag would mean relatime */
	return f;
}

/* In a user namespace the kernel locks the ro/nosuid/nodev/noexec/atime flags a mount had when
 * the namespace got it; a remount that would clear one fails with EPERM. `always_keep` carries
 * them over from the start (readonly paths, the read-only root: we only mean to add MS_RDONLY);
 * otherwise the asked flags are tried first, as given, and the locked ones added on EPERM. */
int stk_bind_remount(const char *path, int fd, unsigned long flags, bool always_keep)
{
	unsigned long f = MS_REMOUNT | MS_BIND | (flags & ~(unsigned long)(MS_REC | MS_REMOUNT | MS_BIND | PROPAGATION_FLAGS));
	unsigned long locked = stk_locked_flags(fd);

	if (always_keep) {
		if (f & ATIME_FLAGS & ~MS_NODIRATIME)
			locked &= ~(unsigned long)(MS_NOATIME | MS_RELATIME | MS_STRICTATIME);
		return mount(NULL, path, NULL, f | locked, NULL);
	}
	if (mount(NULL, path, NULL, f, NULL) == 0)
		return 0;
	if (errno != EPERM)
		return -1;
	if (f & (MS_NOATIME | MS_RELATIME | MS_STRICTATIME))
		locked &= ~(unsigned long)(MS_NOATIME | MS_RELATIME | MS_STRICTATIME);
	return mount(NULL, path, NULL, f | locked, NULL);
}

/* The runtime asks for "cgroup" meaning "this container's cgroups". A fresh cgroup2 mount gives
 * that on a unified host (scoped by the cgroup namespace). On a hybrid or v1 host, or in a user
 * namespace without a cgroup namespace of its own, the kernel refuses it (EBUSY, EPERM, EINVAL),
 * and mounting the v1 hierarchies one by one would hand the container the host's whole tree. An
 * empty read-only tmpfs keeps the path present and the container starting; cgroup-aware programs
 * then see no controllers, which is what they would see with cgroups hidden. */
static int mount_cgroup(const char *target, int target_fd, const struct stk_mount *m)
{
	unsigned long flags = m->flags & ~(unsigned long)(MS_BIND | MS_REC | MS_REMOUNT | PROPAGATION_FLAGS);

	if (mount("cgroup2", target, "cgroup2", flags, NULL) == 0)
		return 0;
	if (errno != EBUSY && errno != EPERM && errno != EINVAL)
		return -1;
	/* EBUSY on a target that is already the root of a cgroup2 mount: the kernel refuses the same
	 * superblock twice on one mount point, whatever root the new mount would have. That mount got
	 * there with a recursive bind of /sys (a container without a network namespace of its own,
	 * every vm container among them, gets /sys that way), rooted at the top of the hierarchy, not
	 * at this cgroup namespace's root: it is taken off (it is this mount namespace's copy) and the
	 * mount made again. Were it kept, a container with a cgroup namespace of its own would see the
	 * whole tree with its own cgroup nowhere in it. */
	struct statfs sf;
	char under_path[32];
	_cleanup_close_ int under = -1;
	if (errno == EBUSY && fstatfs(target_fd, &sf) == 0 && sf.f_type == CGROUP2_SUPER_MAGIC &&
	    umount2(target, MNT_DETACH) == 0) {
		/* The fd still names the detached mount: the mount point is looked up again. */
		under = stk_open_in_root(stk.root_fd, m->target, STK_CREATE_NONE);
		if (under < 0)
			return -1;
		target = stk_fd_path(under, under_path);
		if (mount("cgroup2", target, "cgroup2", flags, NULL) == 0)
			return 0;
		if (errno != EPERM && errno != EINVAL)
			return -1;
	}
	return mount("tmpfs", target, "tmpfs", flags | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
		     "mode=0555");
}

/* Whether a mount's data names a mode= option. */
static bool has_mode_option(const char *data)
{
	for (const char *p = data; *p != '\0';) {
		if (strncmp(p, "mode=", 5) == 0)
			return true;
		const char *comma = strchr(p, ',');
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return false;
}

/* As runc: a tmpfs mounted over a directory the root has, with no mode= of its own, takes that
 * directory's mode (sticky and set-group-id bits included), not tmpfs's 1777: an image's 0700
 * directory stays private under a tmpfs. NULL when the mount's own data stands. */
static char *tmpfs_data_with_mode(const struct stk_mount *m)
{
	if (strcmp(m->fstype, "tmpfs") != 0 || has_mode_option(m->data))
		return NULL;
	_cleanup_close_ int existing = stk_open_in_root(stk.root_fd, m->target, STK_CREATE_NONE);
	struct stat st;
	if (existing < 0 || fstat(existing, &st) < 0 || !S_ISDIR(st.st_mode))
		return NULL;
	char *data;
	if (asprintf(&data, "%s%smode=%04o", m->data, m->data[0] ? "," : "", (unsigned)(st.st_mode & 07777)) < 0)
		stk_fail(ENOMEM, "mount", "options of %s", m->target);
	return data;
}

/* An id-mapped bind (TAG_MOUNT_IDMAP): a clone of the source's tree, given the user namespace's
 * mapping while it is detached (the only time the kernel takes one), then moved onto the target. */
static int idmapped_bind(const struct stk_mount *m, const char *source, int target_fd)
{
	unsigned int rec = (m->flags & MS_REC) ? AT_RECURSIVE : 0;
	_cleanup_close_ int tree = sys_open_tree(AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec);
	if (tree < 0)
		return -1;
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)m->userns_fd };
	if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | rec, &attr, sizeof attr) < 0) {
		if (errno == EINVAL)
			stk_fail(EINVAL, "mount", "id-map bind %s on %s: its file system cannot be id-mapped", m->source, m->target);
		return -1;
	}
	return sys_move_mount(tree, "", target_fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH);
}

void stk_do_mount(const struct stk_mount *m)
{
	char src_path[32], target_path[32];
	const char *source = m->source;
	_cleanup_close_ int src_fd = -1;
	_cleanup_close_ int target_fd = -1;
	_cleanup_close_ int mounted_fd = -1;
	bool bind = (m->mflags & STK_MOUNTF_BIND) != 0;
	enum stk_create create = STK_CREATE_DIR;

	if (m->mflags & STK_MOUNTF_SOURCE_IN_CONTAINER) {
		src_fd = stk_open_in_root(stk.root_fd, m->source, STK_CREATE_NONE);
		if (src_fd < 0)
			stk_fail_errno("mount", "source %s (in the container) of %s", m->source, m->target);
		source = stk_fd_path(src_fd, src_path);
	} else if (bind && (m->mflags & STK_MOUNTF_SOURCE_RESOLVED)) {
		/* The caller resolved this path and decided on it (stockade do: not the state root, not
		 * /proc ...): a link put on its way since then (a directory swapped by whoever owns its
		 * parent) is refused, not followed. The mount then binds what this fd holds. */
		src_fd = sys_openat2(AT_FDCWD, m->source, O_PATH | O_CLOEXEC, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
		if (src_fd < 0)
			stk_fail_errno("mount", "bind source %s of %s: no longer the path that was checked (a symlink on its way?)", m->source, m->target);
		source = stk_fd_path(src_fd, src_path);
	}
	if (bind) {
		struct stat st;
		if (stat(source, &st) < 0)
			stk_fail_errno("mount", "bind source %s of %s", m->source, m->target);
		if (!S_ISDIR(st.st_mode))
			create = STK_CREATE_FILE;
	}

	_cleanup_free_ char *with_mode = bind ? NULL : tmpfs_data_with_mode(m);
	const char *data = with_mode != NULL ? with_mode : m->data;
	target_fd = stk_open_in_root(stk.root_fd, m->target, create);
	if (target_fd < 0)
		stk_fail_errno("mount", "create mount point %s", m->target);
	const char *target = stk_fd_path(target_fd, target_path);

	int r;
	if (bind && m->userns_fd >= 0)
		r = idmapped_bind(m, source, target_fd);
	else if (bind)
		r = mount(source, target, NULL, MS_BIND | (m->flags & MS_REC), NULL);
	else if (strcmp(m->fstype, "cgroup") == 0)
		r = mount_cgroup(target, target_fd, m);
	else
		r = mount(source[0] ? source : "none", target, m->fstype,
			  m->flags & ~(unsigned long)(MS_BIND | MS_REMOUNT | PROPAGATION_FLAGS),
			  data[0] ? data : NULL);
	if (r < 0)
		stk_fail_errno("mount", "mount %s%s%s on %s", bind ? "bind " : "", bind ? "" : m->fstype,
			       bind ? m->source : "", m->target);

	bool copy_up = !bind && (m->mflags & STK_MOUNTF_COPYUP);
	if (!(bind && (m->mflags & STK_MOUNTF_REMOUNT)) && m->propagation == 0 && m->rattr == 0 && !copy_up)
		return;

	/* /proc/self/fd/N of the target still names the mount point under the new mount; look the
	 * path up again to reach the new mount itself. */
	mounted_fd = stk_open_in_root(stk.root_fd, m->target, STK_CREATE_NONE);
	if (mounted_fd < 0)
		stk_fail_errno("mount", "reopen %s after mounting", m->target);
	target = stk_fd_path(mounted_fd, target_path);

	if (copy_up)
		stk_copy_up(target_fd, mounted_fd, m->target);
	if (bind && (m->mflags & STK_MOUNTF_REMOUNT) && stk_bind_remount(target, mounted_fd, m->flags, false) < 0)
		stk_fail_errno("mount", "remount %s with flags 0x%x", m->target, m->flags);
	if (m->propagation && mount(NULL, target, NULL, m->propagation, NULL) < 0)
		stk_fail_errno("mount", "set propagation 0x%x of %s", m->propagation, m->target);
	if (m->rattr) {
		uint64_t clr = (m->rattr & MOUNT_ATTR__ATIME) ? MOUNT_ATTR__ATIME : 0;
		if (sys_mount_setattr(mounted_fd, "", AT_EMPTY_PATH | AT_RECURSIVE, m->rattr, clr) < 0)
			stk_fail_errno("mount_setattr", "attributes 0x%x on %s and below", m->rattr, m->target);
	}
}
