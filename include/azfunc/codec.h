/* libazfunc — codec layer: gRPC length-prefixed frames and FunctionRpc messages.
 *
 * No I/O: bytes in, bytes out. A handle is used by one thread at a time and may
 * move between threads.
 */
#ifndef AZFUNC_CODEC_H
#define AZFUNC_CODEC_H

#include "azfunc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- gRPC frames -------------------------------------------------------
 * A gRPC message on an HTTP/2 stream is: 1 byte compressed-flag, 4 bytes
 * big-endian length, then the message. */

#define AZF_FRAME_HEADER_SIZE 5

/* The default and largest accepted message length: the host's int.MaxValue. */
#define AZF_FRAME_MAX_LENGTH 2147483647u

typedef struct azf_frame_reader azf_frame_reader;

/* Creates an incremental frame reader that accepts input split at any byte.
 * max_message_length: messages longer than this are refused with AZF_E_TOOBIG
 * before any of their bytes are buffered; 0 means AZF_FRAME_MAX_LENGTH.
 * Returns 0, AZF_E_INVALID or AZF_E_NOMEM. *out is untouched on failure. */
AZF_API int azf_frame_reader_new(azf_frame_reader **out, size_t max_message_length);

/* Frees the reader. NULL is a no-op. */
AZF_API void azf_frame_reader_free(azf_frame_reader *r);

/* Feeds bytes (copied as needed; no pointer into `data` is kept after the next
 * call to azf_frame_reader_feed). Stops after one complete message.
 * *consumed is set to the number of bytes of `data` used.
 * Returns:
 *   1  a message is ready: read it with azf_frame_reader_message; feed the rest
 *      of `data` (from data + *consumed) afterwards;
 *   0  every byte was consumed and no message is complete yet;
 *   AZF_E_TOOBIG       the next message is longer than the limit;
 *   AZF_E_UNSUPPORTED  the next message is compressed (no grpc-encoding is negotiated);
 *   AZF_E_PARSE        the compressed-flag byte is neither 0 nor 1;
 *   AZF_E_STATE        an earlier call failed: the stream cannot be resynchronised;
 *   AZF_E_INVALID      a NULL argument.
 * On errors *consumed counts the bytes read, the bad header included; azf_frame_reader_errmsg
 * describes the problem. */
AZF_API int azf_frame_reader_feed(azf_frame_reader *r, const uint8_t *data, size_t len,
                                  size_t *consumed);

/* The message made ready by the last feed that returned 1. The bytes are
 * borrowed: valid until the next azf_frame_reader_feed or azf_frame_reader_free
 * (they may point into the fed data). Returns 0, or AZF_E_STATE if no message is ready. */
AZF_API int azf_frame_reader_message(azf_frame_reader *r, const uint8_t **data, size_t *len);

/* Bytes of an incomplete frame held inside the reader (0 at a frame boundary). */
AZF_API size_t azf_frame_reader_pending(const azf_frame_reader *r);

/* A description of the last error (never NULL; "" when there was none). */
AZF_API const char *azf_frame_reader_errmsg(const azf_frame_reader *r);

/* Writes the 5-byte header of an uncompressed message of `len` bytes.
 * Returns 0, or AZF_E_TOOBIG when len > AZF_FRAME_MAX_LENGTH. */
AZF_API int azf_frame_write_header(uint8_t header[AZF_FRAME_HEADER_SIZE], size_t len);

/* Appends header + message to `out`. Returns 0, AZF_E_TOOBIG, AZF_E_NOMEM or AZF_E_INVALID. */
AZF_API int azf_frame_append(azf_buf *out, const uint8_t *msg, size_t len);

/* ---- FunctionRpc messages ----------------------------------------------
 * An azf_message holds one decoded StreamingMessage (the envelope of every
 * message on the host's event stream). Text inside a message is UTF-8 as sent;
 * it is not validated on decode. The `out` buffers below are appended to
 * (borrowed for the call; release them with azf_buf_dispose); on failure their
 * content is unchanged. */

