/* The N-API addon: the few Linux syscalls Node lacks, as thin functions that throw Node-style system errors. */
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <linux/openat2.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "blocking.h"
#include "fastpath.h"
#include "bpf.h"
#include "notify.h"
#include "stk-scm.h"
#include "stk-tty.h"

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/* Large enough for a short protocol message; callers that expect more pass maxData. */
#define RECV_DEFAULT_DATA 4096
#define RECV_MAX_DATA (1 << 20)
/* The blocking threads only wait in one syscall; the default 8 MiB stack would be mostly wasted. */
#define WAIT_THREAD_STACK (64 * 1024)

static void free_ptr(void *p) {
  free(*(void **)p);
}
#define cleanup_free __attribute__((cleanup(free_ptr)))

/* ---- errors ------------------------------------------------------------------------------------ */

/* Shaped like Node's own system errors (fs, child_process): message "ESRCH: no such process, pidfd_open",
 * code = the errno name, errno = the negated value (Node follows libuv there), syscall = the call. */
static napi_value errno_error(napi_env env, int err, const char *syscall_name) {
  const char *name = strerrorname_np(err);
  if (name == NULL) name = "UNKNOWN";
  char desc[128];
  snprintf(desc, sizeof desc, "%s", strerror(err));
  if (desc[0] >= 'A' && desc[0] <= 'Z') desc[0] = (char)(desc[0] - 'A' + 'a');
  char msg[256];
  snprintf(msg, sizeof msg, "%s: %s, %s", name, desc, syscall_name);

  napi_value code, message, error, errno_value, syscall_value;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code) != napi_ok ||
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) != napi_ok ||
      napi_create_error(env, code, message, &error) != napi_ok ||
      napi_create_int32(env, -err, &errno_value) != napi_ok ||
      napi_create_string_utf8(env, syscall_name, NAPI_AUTO_LENGTH, &syscall_value) != napi_ok ||
      napi_set_named_property(env, error, "errno", errno_value) != napi_ok ||
      napi_set_named_property(env, error, "syscall", syscall_value) != napi_ok)
    return NULL;
  return error;
}

static napi_value throw_errno(napi_env env, int err, const char *syscall_name) {
  napi_value error = errno_error(env, err, syscall_name);
  if (error != NULL) napi_throw(env, error);
  return NULL;
}

/* A failed napi_* call usually leaves an exception pending; when it does not, raise one so the
 * caller never sees a silent undefined. */
static napi_value throw_napi_failure(napi_env env, const char *what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    const napi_extended_error_info *info = NULL;
    napi_get_last_error_info(env, &info);
    char msg[256];
    snprintf(msg, sizeof msg, "%s failed: %s", what,
             info != NULL && info->error_message != NULL ? info->error_message : "unknown N-API error");
    napi_throw_error(env, NULL, msg);
  }
  return NULL;
}

#define NAPI_CALL(env, call)                                 \
  do {                                                       \
    if ((call) != napi_ok) return throw_napi_failure(env, #call); \
  } while (0)

/* ---- arguments --------------------------------------------------------------------------------- */

static bool get_args(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    throw_napi_failure(env, "napi_get_cb_info");
    return false;
  }
  /* Missing arguments read as undefined, so the type checks below report them by name. */
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  for (size_t i = argc; i < want; i++) argv[i] = undefined;
  return true;
}

static bool is_type(napi_env env, napi_value v, napi_valuetype type) {
  napi_valuetype actual;
  return napi_typeof(env, v, &actual) == napi_ok && actual == type;
}

/* An integer in [min, max]; anything else is a TypeError or RangeError like Node's own validators. */
static bool get_integer(napi_env env, napi_value v, const char *name, int64_t min, int64_t max, int64_t *out) {
  char msg[160];
  if (!is_type(env, v, napi_number)) {
    snprintf(msg, sizeof msg, "The \"%s\" argument must be of type number", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  double d;
  napi_get_value_double(env, v, &d);
  if (!(d >= (double)min && d <= (double)max) || d != (double)(int64_t)d) {
    snprintf(msg, sizeof msg, "The value of \"%s\" is out of range. It must be an integer >= %lld and <= %lld. Received %g",
             name, (long long)min, (long long)max, d);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  *out = (int64_t)d;
  return true;
}

static bool get_fd(napi_env env, napi_value v, const char *name, int *out) {
  int64_t n;
  if (!get_integer(env, v, name, 0, INT_MAX, &n)) return false;
  *out = (int)n;
  return true;
}

static bool get_u32(napi_env env, napi_value v, const char *name, uint32_t *out) {
  int64_t n;
  if (!get_integer(env, v, name, 0, UINT32_MAX, &n)) return false;
  *out = (uint32_t)n;
  return true;
}

/* "sh" | "ex" | "un" -> LOCK_*; the op is a string so a typo cannot silently pick the wrong lock. */
static bool get_lock_op(napi_env env, napi_value v, bool allow_unlock, int *out) {
  char op[4] = {0};
  size_t len = 0;
  if (is_type(env, v, napi_string) && napi_get_value_string_utf8(env, v, op, sizeof op, &len) == napi_ok) {
    if (strcmp(op, "sh") == 0) { *out = LOCK_SH; return true; }
    if (strcmp(op, "ex") == 0) { *out = LOCK_EX; return true; }
    if (allow_unlock && strcmp(op, "un") == 0) { *out = LOCK_UN; return true; }
  }
  napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE",
                        allow_unlock ? "The \"op\" argument must be 'sh', 'ex' or 'un'"
                                     : "The \"op\" argument must be 'sh' or 'ex'");
  return false;
}

/* A path as a NUL-terminated C string; an embedded NUL would silently shorten the path the kernel sees. */
static bool get_path(napi_env env, napi_value v, char *buf, size_t size) {
  size_t len = 0;
  if (!is_type(env, v, napi_string)) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"path\" argument must be of type string");
    return false;
  }
  size_t full = 0;
  napi_get_value_string_utf8(env, v, NULL, 0, &full);
  if (full >= size) {
    throw_errno(env, ENAMETOOLONG, "openat2");
    return false;
  }
  napi_get_value_string_utf8(env, v, buf, size, &len);
  if (strlen(buf) != len) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "The \"path\" argument must not contain null bytes");
    return false;
  }
  return true;
}

