/* Fuzz target: the first byte picks host.json (even) or local.settings.json (odd); the
 * rest is the file's text. Either it parses into consistent settings or it fails with
 * a message naming the file. */
#include "host/host_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    int local = data[0] & 1;
    const char *file = local ? "local.settings.json" : "host.json";
    azf__settings s;
    azf__errmsg err;
    azf__err_clear(&err);
    azf__settings_init(&s);
    int rc = local
                 ? azf__settings_parse_local(&s, file, (const char *)data + 1, size - 1, &err)
                 : azf__settings_parse_host_json(&s, file, (const char *)data + 1, size - 1, &err);
    if (rc != 0 && rc != AZF_E_NOMEM && strncmp(err.text, file, strlen(file)) != 0)
        abort();
    if (rc == 0) {
        if (s.log_level < 0 || s.log_level > 6)
            abort();
        for (size_t i = 0; i < s.count; i++)
            if (!s.names[i][0] || strchr(s.names[i], '=') || !s.values[i])
                abort();
    }
    azf__settings_clear(&s);
    return 0;
}
