/* The registry: functions built from the metadata JSON contract, lookups, handlers,
 * and RpcFunctionMetadata for the worker. */
#include "registry/registry_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- handlers ------------------------------------------------------------------- */

int azf_handler_new(azf_handler **out)
{
    if (!out)
        return AZF_E_INVALID;
    azf_handler *h = azf__calloc(1, sizeof *h);
    if (!h)
        return AZF_E_NOMEM;
    *out = h;
    return 0;
}

void azf_handler_free(azf_handler *h)
{
    azf__free(h);
}

int azf_handler_set_invoke(azf_handler *h, azf_invoke_fn fn)
{
    if (!h)
        return AZF_E_INVALID;
    h->invoke = fn;
    return 0;
}

int azf_handler_set_run(azf_handler *h, azf_invoke_fn fn)
{
    if (!h)
        return AZF_E_INVALID;
    h->run = fn;
    return 0;
}

int azf_handler_set_cancel(azf_handler *h, azf_cancel_fn fn)
{
    if (!h)
        return AZF_E_INVALID;
    h->cancel = fn;
    return 0;
}

int azf_handler_set_release(azf_handler *h, azf_release_user_data_fn fn)
{
    if (!h)
        return AZF_E_INVALID;
    h->release = fn;
    return 0;
}

/* ---- building a function from metadata -------------------------------------------- */

void azf__function_free(azf_function *fn)
{
    if (!fn)
        return;
    azf__free(fn->name);
    azf__free(fn->id);
    azf__free(fn->directory);
    azf__free(fn->script_file);
    azf__free(fn->entry_point);
    azf__free(fn->language);
    azf__free(fn->load_error);
    for (size_t i = 0; i < fn->n_bindings; i++) {
        azf__free(fn->bindings[i].name);
        azf__free(fn->bindings[i].type);
        azf__free(fn->bindings[i].json);
    }
    azf__free(fn->bindings);
    azf__free(fn->route_template);
    azf__route_free(fn->route);
    for (size_t i = 0; i < fn->n_methods; i++)
        azf__free(fn->methods[i]);
    azf__free(fn->methods);
    for (size_t i = 0; i < fn->n_props; i++) {
        azf__free(fn->props[i].name);
        azf__free(fn->props[i].value);
    }
    azf__free(fn->props);
    azf__free(fn);
}

static int valid_function_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128 || !isalpha((unsigned char)s[0]) || strcasecmp(s, "host") == 0)
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
            return 0;
    return 1;
}

static int valid_binding_name(const char *s)
{
    if (!s)
        return 0;
    if (strcmp(s, "$return") == 0)
        return 1;
    size_t n = strlen(s);
    if (n == 0 || n > 128 || !isalpha((unsigned char)s[0]))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Looks a word up case-insensitively (underscores ignored); -1 when absent. */
static int lookup(const char *s, const char *const *words, const int *values, size_t n)
{
    char norm[64];
    size_t k = 0;
    for (; *s && k + 1 < sizeof norm; s++)
        if (*s != '_')
            norm[k++] = (char)tolower((unsigned char)*s);
    if (*s)
        return -1;
    norm[k] = '\0';
    for (size_t i = 0; i < n; i++)
        if (strcmp(norm, words[i]) == 0)
            return values[i];
    return -1;
}

static const char *opt_string(const cJSON *obj, const char *key, int *bad)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!it || cJSON_IsNull(it))
        return NULL;
    if (!cJSON_IsString(it)) {
        *bad = 1;
        return NULL;
    }
    return it->valuestring;
}

static int dup_opt(char **dst, const char *s)
{
    return (*dst = azf__strdup(s ? s : "")) ? 0 : AZF_E_NOMEM;
}

