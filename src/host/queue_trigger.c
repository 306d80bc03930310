/* The queue trigger, as the host's queue listener runs it: get up to batchSize
 * messages hidden for ten minutes, renew that lease at half-time while the function
 * runs, fetch the next batch once no more than newBatchThreshold are running, back off
 * (randomised, doubling from 100 ms to maxPollingInterval) while the queue is empty;
 * delete a message on success; on failure make it visible again after
 * visibilityTimeout, or move it to <queue>-poison once its DequeueCount reaches
 * maxDequeueCount. The message is base64 unless messageEncoding is none. */
#include "host/triggers_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long a message being processed stays hidden: the host's 10 minutes, renewed at
 * half-time; AZFUNC_QUEUE_LEASE_SECONDS (2-600) shortens it, for tests of the renewal. */
static int lease_seconds(void)
{
    const char *v = getenv("AZFUNC_QUEUE_LEASE_SECONDS");
    int s = v ? atoi(v) : 0;
    return s >= 2 && s <= 600 ? s : 600;
}
#define LEASE_S lease_seconds()
#define MIN_POLL_MS 100
#define STOP_WAIT_S 60 /* how long a stopping listener waits for its invocations */

typedef struct pending {
    listener *l;
    azf__queue_message m;
    int settled, succeeded;
    time_t renew_at;
    struct pending *next;
} pending;

typedef struct qstate {
    char *queue, *poison;
    pending *running;
    char last_error[AZF__ERRMSG_SIZE];
} qstate;

static void free_state(void *p)
{
    qstate *q = p;
    if (!q)
        return;
    azf__free(q->queue);
    azf__free(q->poison);
    azf__free(q);
}

int azf__queue_listener_init(listener *l, const cJSON *bj)
{
    const cJSON *name = cJSON_GetObjectItem(bj, "queueName");
    azf__errmsg err = {{0}};
    qstate *q = azf__calloc(1, sizeof *q);
    if (!q)
        return AZF_E_NOMEM;
    l->state = q, l->free_state = free_state;
    int rc = cJSON_IsString(name) ? azf__expr_resolve(name->valuestring, NULL, &q->queue, &err)
                                  : azf__err(&err, AZF_E_INVALID, "the trigger has no queueName");
    if (rc == 0 && !(q->poison = azf__asprintf("%s-poison", q->queue)))
        rc = azf__err(&err, AZF_E_NOMEM, "out of memory");
    if (rc != 0)
        azf__trigger_log(l->t, AZF_LOG_ERROR, "Function '%s' cannot listen: %s",
                         azf_function_name(l->fn), err.text);
    return rc;
}

