/* Queue service: create, put, get, peek, update visibility, delete. */
#include "storage/storage_internal.h"

#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void azf__queue_messages_free(azf__queue_message *m, size_t n)
{
    for (size_t i = 0; m && i < n; i++) {
        azf__free(m[i].id);
        azf__free(m[i].pop_receipt);
        azf__free(m[i].text);
    }
    azf__free(m);
}

static int simple(azf__storage *st, const azf__request *rq, azf__errmsg *err)
{
    azf__response rs;
    int rc = azf__storage_send(st, rq, &rs, err);
    azf__response_clear(&rs);
    return rc;
}

int azf__queue_create(azf__storage *st, const char *queue, azf__errmsg *err)
{
    char *path = azf__storage_path(queue, NULL);
    azf__request rq = {.method = "PUT", .svc = AZF__QUEUE, .path = path};
    int rc = path ? simple(st, &rq, err) : azf__err(err, AZF_E_NOMEM, "out of memory");
    azf__free(path);
    return rc == AZF_E_EXISTS ? 0 : rc;
}

int azf__queue_put(azf__storage *st, const char *queue, const char *text, int visibility_s,
                   int ttl_s, azf__errmsg *err)
{
    char *path = azf__storage_path(queue, "messages");
    xmlDoc *doc = xmlNewDoc(BAD_CAST "1.0");
    xmlNode *root = doc ? xmlNewNode(NULL, BAD_CAST "QueueMessage") : NULL;
    xmlChar *xml = NULL;
    int xml_len = 0;
    if (root) {
        xmlDocSetRootElement(doc, root);
        if (xmlNewTextChild(root, NULL, BAD_CAST "MessageText", BAD_CAST text))
            xmlDocDumpMemory(doc, &xml, &xml_len);
    }
    char vis[16], ttl[16];
    snprintf(vis, sizeof vis, "%d", visibility_s);
    snprintf(ttl, sizeof ttl, "%d", ttl_s);
    const char *q[7] = {NULL};
    int nq = 0;
    if (visibility_s > 0)
        q[nq++] = "visibilitytimeout", q[nq++] = vis;
    if (ttl_s != 0)
        q[nq++] = "messagettl", q[nq++] = ttl;
    azf__request rq = {.method = "POST",
                       .svc = AZF__QUEUE,
                       .path = path,
                       .query = q,
                       .body = xml,
                       .body_len = (size_t)xml_len,
                       .content_type = "application/xml"};
    int rc = path && xml ? simple(st, &rq, err) : azf__err(err, AZF_E_NOMEM, "out of memory");
    xmlFree(xml);
    xmlFreeDoc(doc);
    azf__free(path);
    return rc;
}

