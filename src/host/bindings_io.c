/* The input and output step around an invocation, as the host does it: blob and table
 * inputs are read before the call; queue, blob and table outputs are written after a
 * successful one. Storage calls block, so the step runs on its own I/O threads and
 * never on the runner's loop. An input that cannot be supplied (no emulator for its
 * service) fails the invocation before the call, naming the binding, its type and why. */
#include "host/bindings.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define IO_THREADS 2

typedef struct job {
    azf__bindings *b;
    azf_invocation *inv;
    azf__bindings_done_fn done;
    void *user_data;
    cJSON *data; /* binding data, from the trigger */
    int outputs; /* 0: inputs then start; 1: write outputs then done */
    struct job *next;
} job;

typedef struct account {
    char *connection;
    azf__storage *st;
    struct account *next;
} account;

struct azf__bindings {
    azf__queue_options queues;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *head, *tail;
    int stopping, running;
    pthread_t threads[IO_THREADS];
    account *accounts;
};

/* ---- base64 (OpenSSL's encoder) ---- */

char *azf__base64(const void *data, size_t len)
{
    char *out = azf__malloc(4 * ((len + 2) / 3) + 1);
    if (out)
        EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

int azf__unbase64(const char *text, azf_buf *out)
{
    size_t n = strlen(text);
    if (n % 4 != 0 || azf_buf_grow(out, n / 4 * 3 + 1) != 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)text[i]) || text[i] == '+' || text[i] == '/' ||
              (text[i] == '=' && i >= n - 2)))
            return -1;
    int len = EVP_DecodeBlock((unsigned char *)out->ptr, (const unsigned char *)text, (int)n);
    if (len < 0)
        return -1;
    while (n > 0 && text[n - 1] == '=')
        n--, len--;
    out->size = (size_t)len;
    out->ptr[len] = '\0';
    return 0;
}

/* ---- options and accounts ---- */

static int duration_ms(const cJSON *v, long *out)
{
    int h, m;
    double s;
    if (cJSON_IsString(v) && sscanf(v->valuestring, "%d:%d:%lf", &h, &m, &s) == 3 && h >= 0 &&
        m >= 0 && s >= 0) {
        *out = (long)((h * 3600 + m * 60) * 1000L + (long)(s * 1000));
        return 0;
    }
    return -1;
}

static int read_queue_options(azf__queue_options *q, const char *dir, azf__errmsg *err)
{
    q->batch_size = 16;
    q->max_dequeue_count = 5;
    q->max_polling_ms = 2000; /* the host's default in development, as under Core Tools */
    q->visibility_ms = 0;
    q->base64 = 1;
    q->new_batch_threshold = -1;
    char *path = azf__asprintf("%s/host.json", dir);
    FILE *f = path ? fopen(path, "rb") : NULL;
    azf__free(path);
    cJSON *root = NULL;
    if (f) {
        azf_buf text = AZF_BUF_INIT;
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0 && text.size < (16u << 20))
            azf_buf_append(&text, chunk, n);
        fclose(f);
        root = text.ptr ? cJSON_ParseWithLength(text.ptr, text.size) : NULL;
        azf_buf_dispose(&text);
    }
    const cJSON *qs = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "extensions"), "queues");
    int rc = 0;
    const cJSON *v;
    if ((v = cJSON_GetObjectItem(qs, "batchSize")) &&
        (!cJSON_IsNumber(v) || (q->batch_size = v->valueint) < 1 || q->batch_size > 32))
        rc = azf__err(err, AZF_E_PARSE, "host.json: extensions.queues.batchSize must be 1..32");
    if ((v = cJSON_GetObjectItem(qs, "maxDequeueCount")) &&
        (!cJSON_IsNumber(v) || (q->max_dequeue_count = v->valueint) < 1))
        rc = azf__err(err, AZF_E_PARSE,
                      "host.json: extensions.queues.maxDequeueCount must be a positive number");
    if ((v = cJSON_GetObjectItem(qs, "newBatchThreshold")) &&
        (!cJSON_IsNumber(v) || (q->new_batch_threshold = v->valueint) < 0))
        rc = azf__err(err, AZF_E_PARSE,
                      "host.json: extensions.queues.newBatchThreshold must be 0 or more");
    if ((v = cJSON_GetObjectItem(qs, "maxPollingInterval")) &&
        (duration_ms(v, &q->max_polling_ms) != 0 || q->max_polling_ms < 100))
        rc = azf__err(err, AZF_E_PARSE,
                      "host.json: extensions.queues.maxPollingInterval must be a time span "
                      "(\"hh:mm:ss\") of at least 00:00:00.1");
    if ((v = cJSON_GetObjectItem(qs, "visibilityTimeout")) &&
        duration_ms(v, &q->visibility_ms) != 0)
        rc = azf__err(err, AZF_E_PARSE,
                      "host.json: extensions.queues.visibilityTimeout must be a time span "
                      "(\"hh:mm:ss\")");
    if ((v = cJSON_GetObjectItem(qs, "messageEncoding"))) {
        if (cJSON_IsString(v) && strcasecmp(v->valuestring, "none") == 0)
            q->base64 = 0;
        else if (!cJSON_IsString(v) || strcasecmp(v->valuestring, "base64") != 0)
            rc = azf__err(err, AZF_E_PARSE,
                          "host.json: extensions.queues.messageEncoding must be base64 or none");
    }
    if (q->new_batch_threshold < 0) { /* the host's default: half a batch per processor */
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        q->new_batch_threshold = q->batch_size / 2 * (int)(cpus > 0 ? cpus : 1);
    }
    cJSON_Delete(root);
    return rc;
}

