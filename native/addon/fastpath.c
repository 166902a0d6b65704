/* The sentry's native fast path: the common stats and opens served in C, without entering JavaScript. */
/*
 * Why: every served call costs the notification's round trip plus the sentry's own dozen host
 * calls, and from Node each of those crosses the N-API boundary: bench/supervisor-cpu.sh measured
 * the bare C supervisor's own calls made from Node at 1.4-1.6x the C supervisor, above issue 15's
 * 1.3x before any of the sentry's work (docs/design/sentry.md). So the wait moves here: fastServe
 * waits on the host's pollfds as ppoll does and, while only listeners whose Sentry enabled the
 * fast path are ready, receives and serves their notifications itself, in a loop, and returns to
 * JavaScript for everything else.
 *
 * What it serves is a strict subset of what src/sentry/sys-file.ts serves, with the same host
 * calls in the same order and the same answers (each step names the TypeScript it repeats).
 * Anything else is handed over whole, before any side effect, and Sentry.answer serves it from
 * the start as if the fast path did not exist:
 * - stat, lstat and newfstatat of an absolute path that resolves in the root: never one under
 *   /proc, /sys, /dev/fd or /dev/std*, under a mount the sentry owns, nor a file on one of the
 *   devices the Sentry names (its owned mounts', its shadows'), whose stat it rewrites;
 * - fstat as glibc makes it, newfstatat(fd, "", AT_EMPTY_PATH);
 * - open and openat of such a path without O_CREAT, O_TMPFILE or O_PATH, of a regular file or a
 *   directory (a FIFO, a device, a socket go to JavaScript, which decides who opens them).
 * Only while the serving thread already holds the caller's identity: the Sentry's plan ids (no
 * identity call was made) and the effective capabilities capget reads of the caller now. The
 * thread's identity is never changed here, so JavaScript's record of it stays true. And only
 * while no one traces: a trace record is built in JavaScript.
 */
#include "fastpath.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* At most this many devices whose files the Sentry rewrites or stands in for (procfs, sysfs, shadows). */
#define FAST_DEVS 4
/* At most this many listeners in one wait take the fast path; more are served from JavaScript. */
#define FAST_MAX_CTX 64

/* What a Sentry lets the fast path do, written by JavaScript before each wait (src/sentry/fast-path.ts). */
enum {
  FAST_ENABLED = 1,  /* the thread holds the plan's ids, no identity call was made, no one traces */
  FAST_STAT = 2,     /* stat, lstat, newfstatat */
  FAST_OPEN = 4,     /* open, openat */
  FAST_MOUNTS = 8,   /* the Sentry owns mounts (/proc, /sys): an ENOENT in the root may be a link into one */
  FAST_RELATIVE = 16, /* the mount ids of those trees and of the shadows are known: relative paths too */
};

/*
 * One Sentry's context: a Buffer JavaScript owns and fills (offsets from fastLayout), followed by
 * the paths of the mounts it owns, each NUL-terminated, the list ended by an empty one. The
 * counters are this file's to add to; JavaScript adds them to the Sentry's stats.
 */
struct fast_ctx {
  int32_t listener;
  int32_t root;
  uint32_t flags;
  uint32_t caps_lo, caps_hi;
  uint32_t n_devs;
  uint64_t devs[FAST_DEVS];
  /* the mount ids of the owned trees and of the shadows' tmpfs: a cwd or dirfd there is JavaScript's */
  uint32_t n_mnts;
  /* set here once a read or write of a caller's memory was refused to the caller's identity */
  uint32_t mem_as_sentry;
  uint64_t mnt_ids[FAST_DEVS];
  /*
   * The thread's capability sets as ThreadCreds keeps them (creds.ts): the sentry's own effective
   * set, and the permitted and inheritable sets every capset passes; `held` is the effective set
   * the thread holds now (the caller's, within the permitted set), which a raise puts back.
   */
  uint32_t own_lo, own_hi, permitted_lo, permitted_hi, inheritable_lo, inheritable_hi, held_lo, held_hi;
  double served, injected, errors;
  char mounts[];
};

/* OPEN_FLAGS in src/sentry/kernel.ts: every flag open(2) knows. */
#define OPEN_FLAGS 037777777
#define STAT_BYTES 144

