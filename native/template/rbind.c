/* stockade-rbind [--ro] SOURCE TARGET: binds SOURCE and every mount below it onto TARGET, in one step.
 * stockade-rbind OP... [--chroot DIR] [-- COMMAND ARG...]: several such steps, then COMMAND, where
 *   OP is  --ro SOURCE TARGET | --bind SOURCE TARGET | SOURCE TARGET | --idmap UID_MAP GID_MAP SOURCE TARGET
 *        | --proc TARGET
 *        | --ns NSPATH (the next step's TARGET is in that mount namespace), before a bind or --umount TARGET
 * (a VM's jail in one process: its mounts, the chroot and QEMU's next wrapper; a run of `mount`
 * per mount cost about half a second of every VM's start here under load).
 *
 * A VM's share (its root and bind sources, served to the guest by virtiofsd or by QEMU's 9p) is
 * made of recursive binds in the server's own mount namespace. `mount --rbind` then `mount -o
 * remount,bind,ro` leaves every submount of a read-only source writable (util-linux 2.38 has no
 * recursive read-only), so a guest that took its server over could write below a submount of a
 * source it was given read-only. Here the tree is cloned detached (open_tree), made read-only,
 * nosuid and nodev on every mount of it at once (mount_setattr, AT_RECURSIVE) and only then
 * attached at TARGET (move_mount): no mount of it is ever writable at TARGET.
 *
 * --idmap: SOURCE's own file system only, id-mapped through a user namespace with these maps
 * ("ON-DISK SEEN COUNT" lines, as /proc/PID/uid_map takes them), nosuid and nodev (do --bind
 * SRC:rw, whose command is not the caller): the file server, root, then writes as the ids it is
 * given only where the map has them, and an id the map lacks (root, to a guest that took the
 * server over) cannot own anything made or chowned there (EOVERFLOW).
 *
 * With --ns, TARGET is a path in the mount namespace NSPATH (/proc/PID/ns/mnt of the share's file
 * server, whose root may be the share itself): the tree is cloned here, where SOURCE is visible,
 * and attached there after setns. That is how a pod's later containers reach its running VM
 * (src/vm/pod-share.ts): microvm has no hot-plug, but a running server serves a mount that
 * appears in its namespace. setns into a mount namespace needs a single-threaded caller, which
 * Node is not: hence here.
 *
 * --nofollow, before a bind: SOURCE is a path its caller resolved and checked (stockade do's
 * --bind): walked with no symlink at all (openat2 RESOLVE_NO_SYMLINKS), so that a directory on it
 * swapped for a link since the check fails the step instead of binding where the link leads.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/mount.h>
#include <linux/openat2.h>

#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

static int fail(const char *what, const char *path)
{
  fprintf(stderr, "stockade-rbind: %s %s: %s\n", what, path, strerror(errno));
  return 1;
}

static int write_map(const char *pid, const char *name, const char *map)
{
  char path[64];
  snprintf(path, sizeof path, "/proc/%s/%s", pid, name);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, map, strlen(map));
  int saved = errno;
  close(fd);
  errno = saved;
  return n == (ssize_t)strlen(map) ? 0 : -1;
}

/* A user namespace with these maps, as an fd: a child waits in a new one while its maps are
 * written and the namespace opened, then goes (native/init/ns.c does the same for the namespaces
 * level). The child names itself as /proc sees it: in a template's jail this runs in a pid
 * namespace of its own under the host's /proc, where clone's pid is not the child's. */
static int userns_with_maps(const char *uid_map, const char *gid_map)
{
  int hold[2], name[2];
  if (pipe2(hold, O_CLOEXEC) < 0 || pipe2(name, O_CLOEXEC) < 0) return -1;
  pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
  if (pid < 0) return -1;
  if (pid == 0) {
    char self[32] = "", c;
    close(hold[1]);
    close(name[0]);
    ssize_t n = readlink("/proc/self", self, sizeof self - 1);
    if (n > 0 && write(name[1], self, (size_t)n) != n) _exit(1);
    close(name[1]);
    while (read(hold[0], &c, 1) < 0 && errno == EINTR)
      ;
    _exit(0);
  }
  close(hold[0]);
  close(name[1]);
  char proc_pid[32] = "";
  ssize_t n;
  while ((n = read(name[0], proc_pid, sizeof proc_pid - 1)) < 0 && errno == EINTR)
    ;
  close(name[0]);
  int fd = -1;
  if (n <= 0) {
    errno = ESRCH;
  } else {
    proc_pid[n] = '\0';
    char path[64];
    snprintf(path, sizeof path, "/proc/%s/ns/user", proc_pid);
    if (write_map(proc_pid, "uid_map", uid_map) == 0 && write_map(proc_pid, "gid_map", gid_map) == 0) fd = open(path, O_RDONLY | O_CLOEXEC);
  }
  int saved = errno;
  close(hold[1]);
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
  errno = saved;
  return fd;
}

/* Enters the mount namespace at nspath (its root and working directory become that namespace's root). */
static int enter(const char *nspath)
{
  int ns = open(nspath, O_RDONLY | O_CLOEXEC);
  if (ns < 0) return fail("open", nspath);
  if (setns(ns, CLONE_NEWNS) < 0) return fail("setns into", nspath);
  close(ns);
  return 0;
}

