/* Table service (JSON, no OData metadata): create a table, insert or upsert an
 * entity, get one entity, query with a filter and a limit. */
#include "storage/storage_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ACCEPT "application/json;odata=nometadata"

static const char *const json_headers[] = {
    "Accept",    ACCEPT,   "DataServiceVersion", "3.0", "MaxDataServiceVersion",
    "3.0;NetFx", "Prefer", "return-no-content",  NULL};

static int send_simple(azf__storage *st, azf__request *rq, azf__errmsg *err)
{
    azf__response rs;
    int rc = azf__storage_send(st, rq, &rs, err);
    azf__response_clear(&rs);
    return rc;
}

int azf__table_create(azf__storage *st, const char *table, azf__errmsg *err)
{
    cJSON *o = cJSON_CreateObject();
    char *body =
        o && cJSON_AddStringToObject(o, "TableName", table) ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    azf__request rq = {.method = "POST",
                       .svc = AZF__TABLE,
                       .path = "/Tables",
                       .headers = json_headers,
                       .body = body,
                       .body_len = body ? strlen(body) : 0,
                       .content_type = "application/json"};
    int rc = body ? send_simple(st, &rq, err) : azf__err(err, AZF_E_NOMEM, "out of memory");
    cJSON_free(body);
    return rc == AZF_E_EXISTS ? 0 : rc;
}

/* "'value'" with single quotes doubled, as OData keys are written. */
static char *quoted(const char *v)
{
    azf_buf b = AZF_BUF_INIT;
    int rc = azf_buf_append(&b, "'", 1);
    for (const char *p = v; *p && rc == 0; p++)
        rc = azf_buf_append(&b, p, 1) || (*p == '\'' && azf_buf_append(&b, "'", 1));
    rc = rc ? rc : azf_buf_append(&b, "'", 1);
    if (rc) {
        azf_buf_dispose(&b);
        return NULL;
    }
    return b.ptr;
}

static char *entity_path(const char *table, const char *pk, const char *rk)
{
    char *qp = quoted(pk), *qr = quoted(rk);
    char *raw = qp && qr ? azf__asprintf("%s(PartitionKey=%s,RowKey=%s)", table, qp, qr) : NULL;
    char *path = raw ? azf__storage_path(raw, NULL) : NULL;
    azf__free(qp), azf__free(qr), azf__free(raw);
    return path;
}

static int keys_of(const char *entity_json, cJSON **out, const char **pk, const char **rk,
                   azf__errmsg *err)
{
    cJSON *e = cJSON_Parse(entity_json);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "PartitionKey");
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(e, "RowKey");
    if (!cJSON_IsObject(e) || !cJSON_IsString(p) || !cJSON_IsString(r)) {
        cJSON_Delete(e);
        return azf__err(err, AZF_E_INVALID,
                        "a table entity must be a JSON object with string PartitionKey and "
                        "RowKey");
    }
    *out = e, *pk = p->valuestring, *rk = r->valuestring;
    return 0;
}

/* Sends an entity's JSON to path (owned; NULL when it could not be made). */
static int send_entity(azf__storage *st, const char *method, char *path, const char *entity_json,
                       azf__errmsg *err)
{
    azf__request rq = {.method = method,
                       .svc = AZF__TABLE,
                       .path = path,
                       .headers = json_headers,
                       .body = entity_json,
                       .body_len = strlen(entity_json),
                       .content_type = "application/json"};
    int rc = path ? send_simple(st, &rq, err) : azf__err(err, AZF_E_NOMEM, "out of memory");
    azf__free(path);
    return rc;
}

int azf__table_insert(azf__storage *st, const char *table, const char *entity_json,
                      azf__errmsg *err)
{
    cJSON *e;
    const char *pk, *rk;
    int rc = keys_of(entity_json, &e, &pk, &rk, err);
    if (rc != 0)
        return rc;
    cJSON_Delete(e);
    return send_entity(st, "POST", azf__storage_path(table, NULL), entity_json, err);
}

int azf__table_upsert(azf__storage *st, const char *table, const char *entity_json,
                      azf__errmsg *err)
{
    cJSON *e;
    const char *pk, *rk;
    int rc = keys_of(entity_json, &e, &pk, &rk, err);
    if (rc != 0)
        return rc;
    char *path = entity_path(table, pk, rk);
    cJSON_Delete(e);
    return send_entity(st, "PUT", path, entity_json, err);
}

