/* The storage side of `azfunc start`: binding data and expressions (binding_data.c),
 * the input and output step around an invocation (bindings_io.c), the queue and blob
 * triggers (queue_trigger.c, blob_trigger.c) and the local storage emulator
 * (emulator.c). Linked into the runner only; the storage client is src/storage. */
#ifndef AZF_HOST_BINDINGS_H
#define AZF_HOST_BINDINGS_H

#include "host/host_internal.h"
#include "storage/storage.h"

#include <cjson/cJSON.h>

/* ---- binding data and expressions (binding_data.c) ---- */
void azf__new_guid(char out[37]);
/* The binding data of one invocation: trigger metadata, the payload's JSON properties,
 * HTTP route parameters (and Query, Headers), and sys (MethodName, UtcNow, RandGuid).
 * Owned (cJSON_Delete); NULL without memory. */
cJSON *azf__binding_data_new(const azf_function *fn, const azf_value *trigger,
                             const azf_value_map *metadata);
/* Resolves %setting% and {name} in tmpl (data NULL: only %setting%, the {tokens} stay);
 * *out owned (azf__free). AZF_E_NOTFOUND names the missing setting or value ("No value
 * for named parameter 'x'."). */
int azf__expr_resolve(const char *tmpl, const cJSON *data, char **out, azf__errmsg *err);
/* 1 when path matches pattern ("in/{name}.txt"), with the tokens added to out. */
int azf__path_match(const char *pattern, const char *path, cJSON *out);

/* ---- options from host.json extensions.queues ---- */
typedef struct azf__queue_options {
    int batch_size, new_batch_threshold, max_dequeue_count;
    long max_polling_ms, visibility_ms; /* visibility: the retry delay after a failure */
    int base64;                         /* messageEncoding: base64 (default) or none */
} azf__queue_options;

/* ---- the input/output step (bindings_io.c) ---- */
typedef struct azf__bindings azf__bindings;

/* Reads host.json's extensions.queues in app_dir and starts the step's I/O threads.
 * AZF_E_PARSE with the reason in err for a bad option. */
int azf__bindings_new(azf__bindings **out, const char *app_dir, azf__errmsg *err);
void azf__bindings_free(azf__bindings *b);
const azf__queue_options *azf__bindings_queue_options(const azf__bindings *b);
/* The connection string of a binding's "connection" setting (default
 * AzureWebJobsStorage; NAME or AzureWebJobsNAME in the environment), or NULL; *setting
 * (may be NULL) gets the setting's name, valid on this thread until the next call. */
const char *azf__bindings_connection_string(const azf_binding *binding, const char **setting);
/* The storage account of a binding (one client per connection string, kept; borrowed).
 * NULL with the reason in err. */
azf__storage *azf__bindings_account(azf__bindings *b, const azf_binding *binding, azf__errmsg *err);
/* 1 when a binding asks for an SDK type ("properties": {"SupportsDeferredBinding": true}):
 * it gets a reference to the blob instead of its content, as the host sends it. */
int azf__deferred_binding(const cJSON *binding);
/* That reference: model binding data from "AzureStorageBlobs" with the connection
 * setting's name, the container and the blob name as JSON. */
int azf__blob_reference(const char *setting, const char *container, const char *name,
                        azf_value **out);
/* The outputs of a completed invocation that no local service receives (Event Hubs,
 * Service Bus, Cosmos DB, ...), one "Output '<name>' (<type>, not delivered locally):
 * <value>" line each (owned), or NULL. */
char *azf__bindings_undelivered(azf_invocation *inv);
/* 1 when fn has bindings other than its trigger and HTTP outputs. */
int azf__bindings_wanted(const azf_function *fn);

/* Called once per azf__bindings_run, on an I/O thread of the step. error: NULL when
 * the invocation ran and its outputs were written; otherwise why it failed (the
 * invocation may never have started: an input could not be supplied). */
typedef void (*azf__bindings_done_fn)(azf_invocation *inv, const char *error, void *user_data);
/* inv: new, with its trigger input and metadata set (borrowed until done). Supplies
 * the input bindings, starts inv, writes its outputs when it succeeded, then done. */
