#ifndef STOCKADE_LIGHT_RELAY_H
#define STOCKADE_LIGHT_RELAY_H
/* The caller's terminal relayed to a container's pty master by the planner's front (relay.c). */
#include <poll.h>
#include <stdbool.h>

/* Takes master and starts relaying: the caller's terminal raw, the master sized as its stdout. */
void relay_start(int master);
bool relay_active(void);
/* Whether the master's output is still read (its end not seen yet). */
bool relay_output_open(void);
/* The two entries the relay polls (stdin, the master); fd -1 where nothing is awaited. */
void relay_pollfds(struct pollfd fds[2]);
/* Serves what poll reported in fds; true once, when the master's output has ended. */
bool relay_serve(const struct pollfd fds[2]);
/* The master sized as the caller's stdout again (SIGWINCH). */
void relay_resize(void);
/* The caller's terminal as it was before the relay; async-signal-safe, and harmless twice. */
void relay_restore(void);
/* Stops relaying: the terminal restored, the master closed. */
void relay_stop(void);

/* A pidfd of a container's init from its light record under root (light.c), checked as the wait
 * checks it; -1 when there is none to be sure of. */
int light_container_pidfd(const char *root, const char *id);
#endif
