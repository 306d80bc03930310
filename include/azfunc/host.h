/* libazfunc — host layer: the in-process API for custom hosts.
 *
 * An azf_app is a registry of functions ready to run: either a Python function app
 * opened from a directory (v2 function_app.py indexed by the Python adapter, or v1
 * function.json folders when the adapter says "use default indexing"), or a registry of
 * native handlers the caller built with azf_registry_add. Invocations go through the
 * registry's handler interface only (registry.h): create one with azf_invocation_new on
 * a function of the app, set inputs, then either
 *   - azf_app_run: start it and wait (bounded) for its completion, or
 *   - azf_invocation_set_on_complete + azf_invocation_start: get a callback instead,
 * read outputs with azf_invocation_outputs / azf_invocation_return_value, and cancel
 * with azf_invocation_cancel. See docs/api-guide.md for a complete example.
 *
 * Thread safety: azf_app_open/azf_app_free run on the same thread (an embedded Python
 * interpreter is finalised on the thread that started it). Everything else may be
 * called from any thread; azf_app_run may run on several threads at once.
 */
#ifndef AZFUNC_HOST_H
#define AZFUNC_HOST_H

#include "azfunc/common.h"
#include "azfunc/python.h"
#include "azfunc/registry.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct azf_app azf_app;

/* Opens the Python function app in app_dir (copied): starts the Python adapter with
 * py_opts (read, and told why on failure; NULL = defaults; the app root is app_dir
 * unless py_opts names one, so its .venv/ is found), indexes the app and registers
 * every function with
 * the Python handler. An app whose indexing raises still opens, with no functions:
 * azf_app_errmsg tells why (as the host, which then has no functions). A v1 function
 * whose function.json is broken is listed and carries azf_function_load_error.
 * *out is untouched on failure.
 * Returns 0, AZF_E_IO (app_dir unreadable), AZF_E_NOTFOUND / AZF_E_LOAD (no such venv
 * or interpreter, no Python plugin for its version), AZF_E_PYTHON (the interpreter
 * failed to start), AZF_E_STATE (another embedded interpreter runs in this process),
 * AZF_E_INVALID (a venv of another version than asked for), AZF_E_NOMEM. The message
 * for the failure ("cannot start Python: ...") is azf_python_opts_errmsg(py_opts),
 * and goes to the library log callback too. */
AZF_API int azf_app_open(azf_app **out, const char *app_dir, azf_python_opts *py_opts);

/* Wraps a registry of native handlers (owned on success: freed with the app). No
 * Python is started. Returns 0, AZF_E_INVALID, AZF_E_NOMEM. */
AZF_API int azf_app_open_registry(azf_app **out, azf_registry *reg);

/* Frees the app: its registry, then its Python runtime. No invocation may be running
 * (see azf_app_run's timeout note). NULL is a no-op. */
AZF_API void azf_app_free(azf_app *app);

/* Why indexing failed ("<Type>: <message>") or the last failed call; never NULL. */
AZF_API const char *azf_app_errmsg(const azf_app *app);

/* The app's registry (borrowed until azf_app_free): functions, metadata, routes. */
AZF_API azf_registry *azf_app_registry(const azf_app *app);
/* Shorthands for the registry lookups (results borrowed until azf_app_free). */
AZF_API size_t azf_app_function_count(const azf_app *app);
AZF_API const azf_function *azf_app_function_at(const azf_app *app, size_t i);
AZF_API const azf_function *azf_app_find(const azf_app *app, const char *name);

/* The Python runtime of the app (borrowed), or NULL for a native registry. */
AZF_API azf_python *azf_app_python(const azf_app *app);

/* Starts inv (a new invocation of one of the app's functions, without a completion
 * callback: the helper installs its own) and waits until it completes or timeout_ms
 * passes (< 0: no limit). On timeout it asks the handler to cancel and waits again
 * for at most timeout_ms; an invocation still running then is left to finish on its
 * own (the caller may still free inv; it must not free the app until it completes).
 * Any completion callback set before is replaced.
 * Returns 0 when the invocation completed (check azf_invocation_status: it may have
 * failed or been cancelled), AZF_E_TIMEOUT, AZF_E_STATE (already started),
 * AZF_E_INVALID, AZF_E_NOMEM. */
AZF_API int azf_app_run(azf_app *app, azf_invocation *inv, int64_t timeout_ms);

#ifdef __cplusplus
}
#endif
#endif /* AZFUNC_HOST_H */
