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
int agent_load_modules(const char *order_file);
int agent_open_port(const char *name, int timeout_ms);
void agent_power_off(void) __attribute__((noreturn));

/* channel.c: frames to the host (the port is non-blocking; sends wait for room). */
void channel_init(int fd);
int channel_fd(void);
int channel_send(const uint8_t *frame, int32_t len);
int send_ok(uint32_t id);
int send_error(uint32_t id, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* procs.c: the processes the host spawned. */
struct proc {
  int used;
  uint32_t handle;
  pid_t pid;
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
};

struct proc *proc_table(void);
struct proc *proc_find(uint32_t handle);
int proc_spawn(uint32_t id, const struct stk_agent_h_spawn *m);
void proc_reap(void);
int proc_output(struct proc *p, int stream);
int proc_stdin_flush(struct proc *p);
void proc_stdin_data(struct proc *p, const uint8_t *data, uint32_t len);
void proc_release_if_done(struct proc *p);
int proc_send_exit(struct proc *p, uint32_t id);

/* serve.c */
int agent_serve(int guest);

#endif
