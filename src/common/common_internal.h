/* Internal helpers of the common layer shared by every other layer. */
#ifndef AZF_COMMON_INTERNAL_H
#define AZF_COMMON_INTERNAL_H

#include "azfunc/common.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

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

/* A JSON number as an integer in [lo, hi], range-checked before any conversion:
 * 0, -1 when it is not a whole number (or not finite), -2 when it is outside. */
int azf__double_to_i64(double d, int64_t lo, int64_t hi, int64_t *out);

/* A boolean setting, read one way everywhere (as the official worker's
 * is_envvar_true/is_envvar_false): after trimming white space and ignoring case,
 * 1/true/t/yes/y give 1, 0/false/f/no/n give 0, anything else (NULL, "", "on") -1. */
int azf__parse_bool(const char *s);

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
