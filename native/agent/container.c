/* stockade-agent: containers in the guest. stockade-init runs the host's plan here as it does on
 * the host; the agent stands where the runtime stands there: it feeds the plan (a memfd), answers
 * the sync socket (MSG_PID, MSG_HOOK/CONTINUE, MSG_READY, MSG_ERROR), sends MSG_START on the start
 * socket, takes the pty master from the console socket, and keeps the container's cgroup.
 *
 *   host                      agent                              stockade-init P, then C
 *    | CREATE(name, plan) -->  | mkdir dir and cgroup, console    |
 *    |                         | listener; fork+exec P (3: plan,  |
 *    |                         | 4: sync) -----------------------> | setup as on the host
 *    |                         | <------------------- MSG_PID ---- |
 *    | <-- HOOK(proc, point) - | <------------------ MSG_HOOK ---- |  (with TAG_HOOK_POINTS)
 *    | CONTINUE(proc, state) ->| MSG_CONTINUE ------------------> |
 *    | <-- CREATED(proc, pid) -| <----------------- MSG_READY ---- |  (pty master taken first)
 *    | START(proc, state) ---> | connect start.sock, MSG_START -> |
 *    | <----------------- OK --| <------- EOF (execve) or ERROR -- |
 *
 * EXEC is the same with an exec plan, no start socket: CREATED once the sync socket ends (the
 * process exec'd). Once P exits, C's parent is the agent (PID 1 of P's namespace), so the agent
 * reaps it and reports its status as of any process. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>
#include "agent.h"
#include "stockade-abi.h"

#define INIT_PATH "/sbin/stockade-init"
/* Sync frames are small (an error message at most); a larger one is not stockade-init's. */
#define SYNC_BUF 8192

static int cgroups_ready;
/* The sealed in-memory copy of stockade-init every CREATE and EXEC runs (container_prepare_init), or -1. */
static int init_fd = -1;

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif
#define INIT_SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

/* stockade-init runs only from a sealed copy of itself (native/init/selfclone.c: a container that
 * reaches /proc/PID/exe must not reach a file it could write). Run from /sbin it makes that copy
 * and re-executes itself, per container: under TCG an exec and a 1 MB copy each time. So the
 * agent makes the copy once, at boot (for a template, before the save: every clone has it), and
 * runs every stockade-init from it; stockade-init finds itself sealed and goes on at once. The
 * copy cannot be written, shrunk or grown by anyone, so one copy serves all containers as safely
 * as one each. Without it (a failure here), each stockade-init copies itself as before. */
