/* Worker options and the host's command line (host-protocol §2.1). */
#include "worker_internal.h"

#include "azfunc/codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int azf_worker_opts_new(azf_worker_opts **out)
{
    if (!out)
        return AZF_E_INVALID;
    azf_worker_opts *o = azf__calloc(1, sizeof *o);
    if (!o)
        return AZF_E_NOMEM;
    if (azf_transport_opts_new(&o->transport)) {
        azf__free(o);
        return AZF_E_NOMEM;
    }
    o->max_message_length = AZF_FRAME_MAX_LENGTH;
    *out = o;
    return 0;
}

void azf_worker_opts_free(azf_worker_opts *o)
{
    if (!o)
        return;
    azf__free(o->uri);
    azf__free(o->worker_id);
    azf__free(o->request_id);
    azf__free(o->runtime_name);
    azf__free(o->runtime_version);
    azf__free(o->init_error);
    azf_transport_opts_free(o->transport);
    azf__free(o);
}

static int set_str(char **field, const char *v)
{
    char *p = NULL;
    if (v && !(p = azf__strdup(v)))
        return AZF_E_NOMEM;
    azf__free(*field);
    *field = p;
    return 0;
}

int azf_worker_opts_set_uri(azf_worker_opts *o, const char *uri)
{
    if (!o || (uri && strncmp(uri, "http://", 7) != 0 && strncmp(uri, "https://", 8) != 0))
        return AZF_E_INVALID;
    return set_str(&o->uri, uri);
}

int azf_worker_opts_set_worker_id(azf_worker_opts *o, const char *id)
{
    return o ? set_str(&o->worker_id, id) : AZF_E_INVALID;
}

int azf_worker_opts_set_request_id(azf_worker_opts *o, const char *id)
{
    return o ? set_str(&o->request_id, id) : AZF_E_INVALID;
}

int azf_worker_opts_set_max_message_length(azf_worker_opts *o, size_t len)
{
    if (!o)
        return AZF_E_INVALID;
    o->max_message_length = (len == 0 || len > AZF_FRAME_MAX_LENGTH) ? AZF_FRAME_MAX_LENGTH : len;
    return 0;
}

azf_transport_opts *azf_worker_opts_transport(azf_worker_opts *o)
{
    return o ? o->transport : NULL;
}

const char *azf_worker_opts_errmsg(const azf_worker_opts *o)
{
    return o ? o->err.text : "";
}

const char *azf_worker_opts_uri(const azf_worker_opts *o)
{
    return o && o->uri ? o->uri : "";
}

/* The flags we know. Values land in slots; the families are merged afterwards. */
enum {
    S_HOST,
    S_PORT,
    S_WID,
    S_RID,
    S_MAX,
    S_F_URI,
    S_F_WID,
    S_F_RID,
    S_F_MAX,
    S_CA_FILE,
    S_CA_DIR,
    S_CERT,
    S_KEY,
    S_SNI,
    S_INSECURE,
    S_TIMEOUT,
    S_COUNT
};

static const struct flag {
    const char *name;
    int slot;
} flags[] = {
    {"host", S_HOST},
    {"port", S_PORT},
    {"workerId", S_WID},
    {"requestId", S_RID},
    {"grpcMaxMessageLength", S_MAX},
    {"functions-uri", S_F_URI},
    {"functions-worker-id", S_F_WID},
    {"functions-request-id", S_F_RID},
    {"functions-grpc-max-message-length", S_F_MAX},
    {"tls-ca-file", S_CA_FILE},
    {"tls-ca-dir", S_CA_DIR},
    {"tls-cert", S_CERT},
    {"tls-key", S_KEY},
    {"tls-server-name", S_SNI},
    {"tls-insecure", S_INSECURE},
    {"connect-timeout-ms", S_TIMEOUT},
};

static const char *env_for(int slot)
{
    switch (slot) {
    case S_CA_FILE:
        return "AZF_TLS_CA_FILE";
    case S_CA_DIR:
        return "AZF_TLS_CA_DIR";
    case S_CERT:
        return "AZF_TLS_CERT";
    case S_KEY:
        return "AZF_TLS_KEY";
    case S_SNI:
        return "AZF_TLS_SERVER_NAME";
    case S_INSECURE:
        return "AZF_TLS_INSECURE";
    default:
        return NULL;
    }
}