enum outcome { FAST_DONE, FAST_HANDOVER };

struct call {
  const struct fast_ctx *c;
  /* the bytes of c->mounts inside its Buffer */
  size_t mounts_len;
  const struct seccomp_notif *n;
};

static bool id_valid(int listener, uint64_t id) {
  int r;
  do r = ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id);
  while (r < 0 && errno == EINTR);
  return r == 0;
}

static void send_answer(int listener, uint64_t id, int64_t val, int32_t error) {
  struct seccomp_notif_resp resp = {.id = id, .val = val, .error = error, .flags = 0};
  int r;
  do r = ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
  while (r < 0 && errno == EINTR);
}

/* Sentry.#openat2: the flags it asks for whatever the caller passed. */
static uint64_t how_flags(uint64_t flags) {
  uint64_t f = (flags & OPEN_FLAGS) | O_CLOEXEC;
  if (f & O_PATH) f &= O_PATH | O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW;
  else f |= O_NOCTTY;
  return f;
}

/* Sentry.#openat2 (mode 0: nothing here creates): an fd or -errno, retried as it retries. */
static int open2(int dirfd, const char *path, uint64_t flags, uint64_t resolve) {
  struct open_how how = {.flags = how_flags(flags), .mode = 0, .resolve = resolve};
  int again = 8;
  for (;;) {
    long r = syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    if (r >= 0) return (int)r;
    int e = errno;
    if (e == EINTR || (e == EAGAIN && (resolve & (RESOLVE_IN_ROOT | RESOLVE_BENEATH)) && again-- > 0)) continue;
    return -e;
  }
}

static int fstat_empty(int fd, struct stat *st) {
  return syscall(SYS_newfstatat, fd, "", st, AT_EMPTY_PATH) < 0 ? -errno : 0;
}

/* The caller's effective capabilities, as Sentry.#capsInto has memReadString read them first. */
static bool caller_caps_match(const struct call *k) {
  struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = (int)k->n->pid};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &header, data) < 0) return false;
  return data[0].effective == k->c->caps_lo && data[1].effective == k->c->caps_hi;
}

/*
 * memReadString's read of a path (page by page, its NUL within PATH_MAX): the length, or -1 for
 * anything the fast path leaves to JavaScript (a failed or refused read, a path too long, bytes
 * that are not ASCII: JavaScript decodes a path as UTF-8 and would not name the same file).
 */
static ssize_t caller_memory(const struct call *k, bool write, void *buf, uint64_t addr, size_t len);

static int read_path(const struct call *k, uint64_t addr, char *buf) {
  static size_t page;
  if (page == 0) {
    long ps = sysconf(_SC_PAGESIZE);
    page = ps > 0 ? (size_t)ps : 4096;
  }
  size_t got = 0;
  while (got < PATH_MAX) {
    uint64_t at = addr + got;
    size_t chunk = page - (size_t)(at & (page - 1));
    if (chunk > PATH_MAX - got) chunk = PATH_MAX - got;
    ssize_t r = caller_memory(k, false, buf + got, at, chunk);
    if (r <= 0) return -1;
    const char *nul = memchr(buf + got, '\0', (size_t)r);
    if (nul != NULL) {
      size_t len = (size_t)(nul - buf);
      for (size_t i = 0; i < len; i++)
        if ((unsigned char)buf[i] >= 0x80) return -1;
      return (int)len;
    }
    got += (size_t)r;
  }
  return -1;
}

