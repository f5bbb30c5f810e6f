package health_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/health"
	"github.com/coreservice/coreservice/internal/coretest"
)

type probeCase struct {
	target string
	accept string
	code   int
	body   string
}

func checkProbes(t *testing.T, h http.Handler, cases []probeCase) {
	t.Helper()
	for _, tc := range cases {
		w := get(h, tc.target, tc.accept)
		if w.Code != tc.code || w.Body.String() != tc.body {
			t.Errorf("GET %s (Accept %q):\n got %d %q\nwant %d %q", tc.target, tc.accept, w.Code, w.Body, tc.code, tc.body)
		}
	}
}

func TestHandlerText(t *testing.T) {
	var queue toggle
	api := service("api", health.Check("ping", pass), health.Check("queue", queue.fn))
	coretest.MustStart(t, api)
	defer coretest.MustStop(t, api)
	h := health.Handler(api)

	t.Run("healthy", func(t *testing.T) {
		checkProbes(t, h, []probeCase{
			{"/livez", "", 200, "ok"},
			{"/readyz", "", 200, "ok"},
			{"/readyz/", "", 200, "ok"},
			{"/livez?verbose", "", 200, "[+]api ok\nlivez check passed\n"},
			{"/readyz?verbose", "", 200, "[+]api ok\n[+]api/ping ok\n[+]api/queue ok\nreadyz check passed\n"},
			{"/readyz/api?verbose", "", 200, "[+]api ok\n[+]api/ping ok\n[+]api/queue ok\nreadyz check passed\n"},
			{"/readyz/api/queue", "", 200, "ok"},
			{"/readyz/api/queue?verbose=1", "", 200, "[+]api/queue ok\nreadyz check passed\n"},
		})
		w := get(h, "/readyz", "")
		for k, want := range map[string]string{
			"Content-Type":           "text/plain; charset=utf-8",
			"Cache-Control":          "no-store",
			"X-Content-Type-Options": "nosniff",
		} {
			if got := w.Header().Get(k); got != want {
				t.Errorf("header %s: got %q, want %q", k, got, want)
			}
		}
	})

	queue.set(errors.New("depth 1200 > 1000"))
	healthcheck(t, api, core.ErrUnhealthy)

	t.Run("failing check", func(t *testing.T) {
		withheld := "[+]api ok\n[+]api/ping ok\n[-]api/queue failed: reason withheld\nreadyz check failed\n"
		checkProbes(t, h, []probeCase{
			{"/livez", "", 200, "ok"}, // a failing check is a readiness matter
			{"/readyz", "", 503, withheld},
			{"/readyz?verbose", "", 503, withheld},
			{"/readyz/api", "", 503, withheld},
			// Only a single check asked for shows its error.
			{"/readyz/api/queue", "", 503, "[-]api/queue failed: depth 1200 > 1000\nreadyz check failed\n"},
			{"/readyz/api/ping", "", 200, "ok"},
			{"/readyz?exclude=api/queue", "", 200, "ok"},
			{"/readyz?exclude=api/queue&verbose", "", 200, "[+]api ok\n[+]api/ping ok\nreadyz check passed\n"},
			{"/readyz?exclude=api/queue&exclude=api/ping&verbose", "", 200, "[+]api ok\nreadyz check passed\n"},
			{"/readyz?exclude=api", "", 200, "ok"}, // a part and everything under it
			{"/readyz?exclude=queue&exclude=nope&exclude=queue", "", 503, "[+]api ok\n[+]api/ping ok\n" +
				"[-]api/queue failed: reason withheld\n" +
				"warn: some health checks cannot be excluded: no matches for \"queue\", \"nope\"\n" +
				"readyz check failed\n"},
		})
	})
}

