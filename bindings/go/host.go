package azfunc

/*
#include <stdlib.h>
#include <azfunc/azfunc.h>
#include "bridge.h"
*/
import "C"

import (
	"context"
	"runtime"
	"runtime/cgo"
	"sync"
)

// AppOptions configures OpenApp. The zero value uses the library's defaults.
// Which Python runs follows the library's rule (python.h): an explicit Python or
// PythonVersion, else the venv (Venv, $VIRTUAL_ENV, or .venv/ or venv/ in the app),
// else $FUNCTIONS_WORKER_RUNTIME_VERSION, else python3 on PATH.
type AppOptions struct {
	Venv          string // the app's virtual environment (default: $VIRTUAL_ENV, else the app's .venv/)
	PythonVersion string // "3.11": run that Python (default: the rule above)
	Python        string // a python executable to run (of an installation or of a venv)
}

// App is a Python function app opened in-process (the custom host of host.h). Its
// functions are invoked with Invoke; there is no gRPC. One embedded Python runs per
// process, so only one App may be open at a time.
type App struct {
	mu     sync.RWMutex
	c      *C.azf_app
	thread chan func() // the OS thread that opened the app frees it (CPython's rule)
	done   chan struct{}
}

// FunctionInfo describes a function of an App.
type FunctionInfo struct {
	Name    string
	Trigger string // the trigger binding's type
	Route   string // the HTTP route template ("" for other triggers)
	// LoadError is why a v1 function could not be loaded ("" when it loads).
	LoadError string
}

// OpenApp starts the Python adapter, indexes the app in dir and registers its
// functions. An app whose indexing raised opens with no functions; IndexError says why.
func OpenApp(dir string, opts *AppOptions) (*App, error) {
	if err := ensureInit(); err != nil {
		return nil, err
	}
	a := &App{thread: make(chan func()), done: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		// Open and free on one locked OS thread; the goroutine serves nothing else.
		runtime.LockOSThread()
		defer close(a.done)
		err := a.open(dir, opts)
		errc <- err
		if err != nil {
			return
		}
		for f := range a.thread {
			f()
		}
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	return a, nil
}

func (a *App) open(dir string, opts *AppOptions) error {
	var po *C.azf_python_opts
	if rc := C.azf_python_opts_new(&po); rc < 0 {
		return check("azf_python_opts_new", rc, nil)
	}
	defer C.azf_python_opts_free(po)
	if opts != nil && opts.Venv != "" {
		s := cstr(opts.Venv)
		rc := C.azf_python_opts_set_venv(po, s)
		free(s)
		if rc < 0 {
			return check("azf_python_opts_set_venv", rc, nil)
		}
	}
	if opts != nil && opts.Python != "" {
		s := cstr(opts.Python)
		rc := C.azf_python_opts_set_interpreter(po, s)
		free(s)
		if rc < 0 {
			return check("azf_python_opts_set_interpreter", rc, nil)
		}
	}
	if opts != nil && opts.PythonVersion != "" {
		s := cstr(opts.PythonVersion)
		rc := C.azf_python_opts_set_version(po, s)
		free(s)
		if rc < 0 {
			return check("azf_python_opts_set_version", rc, nil)
		}
	}
	cd := cstr(dir)
	defer free(cd)
	if rc := C.azf_app_open(&a.c, cd, po); rc < 0 {
		// The handle does not exist: the options say why (python.h, one channel).
		return &Error{Op: "azf_app_open", Code: Code(rc), Message: C.GoString(C.azf_python_opts_errmsg(po))}
	}
	return nil
}

// IndexError is why indexing failed ("<Type>: <message>"), or "".
func (a *App) IndexError() string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.c == nil || C.azf_app_function_count(a.c) > 0 {
		return ""
	}
	return C.GoString(C.azf_app_errmsg(a.c))
}

// Functions lists the app's functions in registry order.
func (a *App) Functions() []FunctionInfo {
	a.mu.RLock()
	defer a.mu.RUnlock()
	if a.c == nil {
		return nil
	}
	n := int(C.azf_app_function_count(a.c))
	out := make([]FunctionInfo, 0, n)
	for i := 0; i < n; i++ {
		fn := C.azf_app_function_at(a.c, C.size_t(i))
		fi := FunctionInfo{Name: C.GoString(C.azf_function_name(fn))}
		if t := C.azf_function_trigger(fn); t != nil {
			fi.Trigger = C.GoString(C.azf_binding_type(t))
		}
		if r := C.azf_function_route(fn); r != nil {
			fi.Route = C.GoString(r)
		}
		if e := C.azf_function_load_error(fn); e != nil {
			fi.LoadError = C.GoString(e)
		}
		out = append(out, fi)
	}
	return out
}

// Invoke options.
type InvokeOptions struct {
	InvocationID    string         // default: a fresh id
	TriggerMetadata map[string]any // values as for inputs
}

// LogRecord is a log the function wrote during an invocation.
type LogRecord struct {
	Level    int
	Category string
	Message  string
}

// Result is a completed invocation.
type Result struct {
	Outputs map[string]any // out bindings; HTTP values are *HTTPResponse
	Return  any            // the $return value (nil when none)
	Logs    []LogRecord    // in the order written
}

// InvocationError is a function that failed (the Python exception) or was cancelled.
type InvocationError struct {
	Message   string // "<ExceptionType>: <message>"
	Stack     string
	Cancelled bool
}

