/* The sentry's opens that may block (a FIFO, a device, a leased file), each on a thread of its own, as the caller. */
/*
 * The sentry serves every call from one thread. An open that waits (a FIFO with no writer yet, a
 * terminal waiting for carrier, a file whose lease is being broken) would hold that thread, and
 * every other process of the container with it. So such an open is handed here: the TypeScript
 * side has decided everything (what object, which flags, as whom); a thread of its own takes the
 * caller's identity (Linux credentials are per thread: raw syscalls, never glibc's process-wide
 * setxid wrappers), opens the object the sentry pinned through its own /proc/self/fd link, and
 * answers the notification itself (NOTIF_ADDFD with SEND, or NOTIF_SEND with the errno). Then it
 * writes a record on a pipe the serving thread polls, and ends.
 *
 * A wait is bounded: a per-thread timer interrupts the open every TICK_MS (the handler does
 * nothing and is installed without SA_RESTART, so the open fails with EINTR), the thread checks
 * the caller still waits (NOTIF_ID_VALID: a caller that was killed or took a signal is gone), and
 * gives up once the request's limit has passed, answering EINTR, as a signal would have.
 *
 * The threads are made by the serving thread after it confined itself, so they inherit its
 * seccomp filter (confine.ts lets it make threads, not processes).
 */
#include "blocking.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

/* How often a waiting open is interrupted to check on its caller. */
#define TICK_MS 100
/* Threads waiting at once, process-wide; one more is answered EAGAIN. */
#define MAX_WAITING 256
#define THREAD_STACK (128 * 1024)

/* The request, as the TypeScript side writes it (blocking.ts BlockingRequest). */
#define REQ_SIZE 64
/* What the thread does with src: open it as the caller, or syncfs its file system (sync(2), which
 * waits for the writeback of the whole file system and needs no identity). */
enum { OP_OPEN = 0, OP_SYNCFS = 1 };
/* A report, as the TypeScript side reads it (blocking.ts decodeReport). */
struct report {
  uint64_t id;
  uint32_t token;
  int32_t key;
  int32_t result;
  uint32_t waited_ms;
  uint32_t outcome;
  uint32_t pid;
};
_Static_assert(sizeof(struct report) == 32, "a report is 32 bytes");

enum { OUTCOME_ANSWERED = 0, OUTCOME_GONE = 1, OUTCOME_LIMIT = 2 };

struct job {
  int listener; /* a dup of the listener, this thread's own */
  uint64_t id;
  uint32_t pid;
  int src;
  uint32_t flags;
  uint32_t newfd_flags;
  uint32_t uid, gid;
  uint32_t ngroups;
  uint32_t limit_ms;
  uint32_t token;
  int32_t key;
  uint64_t caps;
  uint32_t op;
  uint32_t groups[];
};

static pthread_mutex_t init_lock = PTHREAD_MUTEX_INITIALIZER;
static int report_r = -1, report_w = -1;
static int tick_signal;
static atomic_int waiting;

