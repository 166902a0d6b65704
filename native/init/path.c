/* stockade-init: resolving and creating paths inside the container root without ever leaving it.
 *
 * The root file system is untrusted: any component may be a symlink meant to lead a mount or a
 * device node onto the host. Every lookup goes through openat2(RESOLVE_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS) from an fd of the root, so the kernel resolves "..", absolute links and
 * relative links as if that fd were "/". Missing components are created one at a time with
 * mkdirat() in a parent that was itself resolved that way, and the object to mount on is handed
 * out as an O_PATH fd that callers use through /proc/self/fd/N, never as a path string. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "init.h"
#include "syscalls.h"

#define RESOLVE_FLAGS (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
#define MAX_LINKS 40

const char *stk_fd_path(int fd, char buf[static 32])
{
	snprintf(buf, 32, "/proc/self/fd/%d", fd);
	return buf;
}

/* Opens `rel` (relative to the root, "" for the root itself). EAGAIN means a concurrent rename or
 * mount raced the lookup; the kernel asks us to try again. */
static int open_rel(int root_fd, const char *rel, int extra)
{
	for (int tries = 0;; tries++) {
		int fd = sys_openat2(root_fd, rel[0] ? rel : ".", O_PATH | O_CLOEXEC | extra, RESOLVE_FLAGS);
		if (fd >= 0 || errno != EAGAIN || tries >= 16)
			return fd;
	}
}

/* Builds the path to resolve next after meeting a dangling symlink at buf[start, end):
 * the link's target in place of the component, followed by the rest of the path. */
static char *splice_link(const char *buf, size_t start, size_t end, const char *link)
{
	const char *rest = buf + end;
	size_t plen = link[0] == '/' ? 0 : start;
	size_t n = plen + strlen(link) + strlen(rest) + 2;
	char *out = malloc(n);
	if (out == NULL)
		return NULL;
	memcpy(out, buf, plen);
	out[plen] = '\0';
	strcat(out, link);
	strcat(out, rest);
	return out;
}

int stk_open_in_root(int root_fd, const char *path, enum stk_create create)
{
	_cleanup_free_ char *buf = strdup(path);
	int links = 0;

	if (buf == NULL)
		return -1;
restart:;
	size_t skip = strspn(buf, "/");
	memmove(buf, buf + skip, strlen(buf + skip) + 1);
	size_t len = strlen(buf);
	size_t i = 0;

	for (;;) {
		i += strspn(buf + i, "/");
		if (i >= len)
			return open_rel(root_fd, buf, 0); /* the whole path exists (or it was the root) */
		size_t start = i;
		size_t end = start + strcspn(buf + start, "/");
		bool last = buf[end + strspn(buf + end, "/")] == '\0';

		char saved = buf[end];
		buf[end] = '\0';
		int fd = open_rel(root_fd, buf, 0);
		buf[end] = saved;
		if (fd >= 0) {
			if (last)
				return fd;
			close(fd);
			i = end;
			continue;
		}
		if (errno != ENOENT || (last && create == STK_CREATE_NONE))
			return -1;

		/* Create buf[start, end) in its parent, which the previous round resolved. */
		char name[NAME_MAX + 1];
		if (end - start > NAME_MAX) {
			errno = ENAMETOOLONG;
			return -1;
		}
		memcpy(name, buf + start, end - start);
		name[end - start] = '\0';
		saved = buf[start];
		buf[start] = '\0';
		_cleanup_close_ int parent = open_rel(root_fd, buf, O_DIRECTORY);
		buf[start] = saved;
		if (parent < 0)
			return -1;

		int r;
		if (last && create == STK_CREATE_FILE) {
			r = openat(parent, name, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
			if (r >= 0)
				close(r);
		} else {
			r = mkdirat(parent, name, 0755);
		}
		if (r < 0 && errno == EEXIST) {
			/* The name exists but did not resolve: a symlink to something missing. Follow it
			 * by hand, still inside the root, the way the kernel would have. */
			char link[PATH_MAX];
			ssize_t n = readlinkat(parent, name, link, sizeof link - 1);
			if (n < 0 && errno != EINVAL)
				return -1;
			if (++links > MAX_LINKS) {
				errno = ELOOP;
				return -1;
			}
			if (n < 0) /* not a link: raced with a creator, look again */
				goto restart;
			link[n] = '\0';
			char *next = splice_link(buf, start, end, link);
			if (next == NULL)
				return -1;
			free(buf);
			buf = next;
			goto restart;
		}
		if (r < 0)
			return -1;
		/* Loop without advancing: the next round opens what was just created. */
	}
}

int stk_open_parent_in_root(int root_fd, const char *path, const char **base)
{
	const char *slash = strrchr(path, '/');
	const char *b = slash ? slash + 1 : path;

	if (b[0] == '\0' || strcmp(b, ".") == 0 || strcmp(b, "..") == 0) {
		errno = EINVAL;
		return -1;
	}
	_cleanup_free_ char *dir = strndup(path, (size_t)(b - path));
	if (dir == NULL)
		return -1;
	*base = b;
	return stk_open_in_root(root_fd, dir, STK_CREATE_DIR);
}
