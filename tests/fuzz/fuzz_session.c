/* Fuzz target: HTTP/2 bytes fed to an azf_session (azf_session_recv) in either role.
 * Byte 0: bit 0 = role (0 server: the input is what a worker sends; 1 client: what a
 * host sends, after the client opened its EventStream call). Byte 1: feed chunk
 * size (0 = all at once). The server echoes every message it gets, so the output
 * path runs too. Any input must end in 0 or a clean AZF_E_* code, never a crash. */
#include "azfunc/transport.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fz {
    azf_session *s;
    int role;
} fz;

static int on_message(uint64_t stream, const uint8_t *msg, size_t len, void *ud)
{
    fz *f = ud;
    if (f->role == AZF_ROLE_SERVER) {
        azf_buf b = AZF_BUF_INIT;
        if (azf_buf_set(&b, msg, len) == 0)
            azf_session_send(f->s, stream, &b);
        azf_buf_dispose(&b);
    }
    return 0;
}

static void drain(azf_session *s)
{
    const uint8_t *p;
    size_t n;
    while (azf_session_output(s, &p, &n) == 0 && n)
        ;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    fz f = {NULL, (data[0] & 1) ? AZF_ROLE_CLIENT : AZF_ROLE_SERVER};
    size_t chunk = data[1] ? data[1] : size;
    data += 2, size -= 2;
    azf_transport_callbacks *cbs;
    if (azf_transport_callbacks_new(&cbs))
        return 0;
    azf_transport_callbacks_set_on_message(cbs, on_message);
    azf_transport_opts *o;
    if (azf_transport_opts_new(&o)) {
        azf_transport_callbacks_free(cbs);
        return 0;
    }
    azf_transport_opts_set_max_message_length(o, 1 << 20);
    int rc = azf_session_new(&f.s, f.role, o, cbs, &f);
    azf_transport_opts_free(o);
    azf_transport_callbacks_free(cbs);
    if (rc)
        return 0;
    if (f.role == AZF_ROLE_CLIENT) {
        uint64_t st;
        if (azf_session_open_stream(f.s, NULL, 0, &st))
            abort();
    }
    drain(f.s);
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        rc = azf_session_recv(f.s, data + off, n);
        if (rc && rc != AZF_E_PROTOCOL && rc != AZF_E_NOMEM && rc != AZF_E_USER)
            abort();
        if (rc && !azf_session_errmsg(f.s)[0])
            abort(); /* a failure always says why */
        drain(f.s);
        if (rc)
            break;
    }
    azf_session_free(f.s);
    return 0;
}