const char *azf__bindings_connection_string(const azf_binding *binding, const char **setting)
{
    cJSON *j = cJSON_Parse(azf_binding_json(binding));
    const cJSON *c = cJSON_GetObjectItem(j, "connection");
    static __thread char name[256];
    snprintf(name, sizeof name, "%s",
             cJSON_IsString(c) && *c->valuestring ? c->valuestring : "AzureWebJobsStorage");
    cJSON_Delete(j);
    if (setting)
        *setting = name;
    const char *v = getenv(name);
    if (!v || !*v) {
        char prefixed[300];
        snprintf(prefixed, sizeof prefixed, "AzureWebJobs%s", name);
        v = getenv(prefixed);
    }
    return v && *v ? v : NULL;
}

azf__storage *azf__bindings_account(azf__bindings *b, const azf_binding *binding, azf__errmsg *err)
{
    const char *setting;
    const char *cs = azf__bindings_connection_string(binding, &setting);
    if (!cs) {
        azf__err(err, AZF_E_NOTFOUND,
                 "the connection setting '%s' is not set (in local.settings.json Values or the "
                 "environment)",
                 setting);
        return NULL;
    }
    pthread_mutex_lock(&b->mu);
    account *a = b->accounts;
    while (a && strcmp(a->connection, cs) != 0)
        a = a->next;
    if (!a && (a = azf__calloc(1, sizeof *a))) {
        if (!(a->connection = azf__strdup(cs)) || azf__storage_new(&a->st, cs, err) != 0) {
            azf__free(a->connection);
            azf__free(a);
            a = NULL;
        } else {
            a->next = b->accounts;
            b->accounts = a;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return a ? a->st : NULL;
}

const azf__queue_options *azf__bindings_queue_options(const azf__bindings *b)
{
    return &b->queues;
}

/* ---- inputs ---- */

static cJSON *binding_json(const azf_binding *bd)
{
    return cJSON_Parse(azf_binding_json(bd));
}

static const char *prop(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItem(j, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Why no local run can supply an input of this type, or NULL when we can. */
static const char *unsupplied(const char *type)
{
    static const struct {
        const char *type, *why;
    } table[] = {
        {"cosmosDB", "Cosmos DB has no local emulator that azfunc start runs"},
        {"sql", "Azure SQL has no local emulator that azfunc start runs"},
        {"mysql", "MySQL inputs are not run by azfunc start"},
        {"eventHub", "Event Hubs has no local emulator that azfunc start runs"},
        {"serviceBus", "Service Bus has no local emulator that azfunc start runs"},
        {"durableClient", "Durable Functions needs the Durable Task extension of the host"},
        {"orchestrationClient", "Durable Functions needs the Durable Task extension of the host"},
    };
    if (strcasecmp(type, "blob") == 0 || strcasecmp(type, "table") == 0)
        return NULL;
    for (size_t i = 0; i < sizeof table / sizeof *table; i++)
        if (strcasecmp(type, table[i].type) == 0)
            return table[i].why;
    return "azfunc start supplies only blob and table inputs";
}

static int blob_path(const cJSON *bj, const cJSON *data, char **container, char **name,
                     azf__errmsg *err)
{
    const char *path = prop(bj, "path");
    char *resolved = NULL;
    if (!path)
        return azf__err(err, AZF_E_INVALID, "the binding has no \"path\"");
    int rc = azf__expr_resolve(path, data, &resolved, err);
    if (rc != 0)
        return rc;
    char *slash = strchr(resolved, '/');
    if (!slash || !slash[1] || slash == resolved) {
        azf__err(err, AZF_E_INVALID, "the blob path '%s' is not \"container/blob\"", resolved);
        azf__free(resolved);
        return AZF_E_INVALID;
    }
    *container = azf__strndup(resolved, (size_t)(slash - resolved));
    *name = azf__strdup(slash + 1);
    azf__free(resolved);
    return *container && *name ? 0 : azf__err(err, AZF_E_NOMEM, "out of memory");
}

int azf__deferred_binding(const cJSON *bj)
{
    return cJSON_IsTrue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(bj, "properties"), "SupportsDeferredBinding"));
}

int azf__blob_reference(const char *setting, const char *container, const char *name,
                        azf_value **out)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "Connection", setting);
    cJSON_AddStringToObject(c, "ContainerName", container);
    cJSON_AddStringToObject(c, "BlobName", name);
    char *text = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    int rc = text ? azf_value_new_model_binding_data(out, "1.0", "AzureStorageBlobs",
                                                     "application/json", text, strlen(text))
                  : AZF_E_NOMEM;
    cJSON_free(text);
    return rc;
}

