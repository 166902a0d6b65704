#ifndef STOCKADE_LIGHT_PLANNER_H
#define STOCKADE_LIGHT_PLANNER_H
/* Serves the call through the state root's planner (planner.c) unless STOCKADE_PLANNER=off, when the
 * command is one it serves; returns only when the call must run in Node (the cold path). */
void planner_try(char **argv);
/*
 * A planner started under a client's subreaper (conmon, a containerd shim) becomes that process's
 * child once its front is gone, and conmon waits for every child of its own before it exits: it
 * stayed, its container long over, for as long as the planner lived. A call whose own orphans go
 * to init (podman's `start`, `kill` and `delete`, made by podman itself) replaces such a planner of
 * root with one of its own, detached at once; the old one leaves when its call, if any, is done.
 */
void planner_rehome(const char *root);
#endif
