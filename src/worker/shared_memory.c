/* Shared-memory data transfer in the conversation (host-protocol §6.1, §6.3, §10.19):
 * inputs the host put in maps, large outputs the worker puts in maps, and
 * CloseSharedMemoryResourcesRequest. The map files themselves are shmem.c's. */
#include "shmem.h"
#include "worker_internal.h"

#include <string.h>

struct azf__shm_map {
    char name[37];
    struct azf__shm_map *next;
};

#define BINDING_CASE(X) AZF__PB_K(PARAMETER_BINDING__RPC_DATA_##X)
#define RPC_TYPE(X) AZF__PB_K(RPC_DATA_TYPE__##X)

/* An input in shared memory, read into a data binding. */
typedef struct {
    azf__pb_binding b;
    AZF__PB(TypedData) td;
} shm_input;

void azf__shared_memory_free_inputs(AZF__PB(InvocationRequest) * copy,
                                    const AZF__PB(InvocationRequest) * r)
{
    if (!copy->input_data || copy->input_data == r->input_data)
        return;
    for (size_t i = 0; i < copy->n_input_data; i++)
        if (copy->input_data[i] && copy->input_data[i] != r->input_data[i]) {
            shm_input *in = (shm_input *)copy->input_data[i];
            azf__free(in->td.data_case == AZF__PB_TD(STRING) ? (void *)in->td.string
                                                             : (void *)in->td.bytes.data);
            azf__free(in);
        }
    azf__free(copy->input_data);
}

int azf__shared_memory_inputs(const AZF__PB(InvocationRequest) * r,
                              AZF__PB(InvocationRequest) * copy, char **text)
{
    *copy = *r;
    size_t n = 0;
    for (size_t i = 0; i < r->n_input_data; i++)
        n += r->input_data[i]->rpc_data_case == BINDING_CASE(RPC_SHARED_MEMORY);
    if (!n)
        return 0;
    copy->input_data = azf__calloc(r->n_input_data, sizeof *copy->input_data);
    if (!copy->input_data)
        return AZF_E_NOMEM;
    for (size_t i = 0; i < r->n_input_data; i++) {
        const azf__pb_binding *pb = r->input_data[i];
        const AZF__PB(RpcSharedMemory) *sm = pb->rpc_shared_memory;
        if (pb->rpc_data_case != BINDING_CASE(RPC_SHARED_MEMORY) || !sm) {
            copy->input_data[i] = (azf__pb_binding *)pb;
            continue;
        }
        const char *name = pb->name ? pb->name : "";
        if (sm->type != RPC_TYPE(bytes) && sm->type != RPC_TYPE(string)) {
            const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
                &azure_functions_rpc_messages__rpc_data_type__descriptor, (int)sm->type);
            *text = azf__asprintf("ValueError: input '%s' in shared memory has type %s; only "
                                  "bytes and string are supported",
                                  name, ev ? ev->name : "unknown");
            return AZF_E_UNSUPPORTED;
        }
        azf__errmsg err;
        azf__err_clear(&err);
        char *data;
        size_t len;
        int rc = azf__shmem_read(sm->name, sm->offset, sm->count, &data, &len, &err);
        if (rc) {
            *text = azf__asprintf("ValueError: cannot read input '%s' from shared memory: %s", name,
                                  err.text[0] ? err.text : azf_strerror(rc));
            return rc;
        }
        /* A string goes on as a C string: one with a NUL would be cut short. */
        if (sm->type == RPC_TYPE(string) && memchr(data, 0, len)) {
            *text = azf__asprintf("ValueError: the string input '%s' in shared memory holds a "
                                  "NUL character, which a string cannot carry here",
                                  name);
            azf__free(data);
            return AZF_E_PARSE;
        }
        shm_input *in = azf__malloc(sizeof *in);
        if (!in) {
            azf__free(data);
            return AZF_E_NOMEM;
        }
        in->b = (azf__pb_binding)AZF__PB_INIT(PARAMETER_BINDING);
        in->td = (AZF__PB(TypedData))AZF__PB_INIT(TYPED_DATA);
        in->b.name = pb->name;
        in->b.rpc_data_case = BINDING_CASE(DATA);
        in->b.data = &in->td;
        if (sm->type == RPC_TYPE(string)) {
            in->td.data_case = AZF__PB_TD(STRING);
            in->td.string = data;
        } else {
            in->td.data_case = AZF__PB_TD(BYTES);
            in->td.bytes.data = (uint8_t *)data;
            in->td.bytes.len = len;
        }
        copy->input_data[i] = &in->b;
    }
    return 0;
}

/* UTF-16 code units x 2, as .NET measures a string (§10.19). */
static uint64_t dotnet_size(const char *s)
{
    uint64_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (*p & 0xc0) != 0x80 ? ((*p >= 0xf0) ? 2 : 1) : 0;
    return n * 2;
}

/* Moves large bytes/string outputs of resp into maps; *moved receives the TypedData
 * taken out of the bindings, put back by restore_outputs. */