void container_prepare_init(void)
{
  int src = open(INIT_PATH, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (src < 0 || fstat(src, &st) < 0) {
    agent_log("open %s: %s", INIT_PATH, strerror(errno));
    if (src >= 0) close(src);
    return;
  }
  int fd = memfd_create("stockade-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (fd < 0 && errno == EINVAL) fd = memfd_create("stockade-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  off_t done = 0;
  while (fd >= 0 && done < st.st_size) {
    ssize_t n = sendfile(fd, src, NULL, (size_t)(st.st_size - done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += n;
  }
  int e = errno;
  close(src);
  /* Above the fds a child's stdio and plan take (0-4), so that launch's dup2s cannot hit it. */
  int high = fd >= 0 && done == st.st_size && fcntl(fd, F_ADD_SEALS, INIT_SEALS) == 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 64) : -1;
  if (high < 0) agent_log("a sealed copy of %s: %s", INIT_PATH, strerror(fd < 0 || done != st.st_size ? e : errno));
  if (fd >= 0) close(fd);
  init_fd = high;
}

/* cgroup v2 at /sys/fs/cgroup, the controllers handed down to STK_AGENT_PATH_CGROUP: made at the
 * first container, not at boot (a boot that runs no container does not pay for it), or before a
 * template is saved (container_prepare_cgroups). */
static int ensure_cgroups(char *why, size_t whylen)
{
  if (cgroups_ready) return 0;
  if (mount("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0 && errno != EBUSY) {
    snprintf(why, whylen, "mount cgroup2 on /sys/fs/cgroup: %s", strerror(errno));
    return -1;
  }
  static const char *const levels[] = { "/sys/fs/cgroup", STK_AGENT_PATH_CGROUP };
  for (unsigned i = 0; i < 2; i++) {
    char path[256];
    if (i > 0 && mkdir(levels[i], 0755) < 0 && errno != EEXIST) {
      snprintf(why, whylen, "mkdir %s: %s", levels[i], strerror(errno));
      return -1;
    }
    snprintf(path, sizeof path, "%s/cgroup.subtree_control", levels[i]);
    /* One by one: a kernel without one of them still gets the others. */
    static const char *const ctl[] = { "+cpu", "+memory", "+pids" };
    for (unsigned c = 0; c < 3; c++) {
      int fd = open(path, O_WRONLY | O_CLOEXEC);
      if (fd < 0) break;
      if (write(fd, ctl[c], strlen(ctl[c])) < 0) agent_log("%s %s: %s", path, ctl[c], strerror(errno));
      close(fd);
    }
  }
  cgroups_ready = 1;
  return 0;
}

/* A template's build: its clones find the cgroups made (a clone then pays nothing for them). */
void container_prepare_cgroups(void)
{
  char why[300];
  if (ensure_cgroups(why, sizeof why) < 0) agent_log("%s", why);
}

static int valid_name(const char *s, uint32_t len)
{
  if (len == 0 || len > STK_AGENT_MAX_NAME || !isalnum((unsigned char)s[0])) return 0;
  for (uint32_t i = 0; i < len; i++)
    if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.' && s[i] != '-') return 0;
  return 1;
}

static void path_of(char *buf, size_t len, const char *name, const char *file)
{
  snprintf(buf, len, "%s/%s/%s", STK_AGENT_PATH_DIR, name, file);
}

static struct proc *container_of(uint32_t handle)
{
  struct proc *p = proc_find(handle);
  return p != NULL && p->kind == PROC_CONTAINER ? p : NULL;
}

/* Removes what CREATE or EXEC made in the guest: the directory (its sockets and the root's
 * mount point) and a container's cgroup (empty by now unless something outlived its init). */
void container_release(struct proc *p)
{
  char path[256];
  if (p->name[0] == 0) return;
  static const char *const files[] = { STK_AGENT_PATH_START_SOCKET, STK_AGENT_PATH_CONSOLE_SOCKET };
  for (unsigned i = 0; i < 2; i++) {
    path_of(path, sizeof path, p->name, files[i]);
    unlink(path);
  }
  path_of(path, sizeof path, p->name, STK_AGENT_PATH_ROOT_MOUNTPOINT);
  rmdir(path);
  snprintf(path, sizeof path, "%s/%s", STK_AGENT_PATH_DIR, p->name);
  if (rmdir(path) < 0) agent_log("rmdir %s: %s", path, strerror(errno));
  if (p->kind == PROC_CONTAINER) {
    snprintf(path, sizeof path, "%s/%s", STK_AGENT_PATH_CGROUP, p->name);
    if (rmdir(path) < 0) agent_log("rmdir %s: %s", path, strerror(errno));
  }
}

static int send_frame(int fd, uint32_t type, const uint8_t *body, uint32_t len)
{
  uint8_t head[8];
  stk_put_u32(head, type);
  stk_put_u32(head + 4, len);
  struct iovec iov[2] = { { head, 8 }, { (void *)body, len } };
  struct msghdr mh = { .msg_iov = iov, .msg_iovlen = len > 0 ? 2 : 1 };
  size_t want = 8 + len;
  ssize_t n;
  do n = sendmsg(fd, &mh, MSG_NOSIGNAL); while (n < 0 && errno == EINTR);
  return n == (ssize_t)want ? 0 : -1;
}

/* Forks and execs stockade-init: fd 3 the plan, fd 4 the sync socket, stdio as the flags say. */
static int launch(struct proc *p, const uint8_t *plan, uint32_t plan_len, uint32_t flags, char *why, size_t whylen)
{
  int pfd = memfd_create("stockade-plan", MFD_CLOEXEC);
  if (pfd < 0) return snprintf(why, whylen, "memfd_create: %s", strerror(errno)), -1;
  for (uint32_t off = 0; off < plan_len;) {
    ssize_t n = write(pfd, plan + off, plan_len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      snprintf(why, whylen, "write the plan: %s", strerror(errno));
      close(pfd);
      return -1;
    }
    off += (uint32_t)n;
  }
  lseek(pfd, 0, SEEK_SET);
  int sync[2] = { -1, -1 }, in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 };
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  int ok = null >= 0 && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sync) == 0;
  if (ok && !p->terminal) {
    ok = pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0;
    if (ok && (flags & STK_AGENT_CREATE_STDIN)) ok = pipe2(in, O_CLOEXEC) == 0;
  }
  pid_t pid = ok ? fork() : -1;
  if (pid == 0) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    setsid();
    /* Above 4 first, so that the dup2s below cannot overwrite one another's source. */
    int fds[5] = { in[0] >= 0 ? in[0] : null, out[1] >= 0 ? out[1] : null, err[1] >= 0 ? err[1] : null, pfd, sync[1] };
    for (int i = 0; i < 5; i++) fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10);
    for (int i = 0; i < 5; i++)
      if (fds[i] < 0 || dup2(fds[i], i) < 0) _exit(126);
    char *const argv[] = { "stockade-init", "3", "4", NULL };
    char *const envp[] = { NULL };
    if (init_fd >= 0) syscall(SYS_execveat, init_fd, "", argv, envp, AT_EMPTY_PATH);
    execve(INIT_PATH, argv, envp);
    _exit(127);
  }
  int e = errno;
  proc_close_fd(&null);
  proc_close_fd(&pfd);
  proc_close_fd(&sync[1]);
  proc_close_fd(&in[0]);
  proc_close_fd(&out[1]);
  proc_close_fd(&err[1]);
  if (pid < 0) {
    proc_close_fd(&sync[0]);
    proc_close_fd(&in[1]);
    proc_close_fd(&out[0]);
    proc_close_fd(&err[0]);
    snprintf(why, whylen, "start %s: %s", INIT_PATH, strerror(e));
    return -1;
  }
  p->helper = pid;
  p->sync_fd = sync[0];
  fcntl(p->sync_fd, F_SETFL, O_NONBLOCK);
  p->fd[0] = in[1];
  p->fd[1] = out[0];
  p->fd[2] = err[0];
  for (int s = 0; s < 3; s++)
    if (p->fd[s] >= 0) fcntl(p->fd[s], F_SETFL, O_NONBLOCK);
  p->credit[1] = p->credit[2] = STK_AGENT_STREAM_WINDOW;
  /* A pty gets its stdin buffer too: the master arrives before the host knows the process. */
  if (p->fd[0] >= 0 || p->terminal) {
    p->inbuf = malloc(STK_AGENT_STREAM_WINDOW);
    if (p->inbuf == NULL) proc_close_fd(&p->fd[0]);
  }
  return 0;
}

