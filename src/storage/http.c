/* One storage request over libcurl: the URL, the x-ms-* headers, the Shared Key
 * signature (or the SAS token), the answer and the service's error message. */
#include "storage/storage_internal.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <libxml/parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define API_VERSION "2021-12-02"
#define TABLE_API_VERSION "2019-02-02"
#define MAX_HEADERS 24

typedef struct hdr {
    char *name; /* lower case for x-ms-* sorting */
    const char *value;
} hdr;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const hdr *)a)->name, ((const hdr *)b)->name);
}

static char *lower(const char *s)
{
    char *d = azf__strdup(s);
    for (char *p = d; p && *p; p++)
        *p = (char)tolower((unsigned char)*p);
    return d;
}

static void rfc1123_now(char out[40])
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 40, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void azf__storage_iso_time(const char *rfc1123, char out[32])
{
    out[0] = '\0';
    if (!rfc1123)
        return;
    static const char *const months = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char mon[4] = {0};
    int d, y, h, mi, s;
    if (sscanf(rfc1123, "%*3s, %d %3s %d %d:%d:%d", &d, mon, &y, &h, &mi, &s) != 6)
        return;
    const char *m = strstr(months, mon);
    if (!m || (m - months) % 3 != 0 || y < 0 || y > 9999 || d < 1 || d > 31 || h < 0 || h > 23 ||
        mi < 0 || mi > 59 || s < 0 || s > 60)
        return;
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d+00:00", y, (int)(m - months) / 3 + 1,
             d, h, mi, s);
    memcpy(out, tmp, 26); /* always 25 characters and the NUL, given the checks above */
}

/* The path part of an endpoint URL ("/devstoreaccount1" for the emulator, "" for an
 * account's own host name). */
static const char *endpoint_path(const char *endpoint)
{
    const char *p = strstr(endpoint, "://");
    p = p ? strchr(p + 3, '/') : NULL;
    return p ? p : "";
}

char *azf__storage_path(const char *a, const char *b)
{
    azf_buf out = AZF_BUF_INIT;
    const char *segs[2] = {a, b};
    int rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++) {
        if (!segs[i])
            continue;
        rc = azf_buf_append(&out, "/", 1);
        for (const char *p = segs[i]; *p && rc == 0; p++) {
            unsigned char c = (unsigned char)*p;
            char esc[4];
            if (isalnum(c) || strchr("-_.~/", c))
                rc = azf_buf_append(&out, p, 1);
            else
                snprintf(esc, sizeof esc, "%%%02X", c), rc = azf_buf_append(&out, esc, 3);
        }
    }
    if (rc != 0) {
        azf_buf_dispose(&out);
        return NULL;
    }
    return (char *)out.ptr;
}

/* The service's own error: XML <Error><Code/><Message/></Error> for blobs and queues,
 * {"odata.error": {"code", "message": {"value"}}} for tables. */
static void service_error(const azf_buf *body, char *code, size_t csize, char *msg, size_t msize)
{
    code[0] = msg[0] = '\0';
    if (!body->ptr || body->size == 0)
        return;
    if (body->ptr[0] == '{') {
        cJSON *j = cJSON_ParseWithLength((const char *)body->ptr, body->size);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "odata.error");
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
        if (cJSON_IsObject(m))
            m = cJSON_GetObjectItemCaseSensitive(m, "value");
        if (cJSON_IsString(c))
            snprintf(code, csize, "%s", c->valuestring);
        if (cJSON_IsString(m))
            snprintf(msg, msize, "%s", m->valuestring);
        cJSON_Delete(j);
        return;
    }
    xmlDoc *doc = xmlReadMemory((const char *)body->ptr, (int)body->size, NULL, NULL,
                                XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
    char *c = root ? azf__xml_text(root, "Code") : NULL;
    char *m = root ? azf__xml_text(root, "Message") : NULL;
    if (c)
        snprintf(code, csize, "%s", c);
    if (m) { /* the message's first line; the rest is RequestId and Time */
        snprintf(msg, msize, "%s", m);
        msg[strcspn(msg, "\r\n")] = '\0';
    }
    azf__free(c), azf__free(m);
    xmlFreeDoc(doc);
}

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
    return azf_buf_append(user, data, size * n) == 0 ? size * n : 0;
}