func TestHandlerJSON(t *testing.T) {
	var queue toggle
	api := service("api", health.Check("ping", pass), health.Check("queue", queue.fn))
	coretest.MustStart(t, api)
	defer coretest.MustStop(t, api)
	h := health.Handler(api)
	queue.set(errors.New("depth 1200 > 1000"))
	healthcheck(t, api, core.ErrUnhealthy)
	healthcheck(t, api, core.ErrUnhealthy)

	type entry struct {
		Name     string `json:"name"`
		Kind     string `json:"kind"`
		Status   string `json:"status"`
		Failures int    `json:"failures"`
		Error    string `json:"error"`
	}
	type report struct {
		Probe    string   `json:"probe"`
		Status   string   `json:"status"`
		Checks   []entry  `json:"checks"`
		Warnings []string `json:"warnings"`
	}
	cases := []struct {
		target, accept string
		code           int
		want           report
	}{
		{"/readyz", "application/json", 503, report{Probe: "readyz", Status: "failed", Checks: []entry{
			{Name: "api", Kind: "service", Status: "ok"},
			{Name: "api/ping", Kind: "check", Status: "ok"},
			{Name: "api/queue", Kind: "check", Status: "failed", Failures: 2},
		}}},
		{"/readyz/api/queue", "text/html, application/json", 503, report{Probe: "readyz", Status: "failed", Checks: []entry{
			{Name: "api/queue", Kind: "check", Status: "failed", Failures: 2, Error: "depth 1200 > 1000"},
		}}},
		{"/readyz?exclude=api/queue&exclude=nope", "application/json; charset=utf-8", 200, report{Probe: "readyz", Status: "ok",
			Checks: []entry{
				{Name: "api", Kind: "service", Status: "ok"},
				{Name: "api/ping", Kind: "check", Status: "ok"},
			},
			Warnings: []string{`some health checks cannot be excluded: no matches for "nope"`}}},
		{"/livez", "application/json", 200, report{Probe: "livez", Status: "ok", Checks: []entry{
			{Name: "api", Kind: "service", Status: "ok"},
		}}},
		{"/readyz?exclude=api", "application/json", 200, report{Probe: "readyz", Status: "ok", Checks: []entry{}}},
	}
	for _, tc := range cases {
		w := get(h, tc.target, tc.accept)
		if w.Code != tc.code {
			t.Errorf("GET %s: got status %d, want %d", tc.target, w.Code, tc.code)
		}
		if !strings.Contains(w.Body.String(), `"probe":"`) || strings.Contains(w.Body.String(), `\u003e`) {
			t.Errorf("GET %s: got %s, want compact JSON with > unescaped", tc.target, w.Body)
		}
		if got := w.Header().Get("Content-Type"); got != "application/json" {
			t.Errorf("GET %s: got Content-Type %q, want application/json", tc.target, got)
		}
		var got report
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
			t.Fatalf("GET %s: body %q: %v", tc.target, w.Body, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("GET %s:\n got %+v\nwant %+v", tc.target, got, tc.want)
		}
	}

	// Only Accept chooses JSON; q=0 refuses it.
	if w := get(h, "/livez", "application/json;q=0, text/plain"); w.Body.String() != "ok" {
		t.Errorf("GET /livez with application/json;q=0: got %q, want the text ok", w.Body)
	}
	// An empty list is [], not null.
	if w := get(h, "/readyz?exclude=api", "application/json"); !strings.Contains(w.Body.String(), `"checks":[]`) {
		t.Errorf("GET /readyz?exclude=api: got %s, want \"checks\":[]", w.Body)
	}
}