/* The listener stockade-init's P connects to (TAG_CONSOLE_SOCKET) before the container starts. */
static int console_listen(struct proc *p, char *why, size_t whylen)
{
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  path_of(a.sun_path, sizeof a.sun_path, p->name, STK_AGENT_PATH_CONSOLE_SOCKET);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 1) < 0) {
    snprintf(why, whylen, "console socket %s: %s", a.sun_path, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  p->console_fd = fd;
  return 0;
}

/* The pty master, which C sent (SCM_RIGHTS) before MSG_READY: it is queued by the time READY is
 * read, so a short wait is only for a scheduler's delay. */
static int take_master(struct proc *p, char *why, size_t whylen)
{
  struct pollfd pf = { .fd = p->console_fd, .events = POLLIN };
  if (poll(&pf, 1, 2000) <= 0) return snprintf(why, whylen, "terminal: nothing connected to the console socket"), -1;
  int conn = accept4(p->console_fd, NULL, NULL, SOCK_CLOEXEC);
  if (conn < 0) return snprintf(why, whylen, "terminal: accept on the console socket: %s", strerror(errno)), -1;
  pf = (struct pollfd){ .fd = conn, .events = POLLIN };
  char name[128];
  union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
  struct iovec iov = { name, sizeof name };
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf };
  ssize_t n = poll(&pf, 1, 2000) > 0 ? recvmsg(conn, &mh, MSG_CMSG_CLOEXEC) : -1;
  close(conn);
  struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL;
  if (c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) {
    return snprintf(why, whylen, "terminal: no pty master came on the console socket"), -1;
  }
  int master;
  memcpy(&master, CMSG_DATA(c), sizeof master);
  proc_close_fd(&p->console_fd);
  p->fd[1] = master;
  p->fd[0] = fcntl(master, F_DUPFD_CLOEXEC, 3);
  fcntl(master, F_SETFL, O_NONBLOCK);
  if (p->fd[0] >= 0) fcntl(p->fd[0], F_SETFL, O_NONBLOCK);
  return 0;
}

