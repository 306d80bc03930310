/* Fuzz target: the frame reader fed in pseudo-random pieces, then every message
 * decoded, printed as JSON, parsed back and printed again (which must match). */
#include "azfunc/codec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_message(azf_message *m, azf_message *m2, const uint8_t *p, size_t n)
{
    azf_buf j1 = AZF_BUF_INIT, j2 = AZF_BUF_INIT, wire = AZF_BUF_INIT;
    if (azf_message_decode(m, p, n) == 0) {
        /* Whatever decodes has a JSON view that parses back to the same view. */
        if (azf_message_to_json(m, &j1) != 0 || azf_message_from_json(m2, j1.ptr, j1.size) != 0 ||
            azf_message_to_json(m2, &j2) != 0 || j1.size != j2.size ||
            memcmp(j1.ptr, j2.ptr, j1.size) != 0)
            abort();
        if (azf_message_encode(m, &wire) != 0 ||
            azf_message_decode(m2, (uint8_t *)wire.ptr, wire.size) != 0)
            abort();
    } else if (azf_message_errmsg(m)[0] == '\0') {
        abort(); /* every failure explains itself */
    }
    azf_buf_dispose(&j1);
    azf_buf_dispose(&j2);
    azf_buf_dispose(&wire);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* The first byte picks the piece sizes and the message limit. */
    uint32_t seed = data[0] * 2654435761u + 1;
    size_t max_len = data[0] & 0x80 ? 64 : 0;
    data++;
    size--;
    azf_frame_reader *r;
    azf_message *m, *m2;
    if (azf_frame_reader_new(&r, max_len) || azf_message_new(&m) || azf_message_new(&m2))
        abort();
    size_t pos = 0;
    while (pos < size) {
        seed = seed * 1103515245u + 12345u;
        size_t piece = (seed >> 16) % 64 + 1;
        if (piece > size - pos)
            piece = size - pos;
        const uint8_t *p = data + pos;
        size_t left = piece;
        int rc = 0;
        while (left) {
            size_t used = 0;
            rc = azf_frame_reader_feed(r, p, left, &used);
            if (used > left)
                abort();
            p += used;
            left -= used;
            if (rc < 0)
                break;
            if (rc == 1) {
                const uint8_t *msg;
                size_t n;
                if (azf_frame_reader_message(r, &msg, &n) != 0)
                    abort();
                check_message(m, m2, msg, n);
            }
        }
        if (rc < 0) {
            if (azf_frame_reader_errmsg(r)[0] == '\0')
                abort();
            break;
        }
        pos += piece;
    }
    azf_message_free(m2);
    azf_message_free(m);
    azf_frame_reader_free(r);
    return 0;
}