func (e *InvocationError) Error() string {
	if e.Cancelled {
		return "azfunc: invocation cancelled"
	}
	return e.Message
}

// watch is the Go side of an invocation started by Invoke.
type watch struct {
	mu   sync.Mutex
	logs []LogRecord
	done chan struct{}
}

//export azfgoComplete
func azfgoComplete(c *C.azf_invocation, h C.uintptr_t) {
	close(cgo.Handle(h).Value().(*watch).done)
}

//export azfgoLog
func azfgoLog(c *C.azf_invocation, level C.int, category, message *C.char, h C.uintptr_t) {
	w := cgo.Handle(h).Value().(*watch)
	w.mu.Lock()
	w.logs = append(w.logs, LogRecord{int(level), C.GoString(category), C.GoString(message)})
	w.mu.Unlock()
}

// Invoke runs the function name with inputs by binding name (HTTP triggers take an
// *HTTPRequest; see the value table in values.go) and waits for it. Cancelling ctx
// asks the function to stop; Invoke still waits for it to complete. A failure or a
// cancellation is an *InvocationError, with the Result's logs still filled in.
func (a *App) Invoke(ctx context.Context, name string, inputs map[string]any, opts *InvokeOptions) (*Result, error) {
	a.mu.RLock()
	defer a.mu.RUnlock() // keeps Close away until the invocation completed
	if a.c == nil {
		return nil, &Error{Op: "Invoke", Code: ErrState, Message: "the app is closed"}
	}
	return invoke(ctx, C.azf_app_registry(a.c), name, inputs, opts)
}

// invoke starts an invocation of a registry's function through its handler and
// waits for its completion (the custom-host path of host.h, shared by App and Worker).
func invoke(ctx context.Context, reg *C.azf_registry, name string, inputs map[string]any, opts *InvokeOptions) (*Result, error) {
	cn := cstr(name)
	fn := C.azf_registry_find(reg, cn)
	free(cn)
	if fn == nil {
		return nil, &Error{Op: "azf_registry_find", Code: ErrNotFound, Message: "no function " + name}
	}
	sid := newID()
	if opts != nil && opts.InvocationID != "" {
		sid = opts.InvocationID
	}
	id := cstr(sid)
	defer free(id)
	var inv *C.azf_invocation
	if rc := C.azf_invocation_new(&inv, fn, id); rc < 0 {
		return nil, check("azf_invocation_new", rc, nil)
	}
	defer C.azf_invocation_free(inv)
	for k, x := range inputs {
		v, err := toC(x)
		if err != nil {
			return nil, err
		}
		ck := cstr(k)
		rc := C.azf_invocation_set_input(inv, ck, v)
		free(ck)
		if rc < 0 {
			C.azf_value_free(v)
			return nil, &Error{Op: "azf_invocation_set_input", Code: Code(rc), Message: "input " + k + " of " + name}
		}
	}
	if opts != nil && len(opts.TriggerMetadata) > 0 {
		var m *C.azf_value_map
		if rc := C.azf_value_map_new(&m); rc < 0 {
			return nil, check("azf_value_map_new", rc, nil)
		}
		for k, x := range opts.TriggerMetadata {
			v, err := toC(x)
			if err == nil {
				ck := cstr(k)
				if rc := C.azf_value_map_set(m, ck, v); rc < 0 {
					C.azf_value_free(v)
					err = check("azf_value_map_set", rc, nil)
				}
				free(ck)
			}
			if err != nil {
				C.azf_value_map_free(m)
				return nil, err
			}
		}
		if rc := C.azf_invocation_set_trigger_metadata(inv, m); rc < 0 {
			C.azf_value_map_free(m)
			return nil, check("azf_invocation_set_trigger_metadata", rc, nil)
		}
	}
	w := &watch{done: make(chan struct{})}
	handle := cgo.NewHandle(w)
	defer handle.Delete()
	if rc := C.azfgo_invocation_watch(inv, C.uintptr_t(handle)); rc < 0 {
		return nil, check("azf_invocation_set_on_complete", rc, nil)
	}
	if rc := C.azf_invocation_start(inv); rc < 0 {
		return nil, check("azf_invocation_start", rc, nil)
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		C.azf_invocation_cancel(inv)
		<-w.done
	}
	w.mu.Lock()
	res := &Result{Logs: w.logs}
	w.mu.Unlock()
	switch C.azf_invocation_status(inv) {
	case C.AZF_INVOCATION_SUCCEEDED:
		res.Outputs = mapFromC(C.azf_invocation_outputs(inv), false)
		if rv := C.azf_invocation_return_value(inv); rv != nil {
			res.Return = fromC(rv, false)
		}
		return res, nil
	case C.AZF_INVOCATION_CANCELLED:
		return res, &InvocationError{Cancelled: true}
	default:
		return res, &InvocationError{
			Message: C.GoString(C.azf_invocation_error_message(inv)),
			Stack:   C.GoString(C.azf_invocation_error_stack(inv)),
		}
	}
}

// Close frees the app and stops its Python runtime (waiting for a running Invoke).
// Calling it again is a no-op.
func (a *App) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.c == nil {
		return nil
	}
	c := a.c
	a.c = nil
	a.thread <- func() { C.azf_app_free(c) }
	close(a.thread)
	<-a.done
	return nil
}
