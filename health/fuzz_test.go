package health_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreservice/coreservice/health"
)

// FuzzHandler sends any path, query and Accept header to a handler over a
// fixed tree (api, running, with a passing and a failing check and a
// requirement db with a check; web, new): never a panic, always a status
// of 200, 404, 405, 500 or 503, a body well formed as text or JSON, and no
// "[+]" or "[-]" line but for a real part.
func FuzzHandler(f *testing.F) {
	var queue toggle
	db := service("db", health.Check("conn", pass))
	api := service("api", requires("db", db), health.Check("ping", pass), health.Check("queue", queue.fn))
	web := service("web", health.Check("home", pass))
	if err := api.Start(f.Context()); err != nil {
		f.Fatalf("Start api: got %v, want nil", err)
	}
	f.Cleanup(func() { _ = api.Stop(f.Context()) })
	queue.set(errors.New("depth 1200 > 1000"))
	_ = api.Healthcheck(f.Context()) // records the failure
	h := health.Handler(api, web)

	parts := map[string]bool{}
	for _, p := range []string{"/livez?verbose", "/readyz?verbose"} {
		for _, l := range strings.Split(get(h, p, "").Body.String(), "\n") {
			if name, ok := partName(l); ok {
				parts[name] = true
			}
		}
	}
	if len(parts) != 7 { // api, api/db, api/db/conn, api/ping, api/queue, web, web/home
		f.Fatalf("parts: got %v, want 7", slices.Sorted(func(yield func(string) bool) {
			for p := range parts {
				if !yield(p) {
					return
				}
			}
		}))
	}

	f.Add("GET", "/readyz/api/queue", "verbose", "")
	f.Add("GET", "/readyz", "exclude=api/queue&exclude=nope%0A%5B%2B%5Dforged", "application/json")
	f.Add("HEAD", "/livez/api/db", "", "text/plain")
	f.Add("POST", "/readyz", "", "")
	f.Add("GET", "/readyz/api%2Fdb", "exclude=%ZZ", "application/json;q=0")
	f.Fuzz(func(t *testing.T, method, path, query, accept string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Method = method
		r.URL = &url.URL{Path: path, RawQuery: query}
		if u, err := url.PathUnescape(path); err == nil {
			r.URL.Path, r.URL.RawPath = u, path // as net/http parses it
		}
		if accept != "" {
			r.Header.Set("Accept", accept)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		body := w.Body.String()
		switch w.Code {
		case 200, 503:
		case 404, 405, 500:
			return
		default:
			t.Fatalf("status: got %d, want 200, 404, 405, 500 or 503", w.Code)
		}
		if strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			var rep struct {
				Status string `json:"status"`
				Checks []struct {
					Name   string `json:"name"`
					Status string `json:"status"`
				} `json:"checks"`
			}
			if err := json.Unmarshal([]byte(body), &rep); err != nil {
				t.Fatalf("JSON body %q: %v", body, err)
			}
			if want := map[int]string{200: "ok", 503: "failed"}[w.Code]; rep.Status != want {
				t.Fatalf("JSON status: got %q with code %d, want %q", rep.Status, w.Code, want)
			}
			for _, c := range rep.Checks {
				if !parts[c.Name] {
					t.Fatalf("JSON entry %q: not a part of the tree", c.Name)
				}
			}
			return
		}
		if body == "ok" {
			if w.Code != 200 {
				t.Fatalf("body ok with code %d", w.Code)
			}
			return
		}
		lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
		last := lines[len(lines)-1]
		if !strings.HasSuffix(last, " check passed") && !strings.HasSuffix(last, " check failed") {
			t.Fatalf("last line %q: want \"<probe> check passed|failed\"", last)
		}
		failed := false
		for _, l := range lines[:len(lines)-1] {
			if strings.HasPrefix(l, "warn: ") {
				continue
			}
			name, ok := partName(l)
			if !ok || !parts[name] {
				t.Fatalf("line %q of %q: not a line of a part of the tree", l, body)
			}
			failed = failed || strings.HasPrefix(l, "[-]")
		}
		if failed != (w.Code == 503) || failed != strings.HasSuffix(last, "failed") {
			t.Fatalf("code %d with body %q: want 503 exactly when a line fails", w.Code, body)
		}
	})
}

// partName returns the part a "[+]name ok" or "[-]name failed: ..." line
// is about.
func partName(l string) (string, bool) {
	switch {
	case strings.HasPrefix(l, "[+]") && strings.HasSuffix(l, " ok"):
		return strings.TrimSuffix(l[3:], " ok"), true
	case strings.HasPrefix(l, "[-]"):
		name, _, ok := strings.Cut(l[3:], " failed: ")
		return name, ok
	}
	return "", false
}
