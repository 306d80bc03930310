/* Allocator hooks and the small string helpers built on them. */
#include "common_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *libc_malloc(size_t size, void *ud)
{
    (void)ud;
    return malloc(size);
}
static void libc_free(void *ptr, void *ud)
{
    (void)ud;
    free(ptr);
}
static void *libc_calloc(size_t n, size_t size, void *ud)
{
    (void)ud;
    return calloc(n, size);
}
static void *libc_realloc(void *ptr, size_t size, void *ud)
{
    (void)ud;
    return realloc(ptr, size);
}

static azf_mem g_mem = {NULL, libc_malloc, libc_free, libc_calloc, libc_realloc};

int azf_set_allocator(const azf_mem *mem)
{
    if (azf__global_ready())
        return AZF_E_STATE;
    if (!mem) {
        azf_mem dflt = {NULL, libc_malloc, libc_free, libc_calloc, libc_realloc};
        g_mem = dflt;
        return 0;
    }
    if (!mem->malloc || !mem->free || !mem->calloc || !mem->realloc)
        return AZF_E_INVALID;
    g_mem = *mem;
    return 0;
}

void *azf__malloc(size_t size)
{
    return g_mem.malloc(size ? size : 1, g_mem.user_data);
}
void *azf__calloc(size_t nmemb, size_t size)
{
    return g_mem.calloc(nmemb ? nmemb : 1, size ? size : 1, g_mem.user_data);
}
void *azf__realloc(void *ptr, size_t size)
{
    return g_mem.realloc(ptr, size ? size : 1, g_mem.user_data);
}
void azf__free(void *ptr)
{
    if (ptr)
        g_mem.free(ptr, g_mem.user_data);
}

char *azf__strndup(const char *s, size_t n)
{
    char *p = azf__malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *azf__strdup(const char *s)
{
    return s ? azf__strndup(s, strlen(s)) : NULL;
}

char *azf__vasprintf(const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return NULL;
    char *p = azf__malloc((size_t)n + 1);
    if (p)
        vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *azf__asprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = azf__vasprintf(fmt, ap);
    va_end(ap);
    return p;
}