/* Makes the slot for a CREATE or EXEC: name checked, its directory made. */
static struct proc *setup_slot(uint32_t id, const char *name, uint32_t name_len, uint32_t flags, int kind)
{
  char why[300];
  if (!agent_in_guest()) return send_error(id, EPERM, "%s: not in the guest", kind == PROC_CONTAINER ? "create" : "exec"), NULL;
  if (!valid_name(name, name_len)) return send_error(id, EINVAL, "name %s is not one path component", name), NULL;
  if ((flags & ~(STK_AGENT_CREATE_STDIN | STK_AGENT_CREATE_TERMINAL)) != 0) return send_error(id, EINVAL, "unknown flags 0x%x", flags), NULL;
  if (kind == PROC_CONTAINER && ensure_cgroups(why, sizeof why) < 0) return send_error(id, errno, "%s", why), NULL;
  char dir[256];
  snprintf(dir, sizeof dir, "%s/%s", STK_AGENT_PATH_DIR, name);
  if (make_dirs(STK_AGENT_PATH_DIR) < 0) return send_error(id, errno, "mkdir %s: %s", STK_AGENT_PATH_DIR, strerror(errno)), NULL;
  if (mkdir(dir, 0700) < 0) return send_error(id, errno, "mkdir %s: %s", dir, strerror(errno)), NULL;
  struct proc *p = proc_alloc();
  if (p == NULL) {
    rmdir(dir);
    return send_error(id, EAGAIN, "%u processes already", STK_AGENT_MAX_PROCS), NULL;
  }
  p->kind = kind;
  memcpy(p->name, name, name_len);
  p->terminal = (flags & STK_AGENT_CREATE_TERMINAL) != 0;
  p->phase = PHASE_SETUP;
  p->setup_id = id;
  if (kind == PROC_CONTAINER) {
    char path[256];
    path_of(path, sizeof path, name, STK_AGENT_PATH_ROOT_MOUNTPOINT);
    snprintf(why, sizeof why, "%s/%s", STK_AGENT_PATH_CGROUP, name);
    if (mkdir(path, 0700) < 0 || mkdir(why, 0755) < 0) {
      int e = errno;
      p->orphan = 1;
      proc_release_if_done(p);
      send_error(id, e, "make the directories of %s: %s", name, strerror(e));
      return NULL;
    }
  }
  return p;
}

/* The setup failed: the pending request gets `why`; what was started is killed. Before the host
 * knew the process it goes quietly; after, its exit is reported to a WAIT as any other's. */
static int setup_failed(struct proc *p, uint32_t id, int err, const char *why)
{
  if (p->pid > 0 && !p->exited) kill(p->pid, SIGKILL);
  if (p->helper > 0) kill(p->helper, SIGKILL);
  proc_close_fd(&p->sync_fd);
  proc_close_fd(&p->console_fd);
  proc_close_fd(&p->start_fd);
  p->phase = PHASE_RUNNING;
  if (!p->announced) {
    p->orphan = 1;
    for (int s = 0; s < 3; s++) proc_close_fd(&p->fd[s]);
  }
  int rc = id != 0 ? send_error(id, err, "%s", why) : 0;
  proc_release_if_done(p);
  return rc;
}

static int launch_request(uint32_t id, struct proc *p, const uint8_t *plan, uint32_t len, uint32_t flags)
{
  char why[300];
  if ((p->terminal && console_listen(p, why, sizeof why) < 0) || launch(p, plan, len, flags, why, sizeof why) < 0) {
    return setup_failed(p, id, errno != 0 ? errno : EIO, why);
  }
  return 0;
}

int container_create(uint32_t id, const struct stk_agent_h_create *m)
{
  struct proc *p = setup_slot(id, m->name, m->name_len, m->flags, PROC_CONTAINER);
  return p == NULL ? 0 : launch_request(id, p, m->plan, m->plan_len, m->flags);
}

int container_exec(uint32_t id, const struct stk_agent_h_exec *m)
{
  struct proc *c = container_of(m->container);
  if (!agent_in_guest()) return send_error(id, EPERM, "exec: not in the guest");
  if (c == NULL) return send_error(id, ESRCH, "exec: no container %u", m->container);
  if (c->exited || c->phase != PHASE_RUNNING) return send_error(id, EINVAL, "exec: container %u is not running", m->container);
  struct proc *p = setup_slot(id, m->name, m->name_len, m->flags, PROC_EXEC);
  return p == NULL ? 0 : launch_request(id, p, m->plan, m->plan_len, m->flags);
}