static int append_query(azf_buf *url, azf_buf *canon, CURL *c, const azf__request *rq, int table)
{
    int rc = 0, first = 1;
    size_t nq = 0;
    while (rq->query && rq->query[nq * 2])
        nq++;
    hdr q[MAX_HEADERS];
    if (nq > MAX_HEADERS)
        return AZF_E_INVALID;
    for (size_t i = 0; i < nq; i++) {
        char *e = curl_easy_escape(c, rq->query[i * 2 + 1], 0);
        if (!e)
            return AZF_E_NOMEM;
        rc = rc ? rc : azf_buf_append(url, first ? "?" : "&", 1);
        rc = rc ? rc : azf_buf_append(url, rq->query[i * 2], strlen(rq->query[i * 2]));
        rc = rc ? rc : azf_buf_append(url, "=", 1);
        rc = rc ? rc : azf_buf_append(url, e, strlen(e));
        curl_free(e);
        first = 0;
        q[i].name = lower(rq->query[i * 2]);
        q[i].value = rq->query[i * 2 + 1];
        if (!q[i].name)
            rc = AZF_E_NOMEM, nq = i;
    }
    qsort(q, nq, sizeof *q, by_name);
    for (size_t i = 0; rc == 0 && i < nq; i++) {
        if (table) { /* the Table service signs only comp */
            if (strcmp(q[i].name, "comp") == 0)
                rc = azf_buf_append(canon, "?comp=", 6) ||
                     azf_buf_append(canon, q[i].value, strlen(q[i].value));
            continue;
        }
        rc = azf_buf_append(canon, "\n", 1) ||
             azf_buf_append(canon, q[i].name, strlen(q[i].name)) || azf_buf_append(canon, ":", 1) ||
             azf_buf_append(canon, q[i].value, strlen(q[i].value));
        if (rc)
            rc = AZF_E_NOMEM;
    }
    for (size_t i = 0; i < nq; i++)
        azf__free(q[i].name);
    return rc ? AZF_E_NOMEM : 0;
}

