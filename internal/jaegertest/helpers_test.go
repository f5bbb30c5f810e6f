package jaegertest_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/coreservice/coreservice/internal/jaegertest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeAPI is an http.RoundTripper standing in for Jaeger's query API: it
// records each request and answers with respond(call number, request).
// It needs no network, so tests using it can run in a synctest bubble.
type fakeAPI struct {
	mu       sync.Mutex
	requests []*http.Request
	respond  func(n int, r *http.Request) (status int, body string)
}

func (f *fakeAPI) RoundTrip(r *http.Request) (*http.Response, error) {
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.requests = append(f.requests, r)
	n := len(f.requests)
	f.mu.Unlock()
	status, body := f.respond(n, r)
	return &http.Response{
		StatusCode: status,
		Status:     fmt.Sprintf("%d %s", status, http.StatusText(status)),
		Header:     http.Header{"Content-Type": {"application/json"}},
		Body:       io.NopCloser(bytes.NewBufferString(body)),
		Request:    r,
	}, nil
}

func (f *fakeAPI) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func (f *fakeAPI) request(i int) *http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[i]
}

// client returns a Client whose requests go to f.
func (f *fakeAPI) client() *jaegertest.Client {
	return jaegertest.NewClient("http://jaeger.invalid:16686", jaegertest.WithHTTPClient(&http.Client{Transport: f}))
}

// serve answers every request with the same status and body.
func serve(status int, body string) *fakeAPI {
	return &fakeAPI{respond: func(int, *http.Request) (int, string) { return status, body }}
}

// envelope wraps data in the query API's response envelope.
func envelope(data string) string {
	return `{"data":` + data + `,"total":0,"limit":0,"offset":0,"errors":null}`
}

// fixture returns the content of testdata/name.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixtureTraces decodes testdata/traces.json, a response of
// /api/traces?service=checkout recorded from a real Jaeger, through a
// Client.
func fixtureTraces(t *testing.T) []jaegertest.Trace {
	t.Helper()
	api := serve(http.StatusOK, string(fixture(t, "traces.json")))
	traces, err := api.client().Traces(context.Background(), "checkout", "", 20)
	if err != nil {
		t.Fatalf("Traces of the fixture: %v", err)
	}
	return traces
}

// tbRecorder is a testing.TB that records Skipf and Fatalf instead of
// acting on them (it ends the goroutine, as they do); the rest goes to the
// real test.
type tbRecorder struct {
	testing.TB
	mu          sync.Mutex
	skip, fatal string
}

func (r *tbRecorder) Helper() {}

func (r *tbRecorder) Skipf(format string, args ...any) {
	r.mu.Lock()
	r.skip = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *tbRecorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatal = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

// startRecorded calls jaegertest.Start with a tbRecorder in a goroutine of
// its own, and returns what it skipped or failed with. A Start that
// returns a Jaeger fails the test: the callers expect neither.
func startRecorded(t *testing.T) (skip, fatal string) {
	t.Helper()
	r := &tbRecorder{TB: t}
	done := make(chan struct{})
	returned := false
	go func() {
		defer close(done)
		jaegertest.Start(r)
		returned = true
	}()
	<-done
	if returned {
		t.Fatal("Start returned a Jaeger, want it to skip or fail")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.skip, r.fatal
}