int container_continue(uint32_t id, const struct stk_agent_h_continue *m)
{
  struct proc *p = proc_find(m->proc);
  if (p == NULL || p->phase != PHASE_HOOK) return send_error(id, EINVAL, "continue: process %u is not at a hook point", m->proc);
  if (send_frame(p->sync_fd, STK_MSG_CONTINUE, m->state, m->state_len) < 0) {
    return setup_failed(p, id, EPIPE, "continue: the container is gone");
  }
  p->phase = PHASE_SETUP;
  p->setup_id = id;
  return 0;
}

int container_start(uint32_t id, const struct stk_agent_h_start *m)
{
  struct proc *p = container_of(m->proc);
  if (p == NULL || p->phase != PHASE_CREATED) return send_error(id, EINVAL, "start: container %u is not created and waiting", m->proc);
  if (p->exited) return send_error(id, ESRCH, "start: container %u has exited", m->proc);
  struct sockaddr_un a = { .sun_family = AF_UNIX };
  path_of(a.sun_path, sizeof a.sun_path, p->name, STK_AGENT_PATH_START_SOCKET);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0 || send_frame(fd, STK_MSG_START, m->state, m->state_len) < 0) {
    int e = errno;
    if (fd >= 0) close(fd);
    return send_error(id, e, "start: %s: %s", a.sun_path, strerror(e));
  }
  fcntl(fd, F_SETFL, O_NONBLOCK);
  p->start_fd = fd;
  p->start_id = id;
  p->phase = PHASE_STARTING;
  return 0;
}

/* stockade-init's MSG_ERROR: i32 errno, str step, str message, as one line. */
static int init_error(struct proc *p, uint32_t id, const uint8_t *b, uint32_t n)
{
  char why[1024];
  struct stk_rd r = { b, n };
  int32_t err = EIO;
  const char *step = NULL, *msg = NULL;
  uint32_t l1, l2;
  if (stk_rd_i32(&r, &err) < 0 || stk_rd_str(&r, &step, &l1) < 0 || stk_rd_str(&r, &msg, &l2) < 0) {
    snprintf(why, sizeof why, "stockade-init sent a malformed error");
  } else if (strcmp(step, "hook") == 0) {
    snprintf(why, sizeof why, "%s", msg);
  } else {
    snprintf(why, sizeof why, "%s: %s", step, msg);
  }
  return setup_failed(p, id, err, why);
}

static int reply_created(struct proc *p, uint32_t id)
{
  uint8_t buf[64];
  struct stk_agent_g_created r = { .proc = p->handle, .pid = (uint32_t)p->pid };
  p->announced = 1;
  return channel_send(buf, stk_agent_encode_created(buf, sizeof buf, id, &r));
}

/* One frame from stockade-init's sync socket. */
static int sync_frame(struct proc *p, uint32_t type, const uint8_t *b, uint32_t n)
{
  char why[300];
  uint32_t id = p->setup_id;
  switch (type) {
    case STK_MSG_PID:
      if (n != 4 || p->pid != 0) return setup_failed(p, id, EPROTO, "stockade-init sent a malformed MSG_PID");
      p->pid = (pid_t)stk_get_u32(b);
      return 0;
    case STK_MSG_HOOK: {
      if (n != 4 || p->phase != PHASE_SETUP || p->pid == 0) return setup_failed(p, id, EPROTO, "stockade-init sent MSG_HOOK out of turn");
      uint8_t buf[64];
      struct stk_agent_g_hook r = { .proc = p->handle, .pid = (uint32_t)p->pid, .point = stk_get_u32(b) };
      p->phase = PHASE_HOOK;
      p->setup_id = 0;
      p->announced = 1;
      return channel_send(buf, stk_agent_encode_hook(buf, sizeof buf, id, &r));
    }
    case STK_MSG_READY:
      if (p->phase != PHASE_SETUP || p->pid == 0) return setup_failed(p, id, EPROTO, "stockade-init sent MSG_READY out of turn");
      if (p->terminal && p->fd[1] < 0 && take_master(p, why, sizeof why) < 0) return setup_failed(p, id, EPROTO, why);
      if (p->kind == PROC_EXEC) {
        /* It execs now; the sync socket's end says it did (or MSG_ERROR that it could not). */
        p->phase = PHASE_EXECING;
        return 0;
      }
      p->phase = PHASE_CREATED;
      p->setup_id = 0;
      proc_close_fd(&p->sync_fd);
      return reply_created(p, id);
    case STK_MSG_ERROR:
      return init_error(p, id, b, n);
  }
  snprintf(why, sizeof why, "stockade-init sent an unknown sync message %u", type);
  return setup_failed(p, id, EPROTO, why);
}

