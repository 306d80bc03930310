package azfunc

/*
#include <stdlib.h>
#include <azfunc/azfunc.h>
#include "bridge.h"
*/
import "C"

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"runtime/cgo"
	"runtime/debug"
	"strings"
	"sync"
	"unsafe"
)

// Binding is one binding of a function, in function.json terms.
type Binding struct {
	Name      string         // "req", "msg", "$return"
	Type      string         // "httpTrigger", "queueTrigger", "http", "queue", ...
	Direction string         // "in" (default), "out" or "inout"
	DataType  string         // "", "string", "binary" or "stream"
	Extra     map[string]any // any other key: "route", "methods", "authLevel", "queueName", "connection"
}

// MarshalJSON writes the binding as a function.json binding object.
func (b Binding) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(b.Extra)+4)
	for k, v := range b.Extra {
		m[k] = v
	}
	m["name"], m["type"] = b.Name, b.Type
	m["direction"] = b.Direction
	if b.Direction == "" {
		m["direction"] = "in"
	}
	if b.DataType != "" {
		m["dataType"] = b.DataType
	}
	return json.Marshal(m)
}

// HTTPTrigger is an httpTrigger input named name (authLevel anonymous); methods
// empty means every method, route empty the function's name.
func HTTPTrigger(name, route string, methods ...string) Binding {
	extra := map[string]any{"authLevel": "anonymous"}
	if route != "" {
		extra["route"] = route
	}
	if len(methods) > 0 {
		extra["methods"] = methods
	}
	return Binding{Name: name, Type: "httpTrigger", Direction: "in", Extra: extra}
}

// HTTPOutput is an http output binding ("$return" for the return value).
func HTTPOutput(name string) Binding {
	return Binding{Name: name, Type: "http", Direction: "out"}
}

// QueueTrigger is a queueTrigger input on queue (connection: an app setting name).
func QueueTrigger(name, queue, connection string) Binding {
	return Binding{Name: name, Type: "queueTrigger", Direction: "in",
		Extra: map[string]any{"queueName": queue, "connection": connection}}
}

// QueueOutput is a queue output binding.
func QueueOutput(name, queue, connection string) Binding {
	return Binding{Name: name, Type: "queue", Direction: "out",
		Extra: map[string]any{"queueName": queue, "connection": connection}}
}

// Function describes a Go function for the registry and the host (worker-indexed).
type Function struct {
	Name     string
	Bindings []Binding
	// Language reported to the host in the function metadata (default "python", the
	// language the host's worker.config.json declares for this worker).
	Language string
}

// metadataJSON builds the registry's metadata (registry.h) with a fresh function id.
func (f Function) metadataJSON() (string, error) {
	md := map[string]any{
		"name":       f.Name,
		"functionId": newID(),
		"entryPoint": f.Name,
		"bindings":   f.Bindings,
		"properties": map[string]string{"worker_indexed": "True"},
	}
	if f.Language != "" {
		md["language"] = f.Language
	}
	b, err := json.Marshal(md)
	return string(b), err
}

// newID returns a random (version 4) UUID.
func newID() string {
	var id [16]byte
	_, _ = rand.Read(id[:]) // never fails (crypto/rand panics instead)
	id[6], id[8] = id[6]&0x0f|0x40, id[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:])
}

// HandlerFunc runs one invocation. It reads inputs from inv, sets outputs and the
// return value, and returns nil for success or an error, which the host receives as
// a Failure ("<error type>: <message>"). ctx is cancelled when the host cancels the
// invocation or the worker stops; returning ctx.Err() then reports it as cancelled.
type HandlerFunc func(ctx context.Context, inv *Invocation) error

// Log levels (RpcLog.Level).
const (
	LogTrace    = C.AZF_LOG_TRACE
	LogDebug    = C.AZF_LOG_DEBUG
	LogInfo     = C.AZF_LOG_INFO
	LogWarning  = C.AZF_LOG_WARNING
	LogError    = C.AZF_LOG_ERROR
	LogCritical = C.AZF_LOG_CRITICAL
)

