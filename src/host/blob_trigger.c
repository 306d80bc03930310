/* The blob trigger: scans the container of the trigger's path pattern
 * ("container/{name}.txt") every two seconds and fires once per new or changed blob.
 * What has fired is kept as a receipt per blob (its ETag) in
 * <app>/.azfunc/blob-receipts/<function>.json, written after the invocation settles,
 * so a restart does not fire again. A blob whose invocation fails is retried on the
 * next scans, up to five times in all (as the host's blob trigger), then given up on with
 * a message on the queue webjobs-blobtrigger-poison. */
#include "host/triggers_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define SCAN_MS 2000
#define MAX_TRIES 5
#define POISON_QUEUE "webjobs-blobtrigger-poison"

typedef struct bstate {
    char *container, *pattern, *prefix; /* pattern: the blob part of the path */
    int binary;                         /* dataType binary/stream: the content as bytes */
    int deferred;                       /* an SDK type: a reference instead of the content */
    char *setting;                      /* the connection setting's name */
    char *receipts_path;
    cJSON *receipts; /* {"<blob name>": "<etag>"} */
    cJSON *tries;    /* {"<blob name>": {"etag": .., "n": ..}} failures, in memory */
    cJSON *running;  /* {"<blob name>": "<etag>"} posted and not settled */
    cJSON *poison;   /* poison messages to send, once mu is released */
    char last_error[AZF__ERRMSG_SIZE];
} bstate;

typedef struct fired {
    listener *l;
    char *name, *etag;
    int settled, succeeded;
    struct fired *next;
} fired;

static fired *settled_list; /* guarded by the triggers' mu */

static void free_state(void *p)
{
    bstate *b = p;
    if (!b)
        return;
    azf__free(b->container), azf__free(b->pattern), azf__free(b->prefix);
    azf__free(b->receipts_path);
    azf__free(b->setting);
    cJSON_Delete(b->receipts), cJSON_Delete(b->tries), cJSON_Delete(b->running);
    cJSON_Delete(b->poison);
    azf__free(b);
}

static cJSON *load_receipts(const char *path)
{
    FILE *f = fopen(path, "rb");
    azf_buf text = AZF_BUF_INIT;
    char chunk[4096];
    size_t n;
    while (f && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        azf_buf_append(&text, chunk, n);
    if (f)
        fclose(f);
    cJSON *j = text.ptr ? cJSON_ParseWithLength(text.ptr, text.size) : NULL;
    azf_buf_dispose(&text);
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        j = cJSON_CreateObject();
    }
    return j;
}

/* Written to a temporary file and renamed, so a crash leaves the old or the new one. */
static int save_receipts(const bstate *b)
{
    char *tmp = azf__asprintf("%s.tmp", b->receipts_path);
    char *text = cJSON_Print(b->receipts);
    FILE *f = tmp && text ? fopen(tmp, "wb") : NULL;
    int ok = f && fputs(text, f) >= 0;
    ok = f && fclose(f) == 0 && ok;
    ok = ok && rename(tmp, b->receipts_path) == 0;
    azf__free(tmp);
    cJSON_free(text);
    return ok ? 0 : -1;
}

