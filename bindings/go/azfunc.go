// Package azfunc binds libazfunc, the Azure Functions language worker library, to Go.
//
// It offers three things:
//   - a Go-handler worker (Worker): Go functions registered as native handlers and
//     served to the Functions host over FunctionRpc by the library's worker;
//   - a custom host (App): open a Python function app and invoke its functions
//     in-process;
//   - codec helpers (Message, DecodeFrames): StreamingMessage bytes and gRPC frames
//     to and from their JSON view.
//
// Ownership: each Go value that wraps a C handle owns it; Close releases it, is
// idempotent and safe to call more than once. Errors are *Error values carrying the
// library's AZF_E_* code and the handle's own message (no thread-local state).
//
// The library is found with pkg-config (package azfunc).
package azfunc

/*
#cgo pkg-config: azfunc
#include <stdlib.h>
#include <azfunc/azfunc.h>
#include "bridge.h"

// The oldest libazfunc this binding was written for: 0.1.0 (worker provider, host.h).
#if !defined(AZF_VERSION_NUM) || AZF_VERSION_NUM < 0x000100
#error "the azfunc Go binding needs libazfunc >= 0.1.0: install a newer libazfunc"
#endif
*/
import "C"

import (
	"fmt"
	"sync"
)

// MinVersion is the oldest libazfunc (0xMMmmpp) the binding works with; the build
// refuses older headers and the constructors refuse an older shared library.
const MinVersion = 0x000100

// Code is a libazfunc error code (a negative AZF_E_* value). Codes compare with
// errors.Is against an *Error: errors.Is(err, azfunc.ErrNotFound).
type Code int

// The library's error codes (include/azfunc/common.h).
const (
	ErrNoMem       Code = C.AZF_E_NOMEM
	ErrInvalid     Code = C.AZF_E_INVALID
	ErrParse       Code = C.AZF_E_PARSE
	ErrTooBig      Code = C.AZF_E_TOOBIG
	ErrUnsupported Code = C.AZF_E_UNSUPPORTED
	ErrIO          Code = C.AZF_E_IO
	ErrNotFound    Code = C.AZF_E_NOTFOUND
	ErrState       Code = C.AZF_E_STATE
	ErrProtocol    Code = C.AZF_E_PROTOCOL
	ErrTLS         Code = C.AZF_E_TLS
	ErrTimeout     Code = C.AZF_E_TIMEOUT
	ErrClosed      Code = C.AZF_E_CLOSED
	ErrUser        Code = C.AZF_E_USER
	ErrPython      Code = C.AZF_E_PYTHON
	ErrLoad        Code = C.AZF_E_LOAD
	ErrCancelled   Code = C.AZF_E_CANCELLED
	ErrExists      Code = C.AZF_E_EXISTS
	ErrConnect     Code = C.AZF_E_CONNECT
	ErrInternal    Code = C.AZF_E_INTERNAL
	ErrTruncated   Code = C.AZF_E_TRUNCATED
	ErrNotReady    Code = C.AZF_E_NOTREADY
)

func (c Code) Error() string { return C.GoString(C.azf_strerror(C.int(c))) }

// Error is a failed library call: the operation, the code and the handle's message.
type Error struct {
	Op      string // the C function, e.g. "azf_registry_add"
	Code    Code
	Message string // the handle's errmsg at the time of the failure ("" when none)
}

func (e *Error) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Op, e.Message, e.Code.Error())
	}
	return fmt.Sprintf("%s: %s", e.Op, e.Code.Error())
}

// Is makes errors.Is(err, azfunc.ErrX) match on the code.
func (e *Error) Is(target error) bool {
	c, ok := target.(Code)
	return ok && c == e.Code
}

// check turns a return code into an *Error (nil for rc >= 0); msg is the handle's
// errmsg, read right after the call on the same goroutine.
func check(op string, rc C.int, msg *C.char) error {
	if rc >= 0 {
		return nil
	}
	e := &Error{Op: op, Code: Code(rc)}
	if msg != nil {
		e.Message = C.GoString(msg)
	}
	return e
}

// Version is the run-time libazfunc version ("MAJOR.MINOR.PATCH").
func Version() string { return C.GoString(C.azf_version()) }

// VersionNum is the run-time version as 0xMMmmpp.
func VersionNum() uint32 { return uint32(C.azf_version_num()) }

var (
	initOnce sync.Once
	initErr  error
)

// ensureInit checks the shared library's version and takes the library's global
// reference (kept for the life of the process).
func ensureInit() error {
	initOnce.Do(func() {
		if v := VersionNum(); v < MinVersion {
			initErr = fmt.Errorf("azfunc: libazfunc %s is older than %d.%d.%d, which this binding needs",
				Version(), MinVersion>>16, (MinVersion>>8)&0xff, MinVersion&0xff)
			return
		}
		if rc := C.azf_global_init(); rc < 0 {
			initErr = check("azf_global_init", rc, nil)
		}
	})
	return initErr
}