static napi_value make_int(napi_env env, int64_t n) {
  napi_value v;
  if (napi_create_int64(env, n, &v) != napi_ok) return throw_napi_failure(env, "napi_create_int64");
  return v;
}

static napi_value make_undefined(napi_env env) {
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

/* ---- calls that may block indefinitely --------------------------------------------------------- */

/* A blocked flock or waitid can last as long as another process likes. On the libuv pool (napi async
 * work) a few of them would starve fs, dns and crypto of its four threads, so each gets a small
 * thread of its own and settles its promise through a thread-safe function. */
typedef struct job job_t;
struct job {
  napi_deferred deferred;
  napi_threadsafe_function tsfn;
  const char *syscall;
  int (*run)(job_t *);                       /* on the thread: 0 or an errno */
  napi_value (*settle)(napi_env, job_t *);   /* on the JS thread: the resolution value */
  int err;
  int fd;                                    /* a dup the job owns, so the caller may close its own */
  int op;
  siginfo_t info;
};

static void *job_thread(void *arg) {
  job_t *job = arg;
  job->err = job->run(job);
  close(job->fd);
  napi_threadsafe_function tsfn = job->tsfn;
  /* When the environment is shutting down the call fails and settle never runs, so free here. */
  if (napi_call_threadsafe_function(tsfn, job, napi_tsfn_blocking) != napi_ok) free(job);
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  return NULL;
}

static void job_settle(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  (void)context;
  job_t *job = data;
  if (env != NULL) {
    if (job->err != 0) {
      napi_value error = errno_error(env, job->err, job->syscall);
      if (error != NULL) napi_reject_deferred(env, job->deferred, error);
    } else {
      napi_value value = job->settle(env, job);
      if (value != NULL) napi_resolve_deferred(env, job->deferred, value);
    }
  }
  free(job);
}

/* Takes ownership of job (and job->fd) in every outcome. */
static napi_value start_job(napi_env env, job_t *job) {
  napi_value promise, name;
  if (napi_create_promise(env, &job->deferred, &promise) != napi_ok ||
      napi_create_string_utf8(env, job->syscall, NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, NULL, job_settle, &job->tsfn) != napi_ok) {
    close(job->fd);
    free(job);
    return throw_napi_failure(env, "start_job");
  }

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, WAIT_THREAD_STACK);
  /* Signals meant for Node (SIGCHLD, SIGINT, ...) must not land on this thread: born with all blocked. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t thread;
  int rc = pthread_create(&thread, &attr, job_thread, job);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  pthread_attr_destroy(&attr);

  if (rc != 0) {
    napi_release_threadsafe_function(job->tsfn, napi_tsfn_abort);
    napi_value error = errno_error(env, rc, "pthread_create");
    if (error != NULL) napi_reject_deferred(env, job->deferred, error);
    close(job->fd);
    free(job);
  }
  return promise;
}

static job_t *new_job(napi_env env, int fd, const char *syscall_name) {
  job_t *job = calloc(1, sizeof *job);
  if (job == NULL) {
    throw_errno(env, ENOMEM, syscall_name);
    return NULL;
  }
  job->syscall = syscall_name;
  job->fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (job->fd < 0) {
    throw_errno(env, errno, "fcntl");
    free(job);
    return NULL;
  }
  return job;
}

/* ---- flock ------------------------------------------------------------------------------------- */

static napi_value js_flock(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int fd, op;
  if (!get_fd(env, argv[0], "fd", &fd) || !get_lock_op(env, argv[1], true, &op)) return NULL;
  bool nonblock = false;
  if (!is_type(env, argv[2], napi_undefined)) {
    if (!is_type(env, argv[2], napi_boolean)) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"nonblock\" argument must be of type boolean");
      return NULL;
    }
    napi_get_value_bool(env, argv[2], &nonblock);
  }
  if (nonblock) op |= LOCK_NB;
  int r;
  do r = flock(fd, op);
  while (r < 0 && errno == EINTR);
  if (r < 0) return throw_errno(env, errno, "flock");
  return make_undefined(env);
}

