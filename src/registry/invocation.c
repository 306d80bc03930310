/* Invocations: the object a starter hands to a function's handler, completed exactly once. */
#include "registry/registry_internal.h"

#include <stdio.h>
#include <string.h>

struct azf_invocation {
    pthread_mutex_t lock;
    pthread_cond_t ended; /* `finished` set: azf_invocation_run waits for it */
    int refs;
    int state;
    int finished; /* the completion callback has returned */
    int cancel_requested, cancel_called;
    const azf_function *fn;
    char *id;
    azf_value_map *inputs, *trigger_metadata, *trace_attributes, *outputs;
    azf_value *return_value;
    char *trace_parent, *trace_state;
    int has_retry;
    int32_t retry_count, max_retry_count;
    char *retry_message, *retry_stack;
    char *error_message, *error_stack; /* may hold NUL (azf_invocation_fail_len) */
    size_t error_message_len, error_stack_len;
    azf_complete_fn on_complete;
    void *on_complete_ud;
    /* Held while a log record is delivered, and while the state leaves RUNNING, so
     * every accepted log reaches the starter before the completion callback runs. */
    pthread_mutex_t log_lock;
    azf_invocation_log_fn on_log;
    azf__invocation_log_len_fn on_log_len; /* the worker's: records keep their length */
    void *on_log_ud;
};

static void destroy(azf_invocation *inv)
{
    pthread_cond_destroy(&inv->ended);
    pthread_mutex_destroy(&inv->lock);
    pthread_mutex_destroy(&inv->log_lock);
    azf__free(inv->id);
    azf_value_map_free(inv->inputs);
    azf_value_map_free(inv->trigger_metadata);
    azf_value_map_free(inv->trace_attributes);
    azf_value_map_free(inv->outputs);
    azf_value_free(inv->return_value);
    azf__free(inv->trace_parent);
    azf__free(inv->trace_state);
    azf__free(inv->retry_message);
    azf__free(inv->retry_stack);
    azf__free(inv->error_message);
    azf__free(inv->error_stack);
    azf__free(inv);
}

static void unref(azf_invocation *inv)
{
    pthread_mutex_lock(&inv->lock);
    int left = --inv->refs;
    pthread_mutex_unlock(&inv->lock);
    if (left == 0)
        destroy(inv);
}

int azf_invocation_new(azf_invocation **out, const azf_function *fn, const char *invocation_id)
{
    if (!out || !fn || !invocation_id)
        return AZF_E_INVALID;
    azf_invocation *inv = azf__calloc(1, sizeof *inv);
    if (!inv)
        return AZF_E_NOMEM;
    if (pthread_mutex_init(&inv->lock, NULL)) {
        azf__free(inv);
        return AZF_E_NOMEM;
    }
    if (pthread_mutex_init(&inv->log_lock, NULL)) {
        pthread_mutex_destroy(&inv->lock);
        azf__free(inv);
        return AZF_E_NOMEM;
    }
    if (pthread_cond_init(&inv->ended, NULL)) {
        pthread_mutex_destroy(&inv->log_lock);
        pthread_mutex_destroy(&inv->lock);
        azf__free(inv);
        return AZF_E_NOMEM;
    }
    inv->refs = 1;
    inv->fn = fn;
    if (!(inv->id = azf__strdup(invocation_id)) || azf_value_map_new(&inv->inputs) ||
        azf_value_map_new(&inv->outputs) || !(inv->trace_parent = azf__strdup("")) ||
        !(inv->trace_state = azf__strdup("")) || !(inv->error_message = azf__strdup("")) ||
        !(inv->error_stack = azf__strdup(""))) {
        destroy(inv);
        return AZF_E_NOMEM;
    }
    *out = inv;
    return 0;
}

void azf_invocation_free(azf_invocation *inv)
{
    if (inv)
        unref(inv);
}

static int starter_check(const azf_invocation *inv)
{
    if (!inv)
        return AZF_E_INVALID;
    return inv->state == AZF_INVOCATION_NEW ? 0 : AZF_E_STATE;
}

int azf_invocation_set_input(azf_invocation *inv, const char *name, azf_value *v)
{
    int rc = starter_check(inv);
    if (rc)
        return rc;
    if (!name || !v)
        return AZF_E_INVALID;
    const azf_binding *b = azf_function_find_binding(inv->fn, name);
    if (!b || b->direction == AZF_DIRECTION_OUT)
        return AZF_E_NOTFOUND;
    return azf_value_map_set(inv->inputs, b->name, v);
}

int azf__invocation_put_input(azf_invocation *inv, const char *name, azf_value *v)
{
    int rc = starter_check(inv);
    if (rc)
        return rc;
    return name && v ? azf_value_map_set(inv->inputs, name, v) : AZF_E_INVALID;
}

