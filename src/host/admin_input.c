/* What an admin invocation (POST /admin/functions/<name>) of a function whose trigger
 * cannot run locally gets: the value and trigger metadata the host would deliver for
 * such an event, so the library's converters accept it. Event Hubs and Service Bus get
 * their system properties (one event, or a list with cardinality many), Event Grid an
 * event envelope around the text, Cosmos DB a JSON list of documents, a queue message
 * its queue metadata. */
#include "host/bindings.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static void now_iso(char out[40])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 40, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
}

static int set_json(azf_value_map *md, const char *key, const cJSON *j)
{
    char *text = cJSON_PrintUnformatted(j);
    azf_value *v = NULL;
    int rc = text ? azf_value_new_data(&v, AZF_VALUE_JSON, text, strlen(text)) : AZF_E_NOMEM;
    cJSON_free(text);
    if (rc == 0 && (rc = azf_value_map_set(md, key, v)) != 0)
        azf_value_free(v);
    return rc;
}

static int set_string(azf_value_map *md, const char *key, const char *s)
{
    azf_value *v = NULL;
    int rc = azf_value_new_string(&v, s);
    if (rc == 0 && (rc = azf_value_map_set(md, key, v)) != 0)
        azf_value_free(v);
    return rc;
}

static int set_int(azf_value_map *md, const char *key, int64_t i)
{
    azf_value *v = NULL;
    int rc = azf_value_new_int(&v, i);
    if (rc == 0 && (rc = azf_value_map_set(md, key, v)) != 0)
        azf_value_free(v);
    return rc;
}

static int set_time(azf_value_map *md, const char *key)
{
    char now[40];
    now_iso(now);
    cJSON *s = cJSON_CreateString(now);
    int rc = s ? set_json(md, key, s) : AZF_E_NOMEM;
    cJSON_Delete(s);
    return rc;
}

/* The text as one event body: JSON when it parses, else a string. */
static int body_value(const char *text, azf_value **out)
{
    cJSON *j = cJSON_Parse(text);
    int rc = j && (cJSON_IsObject(j) || cJSON_IsArray(j))
                 ? azf_value_new_data(out, AZF_VALUE_JSON, text, strlen(text))
                 : azf_value_new_string(out, text);
    cJSON_Delete(j);
    return rc;
}

/* The bodies of a batch: the items of a JSON list (objects as JSON text), else the text. */
static int batch_value(const char *text, azf_value **out, int *count)
{
    cJSON *j = cJSON_Parse(text);
    int rc = azf_value_new_collection(out, AZF_VALUE_COLLECTION_STRING);
    *count = 0;
    const cJSON *it;
    if (rc == 0 && cJSON_IsArray(j)) {
        cJSON_ArrayForEach(it, j)
        {
            char *s = cJSON_IsString(it) ? NULL : cJSON_PrintUnformatted(it);
            azf_value *item = NULL;
            rc = rc ? rc : azf_value_new_string(&item, s ? s : it->valuestring);
            cJSON_free(s);
            if (rc == 0 && (rc = azf_value_collection_append(*out, item)) != 0)
                azf_value_free(item);
            (*count)++;
        }
    } else if (rc == 0) {
        azf_value *item = NULL;
        rc = azf_value_new_string(&item, text);
        if (rc == 0 && (rc = azf_value_collection_append(*out, item)) != 0)
            azf_value_free(item);
        *count = 1;
    }
    cJSON_Delete(j);
    return rc;
}

static int many(const azf_binding *trig)
{
    cJSON *b = cJSON_Parse(azf_binding_json(trig));
    const cJSON *c = cJSON_GetObjectItem(b, "cardinality");
    int m = cJSON_IsString(c) && strcasecmp(c->valuestring, "many") == 0;
    cJSON_Delete(b);
    return m;
}

