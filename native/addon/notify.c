/* The addon's seccomp user-notification and remote-memory calls: the sentry supervisor's hot path. */
/*
 * Unlike addon.c's functions, these never throw for a failed syscall: they return -errno, because
 * the supervisor treats failures as data (most go back to the workload as its syscall's result)
 * and an exception per failed stat would cost more than the stat. Arguments of the wrong type
 * still throw TypeError (RangeError for a buffer too short), since those are bugs in the caller.
 * Nothing here keeps per-environment state, so the functions work the same in a worker_thread.
 */
#include "notify.h"

#include <errno.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/filter.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

/* Linux 6.6; glibc-era headers lack it. Computed as the kernel does. */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif

/* The most a string read may ask for; paths stop at PATH_MAX, this bounds a caller's mistake. */
#define READ_STRING_MAX (1 << 20)
/* Room on the stack for the strings of one syscall(): two paths cover renameat2 and linkat. */
#define STRING_ARENA (2 * PATH_MAX)

static pthread_once_t sizes_once = PTHREAD_ONCE_INIT;
static struct seccomp_notif_sizes kernel_sizes;
static int sizes_errno;
static size_t page_size;

static void read_sizes(void) {
  long ps = sysconf(_SC_PAGESIZE);
  page_size = ps > 0 ? (size_t)ps : 4096;
  if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &kernel_sizes) < 0) sizes_errno = errno;
}

/* ---- arguments --------------------------------------------------------------------------------- */

static bool type_error(napi_env env, const char *name, const char *what) {
  char msg[160];
  snprintf(msg, sizeof msg, "The \"%s\" argument must be %s", name, what);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return false;
}

static bool range_error(napi_env env, const char *name, const char *what) {
  char msg[160];
  snprintf(msg, sizeof msg, "The value of \"%s\" is out of range: %s", name, what);
  napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
  return false;
}

static bool get_argv(napi_env env, napi_callback_info info, size_t want, napi_value *argv) {
  size_t argc = want;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return type_error(env, "arguments", "readable");
  if (argc < want) {
    napi_value undefined;
    napi_get_undefined(env, &undefined);
    for (size_t i = argc; i < want; i++) argv[i] = undefined;
  }
  return true;
}

/* A number, truncated to an int32 as `| 0` would (fds, pids, flags, errnos). */
static bool get_i32(napi_env env, napi_value v, const char *name, int32_t *out) {
  if (napi_get_value_int32(env, v, out) == napi_ok) return true;
  return type_error(env, name, "of type number");
}

static bool get_u32(napi_env env, napi_value v, const char *name, uint32_t *out) {
  if (napi_get_value_uint32(env, v, out) == napi_ok) return true;
  return type_error(env, name, "of type number");
}

/* A bigint as its low 64 bits: ids and addresses are unsigned, values may be negative. */
static bool get_u64(napi_env env, napi_value v, const char *name, uint64_t *out) {
  bool lossless;
  if (napi_get_value_bigint_uint64(env, v, out, &lossless) == napi_ok) return true;
  return type_error(env, name, "of type bigint");
}

static bool get_i64(napi_env env, napi_value v, const char *name, int64_t *out) {
  bool lossless;
  if (napi_get_value_bigint_int64(env, v, out, &lossless) == napi_ok) return true;
  return type_error(env, name, "of type bigint");
}

static size_t element_size(napi_typedarray_type t) {
  switch (t) {
  case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: return 1;
  case napi_int16_array: case napi_uint16_array: return 2;
  case napi_int32_array: case napi_uint32_array: case napi_float32_array: return 4;
  default: return 8;
  }
}

/* The bytes of a Buffer, any TypedArray, a DataView or an ArrayBuffer. Returns false quietly when v
 * is none of these. */
