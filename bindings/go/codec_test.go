package azfunc

import (
	"errors"
	"strings"
	"testing"
)

const statusJSON = `{"requestId":"r1","workerStatusRequest":{}}`

func TestMessageRoundTrip(t *testing.T) {
	b, err := EncodeJSON(statusJSON, false)
	if err != nil {
		t.Fatal(err)
	}
	js, err := DecodeJSON(b)
	if err != nil || js != statusJSON {
		t.Fatalf("DecodeJSON %q %v", js, err)
	}
	m, err := NewMessage()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Decode(b); err != nil {
		t.Fatal(err)
	}
	if m.ContentName() != "worker_status_request" || m.RequestID() != "r1" {
		t.Fatalf("content %q id %q", m.ContentName(), m.RequestID())
	}
	f, err := m.EncodeFrame()
	if err != nil || len(f) != len(b)+5 || f[0] != 0 || string(f[5:]) != string(b) {
		t.Fatalf("frame %x %v", f, err)
	}
}

func TestDecodeFrames(t *testing.T) {
	a, _ := EncodeJSON(statusJSON, true)
	b, _ := EncodeJSON(`{"requestId":"r2","rpcLog":{"message":"hi","level":"Warning"}}`, true)
	msgs, err := DecodeFrames(append(append([]byte{}, a...), b...))
	if err != nil || len(msgs) != 2 || msgs[0] != statusJSON || !strings.Contains(msgs[1], `"message":"hi"`) {
		t.Fatalf("%q %v", msgs, err)
	}
	if _, err := DecodeFrames(b[:len(b)-1]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("truncated: %v", err)
	}
}

func TestCodecErrors(t *testing.T) {
	_, err := DecodeJSON([]byte{0xff, 0xff, 0xff})
	var e *Error
	if !errors.As(err, &e) || e.Code != ErrParse || e.Message == "" {
		t.Fatalf("bad bytes: %v", err)
	}
	_, err = EncodeJSON(`{"noSuchField":1}`, false)
	if !errors.As(err, &e) || e.Code != ErrParse || !strings.Contains(e.Message, "noSuchField") {
		t.Fatalf("bad JSON: %v", err)
	}
}