/* TimeSpan text "[-][d.]hh:mm[:ss[.fffffff]]" -> milliseconds. */
static int parse_timespan(const char *s, int64_t *ms)
{
    int neg = 0;
    if (*s == '-')
        neg = 1, s++;
    long long v[4] = {0, 0, 0, 0};
    int n = 0;
    const char *q = s;
    long long days = 0;
    const char *dot = strchr(q, '.'), *colon = strchr(q, ':');
    if (dot && colon && dot < colon) {
        char *end;
        days = strtoll(q, &end, 10);
        if (end != dot || days < 0 || days > 10675199)
            return -1;
        q = dot + 1;
    }
    while (n < 3) {
        if (!isdigit((unsigned char)*q))
            return -1;
        char *end;
        v[n++] = strtoll(q, &end, 10);
        q = end;
        if (*q != ':')
            break;
        q++;
    }
    if (n < 2 || v[0] > 23 || v[1] > 59 || v[2] > 59)
        return -1;
    long long frac_ms = 0;
    if (*q == '.' && n == 3) {
        q++;
        int digits = 0;
        long long f = 0;
        while (isdigit((unsigned char)*q)) {
            if (digits < 3)
                f = f * 10 + (*q - '0');
            digits++;
            q++;
        }
        if (!digits || digits > 7)
            return -1;
        for (int d = digits; d < 3; d++)
            f *= 10;
        frac_ms = f;
    }
    if (*q)
        return -1;
    long long total = ((days * 24 + v[0]) * 60 + v[1]) * 60 + v[2];
    total = total * 1000 + frac_ms;
    *ms = neg ? -total : total;
    return 0;
}

static int build_retry(const cJSON *r, azf_function *fn, azf__errmsg *err)
{
    if (!cJSON_IsObject(r))
        return azf__err(err, AZF_E_PARSE, "retry must be a JSON object.");
    static const char *const words[] = {"fixeddelay", "exponentialbackoff"};
    static const int vals[] = {AZF_RETRY_FIXED_DELAY, AZF_RETRY_EXPONENTIAL_BACKOFF};
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(r, "strategy");
    int strategy = cJSON_IsString(st) ? lookup(st->valuestring, words, vals, 2) : -1;
    if (strategy < 0)
        return azf__err(err, AZF_E_PARSE,
                        "retry.strategy must be 'fixed_delay' or 'exponential_backoff'.");
    const cJSON *mc = cJSON_GetObjectItemCaseSensitive(r, "maxRetryCount");
    int64_t count = 0;
    char *end = NULL;
    int rc = -1;
    if (cJSON_IsNumber(mc))
        rc = azf__double_to_i64(mc->valuedouble, -1, INT32_MAX, &count);
    else if (cJSON_IsString(mc) && *mc->valuestring &&
             ((count = strtoll(mc->valuestring, &end, 10)), *end == '\0'))
        rc = count < -1 || count > INT32_MAX ? -2 : 0;
    if (rc == -1)
        return azf__err(err, AZF_E_PARSE, "retry.maxRetryCount must be an integer.");
    if (rc == -2)
        return azf__err(err, AZF_E_PARSE, "retry.maxRetryCount must be between -1 and 2147483647.");
    static const char *const keys[] = {"delayInterval", "minimumInterval", "maximumInterval"};
    int64_t *dst[] = {&fn->delay_ms, &fn->minimum_ms, &fn->maximum_ms};
    for (int i = 0; i < 3; i++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(r, keys[i]);
        int needed = strategy == AZF_RETRY_FIXED_DELAY ? i == 0 : i > 0;
        if (!it || cJSON_IsNull(it)) {
            if (needed)
                return azf__err(err, AZF_E_PARSE, "retry.%s is required for this strategy.",
                                keys[i]);
            continue;
        }
        if (!cJSON_IsString(it) || parse_timespan(it->valuestring, dst[i]) || *dst[i] < 0)
            return azf__err(err, AZF_E_PARSE, "retry.%s must be a time span such as \"00:00:05\".",
                            keys[i]);
    }
    if (strategy == AZF_RETRY_EXPONENTIAL_BACKOFF && fn->minimum_ms > fn->maximum_ms)
        return azf__err(err, AZF_E_PARSE,
                        "retry.minimumInterval must not be above retry.maximumInterval.");
    fn->retry_strategy = strategy;
    fn->max_retry_count = (int32_t)count;
    return 0;
}