int azf__blob_listener_init(listener *l, const cJSON *bj)
{
    const cJSON *path = cJSON_GetObjectItem(bj, "path");
    const cJSON *dt = cJSON_GetObjectItem(bj, "dataType");
    azf__errmsg err = {{0}};
    bstate *b = azf__calloc(1, sizeof *b);
    if (!b)
        return AZF_E_NOMEM;
    l->state = b, l->free_state = free_state;
    char *resolved = NULL;
    int rc = cJSON_IsString(path) ? azf__expr_resolve(path->valuestring, NULL, &resolved, &err)
                                  : azf__err(&err, AZF_E_INVALID, "the trigger has no path");
    char *slash = rc == 0 ? strchr(resolved, '/') : NULL;
    if (rc == 0 &&
        (!slash || slash == resolved || (strchr(resolved, '{') && strchr(resolved, '{') < slash)))
        rc = azf__err(&err, AZF_E_INVALID, "the path '%s' is not \"container/blob pattern\"",
                      resolved);
    if (rc == 0) {
        b->container = azf__strndup(resolved, (size_t)(slash - resolved));
        b->pattern = azf__strdup(slash[1] ? slash + 1 : "{name}");
        b->prefix = azf__strndup(slash + 1, strcspn(slash + 1, "{"));
        b->binary = !cJSON_IsString(dt) || strcmp(dt->valuestring, "string") != 0;
        b->deferred = azf__deferred_binding(bj);
        const char *setting = NULL;
        azf__bindings_connection_string(azf_function_trigger(l->fn), &setting);
        b->setting = azf__strdup(setting ? setting : "AzureWebJobsStorage");
        char *dir = azf__asprintf("%s/blob-receipts", l->t->state_dir);
        b->receipts_path = dir ? azf__asprintf("%s/%s.json", dir, azf_function_name(l->fn)) : NULL;
        if (dir && (mkdir(l->t->state_dir, 0755) == 0 || errno == EEXIST) &&
            (mkdir(dir, 0755) == 0 || errno == EEXIST) && b->receipts_path)
            b->receipts = load_receipts(b->receipts_path);
        else
            rc = azf__err(&err, AZF_E_IO, "cannot create %s", dir ? dir : "the receipts folder");
        azf__free(dir);
        b->tries = cJSON_CreateObject();
        b->running = cJSON_CreateObject();
        b->poison = cJSON_CreateArray();
        if (rc == 0 && (!b->container || !b->pattern || !b->prefix || !b->receipts || !b->tries ||
                        !b->running || !b->poison))
            rc = azf__err(&err, AZF_E_NOMEM, "out of memory");
    }
    azf__free(resolved);
    if (rc != 0)
        azf__trigger_log(l->t, AZF_LOG_ERROR, "Function '%s' cannot listen: %s",
                         azf_function_name(l->fn), err.text);
    return rc;
}