// Invocation is one running invocation of a Go handler. Its methods may be called
// from any goroutine until the handler returns; afterwards they return ErrState.
type Invocation struct {
	ID              string
	FunctionName    string
	Inputs          map[string]any // by binding name; see the value table in values.go
	TriggerMetadata map[string]any

	mu   sync.Mutex
	c    *C.azf_invocation // nil once completed
	name string
}

// HTTPRequest returns the input named name when it is an HTTP request.
func (inv *Invocation) HTTPRequest(name string) (*HTTPRequest, bool) {
	r, ok := inv.Inputs[name].(*HTTPRequest)
	return r, ok
}

// String returns a string, JSON or bytes input as text.
func (inv *Invocation) String(name string) (string, bool) {
	switch v := inv.Inputs[name].(type) {
	case string:
		return v, true
	case json.RawMessage:
		return string(v), true
	case []byte:
		return string(v), true
	}
	return "", false
}

// DecodeJSON unmarshals a string, JSON or bytes input into out.
func (inv *Invocation) DecodeJSON(name string, out any) error {
	s, ok := inv.String(name)
	if !ok {
		return fmt.Errorf("azfunc: input %q is not text", name)
	}
	return json.Unmarshal([]byte(s), out)
}

func (inv *Invocation) with(f func(*C.azf_invocation) error) error {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	if inv.c == nil {
		return &Error{Op: "invocation", Code: ErrState, Message: "the invocation has completed"}
	}
	return f(inv.c)
}

func (inv *Invocation) set(op string, name string, x any, ret bool) error {
	return inv.with(func(c *C.azf_invocation) error {
		v, err := toC(x)
		if err != nil {
			return err
		}
		var rc C.int
		if ret {
			rc = C.azf_invocation_set_return(c, v)
		} else {
			cn := cstr(name)
			rc = C.azf_invocation_set_output(c, cn, v)
			free(cn)
		}
		if rc < 0 {
			C.azf_value_free(v)
			return &Error{Op: op, Code: Code(rc), Message: fmt.Sprintf("binding %q of %s", name, inv.FunctionName)}
		}
		return nil
	})
}

// SetOutput sets an out binding (not $return).
func (inv *Invocation) SetOutput(name string, value any) error {
	return inv.set("azf_invocation_set_output", name, value, false)
}

// SetReturn sets the $return value.
func (inv *Invocation) SetReturn(value any) error {
	return inv.set("azf_invocation_set_return", "$return", value, true)
}

// Log sends a user log record to the host, tied to this invocation (it reaches the
// host before the invocation's response).
func (inv *Invocation) Log(level int, message string) error {
	return inv.with(func(c *C.azf_invocation) error {
		cc, cm := cstr(inv.name), cstr(message)
		defer free(cc)
		defer free(cm)
		return check("azf_invocation_log", C.azf_invocation_log(c, C.int(level), cc, cm), nil)
	})
}

// Logf logs an information record.
func (inv *Invocation) Logf(format string, args ...any) {
	_ = inv.Log(LogInfo, fmt.Sprintf(format, args...))
}

// finish completes the invocation exactly once from the handler's outcome.
func (inv *Invocation) finish(ctx context.Context, err error, stack string) {
	inv.mu.Lock()
	defer inv.mu.Unlock()
	c := inv.c
	if c == nil {
		return
	}
	inv.c = nil
	switch {
	case err == nil:
		C.azf_invocation_complete(c)
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		C.azf_invocation_complete_cancelled(c)
	default:
		msg, st := cstr(failureText(err)), cstr(stack)
		C.azf_invocation_fail(c, msg, st)
		free(msg)
		free(st)
	}
}

// failureText is the Failure message: "<error type>: <message>", the type without
// its pointer star (e.g. "errors.errorString: bad input"), or the type an error
// names itself with an ErrorType() string method.
func failureText(err error) string {
	if t, ok := err.(interface{ ErrorType() string }); ok {
		return t.ErrorType() + ": " + err.Error()
	}
	return strings.TrimPrefix(reflect.TypeOf(err).String(), "*") + ": " + err.Error()
}