static int build_http(const cJSON *b, azf_function *fn, azf__errmsg *err)
{
    int bad = 0;
    const char *route = opt_string(b, "route", &bad);
    if (bad)
        return azf__err(err, AZF_E_PARSE, "The binding '%s' has a route that is not a string.",
                        fn->trigger->name);
    if (!route || !*route)
        route = fn->name;
    if (!(fn->route_template = azf__strdup(route)))
        return AZF_E_NOMEM;
    int rc = azf__route_parse(&fn->route, route, err);
    if (rc)
        return rc;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(b, "methods");
    if (m && !cJSON_IsNull(m)) {
        if (!cJSON_IsArray(m))
            return azf__err(err, AZF_E_PARSE,
                            "The binding '%s' has a methods list that is not an "
                            "array.",
                            fn->trigger->name);
        size_t n = (size_t)cJSON_GetArraySize(m);
        if (n && !(fn->methods = azf__calloc(n, sizeof *fn->methods)))
            return AZF_E_NOMEM;
        const cJSON *it;
        cJSON_ArrayForEach(it, m)
        {
            if (!cJSON_IsString(it) || !*it->valuestring)
                return azf__err(err, AZF_E_PARSE, "The binding '%s' has an invalid method.",
                                fn->trigger->name);
            char *s = azf__strdup(it->valuestring);
            if (!s)
                return AZF_E_NOMEM;
            for (char *q = s; *q; q++)
                *q = (char)toupper((unsigned char)*q);
            fn->methods[fn->n_methods++] = s;
        }
    }
    static const char *const words[] = {"anonymous", "user", "function", "system", "admin"};
    static const int vals[] = {AZF_AUTH_ANONYMOUS, AZF_AUTH_USER, AZF_AUTH_FUNCTION,
                               AZF_AUTH_SYSTEM, AZF_AUTH_ADMIN};
    const char *auth = opt_string(b, "authLevel", &bad);
    fn->auth_level = AZF_AUTH_FUNCTION;
    if (bad || (auth && (fn->auth_level = lookup(auth, words, vals, 5)) < 0))
        return azf__err(err, AZF_E_PARSE, "The binding '%s' has an invalid authLevel '%s'.",
                        fn->trigger->name, auth ? auth : "");
    return 0;
}

static int build_binding(const cJSON *b, const char *raw, azf_binding *out, azf__errmsg *err,
                         size_t index)
{
    if (!cJSON_IsObject(b))
        return azf__err(err, AZF_E_PARSE, "Binding %zu is not a JSON object.", index);
    int bad = 0;
    const char *name = opt_string(b, "name", &bad);
    const char *type = opt_string(b, "type", &bad);
    if (!(out->name = azf__strdup(name ? name : "")))
        return AZF_E_NOMEM;
    if (!type || !*type)
        return azf__err(err, AZF_E_PARSE, "The binding '%s' has no type.", out->name);
    if (!(out->type = azf__strdup(type)))
        return AZF_E_NOMEM;
    static const char *const dirs[] = {"in", "out", "inout"};
    static const int dvals[] = {AZF_DIRECTION_IN, AZF_DIRECTION_OUT, AZF_DIRECTION_INOUT};
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(b, "direction");
    out->direction = AZF_DIRECTION_IN;
    if (d && !cJSON_IsNull(d)) {
        if (!cJSON_IsString(d) || (out->direction = lookup(d->valuestring, dirs, dvals, 3)) < 0) {
            char *shown = cJSON_IsString(d) ? NULL : cJSON_PrintUnformatted(d);
            azf__err(err, AZF_E_PARSE,
                     "The binding '%s' has an invalid direction '%s'. Expected 'in', 'out' or "
                     "'inout'.",
                     out->name,
                     cJSON_IsString(d) ? d->valuestring
                     : shown           ? shown
                                       : "?");
            cJSON_free(shown);
            return AZF_E_PARSE;
        }
    }
    static const char *const dts[] = {"undefined", "string", "binary", "stream"};
    static const int tvals[] = {AZF_DATA_TYPE_UNDEFINED, AZF_DATA_TYPE_STRING, AZF_DATA_TYPE_BINARY,
                                AZF_DATA_TYPE_STREAM};
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(b, "dataType");
    if (dt && !cJSON_IsNull(dt) &&
        (!cJSON_IsString(dt) || (out->data_type = lookup(dt->valuestring, dts, tvals, 4)) < 0))
        return azf__err(err, AZF_E_PARSE,
                        "The binding '%s' has an invalid dataType. Expected 'string', 'binary', "
                        "'stream' or 'undefined'.",
                        out->name);
    size_t tl = strlen(type);
    out->is_trigger =
        out->direction != AZF_DIRECTION_OUT && tl >= 7 && strcasecmp(type + tl - 7, "trigger") == 0;
    if (raw) {
        out->json = azf__strdup(raw);
    } else {
        char *s = cJSON_PrintUnformatted(b);
        if (!s)
            return AZF_E_NOMEM;
        out->json = azf__strdup(s);
        cJSON_free(s);
    }
    return out->json ? 0 : AZF_E_NOMEM;
}

