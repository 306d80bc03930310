/* Transport options and callback tables. */
#include "azfunc/codec.h"
#include "transport_internal.h"

#include <string.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 5000u

static void set_defaults(azf_transport_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_message_length = AZF_FRAME_MAX_LENGTH;
    o->connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    o->tls_verify = 1;
}

int azf_transport_opts_new(azf_transport_opts **out)
{
    if (!out)
        return AZF_E_INVALID;
    azf_transport_opts *o = azf__calloc(1, sizeof *o);
    if (!o)
        return AZF_E_NOMEM;
    set_defaults(o);
    *out = o;
    return 0;
}

void azf__transport_opts_clear(azf_transport_opts *o)
{
    azf__free(o->ca_file);
    azf__free(o->ca_dir);
    azf__free(o->cert_file);
    azf__free(o->key_file);
    azf__free(o->server_name);
    set_defaults(o);
}

void azf_transport_opts_free(azf_transport_opts *o)
{
    if (!o)
        return;
    azf__transport_opts_clear(o);
    azf__free(o);
}

static int dup_opt(char **dst, const char *src)
{
    char *p = NULL;
    if (src && !(p = azf__strdup(src)))
        return AZF_E_NOMEM;
    *dst = p;
    return 0;
}

int azf__transport_opts_copy(azf_transport_opts *dst, const azf_transport_opts *src)
{
    set_defaults(dst);
    if (!src)
        return 0;
    *dst = *src;
    dst->ca_file = dst->ca_dir = dst->cert_file = dst->key_file = dst->server_name = NULL;
    if (dup_opt(&dst->ca_file, src->ca_file) || dup_opt(&dst->ca_dir, src->ca_dir) ||
        dup_opt(&dst->cert_file, src->cert_file) || dup_opt(&dst->key_file, src->key_file) ||
        dup_opt(&dst->server_name, src->server_name)) {
        azf__transport_opts_clear(dst);
        return AZF_E_NOMEM;
    }
    return 0;
}

int azf__transport_opts_copy_into(azf_transport_opts *dst, const azf_transport_opts *src)
{
    azf_transport_opts tmp;
    if (azf__transport_opts_copy(&tmp, src))
        return AZF_E_NOMEM;
    azf__transport_opts_clear(dst);
    *dst = tmp;
    return 0;
}

int azf_transport_opts_set_max_message_length(azf_transport_opts *o, size_t len)
{
    if (!o)
        return AZF_E_INVALID;
    o->max_message_length = (len == 0 || len > AZF_FRAME_MAX_LENGTH) ? AZF_FRAME_MAX_LENGTH : len;
    return 0;
}

int azf_transport_opts_set_connect_timeout_ms(azf_transport_opts *o, uint32_t ms)
{
    if (!o)
        return AZF_E_INVALID;
    o->connect_timeout_ms = ms ? ms : DEFAULT_CONNECT_TIMEOUT_MS;
    return 0;
}

static int set_str(azf_transport_opts *o, char **field, const char *v)
{
    if (!o)
        return AZF_E_INVALID;
    char *p = NULL;
    if (dup_opt(&p, v))
        return AZF_E_NOMEM;
    azf__free(*field);
    *field = p;
    return 0;
}

int azf_transport_opts_set_tls_ca_file(azf_transport_opts *o, const char *path)
{
    return o ? set_str(o, &o->ca_file, path) : AZF_E_INVALID;
}
int azf_transport_opts_set_tls_ca_dir(azf_transport_opts *o, const char *path)
{
    return o ? set_str(o, &o->ca_dir, path) : AZF_E_INVALID;
}
int azf_transport_opts_set_tls_cert_file(azf_transport_opts *o, const char *path)
{
    return o ? set_str(o, &o->cert_file, path) : AZF_E_INVALID;
}
int azf_transport_opts_set_tls_key_file(azf_transport_opts *o, const char *path)
{
    return o ? set_str(o, &o->key_file, path) : AZF_E_INVALID;
}
int azf_transport_opts_set_tls_server_name(azf_transport_opts *o, const char *name)
{
    return o ? set_str(o, &o->server_name, name) : AZF_E_INVALID;
}

int azf_transport_opts_set_tls_verify(azf_transport_opts *o, int verify)
{
    if (!o)
        return AZF_E_INVALID;
    o->tls_verify = verify != 0;
    return 0;
}

int azf_transport_callbacks_new(azf_transport_callbacks **out)
{
    if (!out)
        return AZF_E_INVALID;
    azf_transport_callbacks *c = azf__calloc(1, sizeof *c);
    if (!c)
        return AZF_E_NOMEM;
    *out = c;
    return 0;
}

void azf_transport_callbacks_free(azf_transport_callbacks *cbs)
{
    azf__free(cbs);
}

int azf_transport_callbacks_set_on_message(azf_transport_callbacks *cbs, azf_on_message_fn fn)
{
    if (!cbs)
        return AZF_E_INVALID;
    cbs->on_message = fn;
    return 0;
}

int azf_transport_callbacks_set_on_stream_close(azf_transport_callbacks *cbs,
                                                azf_on_stream_close_fn fn)
{
    if (!cbs)
        return AZF_E_INVALID;
    cbs->on_stream_close = fn;
    return 0;
}

int azf_transport_callbacks_set_on_error(azf_transport_callbacks *cbs, azf_on_error_fn fn)
{
    if (!cbs)
        return AZF_E_INVALID;
    cbs->on_error = fn;
    return 0;
}