static int run_flock(job_t *job) {
  int r;
  do r = flock(job->fd, job->op);
  while (r < 0 && errno == EINTR);
  return r < 0 ? errno : 0;
}

static napi_value settle_undefined(napi_env env, job_t *job) {
  (void)job;
  return make_undefined(env);
}

static napi_value js_flock_async(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int fd, op;
  if (!get_fd(env, argv[0], "fd", &fd) || !get_lock_op(env, argv[1], false, &op)) return NULL;
  /* The lock belongs to the open file description, which the dup shares: closing the dup keeps it. */
  job_t *job = new_job(env, fd, "flock");
  if (job == NULL) return NULL;
  job->op = op;
  job->run = run_flock;
  job->settle = settle_undefined;
  return start_job(env, job);
}

/* ---- pidfd ------------------------------------------------------------------------------------- */

static napi_value js_pidfd_open(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int64_t pid;
  if (!get_integer(env, argv[0], "pid", 1, INT_MAX, &pid)) return NULL;
  /* pidfd_open always sets O_CLOEXEC. */
  long fd = syscall(SYS_pidfd_open, (pid_t)pid, 0u);
  if (fd < 0) return throw_errno(env, errno, "pidfd_open");
  return make_int(env, fd);
}

static napi_value js_pidfd_send_signal(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int pidfd;
  int64_t sig;
  if (!get_fd(env, argv[0], "pidfd", &pidfd) || !get_integer(env, argv[1], "signal", 0, 64, &sig)) return NULL;
  if (syscall(SYS_pidfd_send_signal, pidfd, (int)sig, NULL, 0u) < 0)
    return throw_errno(env, errno, "pidfd_send_signal");
  return make_undefined(env);
}

static napi_value js_pidfd_getfd(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int pidfd, target;
  if (!get_fd(env, argv[0], "pidfd", &pidfd) || !get_fd(env, argv[1], "targetfd", &target)) return NULL;
  /* pidfd_getfd always sets O_CLOEXEC on the new fd. */
  long fd = syscall(SYS_pidfd_getfd, pidfd, target, 0u);
  if (fd < 0) return throw_errno(env, errno, "pidfd_getfd");
  return make_int(env, fd);
}

static int run_waitid(job_t *job) {
  int r;
  /* __WALL: also reap children whose exit signal is not SIGCHLD (clone()d without it). */
  do r = waitid((idtype_t)P_PIDFD, (id_t)job->fd, &job->info, WEXITED | __WALL);
  while (r < 0 && errno == EINTR);
  return r < 0 ? errno : 0;
}

static napi_value settle_wait(napi_env env, job_t *job) {
  napi_value result, code, signal, null_value;
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_get_null(env, &null_value));
  code = null_value;
  signal = null_value;
  if (job->info.si_code == CLD_EXITED) {
    NAPI_CALL(env, napi_create_int32(env, job->info.si_status, &code));
  } else {
    NAPI_CALL(env, napi_create_int32(env, job->info.si_status, &signal));
  }
  NAPI_CALL(env, napi_set_named_property(env, result, "code", code));
  NAPI_CALL(env, napi_set_named_property(env, result, "signal", signal));
  return result;
}

static napi_value js_wait_pidfd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int pidfd;
  if (!get_fd(env, argv[0], "pidfd", &pidfd)) return NULL;
  job_t *job = new_job(env, pidfd, "waitid");
  if (job == NULL) return NULL;
  job->run = run_waitid;
  job->settle = settle_wait;
  return start_job(env, job);
}

static napi_value js_set_child_subreaper(napi_env env, napi_callback_info info) {
  (void)info;
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) return throw_errno(env, errno, "prctl");
  return make_undefined(env);
}

/* ---- SCM_RIGHTS -------------------------------------------------------------------------------- */

static napi_value js_socketpair(napi_env env, napi_callback_info info) {
  (void)info;
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0) return throw_errno(env, errno, "socketpair");
  napi_value pair, a, b;
  if (napi_create_array_with_length(env, 2, &pair) != napi_ok || napi_create_int32(env, fds[0], &a) != napi_ok ||
      napi_create_int32(env, fds[1], &b) != napi_ok || napi_set_element(env, pair, 0, a) != napi_ok ||
      napi_set_element(env, pair, 1, b) != napi_ok) {
    close(fds[0]);
    close(fds[1]);
    return throw_napi_failure(env, "socketpair result");
  }
  return pair;
}

/*
 * The address of the unix socket at path. sun_path holds 107 bytes: a longer path is reached
 * through an fd of its directory, returned in *dir_fd for the caller to close (else -1).
 * false: an exception is pending.
 */
