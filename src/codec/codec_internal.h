/* Internal interface of the codec layer for the transport and worker layers:
 * the protobuf-c structs behind azf_message, straight-to-frame packing, and
 * the generic JSON view. Every protobuf-c allocation goes through
 * azf__codec_allocator (the library allocator), so free what these functions
 * return with azf__codec_free. */
#ifndef AZF_CODEC_INTERNAL_H
#define AZF_CODEC_INTERNAL_H

#include "azfunc/codec.h"
#include "common/common_internal.h"

#include "FunctionRpc.pb-c.h"

typedef AzureFunctionsRpcMessages__StreamingMessage azf__pb_streaming_message;

/* Deepest message nesting accepted on input (protobuf-c's unpack recurses
 * without a limit); Google's runtimes use the same default. */
#define AZF__CODEC_MAX_DEPTH 100

/* azf__malloc / azf__free in protobuf-c's shape. */
extern ProtobufCAllocator azf__codec_allocator;

/* Decodes a serialized StreamingMessage (e.g. a frame payload; borrowed, not
 * kept). Returns 0, AZF_E_PARSE or AZF_E_NOMEM with `err` set. */
int azf__codec_unpack(const uint8_t *data, size_t len, azf__pb_streaming_message **out,
                      azf__errmsg *err);

/* Frees any message returned by this layer (NULL is a no-op). */
void azf__codec_free(ProtobufCMessage *msg);

/* Appends one gRPC frame (header + packed message) to `out` with a single
 * allocation at most. Works for stack-built messages. Returns 0,
 * AZF_E_TOOBIG or AZF_E_NOMEM. */
int azf__codec_append_frame(azf_buf *out, const ProtobufCMessage *msg);

/* The StreamingMessage held by a handle (borrowed from it). */
azf__pb_streaming_message *azf__message_pb(azf_message *m);

/* The proto3 canonical JSON of any message, appended to `out`.
 * Returns 0 or AZF_E_NOMEM. */
int azf__json_write(azf_buf *out, const ProtobufCMessage *msg);

/* Parses the proto3 canonical JSON of a message of type `desc` (json: copied
 * as needed, len bytes, no NUL needed). Returns 0, AZF_E_PARSE or AZF_E_NOMEM
 * with `err` set; on success *out is freed with azf__codec_free. */
int azf__json_read(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                   ProtobufCMessage **out, azf__errmsg *err);

#endif
