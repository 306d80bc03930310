// go-worker: a small function app written in Go, served to the Azure Functions host
// through libazfunc's worker (FunctionRpc over gRPC), the way azfunc-worker serves
// Python apps. The host starts it with its usual command line (--host/--port or
// --functions-uri, --workerId, --requestId, ...).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"libazfunc.example/azfunc"
)

// hello: GET/POST /api/hello?name=x → "Hello, x", with two logs.
func hello(ctx context.Context, inv *azfunc.Invocation) error {
	req, _ := inv.HTTPRequest("req")
	name := req.Query["name"]
	if name == "" {
		name = strings.TrimSpace(string(req.Body))
	}
	inv.Logf("hello %s", name)
	if name == "" {
		_ = inv.Log(azfunc.LogWarning, "no name")
		return inv.SetReturn(&azfunc.HTTPResponse{Status: http.StatusBadRequest, Body: []byte("Pass a name")})
	}
	return inv.SetReturn(&azfunc.HTTPResponse{
		Headers: map[string]string{"Content-Type": "text/plain"},
		Body:    []byte("Hello, " + name),
		Cookies: []*http.Cookie{{Name: "seen", Value: name, Path: "/", HttpOnly: true}},
	})
}

// boom: always fails; the host receives a Failure.
func boom(ctx context.Context, inv *azfunc.Invocation) error {
	inv.Logf("about to fail")
	return errors.New("bad input")
}

// enqueue: POST /api/orders/{id} puts a JSON order on the "orders" queue.
func enqueue(ctx context.Context, inv *azfunc.Invocation) error {
	req, _ := inv.HTTPRequest("req")
	order := map[string]any{"id": req.Params["id"], "body": string(req.Body)}
	if err := inv.SetOutput("msg", order); err != nil {
		return err
	}
	return inv.SetReturn(&azfunc.HTTPResponse{Status: http.StatusAccepted, Body: []byte("queued " + req.Params["id"])})
}

// process: a queue message (JSON text) → a line on the "done" queue ($return).
func process(ctx context.Context, inv *azfunc.Invocation) error {
	var order struct {
		ID string `json:"id"`
	}
	if err := inv.DecodeJSON("msg", &order); err != nil {
		return fmt.Errorf("not an order: %w", err)
	}
	count, _ := inv.TriggerMetadata["DequeueCount"].(string)
	if c, ok := inv.TriggerMetadata["DequeueCount"].(json.RawMessage); ok {
		count = string(c)
	}
	inv.Logf("processing order %s (dequeue count %s)", order.ID, count)
	return inv.SetReturn("done " + order.ID)
}

// wait: runs until the host cancels the invocation.
func wait(ctx context.Context, inv *azfunc.Invocation) error {
	inv.Logf("waiting")
	<-ctx.Done()
	return ctx.Err()
}

func main() {
	w, err := azfunc.NewWorker()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-worker:", err)
		os.Exit(1)
	}
	defer w.Close()
	httpFn := func(name, route string, methods ...string) []azfunc.Binding {
		return []azfunc.Binding{azfunc.HTTPTrigger("req", route, methods...), azfunc.HTTPOutput("$return")}
	}
	fns := []struct {
		fn azfunc.Function
		h  azfunc.HandlerFunc
	}{
		{azfunc.Function{Name: "hello", Bindings: httpFn("req", "hello", "GET", "POST")}, hello},
		{azfunc.Function{Name: "boom", Bindings: httpFn("req", "boom")}, boom},
		{azfunc.Function{Name: "enqueue", Bindings: append(httpFn("req", "orders/{id}", "POST"),
			azfunc.QueueOutput("msg", "orders", "AzureWebJobsStorage"))}, enqueue},
		{azfunc.Function{Name: "process", Bindings: []azfunc.Binding{
			azfunc.QueueTrigger("msg", "orders", "AzureWebJobsStorage"),
			{Name: "$return", Type: "queue", Direction: "out",
				Extra: map[string]any{"queueName": "done", "connection": "AzureWebJobsStorage"}}}}, process},
		{azfunc.Function{Name: "wait", Bindings: httpFn("req", "wait")}, wait},
	}
	for _, f := range fns {
		if err := w.Register(f.fn, f.h); err != nil {
			fmt.Fprintln(os.Stderr, "go-worker:", err)
			os.Exit(1)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := w.Run(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "go-worker:", err)
		w.Close()
		os.Exit(1)
	}
}
