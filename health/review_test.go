package health_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/health"
)

// Tests from an adversarial review of package health. Those marked
// "Regression" failed before the fix of the bug they describe (file:line
// references are to the code before the fix); "coverage:" ones pinned
// behaviour that was already right.

// Regression: a Healthcheck caller that cancels its context while a check's fn
// is still running (an HTTP client that hangs up, say) marks that call as
// "cut off" (health/check.go counts every ctx.Done, a caller's
// cancellation included, in c.cutOff: check.go:193-201), so the monitor's
// next run of the check fails at once with ErrStillRunning
// (check.go:181-183), is recorded and counts towards Threshold
// (core/health.go:129-131): a healthy check
// (300 ms, well within its 500 ms Timeout) fails the service.
// Violated: core/health.go:72-73 "[Healthcheck] changes nothing: failures
// here count towards no threshold, only the monitor's do"; doc.go:36-38 "A
// run whose context was cancelled by its caller ... records nothing";
// ErrStillRunning is documented only for a run "cut off at its deadline".
func TestCancelledHealthcheckDoesNotFailService(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var slow atomic.Bool
		s := core.NewService(core.Name("api"), core.Logger(quiet), core.MonitorInterval(time.Second),
			health.Check("db", func(context.Context) error {
				if slow.Load() {
					<-time.After(300 * time.Millisecond) // within its Timeout (500 ms)
				}
				return nil
			}))
		mustStart(t, s)
		defer func() { _ = s.Stop(context.Background()) }()
		slow.Store(true)

		<-time.After(800 * time.Millisecond)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- s.Healthcheck(ctx) }() // fn runs 0.8s .. 1.1s
		<-time.After(50 * time.Millisecond)
		cancel() // the caller gives up at 0.85s
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Healthcheck with a cancelled ctx: got %v, want context.Canceled", err)
		}

		// The monitor's tick at 1s would take 300 ms and pass.
		<-time.After(650 * time.Millisecond) // 1.5s
		if got := s.State(); got != core.StateRunning {
			t.Fatalf("State at 1.5s: got %v (Err %v), want running: a caller's cancelled Healthcheck "+
				"must not fail the monitor's run", got, s.Err())
		}
	})
}

// BUG 1 (through deps): the same cause lets one parent's failed start kill
// a shared requirement that another parent holds: the parent's start runs
// the requirement's Healthcheck (core/require.go:197) under its start
// context, which is cancelled when a sibling requirement fails
// (core/require.go:134); the cancelled call counts as cut off, and the
// shared service's own monitor then fails it with ErrStillRunning; its
// other parent fails with it.
// Violated: DESIGN deps "The same service required by several parents
// starts once and stops after its last dependent"; core/health.go:72-73.
func TestAbortedParentSparesSharedRequirement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var slow atomic.Bool
		db := core.NewService(core.Name("db"), core.Logger(quiet), core.MonitorInterval(time.Second),
			health.Check("conn", func(context.Context) error {
				if slow.Load() {
					<-time.After(300 * time.Millisecond) // within its Timeout (500 ms)
				}
				return nil
			}))
		a := core.NewService(core.Name("a"), core.Logger(quiet), core.MonitorInterval(time.Hour), deps.Requires(db))
		mustStart(t, a) // starts db; db's monitor ticks at 1s, 2s, ...
		defer func() { _ = a.Stop(context.Background()) }()

		<-time.After(800 * time.Millisecond)
		slow.Store(true)
		bad := core.NewService(core.Name("bad"), core.Logger(quiet), core.MonitorInterval(time.Hour),
			core.OnStart(func(context.Context) error {
				<-time.After(50 * time.Millisecond)
				return errors.New("bad is broken")
			}))
		b := core.NewService(core.Name("b"), core.Logger(quiet), core.MonitorInterval(time.Hour),
			deps.Requires(db), deps.Requires(bad))
		if err := b.Start(context.Background()); !errors.Is(err, core.ErrStartup) {
			t.Fatalf("b.Start: got %v, want ErrStartup (bad fails)", err)
		}
		<-time.After(700 * time.Millisecond) // 1.5s: past db's tick at 1s
		if db.State() != core.StateRunning || a.State() != core.StateRunning {
			t.Fatalf("after b's failed start: db %v (Err %v), a %v; want both running: "+
				"b's rollback must leave the shared db, held by a, healthy", db.State(), db.Err(), a.State())
		}
	})
}