int azf_invocation_set_trigger_metadata(azf_invocation *inv, azf_value_map *m)
{
    int rc = starter_check(inv);
    if (rc)
        return rc;
    if (!m)
        return AZF_E_INVALID;
    azf_value_map_free(inv->trigger_metadata);
    inv->trigger_metadata = m;
    return 0;
}

static int replace(char **dst, const char *s)
{
    char *c = azf__strdup(s ? s : "");
    if (!c)
        return AZF_E_NOMEM;
    azf__free(*dst);
    *dst = c;
    return 0;
}

int azf_invocation_set_trace_context(azf_invocation *inv, const char *trace_parent,
                                     const char *trace_state, azf_value_map *attributes)
{
    int rc = starter_check(inv);
    if (rc)
        return rc;
    char *tp = azf__strdup(trace_parent ? trace_parent : "");
    char *ts = azf__strdup(trace_state ? trace_state : "");
    if (!tp || !ts) {
        azf__free(tp);
        azf__free(ts);
        return AZF_E_NOMEM;
    }
    azf__free(inv->trace_parent);
    azf__free(inv->trace_state);
    inv->trace_parent = tp;
    inv->trace_state = ts;
    if (attributes) {
        azf_value_map_free(inv->trace_attributes);
        inv->trace_attributes = attributes;
    }
    return 0;
}

int azf_invocation_set_retry_context(azf_invocation *inv, int32_t retry_count,
                                     int32_t max_retry_count, const char *exception_message,
                                     const char *exception_stack_trace)
{
    int rc = starter_check(inv);
    if (rc)
        return rc;
    if ((rc = replace(&inv->retry_message, exception_message)) ||
        (rc = replace(&inv->retry_stack, exception_stack_trace)))
        return rc;
    inv->has_retry = 1;
    inv->retry_count = retry_count;
    inv->max_retry_count = max_retry_count;
    return 0;
}

int azf_invocation_set_on_complete(azf_invocation *inv, azf_complete_fn fn, void *user_data)
{
    int rc = starter_check(inv);
    if (rc)
        return rc;
    inv->on_complete = fn;
    inv->on_complete_ud = user_data;
    return 0;
}

/* Moves RUNNING -> final state once; the completion callback runs outside the lock, then
 * the running reference is dropped. */
static int finish(azf_invocation *inv, int state, const char *message, size_t mlen,
                  const char *stack, size_t slen)
{
    if (!inv)
        return AZF_E_INVALID;
    char *m = NULL, *s = NULL;
    if (state == AZF_INVOCATION_FAILED) {
        m = azf__strndup(message ? message : "", message ? mlen : 0);
        s = azf__strndup(stack ? stack : "", stack ? slen : 0);
        if (!m || !s) {
            /* Keep the exactly-once promise even without memory: fail with no text. */
            azf__free(m);
            azf__free(s);
            m = s = NULL;
        }
    }
    pthread_mutex_lock(&inv->log_lock);
    pthread_mutex_lock(&inv->lock);
    if (inv->state != AZF_INVOCATION_RUNNING) {
        pthread_mutex_unlock(&inv->lock);
        pthread_mutex_unlock(&inv->log_lock);
        azf__free(m);
        azf__free(s);
        return AZF_E_STATE;
    }
    inv->state = state;
    pthread_mutex_unlock(&inv->log_lock);
    if (state == AZF_INVOCATION_FAILED) {
        if (m) {
            azf__free(inv->error_message);
            azf__free(inv->error_stack);
            inv->error_message = m;
            inv->error_stack = s;
            inv->error_message_len = message ? mlen : 0;
            inv->error_stack_len = stack ? slen : 0;
        }
    }
    if (state != AZF_INVOCATION_SUCCEEDED) {
        /* Outputs of a failed or cancelled invocation are not sent. */
        azf__value_map_clear(inv->outputs);
        azf_value_free(inv->return_value);
        inv->return_value = NULL;
    }
    pthread_mutex_unlock(&inv->lock);
    if (inv->on_complete)
        inv->on_complete(inv, inv->on_complete_ud);
    pthread_mutex_lock(&inv->lock);
    inv->finished = 1;
    pthread_cond_broadcast(&inv->ended);
    pthread_mutex_unlock(&inv->lock);
    unref(inv);
    return 0;
}

int azf_invocation_set_on_log(azf_invocation *inv, azf_invocation_log_fn fn, void *user_data)
{
    int rc = starter_check(inv);
    if (rc)
        return rc;
    inv->on_log = fn;
    inv->on_log_len = NULL;
    inv->on_log_ud = user_data;
    return 0;
}

int azf__invocation_set_on_log_len(azf_invocation *inv, azf__invocation_log_len_fn fn,
                                   void *user_data)
{
    int rc = starter_check(inv);
    if (rc)
        return rc;
    inv->on_log = NULL;
    inv->on_log_len = fn;
    inv->on_log_ud = user_data;
    return 0;
}

