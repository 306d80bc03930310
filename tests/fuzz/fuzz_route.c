/* Fuzz target: a route template (first line) matched against paths (the other lines).
 * A template either parses or gets a message in the expected shape; matches give one
 * string value per parameter. */
#include "registry/registry_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        abort();
    memcpy(text, data, size);
    text[size] = '\0';
    char *nl = strchr(text, '\n');
    char *paths = nl ? nl + 1 : NULL;
    if (nl)
        *nl = '\0';
    azf__route *r = NULL;
    azf__errmsg err;
    azf__err_clear(&err);
    int rc = azf__route_parse(&r, text, &err);
    if (rc) {
        if (rc != AZF_E_NOMEM && strncmp(err.text, "The route template '", 20) != 0)
            abort();
        free(text);
        return 0;
    }
    if (azf__route_compare(r, r) != 0)
        abort();
    while (paths) {
        char *next = strchr(paths, '\n');
        if (next)
            *next++ = '\0';
        azf_value_map *m = NULL;
        rc = azf__route_match(r, paths, &m);
        if (rc < 0 && rc != AZF_E_NOMEM)
            abort();
        if (rc == 1) {
            for (size_t i = 0; i < azf_value_map_count(m); i++) {
                const char *key;
                const azf_value *v = azf_value_map_at(m, i, &key);
                if (!key || azf_value_kind(v) != AZF_VALUE_STRING)
                    abort();
            }
            azf_value_map_free(m);
        }
        paths = next;
    }
    azf__route_free(r);
    free(text);
    return 0;
}