int azf__storage_send(azf__storage *st, const azf__request *rq, azf__response *rs, azf__errmsg *err)
{
    memset(rs, 0, sizeof *rs);
    const char *ep = st->endpoint[rq->svc];
    if (!ep)
        return azf__err(err, AZF_E_INVALID, "the connection string has no %s endpoint",
                        rq->svc == AZF__BLOB    ? "blob"
                        : rq->svc == AZF__QUEUE ? "queue"
                                                : "table");
    int table = rq->svc == AZF__TABLE;
    CURL *c = curl_easy_init();
    azf_buf url = AZF_BUF_INIT, canon = AZF_BUF_INIT, sts = AZF_BUF_INIT;
    struct curl_slist *headers = NULL;
    hdr xms[MAX_HEADERS];
    size_t nx = 0;
    char date[40], length[32] = "", auth[256];
    int rc = c ? 0 : AZF_E_NOMEM;
    rfc1123_now(date);
    if (rc == 0)
        rc = azf__buf_printf(&url, "%s%s", ep, rq->path);
    if (rc == 0 && st->account)
        rc = azf__buf_printf(&canon, "/%s%s%s", st->account, endpoint_path(ep), rq->path);
    if (rc == 0)
        rc = append_query(&url, &canon, c, rq, table);
    if (rc == 0 && st->sas) {
        rc = azf_buf_append(&url, strchr((char *)url.ptr, '?') ? "&" : "?", 1);
        rc = rc ? rc : azf_buf_append(&url, st->sas, strlen(st->sas));
    }
    /* the x-ms-* headers: ours, then the request's */
    const char *std[] = {"x-ms-date", date, "x-ms-version", table ? TABLE_API_VERSION : API_VERSION,
                         NULL};
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        const char *const *list = pass == 0 ? std : rq->headers;
        for (size_t i = 0; list && list[i] && rc == 0; i += 2) {
            char *line = azf__asprintf("%s: %s", list[i], list[i + 1]);
            struct curl_slist *n = line ? curl_slist_append(headers, line) : NULL;
            azf__free(line);
            if (!n) {
                rc = AZF_E_NOMEM;
                break;
            }
            headers = n;
            if (strncasecmp(list[i], "x-ms-", 5) == 0 && nx < MAX_HEADERS) {
                xms[nx].name = lower(list[i]);
                xms[nx].value = list[i + 1];
                if (!xms[nx++].name)
                    rc = AZF_E_NOMEM;
            }
        }
    }
    const char *ctype = rq->content_type ? rq->content_type : "";
    if (rq->body_len)
        snprintf(length, sizeof length, "%zu", rq->body_len);
    if (rc == 0 && !st->sas) {
        if (table) { /* SharedKeyLite: the date and the resource */
            rc = azf__buf_printf(&sts, "%s\n%s", date, (const char *)canon.ptr);
        } else {
            rc = azf__buf_printf(&sts, "%s\n\n\n%s\n\n%s\n\n\n\n\n\n\n", rq->method, length, ctype);
            qsort(xms, nx, sizeof *xms, by_name);
            for (size_t i = 0; rc == 0 && i < nx; i++)
                if (azf_buf_append(&sts, xms[i].name, strlen(xms[i].name)) ||
                    azf_buf_append(&sts, ":", 1) ||
                    azf_buf_append(&sts, xms[i].value, strlen(xms[i].value)) ||
                    azf_buf_append(&sts, "\n", 1))
                    rc = AZF_E_NOMEM;
            rc = rc ? rc : azf_buf_append(&sts, canon.ptr, canon.size);
        }
        char sig[128];
        rc = rc ? rc : azf__storage_sign(st, (const char *)sts.ptr, sig, sizeof sig);
        snprintf(auth, sizeof auth, "Authorization: SharedKey%s %s:%s", table ? "Lite" : "",
                 st->account, sig);
        struct curl_slist *n = rc == 0 ? curl_slist_append(headers, auth) : NULL;
        if (rc == 0 && !n)
            rc = AZF_E_NOMEM;
        if (n)
            headers = n;
    }
    /* curl would add its own Content-Type and Expect otherwise */
    char ct[160];
    snprintf(ct, sizeof ct, "Content-Type:%s%s", *ctype ? " " : "", ctype);
    struct curl_slist *n1 = rc == 0 ? curl_slist_append(headers, ct) : NULL;
    if (n1)
        headers = n1;
    struct curl_slist *n2 = rc == 0 && n1 ? curl_slist_append(headers, "Expect:") : NULL;
    if (n2)
        headers = n2;
    if (rc == 0 && (!n1 || !n2))
        rc = AZF_E_NOMEM;
    for (size_t i = 0; i < nx; i++)
        azf__free(xms[i].name);
    if (rc != 0) {
        if (c)
            curl_easy_cleanup(c);
        curl_slist_free_all(headers);
        azf_buf_dispose(&url), azf_buf_dispose(&canon), azf_buf_dispose(&sts);
        return azf__err(err, rc, "cannot build the request: %s", azf_strerror(rc));
    }
    curl_easy_setopt(c, CURLOPT_URL, (const char *)url.ptr);
    curl_easy_setopt(c, CURLOPT_SHARE, st->share);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     st->timeout_ms < 10000 ? st->timeout_ms : 10000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, st->timeout_ms);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &rs->body);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    if (strcmp(rq->method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(rq->method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
        if (strcmp(rq->method, "DELETE") != 0) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
        }
    }
    CURLcode cc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    azf_buf_dispose(&canon), azf_buf_dispose(&sts);
    rs->curl = c;
    if (cc != CURLE_OK) {
        rc = azf__err(err,
                      cc == CURLE_OPERATION_TIMEDOUT ? AZF_E_TIMEOUT
                      : cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST
                          ? AZF_E_CONNECT
                          : AZF_E_PROTOCOL,
                      "%s %s: %s", rq->method, (const char *)url.ptr, curl_easy_strerror(cc));
        azf_buf_dispose(&url);
        return rc;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &rs->status);
    if (rs->status >= 200 && rs->status < 300) {
        azf_buf_dispose(&url);
        return 0;
    }
    char code[96], msg[320];
    service_error(&rs->body, code, sizeof code, msg, sizeof msg);
    rc = rs->status == 404 ? AZF_E_NOTFOUND : rs->status == 409 ? AZF_E_EXISTS : AZF_E_PROTOCOL;
    azf__err(err, rc, "HTTP %ld%s%s%s%s", rs->status, *code ? " " : "", code, *msg ? ": " : "",
             msg);
    azf_buf_dispose(&url);
    return rc;
}

const char *azf__response_header(azf__response *rs, const char *name)
{
    struct curl_header *h = NULL;
    if (!rs->curl || curl_easy_header(rs->curl, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK)
        return NULL;
    return h->value;
}

void azf__response_clear(azf__response *rs)
{
    if (rs->curl)
        curl_easy_cleanup(rs->curl);
    azf_buf_dispose(&rs->body);
    memset(rs, 0, sizeof *rs);
}

xmlNode *azf__xml_child(xmlNode *parent, const char *name)
{
    for (xmlNode *n = parent ? parent->children : NULL; n; n = n->next)
        if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0)
            return n;
    return NULL;
}

char *azf__xml_text(xmlNode *parent, const char *name)
{
    xmlNode *n = azf__xml_child(parent, name);
    if (!n)
        return NULL;
    xmlChar *t = xmlNodeGetContent(n);
    char *s = azf__strdup(t ? (const char *)t : "");
    xmlFree(t);
    return s;
}