/* Parses a decimal integer in [lo, hi]; returns 0 or -1. */
static int parse_long(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_max(azf_worker_opts *o, const char *flag, const char *v, size_t *out)
{
    long long n;
    if (parse_long(v, -1, AZF_FRAME_MAX_LENGTH, &n))
        return azf__err(&o->err, AZF_E_INVALID,
                        "%s: '%s' is not a message length (-1, or 1 to 2147483647)", flag, v);
    *out = n <= 0 ? AZF_FRAME_MAX_LENGTH : (size_t)n;
    return 0;
}

int azf_worker_opts_from_args(azf_worker_opts *o, int argc, const char *const *argv)
{
    if (!o || argc < 0 || (argc && !argv))
        return AZF_E_INVALID;
    azf__err_clear(&o->err);
    const char *v[S_COUNT] = {0};
    for (int s = 0; s < S_COUNT; s++) {
        const char *e = env_for(s);
        if (e && getenv(e) && *getenv(e))
            v[s] = getenv(e);
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!a || strncmp(a, "--", 2) != 0 || !a[2])
            continue; /* positional arguments (e.g. the worker path) are ignored */
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct flag *f = NULL;
        for (size_t k = 0; k < sizeof flags / sizeof flags[0]; k++)
            if (strlen(flags[k].name) == nlen && strncmp(flags[k].name, name, nlen) == 0)
                f = &flags[k];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        int next_is_value = next && strncmp(next, "--", 2) != 0;
        if (!f) {
            if (!eq && next_is_value)
                i++; /* an unknown flag's value */
            continue;
        }
        if (f->slot == S_INSECURE) {
            v[S_INSECURE] = eq ? eq + 1 : "1";
            continue;
        }
        if (eq) {
            v[f->slot] = eq + 1;
        } else if (next_is_value) {
            v[f->slot] = next;
            i++;
        } else {
            return azf__err(&o->err, AZF_E_INVALID, "--%s needs a value", f->name);
        }
    }

    /* Merge the two families: --functions-* wins. */
    long long port = 0;
    if (v[S_PORT] && parse_long(v[S_PORT], 1, 65535, &port))
        return azf__err(&o->err, AZF_E_INVALID, "--port: '%s' is not a port number (1-65535)",
                        v[S_PORT]);
    char *uri = NULL;
    if (v[S_F_URI]) {
        if (strncmp(v[S_F_URI], "http://", 7) != 0 && strncmp(v[S_F_URI], "https://", 8) != 0)
            return azf__err(&o->err, AZF_E_INVALID,
                            "--functions-uri: '%s' is not an http:// or https:// URI", v[S_F_URI]);
        uri = azf__strdup(v[S_F_URI]);
    } else if (v[S_HOST] && v[S_PORT]) {
        int v6 = strchr(v[S_HOST], ':') != NULL;
        uri = azf__asprintf(v6 ? "http://[%s]:%lld/" : "http://%s:%lld/", v[S_HOST], port);
    } else if (v[S_HOST] || v[S_PORT]) {
        return azf__err(&o->err, AZF_E_INVALID, "--host and --port must be given together");
    }
    if (!uri && (v[S_F_URI] || v[S_HOST]))
        return azf__err(&o->err, AZF_E_NOMEM, "out of memory"); /* not "no host address" */
    if (!uri && !o->uri)
        return azf__err(&o->err, AZF_E_INVALID,
                        "no host address: pass --functions-uri, or --host and --port");
    size_t max = o->max_message_length;
    const char *maxflag =
        v[S_F_MAX] ? "--functions-grpc-max-message-length" : "--grpcMaxMessageLength";
    const char *maxv = v[S_F_MAX] ? v[S_F_MAX] : v[S_MAX];
    long long timeout = 0;
    int rc = maxv ? parse_max(o, maxflag, maxv, &max) : 0;
    if (!rc && v[S_TIMEOUT] && parse_long(v[S_TIMEOUT], 1, 600000, &timeout))
        rc = azf__err(&o->err, AZF_E_INVALID, "--connect-timeout-ms: '%s' is not 1-600000",
                      v[S_TIMEOUT]);
    /* One boolean syntax everywhere: "false" or "no" must not turn verification off. */
    int insecure = v[S_INSECURE] ? azf__parse_bool(v[S_INSECURE]) : 0;
    if (!rc && insecure < 0)
        rc = azf__err(&o->err, AZF_E_INVALID,
                      "--tls-insecure / AZF_TLS_INSECURE: '%s' is not a boolean "
                      "(1/true/yes/y/t or 0/false/no/n/f)",
                      v[S_INSECURE]);
    if (rc) {
        azf__free(uri);
        return rc;
    }
    const char *wid = v[S_F_WID] ? v[S_F_WID] : v[S_WID];
    const char *rid = v[S_F_RID] ? v[S_F_RID] : v[S_RID];
    if (!wid && !o->worker_id) {
        azf__free(uri);
        return azf__err(&o->err, AZF_E_INVALID,
                        "no worker id: pass --functions-worker-id or --workerId");
    }
    azf_transport_opts *t = o->transport;
    if ((uri && set_str(&o->uri, uri)) || (wid && set_str(&o->worker_id, wid)) ||
        (rid && set_str(&o->request_id, rid)) ||
        (v[S_CA_FILE] && azf_transport_opts_set_tls_ca_file(t, v[S_CA_FILE])) ||
        (v[S_CA_DIR] && azf_transport_opts_set_tls_ca_dir(t, v[S_CA_DIR])) ||
        (v[S_CERT] && azf_transport_opts_set_tls_cert_file(t, v[S_CERT])) ||
        (v[S_KEY] && azf_transport_opts_set_tls_key_file(t, v[S_KEY])) ||
        (v[S_SNI] && azf_transport_opts_set_tls_server_name(t, v[S_SNI]))) {
        azf__free(uri);
        return azf__err(&o->err, AZF_E_NOMEM, "out of memory");
    }
    azf__free(uri);
    if (v[S_INSECURE])
        azf_transport_opts_set_tls_verify(t, !insecure);
    if (timeout)
        azf_transport_opts_set_connect_timeout_ms(t, (uint32_t)timeout);
    o->max_message_length = max;
    return 0;
}