/* Reads the sync socket and acts on every whole frame; at its end, the setup is over. */
int container_sync(struct proc *p)
{
  if (p->syncbuf == NULL && (p->syncbuf = malloc(SYNC_BUF)) == NULL) return setup_failed(p, p->setup_id, ENOMEM, "out of memory");
  for (;;) {
    if (p->sync_fd < 0) return 0;
    ssize_t n = read(p->sync_fd, p->syncbuf + p->synclen, SYNC_BUF - p->synclen);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return 0;
    if (n <= 0) {
      proc_close_fd(&p->sync_fd);
      if (p->phase == PHASE_EXECING) {
        p->phase = PHASE_RUNNING;
        uint32_t id = p->setup_id;
        p->setup_id = 0;
        return reply_created(p, id);
      }
      if (p->phase == PHASE_SETUP) return setup_failed(p, p->setup_id, EIO, "stockade-init exited before the container was ready");
      if (p->phase == PHASE_HOOK) return setup_failed(p, 0, EIO, "");
      return 0;
    }
    p->synclen += (uint32_t)n;
    uint32_t off = 0;
    while (p->synclen - off >= 8) {
      uint32_t type = stk_get_u32(p->syncbuf + off), len = stk_get_u32(p->syncbuf + off + 4);
      if (len > SYNC_BUF - 8) return setup_failed(p, p->setup_id, EPROTO, "stockade-init sent an oversized sync frame");
      if (p->synclen - off - 8 < len) break;
      int rc = sync_frame(p, type, p->syncbuf + off + 8, len);
      if (rc < 0) return rc;
      off += 8 + len;
      if (p->sync_fd < 0 || !p->used) return 0;
    }
    memmove(p->syncbuf, p->syncbuf + off, p->synclen - off);
    p->synclen -= off;
  }
}

/* Before a reaped pid is matched: every sync socket read, so MSG_PID is known. */
void container_drain_syncs(void)
{
  struct proc *t = proc_table();
  for (unsigned i = 0; i < STK_AGENT_MAX_PROCS; i++)
    if (t[i].used && t[i].sync_fd >= 0) container_sync(&t[i]);
}

