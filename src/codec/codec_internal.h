/* The wire model: the one internal interface through which the other layers see
 * FunctionRpc messages. Every byte from the host is unpacked here (checked first:
 * depth, NUL in strings), every message to the host is packed or framed here, all
 * with one allocator (the library's), under one set of short names. No other layer
 * calls protobuf-c's pack/unpack.
 *
 * Strings: protobuf-c hands `string` fields over as NUL-terminated C strings, so a
 * string carrying a NUL byte could not keep its length. Rather than cut it there, the
 * checked unpack refuses such a message (AZF_E_PARSE, naming the field); on the way
 * out, the marshal layer refuses to put a NUL into a string field. Text the worker
 * writes (log messages, exception messages) goes out whole through
 * azf__codec_set_string, and azf_message_decode (a tool's view) keeps such strings the
 * same way. `bytes` fields keep their length (ProtobufCBinaryData) and may hold
 * anything. */
#ifndef AZF_CODEC_INTERNAL_H
#define AZF_CODEC_INTERNAL_H

#include "azfunc/codec.h"
#include "common/common_internal.h"

#include "FunctionRpc.pb-c.h"

/* ---- short names for the generated types and constants -------------------------------- */
#define AZF__PB(Type) AzureFunctionsRpcMessages__##Type      /* AZF__PB(TypedData) */
#define AZF__PB_K(NAME) AZURE_FUNCTIONS_RPC_MESSAGES__##NAME /* constants, enum values */
#define AZF__PB_INIT(NAME) AZF__PB_K(NAME##__INIT)           /* AZF__PB_INIT(TYPED_DATA) */
#define AZF__PB_CASE(NAME) AZF__PB_K(STREAMING_MESSAGE__CONTENT_##NAME)
#define AZF__PB_TD(NAME) AZF__PB_K(TYPED_DATA__DATA_##NAME)
#define AZF__PB_SUCCESS AZF__PB_K(STATUS_RESULT__STATUS__Success)
#define AZF__PB_FAILURE AZF__PB_K(STATUS_RESULT__STATUS__Failure)

typedef AZF__PB(StreamingMessage) azf__msg;
typedef AZF__PB(TypedData) azf__pb_typed_data;
typedef AZF__PB(ParameterBinding) azf__pb_binding;
typedef AZF__PB(RpcHttp) azf__pb_http;

/* Deepest message nesting accepted on input (protobuf-c's unpack recurses
 * without a limit); Google's runtimes use the same default. */
#define AZF__CODEC_MAX_DEPTH 100

/* The library allocator in protobuf-c's shape (for messages built by hand). */
extern ProtobufCAllocator azf__codec_allocator;

/* A heap copy of a message's INIT value (azf__malloc; NULL when out of memory), e.g.
 * AZF__PB_NEW(StatusResult, STATUS_RESULT). */
void *azf__pb_new(const void *init, size_t size);
#define AZF__PB_NEW(Type, NAME)                                                                    \
    ((AZF__PB(Type) *)azf__pb_new(&(AZF__PB(Type))AZF__PB_INIT(NAME), sizeof(AZF__PB(Type))))

/* Sets singular string field `field` (its proto name) of msg to s[0..len) (borrowed;
 * s[len] must be NUL).
 * A string holding NUL, which protobuf-c would pack cut, is held as an unknown field
 * with the same number (the same bytes on the wire; the field itself is set to ""):
 * spill is the caller's storage for it, one entry per such field of msg (msg's
 * unknown_fields must be NULL or spill), and the entry holds a copy of the string.
 * Returns 0 or AZF_E_NOMEM. Release the copies with azf__codec_clear_strings. */
int azf__codec_set_string(ProtobufCMessage *msg, ProtobufCMessageUnknownField *spill,
                          const char *field, const char *s, size_t len);
void azf__codec_clear_strings(ProtobufCMessage *msg);
/* Moves the string of field `id` of a decoded (library-allocated) message, (*slot)[0..len)
 * holding NUL, into a held unknown field; *slot is freed and set to NULL. 0 or
 * AZF_E_NOMEM (then *slot is unchanged). */
int azf__codec_hold_string(ProtobufCMessage *m, unsigned id, char **slot, size_t len);
/* 1 when d is a map<K, V> entry (K key = 1, V value = 2, named "...Entry"). A string
 * holding NUL is never held in one (maps are printed from their entries' fields). */
int azf__codec_is_map_entry(const ProtobufCMessageDescriptor *d);
/* The string field `id` held whole by azf__codec_set_string, azf_message_decode or
 * azf_message_from_json (the last one): its bytes and *len, or NULL when not held. */
const char *azf__codec_held_string(const ProtobufCMessage *msg, unsigned id, size_t *len);

/* Decodes a serialized StreamingMessage (borrowed, not kept) after the wire check:
 * nesting depth, field numbers and wire types, lengths, NUL bytes in strings. Returns
 * 0, AZF_E_PARSE or AZF_E_NOMEM with `err` set; free *out with azf__msg_free. */
int azf__codec_unpack(const uint8_t *data, size_t len, azf__msg **out, azf__errmsg *err);

/* Frees a message from azf__codec_unpack (NULL is a no-op). */
void azf__msg_free(azf__msg *m);

/* Frees any message returned by this layer (NULL is a no-op). */
void azf__codec_free(ProtobufCMessage *msg);

/* What a refused InvocationRequest can still tell: its invocation_id, read from the raw
 * bytes without unpacking anything else (field 4, then field 1). Returns 1 with
 * id[0..*len) borrowed from data, 0 when the bytes hold no InvocationRequest id. */
int azf__codec_peek_invocation_id(const uint8_t *data, size_t len, const char **id, size_t *n);

/* Appends the serialized message to `out`. Returns 0, AZF_E_TOOBIG or AZF_E_NOMEM. */
int azf__codec_pack(azf_buf *out, const ProtobufCMessage *msg);

/* Appends one gRPC frame (header + packed message) to `out` with a single
 * allocation at most. Works for stack-built messages. Returns 0,
 * AZF_E_TOOBIG or AZF_E_NOMEM. */
int azf__codec_append_frame(azf_buf *out, const ProtobufCMessage *msg);

/* The StreamingMessage held by a handle (borrowed from it). */
azf__msg *azf__message_pb(azf_message *m);

/* The proto3 canonical JSON of any message, appended to `out`.
 * Returns 0 or AZF_E_NOMEM. */
int azf__json_write(azf_buf *out, const ProtobufCMessage *msg);

/* Parses the proto3 canonical JSON of a message of type `desc` (json: copied
 * as needed, len bytes, no NUL needed). Returns 0, AZF_E_PARSE or AZF_E_NOMEM
 * with `err` set; on success *out is freed with azf__codec_free. */
int azf__json_read(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                   ProtobufCMessage **out, azf__errmsg *err);

#endif