static void move_outputs(azf_worker *w, AZF__PB(InvocationResponse) * resp,
                         AZF__PB(RpcSharedMemory) * sms, AZF__PB(TypedData) * *moved)
{
    for (size_t i = 0; i < resp->n_output_data; i++) {
        azf__pb_binding *pb = resp->output_data[i];
        AZF__PB(TypedData) *td = pb->rpc_data_case == BINDING_CASE(DATA) ? pb->data : NULL;
        moved[i] = NULL;
        if (!td || (td->data_case != AZF__PB_TD(BYTES) && td->data_case != AZF__PB_TD(STRING)))
            continue;
        int is_str = td->data_case == AZF__PB_TD(STRING);
        uint64_t size = is_str ? dotnet_size(td->string) : td->bytes.len;
        if (size < AZF__SHMEM_MIN || size > AZF__SHMEM_MAX)
            continue;
        struct azf__shm_map *map = azf__malloc(sizeof *map);
        if (!map)
            continue;
        const void *data = is_str ? (const void *)td->string : td->bytes.data;
        size_t len = is_str ? strlen(td->string) : td->bytes.len;
        azf__errmsg err;
        azf__err_clear(&err);
        if (azf__shmem_write(data, len, map->name, &err)) {
            /* As the official worker: the value then goes inline. */
            azf__worker_log(w, AZF_LOG_WARNING,
                            "cannot put output '%s' in shared memory (%s); sending it inline",
                            pb->name, err.text);
            azf__free(map);
            continue;
        }
        pthread_mutex_lock(&w->lock);
        map->next = w->shm_maps;
        w->shm_maps = map;
        pthread_mutex_unlock(&w->lock);
        sms[i] = (AZF__PB(RpcSharedMemory))AZF__PB_INIT(RPC_SHARED_MEMORY);
        sms[i].name = map->name;
        sms[i].offset = 0;
        sms[i].count = (int64_t)len;
        sms[i].type = is_str ? RPC_TYPE(string) : RPC_TYPE(bytes);
        moved[i] = td;
        pb->rpc_data_case = BINDING_CASE(RPC_SHARED_MEMORY);
        pb->rpc_shared_memory = &sms[i];
    }
}

static void restore_outputs(AZF__PB(InvocationResponse) * resp, AZF__PB(TypedData) * *moved)
{
    for (size_t i = 0; i < resp->n_output_data; i++)
        if (moved[i]) {
            resp->output_data[i]->rpc_data_case = BINDING_CASE(DATA);
            resp->output_data[i]->data = moved[i];
        }
}

int azf__shared_memory_send_response(azf_worker *w, AZF__PB(InvocationResponse) * resp)
{
    AZF__PB(RpcSharedMemory) *sms = NULL;
    AZF__PB(TypedData) **moved = NULL;
    if (resp->n_output_data && azf__shmem_enabled()) {
        sms = azf__calloc(resp->n_output_data, sizeof *sms);
        moved = azf__calloc(resp->n_output_data, sizeof *moved);
        if (sms && moved)
            move_outputs(w, resp, sms, moved);
    }
    azf__msg m = AZF__PB_INIT(STREAMING_MESSAGE);
    m.content_case = AZF__PB_CASE(INVOCATION_RESPONSE);
    m.invocation_response = resp;
    int rc = azf__worker_send(w, &m);
    if (sms && moved)
        restore_outputs(resp, moved);
    azf__free(sms);
    azf__free(moved);
    return rc;
}

int azf__shared_memory_close(azf_worker *w, const azf__msg *msg)
{
    const AZF__PB(CloseSharedMemoryResourcesRequest) *r =
        msg->close_shared_memory_resources_request;
    size_t n = r->n_map_names;
    AZF__PB(CloseSharedMemoryResourcesResponse__CloseMapResultsEntry) *e =
        n ? azf__calloc(n, sizeof *e) : NULL;
    AZF__PB(CloseSharedMemoryResourcesResponse__CloseMapResultsEntry) **ptrs =
        n ? azf__calloc(n, sizeof *ptrs) : NULL;
    if (n && (!e || !ptrs)) {
        azf__free(e);
        azf__free(ptrs);
        return AZF_E_NOMEM;
    }
    int keep = atomic_load(&w->shm_data_cache);
    for (size_t i = 0; i < n; i++) {
        const char *name = r->map_names[i] ? r->map_names[i] : "";
        struct azf__shm_map *found = NULL;
        pthread_mutex_lock(&w->lock);
        for (struct azf__shm_map **pp = &w->shm_maps; *pp; pp = &(*pp)->next)
            if (strcmp((*pp)->name, name) == 0) {
                found = *pp;
                *pp = found->next;
                break;
            }
        pthread_mutex_unlock(&w->lock);
        e[i] = (AZF__PB(CloseSharedMemoryResourcesResponse__CloseMapResultsEntry))AZF__PB_INIT(
            CLOSE_SHARED_MEMORY_RESOURCES_RESPONSE__CLOSE_MAP_RESULTS_ENTRY);
        e[i].key = (char *)name;
        /* Not ours: false, as the official worker answers for maps it did not allocate. */
        e[i].value = found && (keep || azf__shmem_delete(name) == 0);
        if (!found)
            azf__worker_log(w, AZF_LOG_ERROR,
                            "cannot close shared memory map '%s': not allocated by this worker",
                            name);
        azf__free(found);
        ptrs[i] = &e[i];
    }
    AZF__PB(CloseSharedMemoryResourcesResponse)
    resp = AZF__PB_INIT(CLOSE_SHARED_MEMORY_RESOURCES_RESPONSE);
    resp.n_close_map_results = n;
    resp.close_map_results = ptrs;
    azf__msg m =
        AZF__PB_INIT(STREAMING_MESSAGE); /* request_id: the worker's, as the official one */
    m.content_case = AZF__PB_CASE(CLOSE_SHARED_MEMORY_RESOURCES_RESPONSE);
    m.close_shared_memory_resources_response = &resp;
    int rc = azf__worker_send(w, &m);
    azf__free(e);
    azf__free(ptrs);
    return rc;
}

void azf__shared_memory_free(azf_worker *w)
{
    for (struct azf__shm_map *m = w->shm_maps, *next; m; m = next) {
        next = m->next;
        azf__free(m);
    }
    w->shm_maps = NULL;
}
