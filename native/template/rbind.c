/* stockade-rbind [--ro] SOURCE TARGET: binds SOURCE and every mount below it onto TARGET, in one step.
 *
 * A VM's share (its root and bind sources, served to the guest by virtiofsd or by QEMU's 9p) is
 * made of recursive binds in the server's own mount namespace. `mount --rbind` then `mount -o
 * remount,bind,ro` leaves every submount of a read-only source writable (util-linux 2.38 has no
 * recursive read-only), so a guest that took its server over could write below a submount of a
 * source it was given read-only. Here the tree is cloned detached (open_tree), made read-only,
 * nosuid and nodev on every mount of it at once (mount_setattr, AT_RECURSIVE) and only then
 * attached at TARGET (move_mount): no mount of it is ever writable at TARGET.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
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

int main(int argc, char **argv)
{
  int ro = argc == 4 && strcmp(argv[1], "--ro") == 0;
  if (argc != 3 + ro) {
    fprintf(stderr, "usage: stockade-rbind [--ro] SOURCE TARGET\n");
    return 2;
  }
  const char *source = argv[1 + ro];
  const char *target = argv[2 + ro];
  int tree = (int)syscall(SYS_open_tree, AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (tree < 0) return fail("open_tree", source);
  if (ro) {
    struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0) return fail("mount_setattr (read-only) on", source);
  }
  if (syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0) return fail("move_mount onto", target);
  return 0;
}