static int blob_input(azf__storage *st, const azf_binding *bd, const cJSON *bj, const cJSON *data,
                      azf_value **out, azf__errmsg *err)
{
    char *container = NULL, *name = NULL;
    int rc = blob_path(bj, data, &container, &name, err);
    azf_buf content = AZF_BUF_INIT;
    if (rc == 0 && azf__deferred_binding(bj)) { /* an SDK type: the reference, not the bytes */
        const char *setting = NULL;
        azf__bindings_connection_string(bd, &setting);
        rc = azf__blob_reference(setting, container, name, out);
        azf__free(container);
        azf__free(name);
        return rc;
    }
    if (rc == 0)
        rc = azf__blob_get(st, container, name, &content, NULL, err);
    if (rc == AZF_E_NOTFOUND) { /* a missing blob binds as null, as the host does */
        rc = azf_value_new_null(out);
    } else if (rc == 0) {
        const char *dt = prop(bj, "dataType");
        int bytes = dt && (strcasecmp(dt, "binary") == 0 || strcasecmp(dt, "stream") == 0);
        rc = azf_value_new_data(out, bytes ? AZF_VALUE_BYTES : AZF_VALUE_STRING, content.ptr,
                                content.size);
    }
    azf_buf_dispose(&content);
    azf__free(container);
    azf__free(name);
    return rc;
}