static bool unix_address(napi_env env, napi_value arg, const char *op, struct sockaddr_un *addr, int *dir_fd) {
  char path[PATH_MAX];
  *dir_fd = -1;
  if (!get_path(env, arg, path, sizeof path)) return false;
  memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  char *slash = strrchr(path, '/');
  if (strlen(path) < sizeof addr->sun_path) {
    strcpy(addr->sun_path, path);
    return true;
  }
  if (slash == NULL || slash == path) {
    throw_errno(env, ENAMETOOLONG, op);
    return false;
  }
  *slash = '\0';
  *dir_fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (*dir_fd < 0) {
    throw_errno(env, errno, "open");
    return false;
  }
  if ((size_t)snprintf(addr->sun_path, sizeof addr->sun_path, "/proc/self/fd/%d/%s", *dir_fd, slash + 1) >= sizeof addr->sun_path) {
    close(*dir_fd);
    *dir_fd = -1;
    throw_errno(env, ENAMETOOLONG, op);
    return false;
  }
  return true;
}

/* unixListen(path, backlog = 1): a listening unix socket at path (a console socket the runtime
 * receives the pty on, the sentry's trace and join sockets). */
static napi_value js_unix_listen(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  size_t argc = 2;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return throw_napi_failure(env, "napi_get_cb_info");
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "unixListen(path, backlog?)");
    return NULL;
  }
  int64_t backlog = 1;
  if (argc >= 2 && !get_integer(env, argv[1], "backlog", 1, 4096, &backlog)) return NULL;
  struct sockaddr_un addr;
  int dir_fd;
  if (!unix_address(env, argv[0], "bind", &addr, &dir_fd)) return NULL;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int err = errno;
  if (fd >= 0 && (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, (int)backlog) < 0)) {
    err = errno;
    close(fd);
    fd = -1;
  }
  if (dir_fd >= 0) close(dir_fd);
  if (fd < 0) return throw_errno(env, err, "bind");
  return make_int(env, fd);
}

/* unixConnect(path): a stream socket connected to the unix socket at path (blocking, close-on-exec). */
static napi_value js_unix_connect(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  struct sockaddr_un addr;
  int dir_fd;
  if (!unix_address(env, argv[0], "connect", &addr, &dir_fd)) return NULL;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int err = errno;
  if (fd >= 0) {
    int r;
    do r = connect(fd, (struct sockaddr *)&addr, sizeof addr);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
      err = errno;
      close(fd);
      fd = -1;
    }
  }
  if (dir_fd >= 0) close(dir_fd);
  if (fd < 0) return throw_errno(env, err, "connect");
  return make_int(env, fd);
}

/* Blocking: callers accept only once a connection is known to be queued. */
static napi_value js_accept(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int fd;
  if (!get_fd(env, argv[0], "socketFd", &fd)) return NULL;
  int conn;
  do conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
  while (conn < 0 && errno == EINTR);
  if (conn < 0) return throw_errno(env, errno, "accept4");
  return make_int(env, conn);
}

/* peerCred(fd): SO_PEERCRED of a connected unix socket, [pid, uid, gid] as the kernel recorded them
 * at connect: the planner (src/planner/) serves only its own uid, and Node has no way to ask. */
static napi_value js_peer_cred(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int fd;
  if (!get_fd(env, argv[0], "socketFd", &fd)) return NULL;
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return throw_errno(env, errno, "getsockopt(SO_PEERCRED)");
  napi_value out;
  NAPI_CALL(env, napi_create_array_with_length(env, 3, &out));
  NAPI_CALL(env, napi_set_element(env, out, 0, make_int(env, cred.pid)));
  NAPI_CALL(env, napi_set_element(env, out, 1, make_int(env, cred.uid)));
  NAPI_CALL(env, napi_set_element(env, out, 2, make_int(env, cred.gid)));
  return out;
}

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77
#endif

/* peerPidfd(fd): a pidfd of the process at the other end of a connected unix socket (SO_PEERPIDFD;
 * before Linux 6.5, pidfd_open of SO_PEERCRED's pid): the planner reads its peer's /proc entry and
 * then checks, by this pidfd, that the pid was still that process's. */
static napi_value js_peer_pidfd(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int fd;
  if (!get_fd(env, argv[0], "socketFd", &fd)) return NULL;
  int pidfd = -1;
  socklen_t len = sizeof pidfd;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) == 0) return make_int(env, pidfd);
  struct ucred cred;
  len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return throw_errno(env, errno, "getsockopt(SO_PEERCRED)");
  if (cred.pid <= 0) return throw_errno(env, ESRCH, "getsockopt(SO_PEERCRED)");
  long pfd = syscall(SYS_pidfd_open, cred.pid, 0u);
  if (pfd < 0) return throw_errno(env, errno, "pidfd_open");
  return make_int(env, (int)pfd);
}

