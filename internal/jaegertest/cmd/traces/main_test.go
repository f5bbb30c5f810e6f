package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// jaeger is a stand-in for Jaeger's query API on 127.0.0.1 that answers
// every request with status and body; queries returns the request URIs.
func jaeger(t *testing.T, status int, body string) (url string, queries func() []string) {
	t.Helper()
	var mu sync.Mutex
	var qs []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		qs = append(qs, r.URL.RequestURI())
		mu.Unlock()
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(qs)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTracesPrintsTheTreesOfTheService(t *testing.T) {
	url, queries := jaeger(t, http.StatusOK, readFile(t, "../../testdata/traces.json"))
	var stdout, stderr bytes.Buffer
	code := run(t.Context(), []string{"-query", url, "-limit", "3", "-operation", "task checkout/poll", "checkout"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit code: got %d, want 0 (stderr %q)", code, stderr.String())
	}
	if want := readFile(t, "../../testdata/traces.txt"); stdout.String() != want {
		t.Errorf("output: got\n%s\nwant\n%s", stdout.String(), want)
	}
	if got, want := queries(), "/api/traces?limit=3&operation=task+checkout%2Fpoll&service=checkout"; len(got) != 1 || got[0] != want {
		t.Errorf("queries: got %v, want [%s]", got, want)
	}
}

func TestTracesOfAnUnknownServiceSaysThereAreNone(t *testing.T) {
	url, _ := jaeger(t, http.StatusOK, `{"data":[],"errors":null}`)
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"-query", url, "nosuch"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code: got %d, want 0 (stderr %q)", code, stderr.String())
	}
	if got := stdout.String(); !strings.Contains(got, `no traces of service "nosuch"`) {
		t.Errorf("output: got %q, want it to say there are no traces", got)
	}
}

func TestTracesReportsAFailedQuery(t *testing.T) {
	url, _ := jaeger(t, http.StatusInternalServerError, `{"data":null,"errors":[{"code":500,"msg":"storage is down"}]}`)
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"-query", url, "checkout"}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit code: got %d, want 1", code)
	}
	if got := stderr.String(); !strings.Contains(got, "storage is down") {
		t.Errorf("stderr: got %q, want Jaeger's message", got)
	}
}

func TestTracesRejectsBadUsage(t *testing.T) {
	for name, args := range map[string][]string{
		"no service":    {},
		"two services":  {"a", "b"},
		"limit 0":       {"-limit", "0", "a"},
		"zero timeout":  {"-timeout", "0s", "a"},
		"unknown flag":  {"-bogus", "a"},
		"limit not int": {"-limit", "many", "a"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), args, &stdout, &stderr); code != 2 || stderr.Len() == 0 {
			t.Errorf("%s: got exit code %d, stderr %q; want 2 and a message", name, code, stderr.String())
		}
	}
}