static bool starts_with(const char *s, const char *prefix) {
  return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * Whether an absolute path is one Sentry.target or Sentry.#route treats apart: the caller's fds
 * (/dev/fd, /dev/std*, /proc/self/fd), /proc and its self links, or a mount the sentry owns once
 * repeated slashes and "." are taken out as #route takes them (`/(?:\.?/)+` -> `/`, "/." -> "/").
 * More than those is handed over too: only the cost differs.
 */
static bool set_apart(const struct call *k, const char *path) {
  const struct fast_ctx *c = k->c;
  size_t mounts_len = k->mounts_len;
  if (starts_with(path, "/proc") || starts_with(path, "/sys") || starts_with(path, "/dev/fd") || starts_with(path, "/dev/std"))
    return true;
  if (mounts_len == 0 || c->mounts[0] == '\0') return false;
  char p[PATH_MAX];
  size_t o = 0;
  for (size_t i = 0; path[i] != '\0';) {
    if (path[i] == '/') {
      p[o++] = '/';
      i++;
      for (;;) {
        if (path[i] == '/') i++;
        else if (path[i] == '.' && path[i + 1] == '/') i += 2;
        else break;
      }
    } else {
      p[o++] = path[i++];
    }
  }
  p[o] = '\0';
  if (strcmp(p, "/.") == 0) strcpy(p, "/");
  for (size_t at = 0; at < mounts_len && c->mounts[at] != '\0';) {
    const char *m = c->mounts + at;
    size_t len = strnlen(m, mounts_len - at);
    if (strncmp(p, m, len) == 0 && (p[len] == '\0' || p[len] == '/')) return true;
    at += len + 1;
  }
  return false;
}

/* A file on a device whose files the Sentry rewrites (statGenerated, openGenerated) or stands in for (shadows). */
static bool device_apart(const struct fast_ctx *c, const struct stat *st) {
  uint32_t n = c->n_devs < FAST_DEVS ? c->n_devs : FAST_DEVS;
  for (uint32_t i = 0; i < n; i++)
    if ((uint64_t)st->st_dev == c->devs[i]) return true;
  return false;
}

/* Whether a path has a ".." component (Sentry.#throughLinks walks those). */
static bool has_dotdot(const char *path) {
  for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2)
    if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/')) return true;
  return false;
}

/*
 * Sentry.open of an absolute path in the root: openat2 beneath the root, and for an ENOENT where
 * the Sentry owns mounts, #throughLinks' cheap check that no symlink is on the way (a link of the
 * root's into /proc, /etc/mtab's, is followed by JavaScript). An fd, -errno, or INT_MIN: hand over.
 */
