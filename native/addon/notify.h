/* The addon's seccomp user-notification and remote-memory functions (notify.c). */
#ifndef STOCKADE_ADDON_NOTIFY_H
#define STOCKADE_ADDON_NOTIFY_H

#include <node_api.h>
#include <stdbool.h>

/* Adds notifSizes, notifRecv, notifSend, notifAddfd, notifIdValid, notifSetFlags, memRead,
 * memReadString, memWrite, syscall, sendMessage and confineThread to exports; false with an exception pending on failure. */
bool stk_notify_register(napi_env env, napi_value exports);

#endif
