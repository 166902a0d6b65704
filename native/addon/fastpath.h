/* The sentry's native fast path: the common stats and opens served without entering JavaScript (fastpath.c). */
#ifndef STOCKADE_ADDON_FASTPATH_H
#define STOCKADE_ADDON_FASTPATH_H

#include <node_api.h>
#include <stdbool.h>

/* Adds fastServe and fastLayout to exports; false with an exception pending on failure. */
bool stk_fastpath_register(napi_env env, napi_value exports);

#endif