typedef struct azf_message azf_message;

/* Creates an empty StreamingMessage (no request id, no content).
 * Returns 0 or AZF_E_NOMEM. *out is untouched on failure. */
AZF_API int azf_message_new(azf_message **out);

/* Frees the message and everything in it. NULL is a no-op. */
AZF_API void azf_message_free(azf_message *m);

/* Replaces the content of `m` with the StreamingMessage serialized in
 * data[0..len) (copied: no pointer into `data` is kept). Unknown fields are
 * kept and re-encoded. A singular `string` field holding a NUL character is kept
 * whole (re-encoded, and printed by azf_message_to_json as \u0000, never cut); one in
 * a repeated string field or a map is refused. On failure `m` is left empty.
 * Returns 0, AZF_E_PARSE (malformed, nested deeper than 100 messages, NUL in a
 * repeated or map string), AZF_E_NOMEM or AZF_E_INVALID; azf_message_errmsg
 * describes the problem. */
AZF_API int azf_message_decode(azf_message *m, const uint8_t *data, size_t len);

/* Appends the serialized message to `out`.
 * Returns 0, AZF_E_TOOBIG (over AZF_FRAME_MAX_LENGTH), AZF_E_NOMEM or AZF_E_INVALID. */
AZF_API int azf_message_encode(const azf_message *m, azf_buf *out);

/* Appends the message as one uncompressed gRPC frame (header + message) to `out`.
 * Returns 0, AZF_E_TOOBIG, AZF_E_NOMEM or AZF_E_INVALID. */
AZF_API int azf_message_encode_frame(const azf_message *m, azf_buf *out);

/* Appends the proto3 canonical JSON of the message to `out`, on one line, as
 * Google's json_format prints it: lowerCamelCase names, 64-bit integers as
 * strings, bytes in base64, enums by name, default values omitted except for
 * set oneof members, NaN and the infinities as strings. Invalid UTF-8 in a
 * string becomes U+FFFD; U+2028 and U+2029 are escaped so that a message is
 * always one line. Returns 0, AZF_E_NOMEM or AZF_E_INVALID. */
AZF_API int azf_message_to_json(const azf_message *m, azf_buf *out);

/* Replaces the content of `m` with the message described by the proto3 JSON
 * text json[0..len) (copied; no NUL needed). Field names may be lowerCamelCase
 * or the proto names; enums may be names or numbers; bytes may use either
 * base64 alphabet, with or without padding; null means the default. 64-bit
 * integers written as JSON numbers must be exact (|n| <= 2^53); larger ones
 * must be strings, as json_format writes them. \u0000 (NUL) is kept in a singular
 * string field, as azf_message_decode keeps it, and refused elsewhere. On failure `m`
 * is left empty.
 * Returns 0, AZF_E_PARSE (bad JSON, unknown field, wrong type, out of range, NUL),
 * AZF_E_NOMEM or AZF_E_INVALID; azf_message_errmsg describes the problem. */
AZF_API int azf_message_from_json(azf_message *m, const char *json, size_t len);

/* The field number of the member of the `content` oneof that is set
 * (e.g. 4 for invocation_request), or 0 when none is set or m is NULL. */
AZF_API uint32_t azf_message_content_field(const azf_message *m);

/* The proto name of that member (e.g. "invocation_request"), or "" when none
 * is set. The string is static. */
AZF_API const char *azf_message_content_name(const azf_message *m);

/* The request id (borrowed: valid until the message changes or is freed;
 * "" when unset, never NULL). */
AZF_API const char *azf_message_request_id(const azf_message *m);

/* A description of the last error on `m` (never NULL; "" when there was none). */
AZF_API const char *azf_message_errmsg(const azf_message *m);

#ifdef __cplusplus
}
#endif
#endif /* AZFUNC_CODEC_H */