/* cJSON's text copied into our allocator's memory (callers free with azf__free). */
static char *print_owned(const cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    char *copy = s ? azf__strdup(s) : NULL;
    cJSON_free(s);
    return copy;
}

/* Drops the "odata.*" and "*@odata.type" annotations some services add anyway. */
static void strip_annotations(cJSON *o)
{
    cJSON *c = o ? o->child : NULL;
    while (c) {
        cJSON *next = c->next;
        if (c->string && strstr(c->string, "odata."))
            cJSON_Delete(cJSON_DetachItemViaPointer(o, c));
        c = next;
    }
}

int azf__table_get(azf__storage *st, const char *table, const char *pk, const char *rk, char **json,
                   azf__errmsg *err)
{
    *json = NULL;
    char *path = entity_path(table, pk, rk);
    azf__request rq = {.method = "GET", .svc = AZF__TABLE, .path = path, .headers = json_headers};
    azf__response rs;
    int rc =
        path ? azf__storage_send(st, &rq, &rs, err) : azf__err(err, AZF_E_NOMEM, "out of memory");
    if (rc == 0) {
        cJSON *o = cJSON_ParseWithLength(rs.body.ptr ? rs.body.ptr : "", rs.body.size);
        strip_annotations(o);
        *json = cJSON_IsObject(o) ? print_owned(o) : NULL;
        cJSON_Delete(o);
        if (!*json)
            rc = azf__err(err, AZF_E_PROTOCOL, "the table service answered with malformed JSON");
    }
    if (path)
        azf__response_clear(&rs);
    azf__free(path);
    return rc;
}

int azf__table_query(azf__storage *st, const char *table, const char *filter, int take, char **json,
                     azf__errmsg *err)
{
    *json = NULL;
    char *raw = azf__asprintf("%s()", table);
    char *path = raw ? azf__storage_path(raw, NULL) : NULL;
    azf__free(raw);
    cJSON *all = cJSON_CreateArray();
    char *next_pk = NULL, *next_rk = NULL, top[16];
    int rc = path && all ? 0 : azf__err(err, AZF_E_NOMEM, "out of memory");
    for (int page = 0; rc == 0 && page < 100000; page++) {
        const char *q[9] = {NULL};
        int nq = 0;
        if (filter && *filter)
            q[nq++] = "$filter", q[nq++] = filter;
        if (take > 0) {
            snprintf(top, sizeof top, "%d", take - cJSON_GetArraySize(all));
            q[nq++] = "$top", q[nq++] = top;
        }
        if (next_pk)
            q[nq++] = "NextPartitionKey", q[nq++] = next_pk;
        if (next_rk)
            q[nq++] = "NextRowKey", q[nq++] = next_rk;
        azf__request rq = {
            .method = "GET", .svc = AZF__TABLE, .path = path, .query = q, .headers = json_headers};
        azf__response rs;
        rc = azf__storage_send(st, &rq, &rs, err);
        azf__free(next_pk), azf__free(next_rk);
        next_pk = next_rk = NULL;
        if (rc == 0) {
            cJSON *o = cJSON_ParseWithLength(rs.body.ptr ? rs.body.ptr : "", rs.body.size);
            cJSON *value = cJSON_GetObjectItemCaseSensitive(o, "value");
            if (!cJSON_IsArray(value)) {
                rc = azf__err(err, AZF_E_PROTOCOL,
                              "the table service answered without a \"value\" array");
            } else {
                while (value->child && (take <= 0 || cJSON_GetArraySize(all) < take)) {
                    cJSON *e = cJSON_DetachItemViaPointer(value, value->child);
                    strip_annotations(e);
                    cJSON_AddItemToArray(all, e);
                }
            }
            cJSON_Delete(o);
            const char *p = azf__response_header(&rs, "x-ms-continuation-NextPartitionKey");
            const char *r = azf__response_header(&rs, "x-ms-continuation-NextRowKey");
            next_pk = p ? azf__strdup(p) : NULL;
            next_rk = r ? azf__strdup(r) : NULL;
        }
        azf__response_clear(&rs);
        if (!next_pk || (take > 0 && cJSON_GetArraySize(all) >= take))
            break;
    }
    azf__free(next_pk), azf__free(next_rk);
    if (rc == 0 && !(*json = print_owned(all)))
        rc = azf__err(err, AZF_E_NOMEM, "out of memory");
    cJSON_Delete(all);
    azf__free(path);
    return rc;
}
