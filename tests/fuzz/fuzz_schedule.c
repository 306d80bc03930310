/* Fuzz target: an NCRONTAB expression or TimeSpan. It parses or fails with a message;
 * a parsed schedule's next occurrences strictly increase (UTC and local time). */
#include "host/schedule.h"

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
    azf__schedule s;
    azf__errmsg err;
    azf__err_clear(&err);
    int rc = azf__schedule_parse(&s, text, &err);
    if (rc != 0 && (rc != AZF_E_PARSE || !err.text[0]))
        abort();
    for (int local = 0; rc == 0 && local < 2; local++) {
        time_t t = 1700000000, next;
        for (int i = 0; i < 3; i++) {
            if (azf__schedule_next(&s, t, local, &next) != 0)
                break;
            if (next <= t)
                abort();
            t = next;
        }
    }
    free(text);
    return 0;
}
