/* The marshal layer's conversions between azf_value and the codec's wire model
 * (TypedData, ParameterBinding, trigger metadata). Used by the worker only. */
#ifndef AZF_MARSHAL_PB_H
#define AZF_MARSHAL_PB_H

#include "codec/codec_internal.h"
#include "marshal/marshal_internal.h"

/*
 * Decoding (TypedData -> azf_value) accepts every TypedData member.
 * With AZF__MARSHAL_BORROW, string/json/bytes/stream payloads (top level, http body and
 * collection items) point into the decoded message instead of being copied: the
 * values are then valid only while the message is alive (free the values before
 * azf__msg_free). HTTP fields, maps and model binding data are
 * always copied (they are small).
 *
 * Encoding (azf_value -> TypedData) fills a caller-provided, initialised TypedData.
 * Payload strings and bytes are *borrowed* from the value (no copy): the TypedData may
 * be packed while the value is alive and unchanged. Sub-messages and arrays are
 * allocated with azf__malloc and released with azf__pb_typed_data_clear (never with
 * protobuf_c_message_free_unpacked). With AZF__MARSHAL_OUTPUT, kinds the host refuses
 * as outputs (collections, model binding data) give AZF_E_UNSUPPORTED. A string or
 * json value holding a NUL character gives AZF_E_INVALID: protobuf-c sends a string up
 * to its first NUL, and a value is never cut short.
 * With AZF__MARSHAL_NULLABLE, http maps go to the nullable_* fields (the request
 * shape of a host with UseNullableValueDictionaryForHttp); otherwise to the plain
 * maps, where a null value is sent as "". */
enum { AZF__MARSHAL_BORROW = 1, AZF__MARSHAL_OUTPUT = 2, AZF__MARSHAL_NULLABLE = 4 };

/* Decodes; td NULL or with no member set gives a null value. Errors: AZF_E_NOMEM,
 * AZF_E_PARSE (unknown member; message in err). */
int azf__value_from_pb(azf_value **out, const azf__pb_typed_data *td, int flags, azf__errmsg *err);

/* Encodes into *td (initialised by the caller with ..._TYPED_DATA__INIT). On failure
 * *td is cleared and left empty. Errors: AZF_E_NOMEM, AZF_E_UNSUPPORTED, AZF_E_INVALID. */
int azf__value_to_pb(const azf_value *v, azf__pb_typed_data *td, int flags, azf__errmsg *err);

/* Frees what azf__value_to_pb allocated inside *td and resets it to an empty TypedData. */
void azf__pb_typed_data_clear(azf__pb_typed_data *td);

/* A ParameterBinding's value. Shared-memory bindings give AZF_E_UNSUPPORTED (the worker
 * resolves them into TypedData first). */
int azf__value_from_pb_binding(azf_value **out, const azf__pb_binding *pb, int flags,
                               azf__errmsg *err);

/* Trigger metadata: a map from the InvocationRequest entries. */
int azf__value_map_from_pb(azf_value_map **out, size_t n,
                           AZF__PB(InvocationRequest__TriggerMetadataEntry) *const *entries,
                           int flags, azf__errmsg *err);

/* A freshly allocated TypedData (azf__malloc) filled by azf__value_to_pb; free it
 * with azf__pb_typed_data_free. */
int azf__value_to_pb_new(const azf_value *v, azf__pb_typed_data **out, int flags, azf__errmsg *err);
void azf__pb_typed_data_free(azf__pb_typed_data *td);

#endif
