/* The addon's cgroup device BPF calls (bpf.c). */
#ifndef STOCKADE_ADDON_BPF_H
#define STOCKADE_ADDON_BPF_H

#include <node_api.h>
#include <stdbool.h>

/* Adds bpfDeviceProgLoad, bpfCgroupDeviceAttach and bpfCgroupDevicePrograms to exports; false with an exception pending on failure. */
bool stk_bpf_register(napi_env env, napi_value exports);

#endif
