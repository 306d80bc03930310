/* azf_buf: growable, always NUL-terminated bytes. */
#include "common_internal.h"

#include <stdio.h>
#include <string.h>

void azf_buf_dispose(azf_buf *buf)
{
    if (!buf)
        return;
    if (buf->reserved)
        azf__free(buf->ptr);
    buf->ptr = NULL;
    buf->size = 0;
    buf->reserved = 0;
}

int azf_buf_grow(azf_buf *buf, size_t size)
{
    if (!buf)
        return AZF_E_INVALID;
    if (size == SIZE_MAX)
        return AZF_E_NOMEM;
    if (buf->reserved > size)
        return 0;
    /* At least double (amortised appends), but a single large request gets
     * exactly what it asks for instead of up to twice as much. */
    size_t want = buf->reserved > SIZE_MAX / 2 ? SIZE_MAX : buf->reserved * 2;
    if (want < 64)
        want = 64;
    if (want <= size)
        want = size + 1;
    char *p;
    if (buf->reserved) {
        p = azf__realloc(buf->ptr, want);
    } else {
        /* A borrowed pointer (reserved == 0) is copied into owned memory. */
        p = azf__malloc(want);
        if (p && buf->ptr && buf->size)
            memcpy(p, buf->ptr, buf->size);
    }
    if (!p)
        return AZF_E_NOMEM;
    buf->ptr = p;
    buf->reserved = want;
    buf->ptr[buf->size] = '\0';
    return 0;
}

int azf_buf_append(azf_buf *buf, const void *data, size_t len)
{
    if (!buf || (!data && len))
        return AZF_E_INVALID;
    if (len > SIZE_MAX - buf->size - 1)
        return AZF_E_NOMEM;
    int rc = azf_buf_grow(buf, buf->size + len);
    if (rc)
        return rc;
    if (len)
        memcpy(buf->ptr + buf->size, data, len);
    buf->size += len;
    buf->ptr[buf->size] = '\0';
    return 0;
}

int azf_buf_set(azf_buf *buf, const void *data, size_t len)
{
    if (!buf || (!data && len))
        return AZF_E_INVALID;
    if (buf->reserved == 0) {
        buf->ptr = NULL;
    }
    buf->size = 0;
    return azf_buf_append(buf, data, len);
}

int azf__buf_printf(azf_buf *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = azf__vasprintf(fmt, ap);
    va_end(ap);
    if (!s)
        return AZF_E_NOMEM;
    int rc = azf_buf_set(buf, s, strlen(s));
    azf__free(s);
    return rc;
}