static int table_input(azf__storage *st, const cJSON *bj, const cJSON *data, azf_value **out,
                       azf__errmsg *err)
{
    const char *table = prop(bj, "tableName"), *pk = prop(bj, "partitionKey"),
               *rk = prop(bj, "rowKey"), *filter = prop(bj, "filter");
    const cJSON *take = cJSON_GetObjectItem(bj, "take");
    char *t = NULL, *p = NULL, *r = NULL, *f = NULL, *json = NULL;
    int rc = table ? azf__expr_resolve(table, data, &t, err)
                   : azf__err(err, AZF_E_INVALID, "the binding has no \"tableName\"");
    if (rc == 0 && pk)
        rc = azf__expr_resolve(pk, data, &p, err);
    if (rc == 0 && rk)
        rc = azf__expr_resolve(rk, data, &r, err);
    if (rc == 0 && filter)
        rc = azf__expr_resolve(filter, data, &f, err);
    if (rc == 0 && p && r) {
        rc = azf__table_get(st, t, p, r, &json, err);
        if (rc == AZF_E_NOTFOUND)
            rc = azf_value_new_null(out);
        else if (rc == 0)
            rc = azf_value_new_data(out, AZF_VALUE_JSON, json, strlen(json));
    } else if (rc == 0) {
        /* a partition alone is a filter on it */
        char *pf = p ? azf__asprintf("PartitionKey eq '%s'%s%s%s", p, f ? " and (" : "", f ? f : "",
                                     f ? ")" : "")
                     : NULL;
        int n = cJSON_IsNumber(take)   ? take->valueint
                : cJSON_IsString(take) ? atoi(take->valuestring)
                                       : 0;
        rc = azf__table_query(st, t, pf ? pf : f, n, &json, err);
        if (rc == AZF_E_NOTFOUND) { /* no table yet: nothing matches */
            rc = azf_value_new_data(out, AZF_VALUE_JSON, "[]", 2);
        } else if (rc == 0) {
            rc = azf_value_new_data(out, AZF_VALUE_JSON, json, strlen(json));
        }
        azf__free(pf);
    }
    azf__free(t), azf__free(p), azf__free(r), azf__free(f), azf__free(json);
    return rc;
}

/* An admin invocation of a blob trigger names the blob ("container/name", as with Core
 * Tools): the step reads it and gives the function its content and metadata, as the
 * trigger would. A listener's invocation already has them (Properties). */
static int supply_blob_trigger(azf__bindings *b, azf_invocation *inv, azf__errmsg *err)
{
    const azf_function *fn = azf_invocation_function(inv);
    const azf_binding *trig = azf_function_trigger(fn);
    const azf_value_map *md = azf_invocation_trigger_metadata(inv);
    if (!trig || strcasecmp(azf_binding_type(trig), "blobTrigger") != 0 ||
        azf_value_map_get(md, "Properties"))
        return 0;
    const azf_value *in = azf_invocation_input(inv, azf_binding_name(trig));
    size_t len = 0;
    const char *d = azf_value_data(in, &len);
    char *path = azf__strndup(d ? d : "", len), *slash = path ? strchr(path, '/') : NULL;
    azf__errmsg e = {{0}};
    azf__storage *st = azf__bindings_account(b, trig, &e);
    cJSON *bj = binding_json(trig), *tokens = cJSON_CreateObject();
    const char *pattern = prop(bj, "path");
    const char *pslash = pattern ? strchr(pattern, '/') : NULL;
    azf_buf content = AZF_BUF_INIT;
    azf__blob_props p = {0};
    azf_value *v = NULL;
    azf_value_map *meta = NULL;
    int rc = !slash || slash == path || !slash[1]
                 ? azf__err(&e, AZF_E_INVALID, "the input must name a blob: \"container/name\"")
             : !st ? AZF_E_NOTFOUND
                   : 0;
    if (rc == 0) {
        *slash = '\0';
        if (pslash) /* the path's tokens, when the blob matches the pattern */
            azf__path_match(pslash + 1, slash + 1, tokens);
        if (azf__deferred_binding(bj)) {
            const char *setting = NULL;
            azf__bindings_connection_string(trig, &setting);
            rc = azf__blob_reference(setting, path, slash + 1, &v);
            p.name = azf__strdup(slash + 1);
            p.etag = azf__strdup("");
        } else {
            rc = azf__blob_get(st, path, slash + 1, &content, &p, &e);
            const char *dt = prop(bj, "dataType");
            if (rc == 0)
                rc = azf_value_new_data(
                    &v, dt && strcmp(dt, "string") == 0 ? AZF_VALUE_STRING : AZF_VALUE_BYTES,
                    content.ptr, content.size);
        }
    }
    if (rc == 0 && !(meta = azf__blob_trigger_metadata(st, path, &p, tokens)))
        rc = AZF_E_NOMEM;
    if (rc == 0 && (rc = azf_invocation_set_input(inv, azf_binding_name(trig), v)) == 0)
        v = NULL;
    if (rc == 0 && (rc = azf_invocation_set_trigger_metadata(inv, meta)) == 0)
        meta = NULL;
    azf_value_free(v);
    azf_value_map_free(meta);
    azf__blob_props_clear(&p);
    azf_buf_dispose(&content);
    cJSON_Delete(bj), cJSON_Delete(tokens);
    azf__free(path);
    if (rc != 0)
        return azf__err(err, rc, "The blob trigger '%s' failed: %s", azf_binding_name(trig),
                        e.text[0] ? e.text : azf_strerror(rc));
    return 0;
}