func TestHandlerNotFound(t *testing.T) {
	db := service("db", health.Check("conn", pass))
	api := service("api", health.Check("ping", pass), requires("db", db))
	coretest.MustStart(t, api)
	defer coretest.MustStop(t, api)
	h := health.Handler(api)
	known := "known paths:\n" +
		"  /livez\n  /livez/api\n  /livez/api/db\n" +
		"  /readyz\n  /readyz/api\n  /readyz/api/ping\n  /readyz/api/db\n  /readyz/api/db/conn\n"
	for _, target := range []string{"/", "/healthz", "/readyz/nope", "/readyz/api/nope", "/readyz/api/ping/more",
		"/livez/api/ping", "/readyz//api", "/readyz/api/db/conn/x"} {
		w := get(h, target, "")
		want := "404 page not found: " + target + "\n" + known
		if w.Code != http.StatusNotFound || w.Body.String() != want {
			t.Errorf("GET %s:\n got %d %q\nwant 404 %q", target, w.Code, w.Body, want)
		}
	}
}

func TestHandlerMethods(t *testing.T) {
	api := service("api", health.Check("ping", pass))
	coretest.MustStart(t, api)
	defer coretest.MustStop(t, api)
	h := health.Handler(api)
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(m, "/readyz", nil))
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /readyz: got %d, Allow %q, want 405 with Allow: GET, HEAD", m, w.Code, w.Header().Get("Allow"))
		}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodHead, "/readyz", nil))
	if w.Code != http.StatusOK {
		t.Errorf("HEAD /readyz: got %d, want 200", w.Code)
	}
}

func TestHandlerNeverRun(t *testing.T) {
	api := service("api", health.Check("ping", pass))
	h := health.Handler(api) // never started: New, and the check never ran
	checkProbes(t, h, []probeCase{
		{"/livez", "", 200, "ok"},
		{"/readyz", "", 503, "[-]api failed: not started\n[-]api/ping failed: reason withheld\nreadyz check failed\n"},
		{"/readyz/api/ping", "", 503, "[-]api/ping failed: service api is not started\nreadyz check failed\n"},
	})
}

func TestHandlerLifecycle(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	api := service("api", health.Check("ping", pass),
		core.OnStop(func(context.Context) error {
			close(entered)
			<-release
			return nil
		}))
	h := health.Handler(api)
	coretest.MustStart(t, api)
	checkProbes(t, h, []probeCase{{"/livez", "", 200, "ok"}, {"/readyz", "", 200, "ok"}})

	stopped := make(chan error)
	go func() { stopped <- api.Stop(context.Background()) }()
	<-entered
	t.Run("stopping is live but not ready", func(t *testing.T) {
		checkProbes(t, h, []probeCase{
			{"/livez", "", 200, "ok"},
			{"/readyz", "", 503, "[-]api failed: stopping\n[+]api/ping ok\nreadyz check failed\n"},
		})
		if err := health.Ready(api); !errors.Is(err, health.ErrNotReady) || !strings.Contains(err.Error(), "api: service is stopping") {
			t.Errorf("Ready: got %v, want ErrNotReady saying api is stopping", err)
		}
	})
	close(release)
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: got %v, want nil", err)
	}
	t.Run("terminated is live but not ready", func(t *testing.T) {
		checkProbes(t, h, []probeCase{
			{"/livez", "", 200, "ok"},
			{"/readyz", "", 503, "[-]api failed: terminated\n[+]api/ping ok\nreadyz check failed\n"},
		})
	})
}

func TestHandlerFailedIsNotLive(t *testing.T) {
	boom := errors.New("boom")
	api := service("api", health.Check("ping", pass), core.OnStart(func(context.Context) error { return boom }))
	other := service("other")
	coretest.MustStart(t, other)
	defer coretest.MustStop(t, other)
	if err := api.Start(t.Context()); !errors.Is(err, boom) {
		t.Fatalf("Start: got %v, want boom", err)
	}
	h := health.Handler(api, other)
	checkProbes(t, h, []probeCase{
		{"/livez", "", 503, "[-]api failed: reason withheld\n[+]other ok\nlivez check failed\n"},
		{"/livez/api", "", 503, "[-]api failed: reason withheld\nlivez check failed\n"},
		{"/livez/other", "", 200, "ok"},
		{"/livez?exclude=api", "", 200, "ok"},
		{"/readyz/other", "", 200, "ok"},
	})
}

