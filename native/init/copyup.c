/* tmpcopyup: what a directory held before a tmpfs was mounted over it is copied into the tmpfs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "init.h"

static int copy_file(int src_dir, int dst_dir, const char *name, const struct stat *st)
{
	_cleanup_close_ int in = openat(src_dir, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0)
		return -1;
	_cleanup_close_ int out = openat(dst_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
					 st->st_mode & 07777);
	if (out < 0)
		return -1;
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0) {
		if (stk_write_all(out, buf, (size_t)n) < 0)
			return -1;
	}
	if (n < 0)
		return -1;
	return fchown(out, st->st_uid, st->st_gid) < 0 || fchmod(out, st->st_mode & 07777) < 0 ? -1 : 0;
}

/* Copies the tree below src_dir into dst_dir (both directory fds), keeping modes and owners.
 * Symlinks are copied as links and never followed: the source lies inside the image. */
static int copy_tree(int src_dir, int dst_dir, int depth)
{
	if (depth > 64) {
		errno = ELOOP;
		return -1;
	}
	int scan = fcntl(src_dir, F_DUPFD_CLOEXEC, 0);
	if (scan < 0)
		return -1;
	DIR *d = fdopendir(scan);
	if (!d) {
		close(scan);
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d))) {
		const char *name = e->d_name;
		struct stat st;
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		if (fstatat(src_dir, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = -1;
			break;
		}
		if (S_ISDIR(st.st_mode)) {
			if (mkdirat(dst_dir, name, st.st_mode & 07777) < 0) {
				rc = -1;
				break;
			}
			_cleanup_close_ int s = openat(src_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			_cleanup_close_ int t = openat(dst_dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (s < 0 || t < 0 || copy_tree(s, t, depth + 1) < 0 || fchown(t, st.st_uid, st.st_gid) < 0 ||
			    fchmod(t, st.st_mode & 07777) < 0)
				rc = -1;
		} else if (S_ISREG(st.st_mode)) {
			rc = copy_file(src_dir, dst_dir, name, &st);
		} else if (S_ISLNK(st.st_mode)) {
			char target[4096];
			ssize_t n = readlinkat(src_dir, name, target, sizeof target - 1);
			if (n < 0) {
				rc = -1;
				break;
			}
			target[n] = '\0';
			rc = symlinkat(target, dst_dir, name) < 0 ||
			     fchownat(dst_dir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 ? -1 : 0;
		} else {
			rc = mknodat(dst_dir, name, st.st_mode, st.st_rdev) < 0 ||
			     fchownat(dst_dir, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 ? -1 : 0;
		}
	}
	int saved = errno;
	closedir(d);
	errno = saved;
	return rc;
}

void stk_copy_up(int under_fd, int mounted_fd, const char *target)
{
	/* under_fd was opened before the mount: it still reaches the directory now hidden below it. */
	_cleanup_close_ int src = openat(under_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int dst = openat(mounted_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	if (src < 0 || dst < 0 || fstat(src, &st) < 0)
		stk_fail_errno("mount", "tmpcopyup: open %s", target);
	if (copy_tree(src, dst, 0) < 0)
		stk_fail_errno("mount", "tmpcopyup: copy the contents of %s", target);
	if (fchown(dst, st.st_uid, st.st_gid) < 0 || fchmod(dst, st.st_mode & 07777) < 0)
		stk_fail_errno("mount", "tmpcopyup: owner and mode of %s", target);
}
