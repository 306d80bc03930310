package azfunc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestVersion(t *testing.T) {
	if VersionNum() < MinVersion {
		t.Fatalf("VersionNum %#x < MinVersion %#x", VersionNum(), MinVersion)
	}
	want := fmt.Sprintf("%d.%d.%d", VersionNum()>>16, (VersionNum()>>8)&0xff, VersionNum()&0xff)
	if Version() != want {
		t.Fatalf("Version %q, VersionNum says %q", Version(), want)
	}
}

func TestErrorCarriesCodeAndMessage(t *testing.T) {
	w := newWorker(t)
	bad := Function{Name: "nope", Bindings: []Binding{HTTPOutput("$return")}}
	err := w.Register(bad, nil)
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrParse) || errors.Is(err, ErrExists) {
		t.Fatalf("Register without trigger: %v", err)
	}
	if !strings.Contains(e.Message, "No trigger binding specified") || e.Op != "azf_registry_add" {
		t.Fatalf("message %q op %q", e.Message, e.Op)
	}
	ok := Function{Name: "dup", Bindings: []Binding{HTTPTrigger("req", ""), HTTPOutput("$return")}}
	if err := w.Register(ok, nil); err != nil {
		t.Fatal(err)
	}
	ok.Name = "DUP" // names compare case-insensitively
	if err := w.Register(ok, nil); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if ErrNotFound.Error() == "" || ErrNotFound.Error() == ErrExists.Error() {
		t.Fatal("Code.Error is azf_strerror")
	}
}

func TestBindingJSON(t *testing.T) {
	b, err := json.Marshal(HTTPTrigger("req", "items/{id}", "GET"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	want := map[string]any{"name": "req", "type": "httpTrigger", "direction": "in", "authLevel": "anonymous",
		"route": "items/{id}", "methods": []any{"GET"}}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %v", m)
	}
	b, _ = json.Marshal(Binding{Name: "x", Type: "blob", DataType: "binary"})
	if string(b) != `{"dataType":"binary","direction":"in","name":"x","type":"blob"}` {
		t.Fatalf("got %s", b)
	}
}

func newWorker(t *testing.T) *Worker {
	t.Helper()
	w, err := NewWorker()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := w.Close(); err != nil {
			t.Error(err)
		}
	})
	return w
}

func httpFn(name, route string) Function {
	return Function{Name: name, Bindings: []Binding{HTTPTrigger("req", route), HTTPOutput("$return")}}
}