/* Called on the runner's loop thread: record the outcome, wake the listener. */
static void on_settled(int succeeded, void *arg)
{
    pending *p = arg;
    azf__triggers *t = p->l->t;
    pthread_mutex_lock(&t->mu);
    p->settled = 1;
    p->succeeded = succeeded;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void report(listener *l, int rc, const char *what, const azf__errmsg *err)
{
    qstate *q = l->state;
    /* print a failing poll once, not every poll */
    if (rc != 0 && strcmp(q->last_error, err->text) != 0) {
        azf__trigger_log(l->t, AZF_LOG_WARNING, "Queue trigger '%s' (queue '%s'): %s: %s",
                         azf_function_name(l->fn), q->queue, what, err->text);
        snprintf(q->last_error, sizeof q->last_error, "%s", err->text);
    } else if (rc == 0) {
        q->last_error[0] = '\0';
    }
}

static void to_poison(listener *l, azf__queue_message *m)
{
    qstate *q = l->state;
    const azf__queue_options *o = azf__bindings_queue_options(l->t->b);
    azf__errmsg err = {{0}};
    azf__trigger_log(l->t, AZF_LOG_WARNING,
                     "Message has reached MaxDequeueCount of %d. Moving message to queue '%s'.",
                     o->max_dequeue_count, q->poison);
    int rc = azf__queue_create(l->st, q->poison, &err);
    rc = rc ? rc : azf__queue_put(l->st, q->poison, m->text, 0, 0, &err);
    rc = rc ? rc : azf__queue_delete(l->st, q->queue, m, &err);
    if (rc != 0)
        azf__trigger_log(l->t, AZF_LOG_ERROR, "Cannot move message '%s' to '%s': %s", m->id,
                         q->poison, err.text);
}

/* After the invocation: delete, release for a retry, or poison. */
static void complete(listener *l, pending *p)
{
    qstate *q = l->state;
    const azf__queue_options *o = azf__bindings_queue_options(l->t->b);
    azf__errmsg err = {{0}};
    if (p->succeeded < 0) { /* never ran (shutdown): visible again at once, no retry used */
        if (azf__queue_update(l->st, q->queue, &p->m, 0, &err) != 0)
            azf__trigger_log(l->t, AZF_LOG_DEBUG, "Unable to release queue message '%s': %s",
                             p->m.id, err.text);
    } else if (p->succeeded) {
        if (azf__queue_delete(l->st, q->queue, &p->m, &err) != 0)
            azf__trigger_log(l->t, AZF_LOG_DEBUG, "Unable to delete queue message '%s': %s",
                             p->m.id, err.text);
    } else if (p->m.dequeue_count >= o->max_dequeue_count) {
        to_poison(l, &p->m);
    } else if (azf__queue_update(l->st, q->queue, &p->m, (int)(o->visibility_ms / 1000), &err) !=
               0) {
        azf__trigger_log(l->t, AZF_LOG_DEBUG, "Unable to release queue message '%s': %s", p->m.id,
                         err.text);
    }
}

static azf_value_map *metadata(const azf__queue_message *m, const char *text)
{
    azf_value_map *md = NULL;
    azf_value *v = NULL;
    if (azf_value_map_new(&md) != 0)
        return NULL;
    int rc = 0;
#define SET_STRING(key, s)                                                                         \
    rc = rc ? rc : azf_value_new_string(&v, s);                                                    \
    rc = rc ? rc : azf_value_map_set(md, key, v);
#define SET_TIME(key, s)                                                                           \
    do {                                                                                           \
        char json[48];                                                                             \
        snprintf(json, sizeof json, "\"%s\"", s);                                                  \
        rc = rc ? rc : azf_value_new_data(&v, AZF_VALUE_JSON, json, strlen(json));                 \
        rc = rc ? rc : azf_value_map_set(md, key, v);                                              \
    } while (0)
    SET_STRING("Id", m->id);
    SET_STRING("PopReceipt", m->pop_receipt ? m->pop_receipt : "");
    SET_STRING("QueueTrigger", text);
    rc = rc ? rc : azf_value_new_int(&v, m->dequeue_count);
    rc = rc ? rc : azf_value_map_set(md, "DequeueCount", v);
    SET_TIME("InsertionTime", m->insertion_time);
    SET_TIME("ExpirationTime", m->expiration_time);
    SET_TIME("NextVisibleTime", m->next_visible_time);
#undef SET_STRING
#undef SET_TIME
    if (rc != 0) {
        azf_value_map_free(md);
        return NULL;
    }
    return md;
}

/* Hands one message to the runner; 0 when an invocation will settle it. */
static int fire(listener *l, pending *p)
{
    const azf__queue_options *o = azf__bindings_queue_options(l->t->b);
    azf_buf decoded = AZF_BUF_INIT;
    const char *text = p->m.text;
    size_t len = strlen(text);
    if (o->base64) {
        if (azf__unbase64(text, &decoded) != 0) {
            azf__trigger_log(l->t, AZF_LOG_ERROR,
                             "Message '%s' on queue '%s' is not base64, as "
                             "extensions.queues.messageEncoding expects",
                             p->m.id, ((qstate *)l->state)->queue);
            azf_buf_dispose(&decoded);
            return -1;
        }
        text = decoded.ptr, len = decoded.size;
    }
    azf_value *input = NULL;
    azf_value_map *md = NULL;
    int rc = azf_value_new_data(&input, AZF_VALUE_STRING, text, len);
    if (rc == 0 && !(md = metadata(&p->m, text)))
        rc = AZF_E_NOMEM;
    azf_buf_dispose(&decoded);
    if (rc != 0) {
        azf_value_free(input);
        return rc;
    }
    char reason[160];
    snprintf(reason, sizeof reason, "New queue message detected on '%s'.",
             ((qstate *)l->state)->queue);
    return l->t->fire(l->t->runner, l->fn, input, md, reason, on_settled, p);
}

static long backoff(long current, long max)
{
    long next = current * 2;
    next = next > max ? max : next;
    /* randomised by up to 20% so listeners do not poll in step */
    long jitter = next / 5 > 0 ? rand() % (next / 5 + 1) : 0;
    return next - jitter < MIN_POLL_MS ? MIN_POLL_MS : next - jitter;
}

/* Renews the leases that are due and completes the settled messages; mu held. */
static void tend(listener *l)
{
    qstate *q = l->state;
    azf__triggers *t = l->t;
    time_t now = time(NULL);
    for (pending **pp = &q->running; *pp;) {
        pending *p = *pp;
        if (p->settled) {
            *pp = p->next;
            l->inflight--;
            pthread_mutex_unlock(&t->mu);
            complete(l, p);
            azf__free(p->m.id), azf__free(p->m.pop_receipt), azf__free(p->m.text);
            azf__free(p);
            pthread_mutex_lock(&t->mu);
            continue;
        }
        if (now >= p->renew_at) {
            azf__queue_message m = p->m; /* the receipt changes: update a copy, then swap */
            m.pop_receipt = azf__strdup(p->m.pop_receipt);
            pthread_mutex_unlock(&t->mu);
            azf__errmsg err = {{0}};
            int rc = m.pop_receipt ? azf__queue_update(l->st, q->queue, &m, LEASE_S, &err) : -1;
            pthread_mutex_lock(&t->mu);
            if (rc == 0) {
                azf__free(p->m.pop_receipt);
                p->m.pop_receipt = m.pop_receipt;
                memcpy(p->m.next_visible_time, m.next_visible_time, sizeof m.next_visible_time);
            } else {
                azf__free(m.pop_receipt);
            }
            p->renew_at = now + (rc == 0 || LEASE_S < 120 ? LEASE_S / 2 : 60);
        }
        pp = &p->next;
    }
}

void *azf__queue_listener_run(void *arg)
{
    listener *l = arg;
    qstate *q = l->state;
    azf__triggers *t = l->t;
    const azf__queue_options *o = azf__bindings_queue_options(t->b);
    long delay = MIN_POLL_MS;
    time_t stop_deadline = 0;
    srand((unsigned)time(NULL) ^ (unsigned)(size_t)l);
    pthread_mutex_lock(&t->mu);
    for (;;) {
        tend(l);
        if (t->stop) {
            if (!stop_deadline)
                stop_deadline = time(NULL) + STOP_WAIT_S;
            if (l->inflight == 0 || t->stop == 2 || time(NULL) >= stop_deadline)
                break;
            azf__trigger_wait(t, 1000);
            continue;
        }
        if (l->inflight > o->new_batch_threshold) {
            azf__trigger_wait(t, 1000); /* woken when one settles; 1 s for renewals */
            continue;
        }
        pthread_mutex_unlock(&t->mu);
        azf__queue_message *msgs = NULL;
        size_t n = 0;
        azf__errmsg err = {{0}};
        int rc = azf__queue_get(l->st, q->queue, o->batch_size, LEASE_S, &msgs, &n, &err);
        if (rc != AZF_E_NOTFOUND) /* a queue that does not exist yet is just empty */
            report(l, rc, "cannot get messages", &err);
        pthread_mutex_lock(&t->mu);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            pending *p = azf__calloc(1, sizeof *p);
            if (!p)
                break;
            p->l = l;
            p->m = msgs[i];
            memset(&msgs[i], 0, sizeof msgs[i]); /* moved */
            p->renew_at = time(NULL) + LEASE_S / 2;
            pthread_mutex_unlock(&t->mu);
            int fired = -1;
            if (p->m.dequeue_count > o->max_dequeue_count)
                to_poison(l, &p->m);
            else
                fired = fire(l, p);
            pthread_mutex_lock(&t->mu);
            if (fired == 0) {
                p->next = q->running;
                q->running = p;
                l->inflight++;
            } else {
                if (p->m.dequeue_count <= o->max_dequeue_count) { /* a failure, not run */
                    pthread_mutex_unlock(&t->mu);
                    complete(l, p);
                    pthread_mutex_lock(&t->mu);
                }
                azf__free(p->m.id), azf__free(p->m.pop_receipt), azf__free(p->m.text);
                azf__free(p);
            }
        }
        azf__queue_messages_free(msgs, n);
        if (rc == 0 && n > 0) {
            delay = MIN_POLL_MS;
            continue;
        }
        delay = backoff(delay, o->max_polling_ms);
        if (!t->stop)
            azf__trigger_wait(t, delay);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}
