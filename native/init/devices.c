/* stockade-init: device nodes and /dev symlinks, created inside the root before pivot_root. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "init.h"

/* The host's node at the same path, bind-mounted: the way to get a device where mknod is refused
 * (user namespaces). */
static void bind_device(const struct stk_device *d)
{
	char path[32];
	_cleanup_close_ int fd = stk_open_in_root(stk.root_fd, d->path, STK_CREATE_FILE);
	if (fd < 0)
		stk_fail_errno("device", "create %s", d->path);
	if (mount(d->path, stk_fd_path(fd, path), NULL, MS_BIND, NULL) < 0)
		stk_fail_errno("device", "bind the host's %s", d->path);
}

void stk_create_devices(const struct stk_plan *plan)
{
	for (size_t i = 0; i < plan->n_devices; i++) {
		const struct stk_device *d = &plan->devices[i];
		const char *base;

		if (d->dflags & STK_DEVICEF_BIND) {
			bind_device(d);
			continue;
		}
		_cleanup_close_ int dir = stk_open_parent_in_root(stk.root_fd, d->path, &base);
		if (dir < 0)
			stk_fail_errno("device", "create the directory of %s", d->path);

		mode_t type = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
		dev_t dev = d->type == 'p' ? 0 : makedev(d->major, d->minor);
		/* umask is 0 during setup, so the node gets exactly these permissions. */
		if (mknodat(dir, base, type | (d->mode & 07777), dev) < 0) {
			if (errno == EEXIST)
				continue; /* the image brought its own */
			if (errno == EPERM) {
				bind_device(d);
				continue;
			}
			stk_fail_errno("device", "mknod %s", d->path);
		}
		if (fchownat(dir, base, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
			stk_fail_errno("device", "chown %s to %u:%u", d->path, d->uid, d->gid);
	}
}

void stk_create_symlinks(const struct stk_plan *plan)
{
	for (size_t i = 0; i < plan->n_symlinks; i++) {
		const struct stk_symlink *s = &plan->symlinks[i];
		const char *base;
		char existing[PATH_MAX];

		_cleanup_close_ int dir = stk_open_parent_in_root(stk.root_fd, s->linkpath, &base);
		if (dir < 0)
			stk_fail_errno("symlink", "create the directory of %s", s->linkpath);
		if (symlinkat(s->target, dir, base) == 0)
			continue;
		if (errno != EEXIST)
			stk_fail_errno("symlink", "%s -> %s", s->linkpath, s->target);
		ssize_t n = readlinkat(dir, base, existing, sizeof existing - 1);
		if (n >= 0) {
			existing[n] = '\0';
			if (strcmp(existing, s->target) == 0)
				continue;
		}
		stk_fail(EEXIST, "symlink", "%s exists and is not a link to %s", s->linkpath, s->target);
	}
}