static bool bytes_of(napi_env env, napi_value v, void **data, size_t *len) {
  bool is = false;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is) {
    napi_typedarray_type type;
    size_t n;
    if (napi_get_typedarray_info(env, v, &type, &n, data, NULL, NULL) != napi_ok) return false;
    *len = n * element_size(type);
    return true;
  }
  if (napi_is_dataview(env, v, &is) == napi_ok && is)
    return napi_get_dataview_info(env, v, len, data, NULL, NULL) == napi_ok;
  if (napi_is_arraybuffer(env, v, &is) == napi_ok && is)
    return napi_get_arraybuffer_info(env, v, data, len) == napi_ok;
  return false;
}

static bool get_bytes(napi_env env, napi_value v, const char *name, void **data, size_t *len) {
  if (bytes_of(env, v, data, len)) return true;
  return type_error(env, name, "a Buffer or Uint8Array");
}

static napi_value number(napi_env env, int64_t n) {
  napi_value v = NULL;
  if (n >= INT32_MIN && n <= INT32_MAX) napi_create_int32(env, (int32_t)n, &v);
  else napi_create_int64(env, n, &v);
  return v;
}

/* ---- seccomp user notification ----------------------------------------------------------------- */

/* notifSizes(): { notif, resp, data } | -errno (EINVAL where the kernel has no user notification). */
static napi_value js_notif_sizes(napi_env env, napi_callback_info info) {
  (void)info;
  pthread_once(&sizes_once, read_sizes);
  if (sizes_errno != 0) return number(env, -sizes_errno);
  napi_value obj, notif, resp, data;
  if (napi_create_object(env, &obj) != napi_ok || napi_create_uint32(env, kernel_sizes.seccomp_notif, &notif) != napi_ok ||
      napi_create_uint32(env, kernel_sizes.seccomp_notif_resp, &resp) != napi_ok ||
      napi_create_uint32(env, kernel_sizes.seccomp_data, &data) != napi_ok ||
      napi_set_named_property(env, obj, "notif", notif) != napi_ok ||
      napi_set_named_property(env, obj, "resp", resp) != napi_ok ||
      napi_set_named_property(env, obj, "data", data) != napi_ok)
    return NULL;
  return obj;
}

/* notifRecv(listener, buf): 0 with buf holding a struct seccomp_notif, 1 when the workload is gone
 * (every task under the filter has exited), -ENOENT when the notification vanished before it
 * was read (its task died: try again), another -errno otherwise. Blocks until one of these. */
static napi_value js_notif_recv(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  void *buf;
  size_t len;
  if (!get_argv(env, info, 2, argv) || !get_i32(env, argv[0], "listener", &fd) || !get_bytes(env, argv[1], "buf", &buf, &len))
    return NULL;
  pthread_once(&sizes_once, read_sizes);
  size_t need = sizeof(struct seccomp_notif);
  if (sizes_errno == 0 && kernel_sizes.seccomp_notif > need) need = kernel_sizes.seccomp_notif;
  if (len < need) {
    range_error(env, "buf", "shorter than struct seccomp_notif");
    return NULL;
  }

  /*
   * RECV blocks by itself (Linux 6.6 waits on the listener's wait queue, which the workload's
   * call wakes on this CPU with SYNC_WAKE_UP): no poll first, one syscall per notification. Once
   * every task under the filter is gone RECV no longer blocks and fails with ENOENT, as it does
   * for a caller killed before its notification was read; a poll that does not wait tells the two
   * apart (POLLHUP without POLLIN: nobody is left to call).
   */
  int r;
  do {
    /* The kernel refuses a buffer that is not zeroed (EINVAL). */
    memset(buf, 0, need);
    r = ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, buf);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return number(env, 0);
  int err = errno;
  if (err != ENOENT) return number(env, -err);
  struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
  do r = poll(&p, 1, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) return number(env, -errno);
  if (p.revents & POLLNVAL) return number(env, -EBADF);
  if (!(p.revents & POLLIN) && (p.revents & (POLLHUP | POLLERR))) return number(env, 1);
  return number(env, -ENOENT);
}

