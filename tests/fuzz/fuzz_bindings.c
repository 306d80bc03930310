/* Fuzz target: what `azfunc start` parses for the storage bindings. Byte 0 picks one:
 * 0 a storage connection string, 1 a binding expression against fixed binding data,
 * 2 a blob path pattern (first line) matched against a blob name (the rest), 3 base64
 * text as queue messages carry it. Each either succeeds or fails with a message. */
#include "host/bindings.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    char *text = malloc(size);
    if (!text)
        abort();
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    azf__errmsg err;
    azf__err_clear(&err);
    switch (data[0] % 4) {
    case 0: {
        azf__storage *st = NULL;
        int rc = azf__storage_new(&st, text, &err);
        if (rc == 0) {
            for (int s = AZF__BLOB; s <= AZF__TABLE; s++) {
                const char *ep = azf__storage_endpoint(st, (azf__storage_service)s);
                if (ep && *ep && ep[strlen(ep) - 1] == '/')
                    abort(); /* endpoints never end in '/' */
            }
        } else if (rc != AZF_E_NOMEM && !err.text[0]) {
            abort();
        }
        azf__storage_free(st);
        break;
    }
    case 1: {
        cJSON *d = cJSON_Parse("{\"Id\":\"m\",\"n\":3,\"o\":{\"p\":[1,true,null]},\"b\":false}");
        char *out = NULL;
        int rc = azf__expr_resolve(text, d, &out, &err);
        if ((rc == 0) != (out != NULL) || (rc != 0 && rc != AZF_E_NOMEM && !err.text[0]))
            abort();
        azf__free(out);
        out = NULL;
        if (azf__expr_resolve(text, NULL, &out, &err) == 0 && !out)
            abort();
        azf__free(out);
        cJSON_Delete(d);
        break;
    }
    case 2: {
        char *nl = strchr(text, '\n');
        if (nl) {
            *nl = '\0';
            cJSON *tokens = cJSON_CreateObject();
            if (azf__path_match(text, nl + 1, tokens)) {
                const cJSON *t;
                cJSON_ArrayForEach(t, tokens) if (!cJSON_IsString(t) || !*t->valuestring)
                    abort(); /* a token matches something */
            }
            cJSON_Delete(tokens);
        }
        break;
    }
    default: {
        azf_buf out = AZF_BUF_INIT;
        if (azf__unbase64(text, &out) == 0) {
            char *again = azf__base64(out.ptr, out.size);
            if (!again || strcmp(again, text) != 0) /* canonical base64 round-trips */
                if (!again || strchr(text, '=') == NULL)
                    abort();
            azf__free(again);
        }
        azf_buf_dispose(&out);
        break;
    }
    }
    free(text);
    return 0;
}