static int build(const cJSON *meta, azf_function *fn, azf__errmsg *err)
{
    if (!cJSON_IsObject(meta))
        return azf__err(err, AZF_E_PARSE, "The function metadata must be a JSON object.");
    int bad = 0;
    const char *name = opt_string(meta, "name", &bad);
    if (!name || bad || !valid_function_name(name))
        return azf__err(err, AZF_E_PARSE, "'%s' is not a valid function name.", name ? name : "");
    static const char *const keys[] = {"functionId", "directory", "scriptFile", "entryPoint",
                                       "language"};
    char **dst[] = {&fn->id, &fn->directory, &fn->script_file, &fn->entry_point, &fn->language};
    if (dup_opt(&fn->name, name))
        return AZF_E_NOMEM;
    for (int i = 0; i < 5; i++) {
        const char *s = opt_string(meta, keys[i], &bad);
        if (bad)
            return azf__err(err, AZF_E_PARSE, "%s must be a string.", keys[i]);
        if (dup_opt(dst[i], i == 4 && !s ? "python" : s))
            return AZF_E_NOMEM;
    }
    const cJSON *dis = cJSON_GetObjectItemCaseSensitive(meta, "disabled");
    if (cJSON_IsBool(dis))
        fn->disabled = cJSON_IsTrue(dis);
    else if (cJSON_IsString(dis) &&
             (!strcasecmp(dis->valuestring, "true") || !strcasecmp(dis->valuestring, "false")))
        fn->disabled = !strcasecmp(dis->valuestring, "true");
    else if (dis && !cJSON_IsNull(dis))
        return azf__err(err, AZF_E_PARSE, "disabled must be true or false.");

    /* Bindings, from "bindings" and/or the verbatim "rawBindings". */
    const cJSON *bs = cJSON_GetObjectItemCaseSensitive(meta, "bindings");
    const cJSON *raws = cJSON_GetObjectItemCaseSensitive(meta, "rawBindings");
    if (bs && !cJSON_IsNull(bs) && !cJSON_IsArray(bs))
        return azf__err(err, AZF_E_PARSE, "bindings must be an array.");
    if (raws && !cJSON_IsNull(raws) && !cJSON_IsArray(raws))
        return azf__err(err, AZF_E_PARSE, "rawBindings must be an array of strings.");
    size_t nb = cJSON_IsArray(bs) ? (size_t)cJSON_GetArraySize(bs) : 0;
    size_t nr = cJSON_IsArray(raws) ? (size_t)cJSON_GetArraySize(raws) : 0;
    if (cJSON_IsArray(bs) && cJSON_IsArray(raws) && nb != nr)
        return azf__err(err, AZF_E_PARSE, "rawBindings has %zu entries but bindings has %zu.", nr,
                        nb);
    size_t n = cJSON_IsArray(bs) ? nb : nr;
    if (n && !(fn->bindings = azf__calloc(n, sizeof *fn->bindings)))
        return AZF_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const cJSON *raw = cJSON_IsArray(raws) ? cJSON_GetArrayItem(raws, (int)i) : NULL;
        if (raw && !cJSON_IsString(raw))
            return azf__err(err, AZF_E_PARSE, "rawBindings[%zu] must be a string.", i);
        cJSON *parsed = NULL;
        const cJSON *obj = cJSON_IsArray(bs) ? cJSON_GetArrayItem(bs, (int)i) : NULL;
        if (!obj) {
            if (!(parsed = cJSON_Parse(raw->valuestring)))
                return azf__err(err, AZF_E_PARSE, "rawBindings[%zu] is not valid JSON.", i);
            obj = parsed;
        }
        fn->n_bindings = i + 1;
        int rc = build_binding(obj, raw ? raw->valuestring : NULL, &fn->bindings[i], err, i);
        cJSON_Delete(parsed);
        if (rc)
            return rc;
    }

    /* The host's checks, in the host's order. */
    size_t triggers = 0;
    for (size_t i = 0; i < n; i++)
        if (fn->bindings[i].is_trigger && triggers++ == 0)
            fn->trigger = &fn->bindings[i];
    if (!triggers)
        return azf__err(err, AZF_E_PARSE,
                        "No trigger binding specified. A function must have a trigger input "
                        "binding.");
    for (size_t i = 0; i < n; i++) {
        const azf_binding *b = &fn->bindings[i];
        if (!valid_binding_name(b->name))
            return azf__err(err, AZF_E_PARSE,
                            "The binding name %s is invalid. Please assign a valid name to the "
                            "binding.",
                            b->name);
        if (strcmp(b->name, "$return") == 0 && b->direction != AZF_DIRECTION_OUT)
            return azf__err(err, AZF_E_PARSE,
                            "$return bindings must specify a direction of 'out'.");
        for (size_t j = 0; j < i; j++)
            if (strcasecmp(fn->bindings[j].name, b->name) == 0)
                return azf__err(err, AZF_E_PARSE,
                                "Multiple bindings with name '%s' discovered. Binding names must "
                                "be unique.",
                                b->name);
    }
    if (triggers > 1) {
        const azf_binding *second = NULL;
        for (size_t i = 0; i < n && !second; i++)
            if (fn->bindings[i].is_trigger && &fn->bindings[i] != fn->trigger)
                second = &fn->bindings[i];
        return azf__err(err, AZF_E_PARSE,
                        "Multiple trigger bindings found ('%s', '%s'). A function must have "
                        "exactly one trigger binding.",
                        fn->trigger->name, second->name);
    }
    if (strcasecmp(fn->trigger->type, "httpTrigger") == 0) {
        const cJSON *tb = NULL;
        cJSON *parsed = NULL;
        size_t ti = (size_t)(fn->trigger - fn->bindings);
        if (cJSON_IsArray(bs))
            tb = cJSON_GetArrayItem(bs, (int)ti);
        else
            tb = parsed = cJSON_Parse(fn->trigger->json);
        int rc = tb ? build_http(tb, fn, err) : AZF_E_NOMEM;
        cJSON_Delete(parsed);
        if (rc)
            return rc;
    }

    fn->retry_strategy = AZF_RETRY_NONE;
    const cJSON *retry = cJSON_GetObjectItemCaseSensitive(meta, "retry");
    if (retry && !cJSON_IsNull(retry)) {
        int rc = build_retry(retry, fn, err);
        if (rc)
            return rc;
    }
    const cJSON *props = cJSON_GetObjectItemCaseSensitive(meta, "properties");
    if (props && !cJSON_IsNull(props)) {
        if (!cJSON_IsObject(props))
            return azf__err(err, AZF_E_PARSE, "properties must be a JSON object.");
        size_t np = (size_t)cJSON_GetArraySize(props);
        if (np && !(fn->props = azf__calloc(np, sizeof *fn->props)))
            return AZF_E_NOMEM;
        const cJSON *it;
        cJSON_ArrayForEach(it, props)
        {
            if (!cJSON_IsString(it))
                return azf__err(err, AZF_E_PARSE, "properties.%s must be a string.", it->string);
            azf__kv *kv = &fn->props[fn->n_props++];
            if (!(kv->name = azf__strdup(it->string)) ||
                !(kv->value = azf__strdup(it->valuestring)))
                return AZF_E_NOMEM;
        }
    }
    return 0;
}

