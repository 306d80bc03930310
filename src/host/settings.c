/* host.json and local.settings.json, as Core Tools reads them for `func start`. */
#include "host/host_internal.h"
#include "host/schedule.h"
#include "registry/registry_internal.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define FILE_LIMIT (16u << 20)

void azf__settings_init(azf__settings *s)
{
    memset(s, 0, sizeof *s);
    s->log_level = AZF_LOG_INFO;
    s->function_log_level = -1;
    s->function_timeout_ms = s->max_header_count = s->max_header_bytes = s->max_request_line =
        s->max_body = s->max_connections = s->read_timeout_ms = s->keep_alive_timeout_ms = -1;
}

void azf__settings_clear(azf__settings *s)
{
    for (size_t i = 0; i < s->count; i++) {
        azf__free(s->names[i]);
        azf__free(s->values[i]);
    }
    azf__free(s->names);
    azf__free(s->values);
    azf__free(s->route_prefix);
    azf__settings_init(s);
}

static cJSON *parse(const char *file, const char *text, size_t len, azf__errmsg *err)
{
    cJSON *root = NULL;
    return azf__json_parse_root(text, len, file, &root, err) == 0 ? root : NULL;
}

static int log_level(const char *file, const char *path, const cJSON *v, int *out, azf__errmsg *err)
{
    static const char *const names[] = {"Trace", "Debug",    "Information", "Warning",
                                        "Error", "Critical", "None"};
    for (int i = 0; cJSON_IsString(v) && i < 7; i++) {
        if (strcasecmp(v->valuestring, names[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    return azf__err(err, AZF_E_PARSE,
                    "%s: %s must be one of Trace, Debug, Information, Warning, Error, "
                    "Critical, None",
                    file, path);
}

/* A positive whole number. */
static int count(const char *file, const char *path, const cJSON *v, long long *out,
                 azf__errmsg *err)
{
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 1e15 ||
        v->valuedouble != (double)(long long)v->valuedouble)
        return azf__err(err, AZF_E_PARSE, "%s: %s must be a positive whole number", file, path);
    *out = (long long)v->valuedouble;
    return 0;
}

/* A TimeSpan "[d.]hh:mm:ss" as the host writes durations; "-1" (no limit, stored as 0)
 * only where allow_none. */
static int timespan(const char *file, const char *path, const cJSON *v, int allow_none,
                    long long *out_ms, azf__errmsg *err)
{
    azf__schedule sch;
    azf__errmsg ignored = {{0}};
    if (!v)
        return 0;
    if (allow_none && cJSON_IsString(v) && strcmp(v->valuestring, "-1") == 0) {
        *out_ms = 0;
        return 0;
    }
    if (!cJSON_IsString(v) || !strchr(v->valuestring, ':') ||
        azf__schedule_parse(&sch, v->valuestring, &ignored) != 0 || !sch.is_interval)
        return azf__err(err, AZF_E_PARSE, "%s: %s must be a duration \"hh:mm:ss\"%s", file, path,
                        allow_none ? " or \"-1\"" : "");
    *out_ms = (long long)sch.interval * 1000;
    return 0;
}

int azf__settings_parse_host_json(azf__settings *s, const char *file, const char *text, size_t len,
                                  azf__errmsg *err)
{
    cJSON *root = parse(file, text, len, err);
    if (!root)
        return AZF_E_PARSE;
    int rc = 0;
    const cJSON *http = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "extensions"), "http");
    const cJSON *prefix = cJSON_GetObjectItemCaseSensitive(http, "routePrefix");
    if (prefix && !cJSON_IsString(prefix)) {
        rc = azf__err(err, AZF_E_PARSE, "%s: extensions.http.routePrefix must be a string", file);
    } else if (prefix) {
        const char *p = prefix->valuestring;
        size_t n = strlen(p);
        while (*p == '/') /* "/api/" and "api" are the same prefix */
            p++, n--;
        while (n > 0 && p[n - 1] == '/')
            n--;
        azf__free(s->route_prefix);
        if (!(s->route_prefix = azf__strndup(p, n)))
            rc = AZF_E_NOMEM;
    }
    const cJSON *levels = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "logging"), "logLevel");
    const cJSON *def = cJSON_GetObjectItemCaseSensitive(levels, "default");
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(levels, "Function");
    if (rc == 0 && def)
        rc = log_level(file, "logging.logLevel.default", def, &s->log_level, err);
    if (rc == 0 && fn)
        rc = log_level(file, "logging.logLevel.Function", fn, &s->function_log_level, err);
    if (rc == 0)
        rc = timespan(file, "functionTimeout",
                      cJSON_GetObjectItemCaseSensitive(root, "functionTimeout"), 1,
                      &s->function_timeout_ms, err);
    static const struct {
        const char *key;
        size_t off;
    } counts[] = {
        {"maxRequestHeaderCount", offsetof(azf__settings, max_header_count)},
        {"maxRequestHeadersTotalSize", offsetof(azf__settings, max_header_bytes)},
        {"maxRequestLineSize", offsetof(azf__settings, max_request_line)},
        {"maxRequestBodySize", offsetof(azf__settings, max_body)},
        {"maxConcurrentConnections", offsetof(azf__settings, max_connections)},
    };
    char path[96];
    for (size_t i = 0; rc == 0 && i < sizeof counts / sizeof counts[0]; i++) {
        snprintf(path, sizeof path, "extensions.http.%s", counts[i].key);
        rc = count(file, path, cJSON_GetObjectItemCaseSensitive(http, counts[i].key),
                   (long long *)((char *)s + counts[i].off), err);
    }
    if (rc == 0)
        rc = timespan(file, "extensions.http.requestTimeout",
                      cJSON_GetObjectItemCaseSensitive(http, "requestTimeout"), 0,
                      &s->read_timeout_ms, err);
    if (rc == 0)
        rc = timespan(file, "extensions.http.keepAliveTimeout",
                      cJSON_GetObjectItemCaseSensitive(http, "keepAliveTimeout"), 0,
                      &s->keep_alive_timeout_ms, err);
    cJSON_Delete(root);
    return rc;
}

