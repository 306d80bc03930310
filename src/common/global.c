/* Version, refcounted global init and the diagnostics hook. */
#include "common_internal.h"

#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_refs;
static azf_log_fn g_log_fn;
static void *g_log_ud;

const char *azf_version(void)
{
    return AZF_VERSION_STRING;
}

uint32_t azf_version_num(void)
{
    return AZF_VERSION_NUM;
}

int azf_global_init(void)
{
    pthread_mutex_lock(&g_lock);
    int n = ++g_refs;
    pthread_mutex_unlock(&g_lock);
    return n;
}

int azf_global_shutdown(void)
{
    pthread_mutex_lock(&g_lock);
    int n = g_refs > 0 ? --g_refs : AZF_E_NOTREADY;
    pthread_mutex_unlock(&g_lock);
    return n;
}

int azf__global_ready(void)
{
    pthread_mutex_lock(&g_lock);
    int r = g_refs > 0;
    pthread_mutex_unlock(&g_lock);
    return r;
}

void azf_set_log_callback(azf_log_fn fn, void *user_data)
{
    pthread_mutex_lock(&g_lock);
    g_log_fn = fn;
    g_log_ud = user_data;
    pthread_mutex_unlock(&g_lock);
}

void azf__log(int level, const char *fmt, ...)
{
    pthread_mutex_lock(&g_lock);
    azf_log_fn fn = g_log_fn;
    void *ud = g_log_ud;
    pthread_mutex_unlock(&g_lock);
    if (!fn)
        return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fn(level, msg, ud);
}
