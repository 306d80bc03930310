/* Blob service: create a container, list blobs by prefix, get a blob with its
 * properties and metadata, put a block blob. */
#include "storage/storage_internal.h"

#include <libxml/parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void azf__blob_props_clear(azf__blob_props *p)
{
    if (!p)
        return;
    azf__free(p->name);
    azf__free(p->etag);
    azf__free(p->content_type);
    azf__free(p->last_modified);
    azf__free(p->created);
    for (size_t i = 0; i < p->nmeta; i++) {
        azf__free(p->meta_names[i]);
        azf__free(p->meta_values[i]);
    }
    azf__free(p->meta_names);
    azf__free(p->meta_values);
    memset(p, 0, sizeof *p);
}

void azf__blob_list_free(azf__blob_props *items, size_t n)
{
    for (size_t i = 0; items && i < n; i++)
        azf__blob_props_clear(&items[i]);
    azf__free(items);
}

int azf__container_create(azf__storage *st, const char *container, azf__errmsg *err)
{
    char *path = azf__storage_path(container, NULL);
    const char *q[] = {"restype", "container", NULL};
    azf__request rq = {.method = "PUT", .svc = AZF__BLOB, .path = path, .query = q};
    azf__response rs;
    int rc =
        path ? azf__storage_send(st, &rq, &rs, err) : azf__err(err, AZF_E_NOMEM, "out of memory");
    if (path)
        azf__response_clear(&rs);
    azf__free(path);
    return rc == AZF_E_EXISTS ? 0 : rc;
}

/* Appends the <Blob> entries of one page; *marker gets NextMarker (owned) or NULL. */
static int parse_page(const azf_buf *body, azf__blob_props **items, size_t *n, size_t *cap,
                      char **marker, azf__errmsg *err)
{
    *marker = NULL;
    xmlDoc *doc = xmlReadMemory(body->ptr ? body->ptr : "", (int)body->size, NULL, NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!root) {
        xmlFreeDoc(doc);
        return azf__err(err, AZF_E_PROTOCOL, "the blob service answered with malformed XML");
    }
    int rc = 0;
    for (xmlNode *b = azf__xml_child(azf__xml_child(root, "Blobs"), "Blob"); b && rc == 0;
         b = b->next) {
        if (b->type != XML_ELEMENT_NODE || strcmp((const char *)b->name, "Blob") != 0)
            continue;
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 16;
            azf__blob_props *g = azf__realloc(*items, nc * sizeof *g);
            if (!g) {
                rc = azf__err(err, AZF_E_NOMEM, "out of memory");
                break;
            }
            *items = g, *cap = nc;
        }
        azf__blob_props *p = &(*items)[(*n)++];
        memset(p, 0, sizeof *p);
        xmlNode *props = azf__xml_child(b, "Properties");
        char *len = azf__xml_text(props, "Content-Length");
        p->name = azf__xml_text(b, "Name");
        char *etag = azf__xml_text(props, "Etag");
        /* quoted, as the ETag header of a GET carries it */
        p->etag = etag && etag[0] != '"' ? azf__asprintf("\"%s\"", etag) : azf__strdup(etag);
        azf__free(etag);
        p->content_type = azf__xml_text(props, "Content-Type");
        p->last_modified = azf__xml_text(props, "Last-Modified");
        p->created = azf__xml_text(props, "Creation-Time");
        p->length = len ? strtoll(len, NULL, 10) : 0;
        azf__free(len);
        if (!p->name || !p->etag)
            rc = azf__err(err, AZF_E_PROTOCOL, "a listed blob has no Name or Etag");
    }
    char *next = rc == 0 ? azf__xml_text(root, "NextMarker") : NULL;
    if (next && *next)
        *marker = next;
    else
        azf__free(next);
    xmlFreeDoc(doc);
    return rc;
}

