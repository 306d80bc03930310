/* Trampolines: the library's callbacks, forwarded to the exported Go functions. */
#include "bridge.h"

static int on_invoke(azf_invocation *inv, void *user_data)
{
    return azfgoInvoke(inv, (uintptr_t)user_data);
}

static void on_cancel(azf_invocation *inv, void *user_data)
{
    azfgoCancel(inv, (uintptr_t)user_data);
}

static void on_release(void *user_data)
{
    azfgoRelease((uintptr_t)user_data);
}

static void on_complete(azf_invocation *inv, void *user_data)
{
    azfgoComplete(inv, (uintptr_t)user_data);
}

static void on_log(azf_invocation *inv, int level, const char *category, const char *message,
                   void *user_data)
{
    /* cgo declares exported parameters without const; the strings are only read. */
    azfgoLog(inv, level, (char *)category, (char *)message, (uintptr_t)user_data);
}

int azfgo_handler_new(azf_handler **out)
{
    azf_handler *h = NULL;
    int rc = azf_handler_new(&h);
    if (rc == 0)
        rc = azf_handler_set_invoke(h, on_invoke);
    if (rc == 0)
        rc = azf_handler_set_cancel(h, on_cancel);
    if (rc == 0)
        rc = azf_handler_set_release(h, on_release);
    if (rc != 0) {
        azf_handler_free(h);
        return rc;
    }
    *out = h;
    return 0;
}

int azfgo_registry_add(azf_registry *reg, const char *metadata_json, const azf_handler *h,
                       uintptr_t handle)
{
    return azf_registry_add(reg, metadata_json, h, (void *)handle);
}

int azfgo_invocation_watch(azf_invocation *inv, uintptr_t handle)
{
    int rc = azf_invocation_set_on_complete(inv, on_complete, (void *)handle);
    if (rc == 0)
        rc = azf_invocation_set_on_log(inv, on_log, (void *)handle);
    return rc;
}