/* Supplies every input binding but the trigger. On failure, err names the binding. */
static int supply_inputs(azf__bindings *b, azf_invocation *inv, const cJSON *data, azf__errmsg *err)
{
    const azf_function *fn = azf_invocation_function(inv);
    for (size_t i = 0; i < azf_function_binding_count(fn); i++) {
        const azf_binding *bd = azf_function_binding(fn, i);
        if (azf_binding_is_trigger(bd) || azf_binding_direction(bd) == AZF_DIRECTION_OUT)
            continue;
        const char *type = azf_binding_type(bd), *why = unsupplied(type);
        azf__errmsg e = {{0}};
        if (why)
            return azf__err(err, AZF_E_UNSUPPORTED,
                            "The input binding '%s' (type %s) cannot be supplied: %s",
                            azf_binding_name(bd), type, why);
        azf__storage *st = azf__bindings_account(b, bd, &e);
        cJSON *bj = binding_json(bd);
        azf_value *v = NULL;
        int rc = !st                             ? AZF_E_NOTFOUND
                 : strcasecmp(type, "blob") == 0 ? blob_input(st, bd, bj, data, &v, &e)
                                                 : table_input(st, bj, data, &v, &e);
        cJSON_Delete(bj);
        if (rc == 0 && (rc = azf_invocation_set_input(inv, azf_binding_name(bd), v)) != 0) {
            azf_value_free(v);
            azf__err(&e, rc, "%s", azf_strerror(rc));
        }
        if (rc != 0)
            return azf__err(err, rc, "The input binding '%s' (type %s) failed: %s",
                            azf_binding_name(bd), type, e.text);
    }
    return 0;
}

/* ---- outputs ---- */

/* Each message of a queue output: one value, or the items of a list. */
static int queue_messages(const azf_value *v, char ***out, size_t *n)
{
    *out = NULL, *n = 0;
    size_t len = 0;
    const char *d = azf_value_data(v, &len);
    int kind = azf_value_kind(v);
    cJSON *arr = kind == AZF_VALUE_JSON ? cJSON_ParseWithLength(d ? d : "", len) : NULL;
    size_t count = cJSON_IsArray(arr) ? (size_t)cJSON_GetArraySize(arr)
                   : kind >= AZF_VALUE_COLLECTION_BYTES && kind <= AZF_VALUE_COLLECTION_SINT64
                       ? azf_value_count(v)
                       : 1;
    char **msgs = azf__calloc(count ? count : 1, sizeof *msgs);
    if (!msgs) {
        cJSON_Delete(arr);
        return AZF_E_NOMEM;
    }
    if (cJSON_IsArray(arr)) {
        const cJSON *it;
        size_t i = 0;
        cJSON_ArrayForEach(it, arr)
        {
            char *s = cJSON_IsString(it) ? NULL : cJSON_PrintUnformatted(it);
            msgs[i++] = azf__strdup(s ? s : it->valuestring);
            cJSON_free(s);
        }
    } else if (count != 1 || kind >= AZF_VALUE_COLLECTION_BYTES) {
        for (size_t i = 0; i < count; i++) {
            const azf_value *it = azf_value_item(v, i);
            size_t l = 0;
            const char *s = azf_value_data(it, &l);
            char num[32];
            if (!s)
                snprintf(num, sizeof num, "%lld", (long long)azf_value_int(it)), s = num,
                                                                                 l = strlen(num);
            msgs[i] = azf__strndup(s, l);
        }
    } else {
        char num[32];
        if (!d && kind == AZF_VALUE_INT)
            snprintf(num, sizeof num, "%lld", (long long)azf_value_int(v)), d = num,
                                                                            len = strlen(num);
        else if (!d && kind == AZF_VALUE_DOUBLE)
            snprintf(num, sizeof num, "%.17g", azf_value_double(v)), d = num, len = strlen(num);
        msgs[0] = azf__strndup(d ? d : "", len);
    }
    cJSON_Delete(arr);
    *out = msgs, *n = count;
    for (size_t i = 0; i < count; i++)
        if (!msgs[i])
            return AZF_E_NOMEM;
    return 0;
}

