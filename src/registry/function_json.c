/* The v1 app layout: <app_root>/<function>/function.json, turned into the metadata
 * JSON contract and validated like any registration. */
#include "registry/registry_internal.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FILE_LIMIT (16u << 20) /* function.json files are small; refuse absurd ones */

/* out = a + sep + b; -1 when it does not fit. */
static int join(char *out, size_t size, const char *a, const char *sep, const char *b)
{
    int n = snprintf(out, size, "%s%s%s", a, sep, b);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

static int read_file(const char *path, char **text, size_t *len, azf__errmsg *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return azf__err(err, AZF_E_IO, "%s: cannot be read (%s).", path, strerror(errno));
    azf_buf b = AZF_BUF_INIT;
    char chunk[4096];
    size_t n;
    int rc = 0;
    while (!rc && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (b.size + n > FILE_LIMIT)
            rc = azf__err(err, AZF_E_TOOBIG, "%s: is larger than 16 MiB.", path);
        else if (azf_buf_append(&b, chunk, n))
            rc = azf__err(err, AZF_E_NOMEM, "out of memory");
    }
    if (!rc && ferror(f))
        rc = azf__err(err, AZF_E_IO, "%s: cannot be read (%s).", path, strerror(errno));
    fclose(f);
    if (!rc && !b.ptr && azf_buf_set(&b, "", 0))
        rc = AZF_E_NOMEM;
    if (rc) {
        azf_buf_dispose(&b);
        return rc;
    }
    *text = b.ptr;
    *len = b.size;
    return 0;
}

/* ---- locating JSON syntax errors ----------------------------------------------------
 * cJSON's error pointer is sometimes one past the offending character; this small
 * grammar walk finds the exact offset of the first character that cannot continue a
 * JSON text. Used only after cJSON has refused the text. */

typedef struct {
    const char *p, *end;
    int depth;
} scan;

static void ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int lit(scan *s, const char *word)
{
    for (; *word; word++, s->p++)
        if (s->p >= s->end || *s->p != *word)
            return -1;
    return 0;
}

static int str(scan *s)
{
    s->p++; /* the opening quote */
    while (s->p < s->end && *s->p != '"') {
        unsigned char c = (unsigned char)*s->p;
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            s->p++;
            if (s->p >= s->end || !strchr("\"\\/bfnrtu", *s->p))
                return -1;
            if (*s->p == 'u') {
                for (int i = 0; i < 4; i++) {
                    s->p++;
                    if (s->p >= s->end || !isxdigit((unsigned char)*s->p))
                        return -1;
                }
            }
        }
        s->p++;
    }
    if (s->p >= s->end)
        return -1;
    s->p++;
    return 0;
}

static int num(scan *s)
{
    if (*s->p == '-')
        s->p++;
    if (s->p >= s->end || !isdigit((unsigned char)*s->p))
        return -1;
    if (*s->p == '0')
        s->p++;
    else
        while (s->p < s->end && isdigit((unsigned char)*s->p))
            s->p++;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (s->p >= s->end || !isdigit((unsigned char)*s->p))
            return -1;
        while (s->p < s->end && isdigit((unsigned char)*s->p))
            s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (s->p >= s->end || !isdigit((unsigned char)*s->p))
            return -1;
        while (s->p < s->end && isdigit((unsigned char)*s->p))
            s->p++;
    }
    return 0;
}