static int parse_messages(const azf_buf *body, azf__queue_message **out, size_t *n,
                          azf__errmsg *err)
{
    xmlDoc *doc = xmlReadMemory(body->ptr ? body->ptr : "", (int)body->size, NULL, NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    if (!root) {
        xmlFreeDoc(doc);
        return azf__err(err, AZF_E_PROTOCOL, "the queue service answered with malformed XML");
    }
    size_t count = 0;
    for (xmlNode *m = root->children; m; m = m->next)
        count += m->type == XML_ELEMENT_NODE;
    azf__queue_message *msgs = azf__calloc(count ? count : 1, sizeof *msgs);
    size_t i = 0;
    for (xmlNode *m = root->children; msgs && m; m = m->next) {
        if (m->type != XML_ELEMENT_NODE || strcmp((const char *)m->name, "QueueMessage") != 0)
            continue;
        azf__queue_message *q = &msgs[i++];
        char *t;
        q->id = azf__xml_text(m, "MessageId");
        q->pop_receipt = azf__xml_text(m, "PopReceipt");
        q->text = azf__xml_text(m, "MessageText");
        if ((t = azf__xml_text(m, "DequeueCount")))
            q->dequeue_count = strtoll(t, NULL, 10);
        azf__free(t);
        t = azf__xml_text(m, "InsertionTime");
        azf__storage_iso_time(t, q->insertion_time);
        azf__free(t);
        t = azf__xml_text(m, "ExpirationTime");
        azf__storage_iso_time(t, q->expiration_time);
        azf__free(t);
        t = azf__xml_text(m, "TimeNextVisible");
        azf__storage_iso_time(t, q->next_visible_time);
        azf__free(t);
        if (!q->id || !q->text)
            q->id = q->id ? q->id : azf__strdup(""), q->text = q->text ? q->text : azf__strdup("");
    }
    xmlFreeDoc(doc);
    if (!msgs)
        return azf__err(err, AZF_E_NOMEM, "out of memory");
    *out = msgs;
    *n = i;
    return 0;
}

static int receive(azf__storage *st, const char *queue, int max, int visibility_s, int peek,
                   azf__queue_message **out, size_t *n, azf__errmsg *err)
{
    *out = NULL;
    *n = 0;
    char num[16], vis[16];
    snprintf(num, sizeof num, "%d", max < 1 ? 1 : max > 32 ? 32 : max);
    snprintf(vis, sizeof vis, "%d", visibility_s < 1 ? 1 : visibility_s);
    const char *q[] = {"numofmessages", num, peek ? "peekonly" : "visibilitytimeout",
                       peek ? "true" : vis, NULL};
    char *path = azf__storage_path(queue, "messages");
    azf__request rq = {.method = "GET", .svc = AZF__QUEUE, .path = path, .query = q};
    azf__response rs;
    int rc =
        path ? azf__storage_send(st, &rq, &rs, err) : azf__err(err, AZF_E_NOMEM, "out of memory");
    if (rc == 0)
        rc = parse_messages(&rs.body, out, n, err);
    if (path)
        azf__response_clear(&rs);
    azf__free(path);
    return rc;
}

int azf__queue_get(azf__storage *st, const char *queue, int max, int visibility_s,
                   azf__queue_message **out, size_t *n, azf__errmsg *err)
{
    return receive(st, queue, max, visibility_s, 0, out, n, err);
}

int azf__queue_peek(azf__storage *st, const char *queue, int max, azf__queue_message **out,
                    size_t *n, azf__errmsg *err)
{
    return receive(st, queue, max, 0, 1, out, n, err);
}

int azf__queue_update(azf__storage *st, const char *queue, azf__queue_message *m, int visibility_s,
                      azf__errmsg *err)
{
    char *msgs = azf__storage_path(queue, "messages");
    char *path = msgs ? azf__storage_path(msgs + 1, m->id) : NULL;
    char vis[16];
    snprintf(vis, sizeof vis, "%d", visibility_s < 0 ? 0 : visibility_s);
    const char *q[] = {"popreceipt", m->pop_receipt, "visibilitytimeout", vis, NULL};
    azf__request rq = {.method = "PUT", .svc = AZF__QUEUE, .path = path, .query = q};
    azf__response rs;
    int rc =
        path ? azf__storage_send(st, &rq, &rs, err) : azf__err(err, AZF_E_NOMEM, "out of memory");
    if (rc == 0) {
        const char *receipt = azf__response_header(&rs, "x-ms-popreceipt");
        char *copy = receipt ? azf__strdup(receipt) : NULL;
        if (copy) {
            azf__free(m->pop_receipt);
            m->pop_receipt = copy;
        }
        azf__storage_iso_time(azf__response_header(&rs, "x-ms-time-next-visible"),
                              m->next_visible_time);
    }
    if (path)
        azf__response_clear(&rs);
    azf__free(path);
    azf__free(msgs);
    return rc;
}

int azf__queue_delete(azf__storage *st, const char *queue, const azf__queue_message *m,
                      azf__errmsg *err)
{
    char *msgs = azf__storage_path(queue, "messages");
    char *path = msgs ? azf__storage_path(msgs + 1, m->id) : NULL;
    const char *q[] = {"popreceipt", m->pop_receipt, NULL};
    azf__request rq = {.method = "DELETE", .svc = AZF__QUEUE, .path = path, .query = q};
    int rc = path ? simple(st, &rq, err) : azf__err(err, AZF_E_NOMEM, "out of memory");
    azf__free(path);
    azf__free(msgs);
    return rc;
}