/* TIOCSWINSZ on a pty master: Node can only size its own terminal streams. */
static napi_value js_set_winsize(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int fd;
  int64_t rows, cols;
  if (!get_fd(env, argv[0], "fd", &fd) || !get_integer(env, argv[1], "rows", 0, 65535, &rows) ||
      !get_integer(env, argv[2], "cols", 0, 65535, &cols))
    return NULL;
  struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
  if (ioctl(fd, TIOCSWINSZ, &ws) < 0) return throw_errno(env, errno, "ioctl");
  return make_undefined(env);
}

/*
 * A new pty pair, both ends close-on-exec: the vm level's keeper stands for a guest process's
 * terminal on the host with it (the master goes to the client's console socket, the keeper relays
 * the slave to the guest). Returns [master, slave, name].
 */
static napi_value js_open_pty(napi_env env, napi_callback_info info) {
  (void)info;
  int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0) return throw_errno(env, errno, "open /dev/ptmx");
  int unlock = 0, ptn = -1;
  if (ioctl(master, TIOCSPTLCK, &unlock) < 0 || ioctl(master, TIOCGPTN, &ptn) < 0) {
    int e = errno;
    close(master);
    return throw_errno(env, e, "ioctl pty");
  }
  char name[64];
  snprintf(name, sizeof name, "/dev/pts/%d", ptn);
  int slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0) {
    int e = errno;
    close(master);
    return throw_errno(env, e, "open pty slave");
  }
  napi_value arr, v;
  NAPI_CALL(env, napi_create_array_with_length(env, 3, &arr));
  NAPI_CALL(env, napi_create_int32(env, master, &v));
  NAPI_CALL(env, napi_set_element(env, arr, 0, v));
  NAPI_CALL(env, napi_create_int32(env, slave, &v));
  NAPI_CALL(env, napi_set_element(env, arr, 1, v));
  NAPI_CALL(env, napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &v));
  NAPI_CALL(env, napi_set_element(env, arr, 2, v));
  return arr;
}

/* TIOCGWINSZ: [rows, cols] of a terminal (Node sizes only its own stdio streams). */
static napi_value js_get_winsize(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int fd;
  if (!get_fd(env, argv[0], "fd", &fd)) return NULL;
  struct winsize ws;
  if (ioctl(fd, TIOCGWINSZ, &ws) < 0) return throw_errno(env, errno, "ioctl");
  napi_value arr, v;
  NAPI_CALL(env, napi_create_array_with_length(env, 2, &arr));
  NAPI_CALL(env, napi_create_int32(env, ws.ws_row, &v));
  NAPI_CALL(env, napi_set_element(env, arr, 0, v));
  NAPI_CALL(env, napi_create_int32(env, ws.ws_col, &v));
  NAPI_CALL(env, napi_set_element(env, arr, 1, v));
  return arr;
}

/*
 * Sets or clears ONLCR on a terminal and says whether it was set. The relay of a container's pty
 * clears it on the caller's terminal: the pty has turned "\n" into "\r\n" already, and a second
 * conversion (libuv's raw mode keeps ONLCR) made it "\r\r\n".
 */
static napi_value js_set_onlcr(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int fd;
  bool on;
  if (!get_fd(env, argv[0], "fd", &fd)) return NULL;
  if (napi_get_value_bool(env, argv[1], &on) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "on must be a boolean");
    return NULL;
  }
  struct termios t;
  if (tcgetattr(fd, &t) < 0) return throw_errno(env, errno, "tcgetattr");
  bool was = (t.c_oflag & ONLCR) != 0;
  if (on) t.c_oflag |= ONLCR;
  else t.c_oflag &= ~(tcflag_t)ONLCR;
  if (tcsetattr(fd, TCSANOW, &t) < 0) return throw_errno(env, errno, "tcsetattr");
  napi_value result;
  napi_get_boolean(env, was, &result);
  return result;
}

/* takeCookedInput(fd): [Buffer, eof], what a terminal still in canonical mode holds before a
 * relay makes it raw (stk-tty.h says why). */
static napi_value js_take_cooked_input(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  int fd;
  if (!get_fd(env, argv[0], "fd", &fd)) return NULL;
  char buf[16384];
  bool eof = false;
  size_t len = stk_take_cooked_input(fd, buf, sizeof buf, &eof);
  napi_value result, data, flag;
  if (napi_create_buffer_copy(env, len, buf, NULL, &data) != napi_ok || napi_get_boolean(env, eof, &flag) != napi_ok ||
      napi_create_array_with_length(env, 2, &result) != napi_ok || napi_set_element(env, result, 0, data) != napi_ok ||
      napi_set_element(env, result, 1, flag) != napi_ok)
    return NULL;
  return result;
}

/*
 * What a pty master holds now, read without blocking whatever its fd's flags (poll with no wait
 * before each read), up to max bytes; stops at EIO (every slave closed and all read). libuv ends
 * its read of a master early: POLLHUP with a short read is its EOF, while the kernel may still
 * hold output the slave wrote before it closed (moved to the master's read buffer piecewise by a
 * worker, which n_tty's poll and read flush first). Returns the bytes read.
 */
