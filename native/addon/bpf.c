/* The addon's cgroup device BPF calls: load a BPF_PROG_TYPE_CGROUP_DEVICE program, attach it to a
 * cgroup2 directory (replacing the device programs attached there before), list what is attached.
 *
 * cgroup v2 has no devices.allow/devices.deny: device access is decided by eBPF programs attached
 * to the cgroup with BPF_CGROUP_DEVICE, as runc and crun do it. The program itself is compiled in
 * TypeScript (src/cgroups/device-bpf.ts); only the bpf(2) calls are here. A program stays attached
 * after its fd is closed: the cgroup holds it, and it goes with the cgroup.
 *
 * Failures throw Node-style system errors (code, errno, syscall); a program the verifier refuses
 * throws with the verifier's log in the message, since that is what says which instruction is wrong. */
#include "bpf.h"

#include <errno.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define VERIFIER_LOG_SIZE (64 * 1024)
/* More device programs on one cgroup than any runtime attaches; the query reports the real count. */
#define QUERY_MAX 64

static long sys_bpf(int cmd, union bpf_attr *attr) {
  long r;
  do r = syscall(SYS_bpf, cmd, attr, sizeof *attr);
  while (r < 0 && errno == EINTR);
  return r;
}

static napi_value throw_system(napi_env env, int err, const char *syscall_name, const char *detail) {
  const char *name = strerrorname_np(err);
  if (name == NULL) name = "UNKNOWN";
  char desc[128];
  snprintf(desc, sizeof desc, "%s", strerror(err));
  if (desc[0] >= 'A' && desc[0] <= 'Z') desc[0] = (char)(desc[0] - 'A' + 'a');
  size_t len = strlen(name) + strlen(desc) + strlen(syscall_name) + (detail == NULL ? 0 : strlen(detail)) + 16;
  char *msg = malloc(len);
  if (msg == NULL) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  snprintf(msg, len, "%s: %s, %s%s%s", name, desc, syscall_name, detail == NULL ? "" : ": ", detail == NULL ? "" : detail);
  napi_value code, message, error, errno_value, syscall_value;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code) == napi_ok &&
      napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message) == napi_ok &&
      napi_create_error(env, code, message, &error) == napi_ok &&
      napi_create_int32(env, -err, &errno_value) == napi_ok &&
      napi_create_string_utf8(env, syscall_name, NAPI_AUTO_LENGTH, &syscall_value) == napi_ok &&
      napi_set_named_property(env, error, "errno", errno_value) == napi_ok &&
      napi_set_named_property(env, error, "syscall", syscall_value) == napi_ok)
    napi_throw(env, error);
  free(msg);
  return NULL;
}

static bool get_fd(napi_env env, napi_value v, const char *name, int *out) {
  int32_t n;
  if (napi_get_value_int32(env, v, &n) != napi_ok || n < 0) {
    char msg[128];
    snprintf(msg, sizeof msg, "The \"%s\" argument must be a file descriptor", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  *out = n;
  return true;
}

/* bpfDeviceProgLoad(insns: Buffer of struct bpf_insn, license: string): fd (close-on-exec, as every bpf fd). */
static napi_value js_device_prog_load(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "bpfDeviceProgLoad(insns, license)");
    return NULL;
  }
  void *insns = NULL;
  size_t len = 0;
  bool is_buffer = false;
  if (napi_is_buffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[0], &insns, &len) != napi_ok || len == 0 || len % sizeof(struct bpf_insn) != 0) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"insns\" argument must be a Buffer of whole bpf_insn (8 bytes each)");
    return NULL;
  }
  char license[64];
  size_t license_len = 0;
  if (napi_get_value_string_utf8(env, argv[1], license, sizeof license, &license_len) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "The \"license\" argument must be a string");
    return NULL;
  }
  char *log = calloc(1, VERIFIER_LOG_SIZE);
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = (uint64_t)(uintptr_t)insns;
  attr.insn_cnt = (uint32_t)(len / sizeof(struct bpf_insn));
  attr.license = (uint64_t)(uintptr_t)license;
  if (log != NULL) {
    attr.log_buf = (uint64_t)(uintptr_t)log;
    attr.log_size = VERIFIER_LOG_SIZE;
    attr.log_level = 1;
  }
  long fd = sys_bpf(BPF_PROG_LOAD, &attr);
  if (fd < 0 && errno == ENOSPC && log != NULL) {
    /* The log did not fit: load again without it, so the error is the program's, not the log's. */
    attr.log_buf = 0;
    attr.log_size = 0;
    attr.log_level = 0;
    fd = sys_bpf(BPF_PROG_LOAD, &attr);
  }
  if (fd < 0) {
    int err = errno;
    napi_value r = throw_system(env, err, "bpf(BPF_PROG_LOAD)", log != NULL && log[0] != '\0' ? log : NULL);
    free(log);
    return r;
  }
  free(log);
  napi_value out;
  napi_create_int64(env, fd, &out);
  return out;
}