static int open_in_root(const struct fast_ctx *c, const char *path, uint64_t flags) {
  int fd = open2(c->root, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
  if (fd != -ENOENT || !(c->flags & FAST_MOUNTS)) return fd;
  if (has_dotdot(path)) return INT_MIN;
  int probe = open2(c->root, path, O_PATH, RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS);
  if (probe >= 0) close(probe);
  return probe == -ELOOP ? INT_MIN : fd;
}

static void set_effective(uint32_t lo, uint32_t hi, const struct fast_ctx *c) {
  struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct data[2] = {
      {.effective = lo, .permitted = c->permitted_lo, .inheritable = c->inheritable_lo},
      {.effective = hi, .permitted = c->permitted_hi, .inheritable = c->inheritable_hi},
  };
  // Within the permitted set this cannot fail; were it to, the thread would hold capabilities
  // JavaScript does not know of (or lack its own): the sentry stops, and its workload with it.
  if (syscall(SYS_capset, &header, data) < 0) abort();
}

/*
 * process_vm_readv or _writev of the caller's memory, as Sentry.asSeen makes it: with the
 * thread's identity, and where that is refused (EPERM, EACCES: a caller of another uid, or not
 * dumpable) again with the sentry's own capabilities, as onHost would. The kernel's check of
 * either call (ptrace's, PTRACE_MODE_ATTACH_REALCREDS) reads the thread's real ids, which are the
 * sentry's, and its effective capabilities, never its fs ids: raising the effective set alone
 * for the one call is onHost's answer, and the set the thread held is put back at once. Once a
 * caller's memory was refused, the raise comes first: the refused try changes nothing.
 */
static ssize_t caller_memory(const struct call *k, bool write, void *buf, uint64_t addr, size_t len) {
  struct fast_ctx *c = (struct fast_ctx *)k->c;
  struct iovec local = {.iov_base = buf, .iov_len = len};
  struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
  pid_t pid = (pid_t)k->n->pid;
  ssize_t r = -1;
  if (!c->mem_as_sentry) {
    r = write ? process_vm_writev(pid, &local, 1, &remote, 1, 0) : process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (r >= 0 || (errno != EPERM && errno != EACCES)) return r < 0 ? -errno : r;
    c->mem_as_sentry = 1;
  }
  set_effective(c->own_lo, c->own_hi, c);
  r = write ? process_vm_writev(pid, &local, 1, &remote, 1, 0) : process_vm_readv(pid, &local, 1, &remote, 1, 0);
  int e = errno;
  set_effective(c->held_lo, c->held_hi, c);
  return r < 0 ? -e : r;
}

/* Sentry.writeBack: 0 or -errno. */
static int write_back(const struct call *k, uint64_t addr, const void *data, size_t len) {
  if (addr == 0) return -EFAULT;
  if (!id_valid(k->c->listener, k->n->id)) return -ENOENT;
  ssize_t r = caller_memory(k, true, (void *)data, addr, len);
  return r == (ssize_t)len ? 0 : r < 0 ? (int)r : -EFAULT;
}

/* The value or -errno of a call answered here (Sentry.answer: a failure counts as an error). */
static enum outcome answer(const struct call *k, int r) {
  struct fast_ctx *c = (struct fast_ctx *)k->c;
  if (r == INT_MIN) return FAST_HANDOVER;
  if (r < 0) c->errors += 1;
  c->served += 1;
  send_answer(c->listener, k->n->id, r < 0 ? 0 : r, r < 0 ? r : 0);
  return FAST_DONE;
}

/*
 * The part of readPath and asCaller every call shares: the caller's capabilities (capget), then
 * its path, then NOTIF_ID_VALID. False: hand over. `path` is "" when addr is 0 and empty_ok (no read).
 */
static bool caller_and_path(const struct call *k, uint64_t addr, bool empty_ok, char *path) {
  if (!caller_caps_match(k)) return false;
  if (addr == 0) {
    if (!empty_ok) return false;
    path[0] = '\0';
  } else if (read_path(k, addr, path) < 0) {
    return false;
  }
  return id_valid(k->c->listener, k->n->id);
}

/*
 * Sentry.target for a relative path: the caller's cwd or dirfd through the host's /proc, looked at
 * as an object first (#ownedStart: in a tree the sentry owns, or a shadow of one, it is
 * JavaScript's to walk), then named by its path in the root (readlink), as the thread's identity
 * is (JavaScript retries what that is refused as the sentry). The absolute path in `abs`, or
 * false: hand over.
 */
static bool relative_target(const struct call *k, int dirfd, const char *path, char *abs) {
  const struct fast_ctx *c = k->c;
  if (!(c->flags & FAST_RELATIVE) || (dirfd < 0 && dirfd != AT_FDCWD)) return false;
  char link[64];
  if (dirfd == AT_FDCWD) snprintf(link, sizeof link, "/proc/%u/cwd", k->n->pid);
  else snprintf(link, sizeof link, "/proc/%u/fd/%d", k->n->pid, dirfd);
  if (c->flags & FAST_MOUNTS) {
    unsigned char sx[256];
    uint64_t mnt;
    if (syscall(SYS_statx, AT_FDCWD, link, 0, STATX_TYPE | STATX_MNT_ID, sx) < 0) return false;
    memcpy(&mnt, sx + offsetof(struct statx, stx_mnt_id), sizeof mnt);
    uint32_t n = c->n_mnts < FAST_DEVS ? c->n_mnts : FAST_DEVS;
    for (uint32_t i = 0; i < n; i++)
      if (mnt == c->mnt_ids[i]) return false;
  }
  char base[PATH_MAX];
  long len = syscall(SYS_readlinkat, AT_FDCWD, link, base, sizeof base);
  if (len <= 0 || len >= PATH_MAX) return false;
  base[len] = '\0';
  static const char deleted[] = " (deleted)";
  if (base[0] != '/' || ((size_t)len >= sizeof deleted - 1 && strcmp(base + len - (sizeof deleted - 1), deleted) == 0)) return false;
  for (long i = 0; i < len; i++)
    if ((unsigned char)base[i] >= 0x80) return false;
  int n = len == 1 ? snprintf(abs, PATH_MAX, "/%s", path) : snprintf(abs, PATH_MAX, "%s/%s", base, path);
  return n > 0 && n < PATH_MAX;
}

/* statInto (sys-file.ts) for stat, lstat and newfstatat. */
static enum outcome fast_stat(const struct call *k, int dirfd, uint64_t addr, uint64_t out, uint32_t flags) {
  char buf[PATH_MAX], abs[PATH_MAX];
  const char *path = buf;
  bool nofollow = (flags & AT_SYMLINK_NOFOLLOW) != 0, empty_ok = (flags & AT_EMPTY_PATH) != 0;
  if (!caller_and_path(k, addr, empty_ok, buf)) return FAST_HANDOVER;
  struct stat st;
  memset(&st, 0, sizeof st);
  if (path[0] == '\0') {
    // Sentry.target: an empty path is ENOENT unless AT_EMPTY_PATH makes it dirfd itself.
    if (!empty_ok) return answer(k, -ENOENT);
    if (nofollow || (dirfd < 0 && dirfd != AT_FDCWD)) return FAST_HANDOVER;
    // The caller's own fd (fstat), through the host's /proc. JavaScript stats it as the sentry
    // (onHost); a stat that succeeds as the caller is of the same object, one that fails is
    // JavaScript's to try again.
    char link[64];
    if (dirfd == AT_FDCWD) snprintf(link, sizeof link, "/proc/%u/cwd", k->n->pid);
    else snprintf(link, sizeof link, "/proc/%u/fd/%d", k->n->pid, dirfd);
    if (syscall(SYS_newfstatat, AT_FDCWD, link, &st, 0) < 0) return FAST_HANDOVER;
    if (device_apart(k->c, &st)) return FAST_HANDOVER;
    return answer(k, write_back(k, out, &st, STAT_BYTES));
  }
  if (path[0] != '/') {
    if (!relative_target(k, dirfd, path, abs)) return FAST_HANDOVER;
    path = abs;
  }
  if (set_apart(k, path)) return FAST_HANDOVER;
  int fd = open_in_root(k->c, path, O_PATH | (nofollow ? O_NOFOLLOW : 0));
  if (fd == INT_MIN) return FAST_HANDOVER;
  if (fd < 0) return answer(k, fd);
  int r = fstat_empty(fd, &st);
  bool apart = r == 0 && device_apart(k->c, &st);
  close(fd);
  if (apart) return FAST_HANDOVER;
  if (r < 0) return answer(k, r);
  return answer(k, write_back(k, out, &st, STAT_BYTES));
}

/* openFile, openAt and reopenAsCaller (sys-file.ts, open-as-caller.ts) for open and openat. */
static enum outcome fast_open(const struct call *k, int dirfd, uint64_t addr, uint32_t flags) {
  if ((flags & (O_CREAT | O_PATH)) != 0 || (flags & O_TMPFILE) == O_TMPFILE) return FAST_HANDOVER;
  char buf[PATH_MAX], abs[PATH_MAX];
  const char *path = buf;
  if (addr == 0 || !caller_and_path(k, addr, false, buf)) return FAST_HANDOVER;
  if (path[0] == '\0') return answer(k, -ENOENT);
  if (path[0] != '/') {
    if (!relative_target(k, dirfd, path, abs)) return FAST_HANDOVER;
    path = abs;
  }
  if (set_apart(k, path)) return FAST_HANDOVER;
  bool cloexec = (flags & O_CLOEXEC) != 0;
  // lookupOrCreate without O_CREAT: the object pinned, O_PATH, with the caller's O_NOFOLLOW and O_DIRECTORY.
  int pfd = open_in_root(k->c, path, O_PATH | (flags & (O_NOFOLLOW | O_DIRECTORY)));
  if (pfd == INT_MIN) return FAST_HANDOVER;
  if (pfd < 0) return answer(k, pfd);
  struct stat st;
  int r = fstat_empty(pfd, &st);
  if (r < 0) {
    close(pfd);
    return answer(k, r);
  }
  int type = st.st_mode & S_IFMT;
  if (type == S_IFLNK) {
    close(pfd);
    return answer(k, -ELOOP);
  }
  if ((type != S_IFREG && type != S_IFDIR) || device_apart(k->c, &st)) {
    close(pfd);
    return FAST_HANDOVER;
  }
  // reopenAsCaller: the pinned object again through the sentry's own link, as the caller; a
  // regular file O_NONBLOCK (a lease to break answers EAGAIN at once), its flags put back after.
  bool regular = type == S_IFREG;
  uint64_t f = flags & ~(uint32_t)O_NOFOLLOW;
  char self[64];
  snprintf(self, sizeof self, "/proc/self/fd/%d", pfd);
  int fd = open2(AT_FDCWD, self, regular ? f | O_NONBLOCK : f, 0);
  if (fd == -EAGAIN && regular && !(flags & O_NONBLOCK)) {
    // A lease: JavaScript hands the open to a thread of its own (blocking.ts).
    close(pfd);
    return FAST_HANDOVER;
  }
  close(pfd);
  if (fd < 0) return answer(k, fd);
  if (regular && !(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags & (O_APPEND | O_DIRECT | O_NOATIME)) < 0) {
    int e = errno;
    close(fd);
    return answer(k, -e);
  }
  // Sentry.answer's inject: with ADDFD_FLAG_SEND the install and the answer are one step.
  struct fast_ctx *c = (struct fast_ctx *)k->c;
  struct seccomp_notif_addfd add = {
      .id = k->n->id, .flags = SECCOMP_ADDFD_FLAG_SEND, .srcfd = (uint32_t)fd, .newfd = 0, .newfd_flags = cloexec ? O_CLOEXEC : 0};
  int a;
  do a = ioctl(c->listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
  while (a < 0 && errno == EINTR);
  int e = a < 0 ? errno : 0;
  close(fd);
  c->injected += 1;
  c->served += 1;
  if (a < 0) send_answer(c->listener, k->n->id, 0, -e);
  return FAST_DONE;
}

static enum outcome fast_answer(const struct fast_ctx *c, size_t mounts_len, const struct seccomp_notif *n) {
#ifdef __x86_64__
  // Sentry.answer serves the x86_64 ABI alone; the refusal judge records none of these calls
  // (JavaScript clears FAST_STAT or FAST_OPEN should it ever).
  if (n->data.arch != AUDIT_ARCH_X86_64) return FAST_HANDOVER;
  const struct call k = {.c = c, .mounts_len = mounts_len, .n = n};
  const __u64 *a = n->data.args;
  switch (n->data.nr) {
  case SYS_stat: return (c->flags & FAST_STAT) ? fast_stat(&k, AT_FDCWD, a[0], a[1], 0) : FAST_HANDOVER;
  case SYS_lstat: return (c->flags & FAST_STAT) ? fast_stat(&k, AT_FDCWD, a[0], a[1], AT_SYMLINK_NOFOLLOW) : FAST_HANDOVER;
  case SYS_newfstatat: return (c->flags & FAST_STAT) ? fast_stat(&k, (int32_t)a[0], a[1], a[2], (uint32_t)a[3]) : FAST_HANDOVER;
  case SYS_open: return (c->flags & FAST_OPEN) ? fast_open(&k, AT_FDCWD, a[0], (uint32_t)a[1]) : FAST_HANDOVER;
  case SYS_openat: return (c->flags & FAST_OPEN) ? fast_open(&k, (int32_t)a[0], a[1], (uint32_t)a[2]) : FAST_HANDOVER;
  default: return FAST_HANDOVER;
  }
#else
  (void)c;
  (void)mounts_len;
  (void)n;
  return FAST_HANDOVER;
#endif
}

/* ---- the wait ------------------------------------------------------------------------------------ */

static bool type_error(napi_env env, const char *name, const char *what) {
  char msg[160];
  snprintf(msg, sizeof msg, "The \"%s\" argument must be %s", name, what);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return false;
}

static bool bytes(napi_env env, napi_value v, const char *name, void **data, size_t *len) {
  bool is = false;
  if (napi_is_buffer(env, v, &is) == napi_ok && is && napi_get_buffer_info(env, v, data, len) == napi_ok) return true;
  return type_error(env, name, "a Buffer");
}

/* A timespec Buffer, or NULL for null/undefined. */
static bool timeout_of(napi_env env, napi_value v, const char *name, struct timespec *ts, bool *given) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  *given = false;
  if (t == napi_null || t == napi_undefined) return true;
  void *d;
  size_t len;
  if (!bytes(env, v, name, &d, &len)) return false;
  if (len < sizeof *ts) return type_error(env, name, "a Buffer of a struct timespec");
  memcpy(ts, d, sizeof *ts);
  *given = true;
  return true;
}

static napi_value number(napi_env env, int64_t n) {
  napi_value v = NULL;
  napi_create_int64(env, n, &v);
  return v;
}

struct ref {
  struct fast_ctx *c;
  size_t mounts_len;
  int at; /* its listener's index in the pollfds, or -1 */
};

/*
 * fastServe(pollfds, nfds, timeout, busyTimeout, contexts, out): ppoll over the pollfds (struct
 * pollfd[], as Poller writes them) for at most `timeout` (a struct timespec Buffer, or null: no
 * limit). While every fd ready is the listener of a context with FAST_ENABLED, receives each
 * notification and serves it here, then waits again, for `busyTimeout` from then on (the host's
 * "nothing came for this long" after a call served). Returns the number of pollfds left with
 * revents for JavaScript (0: the wait timed out, unless out holds a notification), or -errno.
 * A notification it will not serve is written to out: its listener (int32 at 0, else -1) and the
 * struct seccomp_notif (at 8); every revents is then cleared, and JavaScript answers it.
 */
static napi_value js_fast_serve(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  size_t argc = 6;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6) {
    type_error(env, "arguments", "six");
    return NULL;
  }
  void *fdsbuf, *outbuf;
  size_t fdslen, outlen;
  uint32_t nfds, n_ctx = 0;
  struct timespec first = {0, 0}, busy = {0, 0};
  bool has_first, has_busy, is_array = false;
  if (!bytes(env, argv[0], "pollfds", &fdsbuf, &fdslen)) return NULL;
  if (napi_get_value_uint32(env, argv[1], &nfds) != napi_ok) {
    type_error(env, "nfds", "a number");
    return NULL;
  }
  if ((size_t)nfds * sizeof(struct pollfd) > fdslen) {
    type_error(env, "pollfds", "as long as nfds pollfds");
    return NULL;
  }
  if (!timeout_of(env, argv[2], "timeout", &first, &has_first) || !timeout_of(env, argv[3], "busyTimeout", &busy, &has_busy))
    return NULL;
  if (napi_is_array(env, argv[4], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[4], &n_ctx) != napi_ok) {
    type_error(env, "contexts", "an array of Buffers");
    return NULL;
  }
  if (!bytes(env, argv[5], "out", &outbuf, &outlen)) return NULL;
  if (outlen < 8 + sizeof(struct seccomp_notif)) {
    type_error(env, "out", "a Buffer of 8 bytes and a struct seccomp_notif");
    return NULL;
  }
  struct pollfd *fds = fdsbuf;
  struct ref refs[FAST_MAX_CTX];
  uint32_t n_refs = 0;
  for (uint32_t i = 0; i < n_ctx && n_refs < FAST_MAX_CTX; i++) {
    napi_value v;
    void *d;
    size_t len;
    if (napi_get_element(env, argv[4], i, &v) != napi_ok || !bytes(env, v, "contexts[i]", &d, &len)) return NULL;
    // The mount list must end inside the Buffer: an empty string, then nothing is read past it.
    if (len < sizeof(struct fast_ctx) + 1 || ((char *)d)[len - 1] != '\0' || (len > sizeof(struct fast_ctx) + 1 && ((char *)d)[len - 2] != '\0')) {
      type_error(env, "contexts[i]", "a fast-path context (fastLayout)");
      return NULL;
    }
    struct fast_ctx *c = d;
    int at = -1;
    for (uint32_t j = 0; j < nfds; j++)
      if (fds[j].fd == c->listener) {
        at = (int)j;
        break;
      }
    if (at >= 0 && (c->flags & FAST_ENABLED)) refs[n_refs++] = (struct ref){.c = c, .mounts_len = len - sizeof(struct fast_ctx), .at = at};
  }
  int32_t none = -1;
  memcpy(outbuf, &none, 4);

  struct timespec t = first;
  bool timed = has_first;
  for (;;) {
    long r = syscall(SYS_ppoll, fds, (unsigned long)nfds, timed ? &t : NULL, NULL, 0);
    // A signal repeats the wait for what is left of it: ppoll wrote that back (Poller.once).
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return number(env, -errno);
    if (r == 0) return number(env, 0);
    // Anything ready that is not a fast listener: all of it is JavaScript's, as from ppoll.
    for (uint32_t j = 0; j < nfds; j++) {
      if (fds[j].revents == 0) continue;
      bool fast = false;
      for (uint32_t i = 0; i < n_refs && !fast; i++) fast = refs[i].at == (int)j;
      if (!fast || (fds[j].revents & POLLIN) == 0) return number(env, r);
    }
    for (uint32_t i = 0; i < n_refs; i++) {
      struct pollfd *p = &fds[refs[i].at];
      if (p->revents == 0) continue;
      struct seccomp_notif n;
      int got;
      do {
        // The kernel refuses a buffer that is not zeroed (EINVAL).
        memset(&n, 0, sizeof n);
        got = ioctl(p->fd, SECCOMP_IOCTL_NOTIF_RECV, &n);
      } while (got < 0 && errno == EINTR);
      if (got < 0) {
        // A caller killed before its notification was read (ENOENT, and the listener still has
        // callers): a turn lost, as Sentry.serveNext. Anything else, the workload gone included,
        // is JavaScript's to find out with its own receive.
        struct pollfd q = {.fd = p->fd, .events = POLLIN, .revents = 0};
        if (errno == ENOENT && poll(&q, 1, 0) >= 0 && !(q.revents & (POLLHUP | POLLERR | POLLNVAL))) {
          p->revents = 0;
          continue;
        }
        return number(env, r);
      }
      if (fast_answer(refs[i].c, refs[i].mounts_len, &n) == FAST_HANDOVER) {
        memcpy(outbuf, &p->fd, 4);
        memcpy((char *)outbuf + 8, &n, sizeof n);
        for (uint32_t j = 0; j < nfds; j++) fds[j].revents = 0;
        return number(env, 0);
      }
      p->revents = 0;
    }
    // Served: wait again, for "nothing came for busyTimeout" from now.
    t = has_busy ? busy : first;
    timed = has_busy || has_first;
  }
}