static int usage(void)
{
  fprintf(stderr, "usage: stockade-rbind [--ns NSPATH] [--nofollow] [--ro|--bind|--idmap UID_MAP GID_MAP] SOURCE TARGET ... | --proc TARGET | --ns NSPATH --umount TARGET ... [--chroot DIR] [-- COMMAND ARG...]\n");
  return 2;
}

/* SOURCE's tree cloned detached, read-only, nosuid and nodev on every mount of it when asked, or
 * SOURCE's own mount id-mapped (maps non-NULL), then attached at TARGET (in the mount namespace
 * nspath when one is given: entered after the clone). */
static int rbind(const char *source, const char *target, int ro, const char *uid_map, const char *gid_map, const char *nspath, int nofollow)
{
  int idmap = uid_map != NULL;
  int at = AT_FDCWD, empty = 0;
  if (nofollow) {
    struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS };
    at = (int)syscall(SYS_openat2, AT_FDCWD, source, &how, sizeof how);
    if (at < 0) return fail("open (no longer the path that was checked: a symlink on its way?)", source);
    empty = AT_EMPTY_PATH;
  }
  int tree = (int)syscall(SYS_open_tree, at, empty ? "" : source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | empty | (idmap ? 0 : AT_RECURSIVE));
  if (at >= 0) close(at);
  if (tree < 0) return fail("open_tree", source);
  if (ro) {
    struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) return close(tree), fail("mount_setattr (read-only) on", source);
  }
  if (idmap) {
    int userns = userns_with_maps(uid_map, gid_map);
    if (userns < 0) return close(tree), fail("user namespace for the id map of", source);
    struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, .userns_fd = (uint64_t)userns };
    int r = (int)syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr);
    int saved = errno;
    close(userns);
    errno = saved;
    if (r < 0) return close(tree), fail("mount_setattr (id map) on", source);
  }
  if (nspath != NULL && enter(nspath) != 0) return close(tree), 1;
  int rc = syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0 ? fail("move_mount onto", target) : 0;
  close(tree);
  return rc;
}

int main(int argc, char **argv)
{
  int steps = 0;
  const char *nspath = NULL; /* --ns: for the next step only */
  int nofollow = 0;          /* --nofollow: for the next bind only */
  for (int i = 1; i < argc;) {
    const char *a = argv[i];
    if (strcmp(a, "--nofollow") == 0) {
      if (nofollow) return usage();
      nofollow = 1;
      i++;
      continue;
    }
    if (nofollow && (strcmp(a, "--umount") == 0 || strcmp(a, "--proc") == 0 || strcmp(a, "--chroot") == 0 || strcmp(a, "--") == 0 || strcmp(a, "--ns") == 0)) return usage();
    if (strcmp(a, "--ns") == 0) {
      if (i + 1 >= argc || nspath != NULL) return usage();
      nspath = argv[i + 1];
      i += 2;
      continue;
    }
    if (nspath != NULL && strcmp(a, "--umount") != 0 && strcmp(a, "--ro") != 0 && strcmp(a, "--bind") != 0 && strcmp(a, "--idmap") != 0 && a[0] == '-') return usage();
    if (strcmp(a, "--umount") == 0) {
      if (i + 1 >= argc || nspath == NULL) return usage();
      if (nspath != NULL && enter(nspath) != 0) return 1;
      if (umount2(argv[i + 1], MNT_DETACH) < 0) return fail("umount", argv[i + 1]);
      nspath = NULL;
      i += 2;
    } else if (strcmp(a, "--") == 0) {
      if (i + 1 >= argc) return usage();
      execv(argv[i + 1], argv + i + 1);
      return fail("exec", argv[i + 1]);
    } else if (strcmp(a, "--proc") == 0) {
      if (i + 1 >= argc) return usage();
      if (mount("proc", argv[i + 1], "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) return fail("mount proc on", argv[i + 1]);
      i += 2;
    } else if (strcmp(a, "--idmap") == 0) {
      if (i + 4 >= argc) return usage();
      if (rbind(argv[i + 3], argv[i + 4], 0, argv[i + 1], argv[i + 2], nspath, nofollow) != 0) return 1;
      nspath = NULL;
      nofollow = 0;
      i += 5;
    } else if (strcmp(a, "--chroot") == 0) {
      if (i + 1 >= argc) return usage();
      if (chroot(argv[i + 1]) < 0 || chdir("/") < 0) return fail("chroot", argv[i + 1]);
      i += 2;
    } else {
      int ro = strcmp(a, "--ro") == 0;
      int flagged = ro || strcmp(a, "--bind") == 0;
      if (!flagged && a[0] == '-') return usage();
      if (i + flagged + 1 >= argc) return usage();
      if (rbind(argv[i + flagged], argv[i + flagged + 1], ro, NULL, NULL, nspath, nofollow) != 0) return 1;
      nspath = NULL;
      nofollow = 0;
      i += flagged + 2;
    }
    steps++;
  }
  return steps == 0 || nspath != NULL || nofollow ? usage() : 0;
}