int azf_invocation_log(azf_invocation *inv, int level, const char *category, const char *message)
{
    return azf_invocation_log_len(inv, level, category, message, message ? strlen(message) : 0);
}

int azf_invocation_log_len(azf_invocation *inv, int level, const char *category,
                           const char *message, size_t message_len)
{
    if (!inv || !message)
        return AZF_E_INVALID;
    pthread_mutex_lock(&inv->log_lock);
    pthread_mutex_lock(&inv->lock);
    int state = inv->state;
    pthread_mutex_unlock(&inv->lock);
    if (state != AZF_INVOCATION_RUNNING) {
        pthread_mutex_unlock(&inv->log_lock);
        return AZF_E_STATE;
    }
    /* A record holding NUL reaches a NUL-terminated callback as its text up to the NUL. */
    if (inv->on_log)
        inv->on_log(inv, level, category ? category : "", message, inv->on_log_ud);
    else if (inv->on_log_len)
        inv->on_log_len(inv, level, category ? category : "", message, message_len, inv->on_log_ud);
    pthread_mutex_unlock(&inv->log_lock);
    return 0;
}

int azf_invocation_complete(azf_invocation *inv)
{
    return finish(inv, AZF_INVOCATION_SUCCEEDED, NULL, 0, NULL, 0);
}

int azf_invocation_fail(azf_invocation *inv, const char *message, const char *stack_trace)
{
    return finish(inv, AZF_INVOCATION_FAILED, message, message ? strlen(message) : 0, stack_trace,
                  stack_trace ? strlen(stack_trace) : 0);
}

int azf_invocation_fail_len(azf_invocation *inv, const char *message, size_t message_len,
                            const char *stack_trace, size_t stack_trace_len)
{
    return finish(inv, AZF_INVOCATION_FAILED, message, message_len, stack_trace, stack_trace_len);
}

int azf_invocation_complete_cancelled(azf_invocation *inv)
{
    return finish(inv, AZF_INVOCATION_CANCELLED, NULL, 0, NULL, 0);
}

/* start and run: `here` uses the handler's run callback when it has one. */
static int begin(azf_invocation *inv, int here)
{
    if (!inv)
        return AZF_E_INVALID;
    pthread_mutex_lock(&inv->lock);
    if (inv->state != AZF_INVOCATION_NEW) {
        pthread_mutex_unlock(&inv->lock);
        return AZF_E_STATE;
    }
    inv->state = AZF_INVOCATION_RUNNING;
    inv->refs++; /* held until completion */
    pthread_mutex_unlock(&inv->lock);
    const azf_function *fn = inv->fn;
    char *msg = NULL;
    if (fn->load_error) {
        azf_invocation_fail(inv, fn->load_error, "");
        return 0;
    }
    if (fn->disabled || !fn->handler.invoke) {
        msg = azf__asprintf(fn->disabled ? "FunctionDisabledError: the function '%s' is disabled"
                                         : "FunctionLoadError: the function '%s' has no handler",
                            fn->name);
        azf_invocation_fail(inv, msg ? msg : "FunctionLoadError", "");
        azf__free(msg);
        return 0;
    }
    /* Our own reference keeps inv alive if the handler completes and the starter frees
     * it before invoke returns. */
    pthread_mutex_lock(&inv->lock);
    inv->refs++;
    pthread_mutex_unlock(&inv->lock);
    azf_invoke_fn call = here && fn->handler.run ? fn->handler.run : fn->handler.invoke;
    int rc = call(inv, fn->user_data);
    if (rc) {
        msg = azf__asprintf("the handler refused the invocation: %s", azf_strerror(rc));
        /* AZF_E_STATE if the handler completed it anyway. */
        azf_invocation_fail(inv, msg ? msg : "the handler refused the invocation", "");
        azf__free(msg);
    }
    unref(inv);
    return 0;
}

int azf_invocation_start(azf_invocation *inv)
{
    return begin(inv, 0);
}

int azf_invocation_run(azf_invocation *inv)
{
    int rc = begin(inv, 1);
    if (rc)
        return rc;
    pthread_mutex_lock(&inv->lock);
    while (!inv->finished)
        pthread_cond_wait(&inv->ended, &inv->lock);
    pthread_mutex_unlock(&inv->lock);
    return 0;
}

int azf_invocation_cancel(azf_invocation *inv)
{
    if (!inv)
        return AZF_E_INVALID;
    pthread_mutex_lock(&inv->lock);
    if (inv->state != AZF_INVOCATION_RUNNING) {
        pthread_mutex_unlock(&inv->lock);
        return AZF_E_STATE;
    }
    inv->cancel_requested = 1;
    int call = !inv->cancel_called && inv->fn->handler.cancel;
    inv->cancel_called = 1;
    if (call)
        inv->refs++;
    pthread_mutex_unlock(&inv->lock);
    if (call) {
        inv->fn->handler.cancel(inv, inv->fn->user_data);
        unref(inv);
    }
    return 0;
}

