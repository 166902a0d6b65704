/* stockade-rbind [--ro | --idmap UID_MAP GID_MAP] SOURCE TARGET: binds SOURCE (and, but with --idmap,
 * every mount below it) onto TARGET, in one step.
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
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/mount.h>

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

int main(int argc, char **argv)
{
  int ro = argc == 4 && strcmp(argv[1], "--ro") == 0;
  int idmap = argc == 6 && strcmp(argv[1], "--idmap") == 0;
  int skip = ro ? 1 : idmap ? 3 : 0;
  if (argc != 3 + skip) {
    fprintf(stderr, "usage: stockade-rbind [--ro | --idmap UID_MAP GID_MAP] SOURCE TARGET\n");
    return 2;
  }
  const char *source = argv[1 + skip];
  const char *target = argv[2 + skip];
  unsigned int rec = idmap ? 0 : AT_RECURSIVE;
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | rec);
  if (tree < 0) return fail("open_tree", source);
  if (ro) {
    struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) return fail("mount_setattr (read-only) on", source);
  }
  if (idmap) {
    int userns = userns_with_maps(argv[2], argv[3]);
    if (userns < 0) return fail("user namespace for the id map of", source);
    struct mount_attr attr = { .attr_set = MOUNT_ATTR_IDMAP | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, .userns_fd = (uint64_t)userns };
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) return fail("mount_setattr (id map) on", source);
    close(userns);
  }
  if (syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0) return fail("move_mount onto", target);
  return 0;
}