/* notifSend(listener, id, val, error, flags): 0 or -errno (-ENOENT: the task is gone). */
static napi_value js_notif_send(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t fd, error;
  uint32_t flags;
  uint64_t id;
  int64_t val;
  if (!get_argv(env, info, 5, argv) || !get_i32(env, argv[0], "listener", &fd) || !get_u64(env, argv[1], "id", &id) ||
      !get_i64(env, argv[2], "val", &val) || !get_i32(env, argv[3], "error", &error) || !get_u32(env, argv[4], "flags", &flags))
    return NULL;
  struct seccomp_notif_resp resp = {.id = id, .val = val, .error = error, .flags = flags};
  int r;
  do r = ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
  while (r < 0 && errno == EINTR);
  return number(env, r < 0 ? -errno : 0);
}

/* notifAddfd(listener, id, srcfd, newfdFlags, send): the fd number in the target, or -errno. With
 * send, the kernel also answers the notification with that number, atomically. */
static napi_value js_notif_addfd(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t fd, srcfd;
  uint32_t newfd_flags;
  uint64_t id;
  bool send = false;
  struct seccomp_notif_addfd add;
  memset(&add, 0, sizeof add);
  if (!get_argv(env, info, 5, argv) || !get_i32(env, argv[0], "listener", &fd) || !get_u64(env, argv[1], "id", &id) ||
      !get_i32(env, argv[2], "srcfd", &srcfd) || !get_u32(env, argv[3], "newfdFlags", &newfd_flags))
    return NULL;
  if (napi_get_value_bool(env, argv[4], &send) != napi_ok) {
    type_error(env, "send", "of type boolean");
    return NULL;
  }
  add.id = id;
  add.srcfd = (uint32_t)srcfd;
  add.newfd_flags = newfd_flags;
  add.flags = send ? SECCOMP_ADDFD_FLAG_SEND : 0;
  int r;
  /* An interrupted ADDFD has not installed the fd (the kernel withdraws it), so a retry is safe. */
  do r = ioctl(fd, SECCOMP_IOCTL_NOTIF_ADDFD, &add);
  while (r < 0 && errno == EINTR);
  return number(env, r < 0 ? -errno : r);
}

/* notifIdValid(listener, id): whether the notification is still pending (its task still waits). */
static napi_value js_notif_id_valid(napi_env env, napi_callback_info info) {
  napi_value argv[2], result;
  int32_t fd;
  uint64_t id;
  if (!get_argv(env, info, 2, argv) || !get_i32(env, argv[0], "listener", &fd) || !get_u64(env, argv[1], "id", &id))
    return NULL;
  int r;
  do r = ioctl(fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id);
  while (r < 0 && errno == EINTR);
  napi_get_boolean(env, r == 0, &result);
  return result;
}

/* notifSetFlags(listener, flags): 0 or -errno; flags is SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP or 0. */
static napi_value js_notif_set_flags(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  int32_t fd;
  uint32_t flags;
  if (!get_argv(env, info, 2, argv) || !get_i32(env, argv[0], "listener", &fd) || !get_u32(env, argv[1], "flags", &flags))
    return NULL;
  /* The flags travel as the ioctl's argument itself, not through a pointer. */
  int r = ioctl(fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, (unsigned long)flags);
  return number(env, r < 0 ? -errno : 0);
}

/* confineThread(program): loads the cBPF program (struct sock_filter[], 8 bytes each) as a
 * seccomp filter on the calling thread only (no TSYNC) after setting its no_new_privs: the
 * sentry's worker confines itself and leaves Node's other threads as they are. 0 or -errno. */
