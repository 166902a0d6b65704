/* stockade-light's sentry-watch (watch.c): kills a sentry container whose sentry exits. */
#ifndef STOCKADE_LIGHT_WATCH_H
#define STOCKADE_LIGHT_WATCH_H

/* Runs `stockade-light sentry-watch ID pidns|shared NCGROUPS` with its inherited fds; the exit status. */
int sentry_watch(char **argv);

#endif
