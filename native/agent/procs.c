/* stockade-agent: the processes the host spawned, their stdio pumps and their exits. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "agent.h"

static struct proc procs[STK_AGENT_MAX_PROCS];
static uint32_t next_handle = 1;

struct proc *proc_table(void) { return procs; }

struct proc *proc_find(uint32_t handle)
{
  for (unsigned i = 0; i < STK_AGENT_MAX_PROCS; i++)
    if (procs[i].used && procs[i].handle == handle) return &procs[i];
  return NULL;
}

void proc_close_fd(int *fd)
{
  if (*fd >= 0) close(*fd);
  *fd = -1;
}
#define close_fd proc_close_fd

/* A free slot, cleared, with a new handle; NULL when all are taken. */
struct proc *proc_alloc(void)
{
  for (unsigned i = 0; i < STK_AGENT_MAX_PROCS; i++) {
    struct proc *p = &procs[i];
    if (p->used) continue;
    memset(p, 0, sizeof *p);
    p->used = 1;
    p->handle = next_handle++;
    if (next_handle == 0) next_handle = 1;
    for (int s = 0; s < 3; s++) p->fd[s] = -1;
    p->sync_fd = p->start_fd = p->console_fd = -1;
    return p;
  }
  return NULL;
}

/* A failed step in the child, reported to the agent through the exec pipe as {errno, step}. */
struct child_failure { int err; char step[60]; };

static void __attribute__((noreturn)) child_fail(int pipe_fd, const char *step)
{
  struct child_failure f = { .err = errno };
  snprintf(f.step, sizeof f.step, "%s", step);
  ssize_t w = write(pipe_fd, &f, sizeof f);
  (void)w;
  _exit(127);
}

/* execvpe with the process's own PATH, not the agent's. */
static void exec_in_path(const char *file, char *const argv[], char *const envp[])
{
  if (strchr(file, '/') != NULL) {
    execve(file, argv, envp);
    return;
  }
  const char *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  for (char *const *e = envp; *e != NULL; e++)
    if (strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
  int saved = ENOENT;
  char buf[4096];
  while (*path != 0) {
    const char *colon = strchr(path, ':');
    size_t dlen = colon != NULL ? (size_t)(colon - path) : strlen(path);
    if (dlen + 1 + strlen(file) + 1 <= sizeof buf) {
      memcpy(buf, path, dlen);
      buf[dlen] = '/';
      strcpy(buf + dlen + 1, file);
      execve(buf, argv, envp);
      if (errno != ENOENT && errno != ENOTDIR) saved = errno;
    }
    path += dlen;
    if (*path == ':') path++;
  }
  errno = saved;
}

static void __attribute__((noreturn)) child(const struct stk_agent_h_spawn *m, int in, int out, int err, int report)
{
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  signal(SIGPIPE, SIG_DFL);
  if (setsid() < 0) child_fail(report, "setsid");
  if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0) child_fail(report, "dup2");
  if (m->root_len > 0) {
    if (chroot(m->root) < 0) child_fail(report, "chroot");
    if (chdir("/") < 0) child_fail(report, "chdir /");
  }
  if (m->cwd_len > 0 && chdir(m->cwd) < 0) child_fail(report, "chdir");
  if (setgroups(0, NULL) < 0) child_fail(report, "setgroups");
  if (setresgid(m->gid, m->gid, m->gid) < 0) child_fail(report, "setgid");
  if (setresuid(m->uid, m->uid, m->uid) < 0) child_fail(report, "setuid");
  exec_in_path(m->args[0], (char *const *)m->args, (char *const *)m->env);
  child_fail(report, "execve");
}