int azf__function_build(const cJSON *meta, azf_function **out, azf__errmsg *err)
{
    azf_function *fn = azf__calloc(1, sizeof *fn);
    if (!fn)
        return AZF_E_NOMEM;
    int rc = build(meta, fn, err);
    if (rc) {
        azf__function_free(fn);
        return rc;
    }
    *out = fn;
    return 0;
}

int azf__function_failed(const char *name, const char *directory, const char *error,
                         azf_function **out)
{
    azf_function *fn = azf__calloc(1, sizeof *fn);
    if (!fn)
        return AZF_E_NOMEM;
    fn->retry_strategy = AZF_RETRY_NONE;
    if (dup_opt(&fn->name, name) || dup_opt(&fn->id, NULL) || dup_opt(&fn->directory, directory) ||
        dup_opt(&fn->script_file, NULL) || dup_opt(&fn->entry_point, NULL) ||
        dup_opt(&fn->language, "python") || dup_opt(&fn->load_error, error)) {
        azf__function_free(fn);
        return AZF_E_NOMEM;
    }
    *out = fn;
    return 0;
}

/* ---- the registry ------------------------------------------------------------------ */

int azf_registry_new(azf_registry **out)
{
    if (!out)
        return AZF_E_INVALID;
    azf_registry *r = azf__calloc(1, sizeof *r);
    if (!r)
        return AZF_E_NOMEM;
    if (pthread_rwlock_init(&r->lock, NULL)) {
        azf__free(r);
        return AZF_E_NOMEM;
    }
    *out = r;
    return 0;
}