static int queue_output(azf__bindings *b, azf__storage *st, const cJSON *bj, const cJSON *data,
                        const azf_value *v, azf__errmsg *err)
{
    const char *qn = prop(bj, "queueName");
    char *queue = NULL, **msgs = NULL;
    size_t n = 0;
    int rc = qn ? azf__expr_resolve(qn, data, &queue, err)
                : azf__err(err, AZF_E_INVALID, "the binding has no \"queueName\"");
    if (rc == 0 && (rc = queue_messages(v, &msgs, &n)) != 0)
        azf__err(err, rc, "out of memory");
    if (rc == 0 && n > 0)
        rc = azf__queue_create(st, queue, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *enc = b->queues.base64 ? azf__base64(msgs[i], strlen(msgs[i])) : NULL;
        rc = b->queues.base64 && !enc ? azf__err(err, AZF_E_NOMEM, "out of memory")
                                      : azf__queue_put(st, queue, enc ? enc : msgs[i], 0, 0, err);
        azf__free(enc);
    }
    for (size_t i = 0; i < n; i++)
        azf__free(msgs[i]);
    azf__free(msgs);
    azf__free(queue);
    return rc;
}

static int blob_output(azf__storage *st, const cJSON *bj, const cJSON *data, const azf_value *v,
                       azf__errmsg *err)
{
    char *container = NULL, *name = NULL, num[32];
    int rc = blob_path(bj, data, &container, &name, err);
    size_t len = 0;
    const char *d = azf_value_data(v, &len);
    if (!d && azf_value_kind(v) == AZF_VALUE_INT)
        snprintf(num, sizeof num, "%lld", (long long)azf_value_int(v)), d = num, len = strlen(num);
    if (rc == 0)
        rc = azf__container_create(st, container, err);
    if (rc == 0)
        rc = azf__blob_put(st, container, name, d ? d : "", len,
                           azf_value_kind(v) == AZF_VALUE_STRING ? "text/plain; charset=utf-8"
                           : azf_value_kind(v) == AZF_VALUE_JSON ? "application/json"
                                                                 : "application/octet-stream",
                           err);
    azf__free(container);
    azf__free(name);
    return rc;
}

static int table_output(azf__storage *st, const cJSON *bj, const cJSON *data, const azf_value *v,
                        azf__errmsg *err)
{
    const char *tn = prop(bj, "tableName"), *pk = prop(bj, "partitionKey"),
               *rk = prop(bj, "rowKey");
    size_t len = 0;
    const char *d = azf_value_data(v, &len);
    cJSON *j = d ? cJSON_ParseWithLength(d, len) : NULL;
    char *table = NULL;
    int rc = tn ? azf__expr_resolve(tn, data, &table, err)
                : azf__err(err, AZF_E_INVALID, "the binding has no \"tableName\"");
    if (rc == 0 && !cJSON_IsObject(j) && !cJSON_IsArray(j))
        rc = azf__err(err, AZF_E_INVALID, "a table output must be a JSON object or a list");
    if (rc == 0)
        rc = azf__table_create(st, table, err);
    cJSON *items = cJSON_IsArray(j) ? j : NULL, *one = cJSON_IsObject(j) ? j : NULL;
    for (cJSON *e = items ? items->child : one; rc == 0 && e; e = items ? e->next : NULL) {
        /* the binding's keys fill what the entity leaves out */
        char *k = NULL;
        if (!cJSON_GetObjectItem(e, "PartitionKey") && pk &&
            azf__expr_resolve(pk, data, &k, err) == 0)
            cJSON_AddStringToObject(e, "PartitionKey", k);
        azf__free(k), k = NULL;
        if (!cJSON_GetObjectItem(e, "RowKey") && rk && azf__expr_resolve(rk, data, &k, err) == 0)
            cJSON_AddStringToObject(e, "RowKey", k);
        azf__free(k);
        char *text = cJSON_PrintUnformatted(e);
        rc = text ? azf__table_upsert(st, table, text, err)
                  : azf__err(err, AZF_E_NOMEM, "out of memory");
        cJSON_free(text);
    }
    cJSON_Delete(j);
    azf__free(table);
    return rc;
}