// Go handlers invoked in-process through the C handler interface (Worker.Invoke):
// conversions both ways, logs, errors, panics, cancellation.
func TestHandlersInProcess(t *testing.T) {
	w := newWorker(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.Register(httpFn("echo", "echo/{id}"), func(ctx context.Context, inv *Invocation) error {
		req, ok := inv.HTTPRequest("req")
		if !ok {
			return errors.New("no request")
		}
		inv.Logf("echo %s", req.Params["id"])
		_ = inv.Log(LogWarning, "ct "+req.Header("content-type"))
		body, _ := json.Marshal(map[string]any{"method": req.Method, "url": req.URL, "q": req.Query["q"],
			"id": req.Params["id"], "body": string(req.Body), "meta": inv.TriggerMetadata["Source"]})
		return inv.SetReturn(&HTTPResponse{Status: 201, Headers: map[string]string{"X-A": "b"}, Body: body,
			Cookies: []*http.Cookie{{Name: "k", Value: "v", Domain: "example.com", Secure: true,
				SameSite: http.SameSiteStrictMode, MaxAge: 60, Expires: time.Unix(1700000000, 0).UTC()}}})
	}))
	req := &HTTPRequest{Method: "POST", URL: "http://localhost/api/echo/5",
		Headers: map[string]string{"Content-Type": "text/plain"}, Query: map[string]string{"q": "1"},
		Params: map[string]string{"id": "5"}, Body: []byte("hi")}
	res, err := w.Invoke(context.Background(), "echo", map[string]any{"req": req},
		&InvokeOptions{InvocationID: "inv-1", TriggerMetadata: map[string]any{"Source": "test"}})
	must(err)
	resp, ok := res.Return.(*HTTPResponse)
	if !ok || resp.Status != 201 || resp.Headers["X-A"] != "b" {
		t.Fatalf("return %#v", res.Return)
	}
	var got map[string]any
	must(json.Unmarshal(resp.Body, &got))
	want := map[string]any{"method": "POST", "url": req.URL, "q": "1", "id": "5", "body": "hi", "meta": "test"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("echo %v", got)
	}
	c := resp.Cookies[0]
	if c.Name != "k" || c.Domain != "example.com" || !c.Secure || c.SameSite != http.SameSiteStrictMode ||
		c.MaxAge != 60 || c.Expires.Unix() != 1700000000 {
		t.Fatalf("cookie %#v", c)
	}
	wantLogs := []LogRecord{{LogInfo, "echo", "echo 5"}, {LogWarning, "echo", "ct text/plain"}}
	if !reflect.DeepEqual(res.Logs, wantLogs) {
		t.Fatalf("logs %v", res.Logs)
	}

	// Outputs of every kind, and a Go value marshalled as JSON.
	must(w.Register(Function{Name: "kinds", Bindings: []Binding{
		{Name: "in", Type: "queueTrigger"}, {Name: "s", Type: "queue", Direction: "out"},
		{Name: "b", Type: "blob", Direction: "out"}, {Name: "j", Type: "queue", Direction: "out"},
		{Name: "i", Type: "queue", Direction: "out"}, {Name: "d", Type: "queue", Direction: "out"},
		{Name: "$return", Type: "queue", Direction: "out"}}},
		func(ctx context.Context, inv *Invocation) error {
			s, _ := inv.String("in")
			for _, o := range []struct {
				name string
				v    any
			}{{"s", "text " + s}, {"b", []byte{0, 1}}, {"j", map[string]int{"n": 1}}, {"i", int64(-3)}, {"d", 2.5}} {
				if err := inv.SetOutput(o.name, o.v); err != nil {
					return err
				}
			}
			if err := inv.SetOutput("nope", "x"); !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("unknown output: %v", err)
			}
			return inv.SetReturn(json.RawMessage(`[1,2]`))
		}))
	res, err = w.Invoke(context.Background(), "kinds", map[string]any{"in": "q"}, nil)
	must(err)
	wantOut := map[string]any{"s": "text q", "b": []byte{0, 1}, "j": json.RawMessage(`{"n":1}`), "i": int64(-3), "d": 2.5}
	if !reflect.DeepEqual(res.Outputs, wantOut) || string(res.Return.(json.RawMessage)) != "[1,2]" {
		t.Fatalf("outputs %#v return %#v", res.Outputs, res.Return)
	}

	// Errors and panics are failures; collections reach the handler.
	must(w.Register(Function{Name: "fail", Bindings: []Binding{{Name: "in", Type: "queueTrigger"}}},
		func(ctx context.Context, inv *Invocation) error {
			if v, ok := inv.Inputs["in"].([]string); ok {
				return fmt.Errorf("got %d strings: %w", len(v), ErrInvalid)
			}
			panic("kaboom")
		}))
	_, err = w.Invoke(context.Background(), "fail", map[string]any{"in": []string{"a", "b"}}, nil)
	var ie *InvocationError
	if !errors.As(err, &ie) || ie.Message != "fmt.wrapError: got 2 strings: "+ErrInvalid.Error() {
		t.Fatalf("error: %v", err)
	}
	_, err = w.Invoke(context.Background(), "fail", map[string]any{"in": "x"}, nil)
	if !errors.As(err, &ie) || ie.Message != "panic: kaboom" || !strings.Contains(ie.Stack, "azfunc_test.go") {
		t.Fatalf("panic: %v", err)
	}

	// Cancellation: the handler's context ends; returning ctx.Err() is a cancel.
	started := make(chan struct{})
	must(w.Register(httpFn("wait", "wait"), func(ctx context.Context, inv *Invocation) error {
		close(started)
		<-ctx.Done()
		if err := inv.SetReturn("late"); err != nil {
			return err
		}
		return ctx.Err()
	}))
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err = w.Invoke(ctx, "wait", map[string]any{"req": &HTTPRequest{Method: "GET"}}, nil)
	if !errors.As(err, &ie) || !ie.Cancelled {
		t.Fatalf("cancel: %v", err)
	}

	if _, err := w.Invoke(context.Background(), "missing", nil, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
}

func TestConcurrentInvocations(t *testing.T) {
	w := newWorker(t)
	// Each invocation runs in its own goroutine: n invocations meet at a barrier.
	const n = 8
	arrived := make(chan struct{}, n)
	release := make(chan struct{})
	if err := w.Register(httpFn("meet", "meet"), func(ctx context.Context, inv *Invocation) error {
		arrived <- struct{}{}
		<-release
		return inv.SetReturn(inv.ID)
	}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func(i int) {
			id := fmt.Sprintf("id-%d", i)
			res, err := w.Invoke(context.Background(), "meet", nil, &InvokeOptions{InvocationID: id})
			if err == nil && res.Return != id {
				err = fmt.Errorf("return %v, want %s", res.Return, id)
			}
			errs <- err
		}(i)
	}
	for i := 0; i < n; i++ {
		<-arrived
	}
	close(release)
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	w, err := NewWorker()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Register(httpFn("x", ""), nil); !errors.Is(err, ErrState) {
		t.Fatalf("Register after Close: %v", err)
	}
	if err := w.Run(context.Background(), []string{"w"}); !errors.Is(err, ErrState) {
		t.Fatalf("Run after Close: %v", err)
	}
	m, err := NewMessage()
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	m.Close()
	if err := m.Decode(nil); !errors.Is(err, ErrState) {
		t.Fatalf("Decode after Close: %v", err)
	}
}

func TestRunNeedsAHost(t *testing.T) {
	w := newWorker(t)
	err := w.Run(context.Background(), []string{"worker", "--workerId", "w"})
	var e *Error
	if !errors.As(err, &e) || e.Code != ErrInvalid || e.Message == "" {
		t.Fatalf("Run without a host: %v", err)
	}
	// Nothing listens on port 1: a connect error with the worker's message.
	err = w.Run(context.Background(), []string{"worker", "--host", "127.0.0.1", "--port", "1",
		"--workerId", "w", "--requestId", "r", "--connect-timeout-ms", "500"})
	if !errors.Is(err, ErrConnect) && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrTimeout) {
		t.Fatalf("Run against a closed port: %v", err)
	}
}
