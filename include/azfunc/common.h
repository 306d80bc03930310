/* libazfunc — common layer: error codes, buffers, allocator hooks, version, global init.
 *
 * Thread safety: every function here may be called from any thread, except
 * azf_set_allocator, which must be called before the first azf_global_init.
 */
#ifndef AZFUNC_COMMON_H
#define AZFUNC_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* AZF_API marks every exported declaration; the library builds with hidden visibility. */
#if defined(AZF_BUILDING) && defined(__GNUC__)
#define AZF_API __attribute__((visibility("default")))
#else
#define AZF_API
#endif

#if defined(__GNUC__)
#define AZF_DEPRECATED(msg) __attribute__((deprecated(msg)))
#else
#define AZF_DEPRECATED(msg)
#endif

/* Compile-time version: 0xMMmmpp. azf_version_num() gives the run-time one. */
#define AZF_VERSION_MAJOR 0
#define AZF_VERSION_MINOR 1
#define AZF_VERSION_PATCH 0
#define AZF_VERSION_NUM 0x000100
#define AZF_VERSION_STRING "0.1.0"

/* Error codes. 0 is success; errors are negative, documented, and never reused.
 * A code that is retired keeps its number and its azf_strerror text. */
enum {
    AZF_OK = 0,
    AZF_E_NOMEM = -1,       /* an allocation failed */
    AZF_E_INVALID = -2,     /* an argument is invalid (NULL handle, bad value) */
    AZF_E_PARSE = -3,       /* input is malformed (bad frame, bad protobuf, bad JSON) */
    AZF_E_TOOBIG = -4,      /* a message or body is over the configured limit */
    AZF_E_UNSUPPORTED = -5, /* valid input that this build does not handle (e.g. compression) */
    AZF_E_IO = -6,          /* an operating-system I/O call failed */
    AZF_E_NOTFOUND = -7,    /* the named thing does not exist */
    AZF_E_STATE = -8,       /* the call is not allowed in the handle's current state */
    AZF_E_PROTOCOL = -9,    /* the peer broke the protocol (HTTP/2, gRPC or FunctionRpc) */
    AZF_E_TLS = -10,        /* TLS set-up, handshake or certificate verification failed */
    AZF_E_TIMEOUT = -11,    /* a bounded wait ran out */
    AZF_E_CLOSED = -12,     /* the stream or connection is closed */
    AZF_E_USER = -13,       /* a user callback asked to abort */
    AZF_E_PYTHON = -14,     /* the Python interpreter or user code raised */
    AZF_E_LOAD = -15,       /* a function app or function could not be loaded */
    AZF_E_CANCELLED = -16,  /* the operation was cancelled */
    AZF_E_EXISTS = -17,     /* the thing already exists (duplicate name or id) */
    AZF_E_CONNECT = -18,    /* could not connect to the peer */
    AZF_E_INTERNAL = -19,   /* a bug in libazfunc: please report it */
    AZF_E_TRUNCATED = -20,  /* input ended in the middle of a unit (frame, message) */
    AZF_E_NOTREADY = -21    /* azf_global_init has not been called */
};

/* A static, English description of an error code (never NULL). */
AZF_API const char *azf_strerror(int code);

/* Non-zero when the error leaves the handle unusable (it must be freed). */
AZF_API int azf_is_fatal(int code);

/* Bytes or a string returned by the library. ptr is always NUL-terminated
 * (the NUL is not counted in size) so text can be used directly.
 * Initialise with AZF_BUF_INIT; release with azf_buf_dispose. */
typedef struct azf_buf {
    char *ptr;
    size_t size;
    size_t reserved; /* allocated bytes; 0 when ptr is not owned */
} azf_buf;

/* clang-format off */
#define AZF_BUF_INIT {NULL, 0, 0}
/* clang-format on */

/* Frees the buffer's memory and resets it to AZF_BUF_INIT. NULL is a no-op. */
AZF_API void azf_buf_dispose(azf_buf *buf);

/* Replaces the content with a copy of len bytes. Returns 0 or AZF_E_NOMEM. */
AZF_API int azf_buf_set(azf_buf *buf, const void *data, size_t len);

/* Appends len bytes. Returns 0 or AZF_E_NOMEM. */
AZF_API int azf_buf_append(azf_buf *buf, const void *data, size_t len);

/* Makes room for at least `size` bytes (plus the NUL). Returns 0 or AZF_E_NOMEM. */
AZF_API int azf_buf_grow(azf_buf *buf, size_t size);

/* Allocator hooks, in the style of nghttp2_mem. Every function receives user_data last. */
typedef struct azf_mem {
    void *user_data;
    void *(*malloc)(size_t size, void *user_data);
    void (*free)(void *ptr, void *user_data);
    void *(*calloc)(size_t nmemb, size_t size, void *user_data);
    void *(*realloc)(void *ptr, size_t size, void *user_data);
} azf_mem;

/* Sets the process-wide allocator (copied). Pass NULL to restore libc's.
 * Only allowed while no azf_global_init is in effect.
 * Returns 0, AZF_E_INVALID (a member is NULL) or AZF_E_STATE. */
AZF_API int azf_set_allocator(const azf_mem *mem);

/* The run-time version: "MAJOR.MINOR.PATCH" and 0xMMmmpp. */
AZF_API const char *azf_version(void);
AZF_API uint32_t azf_version_num(void);

/* Process-wide set-up, reference counted and thread-safe: every successful call
 * must be matched by one azf_global_shutdown. Returns the new count (> 0) or a
 * negative error. The last shutdown releases global state. */
AZF_API int azf_global_init(void);
AZF_API int azf_global_shutdown(void);

/* Library diagnostics (not function logs). Levels follow RpcLog: 0 trace .. 5 critical. */
enum {
    AZF_LOG_TRACE = 0,
    AZF_LOG_DEBUG = 1,
    AZF_LOG_INFO = 2,
    AZF_LOG_WARNING = 3,
    AZF_LOG_ERROR = 4,
    AZF_LOG_CRITICAL = 5
};

typedef void (*azf_log_fn)(int level, const char *message, void *user_data);

/* Sets the process-wide diagnostics callback (NULL: silent). The callback may
 * be called from any library thread and must not call back into libazfunc. */
AZF_API void azf_set_log_callback(azf_log_fn fn, void *user_data);

#ifdef __cplusplus
}
#endif
#endif /* AZFUNC_COMMON_H */