// panicError is a handler's panic, reported as a Failure.
type panicError struct{ v any }

func (p panicError) Error() string     { return fmt.Sprint(p.v) }
func (p panicError) ErrorType() string { return "panic" }

// entry is one registered function: what the C handler's user_data points to.
type entry struct {
	name    string
	handler HandlerFunc
	ctx     context.Context // the worker's base context
	running sync.Map        // *C.azf_invocation (as uintptr) -> context.CancelFunc
}

//export azfgoInvoke
func azfgoInvoke(c *C.azf_invocation, h C.uintptr_t) C.int {
	e := cgo.Handle(h).Value().(*entry)
	ctx, cancel := context.WithCancel(e.ctx)
	e.running.Store(uintptr(unsafe.Pointer(c)), cancel)
	inv := &Invocation{
		ID:           C.GoString(C.azf_invocation_id(c)),
		FunctionName: e.name,
		c:            c,
		name:         e.name,
	}
	go func() {
		defer cancel()
		defer e.running.Delete(uintptr(unsafe.Pointer(c)))
		if C.azf_invocation_cancel_requested(c) != 0 {
			cancel()
		}
		inv.Inputs = mapFromC(C.azf_invocation_inputs(c), true)
		inv.TriggerMetadata = mapFromC(C.azf_invocation_trigger_metadata(c), true)
		err, stack := run(ctx, e.handler, inv)
		inv.finish(ctx, err, stack)
	}()
	return 0
}

func run(ctx context.Context, h HandlerFunc, inv *Invocation) (err error, stack string) {
	defer func() {
		if r := recover(); r != nil {
			err, stack = panicError{r}, string(debug.Stack())
		}
	}()
	return h(ctx, inv), ""
}

//export azfgoCancel
func azfgoCancel(c *C.azf_invocation, h C.uintptr_t) {
	e := cgo.Handle(h).Value().(*entry)
	if cancel, ok := e.running.Load(uintptr(unsafe.Pointer(c))); ok {
		cancel.(context.CancelFunc)()
	}
}

//export azfgoRelease
func azfgoRelease(h C.uintptr_t) {
	cgo.Handle(h).Delete()
}

// Worker serves registered Go functions to a Functions host over FunctionRpc: the
// library's worker (the azfunc-worker logic) with Go handlers instead of Python.
//
//	w, _ := azfunc.NewWorker()
//	defer w.Close()
//	w.Register(azfunc.Function{Name: "hello", Bindings: ...}, hello)
//	err := w.Run(ctx, os.Args)
type Worker struct {
	mu      sync.Mutex
	reg     *C.azf_registry
	handler *C.azf_handler
	ctx     context.Context
	stop    context.CancelFunc
	running bool
}

// NewWorker creates a worker with an empty registry.
func NewWorker() (*Worker, error) {
	if err := ensureInit(); err != nil {
		return nil, err
	}
	w := &Worker{}
	if rc := C.azf_registry_new(&w.reg); rc < 0 {
		return nil, check("azf_registry_new", rc, nil)
	}
	if rc := C.azfgo_handler_new(&w.handler); rc < 0 {
		C.azf_registry_free(w.reg)
		return nil, check("azf_handler_new", rc, nil)
	}
	w.ctx, w.stop = context.WithCancel(context.Background())
	return w, nil
}

// Register adds a function served by h. Errors carry the registry's message (e.g. a
// missing trigger, a duplicate name).
func (w *Worker) Register(fn Function, h HandlerFunc) error {
	md, err := fn.metadataJSON()
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reg == nil {
		return &Error{Op: "Register", Code: ErrState, Message: "the worker is closed"}
	}
	handle := cgo.NewHandle(&entry{name: fn.Name, handler: h, ctx: w.ctx})
	cmd := cstr(md)
	defer free(cmd)
	if rc := C.azfgo_registry_add(w.reg, cmd, w.handler, C.uintptr_t(handle)); rc < 0 {
		handle.Delete() // the release callback is not called on failure
		return check("azf_registry_add", rc, C.azf_registry_errmsg(w.reg))
	}
	return nil
}