static napi_value js_read_available(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int fd;
  int64_t max;
  if (!get_fd(env, argv[0], "fd", &fd)) return NULL;
  if (napi_get_value_int64(env, argv[1], &max) != napi_ok || max < 0 || max > (1 << 24)) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "max must be a number of bytes from 0 to 16 MiB");
    return NULL;
  }
  char *buf = malloc(max > 0 ? (size_t)max : 1);
  if (buf == NULL) return throw_errno(env, ENOMEM, "malloc");
  size_t len = 0;
  while (len < (size_t)max) {
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int r = poll(&p, 1, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || !(p.revents & POLLIN)) break;
    ssize_t n = read(fd, buf + len, (size_t)max - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += (size_t)n;
  }
  napi_value data;
  napi_status st = napi_create_buffer_copy(env, len, buf, NULL, &data);
  free(buf);
  return st == napi_ok ? data : NULL;
}

/*
 * Signals held for the hand-over to stockade-light's wait. Node's (libuv's) handler only notes a
 * signal in a pipe that the event loop reads later: one caught just before execv is lost with the
 * process image (an attached run's SIGTERM never reached its container under load). So from
 * holdSignals on, a handler of ours takes them: on the main thread it notes them; on another
 * thread it passes them to the main thread, where execBlocked's mask keeps them pending across
 * execv. releaseSignals gives them back to Node's handlers when there is no execv after all.
 */
static pthread_t g_hold_thread;
static sigset_t g_held_set;
static volatile sig_atomic_t g_held[65];
static struct sigaction g_saved[65];

static void hold_handler(int sig) {
  int saved = errno;
  if (!pthread_equal(pthread_self(), g_hold_thread)) pthread_kill(g_hold_thread, sig);
  else if (sig > 0 && sig < 65) g_held[sig] = 1;
  errno = saved;
}

static bool get_signal_set(napi_env env, napi_value list, sigset_t *set) {
  bool is_array = false;
  uint32_t n = 0;
  if (napi_is_array(env, list, &is_array) != napi_ok || !is_array || napi_get_array_length(env, list, &n) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "signals must be an array of signal numbers");
    return false;
  }
  sigemptyset(set);
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    int64_t sig;
    if (napi_get_element(env, list, i, &e) != napi_ok || !get_integer(env, e, "signal", 1, 64, &sig)) return false;
    sigaddset(set, (int)sig);
  }
  return true;
}

static napi_value js_hold_signals(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  if (!get_args(env, info, 1, argv)) return NULL;
  sigset_t set;
  if (!get_signal_set(env, argv[0], &set)) return NULL;
  g_hold_thread = pthread_self();
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = hold_handler;
  sa.sa_flags = SA_RESTART;
  sa.sa_mask = set;
  for (int sig = 1; sig < 65; sig++) {
    if (sigismember(&set, sig) != 1 || sigismember(&g_held_set, sig) == 1) continue;
    if (sigaction(sig, &sa, &g_saved[sig]) < 0) return throw_errno(env, errno, "sigaction");
    sigaddset(&g_held_set, sig);
  }
  return NULL;
}

static napi_value js_release_signals(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  for (int sig = 1; sig < 65; sig++) {
    if (sigismember(&g_held_set, sig) != 1) continue;
    sigaction(sig, &g_saved[sig], NULL);
    sigdelset(&g_held_set, sig);
    if (g_held[sig]) {
      g_held[sig] = 0;
      raise(sig);
    }
  }
  return NULL;
}

/*
 * execv(path, argv) with `signals` blocked, so that a signal sent while one program gives way to
 * the other waits for the new one's handlers instead of meeting the default action in between
 * (stockade-light's wait, which an attached run becomes). After holdSignals, every thread hands
 * such a signal to this one (hold_handler), and what this one noted before its mask changed is
 * raised again once it is blocked. Returns only when execv fails: the mask restored, the errno
 * thrown (the caller then gives the held signals back with releaseSignals).
 */
static napi_value js_exec_blocked(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  char path[PATH_MAX];
  if (!get_path(env, argv[0], path, sizeof path)) return NULL;
  bool is_array = false;
  uint32_t n = 0, nsig = 0;
  if (napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[1], &n) != napi_ok ||
      n == 0 || napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[2], &nsig) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "execBlocked(path, args: string[] (at least one), signals: number[])");
    return NULL;
  }
  char **args = calloc((size_t)n + 1, sizeof *args);
  if (args == NULL) return throw_errno(env, ENOMEM, "calloc");
  napi_value result = NULL;
  sigset_t block, old;
  sigemptyset(&block);
  for (uint32_t i = 0; i < n; i++) {
    napi_value e;
    size_t len = 0;
    if (napi_get_element(env, argv[1], i, &e) != napi_ok || !is_type(env, e, napi_string) ||
        napi_get_value_string_utf8(env, e, NULL, 0, &len) != napi_ok || (args[i] = malloc(len + 1)) == NULL ||
        napi_get_value_string_utf8(env, e, args[i], len + 1, &len) != napi_ok || strlen(args[i]) != len) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "execBlocked: each argument must be a string without null bytes");
      goto out;
    }
  }
  for (uint32_t i = 0; i < nsig; i++) {
    napi_value e;
    int64_t sig;
    if (napi_get_element(env, argv[2], i, &e) != napi_ok || !get_integer(env, e, "signal", 1, 64, &sig)) goto out;
    sigaddset(&block, (int)sig);
  }
  pthread_sigmask(SIG_BLOCK, &block, &old);
  /* What hold_handler noted goes back to this thread, pending under the mask, so execv keeps it. */
  for (int sig = 1; sig < 65; sig++) {
    if (g_held[sig] && sigismember(&block, sig) == 1) {
      g_held[sig] = 0;
      pthread_kill(pthread_self(), sig);
    }
  }
  execv(path, args);
  int err = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  throw_errno(env, err, "execv");