int azf_invocation_cancel_requested(const azf_invocation *inv)
{
    if (!inv)
        return 0;
    pthread_mutex_lock((pthread_mutex_t *)&inv->lock);
    int r = inv->cancel_requested;
    pthread_mutex_unlock((pthread_mutex_t *)&inv->lock);
    return r;
}

const azf_function *azf_invocation_function(const azf_invocation *inv)
{
    return inv ? inv->fn : NULL;
}
const char *azf_invocation_id(const azf_invocation *inv)
{
    return inv ? inv->id : NULL;
}
const azf_value *azf_invocation_input(const azf_invocation *inv, const char *name)
{
    if (!inv || !name)
        return NULL;
    const azf_binding *b = azf_function_find_binding(inv->fn, name);
    return azf_value_map_get(inv->inputs, b ? b->name : name);
}
const azf_value_map *azf_invocation_inputs(const azf_invocation *inv)
{
    return inv ? inv->inputs : NULL;
}
const azf_value_map *azf_invocation_trigger_metadata(const azf_invocation *inv)
{
    return inv ? inv->trigger_metadata : NULL;
}
const char *azf_invocation_trace_parent(const azf_invocation *inv)
{
    return inv ? inv->trace_parent : NULL;
}
const char *azf_invocation_trace_state(const azf_invocation *inv)
{
    return inv ? inv->trace_state : NULL;
}
const azf_value_map *azf_invocation_trace_attributes(const azf_invocation *inv)
{
    return inv ? inv->trace_attributes : NULL;
}
int azf_invocation_retry_context(const azf_invocation *inv, int32_t *retry_count,
                                 int32_t *max_retry_count, const char **exception_message,
                                 const char **exception_stack_trace)
{
    if (!inv || !inv->has_retry)
        return 0;
    if (retry_count)
        *retry_count = inv->retry_count;
    if (max_retry_count)
        *max_retry_count = inv->max_retry_count;
    if (exception_message)
        *exception_message = inv->retry_message;
    if (exception_stack_trace)
        *exception_stack_trace = inv->retry_stack;
    return 1;
}

static int running(azf_invocation *inv)
{
    pthread_mutex_lock(&inv->lock);
    int r = inv->state == AZF_INVOCATION_RUNNING;
    pthread_mutex_unlock(&inv->lock);
    return r;
}

int azf_invocation_set_output(azf_invocation *inv, const char *name, azf_value *v)
{
    if (!inv || !name || !v)
        return AZF_E_INVALID;
    if (!running(inv))
        return AZF_E_STATE;
    const azf_binding *b = azf_function_find_binding(inv->fn, name);
    if (!b || b->direction == AZF_DIRECTION_IN || strcmp(b->name, "$return") == 0)
        return AZF_E_NOTFOUND;
    if (!azf_value_kind_is_output(azf_value_kind(v)))
        return AZF_E_UNSUPPORTED;
    return azf_value_map_set(inv->outputs, b->name, v);
}

int azf_invocation_set_return(azf_invocation *inv, azf_value *v)
{
    if (!inv || !v)
        return AZF_E_INVALID;
    if (!running(inv))
        return AZF_E_STATE;
    if (!azf_value_kind_is_output(azf_value_kind(v)))
        return AZF_E_UNSUPPORTED;
    azf_value_free(inv->return_value);
    inv->return_value = v;
    return 0;
}

int azf_invocation_status(const azf_invocation *inv)
{
    if (!inv)
        return AZF_E_INVALID;
    pthread_mutex_lock((pthread_mutex_t *)&inv->lock);
    int s = inv->state;
    pthread_mutex_unlock((pthread_mutex_t *)&inv->lock);
    return s;
}
const azf_value_map *azf_invocation_outputs(const azf_invocation *inv)
{
    return inv ? inv->outputs : NULL;
}
const azf_value *azf_invocation_return_value(const azf_invocation *inv)
{
    return inv ? inv->return_value : NULL;
}
const char *azf_invocation_error_message(const azf_invocation *inv)
{
    return inv ? inv->error_message : NULL;
}
const char *azf_invocation_error_stack(const azf_invocation *inv)
{
    return inv ? inv->error_stack : NULL;
}
const char *azf__invocation_error_text(const azf_invocation *inv, size_t *message_len,
                                       const char **stack, size_t *stack_len)
{
    *message_len = inv->error_message_len;
    *stack = inv->error_stack;
    *stack_len = inv->error_stack_len;
    return inv->error_message;
}
