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

#ifdef __cplusplus
}
#endif
#endif /* AZFUNC_CODEC_H */
