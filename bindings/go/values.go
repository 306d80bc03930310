package azfunc

/*
#include <stdlib.h>
#include <azfunc/azfunc.h>
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
	"unsafe"
)

// Values cross the boundary as plain Go values:
//
//	string                 string (TypedData.string)
//	json.RawMessage        json
//	[]byte                 bytes (stream inputs also arrive as []byte)
//	*HTTPRequest           http, as an input
//	*HTTPResponse          http, as an output, a return value, or a custom host's result
//	int64 (int, int32)     int
//	float64                double
//	[]string, [][]byte, []float64, []int64   the collections
//	nil                    null
//
// Any other Go value given as an output is marshalled with encoding/json.

// HTTPRequest is an HTTP trigger's input (RpcHttp).
type HTTPRequest struct {
	Method  string
	URL     string
	Headers map[string]string // names as sent; use Header for a case-insensitive lookup
	Query   map[string]string
	Params  map[string]string // route parameters
	Body    []byte
}

// Header returns the value of a header, matching the name case-insensitively.
func (r *HTTPRequest) Header(name string) string { return header(r.Headers, name) }

func header(h map[string]string, name string) string {
	for k, v := range h {
		if http.CanonicalHeaderKey(k) == http.CanonicalHeaderKey(name) {
			return v
		}
	}
	return ""
}

// HTTPResponse is an HTTP output or return value.
type HTTPResponse struct {
	Status  int // 0 means 200
	Headers map[string]string
	Body    []byte
	Cookies []*http.Cookie // Name, Value, Domain, Path, Expires, MaxAge, Secure, HttpOnly, SameSite
}

// Header returns the value of a header, matching the name case-insensitively.
func (r *HTTPResponse) Header(name string) string { return header(r.Headers, name) }

func cstr(s string) *C.char { return C.CString(s) }

func free(p *C.char) { C.free(unsafe.Pointer(p)) }

func newData(kind C.int, b []byte) (*C.azf_value, error) {
	var v *C.azf_value
	var p unsafe.Pointer
	if len(b) > 0 {
		p = unsafe.Pointer(&b[0])
	}
	if rc := C.azf_value_new_data(&v, kind, p, C.size_t(len(b))); rc < 0 {
		return nil, check("azf_value_new_data", rc, nil)
	}
	return v, nil
}

// toC converts a Go value to a new azf_value (owned by the caller).
func toC(x any) (*C.azf_value, error) {
	var v *C.azf_value
	var rc C.int
	switch t := x.(type) {
	case nil:
		rc = C.azf_value_new_null(&v)
	case string:
		return newData(C.AZF_VALUE_STRING, []byte(t))
	case []byte:
		return newData(C.AZF_VALUE_BYTES, t)
	case json.RawMessage:
		return newData(C.AZF_VALUE_JSON, t)
	case int:
		rc = C.azf_value_new_int(&v, C.int64_t(t))
	case int32:
		rc = C.azf_value_new_int(&v, C.int64_t(t))
	case int64:
		rc = C.azf_value_new_int(&v, C.int64_t(t))
	case float64:
		rc = C.azf_value_new_double(&v, C.double(t))
	case *HTTPResponse:
		return httpResponseToC(t)
	case HTTPResponse:
		return httpResponseToC(&t)
	case *HTTPRequest:
		return httpRequestToC(t)
	case []string:
		return collectionToC(C.AZF_VALUE_COLLECTION_STRING, len(t), func(i int) any { return t[i] })
	case [][]byte:
		return collectionToC(C.AZF_VALUE_COLLECTION_BYTES, len(t), func(i int) any { return t[i] })
	case []float64:
		return collectionToC(C.AZF_VALUE_COLLECTION_DOUBLE, len(t), func(i int) any { return t[i] })
	case []int64:
		return collectionToC(C.AZF_VALUE_COLLECTION_SINT64, len(t), func(i int) any { return t[i] })
	default:
		b, err := json.Marshal(t)
		if err != nil {
			return nil, fmt.Errorf("azfunc: cannot convert %T: %w", x, err)
		}
		return newData(C.AZF_VALUE_JSON, b)
	}
	if rc < 0 {
		return nil, check("azf_value_new", rc, nil)
	}
	return v, nil
}

func collectionToC(kind C.int, n int, item func(int) any) (*C.azf_value, error) {
	var coll *C.azf_value
	if rc := C.azf_value_new_collection(&coll, kind); rc < 0 {
		return nil, check("azf_value_new_collection", rc, nil)
	}
	for i := 0; i < n; i++ {
		it, err := toC(item(i))
		if err != nil {
			C.azf_value_free(coll)
			return nil, err
		}
		if rc := C.azf_value_collection_append(coll, it); rc < 0 {
			C.azf_value_free(it)
			C.azf_value_free(coll)
			return nil, check("azf_value_collection_append", rc, nil)
		}
	}
	return coll, nil
}

// httpToC builds an http value; fill sets the scalar fields and cookies.
func httpToC(headers map[string]string, body []byte, fill func(*C.azf_value) error) (*C.azf_value, error) {
	var v *C.azf_value
	if rc := C.azf_value_new_http(&v); rc < 0 {
		return nil, check("azf_value_new_http", rc, nil)
	}
	err := fill(v)
	if err == nil {
		err = setMap(v, C.AZF_HTTP_HEADERS, headers)
	}
	if err == nil {
		var b *C.azf_value
		if b, err = newData(C.AZF_VALUE_BYTES, body); err == nil {
			if rc := C.azf_value_http_set_body(v, b); rc < 0 {
				C.azf_value_free(b)
				err = check("azf_value_http_set_body", rc, nil)
			}
		}
	}
	if err != nil {
		C.azf_value_free(v)
		return nil, err
	}
	return v, nil
}

func setMap(v *C.azf_value, which C.int, m map[string]string) error {
	for k, val := range m {
		ck, cv := cstr(k), cstr(val)
		rc := C.azf_value_http_set(v, which, ck, cv)
		free(ck)
		free(cv)
		if rc < 0 {
			return check("azf_value_http_set", rc, nil)
		}
	}
	return nil
}

func setString(op string, f func(*C.char) C.int, s string) error {
	cs := cstr(s)
	defer free(cs)
	return check(op, f(cs), nil)
}

func httpResponseToC(r *HTTPResponse) (*C.azf_value, error) {
	return httpToC(r.Headers, r.Body, func(v *C.azf_value) error {
		status := r.Status
		if status == 0 {
			status = http.StatusOK
		}
		if err := setString("azf_value_http_set_status_code", func(s *C.char) C.int {
			return C.azf_value_http_set_status_code(v, s)
		}, strconv.Itoa(status)); err != nil {
			return err
		}
		for _, c := range r.Cookies {
			if err := addCookie(v, c); err != nil {
				return err
			}
		}
		return nil
	})
}

func httpRequestToC(r *HTTPRequest) (*C.azf_value, error) {
	return httpToC(r.Headers, r.Body, func(v *C.azf_value) error {
		if err := setString("azf_value_http_set_method", func(s *C.char) C.int {
			return C.azf_value_http_set_method(v, s)
		}, r.Method); err != nil {
			return err
		}
		if err := setString("azf_value_http_set_url", func(s *C.char) C.int {
			return C.azf_value_http_set_url(v, s)
		}, r.URL); err != nil {
			return err
		}
		if err := setMap(v, C.AZF_HTTP_QUERY, r.Query); err != nil {
			return err
		}
		return setMap(v, C.AZF_HTTP_PARAMS, r.Params)
	})
}

func addCookie(v *C.azf_value, c *http.Cookie) error {
	name, value := cstr(c.Name), cstr(c.Value)
	var ck *C.azf_cookie
	rc := C.azf_cookie_new(&ck, name, value)
	free(name)
	free(value)
	if rc < 0 {
		return check("azf_cookie_new", rc, nil)
	}
	if c.Domain != "" {
		s := cstr(c.Domain)
		C.azf_cookie_set_domain(ck, s)
		free(s)
	}
	if c.Path != "" {
		s := cstr(c.Path)
		C.azf_cookie_set_path(ck, s)
		free(s)
	}
	if !c.Expires.IsZero() {
		C.azf_cookie_set_expires(ck, C.int64_t(c.Expires.Unix()), C.int32_t(c.Expires.Nanosecond()))
	}
	if c.MaxAge != 0 {
		C.azf_cookie_set_max_age(ck, C.double(c.MaxAge))
	}
	if c.Secure {
		C.azf_cookie_set_secure(ck, 1)
	}
	if c.HttpOnly {
		C.azf_cookie_set_http_only(ck, 1)
	}
	switch c.SameSite {
	case http.SameSiteLaxMode:
		C.azf_cookie_set_same_site(ck, C.AZF_SAME_SITE_LAX)
	case http.SameSiteStrictMode:
		C.azf_cookie_set_same_site(ck, C.AZF_SAME_SITE_STRICT)
	case http.SameSiteNoneMode:
		C.azf_cookie_set_same_site(ck, C.AZF_SAME_SITE_NONE)
	}
	if rc := C.azf_value_http_add_cookie(v, ck); rc < 0 {
		C.azf_cookie_free(ck)
		return check("azf_value_http_add_cookie", rc, nil)
	}
	return nil
}

func dataOf(v *C.azf_value) []byte {
	var n C.size_t
	p := C.azf_value_data(v, &n)
	if p == nil {
		return nil
	}
	return C.GoBytes(p, C.int(n))
}

func mapOf(v *C.azf_value, which C.int) map[string]string {
	n := int(C.azf_value_http_count(v, which))
	m := make(map[string]string, n)
	for i := 0; i < n; i++ {
		var val *C.char
		k := C.azf_value_http_entry(v, which, C.size_t(i), &val)
		if k != nil && val != nil {
			m[C.GoString(k)] = C.GoString(val)
		}
	}
	return m
}

// fromC converts a borrowed azf_value to Go; http values become *HTTPRequest when
// asRequest, else *HTTPResponse.
func fromC(v *C.azf_value, asRequest bool) any {
	switch C.azf_value_kind(v) {
	case C.AZF_VALUE_STRING:
		return string(dataOf(v))
	case C.AZF_VALUE_JSON:
		return json.RawMessage(dataOf(v))
	case C.AZF_VALUE_BYTES, C.AZF_VALUE_STREAM:
		b := dataOf(v)
		if b == nil {
			b = []byte{}
		}
		return b
	case C.AZF_VALUE_INT:
		return int64(C.azf_value_int(v))
	case C.AZF_VALUE_DOUBLE:
		return float64(C.azf_value_double(v))
	case C.AZF_VALUE_HTTP:
		if asRequest {
			return httpRequestFromC(v)
		}
		return httpResponseFromC(v)
	case C.AZF_VALUE_COLLECTION_STRING:
		out := make([]string, int(C.azf_value_count(v)))
		for i := range out {
			out[i] = string(dataOf(C.azf_value_item(v, C.size_t(i))))
		}
		return out
	case C.AZF_VALUE_COLLECTION_BYTES:
		out := make([][]byte, int(C.azf_value_count(v)))
		for i := range out {
			out[i] = dataOf(C.azf_value_item(v, C.size_t(i)))
		}
		return out
	case C.AZF_VALUE_COLLECTION_DOUBLE:
		out := make([]float64, int(C.azf_value_count(v)))
		for i := range out {
			out[i] = float64(C.azf_value_double(C.azf_value_item(v, C.size_t(i))))
		}
		return out
	case C.AZF_VALUE_COLLECTION_SINT64:
		out := make([]int64, int(C.azf_value_count(v)))
		for i := range out {
			out[i] = int64(C.azf_value_int(C.azf_value_item(v, C.size_t(i))))
		}
		return out
	}
	return nil
}

func bodyOf(v *C.azf_value) []byte {
	b := C.azf_value_http_body(v)
	if b == nil {
		return nil
	}
	return dataOf(b)
}

func httpRequestFromC(v *C.azf_value) *HTTPRequest {
	return &HTTPRequest{
		Method:  C.GoString(C.azf_value_http_method(v)),
		URL:     C.GoString(C.azf_value_http_url(v)),
		Headers: mapOf(v, C.AZF_HTTP_HEADERS),
		Query:   mapOf(v, C.AZF_HTTP_QUERY),
		Params:  mapOf(v, C.AZF_HTTP_PARAMS),
		Body:    bodyOf(v),
	}
}

func httpResponseFromC(v *C.azf_value) *HTTPResponse {
	r := &HTTPResponse{Headers: mapOf(v, C.AZF_HTTP_HEADERS), Body: bodyOf(v)}
	if s := C.azf_value_http_status_code(v); s != nil {
		r.Status, _ = strconv.Atoi(C.GoString(s))
	}
	for i := 0; i < int(C.azf_value_http_cookie_count(v)); i++ {
		c := C.azf_value_http_cookie(v, C.size_t(i))
		hc := &http.Cookie{Name: C.GoString(C.azf_cookie_name(c)), Value: C.GoString(C.azf_cookie_value(c))}
		if d := C.azf_cookie_domain(c); d != nil {
			hc.Domain = C.GoString(d)
		}
		if p := C.azf_cookie_path(c); p != nil {
			hc.Path = C.GoString(p)
		}
		var sec C.int64_t
		var ns C.int32_t
		if C.azf_cookie_expires(c, &sec, &ns) == 1 {
			hc.Expires = time.Unix(int64(sec), int64(ns)).UTC()
		}
		var age C.double
		if C.azf_cookie_max_age(c, &age) == 1 {
			hc.MaxAge = int(age)
		}
		hc.Secure = C.azf_cookie_secure(c) == 1
		hc.HttpOnly = C.azf_cookie_http_only(c) == 1
		switch C.azf_cookie_same_site(c) {
		case C.AZF_SAME_SITE_LAX:
			hc.SameSite = http.SameSiteLaxMode
		case C.AZF_SAME_SITE_STRICT:
			hc.SameSite = http.SameSiteStrictMode
		case C.AZF_SAME_SITE_NONE:
			hc.SameSite = http.SameSiteNoneMode
		}
		r.Cookies = append(r.Cookies, hc)
	}
	return r
}

// mapFromC converts a borrowed value map (trigger metadata, outputs).
func mapFromC(m *C.azf_value_map, asRequest bool) map[string]any {
	n := int(C.azf_value_map_count(m))
	out := make(map[string]any, n)
	for i := 0; i < n; i++ {
		var k *C.char
		v := C.azf_value_map_at(m, C.size_t(i), &k)
		out[C.GoString(k)] = fromC(v, asRequest)
	}
	return out
}
