/* The Azure Storage client of the host layer: queues, blobs and tables over the
 * Storage REST API, for the storage triggers and bindings of `azfunc start`.
 *
 * HTTP is libcurl's, XML libxml2's, JSON cJSON's; requests are signed with Shared Key
 * (OpenSSL HMAC-SHA256) or carry the connection string's SAS token. Every call is
 * blocking and bounded (connect and total timeouts). A client may be used by several
 * threads at once: each call has its own curl handle; connections are shared.
 *
 * Errors: 0, AZF_E_NOTFOUND (HTTP 404), AZF_E_EXISTS (409), AZF_E_CONNECT (nothing
 * answered), AZF_E_TIMEOUT, AZF_E_PROTOCOL (any other HTTP error, or an answer that
 * does not parse), AZF_E_INVALID, AZF_E_NOMEM; the message ("HTTP 403
 * AuthenticationFailed: ...") goes to the caller's azf__errmsg. */
#ifndef AZF_STORAGE_H
#define AZF_STORAGE_H

#include "common/common_internal.h"

#include <stddef.h>
#include <stdint.h>

typedef struct azf__storage azf__storage;

typedef enum { AZF__BLOB, AZF__QUEUE, AZF__TABLE } azf__storage_service;

/* Parses a connection string ("UseDevelopmentStorage=true", or
 * "DefaultEndpointsProtocol=...;AccountName=...;AccountKey=..." with optional
 * EndpointSuffix / BlobEndpoint / QueueEndpoint / TableEndpoint, or a
 * SharedAccessSignature with explicit endpoints). AZF_E_PARSE with the reason. */
int azf__storage_new(azf__storage **out, const char *connection_string, azf__errmsg *err);
void azf__storage_free(azf__storage *st);
/* The service's base URL without a trailing slash (borrowed). */
const char *azf__storage_endpoint(const azf__storage *st, azf__storage_service svc);
/* 1 for UseDevelopmentStorage=true. */
int azf__storage_is_development(const azf__storage *st);
/* Total time one request may take (default 30 s). */
void azf__storage_set_timeout_ms(azf__storage *st, long ms);

/* ---- queues ---- */
typedef struct azf__queue_message {
    char *id, *pop_receipt, *text;
    int64_t dequeue_count;
    /* ISO 8601 UTC, "2024-01-31T12:00:00+00:00" */
    char insertion_time[32], expiration_time[32], next_visible_time[32];
} azf__queue_message;

void azf__queue_messages_free(azf__queue_message *m, size_t n);
/* Creates the queue; an existing queue is not an error. */
int azf__queue_create(azf__storage *st, const char *queue, azf__errmsg *err);
/* Puts a message (text sent as is: encode it first when the queue uses base64).
 * ttl_s 0 = the service default (7 days), -1 = never expires. */
int azf__queue_put(azf__storage *st, const char *queue, const char *text, int visibility_s,
                   int ttl_s, azf__errmsg *err);
/* Gets up to max (1..32) messages, hiding them for visibility_s. *out is owned. */
int azf__queue_get(azf__storage *st, const char *queue, int max, int visibility_s,
                   azf__queue_message **out, size_t *n, azf__errmsg *err);
/* Peeks up to max messages (no pop receipt, no change of visibility). */
int azf__queue_peek(azf__storage *st, const char *queue, int max, azf__queue_message **out,
                    size_t *n, azf__errmsg *err);
/* Sets a message's visibility timeout; m->pop_receipt and m->next_visible_time are
 * replaced by the new ones. */
int azf__queue_update(azf__storage *st, const char *queue, azf__queue_message *m, int visibility_s,
                      azf__errmsg *err);
int azf__queue_delete(azf__storage *st, const char *queue, const azf__queue_message *m,
                      azf__errmsg *err);

/* ---- blobs ---- */
typedef struct azf__blob_props {
    char *name, *etag, *content_type, *last_modified, *created; /* last_modified as RFC 1123 */
    int64_t length;
    size_t nmeta; /* user metadata, x-ms-meta-* */
    char **meta_names, **meta_values;
} azf__blob_props;

void azf__blob_props_clear(azf__blob_props *p);
void azf__blob_list_free(azf__blob_props *items, size_t n);
/* Creates the container; an existing one is not an error. */
int azf__container_create(azf__storage *st, const char *container, azf__errmsg *err);
/* Lists the blobs whose names start with prefix (NULL: all), following every page;
 * name, etag, content_type, last_modified and length are filled. */
int azf__blob_list(azf__storage *st, const char *container, const char *prefix,
                   azf__blob_props **out, size_t *n, azf__errmsg *err);
/* Downloads a blob: content into *data (owned, NUL-terminated), properties into *props
 * (may be NULL). */
int azf__blob_get(azf__storage *st, const char *container, const char *name, azf_buf *data,
                  azf__blob_props *props, azf__errmsg *err);
/* Uploads a block blob in one request (content_type may be NULL). */
int azf__blob_put(azf__storage *st, const char *container, const char *name, const void *data,
                  size_t len, const char *content_type, azf__errmsg *err);

/* ---- tables ---- */
/* Creates the table; an existing one is not an error. */
int azf__table_create(azf__storage *st, const char *table, azf__errmsg *err);
/* Inserts an entity (a JSON object with PartitionKey and RowKey); AZF_E_EXISTS when
 * one with the same keys exists. */
int azf__table_insert(azf__storage *st, const char *table, const char *entity_json,
                      azf__errmsg *err);
/* Inserts or replaces an entity. */
int azf__table_upsert(azf__storage *st, const char *table, const char *entity_json,
                      azf__errmsg *err);
/* One entity as a JSON object without the odata.* annotations (owned). */
int azf__table_get(azf__storage *st, const char *table, const char *partition_key,
                   const char *row_key, char **json, azf__errmsg *err);
/* Entities matching an OData filter (NULL: all), at most take (<= 0: no limit), as a
 * JSON array (owned), following continuation tokens. */
int azf__table_query(azf__storage *st, const char *table, const char *filter, int take, char **json,
                     azf__errmsg *err);

#endif