// Run connects to the host named by args (the host's command line: --host/--port or
// --functions-uri, --workerId, --requestId, ...; args[0] is the program name) and
// holds the conversation until the host ends it or ctx is cancelled (azf_worker_stop:
// a graceful stop). A WorkerTerminate lets running invocations finish within its grace
// period; handlers still running afterwards keep their context until Close.
func (w *Worker) Run(ctx context.Context, args []string) error {
	w.mu.Lock()
	if w.reg == nil || w.running {
		w.mu.Unlock()
		return &Error{Op: "Run", Code: ErrState, Message: "the worker is closed or running"}
	}
	w.running = true
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.running = false
		w.mu.Unlock()
	}()

	var opts *C.azf_worker_opts
	if rc := C.azf_worker_opts_new(&opts); rc < 0 {
		return check("azf_worker_opts_new", rc, nil)
	}
	defer C.azf_worker_opts_free(opts)
	argv := make([]*C.char, len(args))
	for i, a := range args {
		argv[i] = cstr(a)
		defer free(argv[i])
	}
	var argp **C.char
	if len(argv) > 0 {
		argp = (**C.char)(C.malloc(C.size_t(len(argv)) * C.size_t(unsafe.Sizeof(argv[0]))))
		defer C.free(unsafe.Pointer(argp))
		copy(unsafe.Slice(argp, len(argv)), argv)
	}
	if rc := C.azf_worker_opts_from_args(opts, C.int(len(args)), argp); rc < 0 {
		return check("azf_worker_opts_from_args", rc, C.azf_worker_opts_errmsg(opts))
	}
	if rc := C.azf_worker_opts_set_registry(opts, w.reg); rc < 0 {
		return check("azf_worker_opts_set_registry", rc, nil)
	}
	name, ver := cstr("go"), cstr(strings.TrimPrefix(runtime.Version(), "go"))
	rc := C.azf_worker_opts_set_runtime(opts, name, ver)
	free(name)
	free(ver)
	if rc < 0 {
		return check("azf_worker_opts_set_runtime", rc, nil)
	}
	var cw *C.azf_worker
	if rc := C.azf_worker_new(&cw, opts); rc < 0 {
		return check("azf_worker_new", rc, nil)
	}
	defer C.azf_worker_free(cw)

	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			C.azf_worker_stop(cw)
		case <-done:
		}
	}()
	rc = C.azf_worker_run(cw)
	close(done)
	<-stopped
	return check("azf_worker_run", rc, C.azf_worker_errmsg(cw))
}

// Invoke runs a registered function in-process, without a host, through the same
// handler interface the worker uses (for tests of Go functions): inputs and results
// as for App.Invoke; ctx cancels the invocation.
func (w *Worker) Invoke(ctx context.Context, name string, inputs map[string]any, opts *InvokeOptions) (*Result, error) {
	w.mu.Lock()
	reg := w.reg
	w.mu.Unlock()
	if reg == nil {
		return nil, &Error{Op: "Invoke", Code: ErrState, Message: "the worker is closed"}
	}
	return invoke(ctx, reg, name, inputs, opts)
}

// Close cancels running invocations and frees the registry. It fails with ErrState
// while Run is running and must not overlap Invoke; calling it again is a no-op.
func (w *Worker) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.running {
		return &Error{Op: "Close", Code: ErrState, Message: "the worker is running"}
	}
	if w.reg == nil {
		return nil
	}
	w.stop()
	C.azf_registry_free(w.reg) // releases every entry's cgo.Handle
	C.azf_handler_free(w.handler)
	w.reg, w.handler = nil, nil
	return nil
}