void azf__bindings_run(azf__bindings *b, azf_invocation *inv, azf__bindings_done_fn done,
                       void *user_data);

/* ---- admin invocations (admin_input.c) ---- */
/* The trigger value and metadata (NULL when none) that an admin invocation of fn gets
 * for text, as the host would deliver such an event: system properties for Event Hubs
 * and Service Bus (cardinality one or many), an Event Grid envelope, a JSON list for
 * Cosmos DB, queue metadata; a string otherwise. Both owned. AZF_E_PARSE with the reason
 * for text the trigger cannot take. */
int azf__admin_input(const azf_function *fn, const char *text, azf_value **value,
                     azf_value_map **metadata, azf__errmsg *err);

/* ---- the queue and blob triggers (queue_trigger.c, blob_trigger.c) ---- */
/* A trigger learns how its invocation ended (outputs written included): 1 succeeded, 0
 * failed, -1 never ran (the runner was stopping). */
typedef void (*azf__settled_fn)(int outcome, void *arg);
/* How a trigger hands an invocation to the runner, from its own thread (see
 * azf__post_call): input and metadata owned; 0 when settled will follow. */
typedef int (*azf__fire_fn)(void *runner, const azf_function *fn, azf_value *input,
                            azf_value_map *metadata, const char *reason, azf__settled_fn settled,
                            void *arg);
/* One line of the runner's output at a log level (AZF_LOG_*). */
typedef void (*azf__log_fn)(int level, const char *message);

typedef struct azf__triggers azf__triggers;
/* Starts one thread per queue- or blob-triggered function of app that can run; a
 * function whose connection or path is wrong is reported through log and skipped.
 * state_dir keeps the blob receipts (created when needed). *out NULL when there is
 * nothing to run. */
int azf__triggers_start(azf__triggers **out, azf_app *app, azf__bindings *b, const char *state_dir,
                        azf__fire_fn fire, void *runner, azf__log_fn log);
/* Asks the threads to stop (no new invocations; returns at once). */
void azf__triggers_stop(azf__triggers *t);
/* Stops the threads and waits for them without waiting for the invocations they
 * started: before the app closes, so that no thread uses its functions after. */
void azf__triggers_join(azf__triggers *t);
/* Stops, waits for the threads and frees. NULL is a no-op. */
void azf__triggers_free(azf__triggers *t);

/* The trigger metadata of a blob (BlobTrigger, Uri, Properties, Metadata and the path's
 * tokens), as the host gives it; owned, NULL without memory. */
azf_value_map *azf__blob_trigger_metadata(azf__storage *st, const char *container,
                                          const azf__blob_props *p, const cJSON *tokens);

/* ---- the storage emulator (emulator.c) ---- */
typedef struct azf__emulator azf__emulator;
/* 1 when something listens on one of the emulator's ports (127.0.0.1:10000-10002). */
int azf__emulator_running(void);
/* Starts Azurite on those ports with its data in state_dir/azurite and its output in
 * state_dir/azurite.log, as a child of the caller that dies with it (even by SIGKILL).
 * The executable is $AZFUNC_AZURITE, the one scripts/setup.sh installs, or azurite on
 * PATH. Returns once it runs; azf__emulator_await waits until it listens. */
int azf__emulator_launch(azf__emulator **out, const char *state_dir, azf__errmsg *err);
/* Waits (30 s at most) until Azurite process pid listens on all three ports. */
int azf__emulator_await(int pid, const char *state_dir, azf__errmsg *err);
/* Launch and await. */
int azf__emulator_start(azf__emulator **out, const char *state_dir, azf__errmsg *err);
/* Its pid (-1 when NULL or reaped). */
int azf__emulator_pid(const azf__emulator *e);
/* 1 when it has exited (it is reaped then). */
int azf__emulator_exited(azf__emulator *e);
/* SIGTERM, then SIGKILL after 10 s. NULL is a no-op. */
void azf__emulator_stop(azf__emulator *e);

/* The base64 text of data (owned), as queue messages are encoded. */
char *azf__base64(const void *data, size_t len);
/* Decodes base64 text into *out (owned; NUL-terminated); -1 when it is not base64. */
int azf__unbase64(const char *text, azf_buf *out);

#endif