void azf_registry_free(azf_registry *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n; i++) {
        azf_function *fn = reg->fns[i];
        if (fn->handler.release)
            fn->handler.release(fn->user_data);
        azf__function_free(fn);
    }
    azf__free(reg->fns);
    pthread_rwlock_destroy(&reg->lock);
    azf__free(reg);
}

const char *azf_registry_errmsg(const azf_registry *reg)
{
    return reg ? reg->err.text : "invalid argument";
}

static azf_function *find_locked(const azf_registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->n; i++)
        if (strcasecmp(reg->fns[i]->name, name) == 0)
            return reg->fns[i];
    return NULL;
}

static azf_function *find_id_locked(const azf_registry *reg, const char *id)
{
    if (!*id)
        return NULL;
    for (size_t i = 0; i < reg->n; i++)
        if (strcmp(reg->fns[i]->id, id) == 0)
            return reg->fns[i];
    return NULL;
}

int azf__registry_insert(azf_registry *reg, azf_function *fn, const azf_handler *h, void *user_data)
{
    int rc = 0;
    pthread_rwlock_wrlock(&reg->lock);
    const azf_function *other;
    if (find_locked(reg, fn->name))
        rc = azf__err(&reg->err, AZF_E_EXISTS, "A function named '%s' already exists.", fn->name);
    else if ((other = find_id_locked(reg, fn->id)) != NULL)
        rc = azf__err(&reg->err, AZF_E_EXISTS, "The function id '%s' is already used by '%s'.",
                      fn->id, other->name);
    else if (azf__grow((void **)&reg->fns, &reg->cap, reg->n + 1, sizeof *reg->fns))
        rc = azf__err(&reg->err, AZF_E_NOMEM, "out of memory");
    if (!rc) {
        if (h)
            fn->handler = *h;
        fn->user_data = user_data;
        reg->fns[reg->n++] = fn;
    }
    pthread_rwlock_unlock(&reg->lock);
    return rc;
}

void azf__registry_retain(azf_registry *reg, int (*keep)(const azf_function *fn))
{
    pthread_rwlock_wrlock(&reg->lock);
    size_t k = 0;
    for (size_t i = 0; i < reg->n; i++) {
        azf_function *fn = reg->fns[i];
        if (keep(fn)) {
            reg->fns[k++] = fn;
            continue;
        }
        if (fn->handler.release)
            fn->handler.release(fn->user_data);
        azf__function_free(fn);
    }
    reg->n = k;
    pthread_rwlock_unlock(&reg->lock);
}

int azf_registry_add(azf_registry *reg, const char *metadata_json, const azf_handler *handler,
                     void *user_data)
{
    if (!reg || !metadata_json)
        return AZF_E_INVALID;
    const char *end = NULL;
    cJSON *meta = cJSON_ParseWithOpts(metadata_json, &end, 1);
    azf__errmsg err;
    azf__err_clear(&err);
    if (!meta) {
        pthread_rwlock_wrlock(&reg->lock);
        int rc = azf__err(&reg->err, AZF_E_PARSE,
                          "The function metadata is not valid JSON "
                          "(error at offset %zu).",
                          end ? (size_t)(end - metadata_json) : (size_t)0);
        pthread_rwlock_unlock(&reg->lock);
        return rc;
    }
    azf_function *fn = NULL;
    int rc = azf__function_build(meta, &fn, &err);
    cJSON_Delete(meta);
    if (rc) {
        pthread_rwlock_wrlock(&reg->lock);
        memcpy(reg->err.text, err.text, sizeof err.text);
        if (rc == AZF_E_NOMEM && !err.text[0])
            azf__err(&reg->err, rc, "out of memory");
        pthread_rwlock_unlock(&reg->lock);
        return rc;
    }
    if ((rc = azf__registry_insert(reg, fn, handler, user_data)))
        azf__function_free(fn);
    return rc;
}