static int value(scan *s)
{
    ws(s);
    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '"':
        return str(s);
    case 't':
        return lit(s, "true");
    case 'f':
        return lit(s, "false");
    case 'n':
        return lit(s, "null");
    case '{':
    case '[': {
        char close = *s->p == '{' ? '}' : ']';
        int obj = close == '}';
        if (++s->depth > 1000)
            return -1;
        s->p++;
        ws(s);
        if (s->p < s->end && *s->p == close) {
            s->p++;
            s->depth--;
            return 0;
        }
        for (;;) {
            if (obj) {
                ws(s);
                if (s->p >= s->end || *s->p != '"' || str(s))
                    return -1;
                ws(s);
                if (s->p >= s->end || *s->p != ':')
                    return -1;
                s->p++;
            }
            if (value(s))
                return -1;
            ws(s);
            if (s->p < s->end && *s->p == ',') {
                s->p++;
                continue;
            }
            if (s->p < s->end && *s->p == close) {
                s->p++;
                s->depth--;
                return 0;
            }
            return -1;
        }
    }
    default:
        return num(s);
    }
}

/* Offset of the first syntax error (len when the text ends too early), or -1 when the
 * grammar walk finds none. */
static long error_offset(const char *text, size_t len)
{
    scan s = {text, text + len, 0};
    if (value(&s) == 0) {
        ws(&s);
        if (s.p == s.end)
            return -1;
    }
    return (long)(s.p - text);
}

/* Parses JSON text into its root object, with line and column on errors. */
int azf__json_parse_root(const char *text, size_t len, const char *file, cJSON **root,
                         azf__errmsg *err)
{
    size_t skip = len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0; /* BOM */
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text + skip, len - skip, &end, 0);
    if (j && error_offset(text + skip, len - skip) >= 0) {
        cJSON_Delete(j); /* trailing text after the value */
        j = NULL;
    }
    if (!j) {
        long off = error_offset(text + skip, len - skip);
        const char *at = off >= 0 ? text + skip + off : end ? end : text + len;
        if (at < text + skip || at > text + len)
            at = text + len;
        size_t line = 1, col = 1;
        for (const char *q = text + skip; q < at; q++) {
            if (*q == '\n')
                line++, col = 1;
            else
                col++;
        }
        return azf__err(err, AZF_E_PARSE, "%s:%zu:%zu: invalid JSON", file, line, col);
    }
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return azf__err(err, AZF_E_PARSE, "%s: the top level must be a JSON object.", file);
    }
    *root = j;
    return 0;
}

/* The metadata contract object for a function.json root. */
static int make_meta(const cJSON *root, const char *name, const char *dir, const char *script,
                     cJSON **out)
{
    cJSON *m = cJSON_CreateObject();
    int ok = m && cJSON_AddStringToObject(m, "name", name) &&
             cJSON_AddStringToObject(m, "directory", dir) &&
             cJSON_AddStringToObject(m, "scriptFile", script);
    const cJSON *ep = cJSON_GetObjectItemCaseSensitive(root, "entryPoint");
    if (ok && ep)
        ok = cJSON_AddItemToObject(m, "entryPoint", cJSON_Duplicate(ep, 1));
    static const char *const copied[] = {"bindings", "disabled", "retry"};
    for (int i = 0; ok && i < 3; i++) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(root, copied[i]);
        if (it) {
            cJSON *d = cJSON_Duplicate(it, 1);
            ok = d && cJSON_AddItemToObject(m, copied[i], d);
            if (!ok)
                cJSON_Delete(d);
        }
    }
    if (!ok) {
        cJSON_Delete(m);
        return AZF_E_NOMEM;
    }
    *out = m;
    return 0;
}

/* Validates the contract object as azf_registry_add would; errors get the file prefix. */
static int validate(const cJSON *meta, const char *file, azf__errmsg *err)
{
    azf_function *fn = NULL;
    azf__errmsg e;
    azf__err_clear(&e);
    int rc = azf__function_build(meta, &fn, &e);
    azf__function_free(fn);
    if (rc)
        return azf__err(err, rc, "%s: %s", file, rc == AZF_E_NOMEM ? "out of memory" : e.text);
    return 0;
}