static int add_entry(azf__settings *s, const char *name, const char *value)
{
    char **n = azf__realloc(s->names, (s->count + 1) * sizeof *n);
    if (!n)
        return AZF_E_NOMEM;
    s->names = n;
    char **v = azf__realloc(s->values, (s->count + 1) * sizeof *v);
    if (!v)
        return AZF_E_NOMEM;
    s->values = v;
    char *dn = azf__strdup(name), *dv = azf__strdup(value);
    if (!dn || !dv) {
        azf__free(dn);
        azf__free(dv);
        return AZF_E_NOMEM;
    }
    s->names[s->count] = dn;
    s->values[s->count++] = dv;
    return 0;
}

/* Values: strings, numbers and booleans (as Core Tools takes them) become text. */
static int add_section(azf__settings *s, const char *file, const cJSON *sec, const char *secname,
                       const char *prefix, azf__errmsg *err)
{
    if (!sec || cJSON_IsNull(sec))
        return 0;
    if (!cJSON_IsObject(sec))
        return azf__err(err, AZF_E_PARSE, "%s: %s must be an object", file, secname);
    for (const cJSON *e = sec->child; e; e = e->next) {
        char num[64], *name;
        const char *text = NULL;
        if (cJSON_IsString(e))
            text = e->valuestring;
        else if (cJSON_IsBool(e))
            text = cJSON_IsTrue(e) ? "true" : "false";
        else if (cJSON_IsNumber(e))
            snprintf(num, sizeof num, "%.17g", e->valuedouble), text = num;
        else
            return azf__err(err, AZF_E_PARSE, "%s: %s.%s must be a string", file, secname,
                            e->string);
        if (!*e->string || strchr(e->string, '='))
            return azf__err(err, AZF_E_PARSE, "%s: %s: invalid setting name '%s'", file, secname,
                            e->string);
        if (!(name = azf__asprintf("%s%s", prefix, e->string)))
            return AZF_E_NOMEM;
        int rc = add_entry(s, name, text);
        azf__free(name);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int azf__settings_parse_local(azf__settings *s, const char *file, const char *text, size_t len,
                              azf__errmsg *err)
{
    cJSON *root = parse(file, text, len, err);
    if (!root)
        return AZF_E_PARSE;
    int rc = 0;
    const cJSON *enc = cJSON_GetObjectItemCaseSensitive(root, "IsEncrypted");
    if (cJSON_IsTrue(enc) || (cJSON_IsString(enc) && azf__parse_bool(enc->valuestring) == 1))
        rc = azf__err(err, AZF_E_UNSUPPORTED,
                      "%s: IsEncrypted is true: encrypted settings are not supported; decrypt "
                      "them (func settings decrypt) or set IsEncrypted to false",
                      file);
    if (rc == 0)
        rc = add_section(s, file, cJSON_GetObjectItemCaseSensitive(root, "Values"), "Values", "",
                         err);
    if (rc == 0)
        rc = add_section(s, file, cJSON_GetObjectItemCaseSensitive(root, "ConnectionStrings"),
                         "ConnectionStrings", "ConnectionStrings:", err);
    cJSON_Delete(root);
    return rc;
}

static int read_file(const char *path, char **text, size_t *len, azf__errmsg *err)
{
    FILE *f = fopen(path, "rb");
    *text = NULL;
    if (!f)
        return 1; /* absent */
    azf_buf b = AZF_BUF_INIT;
    char chunk[8192];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.size + n > FILE_LIMIT)
            rc = azf__err(err, AZF_E_TOOBIG, "%s: larger than 16 MiB", path);
        else
            rc = azf_buf_append(&b, chunk, n);
    }
    if (rc == 0 && ferror(f))
        rc = azf__err(err, AZF_E_IO, "%s: read error", path);
    fclose(f);
    if (rc != 0) {
        azf_buf_dispose(&b);
        return rc;
    }
    if (!b.ptr && (rc = azf_buf_set(&b, "", 0)) != 0)
        return rc;
    *len = b.size;
    *text = b.ptr; /* allocated by the library allocator: azf__free releases it */
    return 0;
}

int azf__settings_load(azf__settings *s, const char *dir, azf__errmsg *err)
{
    static const char *const files[] = {"host.json", "local.settings.json"};
    for (int i = 0; i < 2; i++) {
        char *path = azf__asprintf("%s/%s", dir, files[i]), *text;
        size_t len = 0;
        if (!path)
            return AZF_E_NOMEM;
        int rc = read_file(path, &text, &len, err);
        if (rc == 0)
            rc = i == 0 ? azf__settings_parse_host_json(s, path, text, len, err)
                        : azf__settings_parse_local(s, path, text, len, err);
        azf__free(text);
        azf__free(path);
        if (rc < 0)
            return rc;
    }
    return 0;
}
