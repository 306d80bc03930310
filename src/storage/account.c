/* A storage account: its connection string, endpoints and credentials, and the Shared
 * Key signature (HMAC-SHA256 with the decoded account key). */
#include "storage/storage_internal.h"

#include <libxml/parser.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>
#include <strings.h>

/* The storage emulator's well-known development account. */
#define DEV_ACCOUNT "devstoreaccount1"
#define DEV_KEY                                                                                    \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

static const char *const service_names[3] = {"blob", "queue", "table"};
static const int dev_ports[3] = {10000, 10001, 10002};

static void share_lock(CURL *h, curl_lock_data d, curl_lock_access a, void *user)
{
    (void)h, (void)a;
    if (d < CURL_LOCK_DATA_LAST)
        pthread_mutex_lock(&((azf__storage *)user)->share_mu[d]);
}

static void share_unlock(CURL *h, curl_lock_data d, void *user)
{
    (void)h;
    if (d < CURL_LOCK_DATA_LAST)
        pthread_mutex_unlock(&((azf__storage *)user)->share_mu[d]);
}

static int set_key(azf__storage *st, const char *b64, azf__errmsg *err)
{
    size_t n = strlen(b64);
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > sizeof st->key)
        return azf__err(err, AZF_E_PARSE, "AccountKey is not base64");
    int len = EVP_DecodeBlock(st->key, (const unsigned char *)b64, (int)n);
    if (len < 0)
        return azf__err(err, AZF_E_PARSE, "AccountKey is not base64");
    /* EVP_DecodeBlock counts the padding as zero bytes */
    while (n > 0 && b64[n - 1] == '=')
        n--, len--;
    st->key_len = (size_t)len;
    return 0;
}

static char *trim_slash(const char *s)
{
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '/')
        n--;
    return azf__strndup(s, n);
}

/* libcurl and libxml2 each want one process-wide initialisation before threads use them. */
static void global_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    xmlInitParser();
}

int azf__storage_new(azf__storage **out, const char *cs, azf__errmsg *err)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, global_init);
    if (!out || !cs)
        return azf__err(err, AZF_E_INVALID, "no connection string");
    azf__storage *st = azf__calloc(1, sizeof *st);
    char *copy = azf__strdup(cs);
    if (!st || !copy) {
        azf__free(st), azf__free(copy);
        return azf__err(err, AZF_E_NOMEM, "out of memory");
    }
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_init(&st->share_mu[i], NULL);
    st->timeout_ms = 30000;
    const char *proto = "https", *suffix = "core.windows.net", *key = NULL;
    const char *endpoints[3] = {NULL, NULL, NULL};
    int rc = 0;
    char *save = NULL;
    for (char *part = strtok_r(copy, ";", &save); part && rc == 0;
         part = strtok_r(NULL, ";", &save)) {
        while (*part == ' ')
            part++;
        char *eq = strchr(part, '=');
        if (!*part)
            continue;
        if (!eq) {
            rc = azf__err(err, AZF_E_PARSE, "'%s' is not a Name=Value pair", part);
            break;
        }
        *eq = '\0';
        const char *v = eq + 1;
        if (strcasecmp(part, "UseDevelopmentStorage") == 0)
            st->development = strcasecmp(v, "true") == 0;
        else if (strcasecmp(part, "DefaultEndpointsProtocol") == 0)
            proto = v;
        else if (strcasecmp(part, "AccountName") == 0) /* the last one wins */
            azf__free(st->account), st->account = azf__strdup(v);
        else if (strcasecmp(part, "AccountKey") == 0)
            key = v;
        else if (strcasecmp(part, "EndpointSuffix") == 0)
            suffix = v;
        else if (strcasecmp(part, "BlobEndpoint") == 0)
            endpoints[AZF__BLOB] = v;
        else if (strcasecmp(part, "QueueEndpoint") == 0)
            endpoints[AZF__QUEUE] = v;
        else if (strcasecmp(part, "TableEndpoint") == 0)
            endpoints[AZF__TABLE] = v;
        else if (strcasecmp(part, "SharedAccessSignature") == 0)
            azf__free(st->sas), st->sas = azf__strdup(v[0] == '?' ? v + 1 : v);
    }
    if (rc == 0 && st->development) {
        azf__free(st->account);
        st->account = azf__strdup(DEV_ACCOUNT);
        key = DEV_KEY;
        for (int i = 0; i < 3; i++)
            st->endpoint[i] = endpoints[i]
                                  ? trim_slash(endpoints[i])
                                  : azf__asprintf("http://127.0.0.1:%d/" DEV_ACCOUNT, dev_ports[i]);
    } else if (rc == 0) {
        for (int i = 0; i < 3; i++) {
            if (endpoints[i])
                st->endpoint[i] = trim_slash(endpoints[i]);
            else if (st->account) {
                /* EndpointSuffix=core.windows.net/ gives no trailing '/' either */
                size_t n = strlen(suffix);
                while (n > 0 && suffix[n - 1] == '/')
                    n--;
                st->endpoint[i] = azf__asprintf("%s://%s.%s.%.*s", proto, st->account,
                                                service_names[i], (int)n, suffix);
            }
        }
        if (!st->account && !st->sas)
            rc = azf__err(err, AZF_E_PARSE,
                          "the connection string has neither AccountName nor "
                          "SharedAccessSignature");
        else if (!key && !st->sas)
            rc = azf__err(err, AZF_E_PARSE,
                          "the connection string has neither AccountKey nor "
                          "SharedAccessSignature");
        else if (st->sas && !st->account && !endpoints[0] && !endpoints[1] && !endpoints[2])
            rc = azf__err(err, AZF_E_PARSE, "a SharedAccessSignature needs explicit endpoints");
    }
    if (rc == 0 && key && !st->sas)
        rc = set_key(st, key, err);
    if (rc == 0 && !(st->share = curl_share_init()))
        rc = azf__err(err, AZF_E_NOMEM, "out of memory");
    if (rc == 0) {
        curl_share_setopt(st->share, CURLSHOPT_LOCKFUNC, share_lock);
        curl_share_setopt(st->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
        curl_share_setopt(st->share, CURLSHOPT_USERDATA, st);
        curl_share_setopt(st->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
        curl_share_setopt(st->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    }
    azf__free(copy);
    if (rc != 0) {
        azf__storage_free(st);
        return rc;
    }
    *out = st;
    return 0;
}

void azf__storage_free(azf__storage *st)
{
    if (!st)
        return;
    if (st->share)
        curl_share_cleanup(st->share);
    for (int i = 0; i < 3; i++)
        azf__free(st->endpoint[i]);
    azf__free(st->account);
    azf__free(st->sas);
    OPENSSL_cleanse(st->key, sizeof st->key);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        pthread_mutex_destroy(&st->share_mu[i]);
    azf__free(st);
}

const char *azf__storage_endpoint(const azf__storage *st, azf__storage_service svc)
{
    return st && (int)svc >= 0 && svc <= AZF__TABLE ? st->endpoint[svc] : NULL;
}

int azf__storage_is_development(const azf__storage *st)
{
    return st ? st->development : 0;
}

void azf__storage_set_timeout_ms(azf__storage *st, long ms)
{
    if (st && ms > 0)
        st->timeout_ms = ms;
}

int azf__storage_sign(const azf__storage *st, const char *sts, char *out, size_t size)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (size < 64 || !HMAC(EVP_sha256(), st->key, (int)st->key_len, (const unsigned char *)sts,
                           strlen(sts), mac, &mac_len))
        return AZF_E_INTERNAL;
    EVP_EncodeBlock((unsigned char *)out, mac, (int)mac_len);
    return 0;
}
