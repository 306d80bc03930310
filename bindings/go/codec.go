package azfunc

/*
#include <stdlib.h>
#include <azfunc/azfunc.h>
*/
import "C"

import (
	"unsafe"
)

// Message is one FunctionRpc StreamingMessage (codec.h), convertible between its
// protobuf bytes, a gRPC frame and its proto3 JSON view (the one `azfunc decode`
// prints). A Message is used by one goroutine at a time.
type Message struct {
	c *C.azf_message
}

// NewMessage creates an empty message.
func NewMessage() (*Message, error) {
	if err := ensureInit(); err != nil {
		return nil, err
	}
	m := &Message{}
	if rc := C.azf_message_new(&m.c); rc < 0 {
		return nil, check("azf_message_new", rc, nil)
	}
	return m, nil
}

// Close frees the message; calling it again is a no-op.
func (m *Message) Close() error {
	if m.c != nil {
		C.azf_message_free(m.c)
		m.c = nil
	}
	return nil
}

func (m *Message) closed(op string) error {
	if m.c == nil {
		return &Error{Op: op, Code: ErrState, Message: "the message is closed"}
	}
	return nil
}

func ptr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0]))
}

// Decode replaces the message with the StreamingMessage serialized in b.
func (m *Message) Decode(b []byte) error {
	if err := m.closed("azf_message_decode"); err != nil {
		return err
	}
	rc := C.azf_message_decode(m.c, ptr(b), C.size_t(len(b)))
	return check("azf_message_decode", rc, C.azf_message_errmsg(m.c))
}

// SetJSON replaces the message with the one described by proto3 JSON.
func (m *Message) SetJSON(js string) error {
	if err := m.closed("azf_message_from_json"); err != nil {
		return err
	}
	b := []byte(js)
	rc := C.azf_message_from_json(m.c, (*C.char)(unsafe.Pointer(ptr(b))), C.size_t(len(b)))
	return check("azf_message_from_json", rc, C.azf_message_errmsg(m.c))
}

func (m *Message) out(op string, f func(*C.azf_buf) C.int) ([]byte, error) {
	if err := m.closed(op); err != nil {
		return nil, err
	}
	var buf C.azf_buf
	defer C.azf_buf_dispose(&buf)
	if rc := f(&buf); rc < 0 {
		return nil, check(op, rc, C.azf_message_errmsg(m.c))
	}
	return C.GoBytes(unsafe.Pointer(buf.ptr), C.int(buf.size)), nil
}

// Encode returns the protobuf bytes.
func (m *Message) Encode() ([]byte, error) {
	return m.out("azf_message_encode", func(b *C.azf_buf) C.int { return C.azf_message_encode(m.c, b) })
}

// EncodeFrame returns the message as one uncompressed gRPC frame.
func (m *Message) EncodeFrame() ([]byte, error) {
	return m.out("azf_message_encode_frame", func(b *C.azf_buf) C.int { return C.azf_message_encode_frame(m.c, b) })
}

// JSON returns the proto3 canonical JSON, on one line.
func (m *Message) JSON() (string, error) {
	b, err := m.out("azf_message_to_json", func(b *C.azf_buf) C.int { return C.azf_message_to_json(m.c, b) })
	return string(b), err
}

// ContentName is the member of the content oneof that is set ("invocation_request"), or "".
func (m *Message) ContentName() string {
	if m.c == nil {
		return ""
	}
	return C.GoString(C.azf_message_content_name(m.c))
}

// RequestID is the envelope's request id.
func (m *Message) RequestID() string {
	if m.c == nil {
		return ""
	}
	return C.GoString(C.azf_message_request_id(m.c))
}

// DecodeJSON turns StreamingMessage bytes into their JSON view.
func DecodeJSON(b []byte) (string, error) {
	m, err := NewMessage()
	if err != nil {
		return "", err
	}
	defer m.Close()
	if err := m.Decode(b); err != nil {
		return "", err
	}
	return m.JSON()
}

// EncodeJSON turns the JSON view of a StreamingMessage into its bytes; frame adds the
// gRPC frame header.
func EncodeJSON(js string, frame bool) ([]byte, error) {
	m, err := NewMessage()
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if err := m.SetJSON(js); err != nil {
		return nil, err
	}
	if frame {
		return m.EncodeFrame()
	}
	return m.Encode()
}

// DecodeFrames reads a stream of gRPC frames (as captured from the wire) and returns
// the JSON view of each message. A stream that ends inside a frame is ErrTruncated.
func DecodeFrames(stream []byte) ([]string, error) {
	if err := ensureInit(); err != nil {
		return nil, err
	}
	var r *C.azf_frame_reader
	if rc := C.azf_frame_reader_new(&r, 0); rc < 0 {
		return nil, check("azf_frame_reader_new", rc, nil)
	}
	defer C.azf_frame_reader_free(r)
	cs := C.CBytes(stream) // the reader may point into fed data until the next feed
	defer C.free(cs)
	data := unsafe.Slice((*C.uint8_t)(cs), len(stream))
	var out []string
	for off := 0; off < len(stream); {
		var used C.size_t
		rc := C.azf_frame_reader_feed(r, &data[off], C.size_t(len(stream)-off), &used)
		off += int(used)
		if rc < 0 {
			return out, check("azf_frame_reader_feed", rc, C.azf_frame_reader_errmsg(r))
		}
		if rc == 0 {
			break
		}
		var p *C.uint8_t
		var n C.size_t
		if rc := C.azf_frame_reader_message(r, &p, &n); rc < 0 {
			return out, check("azf_frame_reader_message", rc, C.azf_frame_reader_errmsg(r))
		}
		js, err := DecodeJSON(C.GoBytes(unsafe.Pointer(p), C.int(n)))
		if err != nil {
			return out, err
		}
		out = append(out, js)
	}
	if C.azf_frame_reader_pending(r) > 0 {
		return out, &Error{Op: "DecodeFrames", Code: ErrTruncated, Message: "the stream ends inside a frame"}
	}
	return out, nil
}
