/* Error codes and their texts. */
#include "common_internal.h"

#include <stdio.h>
#include <string.h>

const char *azf_strerror(int code)
{
    switch (code) {
    case AZF_OK:
        return "success";
    case AZF_E_NOMEM:
        return "out of memory";
    case AZF_E_INVALID:
        return "invalid argument";
    case AZF_E_PARSE:
        return "malformed input";
    case AZF_E_TOOBIG:
        return "message over the size limit";
    case AZF_E_UNSUPPORTED:
        return "not supported";
    case AZF_E_IO:
        return "I/O error";
    case AZF_E_NOTFOUND:
        return "not found";
    case AZF_E_STATE:
        return "not allowed in the current state";
    case AZF_E_PROTOCOL:
        return "protocol error";
    case AZF_E_TLS:
        return "TLS error";
    case AZF_E_TIMEOUT:
        return "timed out";
    case AZF_E_CLOSED:
        return "closed";
    case AZF_E_USER:
        return "aborted by a user callback";
    case AZF_E_PYTHON:
        return "Python error";
    case AZF_E_LOAD:
        return "function load error";
    case AZF_E_CANCELLED:
        return "cancelled";
    case AZF_E_EXISTS:
        return "already exists";
    case AZF_E_CONNECT:
        return "connection failed";
    case AZF_E_INTERNAL:
        return "internal error";
    case AZF_E_TRUNCATED:
        return "input ended in the middle of a unit";
    case AZF_E_NOTREADY:
        return "azf_global_init has not been called";
    default:
        return "unknown error";
    }
}

int azf_is_fatal(int code)
{
    switch (code) {
    case AZF_E_NOMEM:
    case AZF_E_PROTOCOL:
    case AZF_E_TLS:
    case AZF_E_CLOSED:
    case AZF_E_INTERNAL:
    case AZF_E_IO:
        return 1;
    default:
        return 0;
    }
}

int azf__err(azf__errmsg *e, int code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->text, sizeof e->text, fmt, ap);
        va_end(ap);
    }
    return code;
}

void azf__err_clear(azf__errmsg *e)
{
    if (e)
        e->text[0] = '\0';
}