static napi_value js_confine_thread(napi_env env, napi_callback_info info) {
  napi_value argv[1];
  void *data;
  size_t len;
  if (!get_argv(env, info, 1, argv)) return NULL;
  bool is_buffer = false;
  if (napi_is_buffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[0], &data, &len) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "program must be a Buffer");
    return NULL;
  }
  if (len == 0 || len % 8 != 0 || len / 8 > 4096) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "program must hold 1 to 4096 instructions");
    return NULL;
  }
  struct sock_fprog prog = {.len = (unsigned short)(len / 8), .filter = data};
  /* Both are per thread: no_new_privs is a task flag, and a filter without TSYNC stays on its thread. */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return number(env, -errno);
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) return number(env, -errno);
  return number(env, 0);
}

/* ---- the workload's memory --------------------------------------------------------------------- */

/*
 * The optional last argument of memRead and memReadString: a Buffer of at least 12 bytes that
 * receives the effective capability set of thread `pid` (two u32, low word first), then 0 or -errno
 * (an int32 at byte 8). capget runs before the memory is read, so that the sentry's NOTIF_ID_VALID
 * check after the read says both were the caller's; and in the same call, as a JS call into the
 * addon costs more than the capget itself (src/sentry/kernel.ts, Sentry.asCaller).
 */
static bool caps_into(napi_env env, napi_value v, int32_t pid) {
  napi_valuetype type;
  if (napi_typeof(env, v, &type) != napi_ok) return type_error(env, "caps", "readable");
  if (type == napi_undefined) return true;
  void *buf;
  size_t len;
  if (!get_bytes(env, v, "caps", &buf, &len)) return false;
  if (len < 12) {
    range_error(env, "caps", "shorter than 12 bytes");
    return false;
  }
  struct __user_cap_header_struct header = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = pid};
  struct __user_cap_data_struct data[2] = {{0}};
  int32_t status = syscall(SYS_capget, &header, data) < 0 ? -errno : 0;
  uint32_t lo = status == 0 ? data[0].effective : 0, hi = status == 0 ? data[1].effective : 0;
  memcpy((char *)buf, &lo, 4);
  memcpy((char *)buf + 4, &hi, 4);
  memcpy((char *)buf + 8, &status, 4);
  return true;
}

/* memRead(pid, addr, buf, len[, caps]) / memWrite(pid, addr, data, len): bytes moved, or -errno. A
 * short count means the range ran into unmapped memory. */
static napi_value mem_rw(napi_env env, napi_callback_info info, bool write) {
  napi_value argv[5];
  int32_t pid;
  uint64_t addr;
  uint32_t len;
  void *buf;
  size_t buflen;
  if (!get_argv(env, info, 5, argv) || !get_i32(env, argv[0], "pid", &pid) || !get_u64(env, argv[1], "addr", &addr) ||
      !get_bytes(env, argv[2], write ? "data" : "buf", &buf, &buflen) || !get_u32(env, argv[3], "len", &len) ||
      (!write && !caps_into(env, argv[4], pid)))
    return NULL;
  if (len > buflen) {
    range_error(env, "len", "longer than the buffer");
    return NULL;
  }
  struct iovec local = {.iov_base = buf, .iov_len = len};
  struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
  ssize_t n = write ? process_vm_writev(pid, &local, 1, &remote, 1, 0) : process_vm_readv(pid, &local, 1, &remote, 1, 0);
  return number(env, n < 0 ? -errno : n);
}

static napi_value js_mem_read(napi_env env, napi_callback_info info) {
  return mem_rw(env, info, false);
}

static napi_value js_mem_write(napi_env env, napi_callback_info info) {
  return mem_rw(env, info, true);
}

/*
 * memReadString(pid, addr, max[, caps]): the NUL-terminated string at addr, whose NUL must come within max
 * bytes (else -ENAMETOOLONG), or -EFAULT / another -errno. Read a page at a time, so that a string
 * ending just before an unmapped page reads although a read of max bytes would fault.
 * Decoded as UTF-8: a path whose bytes are not UTF-8 comes back with U+FFFD in place of the bad
 * bytes and no longer names the same file. Accepted for now; a lossless variant would return bytes.
 */
