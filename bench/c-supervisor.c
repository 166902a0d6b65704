// A bare C seccomp user-notification supervisor answering path calls the way stockade's sentry
// does (src/sentry/kernel.ts, sys-file.ts), so bench/syscalls.sh can say how much of the sentry's
// cost per mediated call is the kernel's round trip and how much is the TypeScript around it.
//
//   c-supervisor [--cgroup PROCS_FILE]... PROG [ARGS...]
//                                 runs PROG under the filter below and serves it; exits with its status.
//                                 --cgroup: the child first writes its pid to PROCS_FILE (a cgroup's
//                                 cgroup.procs), so that it runs in a cgroup apart from its
//                                 supervisor, as a container's workload does from the sentry
//   c-supervisor --serve-with SERVER [ARGS...] -- PROG [ARGS...]
//                                 the same, but once it holds the listener (fd 3, SYNC_WAKE_UP set)
//                                 it execs SERVER, which serves in its place: bench/node-supervisor.js,
//                                 the floor a supervisor in Node pays (its workload stays its child)
//
//   parent (supervisor)                     child
//                                           no_new_privs; seccomp(NEW_LISTENER) -> listener
//   recvmsg <------- socketpair ----------- sendmsg(SCM_RIGHTS listener)   (sendmsg is not notified)
//   NOTIF_SET_FLAGS(SYNC_WAKE_UP)           execv(PROG)
//   loop: NOTIF_RECV, serve, answer         openat/stat/... block until answered
//
// Served per notification, as the sentry serves them (same calls, same order):
//   open, openat   read the path (process_vm_readv, a page at a time), NOTIF_ID_VALID, openat2 O_PATH
//                  with RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS beneath an O_PATH fd of "/", fstat it,
//                  reopen it through /proc/self/fd/N with the caller's flags, NOTIF_ADDFD with
//                  SECCOMP_ADDFD_FLAG_SEND; O_PATH, FIFOs and devices are answered CONTINUE.
//   stat, lstat, newfstatat, statx   read the path, NOTIF_ID_VALID, openat2 O_PATH, fstat (or statx)
//                  of that fd, NOTIF_ID_VALID, process_vm_writev of the result, NOTIF_SEND.
// Not served: execve and everything else run unmediated (the sentry mediates execve too, so the
// fork+exec+wait column is not a like-for-like comparison); openat2 fails with ENOSYS so that it
// cannot go round the mediated calls. The caller's identity is not taken (the bench runs as root,
// where the sentry's asCaller is a no-op too).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

#define STAT_BYTES 144 // struct stat on x86_64
#define STATX_BYTES 256

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
}
#define AUTO_FD __attribute__((cleanup(close_fd))) int

static void die(const char *step) {
  fprintf(stderr, "c-supervisor: %s: %s\n", step, strerror(errno));
  exit(125);
}

// ---- the child's side -----------------------------------------------------------------------------

#define NOTIFY_IF(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF)

static struct sock_filter filter[] = {
  BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
  BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
  // x32 numbers name the same calls with another bit set: refused rather than left unmediated.
  BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1),
  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
  NOTIFY_IF(SYS_open),
  NOTIFY_IF(SYS_openat),
  NOTIFY_IF(SYS_stat),
  NOTIFY_IF(SYS_lstat),
  NOTIFY_IF(SYS_newfstatat),
  NOTIFY_IF(SYS_statx),
  BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
  BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
};

static void send_fd(int sock, int fd) {
  char data = 'L';
  struct iovec iov = {.iov_base = &data, .iov_len = 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  memset(&u, 0, sizeof u);
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (sendmsg(sock, &msg, 0) != 1) die("child: sendmsg of the listener");
}

static void child(int sock, char **argv, char **cgroups, int n_cgroups) {
  for (int i = 0; i < n_cgroups; i++) {
    FILE *f = fopen(cgroups[i], "w");
    if (f == NULL || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) != 0) die("child: joining its cgroup");
  }
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die("child: PR_SET_NO_NEW_PRIVS");
  struct sock_fprog prog = {.len = sizeof filter / sizeof filter[0], .filter = filter};
  int listener = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
  if (listener < 0) die("child: seccomp(SECCOMP_FILTER_FLAG_NEW_LISTENER)");
  send_fd(sock, listener);
  close(listener);
  close(sock);
  execv(argv[0], argv);
  die("child: execv");
}

