/* gRPC length-prefixed frames: an incremental reader and a writer. */
#include "azfunc/codec.h"
#include "common/common_internal.h"

#include <string.h>

/* Body buffers: up to this much is reserved as soon as a header announces a
 * message (more only as its bytes arrive, so a 5-byte header cannot make the
 * reader allocate the whole limit), and a larger buffer is released once its
 * message has been read. */
#define AZF__FRAME_KEEP_BUFFER ((size_t)1 << 20)

struct azf_frame_reader {
    size_t max_len;
    uint8_t header[AZF_FRAME_HEADER_SIZE];
    size_t header_have; /* header bytes collected so far */
    size_t msg_len;     /* length from the header once it is complete */
    azf_buf body;       /* buffered body bytes when a message spans feeds */
    const uint8_t *ready_ptr;
    size_t ready_len;
    int ready;
    int failed;
    azf__errmsg err;
};

int azf_frame_reader_new(azf_frame_reader **out, size_t max_message_length)
{
    if (!out)
        return AZF_E_INVALID;
    if (max_message_length == 0 || max_message_length > AZF_FRAME_MAX_LENGTH)
        max_message_length = AZF_FRAME_MAX_LENGTH;
    azf_frame_reader *r = azf__calloc(1, sizeof *r);
    if (!r)
        return AZF_E_NOMEM;
    r->max_len = max_message_length;
    *out = r;
    return 0;
}

void azf_frame_reader_free(azf_frame_reader *r)
{
    if (!r)
        return;
    azf_buf_dispose(&r->body);
    azf__free(r);
}

/* Checks a complete header; sets msg_len. */
static int check_header(azf_frame_reader *r)
{
    const uint8_t *h = r->header;
    uint32_t len = ((uint32_t)h[1] << 24) | ((uint32_t)h[2] << 16) | ((uint32_t)h[3] << 8) | h[4];
    if (h[0] == 1)
        return azf__err(&r->err, AZF_E_UNSUPPORTED,
                        "compressed gRPC message refused: no grpc-encoding was negotiated");
    if (h[0] != 0)
        return azf__err(&r->err, AZF_E_PARSE, "bad gRPC frame: compressed-flag byte is 0x%02x",
                        h[0]);
    if (len > r->max_len)
        return azf__err(&r->err, AZF_E_TOOBIG,
                        "gRPC message of %u bytes is over the limit of %zu bytes", len, r->max_len);
    r->msg_len = len;
    return 0;
}

/* Makes room for `need` body bytes: doubling, but never past the message length,
 * and at once up to AZF__FRAME_KEEP_BUFFER. */
static int grow_body(azf_frame_reader *r, size_t need)
{
    if (r->body.reserved > need)
        return 0;
    size_t want = r->body.reserved * 2;
    if (want < AZF__FRAME_KEEP_BUFFER)
        want = AZF__FRAME_KEEP_BUFFER;
    if (want < need)
        want = need;
    if (want > r->msg_len)
        want = r->msg_len;
    /* Sized here rather than by azf_buf_grow, which may double past the cap. */
    char *p = azf__realloc(r->body.reserved ? r->body.ptr : NULL, want + 1);
    if (!p)
        return AZF_E_NOMEM;
    r->body.ptr = p;
    r->body.reserved = want + 1;
    return 0;
}

int azf_frame_reader_feed(azf_frame_reader *r, const uint8_t *data, size_t len, size_t *consumed)
{
    if (!r || !consumed || (!data && len))
        return AZF_E_INVALID;
    *consumed = 0;
    if (r->failed)
        return AZF_E_STATE;
    if (r->ready) {
        /* The previous message has been read: start the next frame. */
        r->ready = 0;
        r->header_have = 0;
        r->body.size = 0;
        if (r->body.reserved > AZF__FRAME_KEEP_BUFFER)
            azf_buf_dispose(&r->body); /* do not hold on to one large message forever */
    }
    size_t used = 0;
    while (r->header_have < AZF_FRAME_HEADER_SIZE) {
        if (used == len) {
            *consumed = used;
            return 0;
        }
        r->header[r->header_have++] = data[used++];
        if (r->header_have == AZF_FRAME_HEADER_SIZE) {
            int rc = check_header(r);
            if (rc) {
                r->failed = 1;
                *consumed = used;
                return rc;
            }
        }
    }
    size_t need = r->msg_len - r->body.size;
    size_t avail = len - used;
    if (r->body.size == 0 && avail >= need) {
        /* Zero copy: the whole body is in the caller's data. */
        r->ready_ptr = data + used;
        r->ready_len = need;
        r->ready = 1;
        *consumed = used + need;
        return 1;
    }
    size_t take = avail < need ? avail : need;
    if (take) {
        int rc = grow_body(r, r->body.size + take);
        if (!rc)
            rc = azf_buf_append(&r->body, data + used, take);
        if (rc) {
            r->failed = 1;
            *consumed = used;
            return azf__err(&r->err, rc, "cannot buffer a gRPC message of %zu bytes", r->msg_len);
        }
        used += take;
    }
    *consumed = used;
    if (r->body.size < r->msg_len)
        return 0;
    r->ready_ptr = (const uint8_t *)r->body.ptr;
    r->ready_len = r->body.size;
    r->ready = 1;
    return 1;
}

int azf_frame_reader_message(azf_frame_reader *r, const uint8_t **data, size_t *len)
{
    if (!r || !data || !len)
        return AZF_E_INVALID;
    if (!r->ready)
        return AZF_E_STATE;
    *data = r->ready_ptr ? r->ready_ptr : (const uint8_t *)"";
    *len = r->ready_len;
    return 0;
}

size_t azf_frame_reader_pending(const azf_frame_reader *r)
{
    if (!r || r->ready)
        return 0;
    return r->header_have + r->body.size;
}

const char *azf_frame_reader_errmsg(const azf_frame_reader *r)
{
    return r ? r->err.text : "";
}

int azf_frame_write_header(uint8_t header[AZF_FRAME_HEADER_SIZE], size_t len)
{
    if (!header)
        return AZF_E_INVALID;
    if (len > AZF_FRAME_MAX_LENGTH)
        return AZF_E_TOOBIG;
    header[0] = 0;
    header[1] = (uint8_t)(len >> 24);
    header[2] = (uint8_t)(len >> 16);
    header[3] = (uint8_t)(len >> 8);
    header[4] = (uint8_t)len;
    return 0;
}

int azf_frame_append(azf_buf *out, const uint8_t *msg, size_t len)
{
    if (!out || (!msg && len))
        return AZF_E_INVALID;
    uint8_t h[AZF_FRAME_HEADER_SIZE];
    int rc = azf_frame_write_header(h, len);
    if (rc)
        return rc;
    rc = azf_buf_grow(out, out->size + sizeof h + len);
    if (rc)
        return rc;
    azf_buf_append(out, h, sizeof h);
    return azf_buf_append(out, msg, len);
}