int azf__function_json_parse(const char *text, size_t len, const char *file, const char *name,
                             cJSON **meta, azf__errmsg *err)
{
    cJSON *root = NULL, *m = NULL;
    int rc = azf__json_parse_root(text, len, file, &root, err);
    if (rc)
        return rc;
    const cJSON *sf = cJSON_GetObjectItemCaseSensitive(root, "scriptFile");
    rc = make_meta(root, name, "", cJSON_IsString(sf) ? sf->valuestring : "", &m);
    cJSON_Delete(root);
    if (!rc && (rc = validate(m, file, err)) != 0) {
        cJSON_Delete(m);
        m = NULL;
    }
    if (!rc)
        *meta = m;
    return rc;
}

/* Lexically resolves "." and ".." in an absolute path, in place. */
static void normalise(char *path)
{
    char *out = path, *p = path;
    while (*p) {
        while (*p == '/')
            p++;
        char *seg = p;
        while (*p && *p != '/')
            p++;
        size_t n = (size_t)(p - seg);
        if (n == 0 || (n == 1 && seg[0] == '.'))
            continue;
        if (n == 2 && seg[0] == '.' && seg[1] == '.') {
            while (out > path && *--out != '/')
                ;
            continue;
        }
        *out++ = '/';
        memmove(out, seg, n);
        out += n;
    }
    if (out == path)
        *out++ = '/';
    *out = '\0';
}

static int inside(const char *root, const char *path)
{
    size_t n = strlen(root);
    if (n == 1 && root[0] == '/')
        return 1;
    return strncmp(root, path, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Script resolution as the host does it (host-protocol.md §5.1). */
static int resolve_script(const char *root, const char *dir, const cJSON *sf, const char *file,
                          char *out, azf__errmsg *err)
{
    char joined[PATH_MAX * 2];
    if (sf && !cJSON_IsNull(sf)) {
        if (!cJSON_IsString(sf) || !*sf->valuestring)
            return azf__err(err, AZF_E_PARSE, "%s: scriptFile must be a non-empty string.", file);
        const char *s = sf->valuestring;
        if (join(joined, sizeof joined, s[0] == '/' ? "" : dir, s[0] == '/' ? "" : "/", s))
            return azf__err(err, AZF_E_PARSE, "%s: the scriptFile path is too long.", file);
        char real[PATH_MAX];
        if (realpath(joined, real)) {
            if (!inside(root, real))
                return azf__err(err, AZF_E_PARSE,
                                "%s: the scriptFile '%s' is outside the function app root.", file,
                                s);
            if (!is_file(real))
                return azf__err(err, AZF_E_NOTFOUND,
                                "%s: Invalid script file name configuration. The 'scriptFile' "
                                "property is set to a file that does not exist.",
                                file);
            return join(out, PATH_MAX, real, "", "") ? AZF_E_INVALID : 0;
        }
        if (strlen(joined) >= PATH_MAX)
            return azf__err(err, AZF_E_PARSE, "%s: the scriptFile path is too long.", file);
        normalise(joined);
        if (!inside(root, joined))
            return azf__err(err, AZF_E_PARSE,
                            "%s: the scriptFile '%s' is outside the function app root.", file, s);
        return azf__err(err, AZF_E_NOTFOUND,
                        "%s: Invalid script file name configuration. The 'scriptFile' property is "
                        "set to a file that does not exist.",
                        file);
    }
    /* The only file besides function.json, else __init__.py, else run.py. */
    DIR *d = opendir(dir);
    if (!d)
        return azf__err(err, AZF_E_IO, "%s: cannot list the function folder (%s).", file,
                        strerror(errno));
    struct dirent *e;
    int count = 0;
    char only[PATH_MAX] = "";
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, "function.json") == 0 || e->d_name[0] == '.')
            continue;
        if (join(joined, sizeof joined, dir, "/", e->d_name) || !is_file(joined))
            continue;
        if (++count == 1 && join(only, sizeof only, joined, "", ""))
            count = 2; /* too long to use */
    }
    closedir(d);
    if (count == 1) {
        return join(out, PATH_MAX, only, "", "") ? AZF_E_INVALID : 0;
    }
    static const char *const names[] = {"__init__.py", "run.py"};
    for (int i = 0; i < 2; i++) {
        if (!join(joined, sizeof joined, dir, "/", names[i]) && is_file(joined)) {
            return join(out, PATH_MAX, joined, "", "") ? AZF_E_INVALID : 0;
        }
    }
    return azf__err(err, AZF_E_NOTFOUND,
                    "%s: Unable to determine the primary function script. Make sure at least one "
                    "script file is present, or name it with the 'scriptFile' property.",
                    file);
}