static napi_value js_mem_read_string(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  int32_t pid;
  uint64_t addr;
  uint32_t max;
  if (!get_argv(env, info, 4, argv) || !get_i32(env, argv[0], "pid", &pid) || !get_u64(env, argv[1], "addr", &addr) ||
      !get_u32(env, argv[2], "max", &max) || !caps_into(env, argv[3], pid))
    return NULL;
  if (max == 0 || max > READ_STRING_MAX) {
    range_error(env, "max", "must be 1 to 1 MiB");
    return NULL;
  }
  pthread_once(&sizes_once, read_sizes);
  char stack[PATH_MAX];
  char *buf = max <= sizeof stack ? stack : malloc(max);
  if (buf == NULL) return number(env, -ENOMEM);

  napi_value result = NULL;
  size_t got = 0;
  while (got < max) {
    uint64_t at = addr + got;
    size_t chunk = page_size - (size_t)(at & (page_size - 1));
    if (chunk > max - got) chunk = max - got;
    struct iovec local = {.iov_base = buf + got, .iov_len = chunk};
    struct iovec remote = {.iov_base = (void *)(uintptr_t)at, .iov_len = chunk};
    ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
    if (n <= 0) {
      result = number(env, n < 0 ? -errno : -EFAULT);
      break;
    }
    const char *nul = memchr(buf + got, '\0', (size_t)n);
    if (nul != NULL) {
      napi_create_string_utf8(env, buf, (size_t)(nul - buf), &result);
      break;
    }
    got += (size_t)n;
  }
  if (result == NULL && got >= max) result = number(env, -ENAMETOOLONG);
  if (buf != stack) free(buf);
  return result;
}

/* ---- the network wall --------------------------------------------------------------------------- */

/* sendMessage(fd, data, name, control, flags): sendmsg(2) of data (one iovec) to name (a sockaddr
 * the sentry checked, or null) with control (ancillary data the sentry rebuilt, or null): the
 * bytes sent or -errno. The sentry sends what the workload asked for on the socket it took, with
 * the address it checked: a msghdr holds pointers, which only C can build. */
static napi_value js_send_message(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  int32_t fd;
  uint32_t flags;
  void *data = NULL, *name = NULL, *control = NULL;
  size_t data_len = 0, name_len = 0, control_len = 0;
  napi_valuetype t;
  if (!get_argv(env, info, 5, argv) || !get_i32(env, argv[0], "fd", &fd) || !get_bytes(env, argv[1], "data", &data, &data_len) ||
      !get_u32(env, argv[4], "flags", &flags))
    return NULL;
  napi_typeof(env, argv[2], &t);
  if (t != napi_null && t != napi_undefined && !get_bytes(env, argv[2], "name", &name, &name_len)) return NULL;
  napi_typeof(env, argv[3], &t);
  if (t != napi_null && t != napi_undefined && !get_bytes(env, argv[3], "control", &control, &control_len)) return NULL;
  struct iovec iov = {.iov_base = data, .iov_len = data_len};
  struct msghdr msg = {
      .msg_name = name_len > 0 ? name : NULL, .msg_namelen = (socklen_t)name_len, .msg_iov = &iov, .msg_iovlen = 1,
      .msg_control = control_len > 0 ? control : NULL, .msg_controllen = control_len,
  };
  ssize_t n;
  do n = sendmsg(fd, &msg, (int)flags);
  while (n < 0 && errno == EINTR);
  return number(env, n < 0 ? -errno : n);
}

/* ---- raw syscalls ------------------------------------------------------------------------------ */

struct strings {
  char arena[STRING_ARENA];
  size_t used;
  char *heap[6];
  size_t n_heap;
};

/* A NUL-terminated copy of a JS string, on the arena while it fits. False with a TypeError pending
 * for an inner NUL, which would silently shorten the path the kernel sees. */
