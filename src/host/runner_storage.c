/* `azfunc start`, storage: starts the local storage emulator when the app uses
 * development storage, the input/output step of the storage bindings and the queue and
 * blob triggers (bindings.h), and stops them in the reverse order. */
#include "host/runner_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_storage(const char *type);

static runner *the_runner; /* one runner per process: the triggers' log lines */

static void log_line(int level, const char *message)
{
    if (the_runner && level >= the_runner->settings.log_level)
        say(level >= AZF_LOG_ERROR     ? C_RED
            : level == AZF_LOG_WARNING ? C_YELLOW
                                       : C_NONE,
            "%s", message);
}

/* 1 when a storage trigger or binding's connection is development storage (an app with
 * only HTTP and timer functions needs no emulator, whatever AzureWebJobsStorage says). */
static int wants_emulator(runner *r)
{
    for (size_t i = 0; i < azf_app_function_count(r->app); i++) {
        const azf_function *fn = azf_app_function_at(r->app, i);
        for (size_t j = 0; j < azf_function_binding_count(fn); j++) {
            const azf_binding *b = azf_function_binding(fn, j);
            const char *t = azf_binding_type(b);
            if (!is_storage(t))
                continue;
            const char *cs = azf__bindings_connection_string(b, NULL);
            if (cs && strcasecmp(cs, "UseDevelopmentStorage=true") == 0)
                return 1;
        }
    }
    return 0;
}

static int is_storage(const char *type)
{
    return strncasecmp(type, "queue", 5) == 0 || strncasecmp(type, "blob", 4) == 0 ||
           strcasecmp(type, "table") == 0;
}

/* Core Tools' warnings for connection settings that are missing. */
static void warn_missing_settings(runner *r)
{
    int needs_storage = 0;
    for (size_t i = 0; i < azf_app_function_count(r->app); i++) {
        const azf_function *fn = azf_app_function_at(r->app, i);
        const azf_binding *trig = azf_function_trigger(fn);
        if (trig && strcasecmp(azf_binding_type(trig), "httpTrigger") != 0)
            needs_storage = 1;
        for (size_t j = 0; j < azf_function_binding_count(fn); j++) {
            const azf_binding *b = azf_function_binding(fn, j);
            const char *setting = NULL;
            if (is_storage(azf_binding_type(b)) && !azf__bindings_connection_string(b, &setting))
                say(C_YELLOW,
                    "Warning: Cannot find value named '%s' in local.settings.json that matches "
                    "'connection' property set on '%s' in '%s'. Specify a connection string "
                    "in local.settings.json.",
                    setting, azf_binding_type(b), azf_function_name(fn));
        }
    }
    const char *s = getenv("AzureWebJobsStorage");
    if (needs_storage && (!s || !*s))
        say(C_YELLOW, "Missing value for AzureWebJobsStorage in local.settings.json. This is "
                      "required for all triggers other than httptrigger. You can use "
                      "UseDevelopmentStorage=true to run them on Azurite.");
}

/* Azurite, from the supervisor (it lives as long as azfunc start), or, when this
 * process is not supervised, run by this process until it stops. */
static void start_emulator(runner *r, const char *state)
{
    azf__errmsg err = {{0}};
    int pid, got = azf__supervised_emulator(&pid);
    if (got == AZF__EMULATOR_UNSUPERVISED) {
        if (azf__emulator_running())
            got = AZF__EMULATOR_FOREIGN;
        else if (azf__emulator_launch(&r->emulator, state, &err) == 0)
            got = AZF__EMULATOR_STARTED, pid = azf__emulator_pid(r->emulator);
        else
            say(C_RED, "Storage: cannot start Azurite: %s", err.text);
    }
    if ((got == AZF__EMULATOR_STARTED || got == AZF__EMULATOR_KEPT) &&
        azf__emulator_await(pid, state, &err) != 0) {
        say(C_RED, "Storage: cannot start Azurite: %s", err.text);
    } else if (got == AZF__EMULATOR_STARTED) {
        say(C_NONE, "Storage: started Azurite on 127.0.0.1:10000-10002 (data in %s/azurite)",
            state);
    } else if (got == AZF__EMULATOR_KEPT) {
        say(C_NONE,
            "Storage: Azurite on 127.0.0.1:10000-10002, started by azfunc start before "
            "(data in %s/azurite)",
            state);
    } else if (got == AZF__EMULATOR_FOREIGN) {
        say(C_NONE, "Storage: development storage on 127.0.0.1:10000-10002 (already running)");
    }
}

int azf__runner_storage_start(runner *r)
{
    warn_missing_settings(r);
    azf__errmsg err = {{0}};
    the_runner = r;
    char *state = azf__asprintf("%s/.azfunc", r->o->dir);
    if (!state)
        return -1;
    if (wants_emulator(r)) {
        if (r->o->no_storage_emulator)
            say(C_NONE, "Storage: development storage; not starting Azurite "
                        "(--no-storage-emulator)");
        else
            start_emulator(r, state);
    }
    if (azf__bindings_new(&r->bindings, r->o->dir, &err) != 0) {
        fprintf(stderr, "azfunc start: %s\n", err.text);
        azf__free(state);
        return -1;
    }
    int rc =
        azf__triggers_start(&r->triggers, r->app, r->bindings, state, azf__post_call, r, log_line);
    azf__free(state);
    if (rc != 0)
        say(C_RED, "Storage triggers: %s", azf_strerror(rc));
    return 0;
}

void azf__runner_storage_stop(runner *r)
{
    azf__triggers_stop(r->triggers);
}

void azf__runner_storage_join(runner *r)
{
    azf__triggers_join(r->triggers);
}

void azf__runner_storage_free(runner *r)
{
    azf__triggers_free(r->triggers);
    r->triggers = NULL;
    azf__bindings_free(r->bindings);
    r->bindings = NULL;
    azf__emulator_stop(r->emulator);
    r->emulator = NULL;
    the_runner = NULL;
}