func TestHandlerNested(t *testing.T) {
	var conn toggle
	db := service("db", health.Check("conn", conn.fn))
	api := service("api", health.Check("ping", pass), requires("db", db))
	h := health.Handler(api)
	checkProbes(t, h, []probeCase{
		// Before the start: the requirement is known, not running.
		{"/readyz?verbose", "", 503, "[-]api failed: not started\n[-]api/ping failed: reason withheld\n" +
			"[-]api/db failed: reason withheld\nreadyz check failed\n"},
		{"/readyz/api/db", "", 503, "[-]api/db failed: reason withheld\nreadyz check failed\n"},
	})
	coretest.MustStart(t, api)
	defer coretest.MustStop(t, api)
	checkProbes(t, h, []probeCase{
		{"/livez?verbose", "", 200, "[+]api ok\n[+]api/db ok\nlivez check passed\n"},
		{"/readyz?verbose", "", 200, "[+]api ok\n[+]api/ping ok\n[+]api/db ok\n[+]api/db/conn ok\nreadyz check passed\n"},
		{"/readyz/api/db?verbose", "", 200, "[+]api/db ok\n[+]api/db/conn ok\nreadyz check passed\n"},
		{"/readyz/api/db/conn", "", 200, "ok"},
		{"/livez/api/db", "", 200, "ok"},
	})

	conn.set(errors.New("too many connections"))
	healthcheck(t, db, core.ErrUnhealthy)
	checkProbes(t, h, []probeCase{
		{"/readyz", "", 503, "[+]api ok\n[+]api/ping ok\n[+]api/db ok\n[-]api/db/conn failed: reason withheld\nreadyz check failed\n"},
		{"/readyz/api/db", "", 503, "[+]api/db ok\n[-]api/db/conn failed: reason withheld\nreadyz check failed\n"},
		{"/readyz/api/db/conn", "", 503, "[-]api/db/conn failed: too many connections\nreadyz check failed\n"},
		{"/readyz?exclude=api/db/conn", "", 200, "ok"},
		{"/readyz?exclude=api/db", "", 200, "ok"},
		{"/readyz/api/ping", "", 200, "ok"},
	})
	if err := health.Ready(api); !errors.Is(err, health.ErrNotReady) ||
		!strings.Contains(err.Error(), "api/db/conn: too many connections") {
		t.Errorf("Ready: got %v, want ErrNotReady naming api/db/conn", err)
	}
}

// staticReq is a req whose service is known before the start, as
// deps.Requires is.
type staticReq struct{ *req }

func (r staticReq) ApplyTo(c *core.Config) { c.AddRequirement(r) }
func (r staticReq) Known() core.Service    { return r.svc }

func TestHandlerStaticRequirementBeforeStart(t *testing.T) {
	db := service("db", health.Check("conn", pass))
	api := service("api", staticReq{requires("db", db)})
	h := health.Handler(api)
	checkProbes(t, h, []probeCase{
		{"/readyz/api/db/conn", "", 503, "[-]api/db/conn failed: service db is not started\nreadyz check failed\n"},
		{"/livez?verbose", "", 200, "[+]api ok\n[+]api/db ok\nlivez check passed\n"},
	})
	coretest.MustStart(t, api)
	defer coretest.MustStop(t, api)
	checkProbes(t, h, []probeCase{{"/readyz", "", 200, "ok"}})
}

func TestHandlerEscapedNames(t *testing.T) {
	svc := core.NewService(core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), health.Check("a?b c", pass))
	coretest.MustStart(t, svc)
	defer coretest.MustStop(t, svc)
	if !strings.Contains(svc.Name(), "#") {
		t.Fatalf("default name %q: want one with a #, which must be escaped", svc.Name())
	}
	h := health.Handler(svc)
	escaped := strings.ReplaceAll(svc.Name(), "#", "%23")
	checkProbes(t, h, []probeCase{
		{"/readyz/" + escaped, "", 200, "ok"},
		{"/readyz/" + escaped + "/a%3Fb%20c?verbose", "", 200, "[+]" + svc.Name() + "/a?b c ok\nreadyz check passed\n"},
	})
	w := get(h, "/readyz/nope", "")
	if !strings.Contains(w.Body.String(), "/readyz/"+escaped+"/a%3Fb%20c\n") {
		t.Errorf("404 body: got %q, want the escaped path of the check", w.Body)
	}
}