int proc_spawn(uint32_t id, const struct stk_agent_h_spawn *m)
{
  if (m->args_count == 0) return send_error(id, EINVAL, "spawn: no args");
  int free_slot = 0;
  for (unsigned i = 0; i < STK_AGENT_MAX_PROCS; i++)
    if (!procs[i].used) free_slot = 1;
  if (!free_slot) return send_error(id, EAGAIN, "spawn: %u processes already", STK_AGENT_MAX_PROCS);

  int in[2] = { -1, -1 }, out[2] = { -1, -1 }, err[2] = { -1, -1 }, report[2] = { -1, -1 };
  int ok = pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0 && pipe2(report, O_CLOEXEC) == 0;
  if (ok) {
    if (m->flags & STK_AGENT_SPAWN_STDIN) ok = pipe2(in, O_CLOEXEC) == 0;
    else ok = (in[0] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;
  }
  pid_t pid = ok ? fork() : -1;
  int e = errno;
  if (pid == 0) {
    close(report[0]);
    child(m, in[0], out[1], err[1], report[1]);
  }
  close_fd(&in[0]);
  close_fd(&out[1]);
  close_fd(&err[1]);
  close_fd(&report[1]);
  if (pid < 0) {
    close_fd(&in[1]);
    close_fd(&out[0]);
    close_fd(&err[0]);
    close_fd(&report[0]);
    return send_error(id, e, "spawn: %s", strerror(e));
  }
  /* EOF: execve closed the pipe. A record: the step that failed. */
  struct child_failure f;
  ssize_t n;
  do n = read(report[0], &f, sizeof f); while (n < 0 && errno == EINTR);
  close_fd(&report[0]);
  if (n == (ssize_t)sizeof f) {
    close_fd(&in[1]);
    close_fd(&out[0]);
    close_fd(&err[0]);
    waitpid(pid, NULL, 0);
    f.step[sizeof f.step - 1] = 0;
    return send_error(id, f.err, "%s %s: %s", f.step, strcmp(f.step, "execve") == 0 ? m->args[0] : "", strerror(f.err));
  }
  struct proc *p = proc_alloc();
  p->kind = PROC_SPAWN;
  p->announced = 1;
  p->pid = pid;
  p->fd[0] = in[1];
  p->fd[1] = out[0];
  p->fd[2] = err[0];
  for (int s = 0; s < 3; s++)
    if (p->fd[s] >= 0) fcntl(p->fd[s], F_SETFL, O_NONBLOCK);
  p->credit[1] = p->credit[2] = STK_AGENT_STREAM_WINDOW;
  if (p->fd[0] >= 0) {
    p->inbuf = malloc(STK_AGENT_STREAM_WINDOW);
    if (p->inbuf == NULL) close_fd(&p->fd[0]);
  }
  uint8_t buf[64];
  struct stk_agent_g_spawned r = { .proc = p->handle, .pid = (uint32_t)pid };
  return channel_send(buf, stk_agent_encode_spawned(buf, sizeof buf, id, &r));
}

int proc_send_exit(struct proc *p, uint32_t id)
{
  uint8_t buf[64];
  struct stk_agent_g_exited r = {
    .proc = p->handle, .code = p->code, .signal = p->signal,
    .oomKills = p->kind == PROC_CONTAINER ? container_oom_kills(p) : 0,
  };
  p->exit_reported = 1;
  return channel_send(buf, stk_agent_encode_exited(buf, sizeof buf, id, &r));
}

/* A slot is free again once its exit was reported and both output streams ended; an orphan's
 * (a setup that failed before the host knew it) once its processes are reaped. */
void proc_release_if_done(struct proc *p)
{
  if (!p->used) return;
  if (p->orphan) {
    if ((p->pid != 0 && !p->exited) || p->helper != 0) return;
  } else if (!p->exit_reported || p->fd[1] >= 0 || p->fd[2] >= 0) {
    return;
  }
  for (int s = 0; s < 3; s++) close_fd(&p->fd[s]);
  close_fd(&p->sync_fd);
  close_fd(&p->start_fd);
  close_fd(&p->console_fd);
  if (p->kind != PROC_SPAWN) container_release(p);
  free(p->inbuf);
  free(p->syncbuf);
  memset(p, 0, sizeof *p);
}

/* The slot a reaped pid belongs to: as the process the host waits for, or as stockade-init's P. */
static struct proc *match_exit(pid_t pid, int *as_helper)
{
  for (unsigned i = 0; i < STK_AGENT_MAX_PROCS; i++) {
    struct proc *p = &procs[i];
    if (!p->used) continue;
    if (p->pid == pid && !p->exited) { *as_helper = 0; return p; }
    if (p->helper == pid) { *as_helper = 1; return p; }
  }
  return NULL;
}

/* Reaps every child that exited: the host's processes are recorded, orphans that PID 1 inherited
 * are only collected. */
void proc_reap(void)
{
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    int as_helper = 0;
    struct proc *p = match_exit(pid, &as_helper);
    if (p == NULL) {
      /* A container's init is ours to reap only once stockade-init exited, after it wrote
       * MSG_PID: read what the sync sockets hold, and the pid is known. */
      container_drain_syncs();
      p = match_exit(pid, &as_helper);
    }
    if (p == NULL) continue; /* an orphan PID 1 inherited */
    if (as_helper) {
      p->helper = 0;
      proc_release_if_done(p);
      continue;
    }
    {
      p->exited = 1;
      p->code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      p->signal = WIFSIGNALED(status) ? (uint32_t)WTERMSIG(status) : 0;
      if (p->wait_id != 0) {
        uint32_t id = p->wait_id;
        p->wait_id = 0;
        proc_send_exit(p, id);
      }
      proc_release_if_done(p);
    }
  }
}

