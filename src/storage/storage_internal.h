/* Shared by the storage client's files: the account (account.c) and one signed HTTP
 * request (http.c). */
#ifndef AZF_STORAGE_INTERNAL_H
#define AZF_STORAGE_INTERNAL_H

#include "storage/storage.h"

#include <curl/curl.h>
#include <libxml/tree.h>
#include <pthread.h>

struct azf__storage {
    char *account;
    unsigned char key[128]; /* the decoded account key (Shared Key) */
    size_t key_len;
    char *sas; /* the SAS token without '?' (instead of a key) */
    char *endpoint[3];
    int development;
    long timeout_ms;
    CURLSH *share; /* connection and DNS caches shared by the calls */
    pthread_mutex_t share_mu[CURL_LOCK_DATA_LAST]; /* one per kind of shared data */
};

/* One request. path is the encoded path after the service endpoint ("/queue/messages");
 * query and headers are NULL-terminated name, value lists (unencoded). */
typedef struct azf__request {
    const char *method;
    azf__storage_service svc;
    const char *path;
    const char *const *query;
    const char *const *headers;
    const void *body;
    size_t body_len;
    const char *content_type;
} azf__request;

typedef struct azf__response {
    long status;
    azf_buf body;
    CURL *curl; /* kept until azf__response_clear for azf__response_header */
} azf__response;

/* Sends rq signed for the account. A 2xx answer returns 0; any other maps to an error
 * code (see storage.h) with the service's own code and message. rs is filled in every
 * case where an answer came (clear it with azf__response_clear). */
int azf__storage_send(azf__storage *st, const azf__request *rq, azf__response *rs,
                      azf__errmsg *err);
/* A response header's value (borrowed until clear), or NULL. */
const char *azf__response_header(azf__response *rs, const char *name);
void azf__response_clear(azf__response *rs);

/* "/segment" percent-encoded (a blob name keeps its '/'); owned, NULL on no memory. */
char *azf__storage_path(const char *a, const char *b);
/* The Shared Key signature of string_to_sign, base64 (out holds at least 64 bytes). */
int azf__storage_sign(const azf__storage *st, const char *string_to_sign, char *out, size_t size);

/* XML helpers over libxml2: the first child element named name, and its text (owned). */
xmlNode *azf__xml_child(xmlNode *parent, const char *name);
char *azf__xml_text(xmlNode *parent, const char *name);
/* RFC 1123 ("Mon, 01 Jan 2024 00:00:00 GMT") to ISO 8601 "...+00:00" (out >= 32). */
void azf__storage_iso_time(const char *rfc1123, char out[32]);

#endif
