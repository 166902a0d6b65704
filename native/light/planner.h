#ifndef STOCKADE_LIGHT_PLANNER_H
#define STOCKADE_LIGHT_PLANNER_H
/* Serves the call through the state root's planner (planner.c) unless STOCKADE_PLANNER=off, when the
 * command is one it serves; returns only when the call must run in Node (the cold path). */
void planner_try(char **argv);
#endif