/* The start socket after MSG_START: its end is the execve; MSG_ERROR a start hook's or execve's failure. */
int container_start_reply(struct proc *p)
{
  uint8_t buf[2048];
  ssize_t n = read(p->start_fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 0;
  uint32_t id = p->start_id;
  p->start_id = 0;
  proc_close_fd(&p->start_fd);
  p->phase = PHASE_RUNNING;
  if (n >= 8 && stk_get_u32(buf) == STK_MSG_ERROR && stk_get_u32(buf + 4) <= (uint32_t)n - 8) {
    char why[1024];
    struct stk_rd r = { buf + 8, stk_get_u32(buf + 4) };
    int32_t err = EIO;
    const char *step = "start", *msg = "failed";
    uint32_t l;
    if (stk_rd_i32(&r, &err) < 0 || stk_rd_str(&r, &step, &l) < 0 || stk_rd_str(&r, &msg, &l) < 0) step = "start", msg = "stockade-init sent a malformed error";
    snprintf(why, sizeof why, strcmp(step, "hook") == 0 ? "%.0s%s" : "%s: %s", step, msg);
    return send_error(id, err, "%s", why);
  }
  if (p->exited) return send_error(id, ESRCH, "start: the container exited before its process started");
  return send_ok(id);
}

/* Each pid listed in the container's cgroup.procs, in order; the count, or -1. */
static int read_procs(const struct proc *c, uint32_t *pids, uint32_t max)
{
  char path[256];
  snprintf(path, sizeof path, "%s/%s/cgroup.procs", STK_AGENT_PATH_CGROUP, c->name);
  FILE *f = fopen(path, "re");
  if (f == NULL) return -1;
  uint32_t n = 0;
  unsigned long v;
  while (n < max && fscanf(f, "%lu", &v) == 1) pids[n++] = (uint32_t)v;
  fclose(f);
  return (int)n;
}

int container_signal_all(uint32_t id, struct proc *p, int sig)
{
  static uint32_t pids[STK_AGENT_MAX_U32S];
  if (p->kind != PROC_CONTAINER) return send_error(id, EINVAL, "signal: process %u is not a container", p->handle);
  char path[256];
  if (sig == SIGKILL) {
    /* cgroup.kill (5.14+) takes every process at once, forks in flight included. */
    snprintf(path, sizeof path, "%s/%s/cgroup.kill", STK_AGENT_PATH_CGROUP, p->name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
      ssize_t w = write(fd, "1", 1);
      close(fd);
      if (w == 1) return send_ok(id);
    }
  }
  int n = read_procs(p, pids, STK_AGENT_MAX_U32S);
  if (n < 0) return send_error(id, errno, "signal: cgroup of %s: %s", p->name, strerror(errno));
  for (int i = 0; i < n; i++) kill((pid_t)pids[i], sig);
  return send_ok(id);
}

int container_pids(uint32_t id, const struct stk_agent_h_pids *m)
{
  static uint32_t pids[STK_AGENT_MAX_U32S];
  static uint8_t buf[STK_AGENT_FRAME_HEADER + 4 + 4 * STK_AGENT_MAX_U32S];
  struct proc *p = container_of(m->proc);
  if (p == NULL) return send_error(id, ESRCH, "pids: no container %u", m->proc);
  int n = read_procs(p, pids, STK_AGENT_MAX_U32S);
  if (n < 0) return send_error(id, errno, "pids: cgroup of %s: %s", p->name, strerror(errno));
  struct stk_agent_g_pids_ok r = { .pids = pids, .pids_count = (uint32_t)n };
  return channel_send(buf, stk_agent_encode_pids_ok(buf, sizeof buf, id, &r));
}

/* A cgroup file holding one number or "max" (UINT64_MAX); 0 when it is not there. */
static uint64_t read_value(const char *dir, const char *file)
{
  char path[300], text[64] = { 0 };
  snprintf(path, sizeof path, "%s/%s", dir, file);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  if (n <= 0) return 0;
  if (strncmp(text, "max", 3) == 0) return UINT64_MAX;
  return strtoull(text, NULL, 10);
}

/* "key value" lines (cpu.stat, memory.stat): the value of key, 0 when it is not there. */
static uint64_t read_keyed(const char *dir, const char *file, const char *key)
{
  char path[300], line[256];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  FILE *f = fopen(path, "re");
  if (f == NULL) return 0;
  uint64_t v = 0;
  size_t klen = strlen(key);
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, key, klen) == 0 && line[klen] == ' ') {
      v = strtoull(line + klen + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
  return v;
}

uint64_t container_oom_kills(const struct proc *p)
{
  char dir[256];
  snprintf(dir, sizeof dir, "%s/%s", STK_AGENT_PATH_CGROUP, p->name);
  return read_keyed(dir, "memory.events", "oom_kill");
}

int container_stats(uint32_t id, const struct stk_agent_h_stats *m)
{
  struct proc *p = container_of(m->proc);
  if (p == NULL) return send_error(id, ESRCH, "stats: no container %u", m->proc);
  char dir[256];
  snprintf(dir, sizeof dir, "%s/%s", STK_AGENT_PATH_CGROUP, p->name);
  struct stk_agent_g_stats_ok r = {
    .cpuUsageUsec = read_keyed(dir, "cpu.stat", "usage_usec"),
    .cpuUserUsec = read_keyed(dir, "cpu.stat", "user_usec"),
    .cpuSystemUsec = read_keyed(dir, "cpu.stat", "system_usec"),
    .memoryCurrent = read_value(dir, "memory.current"),
    .memoryMax = read_value(dir, "memory.max"),
    .memoryAnon = read_keyed(dir, "memory.stat", "anon"),
    .memoryFile = read_keyed(dir, "memory.stat", "file"),
    .pidsCurrent = read_value(dir, "pids.current"),
    .pidsMax = read_value(dir, "pids.max"),
    .oomKills = read_keyed(dir, "memory.events", "oom_kill"),
  };
  uint8_t buf[256];
  return channel_send(buf, stk_agent_encode_stats_ok(buf, sizeof buf, id, &r));
}

/* Writes one cgroup file of the container; the error names it. */
static int write_limit(const char *verb, const char *dir, const char *file, const char *value, char *why, size_t whylen)
{
  char path[300];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  ssize_t n = fd < 0 ? -1 : write(fd, value, strlen(value));
  int e = errno;
  if (fd >= 0) close(fd);
  if (n == (ssize_t)strlen(value)) return 0;
  snprintf(why, whylen, "%s: write %s to %s: %s", verb, value, path, strerror(e));
  errno = e;
  return -1;
}

static void limit_text(char *buf, size_t len, uint64_t v)
{
  if (v == UINT64_MAX) snprintf(buf, len, "max");
  else snprintf(buf, len, "%" PRIu64, v);
}

int container_update(uint32_t id, const struct stk_agent_h_update *m)
{
  struct proc *p = container_of(m->proc);
  if (p == NULL) return send_error(id, ESRCH, "update: no container %u", m->proc);
  if ((m->cpuQuota != 0) != (m->cpuPeriod != 0)) return send_error(id, EINVAL, "update: cpu quota and period go together");
  if (m->cpuWeight != 0 && (m->cpuWeight < 1 || m->cpuWeight > 10000)) return send_error(id, EINVAL, "update: cpu weight %" PRIu64 " is not 1 to 10000", m->cpuWeight);
  char dir[256], v[64], why[400];
  snprintf(dir, sizeof dir, "%s/%s", STK_AGENT_PATH_CGROUP, p->name);
  if (m->pidsMax != 0) {
    limit_text(v, sizeof v, m->pidsMax);
    if (write_limit("update", dir, "pids.max", v, why, sizeof why) < 0) return send_error(id, errno, "%s", why);
  }
  if (m->memoryMax != 0) {
    limit_text(v, sizeof v, m->memoryMax);
    if (write_limit("update", dir, "memory.max", v, why, sizeof why) < 0) return send_error(id, errno, "%s", why);
  }
  if (m->cpuQuota != 0) {
    char q[32];
    limit_text(q, sizeof q, m->cpuQuota);
    snprintf(v, sizeof v, "%s %" PRIu64, q, m->cpuPeriod);
    if (write_limit("update", dir, "cpu.max", v, why, sizeof why) < 0) return send_error(id, errno, "%s", why);
  }
  if (m->cpuWeight != 0) {
    limit_text(v, sizeof v, m->cpuWeight);
    if (write_limit("update", dir, "cpu.weight", v, why, sizeof why) < 0) return send_error(id, errno, "%s", why);
  }
  return send_ok(id);
}

/* "frozen N" of the container's cgroup.events: 1, 0, or -1 when it cannot be read. */
static int frozen_state(const char *dir)
{
  char path[300];
  snprintf(path, sizeof path, "%s/cgroup.events", dir);
  if (access(path, R_OK) != 0) return -1;
  return (int)read_keyed(dir, "cgroup.events", "frozen");
}

/* A pod's container paused while the pod's VM runs on: its cgroup's freezer, as runc's cgroup v2
 * pause writes it. The kernel freezes the cgroup's tasks asynchronously; the reply waits until
 * cgroup.events says it is done (a poll on that file wakes at each change), at most 5 s. */
int container_freeze(uint32_t id, const struct stk_agent_h_freeze *m)
{
  struct proc *p = container_of(m->proc);
  if (p == NULL) return send_error(id, ESRCH, "freeze: no container %u", m->proc);
  if (m->frozen > 1) return send_error(id, EINVAL, "freeze: frozen %u is not 0 or 1", m->frozen);
  char dir[256], why[400];
  snprintf(dir, sizeof dir, "%s/%s", STK_AGENT_PATH_CGROUP, p->name);
  if (write_limit("freeze", dir, "cgroup.freeze", m->frozen ? "1" : "0", why, sizeof why) < 0) return send_error(id, errno, "%s", why);
  char path[300];
  snprintf(path, sizeof path, "%s/cgroup.events", dir);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  for (int waited = 0; waited < 5000; waited += 50) {
    int st = frozen_state(dir);
    if (st == (int)m->frozen) {
      if (fd >= 0) close(fd);
      return send_ok(id);
    }
    if (st < 0) break;
    struct pollfd pfd = { .fd = fd, .events = POLLPRI };
    if (fd < 0 || poll(&pfd, 1, 50) < 0) usleep(50000);
    if (fd >= 0) {
      char scratch[256];
      if (lseek(fd, 0, SEEK_SET) == 0) (void)!read(fd, scratch, sizeof scratch);
    }
  }
  if (fd >= 0) close(fd);
  return send_error(id, EBUSY, "freeze: %s/cgroup.events did not say frozen %u within 5 s", dir, m->frozen);
}

void container_resize(const struct stk_agent_h_resize *m)
{
  struct proc *p = proc_find(m->proc);
  if (p == NULL || !p->terminal || p->fd[0] < 0 || m->rows > 0xffff || m->cols > 0xffff) return;
  struct winsize ws = { .ws_row = (unsigned short)m->rows, .ws_col = (unsigned short)m->cols };
  if (ioctl(p->fd[0], TIOCSWINSZ, &ws) < 0) agent_log("resize process %u: %s", p->handle, strerror(errno));
}
