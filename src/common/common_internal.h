/* Internal helpers of the common layer shared by every other layer. */
#ifndef AZF_COMMON_INTERNAL_H
#define AZF_COMMON_INTERNAL_H

#include "azfunc/common.h"

#include <stdarg.h>
#include <stddef.h>

/* Allocation through the process-wide azf_mem hooks. */
void *azf__malloc(size_t size);
void *azf__calloc(size_t nmemb, size_t size);
void *azf__realloc(void *ptr, size_t size);
void azf__free(void *ptr);
char *azf__strdup(const char *s);
char *azf__strndup(const char *s, size_t n);

/* printf into a freshly allocated string (NULL on failure). */
char *azf__asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *azf__vasprintf(const char *fmt, va_list ap);

/* Replace a buffer's content with formatted text. */
int azf__buf_printf(azf_buf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Library diagnostics through the azf_set_log_callback hook. */
void azf__log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 1 while at least one azf_global_init is in effect. */
int azf__global_ready(void);

/* A per-handle error message, like sqlite3_errmsg: a fixed buffer, so setting
 * it never fails. */
#define AZF__ERRMSG_SIZE 512
typedef struct azf__errmsg {
    char text[AZF__ERRMSG_SIZE];
} azf__errmsg;

/* Sets the message and returns `code`, so callers can `return azf__err(...)`. */
int azf__err(azf__errmsg *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void azf__err_clear(azf__errmsg *e);

#endif