static void on_settled(int succeeded, void *arg)
{
    fired *f = arg;
    azf__triggers *t = f->l->t;
    pthread_mutex_lock(&t->mu);
    f->settled = 1;
    f->succeeded = succeeded;
    f->next = settled_list;
    settled_list = f;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

/* The trigger metadata of a blob, as the host gives it to the Python library. */
azf_value_map *azf__blob_trigger_metadata(azf__storage *st, const char *container,
                                          const azf__blob_props *p, const cJSON *tokens)
{
    azf_value_map *md = NULL;
    azf_value *v = NULL;
    if (azf_value_map_new(&md) != 0)
        return NULL;
    char *full = azf__asprintf("%s/%s", container, p->name);
    char *uri = azf__asprintf("%s/%s/%s", azf__storage_endpoint(st, AZF__BLOB), container, p->name);
    cJSON *props = cJSON_CreateObject(), *meta = cJSON_CreateObject();
    cJSON_AddNumberToObject(props, "ContentLength", (double)p->length);
    cJSON_AddNumberToObject(props, "Length", (double)p->length);
    if (p->content_type)
        cJSON_AddStringToObject(props, "ContentType", p->content_type);
    if (p->etag)
        cJSON_AddStringToObject(props, "ETag", p->etag);
    if (p->last_modified)
        cJSON_AddStringToObject(props, "LastModified", p->last_modified);
    if (p->created)
        cJSON_AddStringToObject(props, "CreatedOn", p->created);
    cJSON_AddStringToObject(props, "BlobType", "BlockBlob");
    for (size_t i = 0; i < p->nmeta; i++)
        cJSON_AddStringToObject(meta, p->meta_names[i], p->meta_values[i]);
    char *pj = cJSON_PrintUnformatted(props), *mj = cJSON_PrintUnformatted(meta);
    int rc = full && uri && pj && mj ? 0 : AZF_E_NOMEM;
    rc = rc ? rc : azf_value_new_string(&v, full);
    rc = rc ? rc : azf_value_map_set(md, "BlobTrigger", v);
    rc = rc ? rc : azf_value_new_string(&v, uri);
    rc = rc ? rc : azf_value_map_set(md, "Uri", v);
    rc = rc ? rc : azf_value_new_data(&v, AZF_VALUE_JSON, pj, strlen(pj));
    rc = rc ? rc : azf_value_map_set(md, "Properties", v);
    rc = rc ? rc : azf_value_new_data(&v, AZF_VALUE_JSON, mj, strlen(mj));
    rc = rc ? rc : azf_value_map_set(md, "Metadata", v);
    const cJSON *tok;
    cJSON_ArrayForEach(tok, tokens)
    {
        rc = rc ? rc : azf_value_new_string(&v, tok->valuestring);
        rc = rc ? rc : azf_value_map_set(md, tok->string, v);
    }
    azf__free(full), azf__free(uri);
    cJSON_free(pj), cJSON_free(mj);
    cJSON_Delete(props), cJSON_Delete(meta);
    if (rc != 0) {
        azf_value_map_free(md);
        return NULL;
    }
    return md;
}

static void fire(listener *l, const azf__blob_props *item, const cJSON *tokens)
{
    bstate *b = l->state;
    azf__triggers *t = l->t;
    azf_buf content = AZF_BUF_INIT;
    azf__blob_props p;
    azf__errmsg err = {{0}};
    if (azf__blob_get(l->st, b->container, item->name, &content, &p, &err) != 0) {
        azf_buf_dispose(&content);
        return; /* gone or unreadable: the next scan sees */
    }
    fired *f = azf__calloc(1, sizeof *f);
    azf_value *input = NULL;
    azf_value_map *md = azf__blob_trigger_metadata(l->st, b->container, &p, tokens);
    int rc = f && md ? 0 : AZF_E_NOMEM;
    if (rc == 0) {
        f->l = l;
        f->name = azf__strdup(item->name);
        f->etag = azf__strdup(p.etag ? p.etag : item->etag);
        rc = f->name && f->etag ? 0 : AZF_E_NOMEM;
    }
    if (rc == 0 && b->deferred)
        rc = azf__blob_reference(b->setting, b->container, item->name, &input);
    else if (rc == 0)
        rc = azf_value_new_data(&input, b->binary ? AZF_VALUE_BYTES : AZF_VALUE_STRING, content.ptr,
                                content.size);
    azf_buf_dispose(&content);
    if (rc == 0) {
        char reason[512];
        snprintf(reason, sizeof reason, "New blob detected(%s): %s/%s", p.etag ? p.etag : "",
                 b->container, item->name);
        pthread_mutex_lock(&t->mu);
        cJSON_DeleteItemFromObject(b->running, f->name);
        cJSON_AddStringToObject(b->running, f->name, f->etag);
        l->inflight++;
        pthread_mutex_unlock(&t->mu);
        rc = t->fire(t->runner, l->fn, input, md, reason, on_settled, f);
        input = NULL, md = NULL;
        if (rc != 0) {
            pthread_mutex_lock(&t->mu);
            cJSON_DeleteItemFromObject(b->running, f->name);
            l->inflight--;
            pthread_mutex_unlock(&t->mu);
        }
    }
    if (rc != 0 && f) {
        azf__free(f->name), azf__free(f->etag);
        azf__free(f);
    }
    azf_value_free(input);
    azf_value_map_free(md);
    azf__blob_props_clear(&p);
}

/* Records the outcome of the settled invocations of this listener; mu held. */
static void settle(listener *l)
{
    bstate *b = l->state;
    int changed = 0;
    for (fired **pp = &settled_list; *pp;) {
        fired *f = *pp;
        if (f->l != l) {
            pp = &f->next;
            continue;
        }
        *pp = f->next;
        l->inflight--;
        cJSON_DeleteItemFromObject(b->running, f->name);
        int give_up = 0;
        if (f->succeeded == 0) { /* -1: never ran, not a try */
            cJSON *tr = cJSON_GetObjectItemCaseSensitive(b->tries, f->name);
            const cJSON *te = cJSON_GetObjectItemCaseSensitive(tr, "etag");
            int n = tr && cJSON_IsString(te) && strcmp(te->valuestring, f->etag) == 0
                        ? cJSON_GetObjectItemCaseSensitive(tr, "n")->valueint + 1
                        : 1;
            cJSON_DeleteItemFromObject(b->tries, f->name);
            cJSON *entry = cJSON_AddObjectToObject(b->tries, f->name);
            cJSON_AddStringToObject(entry, "etag", f->etag);
            cJSON_AddNumberToObject(entry, "n", n);
            give_up = n >= MAX_TRIES;
            if (give_up) { /* the host's poison message for a blob */
                char fid[300];
                snprintf(fid, sizeof fid, "Host.Functions.%s", azf_function_name(l->fn));
                cJSON *m = cJSON_CreateObject();
                cJSON_AddStringToObject(m, "Type", "BlobTrigger");
                cJSON_AddStringToObject(m, "FunctionId", fid);
                cJSON_AddStringToObject(m, "BlobType", "BlockBlob");
                cJSON_AddStringToObject(m, "ContainerName", b->container);
                cJSON_AddStringToObject(m, "BlobName", f->name);
                cJSON_AddStringToObject(m, "ETag", f->etag);
                cJSON_AddItemToArray(b->poison, m);
                azf__trigger_log(l->t, AZF_LOG_ERROR,
                                 "Blob '%s/%s' failed %d times in '%s': moved to the queue "
                                 "'" POISON_QUEUE "'; it triggers again once it changes",
                                 b->container, f->name, n, azf_function_name(l->fn));
            }
        }
        if (f->succeeded > 0 || give_up) {
            cJSON_DeleteItemFromObject(b->receipts, f->name);
            cJSON_AddStringToObject(b->receipts, f->name, f->etag);
            cJSON_DeleteItemFromObject(b->tries, f->name);
            changed = 1;
        }
        azf__free(f->name), azf__free(f->etag);
        azf__free(f);
    }
    if (changed && save_receipts(b) != 0)
        azf__trigger_log(l->t, AZF_LOG_ERROR, "Cannot write the blob receipts %s",
                         b->receipts_path);
}

/* Sends the poison messages settle() collected; mu not held. */
static void send_poison(listener *l, cJSON *msgs)
{
    const azf__queue_options *o = azf__bindings_queue_options(l->t->b);
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        azf__errmsg err = {{0}};
        char *text = cJSON_PrintUnformatted(m);
        char *enc = text && o->base64 ? azf__base64(text, strlen(text)) : NULL;
        int rc = text ? azf__queue_create(l->st, POISON_QUEUE, &err) : AZF_E_NOMEM;
        rc = rc ? rc : azf__queue_put(l->st, POISON_QUEUE, enc ? enc : text, 0, 0, &err);
        if (rc != 0)
            azf__trigger_log(l->t, AZF_LOG_ERROR, "Cannot write to '" POISON_QUEUE "': %s",
                             err.text);
        azf__free(enc);
        cJSON_free(text);
    }
}