static int write_outputs(azf__bindings *b, azf_invocation *inv, const cJSON *data, azf__errmsg *err)
{
    const azf_function *fn = azf_invocation_function(inv);
    for (size_t i = 0; i < azf_function_binding_count(fn); i++) {
        const azf_binding *bd = azf_function_binding(fn, i);
        const char *type = azf_binding_type(bd), *name = azf_binding_name(bd);
        if (azf_binding_direction(bd) == AZF_DIRECTION_IN || strcasecmp(type, "http") == 0)
            continue;
        const azf_value *v = strcmp(name, "$return") == 0
                                 ? azf_invocation_return_value(inv)
                                 : azf_value_map_get(azf_invocation_outputs(inv), name);
        if (!v || azf_value_kind(v) == AZF_VALUE_NULL)
            continue; /* nothing set: nothing written */
        int queue = strcasecmp(type, "queue") == 0, blob = strcasecmp(type, "blob") == 0,
            table = strcasecmp(type, "table") == 0;
        if (!queue && !blob && !table)
            continue; /* the runner prints what it cannot deliver */
        azf__errmsg e = {{0}};
        azf__storage *st = azf__bindings_account(b, bd, &e);
        cJSON *bj = binding_json(bd);
        int rc = !st     ? AZF_E_NOTFOUND
                 : queue ? queue_output(b, st, bj, data, v, &e)
                 : blob  ? blob_output(st, bj, data, v, &e)
                         : table_output(st, bj, data, v, &e);
        cJSON_Delete(bj);
        if (rc != 0)
            return azf__err(err, rc, "The output binding '%s' (type %s) failed: %s", name, type,
                            e.text);
    }
    return 0;
}

char *azf__bindings_undelivered(azf_invocation *inv)
{
    const azf_function *fn = azf_invocation_function(inv);
    azf_buf out = AZF_BUF_INIT;
    for (size_t i = 0; i < azf_function_binding_count(fn); i++) {
        const azf_binding *bd = azf_function_binding(fn, i);
        const char *type = azf_binding_type(bd), *name = azf_binding_name(bd);
        if (azf_binding_direction(bd) == AZF_DIRECTION_IN || strcasecmp(type, "http") == 0 ||
            strcasecmp(type, "queue") == 0 || strcasecmp(type, "blob") == 0 ||
            strcasecmp(type, "table") == 0)
            continue;
        const azf_value *v = strcmp(name, "$return") == 0
                                 ? azf_invocation_return_value(inv)
                                 : azf_value_map_get(azf_invocation_outputs(inv), name);
        size_t len = 0;
        const char *d = azf_value_data(v, &len);
        if (!v || azf_value_kind(v) == AZF_VALUE_NULL)
            continue;
        char *line = azf__asprintf("%sOutput '%s' (%s, not delivered locally): %.*s%s",
                                   out.size ? "\n" : "", name, type, (int)(len > 2000 ? 2000 : len),
                                   d ? d : "", len > 2000 ? "..." : "");
        if (line)
            azf_buf_append(&out, line, strlen(line));
        azf__free(line);
    }
    return out.ptr;
}

int azf__bindings_wanted(const azf_function *fn)
{
    const azf_binding *trig = azf_function_trigger(fn);
    if (trig && strcasecmp(azf_binding_type(trig), "blobTrigger") == 0)
        return 1; /* an admin invocation names the blob: the step reads it */
    for (size_t i = 0; i < azf_function_binding_count(fn); i++) {
        const azf_binding *bd = azf_function_binding(fn, i);
        if (!azf_binding_is_trigger(bd) && strcasecmp(azf_binding_type(bd), "http") != 0)
            return 1;
    }
    return 0;
}

