/* The C side of the Go binding: trampolines (bridge.c) that the library calls, and the
 * exported Go callbacks they forward to (defined with //export in the Go files).
 * Callback data is a cgo.Handle carried in the library's void *user_data. */
#ifndef AZFUNC_GO_BRIDGE_H
#define AZFUNC_GO_BRIDGE_H

#include <stdint.h>

#include <azfunc/azfunc.h>

/* Exported from Go. */
extern int azfgoInvoke(azf_invocation *inv, uintptr_t handle);
extern void azfgoCancel(azf_invocation *inv, uintptr_t handle);
extern void azfgoRelease(uintptr_t handle);
extern void azfgoComplete(azf_invocation *inv, uintptr_t handle);
extern void azfgoLog(azf_invocation *inv, int level, char *category, char *message,
                     uintptr_t handle);

/* A handler whose callbacks reach the Go functions above (owned: azf_handler_free). */
int azfgo_handler_new(azf_handler **out);
/* azf_registry_add with a cgo.Handle as user_data. */
int azfgo_registry_add(azf_registry *reg, const char *metadata_json, const azf_handler *h,
                       uintptr_t handle);
/* Completion and log callbacks of an invocation started from Go (custom host). */
int azfgo_invocation_watch(azf_invocation *inv, uintptr_t handle);

#endif