static void scan(listener *l)
{
    bstate *b = l->state;
    azf__triggers *t = l->t;
    azf__blob_props *items = NULL;
    size_t n = 0;
    azf__errmsg err = {{0}};
    int rc = azf__blob_list(l->st, b->container, b->prefix, &items, &n, &err);
    if (rc != 0 && rc != AZF_E_NOTFOUND && strcmp(b->last_error, err.text) != 0) {
        azf__trigger_log(t, AZF_LOG_WARNING, "Blob trigger '%s' (container '%s'): %s",
                         azf_function_name(l->fn), b->container, err.text);
        snprintf(b->last_error, sizeof b->last_error, "%s", err.text);
    } else if (rc == 0) {
        b->last_error[0] = '\0';
    }
    for (size_t i = 0; rc == 0 && i < n; i++) {
        cJSON *tokens = cJSON_CreateObject();
        if (!tokens || !azf__path_match(b->pattern, items[i].name, tokens)) {
            cJSON_Delete(tokens);
            continue;
        }
        pthread_mutex_lock(&t->mu);
        const cJSON *done = cJSON_GetObjectItemCaseSensitive(b->receipts, items[i].name);
        const cJSON *busy = cJSON_GetObjectItemCaseSensitive(b->running, items[i].name);
        int skip = t->stop ||
                   (cJSON_IsString(done) && strcmp(done->valuestring, items[i].etag) == 0) || busy;
        pthread_mutex_unlock(&t->mu);
        if (!skip)
            fire(l, &items[i], tokens);
        cJSON_Delete(tokens);
    }
    azf__blob_list_free(items, n);
}

void *azf__blob_listener_run(void *arg)
{
    listener *l = arg;
    azf__triggers *t = l->t;
    time_t stop_deadline = 0;
    pthread_mutex_lock(&t->mu);
    for (;;) {
        settle(l);
        if (t->stop) {
            if (!stop_deadline)
                stop_deadline = time(NULL) + 60;
            if (l->inflight == 0 || t->stop == 2 || time(NULL) >= stop_deadline)
                break;
            azf__trigger_wait(t, 1000);
            continue;
        }
        pthread_mutex_unlock(&t->mu);
        scan(l);
        pthread_mutex_lock(&t->mu);
        settle(l);
        bstate *b = l->state;
        if (cJSON_GetArraySize(b->poison) > 0) {
            cJSON *msgs = b->poison;
            b->poison = cJSON_CreateArray();
            pthread_mutex_unlock(&t->mu);
            send_poison(l, msgs);
            cJSON_Delete(msgs);
            pthread_mutex_lock(&t->mu);
        }
        /* the next scan in SCAN_MS, settling what completes meanwhile (a failed blob is
         * retried on the next scan, not at once) */
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (long left = SCAN_MS; !t->stop && left > 0;) {
            azf__trigger_wait(t, left);
            settle(l);
            clock_gettime(CLOCK_MONOTONIC, &now);
            left = SCAN_MS -
                   ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
        }
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}