// BUG 1 (second face, same cause check.go:161-165 + 193-201): a caller's
// deadline shorter than the check's own Timeout is recorded as the check's
// failure, so /readyz turns 503 for a check that is healthy by its own
// Timeout, because some caller of Healthcheck was impatient.
// Violated: options.go:50-52 "Timeout bounds each run ... A run that has
// not returned by then fails" (the run had 990 ms left); doc.go:36-38.
func TestCallerDeadlineIsNotRecorded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var slow atomic.Bool
		s := core.NewService(core.Name("api"), core.Logger(quiet), core.MonitorInterval(time.Hour),
			health.Check("db", func(context.Context) error {
				if slow.Load() {
					<-time.After(100 * time.Millisecond)
				}
				return nil
			}, health.Timeout(time.Second)))
		mustStart(t, s)
		defer func() { _ = s.Stop(context.Background()) }()
		slow.Store(true)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
		defer cancel()
		_ = s.Healthcheck(ctx) // the caller's own deadline; the check had 990 ms left
		if w := get(health.Handler(s), "/readyz/api/db", ""); w.Code != http.StatusOK {
			t.Fatalf("/readyz/api/db after a caller's 10ms deadline on a 1s-timeout check: got %d %q, want 200",
				w.Code, w.Body)
		}
	})
}

// Regression: a check named like a requirement of the same service
// (natural: deps.Requires(db) is named "db" after its service, and so is a
// check pinging it) shadowed the requirement in the probe tree: paths
// service/requirement/check were ambiguous. The collision is now an invalid
// option reported by Start, naming both.
func TestCheckNamedLikeRequirementIsInvalid(t *testing.T) {
	db := service("db", health.Check("conn", pass))
	api := service("api", health.Check("db", pass), deps.Requires(db))
	err := api.Start(t.Context())
	if !errors.Is(err, core.ErrInvalidOption) || !strings.Contains(err.Error(), `check "db" has the name of a requirement`) {
		t.Fatalf("Start: got %v, want ErrInvalidOption naming the collision", err)
	}
	if db.State() != core.StateNew {
		t.Fatalf("db: %v, want never started (options are checked first)", db.State())
	}
}

// Regression: the staleness limit overflows for a long, valid Timeout.
// status.go:86-92 sums MonitorInterval and the checks' timeouts and
// multiplies by StalePeriods with plain int64 arithmetic; with
// Timeout(math.MaxInt64) (the usual "no timeout" idiom) or any Timeout over
// ~97 years (or MonitorInterval over ~65 years, via the default Timeout)
// the limit wraps negative and every passing result is "stale": the service
// is never ready. Timeout only rejects d <= 0 (options.go:62).
// Violated: "never-run or stale results are not ready" -- a result recorded
// a moment ago is neither; readiness = Running and healthy.
func TestLongTimeoutIsReady(t *testing.T) {
	const century = 100 * 365 * 24 * time.Hour
	for name, opts := range map[string][]core.Option{
		"Timeout(MaxInt64)":     {health.Check("ping", pass, health.Timeout(math.MaxInt64))},
		"Timeout(100y)":         {health.Check("ping", pass, health.Timeout(century))},
		"MonitorInterval(100y)": {core.MonitorInterval(century), health.Check("ping", pass)},
	} {
		t.Run(name, func(t *testing.T) {
			api := service("api", opts...)
			mustStart(t, api)
			defer mustStop(t, api)
			healthcheck(t, api, nil)
			if err := health.Ready(api); err != nil {
				t.Errorf("Ready right after a passing run: got %v, want nil", err)
			}
		})
	}
}

// foreignSlow is a core.Check from outside package health (registered with
// Config.AddCheck, as the package documentation allows) that blocks until
// released once armed.
type foreignSlow struct {
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (f *foreignSlow) ApplyTo(c *core.Config)              { c.AddCheck(f) }
func (f *foreignSlow) Name() string                        { return "slow" }
func (f *foreignSlow) Timeout(time.Duration) time.Duration { return time.Minute }
func (f *foreignSlow) Threshold() int                      { return 1 }
func (f *foreignSlow) Check(context.Context) error {
	if f.armed.Load() {
		close(f.entered)
		<-f.release
	}
	return nil
}

// Regression: Healthcheck reads the state once (core/health.go:79-83) and then
// runs the checks one after another; nothing registers the in-flight
// Healthcheck with the service, and the per-check waiter
// (health/check.go:272-285) only waits for calls already under way. So a
// Healthcheck that began while Running calls a check's fn after Stop has
// returned nil and the OnStop hooks have released what fn uses.
// Violated: doc.go:29-31 "The service owns those goroutines: its Stop
// waits for runs still under way before its OnStop hooks"; DESIGN core:
// Healthcheck is nil iff Running (here: a check run on a Terminated
// service, and an answer computed after the stop).
func TestHealthcheckNeverCallsCheckAfterStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &foreignSlow{entered: make(chan struct{}), release: make(chan struct{})}
		var stopped, calledAfterStop atomic.Bool
		s := core.NewService(core.Name("api"), core.Logger(quiet), core.MonitorInterval(time.Hour),
			f,
			health.Check("db", func(context.Context) error {
				if stopped.Load() {
					calledAfterStop.Store(true)
				}
				return nil
			}),
			core.OnStop(func(context.Context) error { stopped.Store(true); return nil }))
		mustStart(t, s)
		f.armed.Store(true)
		var wg sync.WaitGroup
		wg.Go(func() { _ = s.Healthcheck(context.Background()) })
		<-f.entered // Healthcheck is Running-checked and under way
		// The foreign check ignores its context: the stop waits for it for
		// StopTimeout, then says so, and goes on.
		if err := s.Stop(context.Background()); err == nil || !strings.Contains(err.Error(), "Healthcheck calls still running") {
			t.Fatalf("Stop: got %v, want it to report the Healthcheck call still running", err)
		}
		close(f.release)
		wg.Wait()
		if calledAfterStop.Load() {
			t.Errorf("check db's fn was called after Stop returned and OnStop ran (state %v)", s.State())
		}
	})
}