static cJSON *event_hub_properties(int seq)
{
    char now[40];
    now_iso(now);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddNumberToObject(p, "SequenceNumber", seq);
    cJSON_AddStringToObject(p, "Offset", "0");
    cJSON_AddNullToObject(p, "PartitionKey");
    cJSON_AddStringToObject(p, "EnqueuedTimeUtc", now);
    return p;
}

static int event_hub(const azf_binding *trig, const char *text, azf_value **v, azf_value_map *md)
{
    int rc, n = 1;
    if (many(trig)) {
        rc = batch_value(text, v, &n);
        cJSON *arr = cJSON_CreateArray();
        for (int i = 0; arr && i < n; i++)
            cJSON_AddItemToArray(arr, event_hub_properties(i));
        rc = rc ? rc : arr ? set_json(md, "SystemPropertiesArray", arr) : AZF_E_NOMEM;
        cJSON_Delete(arr);
        return rc;
    }
    rc = body_value(text, v);
    cJSON *p = event_hub_properties(0);
    rc = rc ? rc : p ? set_json(md, "SystemProperties", p) : AZF_E_NOMEM;
    cJSON_Delete(p);
    rc = rc ? rc : set_time(md, "EnqueuedTimeUtc");
    rc = rc ? rc : set_int(md, "SequenceNumber", 0);
    rc = rc ? rc : set_string(md, "Offset", "0");
    return rc;
}

static int service_bus(const azf_binding *trig, const char *text, azf_value **v, azf_value_map *md)
{
    char id[37], lock[37], now[40];
    int rc, n = 1;
    now_iso(now);
    if (many(trig)) {
        rc = batch_value(text, v, &n);
        cJSON *props = cJSON_CreateArray(), *ids = cJSON_CreateArray(),
              *counts = cJSON_CreateArray(), *seqs = cJSON_CreateArray(),
              *times = cJSON_CreateArray();
        for (int i = 0; i < n; i++) {
            azf__new_guid(id);
            cJSON_AddItemToArray(props, cJSON_CreateObject());
            cJSON_AddItemToArray(ids, cJSON_CreateString(id));
            cJSON_AddItemToArray(counts, cJSON_CreateNumber(1));
            cJSON_AddItemToArray(seqs, cJSON_CreateNumber(i + 1));
            cJSON_AddItemToArray(times, cJSON_CreateString(now));
        }
        rc = rc ? rc : set_json(md, "UserPropertiesArray", props);
        rc = rc ? rc : set_json(md, "ApplicationPropertiesArray", props);
        rc = rc ? rc : set_json(md, "MessageIdArray", ids);
        rc = rc ? rc : set_json(md, "DeliveryCountArray", counts);
        rc = rc ? rc : set_json(md, "SequenceNumberArray", seqs);
        rc = rc ? rc : set_json(md, "EnqueuedTimeUtcArray", times);
        cJSON_Delete(props), cJSON_Delete(ids), cJSON_Delete(counts), cJSON_Delete(seqs),
            cJSON_Delete(times);
        return rc;
    }
    rc = body_value(text, v);
    azf__new_guid(id);
    azf__new_guid(lock);
    cJSON *empty = cJSON_CreateObject();
    rc = rc ? rc : set_string(md, "MessageId", id);
    rc = rc ? rc : set_string(md, "LockToken", lock);
    rc = rc ? rc : set_int(md, "DeliveryCount", 1);
    rc = rc ? rc : set_int(md, "SequenceNumber", 1);
    rc = rc ? rc : set_time(md, "EnqueuedTimeUtc");
    rc = rc ? rc : set_json(md, "UserProperties", empty);
    rc = rc ? rc : set_json(md, "ApplicationProperties", empty);
    cJSON_Delete(empty);
    return rc;
}