static bool c_string(napi_env env, napi_value v, struct strings *s, long *out) {
  size_t len = 0, copied = 0;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return type_error(env, "argument", "a string");
  char *dst;
  if (len + 1 <= sizeof s->arena - s->used) {
    dst = s->arena + s->used;
    s->used += len + 1;
  } else {
    dst = malloc(len + 1);
    if (dst == NULL) {
      napi_throw_error(env, "ENOMEM", "out of memory for a syscall string argument");
      return false;
    }
    s->heap[s->n_heap++] = dst;
  }
  napi_get_value_string_utf8(env, v, dst, len + 1, &copied);
  if (strlen(dst) != copied) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "A syscall string argument must not contain null bytes");
    return false;
  }
  *out = (long)(intptr_t)dst;
  return true;
}

static bool syscall_arg(napi_env env, napi_value v, struct strings *s, long *out) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  switch (t) {
  case napi_number: {
    int64_t n;
    napi_get_value_int64(env, v, &n);
    *out = (long)n;
    return true;
  }
  case napi_bigint: {
    int64_t n;
    bool lossless;
    napi_get_value_bigint_int64(env, v, &n, &lossless);
    *out = (long)n;
    return true;
  }
  case napi_string: return c_string(env, v, s, out);
  case napi_null: case napi_undefined: *out = 0; return true;
  case napi_object: {
    void *data;
    size_t len;
    if (bytes_of(env, v, &data, &len)) {
      *out = (long)(intptr_t)data;
      return true;
    }
    break;
  }
  default: break;
  }
  return type_error(env, "argument", "a number, bigint, string, Buffer, null or undefined");
}

/* syscall(nr, a0..a5): the result, or -errno. EINTR comes back as -EINTR: the caller decides. */
static napi_value js_syscall(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  int32_t nr;
  long a[6];
  struct strings s;
  s.used = 0;
  s.n_heap = 0;
  napi_value result = NULL;
  if (!get_argv(env, info, 7, argv) || !get_i32(env, argv[0], "nr", &nr)) return NULL;
  bool ok = true;
  for (int i = 0; i < 6 && ok; i++) ok = syscall_arg(env, argv[i + 1], &s, &a[i]);
  if (ok) {
    long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
    result = number(env, r == -1 ? -errno : r);
  }
  for (size_t i = 0; i < s.n_heap; i++) free(s.heap[i]);
  return result;
}

/* ---- registration ------------------------------------------------------------------------------ */

bool stk_notify_register(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
      {"notifSizes", NULL, js_notif_sizes, NULL, NULL, NULL, napi_enumerable, NULL},
      {"notifRecv", NULL, js_notif_recv, NULL, NULL, NULL, napi_enumerable, NULL},
      {"notifSend", NULL, js_notif_send, NULL, NULL, NULL, napi_enumerable, NULL},
      {"notifAddfd", NULL, js_notif_addfd, NULL, NULL, NULL, napi_enumerable, NULL},
      {"notifIdValid", NULL, js_notif_id_valid, NULL, NULL, NULL, napi_enumerable, NULL},
      {"notifSetFlags", NULL, js_notif_set_flags, NULL, NULL, NULL, napi_enumerable, NULL},
      {"memRead", NULL, js_mem_read, NULL, NULL, NULL, napi_enumerable, NULL},
      {"memReadString", NULL, js_mem_read_string, NULL, NULL, NULL, napi_enumerable, NULL},
      {"memWrite", NULL, js_mem_write, NULL, NULL, NULL, napi_enumerable, NULL},
      {"syscall", NULL, js_syscall, NULL, NULL, NULL, napi_enumerable, NULL},
      {"sendMessage", NULL, js_send_message, NULL, NULL, NULL, napi_enumerable, NULL},
      {"confineThread", NULL, js_confine_thread, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns) == napi_ok;
}
