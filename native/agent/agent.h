/* stockade-agent: declarations shared by the files of the guest's PID 1. */
#ifndef STK_AGENT_INTERNAL_H
#define STK_AGENT_INTERNAL_H

#include <stdint.h>
#include <sys/types.h>
#include "stockade-agent.h"

#define AGENT_PORT_NAME "stockade.agent"

/* Logs to the guest console (the serial port the host keeps the tail of). */
void agent_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* boot.c: what PID 1 sets up before it serves. */
int agent_mount_basics(void);
int agent_leave_rootfs(void);
int agent_load_modules(const char *order_file);
int agent_find_in_class(const char *class, const char *attr, const char *want, char *entry, size_t len);
int agent_open_port(const char *name, int timeout_ms);
void agent_power_off(void) __attribute__((noreturn));

/* channel.c: frames to the host (the port is non-blocking; sends wait for room). */
void channel_init(int fd);
int channel_fd(void);
int channel_send(const uint8_t *frame, int32_t len);
int send_ok(uint32_t id);
int send_error(uint32_t id, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* procs.c: the processes the host spawned, and the containers it created (container.c). */
enum proc_kind { PROC_SPAWN, PROC_CONTAINER, PROC_EXEC };

/* Where a container or exec stands, as stockade-init's sync socket and start socket tell it. */
enum proc_phase {
  PHASE_RUNNING,   /* a spawned process, or a container or exec whose process exec'd */
  PHASE_SETUP,     /* stockade-init at work; setup_id waits for its next step */
  PHASE_HOOK,      /* stopped at a hook point; waits for CONTINUE */
  PHASE_CREATED,   /* ready, blocked on its start socket; waits for START */
  PHASE_STARTING,  /* MSG_START sent; start_id waits for EOF (exec'd) or MSG_ERROR */
  PHASE_EXECING,   /* an exec past MSG_READY; setup_id waits for EOF (exec'd) or MSG_ERROR */
};

struct proc {
  int used;
  uint32_t handle;
  pid_t pid;             /* the process the host's SIGNAL and WAIT mean (a container's init); 0 until known */
  int fd[3];             /* [0] our end of its stdin, [1] stdout, [2] stderr; -1 when closed */
  uint32_t credit[3];    /* output credit for streams 1 and 2 */
  uint8_t *inbuf;        /* stdin bytes received but not yet written */
  uint32_t inlen;
  int stdin_close;       /* close stdin once inbuf is drained */
  int exited;
  int32_t code;
  uint32_t signal;
  uint32_t wait_id;      /* a WAIT waiting for the exit, or 0 */
  int exit_reported;
  int kind;              /* enum proc_kind */
  int announced;         /* the host knows the handle: output may flow to it */
  int orphan;            /* setup failed before the host knew it: reaped and released silently */
  int phase;             /* enum proc_phase */
  int terminal;          /* fd[1] (and fd[0]) are the pty master */
  pid_t helper;          /* stockade-init's first process (P), until reaped */
  int sync_fd, start_fd, console_fd; /* -1 when closed */
  uint8_t *syncbuf;      /* sync frames received but not whole yet */
  uint32_t synclen;
  uint32_t setup_id;     /* CREATE, CONTINUE or EXEC waiting for the setup's next step */
  uint32_t start_id;     /* START waiting for the process's execve */
  char name[STK_AGENT_MAX_NAME + 1]; /* its directory (and a container's cgroup) in the guest; "" for a spawn */
};

struct proc *proc_table(void);
struct proc *proc_find(uint32_t handle);
int proc_spawn(uint32_t id, const struct stk_agent_h_spawn *m);
void proc_reap(void);
int proc_output(struct proc *p, int stream);
int proc_stdin_flush(struct proc *p);
void proc_stdin_data(struct proc *p, const uint8_t *data, uint32_t len);
void proc_release_if_done(struct proc *p);
struct proc *proc_alloc(void);
void proc_close_fd(int *fd);
int proc_send_exit(struct proc *p, uint32_t id);

/* container.c: stockade-init in the guest, for CREATE and EXEC. */
void container_prepare_init(void);
void container_prepare_cgroups(void);
int container_create(uint32_t id, const struct stk_agent_h_create *m);
int container_exec(uint32_t id, const struct stk_agent_h_exec *m);
int container_continue(uint32_t id, const struct stk_agent_h_continue *m);
int container_start(uint32_t id, const struct stk_agent_h_start *m);
int container_sync(struct proc *p);
int container_start_reply(struct proc *p);
void container_drain_syncs(void);
int container_signal_all(uint32_t id, struct proc *p, int sig);
int container_pids(uint32_t id, const struct stk_agent_h_pids *m);
int container_stats(uint32_t id, const struct stk_agent_h_stats *m);
/* memory.events oom_kill of a container's cgroup: what EXITED reports when its init is reaped. */
uint64_t container_oom_kills(const struct proc *p);
int container_update(uint32_t id, const struct stk_agent_h_update *m);
int container_freeze(uint32_t id, const struct stk_agent_h_freeze *m);
void container_resize(const struct stk_agent_h_resize *m);
void container_release(struct proc *p);

/* dns.c: a loopback nameserver of the container's network namespace, forwarded to the host. */
int dns_listen(uint32_t id, const struct stk_agent_h_dns_listen *m);
unsigned dns_fds(int *fds);
int dns_receive(unsigned i);
void dns_answer(const struct stk_agent_h_dns_answer *m);

/* net.c: the guest's interfaces, addresses and routes. */
int net_loopback_up(void);
int net_link(uint32_t id, const struct stk_agent_h_net_link *m);
int net_addr(uint32_t id, const struct stk_agent_h_net_addr *m);
int net_route(uint32_t id, const struct stk_agent_h_net_route *m);

/* serve.c */
int agent_serve(int guest);
int agent_in_guest(void);
int make_dirs(const char *path);

#endif