int azf_registry_bind_id(azf_registry *reg, const char *name, const char *function_id)
{
    if (!reg || !name || !function_id || !*function_id)
        return AZF_E_INVALID;
    int rc = 0;
    pthread_rwlock_wrlock(&reg->lock);
    azf_function *fn = find_locked(reg, name);
    const azf_function *other = find_id_locked(reg, function_id);
    if (!fn)
        rc = azf__err(&reg->err, AZF_E_NOTFOUND, "No function named '%s'.", name);
    else if (strcmp(fn->id, function_id) == 0)
        rc = 0;
    else if (*fn->id)
        rc = azf__err(&reg->err, AZF_E_STATE, "The function '%s' already has the id '%s'.",
                      fn->name, fn->id);
    else if (other)
        rc = azf__err(&reg->err, AZF_E_EXISTS, "The function id '%s' is already used by '%s'.",
                      function_id, other->name);
    else {
        char *id = azf__strdup(function_id);
        if (!id)
            rc = AZF_E_NOMEM;
        else {
            azf__free(fn->id);
            fn->id = id;
        }
    }
    pthread_rwlock_unlock(&reg->lock);
    return rc;
}

size_t azf_registry_count(const azf_registry *reg)
{
    if (!reg)
        return 0;
    pthread_rwlock_rdlock((pthread_rwlock_t *)&reg->lock);
    size_t n = reg->n;
    pthread_rwlock_unlock((pthread_rwlock_t *)&reg->lock);
    return n;
}

const azf_function *azf_registry_at(const azf_registry *reg, size_t i)
{
    if (!reg)
        return NULL;
    pthread_rwlock_rdlock((pthread_rwlock_t *)&reg->lock);
    const azf_function *fn = i < reg->n ? reg->fns[i] : NULL;
    pthread_rwlock_unlock((pthread_rwlock_t *)&reg->lock);
    return fn;
}

const azf_function *azf_registry_find(const azf_registry *reg, const char *name)
{
    if (!reg || !name)
        return NULL;
    pthread_rwlock_rdlock((pthread_rwlock_t *)&reg->lock);
    const azf_function *fn = find_locked(reg, name);
    pthread_rwlock_unlock((pthread_rwlock_t *)&reg->lock);
    return fn;
}

const azf_function *azf_registry_find_id(const azf_registry *reg, const char *id)
{
    if (!reg || !id)
        return NULL;
    pthread_rwlock_rdlock((pthread_rwlock_t *)&reg->lock);
    const azf_function *fn = find_id_locked(reg, id);
    pthread_rwlock_unlock((pthread_rwlock_t *)&reg->lock);
    return fn;
}

static int method_allowed(const azf_function *fn, const char *method)
{
    if (!fn->n_methods)
        return 1;
    for (size_t i = 0; i < fn->n_methods; i++)
        if (strcasecmp(fn->methods[i], method) == 0)
            return 1;
    return 0;
}

int azf_registry_match_route(const azf_registry *reg, const char *method, const char *path,
                             const azf_function **fn, azf_value_map **route_values)
{
    if (!reg || !method || !path || !fn)
        return AZF_E_INVALID;
    pthread_rwlock_rdlock((pthread_rwlock_t *)&reg->lock);
    const azf_function *best = NULL;
    int path_matched = 0, rc = 0;
    for (size_t i = 0; i < reg->n && rc >= 0; i++) {
        const azf_function *f = reg->fns[i];
        if (!f->route || f->disabled || f->load_error)
            continue;
        rc = azf__route_match(f->route, path, NULL);
        if (rc != 1)
            continue;
        path_matched = 1;
        if (method_allowed(f, method) && (!best || azf__route_compare(f->route, best->route) < 0))
            best = f;
    }
    if (rc >= 0 && best && route_values)
        rc = azf__route_match(best->route, path, route_values);
    pthread_rwlock_unlock((pthread_rwlock_t *)&reg->lock);
    if (rc < 0)
        return rc;
    if (!best)
        return path_matched ? AZF_E_UNSUPPORTED : AZF_E_NOTFOUND;
    *fn = best;
    return 0;
}

