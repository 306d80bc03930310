/* Fuzz target: JSON -> message -> bytes -> message; both messages must print the
 * same JSON. */
#include "azfunc/codec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    azf_message *m, *m2;
    if (azf_message_new(&m) || azf_message_new(&m2))
        abort();
    azf_buf wire = AZF_BUF_INIT, j1 = AZF_BUF_INIT, j2 = AZF_BUF_INIT;
    if (azf_message_from_json(m, (const char *)data, size) == 0) {
        if (azf_message_encode(m, &wire) != 0 ||
            azf_message_decode(m2, (const uint8_t *)wire.ptr, wire.size) != 0 ||
            azf_message_to_json(m, &j1) != 0 || azf_message_to_json(m2, &j2) != 0 ||
            j1.size != j2.size || memcmp(j1.ptr, j2.ptr, j1.size) != 0)
            abort();
    } else if (azf_message_errmsg(m)[0] == '\0') {
        abort();
    }
    azf_buf_dispose(&wire);
    azf_buf_dispose(&j1);
    azf_buf_dispose(&j2);
    azf_message_free(m2);
    azf_message_free(m);
    return 0;
}