// coverage: path edge cases follow the documented rules: one trailing
// slash is ignored (also on a check), empty segments, "..", "." and bad
// escapes are 404, escaped segments are unescaped once.
func TestPathEdgeCases(t *testing.T) {
	api := service("api", health.Check("ping", pass))
	mustStart(t, api)
	defer mustStop(t, api)
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

// coverage: Accept negotiation: wildcards and text stay text; JSON is
// chosen case-insensitively and with a non-zero q.
func TestAcceptVariants(t *testing.T) {
	api := service("api", health.Check("ping", pass))
	mustStart(t, api)
	defer mustStop(t, api)
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

// coverage: readiness during Starting: a service whose start check is
// under way is live, not ready, and its check is "never run".
func TestReadinessWhileStarting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := core.NewService(core.Name("api"), core.Logger(quiet), core.MonitorInterval(time.Second),
			health.Check("slow", func(context.Context) error {
				<-time.After(200 * time.Millisecond)
				return nil
			}))
		h := health.Handler(s)
		var wg sync.WaitGroup
		wg.Go(func() { mustStart(t, s) })
		<-time.After(100 * time.Millisecond)
		checkProbes(t, h, []probeCase{
			{"/livez", "", 200, "ok"},
			{"/readyz", "", 503, "[-]api failed: reason withheld\n[-]api/slow failed: reason withheld\nreadyz check failed\n"},
			{"/readyz/api/slow", "", 503, "[-]api/slow failed: never run\nreadyz check failed\n"},
		})
		wg.Wait()
		checkProbes(t, h, []probeCase{{"/readyz", "", 200, "ok"}})
		mustStop(t, s)
	})
}

// coverage: WaitReady edge cases: no services, a context already
// cancelled, a service that never starts.
func TestWaitReadyEdges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := health.WaitReady(ctx); err != nil {
			t.Errorf("WaitReady(cancelled) with no services: got %v, want nil", err)
		}
		never := core.NewService(core.Name("never"), core.Logger(quiet))
		begin := time.Now()
		err := health.WaitReady(ctx, never)
		if !errors.Is(err, context.Canceled) || !errors.Is(err, health.ErrNotReady) || time.Since(begin) != 0 {
			t.Errorf("WaitReady(cancelled, never started): got %v after %v, want Canceled and ErrNotReady at once",
				err, time.Since(begin))
		}
		ctx2, cancel2 := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel2()
		err = health.WaitReady(ctx2, never)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(begin) != 2*time.Second {
			t.Errorf("WaitReady(2s, never started): got %v after %v, want DeadlineExceeded after 2s", err, time.Since(begin))
		}
	})
}

// coverage: a CheckSpec reused across services: a hung call in one
// service makes only that service's check fail with ErrStillRunning.
func TestReusedSpecIsolatesHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hang := newHanging()
		spec := health.Check("db", hang.fn, health.Timeout(100*time.Millisecond), health.Threshold(10))
		a := core.NewService(core.Name("a"), core.Logger(quiet), core.MonitorInterval(time.Hour), spec)
		b := core.NewService(core.Name("b"), core.Logger(quiet), core.MonitorInterval(time.Hour), spec)
		mustStart(t, a)
		mustStart(t, b)
		hang.hang.Store(true)
		if err := a.Healthcheck(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a.Healthcheck: got %v, want it cut off", err)
		}
		if err := a.Healthcheck(context.Background()); !errors.Is(err, health.ErrStillRunning) {
			t.Fatalf("a.Healthcheck again: got %v, want ErrStillRunning", err)
		}
		hang.hang.Store(false)
		if err := b.Healthcheck(context.Background()); err != nil {
			t.Fatalf("b.Healthcheck: got %v, want nil: b's check has no call under way", err)
		}
		close(hang.release)
		mustStop(t, a)
		mustStop(t, b)
	})
}

// coverage: handler, Ready and Healthcheck racing with a start, a
// requirement's failure and the stops that follow: no data race (under
// -race), no panic, and the final answers are right.
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
	mustStart(t, api)
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
