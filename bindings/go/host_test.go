package azfunc

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"
)

// repoRoot is the libazfunc checkout holding this module (bindings/go).
func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// venv is the project's virtual environment (azure-functions for the Python apps).
func venv(t *testing.T) string {
	v := filepath.Join(repoRoot(t), ".venv")
	if _, err := os.Stat(filepath.Join(v, "bin", "python")); err != nil {
		t.Skip("no .venv (scripts/setup.sh makes it)")
	}
	return v
}

// An app that cannot open says why: the library's message, not a generic one.
func TestOpenAppError(t *testing.T) {
	_, err := OpenApp(t.TempDir(), &AppOptions{Venv: "/nonexistent-venv"})
	var e *Error
	if !errors.As(err, &e) || e.Code != ErrNotFound {
		t.Fatalf("OpenApp: %v", err)
	}
	want := "cannot start Python: the virtual environment /nonexistent-venv (from the venv option) does not exist"
	if e.Message != want {
		t.Fatalf("message %q, want %q", e.Message, want)
	}
}

// The custom host: a Python v2 app opened in-process and invoked from Go.
func TestCustomHostPythonApp(t *testing.T) {
	app, err := OpenApp(filepath.Join(repoRoot(t), "tests", "apps", "inv_v2_http"), &AppOptions{Venv: venv(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := app.Close(); err != nil {
			t.Error(err)
		}
		if err := app.Close(); err != nil { // idempotent
			t.Error(err)
		}
		if _, err := app.Invoke(context.Background(), "text", nil, nil); !errors.Is(err, ErrState) {
			t.Errorf("Invoke after Close: %v", err)
		}
	}()
	if e := app.IndexError(); e != "" {
		t.Fatal(e)
	}
	fns := map[string]FunctionInfo{}
	for _, f := range app.Functions() {
		fns[f.Name] = f
	}
	if f := fns["echo"]; f.Trigger != "httpTrigger" || f.Route != "echo/{id}" {
		t.Fatalf("functions %v", fns)
	}
	ctx := context.Background()

	req := &HTTPRequest{Method: "POST", URL: "http://localhost/api/echo/7?a=1",
		Headers: map[string]string{"X-One": "1", "Content-Type": "application/json"},
		Query:   map[string]string{"a": "1"}, Params: map[string]string{"id": "7"}, Body: []byte(`{"k": [1]}`)}
	res, err := app.Invoke(ctx, "echo", map[string]any{"req": req}, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp := res.Return.(*HTTPResponse)
	if resp.Status != 201 || resp.Header("Content-Type") != "application/json" {
		t.Fatalf("response %d %v", resp.Status, resp.Headers)
	}
	var seen map[string]any
	if err := json.Unmarshal(resp.Body, &seen); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"method": "POST", "url": req.URL,
		"headers":      map[string]any{"x-one": "1", "X-ONE": "1", "content-type": "application/json"},
		"params":       map[string]any{"a": "1"},
		"route_params": map[string]any{"id": "7"},
		"body":         `{"k": [1]}`, "json": map[string]any{"k": []any{1.0}}}
	if !reflect.DeepEqual(seen, want) {
		t.Fatalf("the function saw %v", seen)
	}
	if len(res.Logs) != 1 || res.Logs[0].Message != "echo 7" || res.Logs[0].Level != LogInfo {
		t.Fatalf("logs %v", res.Logs)
	}

	// A str return value stays a string in-process (the host side makes it a response).
	res, err = app.Invoke(ctx, "text", map[string]any{"req": &HTTPRequest{Method: "GET",
		URL: "http://localhost/api/text", Query: map[string]string{"name": "go"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Return != "plain go" {
		t.Fatalf("text: %#v", res.Return)
	}

	// Set-Cookie headers become cookies.
	res, err = app.Invoke(ctx, "cookies", map[string]any{"req": &HTTPRequest{Method: "GET", URL: "http://l/api/cookies"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs := res.Return.(*HTTPResponse).Cookies
	if len(cs) != 3 || cs[0].Name != "a" || cs[0].Domain != "example.com" || !cs[0].Secure || cs[0].MaxAge != 60 {
		t.Fatalf("cookies %v", cs)
	}

	// A return value of the wrong type is the function's failure.
	_, err = app.Invoke(ctx, "badtype", map[string]any{"req": &HTTPRequest{Method: "GET", URL: "http://l/api/badtype"}}, nil)
	var ie *InvocationError
	if !errors.As(err, &ie) || ie.Cancelled || ie.Message == "" {
		t.Fatalf("badtype: %v", err)
	}
	if _, err := app.Invoke(ctx, "nope", nil, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown function: %v", err)
	}
}

// The Go worker (examples/go-worker) through the grpcio host simulator: the pytest
// suite tests/host/test_go_worker.py spawns it as the host would.
func TestGoWorkerThroughHostSimulator(t *testing.T) {
	root := repoRoot(t)
	python := filepath.Join(venv(t), "bin", "python")
	exe := filepath.Join(t.TempDir(), "go-worker")
	build := exec.Command("go", "build", "-o", exe, ".")
	build.Dir = filepath.Join(root, "examples", "go-worker")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building examples/go-worker: %v\n%s", err, out)
	}
	test := exec.Command(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/host/test_go_worker.py")
	test.Dir = root
	test.Env = append(os.Environ(), "AZF_GO_WORKER="+exe)
	out, err := test.CombinedOutput()
	if err != nil {
		t.Fatalf("pytest tests/host/test_go_worker.py: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