static int event_grid(const char *text, azf_value **v)
{
    cJSON *j = cJSON_Parse(text);
    if (cJSON_IsObject(j) &&
        (cJSON_GetObjectItem(j, "eventType") || cJSON_GetObjectItem(j, "specversion"))) {
        cJSON_Delete(j); /* already an event */
        return azf_value_new_data(v, AZF_VALUE_JSON, text, strlen(text));
    }
    char id[37], now[40];
    azf__new_guid(id);
    now_iso(now);
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "id", id);
    cJSON_AddStringToObject(e, "topic", "/azfunc/local");
    cJSON_AddStringToObject(e, "subject", "azfunc/admin");
    cJSON_AddStringToObject(e, "eventType", "azfunc.admin");
    cJSON_AddStringToObject(e, "eventTime", now);
    cJSON_AddItemToObject(e, "data", j ? j : cJSON_CreateString(text));
    cJSON_AddStringToObject(e, "dataVersion", "1.0");
    cJSON_AddStringToObject(e, "metadataVersion", "1");
    char *s = cJSON_PrintUnformatted(e);
    int rc = s ? azf_value_new_data(v, AZF_VALUE_JSON, s, strlen(s)) : AZF_E_NOMEM;
    cJSON_free(s);
    cJSON_Delete(e);
    return rc;
}

static int cosmos(const char *text, azf_value **v)
{
    cJSON *j = cJSON_Parse(text);
    if (cJSON_IsObject(j)) { /* one document: a list of one */
        cJSON *arr = cJSON_CreateArray();
        cJSON_AddItemToArray(arr, j);
        j = arr;
    }
    char *s = cJSON_IsArray(j) ? cJSON_PrintUnformatted(j) : NULL;
    int rc = s ? azf_value_new_data(v, AZF_VALUE_JSON, s, strlen(s)) : AZF_E_PARSE;
    cJSON_free(s);
    cJSON_Delete(j);
    return rc;
}

static int queue(const char *text, azf_value **v, azf_value_map *md)
{
    char id[37];
    azf__new_guid(id);
    int rc = azf_value_new_string(v, text);
    rc = rc ? rc : set_string(md, "Id", id);
    rc = rc ? rc : set_string(md, "PopReceipt", "");
    rc = rc ? rc : set_string(md, "QueueTrigger", text);
    rc = rc ? rc : set_int(md, "DequeueCount", 1);
    rc = rc ? rc : set_time(md, "InsertionTime");
    rc = rc ? rc : set_time(md, "ExpirationTime");
    rc = rc ? rc : set_time(md, "NextVisibleTime");
    return rc;
}

int azf__admin_input(const azf_function *fn, const char *text, azf_value **value,
                     azf_value_map **metadata, azf__errmsg *err)
{
    *value = NULL;
    *metadata = NULL;
    const azf_binding *trig = azf_function_trigger(fn);
    const char *type = trig ? azf_binding_type(trig) : "";
    azf_value_map *md = NULL;
    int rc = azf_value_map_new(&md);
    if (rc == 0) {
        if (strcasecmp(type, "eventHubTrigger") == 0)
            rc = event_hub(trig, text, value, md);
        else if (strcasecmp(type, "serviceBusTrigger") == 0)
            rc = service_bus(trig, text, value, md);
        else if (strcasecmp(type, "eventGridTrigger") == 0)
            rc = event_grid(text, value);
        else if (strcasecmp(type, "cosmosDBTrigger") == 0)
            rc = cosmos(text, value);
        else if (strcasecmp(type, "queueTrigger") == 0)
            rc = queue(text, value, md);
        else
            rc = azf_value_new_string(value, text);
    }
    if (rc != 0) {
        azf_value_free(*value);
        *value = NULL;
        azf_value_map_free(md);
        if (rc == AZF_E_PARSE)
            return azf__err(err, rc, "a %s input must be a JSON document or a list of them", type);
        return azf__err(err, rc, "%s: %s", type, azf_strerror(rc));
    }
    if (azf_value_map_count(md) == 0)
        azf_value_map_free(md);
    else
        *metadata = md;
    return 0;
}