func TestHandlerBadServices(t *testing.T) {
	api := service("api")
	cases := []struct {
		name string
		svcs []core.Service
		want string
	}{
		{"nil", []core.Service{api, nil}, "health.Handler: service 1 is nil"},
		{"typed nil", []core.Service{(*core.Base)(nil)}, "health.Handler: service 0 is nil"},
		{"duplicate", []core.Service{api, service("api")}, `health.Handler: two services named "api"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := health.Handler(tc.svcs...) // never a panic
			for _, path := range []string{"/livez", "/readyz"} {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
				if rec.Code != http.StatusInternalServerError || strings.TrimSpace(rec.Body.String()) != tc.want {
					t.Errorf("%s: got %d %q, want 500 %q", path, rec.Code, rec.Body.String(), tc.want)
				}
			}
		})
	}
}

// blocker is a core.Check from outside package health that blocks the
// monitor, ignoring its context, once armed.
type blocker struct {
	armed   atomic.Bool
	release chan struct{}
}

func (b *blocker) ApplyTo(c *core.Config)              { c.AddCheck(b) }
func (b *blocker) Name() string                        { return "blocker" }
func (b *blocker) Timeout(time.Duration) time.Duration { return 50 * time.Millisecond }
func (b *blocker) Threshold() int                      { return 1 }
func (b *blocker) Check(context.Context) error {
	if b.armed.Load() {
		<-b.release
	}
	return nil
}

func TestStaleResults(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &blocker{release: make(chan struct{})}
		// A monitor period is 100 ms + 50 ms (ping) + 50 ms (blocker):
		// results are stale after 600 ms.
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), health.Check("ping", pass), b)
		h := health.Handler(api)
		coretest.MustStart(t, api)
		b.armed.Store(true)
		// The tick at 100 ms runs ping, then the blocker stalls the monitor.
		<-time.After(650 * time.Millisecond)
		checkProbes(t, h, []probeCase{
			// The foreign check is run by the monitor but not listed.
			{"/readyz?verbose", "", 200, "[+]api ok\n[+]api/ping ok\nreadyz check passed\n"},
		})
		if err := health.Ready(api); err != nil {
			t.Fatalf("Ready at 650ms: got %v, want nil", err)
		}
		<-time.After(100 * time.Millisecond)
		checkProbes(t, h, []probeCase{
			{"/readyz", "", 503, "[+]api ok\n[-]api/ping failed: reason withheld\nreadyz check failed\n"},
			{"/readyz/api/ping", "", 503, "[-]api/ping failed: stale: last run 650ms ago, more than 600ms\nreadyz check failed\n"},
		})
		if err := health.Ready(api); !errors.Is(err, health.ErrNotReady) || !strings.Contains(err.Error(), "stale") {
			t.Fatalf("Ready at 750ms: got %v, want ErrNotReady saying stale", err)
		}
		// Released, the monitor runs again on its next tick, at 850 ms.
		close(b.release)
		<-time.After(150 * time.Millisecond)
		checkProbes(t, h, []probeCase{{"/readyz", "", 200, "ok"}})
		coretest.MustStop(t, api)
	})
}

func TestHandlerConcurrentUse(t *testing.T) {
	var tg toggle
	db := service("db", health.Check("conn", tg.fn))
	api := service("api", health.Check("ping", tg.fn), requires("db", db))
	coretest.MustStart(t, api)
	defer coretest.MustStop(t, api)
	h := health.Handler(api)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				switch (i + j) % 4 {
				case 0:
					if j%2 == 0 {
						tg.set(errors.New("flaky"))
					} else {
						tg.set(nil)
					}
					_ = api.Healthcheck(context.Background())
				case 1:
					get(h, "/readyz?verbose", "application/json")
				case 2:
					get(h, "/livez/api/db", "")
				case 3:
					_ = health.Ready(api)
				}
			}
		})
	}
	wg.Wait()
}

// embedsBase is a user type embedding *core.Base, as users write services.
type embedsBase struct{ *core.Base }

// renamed embeds a *core.Base and names itself, so that only its other
// methods reach the Base.
type renamed struct{ *core.Base }

func (renamed) Name() string { return "renamed" }

// unusable lists services that are not built with core.NewService.
func unusable() map[string]core.Service {
	return map[string]core.Service{
		"nil embedded *core.Base":      embedsBase{},
		"zero core.Base":               &core.Base{},
		"embedded zero core.Base":      embedsBase{&core.Base{}},
		"renamed zero core.Base":       renamed{&core.Base{}},
		"renamed nil *core.Base":       renamed{},
		"pointer to nil *core.Base":    &embedsBase{},
		"zero core.Base beside a good": nil, // stands for [good, &core.Base{}]
	}
}

func TestHandlerAnswers500ForServiceWithoutBase(t *testing.T) {
	good := service("good", health.Check("ping", pass))
	for name, svc := range unusable() {
		t.Run(name, func(t *testing.T) {
			svcs := []core.Service{svc}
			if svc == nil {
				svcs = []core.Service{good, &core.Base{}}
			}
			h := health.Handler(svcs...)
			for _, target := range []string{"/livez", "/readyz", "/readyz?verbose", "/readyz/renamed", "/nope"} {
				w := get(h, target, "")
				if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "core.NewService") {
					t.Errorf("GET %s: got %d %q, want 500 saying to build it with core.NewService", target, w.Code, w.Body)
				}
			}
		})
	}
}

func TestReadyAndWaitReadyRejectServiceWithoutBase(t *testing.T) {
	for name, svc := range unusable() {
		if svc == nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if err := health.Ready(svc); err == nil || errors.Is(err, health.ErrNotReady) ||
				!strings.Contains(err.Error(), "core.NewService") {
				t.Errorf("Ready: got %v, want an error (not ErrNotReady) saying to build it with core.NewService", err)
			}
			synctest.Test(t, func(t *testing.T) { // a wait on a nil Done would hang the bubble
				if err := health.WaitReady(t.Context(), svc); err == nil || errors.Is(err, health.ErrNotReady) ||
					!strings.Contains(err.Error(), "core.NewService") {
					t.Errorf("WaitReady: got %v, want an error (not ErrNotReady) saying to build it with core.NewService", err)
				}
			})
		})
	}
}

func TestSingleCheckProbeRespectsServiceState(t *testing.T) {
	api := service("api", health.Check("ping", pass))
	coretest.MustStart(t, api)
	h := health.Handler(api)
	checkProbes(t, h, []probeCase{{"/readyz/api/ping", "", 200, "ok"}})
	coretest.MustStop(t, api)
	checkProbes(t, h, []probeCase{
		{"/readyz/api/ping", "", 503, "[-]api/ping failed: service api is terminated\nreadyz check failed\n"},
		{"/readyz/api/ping", "application/json", 503, `{"probe":"readyz","status":"failed","checks":[` +
			`{"name":"api/ping","kind":"check","status":"failed","error":"service api is terminated"}]}` + "\n"},
		// The listing already says so on the service's own line.
		{"/readyz/api?verbose", "", 503, "[-]api failed: terminated\n[+]api/ping ok\nreadyz check failed\n"},
	})
}

func TestExcludeListsEachUnmatchedNameOnceInOrder(t *testing.T) {
	api := service("api", health.Check("ping", pass))
	coretest.MustStart(t, api)
	defer coretest.MustStop(t, api)
	h := health.Handler(api)
	var q strings.Builder
	want := make([]string, 0, 1000)
	for i := range 3000 {
		name := fmt.Sprintf("n%d", i%1000)
		q.WriteString("&exclude=" + name)
		if i < 1000 {
			want = append(want, strconv.Quote(name))
		}
	}
	w := get(h, "/readyz?verbose"+q.String(), "")
	wantBody := "[+]api ok\n[+]api/ping ok\nwarn: some health checks cannot be excluded: no matches for " +
		strings.Join(want, ", ") + "\nreadyz check passed\n"
	if w.Code != 200 || w.Body.String() != wantBody {
		t.Fatalf("GET with 3000 excludes: got %d %.200q..., want 200 listing 1000 unmatched names once each", w.Code, w.Body)
	}
}

// BenchmarkExcludeRepeated measures a probe with n distinct ?exclude=
// names that match nothing: linear in n, not quadratic.
func BenchmarkExcludeRepeated(b *testing.B) {
	api := service("api", health.Check("ping", pass))
	if err := api.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = api.Stop(context.Background()) }()
	h := health.Handler(api)
	for _, n := range []int{1000, 2000, 4000, 8000} {
		var q strings.Builder
		for i := range n {
			fmt.Fprintf(&q, "&exclude=n%d", i)
		}
		target := "/readyz?verbose" + q.String()
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for b.Loop() {
				if w := get(h, target, ""); w.Code != 200 {
					b.Fatalf("got %d, want 200", w.Code)
				}
			}
		})
	}
}

// Path edge cases follow the documented rules: one trailing slash is ignored
// (also on a check), empty segments, "..", "." and bad escapes are 404,
// escaped segments are unescaped once.
func TestPathEdgeCases(t *testing.T) {
	api := service("api", health.Check("ping", pass))
	coretest.MustStart(t, api)
	defer coretest.MustStop(t, api)
	h := health.Handler(api)
	for target, code := range map[string]int{
		"/readyz/api/ping/":    200,
		"/readyz/api/":         200,
		"/livez/":              200,
		"/readyz/%61pi/ping":   200, // %61 = a
		"/readyz/api//ping":    404,
		"/readyz//":            404,
		"//readyz":             404,
		"/readyz/api/../api":   404,
		"/readyz/./api":        404,
		"/readyz/api/%2e%2e":   404,
		"/readyz/api%2Fping":   404,
		"/readyz/api/ping%2F":  404,
		"/READYZ":              404,
		"/readyz/api/ping/x/y": 404,
	} {
		if w := get(h, target, ""); w.Code != code {
			t.Errorf("GET %s: got %d %q, want %d", target, w.Code, w.Body, code)
		}
	}
	// HEAD answers the same status and headers as GET.
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodHead, "/readyz/api/nope", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("HEAD /readyz/api/nope: got %d, want 404", w.Code)
	}
	// Under http.StripPrefix, with an escaped segment.
	sp := http.StripPrefix("/health", h)
	if w := get(sp, "/health/readyz/api/ping", ""); w.Code != 200 || w.Body.String() != "ok" {
		t.Errorf("GET /health/readyz/api/ping via StripPrefix: got %d %q, want 200 ok", w.Code, w.Body)
	}
}

// Accept negotiation: wildcards and text stay text; JSON is chosen
// case-insensitively and with a non-zero q.
func TestAcceptVariants(t *testing.T) {
	api := service("api", health.Check("ping", pass))
	coretest.MustStart(t, api)
	defer coretest.MustStop(t, api)
	h := health.Handler(api)
	for accept, json := range map[string]bool{
		"*/*":                         false,
		"application/*":               false,
		"text/plain":                  false,
		"Application/JSON":            true,
		"application/json;q=0.5":      true,
		"application/json; q=0":       false,
		"application/json;q=0.000":    false,
		"text/html, application/json": true,
	} {
		w := get(h, "/livez", accept)
		got := strings.HasPrefix(w.Header().Get("Content-Type"), "application/json")
		if got != json {
			t.Errorf("Accept %q: got Content-Type %q, want JSON=%v", accept, w.Header().Get("Content-Type"), json)
		}
	}
}

// Handler, Ready and Healthcheck racing with a start, a requirement's
// failure and the stops that follow: no data race (under -race), no panic,
// and the final answers are right.
func TestHandlerRacesLifecycle(t *testing.T) {
	var conn toggle
	db := service("db", health.Check("conn", conn.fn))
	api := service("api", health.Check("ping", pass), deps.Requires(db))
	h := health.Handler(api)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				switch i {
				case 0:
					get(h, "/readyz?verbose", "application/json")
				case 1:
					get(h, "/livez/api/db", "")
				case 2:
					_ = health.Ready(api, db)
				case 3:
					_ = api.Healthcheck(context.Background())
					_ = db.Healthcheck(context.Background())
				}
			}
		})
	}
	coretest.MustStart(t, api)
	_ = db.Stop(context.Background()) // api fails in turn
	<-api.Done()
	close(done)
	wg.Wait()
	checkProbes(t, h, []probeCase{
		{"/livez/api/db", "", 200, "ok"}, // db stopped cleanly: terminated is live
		{"/livez/api", "", 503, "[-]api failed: reason withheld\n[+]api/db ok\nlivez check failed\n"},
	})
	if err := health.WaitReady(t.Context(), api); !errors.Is(err, health.ErrNotReady) || !strings.Contains(err.Error(), "api failed") {
		t.Errorf("WaitReady on the failed api: got %v, want ErrNotReady saying api failed", err)
	}
}

// A service that was never started is "not started" on /readyz, not
// "failed", and so is the reason of its checks, which have never run.
func TestProbeSaysNotStarted(t *testing.T) {
	worker := service("worker", health.Check("ping", pass))
	checkProbes(t, health.Handler(worker), []probeCase{
		{"/livez", "", 200, "ok"},
		{"/readyz", "", 503, "[-]worker failed: not started\n[-]worker/ping failed: reason withheld\nreadyz check failed\n"},
		{"/readyz/worker", "", 503, "[-]worker failed: not started\n[-]worker/ping failed: reason withheld\nreadyz check failed\n"},
		{"/readyz/worker/ping", "", 503, "[-]worker/ping failed: service worker is not started\nreadyz check failed\n"},
	})
}

// The check of a requirement that terminated reads "service db is
// terminated", not "stale": its last result is old because db stopped,
// not because the check is slow.
func TestProbeSaysRequirementTerminated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := core.NewService(core.Name("db"), core.Logger(coretest.Quiet()), health.Check("ping", pass))
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), requires("db", db))
		h := health.Handler(api)
		coretest.MustStart(t, api)
		defer func() { _ = api.Stop(context.Background()) }()
		if err := db.Stop(t.Context()); err != nil {
			t.Fatalf("Stop db: got %v, want nil", err)
		}
		<-api.Done()
		<-time.After(2 * time.Second) // db's last result is long stale
		checkProbes(t, h, []probeCase{
			{"/readyz", "", 503, "[-]api failed: reason withheld\n[-]api/db failed: terminated\n" +
				"[-]api/db/ping failed: reason withheld\nreadyz check failed\n"},
			{"/readyz/api/db/ping", "", 503, "[-]api/db/ping failed: service db is terminated\nreadyz check failed\n"},
		})
		if err := health.Ready(api); !errors.Is(err, health.ErrNotReady) ||
			!strings.Contains(err.Error(), "api/db/ping: service db is terminated") {
			t.Fatalf("Ready: got %v, want ErrNotReady saying api/db/ping: service db is terminated", err)
		}
	})
}