int azf_worker_opts_set_provider(azf_worker_opts *o, const azf_worker_provider *p, void *user_data)
{
    if (!o)
        return AZF_E_INVALID;
    static const azf_worker_provider none;
    o->provider = p ? *p : none;
    o->provider_user_data = user_data;
    return 0;
}

int azf_worker_opts_set_registry(azf_worker_opts *o, azf_registry *reg)
{
    if (!o)
        return AZF_E_INVALID;
    o->reg = reg;
    return 0;
}

int azf_worker_opts_set_runtime(azf_worker_opts *o, const char *name, const char *version)
{
    if (!o)
        return AZF_E_INVALID;
    char *n = NULL, *v = NULL;
    if ((name && !(n = azf__strdup(name))) || (version && !(v = azf__strdup(version)))) {
        azf__free(n);
        return AZF_E_NOMEM;
    }
    azf__free(o->runtime_name);
    azf__free(o->runtime_version);
    o->runtime_name = n;
    o->runtime_version = v;
    return 0;
}

int azf_worker_opts_set_init_error(azf_worker_opts *o, const char *message)
{
    if (!o)
        return AZF_E_INVALID;
    char *m = message ? azf__strdup(message) : NULL;
    if (message && !m)
        return AZF_E_NOMEM;
    azf__free(o->init_error);
    o->init_error = m;
    return 0;
}

/* ---- the provider callbacks table ---------------------------------------- */

int azf_worker_provider_new(azf_worker_provider **out)
{
    if (!out)
        return AZF_E_INVALID;
    azf_worker_provider *p = azf__calloc(1, sizeof *p);
    if (!p)
        return AZF_E_NOMEM;
    *out = p;
    return 0;
}

void azf_worker_provider_free(azf_worker_provider *p)
{
    azf__free(p);
}

#define PROVIDER_SETTER(field, type)                                                               \
    int azf_worker_provider_set_##field(azf_worker_provider *p, type fn)                           \
    {                                                                                              \
        if (!p)                                                                                    \
            return AZF_E_INVALID;                                                                  \
        p->field = fn;                                                                             \
        return 0;                                                                                  \
    }
PROVIDER_SETTER(index, azf_worker_index_fn)
PROVIDER_SETTER(load, azf_worker_load_fn)
PROVIDER_SETTER(reload, azf_worker_reload_fn)
PROVIDER_SETTER(drain, azf_worker_drain_fn)
PROVIDER_SETTER(init, azf_worker_init_fn)

int azf_worker_provider_set_v1_handler(azf_worker_provider *p, const azf_handler *h,
                                       void *handler_user_data)
{
    if (!p)
        return AZF_E_INVALID;
    static const azf_handler none;
    p->v1_handler = h ? *h : none;
    p->has_v1_handler = h != NULL;
    p->v1_user_data = handler_user_data;
    return 0;
}
