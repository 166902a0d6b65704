/* The sentry's opens that may block, on threads of their own (blocking.c). */
#ifndef STOCKADE_ADDON_BLOCKING_H
#define STOCKADE_ADDON_BLOCKING_H

#include <node_api.h>
#include <stdbool.h>

/* Adds blockingInit and blockingOpen to exports; false with an exception pending on failure. */
bool stk_blocking_register(napi_env env, napi_value exports);

#endif