static int recv_fd(int sock) {
  char data;
  struct iovec iov = {.iov_base = &data, .iov_len = 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  ssize_t n;
  do n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) die("recvmsg of the listener");
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (n == 0 || c == NULL || c->cmsg_type != SCM_RIGHTS) {
    fprintf(stderr, "c-supervisor: the child sent no listener\n");
    exit(125);
  }
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

// ---- serving --------------------------------------------------------------------------------------

static int listener = -1, root_fd = -1;
static long page_size;

struct answer {
  int64_t val;
  int error;    // negative errno, or 0
  uint32_t flags; // SECCOMP_USER_NOTIF_FLAG_CONTINUE, or 0
};

static struct answer value(int64_t v) { return (struct answer){.val = v}; }
static struct answer fail(int err) { return (struct answer){.error = err < 0 ? err : -err}; }
static struct answer cont(void) { return (struct answer){.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE}; }

static int id_valid(uint64_t id) {
  return ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

// The NUL-terminated path at addr, a page at a time (as the sentry's memReadString); 0 or -errno.
static int read_path(const struct seccomp_notif *n, uint64_t addr, char *out, size_t max) {
  if (addr == 0) return -EFAULT;
  size_t got = 0;
  while (got < max) {
    uint64_t at = addr + got;
    size_t chunk = (size_t)page_size - (size_t)(at & (uint64_t)(page_size - 1));
    if (chunk > max - got) chunk = max - got;
    struct iovec local = {.iov_base = out + got, .iov_len = chunk};
    struct iovec remote = {.iov_base = (void *)(uintptr_t)at, .iov_len = chunk};
    ssize_t r = process_vm_readv((pid_t)n->pid, &local, 1, &remote, 1, 0);
    if (r <= 0) return r < 0 ? -errno : -EFAULT;
    if (memchr(out + got, '\0', (size_t)r) != NULL) return id_valid(n->id) ? 0 : -ENOENT;
    got += (size_t)r;
  }
  return -ENAMETOOLONG;
}

// Where (dirfd, path) of the caller leads: an absolute path is resolved in the root (*in_root set);
// a relative one is joined to the caller's cwd or dirfd read from /proc. 0 or -errno.
static int target(const struct seccomp_notif *n, int dirfd, const char *path, char *out, size_t max, int *in_root) {
  *in_root = 1;
  if (path[0] == '/') {
    if (strlen(path) >= max) return -ENAMETOOLONG;
    strcpy(out, path);
    return 0;
  }
  char link[64], base[PATH_MAX];
  if (dirfd == AT_FDCWD) snprintf(link, sizeof link, "/proc/%u/cwd", n->pid);
  else snprintf(link, sizeof link, "/proc/%u/fd/%d", n->pid, dirfd);
  ssize_t len = readlink(link, base, sizeof base - 1);
  if (len < 0) return dirfd == AT_FDCWD ? -errno : -EBADF;
  base[len] = '\0';
  if (base[0] != '/') return -ENOTDIR;
  int w = snprintf(out, max, "%s/%s", strcmp(base, "/") == 0 ? "" : base, path);
  return w < 0 || (size_t)w >= max ? -ENAMETOOLONG : 0;
}

static int openat2_in(int dirfd, const char *path, uint64_t flags, uint64_t mode, uint64_t resolve) {
  // As the sentry: O_CLOEXEC always; O_PATH keeps only what openat2 takes with it; never a ctty.
  flags |= O_CLOEXEC;
  if (flags & O_PATH) flags &= O_PATH | O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW;
  else flags |= O_NOCTTY;
  int creates = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
  struct open_how how = {.flags = flags, .mode = creates ? mode & 07777 : 0, .resolve = resolve};
  long r;
  do r = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
  while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : (int)r;
}

static int open_in_root(const char *path, uint64_t flags, uint64_t mode) {
  return openat2_in(root_fd, path, flags, mode, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

// Installs fd in the caller and answers the call with its number, in one step.
static struct answer inject(const struct seccomp_notif *n, int fd, int cloexec) {
  struct seccomp_notif_addfd add = {
    .id = n->id, .flags = SECCOMP_ADDFD_FLAG_SEND, .srcfd = (uint32_t)fd, .newfd = 0, .newfd_flags = cloexec ? O_CLOEXEC : 0,
  };
  int r;
  do r = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
  while (r < 0 && errno == EINTR);
  int err = errno;
  close(fd);
  // Answered by ADDFD_FLAG_SEND: nothing left to send. Else the error goes back as the answer.
  return r >= 0 ? (struct answer){.flags = UINT32_MAX} : fail(err);
}

static struct answer serve_open(const struct seccomp_notif *n, int dirfd, uint64_t addr, int flags, int mode) {
  char path[PATH_MAX], abs[PATH_MAX];
  int in_root, r = read_path(n, addr, path, sizeof path);
  if (r < 0) return fail(r);
  if (path[0] == '\0') return fail(ENOENT);
  if ((r = target(n, dirfd, path, abs, sizeof abs, &in_root)) < 0) return fail(r);
  int cloexec = (flags & O_CLOEXEC) != 0;
  if ((flags & O_TMPFILE) == O_TMPFILE) {
    int fd = open_in_root(abs, (uint64_t)flags, (uint64_t)mode);
    return fd < 0 ? fail(fd) : inject(n, fd, cloexec);
  }
  // The object first, opened O_PATH (no side effects), then reopened through that descriptor.
  AUTO_FD pfd = open_in_root(abs, O_PATH | (uint64_t)(flags & (O_NOFOLLOW | O_DIRECTORY)), 0);
  if (pfd < 0) {
    if (pfd != -ENOENT || !(flags & O_CREAT)) return fail(pfd);
    int fd = open_in_root(abs, (uint64_t)flags, (uint64_t)mode);
    return fd < 0 ? fail(fd) : inject(n, fd, cloexec);
  }
  if (flags & O_PATH) return cont();
  struct stat st;
  if (fstatat(pfd, "", &st, AT_EMPTY_PATH) != 0) return fail(errno);
  if (S_ISLNK(st.st_mode)) return fail(ELOOP);
  if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) return cont();
  char self[64];
  snprintf(self, sizeof self, "/proc/self/fd/%d", pfd);
  int fd = openat2_in(AT_FDCWD, self, (uint64_t)(flags & ~O_NOFOLLOW), (uint64_t)mode, 0);
  return fd < 0 ? fail(fd) : inject(n, fd, cloexec);
}

static int write_back(const struct seccomp_notif *n, uint64_t addr, const void *data, size_t len) {
  if (addr == 0) return -EFAULT;
  if (!id_valid(n->id)) return -ENOENT;
  struct iovec local = {.iov_base = (void *)data, .iov_len = len};
  struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
  ssize_t r = process_vm_writev((pid_t)n->pid, &local, 1, &remote, 1, 0);
  return r == (ssize_t)len ? 0 : r < 0 ? -errno : -EFAULT;
}

// stat, lstat, newfstatat (is_statx 0) and statx (is_statx 1).
static struct answer serve_stat(const struct seccomp_notif *n, int dirfd, uint64_t addr, int flags, int is_statx,
                                unsigned mask, uint64_t out) {
  char path[PATH_MAX], abs[PATH_MAX];
  int in_root = 1, r;
  if (addr == 0 && (flags & AT_EMPTY_PATH)) path[0] = '\0';
  else if ((r = read_path(n, addr, path, sizeof path)) < 0) return fail(r);
  union {
    struct stat st;
    struct statx stx;
  } buf;
  memset(&buf, 0, sizeof buf);
  int nofollow = (flags & AT_SYMLINK_NOFOLLOW) != 0;
  if (path[0] == '\0') {
    // fstat as glibc makes it: the caller's own fd, through /proc.
    if (!(flags & AT_EMPTY_PATH)) return fail(ENOENT);
    in_root = 0;
    if (dirfd == AT_FDCWD) snprintf(abs, sizeof abs, "/proc/%u/cwd", n->pid);
    else snprintf(abs, sizeof abs, "/proc/%u/fd/%d", n->pid, dirfd);
  } else if ((r = target(n, dirfd, path, abs, sizeof abs, &in_root)) < 0) {
    return fail(r);
  }
  if (!in_root && !nofollow && !is_statx) {
    if (fstatat(AT_FDCWD, abs, &buf.st, 0) != 0) return fail(errno);
  } else {
    AUTO_FD fd = in_root ? open_in_root(abs, O_PATH | (nofollow ? O_NOFOLLOW : 0), 0)
                         : openat2_in(AT_FDCWD, abs, O_PATH | (nofollow ? O_NOFOLLOW : 0), 0, 0);
    if (fd < 0) return fail(fd);
    r = is_statx ? statx(fd, "", AT_EMPTY_PATH | (flags & AT_STATX_SYNC_TYPE), mask, &buf.stx)
                 : fstatat(fd, "", &buf.st, AT_EMPTY_PATH);
    if (r != 0) return fail(errno);
  }
  r = write_back(n, out, &buf, is_statx ? STATX_BYTES : STAT_BYTES);
  return r < 0 ? fail(r) : value(0);
}

static struct answer serve(const struct seccomp_notif *n) {
  const __u64 *a = n->data.args;
  if (n->data.arch != AUDIT_ARCH_X86_64) return fail(ENOSYS);
  switch (n->data.nr) {
  case SYS_open: return serve_open(n, AT_FDCWD, a[0], (int)a[1], (int)a[2]);
  case SYS_openat: return serve_open(n, (int)a[0], a[1], (int)a[2], (int)a[3]);
  case SYS_stat: return serve_stat(n, AT_FDCWD, a[0], 0, 0, 0, a[1]);
  case SYS_lstat: return serve_stat(n, AT_FDCWD, a[0], AT_SYMLINK_NOFOLLOW, 0, 0, a[1]);
  case SYS_newfstatat: return serve_stat(n, (int)a[0], a[1], (int)a[3], 0, 0, a[2]);
  case SYS_statx: return serve_stat(n, (int)a[0], a[1], (int)a[2], 1, (unsigned)a[3], a[4]);
  default: return fail(ENOSYS);
  }
}

int main(int argc, char **argv) {
  char *cgroups[8];
  int n_cgroups = 0;
  while (argc > 2 && strcmp(argv[1], "--cgroup") == 0 && n_cgroups < 8) {
    cgroups[n_cgroups++] = argv[2];
    argc -= 2;
    argv += 2;
  }
  char **server = NULL;
  if (argc > 2 && strcmp(argv[1], "--serve-with") == 0) {
    server = argv + 2;
    int i = 2;
    while (i < argc && strcmp(argv[i], "--") != 0) i++;
    if (i >= argc - 1) {
      fprintf(stderr, "usage: c-supervisor [--cgroup PROCS_FILE]... --serve-with SERVER [ARGS...] -- PROG [ARGS...]\n");
      return 2;
    }
    argv[i] = NULL;
    argc -= i;
    argv += i;
  }
  if (argc < 2 || argv[1][0] == '-') {
    fprintf(stderr, "usage: c-supervisor [--cgroup PROCS_FILE]... [--serve-with SERVER [ARGS...] --] PROG [ARGS...]\n");
    return 2;
  }
  page_size = sysconf(_SC_PAGESIZE);
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) die("socketpair");
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    close(sv[0]);
    child(sv[1], argv + 1, cgroups, n_cgroups);
  }
  close(sv[1]);
  listener = recv_fd(sv[0]);
  close(sv[0]);
  if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, (unsigned long)SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) != 0)
    fprintf(stderr, "c-supervisor: SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: %s (going on without)\n", strerror(errno));
  if (server != NULL) {
    if (listener == 3 ? fcntl(3, F_SETFD, 0) != 0 : dup2(listener, 3) != 3) die("dup2 of the listener to fd 3");
    execvp(server[0], server);
    die("exec of the server");
  }
  root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) die("open / O_PATH");

  struct seccomp_notif n;
  for (;;) {
    // RECV blocks by itself, as the sentry's does (no poll first: one syscall per notification).
    // Once the child and its descendants are gone it fails with ENOENT at once, as it does for a
    // caller killed before its notification was read: a poll that does not wait tells them apart.
    memset(&n, 0, sizeof n);
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &n) != 0) {
      if (errno == EINTR) continue;
      if (errno != ENOENT) die("SECCOMP_IOCTL_NOTIF_RECV");
      struct pollfd p = {.fd = listener, .events = POLLIN};
      if (poll(&p, 1, 0) < 0 && errno != EINTR) die("poll of the listener");
      if (!(p.revents & POLLIN) && (p.revents & (POLLHUP | POLLERR))) break;
      continue;
    }
    struct answer ans = serve(&n);
    if (ans.flags == UINT32_MAX) continue; // answered by ADDFD_FLAG_SEND
    struct seccomp_notif_resp resp = {.id = n.id, .val = ans.val, .error = ans.error, .flags = ans.flags};
    // ENOENT: the caller died meanwhile; nothing to answer.
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp) != 0 && errno != ENOENT) die("SECCOMP_IOCTL_NOTIF_SEND");
  }
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) die("waitpid");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