/* Moves what the pipe holds, within the stream's credit, to the host; at EOF, an empty OUTPUT. */
int proc_output(struct proc *p, int stream)
{
  static uint8_t data[STK_AGENT_MAX_CHUNK];
  static uint8_t frame[STK_AGENT_MAX_CHUNK + 64];
  uint32_t want = p->credit[stream] < STK_AGENT_MAX_CHUNK ? p->credit[stream] : STK_AGENT_MAX_CHUNK;
  if (want == 0) return 0;
  ssize_t n = read(p->fd[stream], data, want);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
  struct stk_agent_g_output m = { .proc = p->handle, .stream = (uint32_t)stream, .data = data, .data_len = n > 0 ? (uint32_t)n : 0 };
  if (n <= 0) close_fd(&p->fd[stream]);
  else p->credit[stream] -= (uint32_t)n;
  int rc = channel_send(frame, stk_agent_encode_output(frame, sizeof frame, 0, &m));
  proc_release_if_done(p);
  return rc;
}

void proc_stdin_data(struct proc *p, const uint8_t *data, uint32_t len)
{
  if (len == 0) {
    p->stdin_close = 1;
  } else if (p->fd[0] < 0) {
    /* Stdin is gone (the process closed it or never had one): acknowledge and drop, so the host
     * does not wait for credit that can never come. */
    uint8_t buf[64];
    struct stk_agent_g_window w = { .proc = p->handle, .stream = STK_AGENT_STREAM_STDIN, .bytes = len };
    channel_send(buf, stk_agent_encode_window(buf, sizeof buf, 0, &w));
    return;
  } else if (len > STK_AGENT_STREAM_WINDOW - p->inlen) {
    agent_log("host overran the stdin window of process %u; dropping %u bytes", p->handle, len);
    return;
  } else {
    memcpy(p->inbuf + p->inlen, data, len);
    p->inlen += len;
  }
  proc_stdin_flush(p);
}

/* Writes buffered stdin; each byte written is credit the host gets back. */
int proc_stdin_flush(struct proc *p)
{
  uint32_t done = 0;
  int broken = 0;
  while (p->fd[0] >= 0 && done < p->inlen) {
    ssize_t n = write(p->fd[0], p->inbuf + done, p->inlen - done);
    if (n > 0) { done += (uint32_t)n; continue; }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    broken = 1; /* EPIPE: the reader is gone; what is left is dropped and acknowledged */
    break;
  }
  if (broken) {
    done = p->inlen;
    close_fd(&p->fd[0]);
  }
  if (done > 0) {
    memmove(p->inbuf, p->inbuf + done, p->inlen - done);
    p->inlen -= done;
    uint8_t buf[64];
    struct stk_agent_g_window w = { .proc = p->handle, .stream = STK_AGENT_STREAM_STDIN, .bytes = done };
    if (channel_send(buf, stk_agent_encode_window(buf, sizeof buf, 0, &w)) < 0) return -1;
  }
  if (p->stdin_close && p->inlen == 0) close_fd(&p->fd[0]);
  return 0;
}