int azf__blob_list(azf__storage *st, const char *container, const char *prefix,
                   azf__blob_props **out, size_t *n, azf__errmsg *err)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    char *path = azf__storage_path(container, NULL), *marker = NULL;
    int rc = path ? 0 : azf__err(err, AZF_E_NOMEM, "out of memory");
    for (int page = 0; rc == 0 && page < 100000; page++) {
        const char *q[9] = {"restype", "container", "comp", "list"};
        int nq = 4;
        if (prefix && *prefix)
            q[nq++] = "prefix", q[nq++] = prefix;
        if (marker)
            q[nq++] = "marker", q[nq++] = marker;
        azf__request rq = {.method = "GET", .svc = AZF__BLOB, .path = path, .query = q};
        azf__response rs;
        rc = azf__storage_send(st, &rq, &rs, err);
        char *next = NULL;
        if (rc == 0)
            rc = parse_page(&rs.body, out, n, &cap, &next, err);
        azf__response_clear(&rs);
        azf__free(marker);
        marker = next;
        if (!marker)
            break;
    }
    azf__free(marker);
    azf__free(path);
    if (rc != 0) {
        azf__blob_list_free(*out, *n);
        *out = NULL, *n = 0;
    }
    return rc;
}

static char *header_copy(azf__response *rs, const char *name)
{
    const char *v = azf__response_header(rs, name);
    return v ? azf__strdup(v) : NULL;
}

/* x-ms-meta-<name> response headers, in the order they came. */
static int read_metadata(azf__response *rs, azf__blob_props *p)
{
    struct curl_header *h = NULL;
    size_t cap = 0;
    while ((h = curl_easy_nextheader(rs->curl, CURLH_HEADER, -1, h))) {
        if (strncasecmp(h->name, "x-ms-meta-", 10) != 0)
            continue;
        if (p->nmeta == cap) {
            cap = cap ? cap * 2 : 8;
            char **a = azf__realloc(p->meta_names, cap * sizeof *a);
            if (a)
                p->meta_names = a;
            char **b = a ? azf__realloc(p->meta_values, cap * sizeof *b) : NULL;
            if (!b)
                return AZF_E_NOMEM;
            p->meta_values = b;
        }
        p->meta_names[p->nmeta] = azf__strdup(h->name + 10);
        p->meta_values[p->nmeta] = azf__strdup(h->value);
        p->nmeta++;
        if (!p->meta_names[p->nmeta - 1] || !p->meta_values[p->nmeta - 1])
            return AZF_E_NOMEM;
    }
    return 0;
}

int azf__blob_get(azf__storage *st, const char *container, const char *name, azf_buf *data,
                  azf__blob_props *props, azf__errmsg *err)
{
    char *path = azf__storage_path(container, name);
    azf__request rq = {.method = "GET", .svc = AZF__BLOB, .path = path};
    azf__response rs;
    int rc =
        path ? azf__storage_send(st, &rq, &rs, err) : azf__err(err, AZF_E_NOMEM, "out of memory");
    if (rc == 0) {
        azf_buf_dispose(data);
        *data = rs.body; /* moved */
        rs.body = (azf_buf)AZF_BUF_INIT;
        if (!data->ptr)
            rc = azf_buf_set(data, "", 0);
    }
    if (rc == 0 && props) {
        memset(props, 0, sizeof *props);
        const char *len = azf__response_header(&rs, "Content-Length");
        props->name = azf__strdup(name);
        props->etag = header_copy(&rs, "ETag");
        props->content_type = header_copy(&rs, "Content-Type");
        props->last_modified = header_copy(&rs, "Last-Modified");
        props->created = header_copy(&rs, "x-ms-creation-time");
        props->length = len ? strtoll(len, NULL, 10) : (int64_t)data->size;
        rc = read_metadata(&rs, props);
        if (rc != 0 || !props->name)
            rc = azf__err(err, AZF_E_NOMEM, "out of memory");
    }
    if (path)
        azf__response_clear(&rs);
    azf__free(path);
    return rc;
}

int azf__blob_put(azf__storage *st, const char *container, const char *name, const void *data,
                  size_t len, const char *content_type, azf__errmsg *err)
{
    char *path = azf__storage_path(container, name);
    const char *h[] = {"x-ms-blob-type", "BlockBlob", NULL};
    azf__request rq = {.method = "PUT",
                       .svc = AZF__BLOB,
                       .path = path,
                       .headers = h,
                       .body = data,
                       .body_len = len,
                       .content_type = content_type ? content_type : "application/octet-stream"};
    azf__response rs;
    int rc =
        path ? azf__storage_send(st, &rq, &rs, err) : azf__err(err, AZF_E_NOMEM, "out of memory");
    if (path)
        azf__response_clear(&rs);
    azf__free(path);
    return rc;
}
