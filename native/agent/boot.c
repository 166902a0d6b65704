/* stockade-agent: what PID 1 sets up before it serves: file systems, modules, the host's port. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "agent.h"

void agent_log(const char *fmt, ...)
{
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof buf - 2) n = sizeof buf - 2;
  buf[n++] = '\n';
  /* stderr is /dev/console once boot set it up; before that the kernel's initial console. */
  ssize_t w = write(2, "stockade-agent: ", 16);
  w = write(2, buf, (size_t)n);
  (void)w;
}

static int mount_one(const char *src, const char *target, const char *type, unsigned long flags, const char *data)
{
  if (mkdir(target, 0755) < 0 && errno != EEXIST) {
    agent_log("mkdir %s: %s", target, strerror(errno));
    return -1;
  }
  if (mount(src, target, type, flags, data) < 0) {
    agent_log("mount %s on %s: %s", type, target, strerror(errno));
    return -1;
  }
  return 0;
}

int agent_mount_basics(void)
{
  if (mount_one("devtmpfs", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755") < 0) return -1;
  /* The kernel may have found no /dev/console in the initramfs: point stdio at the real one now. */
  int con = open("/dev/console", O_RDWR | O_NOCTTY);
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) dup2(null, 0);
  if (con >= 0) {
    dup2(con, 1);
    dup2(con, 2);
  }
  if (con > 2) close(con);
  if (null > 2) close(null);
  if (mount_one("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) return -1;
  if (mount_one("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) return -1;
  if (mount_one("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0) return -1;
  return agent_leave_rootfs();
}

/* The initramfs is the kernel's rootfs, which pivot_root(2) refuses to move (it has no parent
 * mount): stockade-init's pivot_root into a container's root would fail with EINVAL. So the agent
 * moves a recursive bind of it over / and chroots there, as switch_root does; every process it
 * starts then has a root that is a mount with a parent. */
int agent_leave_rootfs(void)
{
  if (mkdir("/newroot", 0755) < 0 && errno != EEXIST) return agent_log("mkdir /newroot: %s", strerror(errno)), -1;
  if (mount("/", "/newroot", NULL, MS_BIND | MS_REC, NULL) < 0) return agent_log("bind / on /newroot: %s", strerror(errno)), -1;
  if (chdir("/newroot") < 0 || mount("/newroot", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0) {
    return agent_log("move the root: %s", strerror(errno)), -1;
  }
  return 0;
}

/* The initramfs lists its modules in load order (the host ordered them by their depends=). */
int agent_load_modules(const char *order_file)
{
  FILE *f = fopen(order_file, "re");
  if (f == NULL) {
    agent_log("open %s: %s", order_file, strerror(errno));
    return -1;
  }
  char line[256];
  int rc = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    line[strcspn(line, "\n")] = 0;
    if (line[0] == 0) continue;
    int fd = open(line, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      agent_log("open module %s: %s", line, strerror(errno));
      rc = -1;
      break;
    }
    long r = syscall(SYS_finit_module, fd, "", 0);
    int err = errno;
    close(fd);
    if (r < 0 && err != EEXIST) {
      agent_log("finit_module %s: %s", line, strerror(err));
      rc = -1;
      break;
    }
  }
  fclose(f);
  return rc;
}

/*
 * The entry of /sys/class/CLASS whose attribute file ATTR holds `want` (its first line), copied
 * into entry; 0 when found. How a device is found by what the host gave it (a port's name, a
 * NIC's MAC), whatever name the guest's kernel chose for it.
 */
int agent_find_in_class(const char *class, const char *attr, const char *want, char *entry, size_t len)
{
  char dir[128];
  snprintf(dir, sizeof dir, "/sys/class/%s", class);
  DIR *d = opendir(dir);
  if (d == NULL) return -1;
  struct dirent *e;
  int found = -1;
  while (found < 0 && (e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[400], got[64] = { 0 };
    snprintf(path, sizeof path, "%s/%s/%s", dir, e->d_name, attr);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t n = read(fd, got, sizeof got - 1);
    close(fd);
    if (n <= 0) continue;
    got[strcspn(got, "\n")] = 0;
    if (strcmp(got, want) == 0) {
      snprintf(entry, len, "%s", e->d_name);
      found = 0;
    }
  }
  closedir(d);
  return found;
}

static int port_by_name(const char *name, char *dev, size_t devlen)
{
  char entry[256];
  if (agent_find_in_class("virtio-ports", "name", name, entry, sizeof entry) < 0) return -1;
  snprintf(dev, devlen, "/dev/%s", entry);
  return 0;
}

/* The port appears once virtio_console has probed the device, which the module load starts. */
int agent_open_port(const char *name, int timeout_ms)
{
  char dev[300];
  for (int waited = 0; waited <= timeout_ms; waited += 5) {
    if (port_by_name(name, dev, sizeof dev) == 0) {
      int fd = open(dev, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
      if (fd >= 0) return fd;
      if (errno != ENOENT) {
        agent_log("open %s: %s", dev, strerror(errno));
        return -1;
      }
    }
    struct timespec ts = { 0, 5 * 1000 * 1000 };
    nanosleep(&ts, NULL);
  }
  agent_log("no virtio port named %s after %d ms", name, timeout_ms);
  return -1;
}

/* The VM ends here: QEMU runs with -no-reboot, so a reboot is its exit. */
void agent_power_off(void)
{
  /* kill(-1) from anything but the guest's PID 1 would be a disaster on a host. */
  if (getpid() != 1) _exit(1);
  kill(-1, SIGKILL);
  sync();
  reboot(RB_AUTOBOOT);
  /* PID 1 must not return; if reboot failed, panic (panic=-1 reboots too). */
  for (;;) pause();
}