int azf__function_json_load(const char *app_root, const char *folder, cJSON **meta,
                            azf__errmsg *err)
{
    char root[PATH_MAX], dir[PATH_MAX * 2], file[PATH_MAX * 2 + 16], script[PATH_MAX];
    if (!realpath(app_root, root))
        return azf__err(err, AZF_E_IO, "%s: cannot open the app root (%s).", app_root,
                        strerror(errno));
    if (join(dir, sizeof dir, root, "/", folder) ||
        join(file, sizeof file, dir, "/", "function.json"))
        return azf__err(err, AZF_E_INVALID, "%s/%s: the path is too long.", app_root, folder);
    char *text = NULL;
    size_t len = 0;
    int rc = read_file(file, &text, &len, err);
    if (rc)
        return rc;
    cJSON *r = NULL, *m = NULL;
    rc = azf__json_parse_root(text, len, file, &r, err);
    azf__free(text);
    if (rc)
        return rc;
    rc = resolve_script(root, dir, cJSON_GetObjectItemCaseSensitive(r, "scriptFile"), file, script,
                        err);
    if (!rc && (rc = make_meta(r, folder, dir, script, &m)) == AZF_E_NOMEM)
        azf__err(err, rc, "out of memory");
    cJSON_Delete(r);
    if (!rc && (rc = validate(m, file, err)) != 0) {
        cJSON_Delete(m);
        m = NULL;
    }
    if (!rc)
        *meta = m;
    return rc;
}

