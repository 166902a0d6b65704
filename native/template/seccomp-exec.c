/* stockade-seccomp-exec HEX PROGRAM [ARGS...]: loads a seccomp filter (struct sock_filter[], as
 * hex, compiled on the TypeScript side: src/vm/share-filter.ts) and execs PROGRAM under it.
 *
 * A vm share's file server (virtiofsd, or a clone's QEMU serving 9p) runs with the capabilities
 * to chmod and chown anything it serves; the filter is what keeps a guest that took it over from
 * making a setuid file in a share whose files land as the caller's (do --bind SRC:rw). It stacks
 * with the server's own filter: the stricter answer wins.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

static int hexval(char c)
{
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

int main(int argc, char **argv)
{
  if (argc < 3) {
    fprintf(stderr, "usage: stockade-seccomp-exec HEX PROGRAM [ARGS...]\n");
    return 2;
  }
  size_t len = strlen(argv[1]);
  if (len == 0 || len % (2 * sizeof(struct sock_filter)) != 0 || len / 2 / sizeof(struct sock_filter) > BPF_MAXINSNS) {
    fprintf(stderr, "stockade-seccomp-exec: the filter is not a whole number of instructions\n");
    return 2;
  }
  unsigned char *prog = malloc(len / 2);
  if (prog == NULL) return 1;
  for (size_t i = 0; i < len / 2; i++) {
    int hi = hexval(argv[1][2 * i]), lo = hexval(argv[1][2 * i + 1]);
    if (hi < 0 || lo < 0) {
      fprintf(stderr, "stockade-seccomp-exec: the filter is not lower-case hex\n");
      return 2;
    }
    prog[i] = (unsigned char)(hi << 4 | lo);
  }
  struct sock_fprog fprog = { .len = (unsigned short)(len / 2 / sizeof(struct sock_filter)), .filter = (struct sock_filter *)prog };
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0) {
    fprintf(stderr, "stockade-seccomp-exec: load the filter: %s\n", strerror(errno));
    return 1;
  }
  free(prog);
  execv(argv[2], argv + 2);
  fprintf(stderr, "stockade-seccomp-exec: exec %s: %s\n", argv[2], strerror(errno));
  return 127;
}