out:
  for (uint32_t i = 0; i < n; i++) free(args[i]);
  free(args);
  return result;
}

/* malloc_trim(0): gives the free memory of malloc's heaps back to the kernel. Node's allocator
 * keeps what start-up freed; a long-lived process that idles has no use for it. */
static napi_value js_malloc_trim(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value out;
  if (napi_get_boolean(env, malloc_trim(0) == 1, &out) != napi_ok) return NULL;
  return out;
}

static napi_value js_send_fd(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!get_args(env, info, 3, argv)) return NULL;
  int sock, fd;
  if (!get_fd(env, argv[0], "socketFd", &sock) || !get_fd(env, argv[1], "fd", &fd)) return NULL;

  void *data = NULL;
  size_t len = 0;
  if (!is_type(env, argv[2], napi_undefined)) {
    bool is_buffer = false;
    napi_is_buffer(env, argv[2], &is_buffer);
    if (!is_buffer) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"data\" argument must be a Buffer or Uint8Array");
      return NULL;
    }
    NAPI_CALL(env, napi_get_buffer_info(env, argv[2], &data, &len));
  }
  /* A stream socket drops ancillary data sent with no payload, so an empty message travels as one NUL. */
  char nul = 0;
  if (len == 0) {
    data = &nul;
    len = 1;
  }

  ssize_t n = stk_send_fd(sock, fd, data, len);
  if (n < 0) return throw_errno(env, errno, "sendmsg");
  /* The fd went with the first byte; a stream socket may take the rest of the payload in pieces. */
  size_t sent = (size_t)n;
  while (sent < len) {
    do n = send(sock, (char *)data + sent, len - sent, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0) return throw_errno(env, errno, "send");
    sent += (size_t)n;
  }
  return make_undefined(env);
}

static napi_value js_recv_fd(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  if (!get_args(env, info, 2, argv)) return NULL;
  int sock;
  if (!get_fd(env, argv[0], "socketFd", &sock)) return NULL;
  int64_t max = RECV_DEFAULT_DATA;
  if (!is_type(env, argv[1], napi_undefined) && !get_integer(env, argv[1], "maxData", 1, RECV_MAX_DATA, &max))
    return NULL;

  cleanup_free char *data = malloc((size_t)max);
  if (data == NULL) return throw_errno(env, ENOMEM, "recvmsg");
  struct iovec iov = {.iov_base = data, .iov_len = (size_t)max};
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
  } control;
  struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};

  ssize_t n;
  /* MSG_CMSG_CLOEXEC: another thread's fork (libuv spawns) must not inherit the fd before Node sees it. */
  do n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  if (n < 0) return throw_errno(env, errno, "recvmsg");

  /* CMSG_SPACE rounds up, so the kernel may fit two fds; the protocol is one, and none may leak. */
  int fds[4];
  size_t nfds = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int got;
      memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
      if (nfds < sizeof fds / sizeof fds[0]) fds[nfds++] = got;
      else close(got);
    }
  }
  if (nfds > 1 || (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) != 0) {
    for (size_t i = 0; i < nfds; i++) close(fds[i]);
    return throw_errno(env, (msg.msg_flags & MSG_TRUNC) != 0 ? EMSGSIZE : EPROTO, "recvmsg");
  }

  napi_value result, fd_value, buffer;
  if (napi_create_object(env, &result) != napi_ok ||
      (nfds == 1 ? napi_create_int32(env, fds[0], &fd_value) : napi_get_null(env, &fd_value)) != napi_ok ||
      napi_create_buffer_copy(env, (size_t)n, data, NULL, &buffer) != napi_ok ||
      napi_set_named_property(env, result, "fd", fd_value) != napi_ok ||
      napi_set_named_property(env, result, "data", buffer) != napi_ok) {
    if (nfds == 1) close(fds[0]);
    return throw_napi_failure(env, "recvFd result");
  }
  return result;
}

/* ---- openat2 ----------------------------------------------------------------------------------- */