/* The ids of the device programs attached to the cgroup now; *count says how many there are. */
static bool query(int cgroup_fd, uint32_t *ids, uint32_t *count) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.query.target_fd = (uint32_t)cgroup_fd;
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  attr.query.prog_ids = (uint64_t)(uintptr_t)ids;
  attr.query.prog_cnt = QUERY_MAX;
  if (sys_bpf(BPF_PROG_QUERY, &attr) < 0) return false;
  *count = attr.query.prog_cnt;
  return true;
}

/* bpfCgroupDeviceAttach(cgroupFd, progFd): attaches the program (BPF_F_ALLOW_MULTI, so a nested
 * cgroup may add its own, as runc does), then detaches every device program that was there
 * before it, so an update replaces the rules rather than adding to them. The new program goes on
 * first: at no moment is the cgroup without one. Returns how many it detached. */
static napi_value js_cgroup_device_attach(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int cgroup_fd, prog_fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      !get_fd(env, argv[0], "cgroupFd", &cgroup_fd) || !get_fd(env, argv[1], "progFd", &prog_fd))
    return NULL;
  uint32_t before[QUERY_MAX];
  uint32_t n_before = 0;
  if (!query(cgroup_fd, before, &n_before)) return throw_system(env, errno, "bpf(BPF_PROG_QUERY)", NULL);
  if (n_before > QUERY_MAX) return throw_system(env, E2BIG, "bpf(BPF_PROG_QUERY)", "too many device programs on the cgroup");

  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.target_fd = (uint32_t)cgroup_fd;
  attr.attach_bpf_fd = (uint32_t)prog_fd;
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (sys_bpf(BPF_PROG_ATTACH, &attr) < 0) return throw_system(env, errno, "bpf(BPF_PROG_ATTACH)", NULL);

  int32_t detached = 0;
  for (uint32_t i = 0; i < n_before; i++) {
    memset(&attr, 0, sizeof attr);
    attr.prog_id = before[i];
    long old = sys_bpf(BPF_PROG_GET_FD_BY_ID, &attr);
    if (old < 0) {
      if (errno == ENOENT) continue; /* detached meanwhile */
      return throw_system(env, errno, "bpf(BPF_PROG_GET_FD_BY_ID)", NULL);
    }
    memset(&attr, 0, sizeof attr);
    attr.target_fd = (uint32_t)cgroup_fd;
    attr.attach_bpf_fd = (uint32_t)old;
    attr.attach_type = BPF_CGROUP_DEVICE;
    long r = sys_bpf(BPF_PROG_DETACH, &attr);
    int err = errno;
    close((int)old);
    if (r < 0 && err != ENOENT) return throw_system(env, err, "bpf(BPF_PROG_DETACH)", NULL);
    if (r == 0) detached++;
  }
  napi_value out;
  napi_create_int32(env, detached, &out);
  return out;
}

/* bpfCgroupDevicePrograms(cgroupFd): the ids of the device programs attached to the cgroup itself. */
static napi_value js_cgroup_device_programs(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int cgroup_fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || !get_fd(env, argv[0], "cgroupFd", &cgroup_fd))
    return NULL;
  uint32_t ids[QUERY_MAX];
  uint32_t n = 0;
  if (!query(cgroup_fd, ids, &n)) return throw_system(env, errno, "bpf(BPF_PROG_QUERY)", NULL);
  if (n > QUERY_MAX) n = QUERY_MAX;
  napi_value arr;
  if (napi_create_array_with_length(env, n, &arr) != napi_ok) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    if (napi_create_uint32(env, ids[i], &v) != napi_ok || napi_set_element(env, arr, i, v) != napi_ok) return NULL;
  }
  return arr;
}

bool stk_bpf_register(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
      {"bpfDeviceProgLoad", NULL, js_device_prog_load, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bpfCgroupDeviceAttach", NULL, js_cgroup_device_attach, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bpfCgroupDevicePrograms", NULL, js_cgroup_device_programs, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns) == napi_ok;
}
