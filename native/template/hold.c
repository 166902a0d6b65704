/* stockade-template-hold RAM-FILE NAME: holds a VM template's memory for the VMs restored from it.
 *
 * QEMU 7.2 maps a clone's memory privately from a file it opens read-write (memory-backend-file,
 * share=off), so the file must be one no QEMU can change: a write to it would show in every
 * other clone's pages that it has not written yet. A memfd sealed against writes, shrinking and
 * growing is such a file: it can be opened read-write and mapped privately, but write(2),
 * fallocate(2) and a shared writable mapping all fail. This program copies the template's memory
 * file into one (holes stay holes), seals it, keeps it as fd 3 for the host to take
 * (/proc/PID/fd/3), prints "ready" and waits. It leaves when the template's directory is removed
 * or renamed (the template was discarded), or on SIGTERM; VMs that map the memfd keep it alive.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libgen.h>

static int fail(const char *what)
{
  fprintf(stderr, "stockade-template-hold: %s: %s\n", what, strerror(errno));
  return 1;
}

int main(int argc, char **argv)
{
  if (argc != 3) {
    fprintf(stderr, "usage: stockade-template-hold RAM-FILE NAME\n");
    return 2;
  }
  int src = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (src < 0) return fail(argv[1]);
  struct stat st;
  if (fstat(src, &st) < 0) return fail("fstat");
  char name[200];
  snprintf(name, sizeof name, "stockade-template-%s", argv[2]);
  int mem = memfd_create(name, MFD_ALLOW_SEALING);
  if (mem < 0) return fail("memfd_create");
  if (ftruncate(mem, st.st_size) < 0) return fail("ftruncate");
  static char buf[1 << 20];
  off_t at = 0;
  for (;;) {
    off_t data = lseek(src, at, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break; /* only a hole is left */
      return fail("SEEK_DATA");
    }
    off_t hole = lseek(src, data, SEEK_HOLE);
    if (hole < 0) return fail("SEEK_HOLE");
    for (off_t o = data; o < hole;) {
      size_t want = (size_t)(hole - o) < sizeof buf ? (size_t)(hole - o) : sizeof buf;
      ssize_t n = pread(src, buf, want, o);
      if (n <= 0) return n < 0 ? fail("read") : (errno = EIO, fail("short read"));
      /* Zero pages are left out: a hole in the memfd reads as zeros and costs nothing. */
      for (size_t p = 0; p < (size_t)n; p += 4096) {
        size_t len = (size_t)n - p < 4096 ? (size_t)n - p : 4096;
        size_t k = 0;
        while (k < len && buf[p + k] == 0) k++;
        if (k == len) continue;
        if (pwrite(mem, buf + p, len, o + (off_t)p) != (ssize_t)len) return fail("write the memfd");
      }
      o += n;
    }
    at = hole;
  }
  close(src);
  if (fcntl(mem, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) return fail("seal the memfd");
  if (mem != 3) {
    if (dup2(mem, 3) < 0) return fail("dup2");
    close(mem);
  }
  int in = inotify_init1(IN_CLOEXEC);
  if (in < 0) return fail("inotify_init1");
  char *dir = dirname(argv[1]);
  if (inotify_add_watch(in, dir, IN_DELETE_SELF | IN_MOVE_SELF) < 0) return fail("watch the template directory");
  printf("ready\n");
  fflush(stdout);
  fclose(stdout);
  char ev[4096];
  while (read(in, ev, sizeof ev) < 0 && errno == EINTR) {
  }
  return 0;
}
