/* Fuzz target: function.json text -> validated metadata JSON -> registry function ->
 * RpcFunctionMetadata bytes. Valid input must survive every step; invalid input must
 * give a message. */
#include "worker/worker_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *meta = NULL;
    azf__errmsg err;
    azf__err_clear(&err);
    int rc =
        azf__function_json_parse((const char *)data, size, "function.json", "Fuzz", &meta, &err);
    if (rc) {
        if (err.text[0] == '\0' && rc != AZF_E_NOMEM)
            abort();
        return 0;
    }
    char *text = cJSON_PrintUnformatted(meta);
    cJSON_Delete(meta);
    if (!text)
        abort();
    azf_registry *reg;
    if (azf_registry_new(&reg))
        abort();
    /* What the loader accepted, the registry accepts. */
    if (azf_registry_add(reg, text, NULL, NULL) != 0)
        abort();
    cJSON_free(text);
    const azf_function *fn = azf_registry_find(reg, "fuzz");
    azf__pb_function_metadata md = AZURE_FUNCTIONS_RPC_MESSAGES__RPC_FUNCTION_METADATA__INIT;
    if (!fn || azf__function_to_pb(fn, &md))
        abort();
    size_t n = azure_functions_rpc_messages__rpc_function_metadata__get_packed_size(&md);
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        abort();
    azure_functions_rpc_messages__rpc_function_metadata__pack(&md, buf);
    azf__function_metadata_clear(&md);
    azf__pb_function_metadata *u =
        azure_functions_rpc_messages__rpc_function_metadata__unpack(NULL, n, buf);
    if (!u || u->n_raw_bindings != azf_function_binding_count(fn))
        abort();
    azure_functions_rpc_messages__rpc_function_metadata__free_unpacked(u, NULL);
    free(buf);
    /* Routes of HTTP functions match their own literal text without crashing. */
    const azf_function *hit;
    azf_value_map *vals = NULL;
    if (azf_function_route(fn) &&
        azf_registry_match_route(reg, "GET", azf_function_route(fn), &hit, &vals) == 0)
        azf_value_map_free(vals);
    azf_registry_free(reg);
    return 0;
}