int azf_function_json_read(const char *app_root, const char *folder, azf_buf *metadata_json,
                           azf_buf *error)
{
    if (!app_root || !folder || !metadata_json)
        return AZF_E_INVALID;
    azf__errmsg err;
    azf__err_clear(&err);
    cJSON *meta = NULL;
    int rc = azf__function_json_load(app_root, folder, &meta, &err);
    if (!rc) {
        char *s = cJSON_PrintUnformatted(meta);
        cJSON_Delete(meta);
        rc = s ? azf_buf_set(metadata_json, s, strlen(s)) : AZF_E_NOMEM;
        cJSON_free(s);
        return rc;
    }
    if (error)
        azf_buf_set(error, err.text, strlen(err.text));
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int azf_registry_load_v1(azf_registry *reg, const char *app_root, const azf_handler *handler,
                         void *user_data)
{
    if (!reg || !app_root)
        return AZF_E_INVALID;
    DIR *d = opendir(app_root);
    if (!d) {
        pthread_rwlock_wrlock(&reg->lock);
        int rc = azf__err(&reg->err, AZF_E_IO, "%s: cannot open the app root (%s).", app_root,
                          strerror(errno));
        pthread_rwlock_unlock(&reg->lock);
        return rc;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    char path[PATH_MAX * 2];
    while (!rc && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        struct stat st;
        if (join(path, sizeof path, app_root, "/", e->d_name) ||
            join(path + strlen(path), sizeof path - strlen(path), "/function.json", "", "") ||
            stat(path, &st) != 0)
            continue;
        char *nm = azf__strdup(e->d_name);
        if (!nm || azf__grow((void **)&names, &cap, n + 1, sizeof *names)) {
            azf__free(nm);
            rc = AZF_E_NOMEM;
            break;
        }
        names[n++] = nm;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, cmp_names);
    int added = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        azf__errmsg err;
        azf__err_clear(&err);
        cJSON *meta = NULL;
        azf_function *fn = NULL;
        int lrc = azf__function_json_load(app_root, names[i], &meta, &err);
        if (!lrc) {
            lrc = azf__function_build(meta, &fn, &err);
            cJSON_Delete(meta);
        }
        if (lrc == AZF_E_NOMEM) {
            rc = lrc;
            break;
        }
        if (lrc) {
            char real[PATH_MAX];
            if (join(path, sizeof path, app_root, "/", names[i]))
                path[0] = '\0';
            if ((rc = azf__function_failed(names[i], realpath(path, real) ? real : path, err.text,
                                           &fn)))
                break;
        }
        /* The user_data is shared: only the first function releases it. */
        azf_handler later;
        if (handler && added) {
            later = *handler;
            later.release = NULL;
        }
        if ((rc = azf__registry_insert(reg, fn, handler && added ? &later : handler, user_data))) {
            azf__function_free(fn);
            break;
        }
        added++;
    }
    for (size_t i = 0; i < n; i++)
        azf__free(names[i]);
    azf__free(names);
    return rc ? rc : added;
}

int azf__registry_add_folder(azf_registry *reg, const char *function_id, const char *name,
                             const char *directory, const azf__kv *props, size_t n_props,
                             const azf_handler *h, void *user_data, const azf_function **out)
{
    if (!reg || !function_id || !*function_id || !directory)
        return AZF_E_INVALID;
    if (name && !*name)
        name = NULL;
    const azf_function *existing = name ? azf_registry_find(reg, name) : NULL;
    int rc;
    if (existing) {
        rc = azf_registry_bind_id(reg, name, function_id);
        if (!rc && out)
            *out = existing;
        return rc;
    }
    char dir[PATH_MAX];
    if (join(dir, sizeof dir, directory, "", ""))
        return AZF_E_INVALID;
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        dir[--n] = '\0';
    char *slash = strrchr(dir, '/');
    if (!slash || !slash[1])
        return AZF_E_INVALID;
    *slash = '\0';
    const char *folder = slash + 1, *root = dir[0] ? dir : "/";
    azf__errmsg err;
    azf__err_clear(&err);
    cJSON *meta = NULL;
    azf_function *fn = NULL;
    rc = azf__function_json_load(root, folder, &meta, &err);
    if (!rc) {
        /* The host's id and properties; the host's name wins over the folder's. */
        cJSON *pj = cJSON_CreateObject();
        int ok = pj && cJSON_AddStringToObject(meta, "functionId", function_id);
        if (ok && name) {
            cJSON_DeleteItemFromObjectCaseSensitive(meta, "name");
            ok = cJSON_AddStringToObject(meta, "name", name) != NULL;
        }
        for (size_t i = 0; ok && i < n_props; i++)
            ok = cJSON_AddStringToObject(pj, props[i].name ? props[i].name : "",
                                         props[i].value ? props[i].value : "") != NULL;
        if (ok && cJSON_AddItemToObject(meta, "properties", pj))
            pj = NULL;
        else
            ok = 0;
        cJSON_Delete(pj);
        rc = ok ? azf__function_build(meta, &fn, &err) : AZF_E_NOMEM;
        cJSON_Delete(meta);
    }
    if (rc == AZF_E_NOMEM)
        return rc;
    if (rc) {
        if ((rc = azf__function_failed(name ? name : folder, directory, err.text, &fn)))
            return rc;
        char *id = azf__strdup(function_id);
        if (!id) {
            azf__function_free(fn);
            return AZF_E_NOMEM;
        }
        azf__free(fn->id);
        fn->id = id;
    }
    if ((rc = azf__registry_insert(reg, fn, h, user_data))) {
        azf__function_free(fn);
        return rc;
    }
    if (out)
        *out = fn;
    return 0;
}