static napi_value js_openat2(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  int64_t dirfd;
  uint32_t flags, mode = 0, resolve = 0;
  char path[PATH_MAX];
  if (!get_integer(env, argv[0], "dirfd", AT_FDCWD, INT_MAX, &dirfd) || !get_path(env, argv[1], path, sizeof path) ||
      !get_u32(env, argv[2], "flags", &flags))
    return NULL;
  if (!is_type(env, argv[3], napi_undefined) && !get_u32(env, argv[3], "mode", &mode)) return NULL;
  if (!is_type(env, argv[4], napi_undefined) && !get_u32(env, argv[4], "resolve", &resolve)) return NULL;

  /* Always close-on-exec, as every fd Node opens is: Node hands fds to children only by dup2 into
   * stdio slots, so a bare fd could only leak into an unrelated child spawned by another thread. */
  struct open_how how = {.flags = (uint64_t)flags | O_CLOEXEC, .mode = mode, .resolve = resolve};
  long fd;
  do fd = syscall(SYS_openat2, (int)dirfd, path, &how, sizeof how);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return throw_errno(env, errno, "openat2");
  return make_int(env, fd);
}

/* ---- module ------------------------------------------------------------------------------------ */

static bool set_constant(napi_env env, napi_value target, const char *name, int64_t value) {
  napi_value v;
  return napi_create_int64(env, value, &v) == napi_ok && napi_set_named_property(env, target, name, v) == napi_ok;
}

NAPI_MODULE_INIT() {
  napi_property_descriptor fns[] = {
      {"flock", NULL, js_flock, NULL, NULL, NULL, napi_enumerable, NULL},
      {"flockAsync", NULL, js_flock_async, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pidfdOpen", NULL, js_pidfd_open, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pidfdSendSignal", NULL, js_pidfd_send_signal, NULL, NULL, NULL, napi_enumerable, NULL},
      {"pidfdGetfd", NULL, js_pidfd_getfd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"waitPidfd", NULL, js_wait_pidfd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setChildSubreaper", NULL, js_set_child_subreaper, NULL, NULL, NULL, napi_enumerable, NULL},
      {"socketpair", NULL, js_socketpair, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendFd", NULL, js_send_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"recvFd", NULL, js_recv_fd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openat2", NULL, js_openat2, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unixListen", NULL, js_unix_listen, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unixConnect", NULL, js_unix_connect, NULL, NULL, NULL, napi_enumerable, NULL},
      {"accept", NULL, js_accept, NULL, NULL, NULL, napi_enumerable, NULL},
      {"peerCred", NULL, js_peer_cred, NULL, NULL, NULL, napi_enumerable, NULL},
      {"peerPidfd", NULL, js_peer_pidfd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setWinsize", NULL, js_set_winsize, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setOnlcr", NULL, js_set_onlcr, NULL, NULL, NULL, napi_enumerable, NULL},
      {"takeCookedInput", NULL, js_take_cooked_input, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readAvailable", NULL, js_read_available, NULL, NULL, NULL, napi_enumerable, NULL},
      {"openPty", NULL, js_open_pty, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getWinsize", NULL, js_get_winsize, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mallocTrim", NULL, js_malloc_trim, NULL, NULL, NULL, napi_enumerable, NULL},
      {"execBlocked", NULL, js_exec_blocked, NULL, NULL, NULL, napi_enumerable, NULL},
      {"holdSignals", NULL, js_hold_signals, NULL, NULL, NULL, napi_enumerable, NULL},
      {"releaseSignals", NULL, js_release_signals, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  NAPI_CALL(env, napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns));
  if (!stk_notify_register(env, exports)) return throw_napi_failure(env, "stk_notify_register");
  if (!stk_bpf_register(env, exports)) return throw_napi_failure(env, "stk_bpf_register");
  if (!stk_blocking_register(env, exports)) return throw_napi_failure(env, "stk_blocking_register");
  if (!stk_fastpath_register(env, exports)) return throw_napi_failure(env, "stk_fastpath_register");

  napi_value constants;
  NAPI_CALL(env, napi_create_object(env, &constants));
  if (!set_constant(env, constants, "AT_FDCWD", AT_FDCWD) || !set_constant(env, constants, "O_PATH", O_PATH) ||
      !set_constant(env, constants, "O_CLOEXEC", O_CLOEXEC) ||
      !set_constant(env, constants, "O_DIRECTORY", O_DIRECTORY) ||
      !set_constant(env, constants, "O_NOFOLLOW", O_NOFOLLOW) ||
      !set_constant(env, constants, "RESOLVE_NO_XDEV", RESOLVE_NO_XDEV) ||
      !set_constant(env, constants, "RESOLVE_NO_MAGICLINKS", RESOLVE_NO_MAGICLINKS) ||
      !set_constant(env, constants, "RESOLVE_NO_SYMLINKS", RESOLVE_NO_SYMLINKS) ||
      !set_constant(env, constants, "RESOLVE_BENEATH", RESOLVE_BENEATH) ||
      !set_constant(env, constants, "RESOLVE_IN_ROOT", RESOLVE_IN_ROOT))
    return throw_napi_failure(env, "constants");
  NAPI_CALL(env, napi_object_freeze(env, constants));
  NAPI_CALL(env, napi_set_named_property(env, exports, "constants", constants));
  return exports;
}