static void on_tick(int sig) {
  (void)sig;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- arguments --------------------------------------------------------------------------------- */

static bool type_error(napi_env env, const char *name, const char *what) {
  char msg[160];
  snprintf(msg, sizeof msg, "The \"%s\" argument must be %s", name, what);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return false;
}

static napi_value number(napi_env env, int64_t n) {
  napi_value v = NULL;
  napi_create_int64(env, n, &v);
  return v;
}

static bool buffer_arg(napi_env env, napi_value v, const char *name, void **data, size_t *len) {
  bool is = false;
  if (napi_is_buffer(env, v, &is) == napi_ok && is && napi_get_buffer_info(env, v, data, len) == napi_ok) return true;
  return type_error(env, name, "a Buffer");
}

static uint32_t u32_at(const uint8_t *b, size_t off) {
  uint32_t v;
  memcpy(&v, b + off, sizeof v);
  return v;
}

static uint64_t u64_at(const uint8_t *b, size_t off) {
  uint64_t v;
  memcpy(&v, b + off, sizeof v);
  return v;
}

/* ---- the thread -------------------------------------------------------------------------------- */

/*
 * The caller's file-system identity on this thread alone: its supplementary groups, fsgid and
 * fsuid, then exactly its effective capabilities (the permitted set stays the sentry's). The
 * thread starts with whatever identity the serving thread had, so first every permitted
 * capability is made effective: changing ids takes CAP_SETUID and CAP_SETGID.
 */
static int take_creds(const struct job *j) {
  struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
  struct __user_cap_data_struct d[2];
  if (syscall(SYS_capget, &h, d) < 0) return -errno;
  d[0].effective = d[0].permitted;
  d[1].effective = d[1].permitted;
  if (syscall(SYS_capset, &h, d) < 0) return -errno;
  if (syscall(SYS_setgroups, (long)j->ngroups, j->groups) < 0) return -errno;
  syscall(SYS_setfsgid, (long)j->gid);
  syscall(SYS_setfsuid, (long)j->uid);
  /* setfs*id say the previous value whether or not they changed it: ask again. */
  if ((uint32_t)syscall(SYS_setfsuid, -1L) != j->uid || (uint32_t)syscall(SYS_setfsgid, -1L) != j->gid) return -EPERM;
  d[0].effective = (uint32_t)j->caps & d[0].permitted;
  d[1].effective = (uint32_t)(j->caps >> 32) & d[1].permitted;
  if (syscall(SYS_capset, &h, d) < 0) return -errno;
  return 0;
}

static bool caller_waits(const struct job *j) {
  uint64_t id = j->id;
  int r;
  do r = ioctl(j->listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &id);
  while (r < 0 && errno == EINTR);
  return r == 0;
}

/* Opens the pinned object as the caller, interrupted every TICK_MS: the fd, or -errno with *outcome set. */
static int open_bounded(const struct job *j, uint64_t start, uint32_t *outcome) {
  int timer = -1;
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = tick_signal;
  sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
  if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &timer) < 0) return -errno;
  struct itimerspec every = {
      .it_interval = {.tv_sec = 0, .tv_nsec = TICK_MS * 1000000L},
      .it_value = {.tv_sec = 0, .tv_nsec = TICK_MS * 1000000L},
  };
  int r;
  if (syscall(SYS_timer_settime, timer, 0, &every, NULL) < 0) {
    r = -errno;
    syscall(SYS_timer_delete, timer);
    return r;
  }
  char path[40];
  snprintf(path, sizeof path, "/proc/self/fd/%d", j->src);
  /* Never a controlling terminal: the sentry is not the process that asked. */
  struct open_how how = {.flags = (uint64_t)(j->flags | O_CLOEXEC | O_NOCTTY), .mode = 0, .resolve = 0};
  for (;;) {
    r = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof how);
    if (r >= 0) break;
    r = -errno;
    if (r != -EINTR) break;
    if (!caller_waits(j)) {
      *outcome = OUTCOME_GONE;
      break;
    }
    if (now_ms() - start >= j->limit_ms) {
      *outcome = OUTCOME_LIMIT;
      break;
    }
  }
  syscall(SYS_timer_delete, timer);
  return r;
}

/* One write of less than PIPE_BUF: whole, whatever other threads write. */
static void send_report(const struct job *j, int32_t result, uint32_t outcome, uint64_t start) {
  uint64_t waited = now_ms() - start;
  struct report rep = {
      .id = j->id, .token = j->token, .key = j->key, .result = result,
      .waited_ms = waited > UINT32_MAX ? UINT32_MAX : (uint32_t)waited, .outcome = outcome, .pid = j->pid,
  };
  ssize_t w;
  do w = write(report_w, &rep, sizeof rep);
  while (w < 0 && errno == EINTR);
}