/* ---- accessors ------------------------------------------------------------------- */

const char *azf_function_name(const azf_function *fn)
{
    return fn ? fn->name : NULL;
}
const char *azf_function_id(const azf_function *fn)
{
    return fn ? fn->id : NULL;
}
const char *azf_function_directory(const azf_function *fn)
{
    return fn ? fn->directory : NULL;
}
const char *azf_function_script_file(const azf_function *fn)
{
    return fn ? fn->script_file : NULL;
}
const char *azf_function_entry_point(const azf_function *fn)
{
    return fn ? fn->entry_point : NULL;
}
const char *azf_function_language(const azf_function *fn)
{
    return fn ? fn->language : NULL;
}
int azf_function_is_disabled(const azf_function *fn)
{
    return fn ? fn->disabled : 0;
}
const char *azf_function_load_error(const azf_function *fn)
{
    return fn ? fn->load_error : NULL;
}
void *azf_function_user_data(const azf_function *fn)
{
    return fn ? fn->user_data : NULL;
}
size_t azf_function_binding_count(const azf_function *fn)
{
    return fn ? fn->n_bindings : 0;
}
const azf_binding *azf_function_binding(const azf_function *fn, size_t i)
{
    return fn && i < fn->n_bindings ? &fn->bindings[i] : NULL;
}
const azf_binding *azf_function_find_binding(const azf_function *fn, const char *name)
{
    if (!fn || !name)
        return NULL;
    for (size_t i = 0; i < fn->n_bindings; i++)
        if (strcasecmp(fn->bindings[i].name, name) == 0)
            return &fn->bindings[i];
    return NULL;
}
const azf_binding *azf_function_trigger(const azf_function *fn)
{
    return fn ? fn->trigger : NULL;
}
const char *azf_function_route(const azf_function *fn)
{
    return fn ? fn->route_template : NULL;
}
size_t azf_function_method_count(const azf_function *fn)
{
    return fn ? fn->n_methods : 0;
}
const char *azf_function_method(const azf_function *fn, size_t i)
{
    return fn && i < fn->n_methods ? fn->methods[i] : NULL;
}
int azf_function_auth_level(const azf_function *fn)
{
    return fn ? fn->auth_level : AZF_AUTH_FUNCTION;
}
int azf_function_retry(const azf_function *fn, int32_t *max_retry_count, int64_t *delay_ms,
                       int64_t *minimum_ms, int64_t *maximum_ms)
{
    if (!fn)
        return AZF_RETRY_NONE;
    if (max_retry_count)
        *max_retry_count = fn->max_retry_count;
    if (delay_ms)
        *delay_ms = fn->delay_ms;
    if (minimum_ms)
        *minimum_ms = fn->minimum_ms;
    if (maximum_ms)
        *maximum_ms = fn->maximum_ms;
    return fn->retry_strategy;
}
size_t azf_function_property_count(const azf_function *fn)
{
    return fn ? fn->n_props : 0;
}
const char *azf_function_property_at(const azf_function *fn, size_t i, const char **value)
{
    if (!fn || i >= fn->n_props)
        return NULL;
    if (value)
        *value = fn->props[i].value;
    return fn->props[i].name;
}
const char *azf_function_property(const azf_function *fn, const char *key)
{
    for (size_t i = 0; fn && key && i < fn->n_props; i++)
        if (strcmp(fn->props[i].name, key) == 0)
            return fn->props[i].value;
    return NULL;
}
const char *azf_binding_name(const azf_binding *b)
{
    return b ? b->name : NULL;
}
const char *azf_binding_type(const azf_binding *b)
{
    return b ? b->type : NULL;
}
int azf_binding_direction(const azf_binding *b)
{
    return b ? b->direction : AZF_DIRECTION_IN;
}
int azf_binding_data_type(const azf_binding *b)
{
    return b ? b->data_type : AZF_DATA_TYPE_UNDEFINED;
}
int azf_binding_is_trigger(const azf_binding *b)
{
    return b ? b->is_trigger : 0;
}
const char *azf_binding_json(const azf_binding *b)
{
    return b ? b->json : NULL;
}
