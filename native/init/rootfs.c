/* stockade-init: building the container root, entering it, and hiding or freezing paths in it. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "init.h"
#include "syscalls.h"

static char root_path[PATH_MAX];

/* Escapes the characters overlayfs splits its options on (',' between options, ':' between lower
 * dirs) and the escape itself. */
static bool overlay_escape(char *out, size_t cap, const char *in)
{
	size_t o = 0;
	for (; *in; in++) {
		if (*in == ',' || *in == ':' || *in == '\\') {
			if (o + 1 >= cap)
				return false;
			out[o++] = '\\';
		}
		if (o + 1 >= cap)
			return false;
		out[o++] = *in;
	}
	out[o] = '\0';
	return true;
}

static void build_overlay_root(const struct stk_plan *plan)
{
	const char *mp = plan->rootfs_mountpoint;
	static const char *const dirs[] = { "upper", "work", "merged" };
	char lower[PATH_MAX * 2], base[PATH_MAX * 2], data[PATH_MAX * 6 + 64];

	char tmpfs_data[256];
	if ((size_t)snprintf(tmpfs_data, sizeof tmpfs_data, "mode=0755%s%s", plan->overlay_tmpfs ? "," : "",
			     plan->overlay_tmpfs ? plan->overlay_tmpfs : "") >= sizeof tmpfs_data)
		stk_fail(ENAMETOOLONG, "rootfs", "the overlay's tmpfs options %s", plan->overlay_tmpfs);
	if (mount("tmpfs", mp, "tmpfs", MS_NOSUID | MS_NODEV, tmpfs_data) < 0)
		stk_fail_errno("rootfs", "mount the overlay's tmpfs on %s", mp);
	_cleanup_close_ int mp_fd = open(mp, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (mp_fd < 0)
		stk_fail_errno("rootfs", "open %s", mp);
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
		if (mkdirat(mp_fd, dirs[i], 0755) < 0)
			stk_fail_errno("rootfs", "create %s/%s", mp, dirs[i]);

	if (!overlay_escape(lower, sizeof lower, plan->rootfs_source) || !overlay_escape(base, sizeof base, mp))
		stk_fail(ENAMETOOLONG, "rootfs", "overlay paths %s and %s", plan->rootfs_source, mp);
	if ((size_t)snprintf(data, sizeof data, "lowerdir=%s,upperdir=%s/upper,workdir=%s/work", lower, base,
			     base) >= sizeof data - 16)
		stk_fail(ENAMETOOLONG, "rootfs", "overlay options for %s", plan->rootfs_source);
	if ((size_t)snprintf(root_path, sizeof root_path, "%s/merged", mp) >= sizeof root_path)
		stk_fail(ENAMETOOLONG, "rootfs", "overlay root under %s", mp);

	/* The lower layer is the host's: its set-id programs and device nodes stay inert. */
	if (mount("overlay", root_path, "overlay", MS_NOSUID | MS_NODEV, data) == 0)
		return;
	/* An overlay mounted from inside a user namespace cannot use trusted.* xattrs. */
	if (stk.in_userns && errno == EINVAL) {
		strncat(data, ",userxattr", sizeof data - strlen(data) - 1);
		if (mount("overlay", root_path, "overlay", MS_NOSUID | MS_NODEV, data) == 0)
			return;
	}
	stk_fail_errno("rootfs", "mount the overlay of %s on %s", plan->rootfs_source, root_path);
}

/* Every mount below `path` read-only, `path` itself as it was: mount_setattr has no way to skip
 * the top of a tree, so the tree goes read-only and the top is given back its write access. */
static void submounts_readonly(const char *path)
{
	_cleanup_close_ int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		stk_fail_errno("rootfs", "open %s", path);
	bool top_was_readonly = (stk_locked_flags(fd) & MS_RDONLY) != 0;
	if (sys_mount_setattr(fd, "", AT_EMPTY_PATH | AT_RECURSIVE, MOUNT_ATTR_RDONLY, 0) < 0)
		stk_fail_errno("mount_setattr", "make the mounts below %s read-only", path);
	if (!top_was_readonly && sys_mount_setattr(fd, "", AT_EMPTY_PATH, 0, MOUNT_ATTR_RDONLY) < 0)
		stk_fail_errno("mount_setattr", "give %s its write access back until setup ends", path);
}

void stk_rootfs_prepare(const struct stk_plan *plan)
{
	unsigned long prop = MS_SLAVE | MS_REC;

	if (!plan->has_rootfs)
		return;
	bool host_ns = (plan->rootfs_flags & STK_ROOTFS_HOST_MOUNT_NS) != 0;
	/* Nothing mounted below may reach the host: receive the host's mounts at most, never send.
	 * In the host's own mount namespace "/" is the host's to set, never ours. */
	if (plan->has_rootfs_propagation && (plan->rootfs_propagation & MS_PRIVATE))
		prop = MS_PRIVATE | MS_REC;
	if (!host_ns && mount(NULL, "/", NULL, prop, NULL) < 0)
		stk_fail_errno("mount", "make / %s", prop & MS_PRIVATE ? "rprivate" : "rslave");

	if (plan->rootfs_flags & STK_ROOTFS_OVERLAY) {
		build_overlay_root(plan);
	} else {
		if (strlen(plan->rootfs_mountpoint) >= sizeof root_path)
			stk_fail(ENAMETOOLONG, "rootfs", "%s", plan->rootfs_mountpoint);
		strcpy(root_path, plan->rootfs_mountpoint);
		if (mount(plan->rootfs_source, root_path, NULL, MS_BIND | MS_REC, NULL) < 0)
			stk_fail_errno("rootfs", "bind %s on %s", plan->rootfs_source, root_path);
		/* Shared with the host: what is mounted below the root stays there, seen by no peer. */
		if (host_ns && mount(NULL, root_path, NULL, MS_PRIVATE | MS_REC, NULL) < 0)
			stk_fail_errno("rootfs", "make %s rprivate", root_path);
	}
	/* A host root (stockade do): read-only, nosuid and nodev all the way down, so no host
	 * mount below it (procfs, sysfs, devtmpfs, a tmpfs someone mounted) is writable or lends
	 * its set-id programs or device nodes. */
	if ((plan->rootfs_flags & STK_ROOTFS_RECURSIVE_READONLY) &&
	    sys_mount_setattr(AT_FDCWD, root_path, AT_RECURSIVE,
			      MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0) < 0)
		stk_fail_errno("mount_setattr", "make %s and every mount below it read-only, nosuid and nodev", root_path);
	/* root.readonly: the host mounts the recursive bind brought along below the root are made
	 * read-only now, the root itself only at the end (stk_rootfs_readonly), once the config's
	 * mount points exist in it. */
	if ((plan->rootfs_flags & STK_ROOTFS_READONLY) && !(plan->rootfs_flags & (STK_ROOTFS_RECURSIVE_READONLY | STK_ROOTFS_OVERLAY)))
		submounts_readonly(root_path);

	stk.root = root_path;
	stk.root_fd = open(root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (stk.root_fd < 0)
		stk_fail_errno("rootfs", "open %s", root_path);
}

void stk_rootfs_enter(const struct stk_plan *plan)
{
	if (!plan->has_rootfs) {
		/* An exec into a container whose root is bound in the host's mount namespace: its root,
		 * as its init has it, before any path is looked up. */
		if (plan->chroot_path != NULL && (chroot(plan->chroot_path) < 0 || chdir("/") < 0))
			stk_fail_errno("chroot", "%s", plan->chroot_path);
		return;
	}
	if (fchdir(stk.root_fd) < 0)
		stk_fail_errno("pivot_root", "enter %s", stk.root);

	if (plan->rootfs_flags & STK_ROOTFS_HOST_MOUNT_NS) {
		/* The mount namespace is the host's: neither pivot_root nor a move onto "/" may touch
		 * it. The root is entered as runc does without a mount namespace, by chroot alone. */
		if (chroot(".") < 0)
			stk_fail_errno("chroot", "%s", stk.root);
	} else if (plan->rootfs_flags & STK_ROOTFS_NO_PIVOT) {
		if (mount(".", "/", NULL, MS_MOVE, NULL) < 0)
			stk_fail_errno("mount", "move %s onto /", stk.root);
		if (chroot(".") < 0)
			stk_fail_errno("chroot", "%s", stk.root);
	} else {
		_cleanup_close_ int old_root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (old_root < 0)
			stk_fail_errno("pivot_root", "open the old root");
		/* Pivot onto itself: the old root ends up stacked on the new one, where it can be
		 * detached without needing a directory for it inside the container. */
		if (sys_pivot_root(".", ".") < 0)
			stk_fail_errno("pivot_root", "%s", stk.root);
		if (fchdir(old_root) < 0)
			stk_fail_errno("pivot_root", "enter the old root");
		/* Slave first, so detaching it cannot propagate unmounts back to the host. */
		if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
			stk_fail_errno("pivot_root", "make the old root rslave");
		if (umount2(".", MNT_DETACH) < 0)
			stk_fail_errno("pivot_root", "detach the old root");
	}
	if (chdir("/") < 0)
		stk_fail_errno("pivot_root", "chdir to the new root");
	close(stk.root_fd);
	stk.root_fd = -1;
}

void stk_rootfs_propagation(const struct stk_plan *plan)
{
	if (plan->has_rootfs_propagation && plan->rootfs_propagation &&
	    mount(NULL, "/", NULL, plan->rootfs_propagation, NULL) < 0)
		stk_fail_errno("mount", "set propagation 0x%x of /", plan->rootfs_propagation);
}

/* After pivot_root "/" is the container's root, so plain lookups cannot leave it. */
void stk_masked_paths(const struct stk_plan *plan)
{
	for (size_t i = 0; i < plan->n_masked; i++) {
		const char *p = plan->masked[i];
		struct stat st;
		if (stat(p, &st) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue;
			stk_fail_errno("masked-path", "%s", p);
		}
		int r;
		if (S_ISDIR(st.st_mode))
			r = mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
				  "size=4k,nr_inodes=1,mode=0555");
		else
			r = mount("/dev/null", p, NULL, MS_BIND, NULL);
		if (r < 0)
			stk_fail_errno("masked-path", "%s", p);
	}
}

void stk_readonly_paths(const struct stk_plan *plan)
{
	for (size_t i = 0; i < plan->n_readonly; i++) {
		const char *p = plan->readonly[i];
		struct stat st;
		if (stat(p, &st) < 0) {
			if (errno == ENOENT || errno == ENOTDIR)
				continue;
			stk_fail_errno("readonly-path", "%s", p);
		}
		if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
			stk_fail_errno("readonly-path", "bind %s onto itself", p);
		_cleanup_close_ int fd = open(p, O_PATH | O_CLOEXEC);
		if (fd < 0 || stk_bind_remount(p, fd, MS_RDONLY, true) < 0)
			stk_fail_errno("readonly-path", "remount %s read-only", p);
	}
}

void stk_rootfs_readonly(const struct stk_plan *plan)
{
	if (!plan->has_rootfs || !(plan->rootfs_flags & STK_ROOTFS_READONLY))
		return;
	_cleanup_close_ int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || stk_bind_remount("/", fd, MS_RDONLY, true) < 0)
		stk_fail_errno("readonly-root", "remount / read-only");
}