static void *serve_job(void *arg) {
  struct job *j = arg;
  uint64_t start = now_ms();
  sigset_t tick;
  sigemptyset(&tick);
  sigaddset(&tick, tick_signal);
  pthread_sigmask(SIG_UNBLOCK, &tick, NULL);

  uint32_t outcome = OUTCOME_ANSWERED;
  int fd;
  int32_t result;
  if (j->op == OP_SYNCFS) {
    /* Not interruptible, and the kernel's own sync would wait as long: no timer. */
    result = syscall(SYS_syncfs, j->src) < 0 ? -errno : 0;
    fd = result < 0 ? result : -1;
  } else {
    fd = take_creds(j);
    if (fd == 0) fd = open_bounded(j, start, &outcome);
    result = fd;
  }
  /*
   * A call answered EINTR past its limit is reported first: once answered, its caller may end the
   * container at once, and the serving thread stop reading reports, before this one arrived.
   */
  if (outcome == OUTCOME_LIMIT) send_report(j, result, outcome, start);
  if (outcome != OUTCOME_GONE) {
    int r;
    if (j->op == OP_SYNCFS && result == 0) {
      struct seccomp_notif_resp resp = {.id = j->id, .val = 0, .error = 0, .flags = 0};
      do r = ioctl(j->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
      while (r < 0 && errno == EINTR);
    } else if (fd >= 0) {
      /* With SEND the install and the answer are one step: the caller never sees a half-done open. */
      struct seccomp_notif_addfd add;
      memset(&add, 0, sizeof add);
      add.id = j->id;
      add.flags = SECCOMP_ADDFD_FLAG_SEND;
      add.srcfd = (uint32_t)fd;
      add.newfd_flags = j->newfd_flags;
      do r = ioctl(j->listener, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
      while (r < 0 && errno == EINTR);
      result = r < 0 ? -errno : r;
    } else {
      struct seccomp_notif_resp resp = {.id = j->id, .val = 0, .error = fd, .flags = 0};
      do r = ioctl(j->listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
      while (r < 0 && errno == EINTR);
    }
    if (r < 0 && errno == ENOENT) outcome = OUTCOME_GONE;
  }
  if (fd >= 0) close(fd);
  close(j->src);
  close(j->listener);
  if (outcome != OUTCOME_LIMIT) send_report(j, result, outcome, start);
  free(j);
  atomic_fetch_sub(&waiting, 1);
  return NULL;
}

/* ---- JavaScript -------------------------------------------------------------------------------- */

/*
 * blockingInit(): the fd the reports come on (non-blocking, close-on-exec), or -errno. Installs
 * the tick signal's handler and makes the pipe: before the serving thread confines itself, which
 * may do neither. Once per process; later calls return the same fd.
 */
static napi_value js_blocking_init(napi_env env, napi_callback_info info) {
  (void)info;
  pthread_mutex_lock(&init_lock);
  int r = report_r;
  if (r < 0) {
    tick_signal = SIGRTMAX - 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_tick;
    sigemptyset(&sa.sa_mask);
    /* No SA_RESTART: the interrupted open must come back with EINTR. */
    sa.sa_flags = 0;
    int p[2];
    if (sigaction(tick_signal, &sa, NULL) < 0) r = -errno;
    else if (pipe2(p, O_CLOEXEC) < 0) r = -errno;
    else if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0) {
      r = -errno;
      close(p[0]);
      close(p[1]);
    } else {
      report_r = r = p[0];
      report_w = p[1];
    }
  }
  pthread_mutex_unlock(&init_lock);
  return number(env, r);
}

/*
 * blockingOpen(listener, request, groups): 0 once a thread serves the request (it owns the
 * request's src fd from then on), or -errno (-EAGAIN: MAX_WAITING threads wait already), the src
 * fd still the caller's. request: REQ_SIZE bytes (blocking.ts); groups: ngroups u32s.
 */
static napi_value js_blocking_open(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t listener;
  void *req, *groups;
  size_t req_len, groups_len;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) {
    type_error(env, "arguments", "listener, request, groups");
    return NULL;
  }
  if (napi_get_value_int32(env, argv[0], &listener) != napi_ok) {
    type_error(env, "listener", "of type number");
    return NULL;
  }
  if (!buffer_arg(env, argv[1], "request", &req, &req_len) || !buffer_arg(env, argv[2], "groups", &groups, &groups_len)) return NULL;
  if (req_len < REQ_SIZE) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "request is shorter than a blocking request");
    return NULL;
  }
  const uint8_t *b = req;
  uint32_t ngroups = u32_at(b, 32);
  if (ngroups > 65536 || (size_t)ngroups * 4 > groups_len) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "groups holds fewer groups than the request says");
    return NULL;
  }
  if (report_w < 0) return number(env, -EBADFD);
  if (atomic_fetch_add(&waiting, 1) >= MAX_WAITING) {
    atomic_fetch_sub(&waiting, 1);
    return number(env, -EAGAIN);
  }
  struct job *j = malloc(sizeof *j + (size_t)ngroups * 4);
  if (j == NULL) {
    atomic_fetch_sub(&waiting, 1);
    return number(env, -ENOMEM);
  }
  j->id = u64_at(b, 0);
  j->pid = u32_at(b, 8);
  j->src = (int)u32_at(b, 12);
  j->flags = u32_at(b, 16);
  j->newfd_flags = u32_at(b, 20);
  j->uid = u32_at(b, 24);
  j->gid = u32_at(b, 28);
  j->ngroups = ngroups;
  j->limit_ms = u32_at(b, 36);
  j->token = u32_at(b, 40);
  j->key = (int32_t)u32_at(b, 44);
  j->caps = u64_at(b, 48);
  j->op = u32_at(b, 56);
  if (j->op != OP_OPEN && j->op != OP_SYNCFS) {
    free(j);
    atomic_fetch_sub(&waiting, 1);
    return number(env, -EINVAL);
  }
  memcpy(j->groups, groups, (size_t)ngroups * 4);
  j->listener = fcntl(listener, F_DUPFD_CLOEXEC, 0);
  int err = j->listener < 0 ? errno : 0;
  pthread_attr_t attr;
  pthread_t t;
  if (err == 0) {
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    err = pthread_create(&t, &attr, serve_job, j);
    pthread_attr_destroy(&attr);
    if (err != 0) close(j->listener);
  }
  if (err != 0) {
    free(j);
    atomic_fetch_sub(&waiting, 1);
    return number(env, -err);
  }
  return number(env, 0);
}

bool stk_blocking_register(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
      {"blockingInit", NULL, js_blocking_init, NULL, NULL, NULL, napi_enumerable, NULL},
      {"blockingOpen", NULL, js_blocking_open, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns) == napi_ok;
}
