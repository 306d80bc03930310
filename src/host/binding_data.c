/* Binding data and binding expressions, as the host resolves them in binding
 * properties (queueName, path, partitionKey, ...): %AppSetting% from the environment,
 * {name} from the trigger's binding data (its metadata, the JSON properties of its
 * payload, blob path tokens, HTTP route and query values), {rand-guid}, {DateTime} and
 * {sys.*}; a dotted name walks into JSON objects. */
#include "host/bindings.h"
#include "host/trace_context.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void azf__new_guid(char out[37])
{
    unsigned char b[16];
    char hex[33];
    azf__random_bytes(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    azf__hex(hex, b, sizeof b); /* 8-4-4-4-12 */
    memcpy(out, hex, 8);
    out[8] = '-';
    memcpy(out + 9, hex + 8, 4);
    out[13] = '-';
    memcpy(out + 14, hex + 12, 4);
    out[18] = '-';
    memcpy(out + 19, hex + 16, 4);
    out[23] = '-';
    memcpy(out + 24, hex + 20, 12);
    out[36] = '\0';
}

/* A value as binding data: JSON text becomes its JSON value, text a string. */
static cJSON *as_json(const azf_value *v)
{
    size_t n = 0;
    const char *d = azf_value_data(v, &n);
    switch (azf_value_kind(v)) {
    case AZF_VALUE_JSON:
        return cJSON_ParseWithLength(d ? d : "", n);
    case AZF_VALUE_STRING:
    case AZF_VALUE_BYTES:
    case AZF_VALUE_STREAM: {
        char *s = azf__strndup(d ? d : "", n);
        cJSON *j = s ? cJSON_CreateString(s) : NULL;
        azf__free(s);
        return j;
    }
    case AZF_VALUE_INT:
        return cJSON_CreateNumber((double)azf_value_int(v));
    case AZF_VALUE_DOUBLE:
        return cJSON_CreateNumber(azf_value_double(v));
    default:
        return NULL;
    }
}

static void put(cJSON *o, const char *key, cJSON *v)
{
    if (!v)
        return;
    cJSON_DeleteItemFromObject(o, key);
    cJSON_AddItemToObject(o, key, v);
}

/* The payload's own properties when it is a JSON object (text that parses as one); on a
 * clash they win over the trigger's metadata, as the host lets the value's own binding
 * data override the built-in names. */
static void add_payload(cJSON *data, const azf_value *trigger)
{
    int kind = azf_value_kind(trigger);
    if (kind != AZF_VALUE_JSON && kind != AZF_VALUE_STRING && kind != AZF_VALUE_BYTES)
        return;
    size_t n = 0;
    const char *d = azf_value_data(trigger, &n);
    cJSON *o = d ? cJSON_ParseWithLength(d, n) : NULL;
    if (cJSON_IsObject(o)) {
        while (o->child) {
            cJSON *c = cJSON_DetachItemViaPointer(o, o->child);
            cJSON_DeleteItemFromObject(data, c->string); /* case-insensitive, as lookups */
            cJSON_AddItemToObject(data, c->string, c);
        }
    }
    cJSON_Delete(o);
}

cJSON *azf__binding_data_new(const azf_function *fn, const azf_value *trigger,
                             const azf_value_map *metadata)
{
    cJSON *data = cJSON_CreateObject();
    if (!data)
        return NULL;
    for (size_t i = 0; metadata && i < azf_value_map_count(metadata); i++) {
        const char *k;
        const azf_value *v = azf_value_map_at(metadata, i, &k);
        put(data, k, as_json(v));
    }
    if (azf_value_kind(trigger) == AZF_VALUE_HTTP) {
        cJSON *query = cJSON_CreateObject(), *headers = cJSON_CreateObject();
        for (size_t i = 0; i < azf_value_http_count(trigger, AZF_HTTP_PARAMS); i++) {
            const char *v, *k = azf_value_http_entry(trigger, AZF_HTTP_PARAMS, i, &v);
            put(data, k, cJSON_CreateString(v ? v : ""));
        }
        for (size_t i = 0; query && i < azf_value_http_count(trigger, AZF_HTTP_QUERY); i++) {
            const char *v, *k = azf_value_http_entry(trigger, AZF_HTTP_QUERY, i, &v);
            put(query, k, cJSON_CreateString(v ? v : ""));
        }
        for (size_t i = 0; headers && i < azf_value_http_count(trigger, AZF_HTTP_HEADERS); i++) {
            const char *v, *k = azf_value_http_entry(trigger, AZF_HTTP_HEADERS, i, &v);
            put(headers, k, cJSON_CreateString(v ? v : ""));
        }
        put(data, "Query", query);
        put(data, "Headers", headers);
        const azf_value *body = azf_value_http_body(trigger);
        if (body)
            add_payload(data, body);
    } else if (trigger && !(azf_function_trigger(fn) &&
                            strcasecmp(azf_binding_type(azf_function_trigger(fn)), "blobTrigger") ==
                                0)) { /* a blob's names: its path */
        add_payload(data, trigger);
    }
    char g[37], now[40];
    azf__new_guid(g);
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON *sys = cJSON_CreateObject();
    cJSON_AddStringToObject(sys, "MethodName", fn ? azf_function_name(fn) : "");
    cJSON_AddStringToObject(sys, "UtcNow", now);
    cJSON_AddStringToObject(sys, "RandGuid", g);
    put(data, "sys", sys);
    return data;
}

/* Case-insensitive member lookup, walking dotted names. */
static const cJSON *lookup(const cJSON *data, const char *name)
{
    const cJSON *cur = data;
    char *copy = azf__strdup(name), *save = NULL;
    for (char *part = copy ? strtok_r(copy, ".", &save) : NULL; part && cur;
         part = strtok_r(NULL, ".", &save))
        cur = cJSON_IsObject(cur) ? cJSON_GetObjectItem(cur, part) : NULL;
    azf__free(copy);
    return cur;
}

static int append_value(azf_buf *out, const cJSON *v)
{
    char num[64];
    if (cJSON_IsString(v))
        return azf_buf_append(out, v->valuestring, strlen(v->valuestring));
    if (cJSON_IsNumber(v)) {
        if (v->valuedouble == (double)(long long)v->valuedouble)
            snprintf(num, sizeof num, "%lld", (long long)v->valuedouble);
        else
            snprintf(num, sizeof num, "%.17g", v->valuedouble);
        return azf_buf_append(out, num, strlen(num));
    }
    if (cJSON_IsBool(v))
        return azf_buf_append(out, cJSON_IsTrue(v) ? "True" : "False", cJSON_IsTrue(v) ? 4 : 5);
    char *s = cJSON_PrintUnformatted(v);
    int rc = s ? azf_buf_append(out, s, strlen(s)) : AZF_E_NOMEM;
    cJSON_free(s);
    return rc;
}

int azf__expr_resolve(const char *tmpl, const cJSON *data, char **out, azf__errmsg *err)
{
    azf_buf b = AZF_BUF_INIT;
    int rc = azf_buf_set(&b, "", 0);
    for (const char *p = tmpl; rc == 0 && *p;) {
        if (*p == '%') {
            const char *end = strchr(p + 1, '%');
            if (!end) {
                rc = azf_buf_append(&b, p, strlen(p));
                break;
            }
            char *name = azf__strndup(p + 1, (size_t)(end - p - 1));
            const char *v = name ? getenv(name) : NULL;
            if (!name)
                rc = AZF_E_NOMEM;
            else if (!v)
                rc = azf__err(err, AZF_E_NOTFOUND, "the app setting '%s' is not set", name);
            else
                rc = azf_buf_append(&b, v, strlen(v));
            azf__free(name);
            p = end + 1;
        } else if (*p == '{' && !data) { /* settings only: tokens stay for later */
            rc = azf_buf_append(&b, "{", 1);
            p++;
        } else if (*p == '{') {
            const char *end = strchr(p + 1, '}');
            if (!end) {
                rc = azf__err(err, AZF_E_PARSE, "'%s': unclosed '{'", tmpl);
                break;
            }
            char *name = azf__strndup(p + 1, (size_t)(end - p - 1));
            char g[37];
            if (!name) {
                rc = AZF_E_NOMEM;
            } else if (strcasecmp(name, "rand-guid") == 0) {
                azf__new_guid(g);
                rc = azf_buf_append(&b, g, 36);
            } else if (strcasecmp(name, "DateTime") == 0) {
                char now[40];
                time_t t = time(NULL);
                struct tm tm;
                gmtime_r(&t, &tm);
                strftime(now, sizeof now, "%Y-%m-%dT%H-%M-%SZ", &tm); /* safe in blob names */
                rc = azf_buf_append(&b, now, strlen(now));
            } else {
                const cJSON *v = lookup(data, name);
                if (!v || cJSON_IsNull(v))
                    rc = azf__err(err, AZF_E_NOTFOUND, "No value for named parameter '%s'.", name);
                else
                    rc = append_value(&b, v);
            }
            azf__free(name);
            p = end + 1;
        } else {
            size_t n = strcspn(p, "%{");
            rc = azf_buf_append(&b, p, n);
            p += n;
        }
    }
    if (rc != 0) {
        if (rc == AZF_E_NOMEM)
            azf__err(err, rc, "out of memory");
        azf_buf_dispose(&b);
        return rc;
    }
    *out = b.ptr;
    return 0;
}

/* Matches text against a path pattern with {name} tokens, lazily as the host's regular
 * expression does: each token takes the shortest non-empty text up to the first place
 * where the literal after it occurs (a token that ends the pattern takes the rest).
 * No backtracking, so a long name cannot make it slow. The tokens go into out. */
static int match_at(const char *pat, const char *text, cJSON *out)
{
    for (;;) {
        while (*pat && *pat != '{') {
            if (*pat != *text)
                return 0;
            pat++, text++;
        }
        if (!*pat)
            return *text == '\0';
        const char *end = strchr(pat, '}');
        if (!end || !*text)
            return 0;
        size_t lit = strcspn(end + 1, "{"); /* the literal after the token */
        const char *stop;
        if (end[1] == '\0') {
            stop = text + strlen(text);
        } else if (lit == 0) { /* another token follows at once: one character */
            stop = text + 1;
        } else {
            stop = text + 1;
            while (*stop && strncmp(stop, end + 1, lit) != 0)
                stop++;
            if (!*stop)
                return 0;
        }
        char *name = azf__strndup(pat + 1, (size_t)(end - pat - 1));
        char *v = azf__strndup(text, (size_t)(stop - text));
        if (name && v && !cJSON_GetObjectItemCaseSensitive(out, name))
            cJSON_AddStringToObject(out, name, v);
        azf__free(name);
        azf__free(v);
        pat = end + 1;
        text = stop;
    }
}

int azf__path_match(const char *pattern, const char *path, cJSON *out)
{
    return match_at(pattern, path, out);
}