/* fastLayout(): the offsets of struct fast_ctx's fields and its flag bits, for src/sentry/fast-path.ts. */
static napi_value js_fast_layout(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value obj;
  if (napi_create_object(env, &obj) != napi_ok) return NULL;
  const struct {
    const char *name;
    int64_t value;
  } fields[] = {
      {"listener", offsetof(struct fast_ctx, listener)}, {"root", offsetof(struct fast_ctx, root)},
      {"flags", offsetof(struct fast_ctx, flags)}, {"capsLo", offsetof(struct fast_ctx, caps_lo)},
      {"capsHi", offsetof(struct fast_ctx, caps_hi)}, {"nDevs", offsetof(struct fast_ctx, n_devs)},
      {"devs", offsetof(struct fast_ctx, devs)}, {"maxDevs", FAST_DEVS},
      {"nMnts", offsetof(struct fast_ctx, n_mnts)}, {"mntIds", offsetof(struct fast_ctx, mnt_ids)},
      {"ownLo", offsetof(struct fast_ctx, own_lo)}, {"permittedLo", offsetof(struct fast_ctx, permitted_lo)},
      {"inheritableLo", offsetof(struct fast_ctx, inheritable_lo)}, {"heldLo", offsetof(struct fast_ctx, held_lo)},
      {"served", offsetof(struct fast_ctx, served)}, {"injected", offsetof(struct fast_ctx, injected)},
      {"errors", offsetof(struct fast_ctx, errors)}, {"mounts", offsetof(struct fast_ctx, mounts)},
      {"enabled", FAST_ENABLED}, {"stat", FAST_STAT}, {"open", FAST_OPEN}, {"hasMounts", FAST_MOUNTS}, {"relative", FAST_RELATIVE},
      {"notifOffset", 8}, {"outSize", 8 + sizeof(struct seccomp_notif)},
  };
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    if (napi_set_named_property(env, obj, fields[i].name, number(env, fields[i].value)) != napi_ok) return NULL;
  return obj;
}

bool stk_fastpath_register(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
      {"fastServe", NULL, js_fast_serve, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fastLayout", NULL, js_fast_layout, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns) == napi_ok;
}