/* ---- the I/O threads ---- */

static void push(azf__bindings *b, job *j)
{
    pthread_mutex_lock(&b->mu);
    j->next = NULL;
    if (b->tail)
        b->tail->next = j;
    else
        b->head = j;
    b->tail = j;
    pthread_cond_signal(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

static void on_complete(azf_invocation *inv, void *user_data)
{
    job *j = user_data;
    (void)inv;
    j->outputs = 1;
    push(j->b, j);
}

static void finish(job *j, const char *error)
{
    j->done(j->inv, error, j->user_data);
    cJSON_Delete(j->data);
    azf__free(j);
}

static void run_job(job *j)
{
    azf__errmsg err = {{0}};
    if (!j->outputs) {
        const azf_function *fn = azf_invocation_function(j->inv);
        const azf_binding *trig = azf_function_trigger(fn);
        int rc = supply_blob_trigger(j->b, j->inv, &err);
        if (rc == 0 && trig) { /* the blob's path tokens, for the other bindings */
            cJSON *data =
                azf__binding_data_new(fn, azf_invocation_input(j->inv, azf_binding_name(trig)),
                                      azf_invocation_trigger_metadata(j->inv));
            if (data) {
                cJSON_Delete(j->data);
                j->data = data;
            }
        }
        if (rc != 0 || supply_inputs(j->b, j->inv, j->data, &err) != 0) {
            finish(j, err.text);
            return;
        }
        azf_invocation_set_on_complete(j->inv, on_complete, j);
        azf_invocation_start(j->inv);
        return;
    }
    if (azf_invocation_status(j->inv) == AZF_INVOCATION_SUCCEEDED &&
        write_outputs(j->b, j->inv, j->data, &err) != 0) {
        finish(j, err.text);
        return;
    }
    finish(j, NULL);
}

static void *io_thread(void *arg)
{
    azf__bindings *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->head && !b->stopping)
            pthread_cond_wait(&b->cv, &b->mu);
        if (!b->head)
            break;
        job *j = b->head;
        b->head = j->next;
        if (!b->head)
            b->tail = NULL;
        pthread_mutex_unlock(&b->mu);
        run_job(j);
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

void azf__bindings_run(azf__bindings *b, azf_invocation *inv, azf__bindings_done_fn done,
                       void *user_data)
{
    job *j = azf__calloc(1, sizeof *j);
    const azf_function *fn = azf_invocation_function(inv);
    const azf_binding *trig = azf_function_trigger(fn);
    if (j)
        j->data = azf__binding_data_new(
            fn, trig ? azf_invocation_input(inv, azf_binding_name(trig)) : NULL,
            azf_invocation_trigger_metadata(inv));
    if (!j || !j->data) {
        azf__free(j);
        done(inv, "out of memory", user_data);
        return;
    }
    j->b = b, j->inv = inv, j->done = done, j->user_data = user_data;
    push(b, j);
}

int azf__bindings_new(azf__bindings **out, const char *app_dir, azf__errmsg *err)
{
    azf__bindings *b = azf__calloc(1, sizeof *b);
    if (!b)
        return azf__err(err, AZF_E_NOMEM, "out of memory");
    int rc = read_queue_options(&b->queues, app_dir, err);
    if (rc != 0) {
        azf__free(b);
        return rc;
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    for (int i = 0; i < IO_THREADS; i++)
        if (pthread_create(&b->threads[i], NULL, io_thread, b) == 0)
            b->running++;
    *out = b;
    return 0;
}

void azf__bindings_free(azf__bindings *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    b->stopping = 1; /* the threads finish the queued jobs first */
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; i < b->running; i++)
        pthread_join(b->threads[i], NULL);
    for (account *a = b->accounts, *next; a; a = next) {
        next = a->next;
        azf__storage_free(a->st);
        azf__free(a->connection);
        azf__free(a);
    }
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    azf__free(b);
}
