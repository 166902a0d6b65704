/* stockade-rbind [--ro] [--ns NSPATH] SOURCE TARGET: binds SOURCE and every mount below it onto TARGET, in one step.
 * stockade-rbind --ns NSPATH --umount TARGET: detaches what is mounted at TARGET in that namespace.
 *
 * A VM's share (its root and bind sources, served to the guest by virtiofsd or by QEMU's 9p) is
 * made of recursive binds in the server's own mount namespace. `mount --rbind` then `mount -o
 * remount,bind,ro` leaves every submount of a read-only source writable (util-linux 2.38 has no
 * recursive read-only), so a guest that took its server over could write below a submount of a
 * source it was given read-only. Here the tree is cloned detached (open_tree), made read-only,
 * nosuid and nodev on every mount of it at once (mount_setattr, AT_RECURSIVE) and only then
 * attached at TARGET (move_mount): no mount of it is ever writable at TARGET.
 *
 * With --ns, TARGET is a path in the mount namespace NSPATH (/proc/PID/ns/mnt of the share's file
 * server, whose root may be the share itself): the tree is cloned here, where SOURCE is visible,
 * and attached there after setns. That is how a pod's later containers reach its running VM
 * (src/vm/pod-share.ts): microvm has no hot-plug, but a running server serves a mount that
 * appears in its namespace. setns into a mount namespace needs a single-threaded caller, which
 * Node is not: hence here.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/mount.h>

/* <sys/mount.h> clashes with <linux/mount.h> on glibc 2.36: umount2 declared here. */
int umount2(const char *target, int flags);
#ifndef MNT_DETACH
#define MNT_DETACH 2
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

static int fail(const char *what, const char *path)
{
  fprintf(stderr, "stockade-rbind: %s %s: %s\n", what, path, strerror(errno));
  return 1;
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
  fprintf(stderr, "usage: stockade-rbind [--ro] [--ns NSPATH] SOURCE TARGET | stockade-rbind --ns NSPATH --umount TARGET\n");
  return 2;
}

int main(int argc, char **argv)
{
  int ro = 0;
  const char *nspath = NULL;
  int i = 1;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
    if (strcmp(argv[i], "--ro") == 0) ro = 1;
    else if (strcmp(argv[i], "--ns") == 0 && i + 1 < argc) nspath = argv[++i];
    else if (strcmp(argv[i], "--umount") == 0 && nspath != NULL && i + 2 == argc) {
      if (enter(nspath) != 0) return 1;
      if (umount2(argv[i + 1], MNT_DETACH) < 0) return fail("umount", argv[i + 1]);
      return 0;
    } else return usage();
  }
  if (argc - i != 2) return usage();
  const char *source = argv[i];
  const char *target = argv[i + 1];
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (tree < 0) return fail("open_tree", source);
  if (ro) {
    struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) return fail("mount_setattr (read-only) on", source);
  }
  if (nspath != NULL && enter(nspath) != 0) return 1;
  if (syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0) return fail("move_mount onto", target);
  return 0;
}
