package health_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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

func pass(context.Context) error { return nil }

func TestCheckBadInput(t *testing.T) {
	cases := []struct {
		name string
		opts []core.Option
		want []string // in the error message
	}{
		{"empty name", []core.Option{health.Check("", pass)}, []string{`health.Check ""`, "empty name"}},
		{"nil function", []core.Option{health.Check("db", nil)}, []string{`health.Check "db"`, "nil function"}},
		{"zero CheckSpec", []core.Option{&health.CheckSpec{}}, []string{"empty name", "nil function"}},
		{"zero timeout", []core.Option{health.Check("db", pass, health.Timeout(0))},
			[]string{`health.Check "db"`, "health.Timeout(0s): want > 0"}},
		{"negative timeout", []core.Option{health.Check("db", pass, health.Timeout(-time.Second))},
			[]string{`health.Check "db"`, "health.Timeout(-1s): want > 0"}},
		{"zero threshold", []core.Option{health.Check("db", pass, health.Threshold(0))},
			[]string{`health.Check "db"`, "health.Threshold(0): want >= 1"}},
		{"negative threshold", []core.Option{health.Check("db", pass, health.Threshold(-2))},
			[]string{`health.Check "db"`, "health.Threshold(-2): want >= 1"}},
		{"nil option", []core.Option{health.Check("db", pass, nil)}, []string{`health.Check "db"`, "option 0 is nil"}},
		{"every problem at once", []core.Option{health.Check("db", nil, health.Timeout(0), health.Threshold(0))},
			[]string{`health.Check "db": nil function`, `health.Check "db": health.Timeout(0s): want > 0`,
				`health.Check "db": health.Threshold(0): want >= 1`}},
		{"duplicate names", []core.Option{health.Check("db", pass), health.Check("db", pass)},
			[]string{`check "db" registered twice`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ran atomic.Bool
			s := service("api", append(tc.opts, core.OnStart(func(context.Context) error {
				ran.Store(true)
				return nil
			}))...)
			err := s.Start(t.Context())
			if !errors.Is(err, core.ErrStartup) || !errors.Is(err, core.ErrInvalidOption) {
				t.Fatalf("Start: got %v, want an error matching ErrStartup and ErrInvalidOption", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Start: got %q, want it to contain %q", err, w)
				}
			}
			if ran.Load() {
				t.Error("OnStart ran: got a started service, want nothing started")
			}
			if got := s.State(); got != core.StateFailed {
				t.Errorf("State: got %v, want failed", got)
			}
		})
	}
}

func TestCheckFailingAtStartFailsStart(t *testing.T) {
	down := errors.New("connection refused")
	var stopped atomic.Bool
	s := service("api",
		core.OnStop(func(context.Context) error { stopped.Store(true); return nil }),
		health.Check("ok", pass),
		health.Check("db", func(context.Context) error { return down }))
	err := s.Start(t.Context())
	var se *core.StartupError
	if !errors.As(err, &se) || !errors.Is(err, core.ErrStartup) || !errors.Is(err, down) {
		t.Fatalf("Start: got %v, want a *core.StartupError wrapping the check's error", err)
	}
	if se.Part != "check db" {
		t.Errorf("StartupError.Part: got %q, want %q", se.Part, "check db")
	}
	if !stopped.Load() {
		t.Error("OnStop did not run: got no rollback, want the start rolled back")
	}
	if got := s.State(); got != core.StateFailed {
		t.Errorf("State: got %v, want failed", got)
	}
}

func TestCheckDefaultsAndOptions(t *testing.T) {
	s := core.NewService(core.Logger(coretest.Quiet()),
		health.Check("default", pass),
		health.Check("set", pass, health.Timeout(2*time.Second), health.Threshold(3)),
		health.Check("repeated", pass, health.Timeout(time.Second), health.Timeout(3*time.Second),
			health.Threshold(5), health.Threshold(2)))
	checks := s.Checks()
	if len(checks) != 3 {
		t.Fatalf("Checks: got %d, want 3", len(checks))
	}
	cases := []struct {
		name      string
		interval  time.Duration
		timeout   time.Duration
		threshold int
	}{
		{"default", 100 * time.Millisecond, 50 * time.Millisecond, 1},
		{"default", 3 * time.Second, 1500 * time.Millisecond, 1},
		{"set", 100 * time.Millisecond, 2 * time.Second, 3},
		{"repeated", 100 * time.Millisecond, 3 * time.Second, 2},
	}
	for _, tc := range cases {
		i := map[string]int{"default": 0, "set": 1, "repeated": 2}[tc.name]
		c := checks[i]
		if c.Name() != tc.name {
			t.Errorf("check %d: got name %q, want %q", i, c.Name(), tc.name)
		}
		if got := c.Timeout(tc.interval); got != tc.timeout {
			t.Errorf("%s: Timeout(%v): got %v, want %v", tc.name, tc.interval, got, tc.timeout)
		}
		if got := c.Threshold(); got != tc.threshold {
			t.Errorf("%s: Threshold: got %d, want %d", tc.name, got, tc.threshold)
		}
	}
	if health.DefaultThreshold != 1 {
		t.Errorf("DefaultThreshold: got %d, want 1", health.DefaultThreshold)
	}
}

func TestCheckSpecString(t *testing.T) {
	spec := health.Check("db", pass, health.Timeout(time.Second), health.Threshold(3))
	if got, want := spec.String(), `health.Check("db", ..., health.Timeout(1s), health.Threshold(3))`; got != want {
		t.Errorf("String: got %s, want %s", got, want)
	}
	if got := spec.Name(); got != "db" {
		t.Errorf("Name: got %q, want db", got)
	}
}

// scripted is a check function whose results follow a script, one per run;
// past the end of the script it passes.
type scripted struct {
	results []bool // true: pass
	runs    atomic.Int32
}

var errScripted = errors.New("scripted failure")

func (s *scripted) fn(context.Context) error {
	i := int(s.runs.Add(1)) - 1
	if i < len(s.results) && !s.results[i] {
		return errScripted
	}
	return nil
}

func TestThreshold(t *testing.T) {
	cases := []struct {
		name      string
		results   []bool // run 0 is the start; then one per 100 ms tick
		opts      []health.Option
		failAt    time.Duration // 0: never, within 1 s
		readyAt   []bool        // Ready after each tick (checked 50 ms past it)
		wantState core.State
	}{
		{
			name:    "default threshold: the first failure fails",
			results: []bool{true, true, false},
			failAt:  200 * time.Millisecond,
			readyAt: []bool{true},
		},
		{
			name:    "fail pass fail fail with threshold 2",
			results: []bool{true, false, true, false, false},
			opts:    []health.Option{health.Threshold(2)},
			failAt:  400 * time.Millisecond,
			readyAt: []bool{false, true, false},
		},
		{
			name:    "fail pass fail pass never reaches threshold 2",
			results: []bool{true, false, true, false, true, false, true},
			opts:    []health.Option{health.Threshold(2)},
			readyAt: []bool{false, true, false, true, false, true},
		},
		{
			name:    "three in a row with threshold 3",
			results: []bool{true, false, false, false},
			opts:    []health.Option{health.Threshold(3)},
			failAt:  300 * time.Millisecond,
			readyAt: []bool{false, false},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sc := &scripted{results: tc.results}
				s := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()),
					health.Check("scripted", sc.fn, tc.opts...))
				coretest.MustStart(t, s)
				begin := time.Now()
				<-time.After(50 * time.Millisecond)
				for i, want := range tc.readyAt {
					<-time.After(100 * time.Millisecond) // 50 ms after tick i+1
					err := health.Ready(s)
					if got := err == nil; got != want {
						t.Fatalf("Ready after tick %d: got %v, want ready=%v", i+1, err, want)
					}
					if !want && !errors.Is(err, errScripted) {
						t.Fatalf("Ready after tick %d: got %v, want it to wrap the check's error", i+1, err)
					}
				}
				select {
				case <-s.Done():
					if tc.failAt == 0 {
						t.Fatalf("service failed after %v, want it to keep running", time.Since(begin))
					}
					if d := time.Since(begin); d != tc.failAt {
						t.Fatalf("service failed after %v, want %v", d, tc.failAt)
					}
					if err := s.Err(); !errors.Is(err, core.ErrUnhealthy) || !errors.Is(err, errScripted) {
						t.Fatalf("Err: got %v, want ErrUnhealthy wrapping the check's error", err)
					}
				case <-time.After(time.Second):
					if tc.failAt != 0 {
						t.Fatalf("service still running after 1s, want it failed at %v", tc.failAt)
					}
					coretest.MustStop(t, s)
				}
			})
		})
	}
}

// hanging is a check function that, once hang is set, blocks until
// released, ignoring its context.
type hanging struct {
	hang    atomic.Bool
	calls   atomic.Int32
	release chan struct{}
}

func newHanging() *hanging { return &hanging{release: make(chan struct{})} }

func (h *hanging) fn(context.Context) error {
	h.calls.Add(1)
	if h.hang.Load() {
		<-h.release
	}
	return nil
}

// errCheckTimeout is the cause core gives a check's context when the check's
// own Timeout ends it.
var errCheckTimeout = fmt.Errorf("%w: %w", core.ErrCheckTimeout, context.DeadlineExceeded)

func TestHangingCheckIsCutOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHanging()
		h.hang.Store(true)
		s := core.NewService(core.Logger(coretest.Quiet()), health.Check("hang", h.fn))
		c := s.Checks()[0]

		// The check's own deadline, as the service sets it.
		ctx, cancel := context.WithTimeoutCause(t.Context(), 200*time.Millisecond, errCheckTimeout)
		defer cancel()
		begin := time.Now()
		err := c.Check(ctx)
		if d := time.Since(begin); d != 200*time.Millisecond {
			t.Fatalf("Check returned after %v, want 200ms (its deadline)", d)
		}
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "cut off after 200ms") {
			t.Fatalf("Check: got %v, want it cut off at the deadline", err)
		}

		// The hung call is still running: the next runs fail at once
		// without calling fn again.
		for range 3 {
			ctx, cancel := context.WithTimeoutCause(t.Context(), 200*time.Millisecond, errCheckTimeout)
			begin = time.Now()
			err = c.Check(ctx)
			cancel()
			if !errors.Is(err, health.ErrStillRunning) {
				t.Fatalf("Check while the earlier run hangs: got %v, want ErrStillRunning", err)
			}
			if d := time.Since(begin); d != 0 {
				t.Fatalf("Check while the earlier run hangs took %v, want 0 (fail fast)", d)
			}
		}
		if got := h.calls.Load(); got != 1 {
			t.Fatalf("fn called %d times, want 1: calls must not pile up", got)
		}

		// Once fn returns, the check runs it again.
		h.hang.Store(false)
		close(h.release)
		synctest.Wait()
		if err := c.Check(t.Context()); err != nil {
			t.Fatalf("Check after the hung call returned: got %v, want nil", err)
		}
		if got := h.calls.Load(); got != 2 {
			t.Fatalf("fn called %d times, want 2", got)
		}
	})
}

func TestMonitorFailsHangingCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHanging()
		var stopHook time.Duration
		begin := time.Now()
		s := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()),
			core.MonitorInterval(time.Second), core.StopTimeout(5*time.Second),
			core.OnStop(func(context.Context) error { stopHook = time.Since(begin); return nil }),
			health.Check("hang", h.fn, health.Timeout(200*time.Millisecond), health.Threshold(3)))
		coretest.MustStart(t, s)
		h.hang.Store(true)

		// Tick 1 at 1s is cut off at 1.2s; ticks 2 (2.2s) and 3 (3.2s)
		// fail at once: the third failure in a row fails the service.
		<-time.After(1100 * time.Millisecond)
		if s.State() != core.StateRunning {
			t.Fatalf("State during the first hung run: got %v, want running", s.State())
		}
		<-time.After(2150 * time.Millisecond) // 3.25s
		if got := s.State(); got != core.StateStopping {
			t.Fatalf("State after the third failure: got %v, want stopping", got)
		}
		if got := h.calls.Load(); got != 2 {
			t.Fatalf("fn called %d times, want 2 (start and tick 1)", got)
		}

		// The stop waits for the hung call, up to StopTimeout, before the
		// OnStop hooks, and names the check.
		err := s.Stop(context.Background())
		if d := time.Since(begin); d != 8200*time.Millisecond {
			t.Fatalf("Stop returned after %v, want 8.2s (failure at 3.2s + StopTimeout 5s)", d)
		}
		if stopHook != 8200*time.Millisecond {
			t.Fatalf("OnStop ran at %v, want 8.2s: after the stop gave up waiting for the check", stopHook)
		}
		var ste *core.StopTimeoutError
		if !errors.As(err, &ste) || len(ste.Units) != 1 || ste.Units[0] != "check hang" {
			t.Fatalf("Stop: got %v, want a *core.StopTimeoutError naming check hang", err)
		}
		cause := s.Err()
		if !errors.Is(cause, core.ErrUnhealthy) || !errors.Is(cause, health.ErrStillRunning) {
			t.Fatalf("Err: got %v, want ErrUnhealthy wrapping ErrStillRunning", cause)
		}
		close(h.release)
	})
}

func TestStopWaitsForCheckRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var slow atomic.Bool
		var stopHook time.Duration
		begin := time.Now()
		s := core.NewService(core.Logger(coretest.Quiet()), core.MonitorInterval(time.Second),
			core.OnStop(func(context.Context) error { stopHook = time.Since(begin); return nil }),
			health.Check("slow", func(context.Context) error {
				if slow.Load() {
					<-time.After(700 * time.Millisecond) // ignores its context
				}
				return nil
			}, health.Timeout(100*time.Millisecond), health.Threshold(5)))
		coretest.MustStart(t, s)
		slow.Store(true)
		<-time.After(1200 * time.Millisecond) // tick at 1s cut off at 1.1s; fn returns at 1.7s
		coretest.MustStop(t, s)
		if stopHook != 1700*time.Millisecond {
			t.Fatalf("OnStop ran at %v, want 1.7s: once the check's call returned", stopHook)
		}
	})
}

func TestCheckPanic(t *testing.T) {
	s := core.NewService(core.Logger(coretest.Quiet()), health.Check("boom", func(context.Context) error { panic("boom") }))
	err := s.Checks()[0].Check(t.Context())
	var pe *core.PanicError
	if !errors.As(err, &pe) || pe.Value != "boom" || len(pe.Stack) == 0 {
		t.Fatalf("Check: got %v, want a *core.PanicError with the value and stack", err)
	}
}

func TestCancelledRunIsNotRecorded(t *testing.T) {
	s := service("api", health.Check("db", func(ctx context.Context) error { return ctx.Err() }))
	h := health.Handler(s)
	coretest.MustStart(t, s) // a single check's probe answers for a Running service only
	defer coretest.MustStop(t, s)
	c := s.Checks()[0]
	if err := c.Check(t.Context()); err != nil {
		t.Fatalf("Check: got %v, want nil", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Check(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Check with a cancelled context: got %v, want context.Canceled", err)
	}
	if w := get(h, "/readyz/api/db", ""); w.Code != 200 {
		t.Fatalf("/readyz/api/db after a cancelled run: got %d %q, want 200: the run must not be recorded", w.Code, w.Body)
	}
	ctx, cancel = context.WithTimeoutCause(t.Context(), -time.Second, errCheckTimeout)
	defer cancel()
	if err := c.Check(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Check past its deadline: got %v, want DeadlineExceeded", err)
	}
	w := get(h, "/readyz/api/db", "")
	if w.Code != 503 || !strings.Contains(w.Body.String(), "deadline exceeded") {
		t.Fatalf("/readyz/api/db after a timed-out run: got %d %q, want 503 with the error", w.Code, w.Body)
	}
}

func TestSameCheckInTwoServices(t *testing.T) {
	var tg toggle
	spec := health.Check("db", tg.fn)
	a, b := service("a", spec), service("b", spec)
	coretest.MustStart(t, a)
	defer coretest.MustStop(t, a)
	coretest.MustStart(t, b)
	defer coretest.MustStop(t, b)
	down := errors.New("down")
	tg.set(down)
	healthcheck(t, a, down) // records a's result only
	h := health.Handler(a, b)
	if w := get(h, "/readyz/a/db", ""); w.Code != 503 {
		t.Errorf("/readyz/a/db: got %d, want 503", w.Code)
	}
	if w := get(h, "/readyz/b/db", ""); w.Code != 200 {
		t.Errorf("/readyz/b/db: got %d, want 200: each service has its own results", w.Code)
	}
}

func TestCheckNameMustBeAPathSegment(t *testing.T) {
	for _, name := range []string{"b/c", "/", "ping\n[+]api/forged", "a\tb", "a\u202eb"} {
		t.Run(name, func(t *testing.T) {
			s := service("api", health.Check(name, pass))
			err := s.Start(t.Context())
			if !errors.Is(err, core.ErrInvalidOption) || !strings.Contains(err.Error(), "health.Check "+strconv.Quote(name)) ||
				!strings.Contains(err.Error(), "api") {
				t.Fatalf("Start: got %v, want ErrInvalidOption naming health.Check(%q) and the service", err, name)
			}
		})
	}
}

// A Healthcheck caller that cancels its context while a check's fn is still
// running (an HTTP client that hangs up, say) does not mark the run as cut
// off: the monitor's next run of the healthy check passes, nothing counts
// towards Threshold, and the service keeps running (core Healthcheck:
// "changes nothing: failures here count towards no threshold, only the
// monitor's do"; doc.go: "A run whose context was cancelled by its caller
// ... records nothing").
func TestCancelledHealthcheckDoesNotFailService(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var slow atomic.Bool
		s := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Second),
			health.Check("db", func(context.Context) error {
				if slow.Load() {
					<-time.After(300 * time.Millisecond) // within its Timeout (500 ms)
				}
				return nil
			}))
		coretest.MustStart(t, s)
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

// One parent's failed start does not kill a shared requirement that another
// parent holds: the requirement's Healthcheck, run under the parent's start
// context and cancelled when a sibling requirement fails, is not counted as
// cut off, so the shared service's own monitor does not fail it (DESIGN deps:
// "The same service required by several parents starts once and stops after
// its last dependent").
func TestAbortedParentSparesSharedRequirement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var slow atomic.Bool
		db := core.NewService(core.Name("db"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Second),
			health.Check("conn", func(context.Context) error {
				if slow.Load() {
					<-time.After(300 * time.Millisecond) // within its Timeout (500 ms)
				}
				return nil
			}))
		a := core.NewService(core.Name("a"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), deps.Requires(db))
		coretest.MustStart(t, a) // starts db; db's monitor ticks at 1s, 2s, ...
		defer func() { _ = a.Stop(context.Background()) }()

		<-time.After(800 * time.Millisecond)
		slow.Store(true)
		bad := core.NewService(core.Name("bad"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
			core.OnStart(func(context.Context) error {
				<-time.After(50 * time.Millisecond)
				return errors.New("bad is broken")
			}))
		b := core.NewService(core.Name("b"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
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

// A caller's deadline shorter than the check's own Timeout is not recorded
// as the check's failure: /readyz stays 200 for a check that is healthy by
// its own Timeout (options.go Timeout: "A run that has not returned by then
// fails"; doc.go: a run cancelled by its caller records nothing).
func TestCallerDeadlineIsNotRecorded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var slow atomic.Bool
		s := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
			health.Check("db", func(context.Context) error {
				if slow.Load() {
					<-time.After(100 * time.Millisecond)
				}
				return nil
			}, health.Timeout(time.Second)))
		coretest.MustStart(t, s)
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

// A check named like a requirement of the same service (deps.Requires(db) is
// named "db" after its service, and so may be a check pinging it) would make
// the probe path service/name ambiguous: Start reports it as an invalid
// option naming both.
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

// A Healthcheck that began while Running never calls a check's fn after Stop
// has returned (doc.go: "The service owns those goroutines: its Stop waits
// for runs still under way before its OnStop hooks"; DESIGN core:
// Healthcheck is nil iff Running).
func TestHealthcheckNeverCallsCheckAfterStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &foreignSlow{entered: make(chan struct{}), release: make(chan struct{})}
		var stopped, calledAfterStop atomic.Bool
		s := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
			f,
			health.Check("db", func(context.Context) error {
				if stopped.Load() {
					calledAfterStop.Store(true)
				}
				return nil
			}),
			core.OnStop(func(context.Context) error { stopped.Store(true); return nil }))
		coretest.MustStart(t, s)
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

// A CheckSpec reused across services: a hung call in one service makes only
// that service's check fail with ErrStillRunning.
func TestReusedSpecIsolatesHangs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hang := newHanging()
		spec := health.Check("db", hang.fn, health.Timeout(100*time.Millisecond), health.Threshold(10))
		a := core.NewService(core.Name("a"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), spec)
		b := core.NewService(core.Name("b"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), spec)
		coretest.MustStart(t, a)
		coretest.MustStart(t, b)
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
		coretest.MustStop(t, a)
		coretest.MustStop(t, b)
	})
}

// A check owns no goroutine between its runs: a started service whose
// only work is a check runs none while idle, and each monitor tick still
// calls the check's function.
func TestCheckRunsNoGoroutineBetweenRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		s := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.MonitorInterval(100*time.Millisecond),
			health.Check("db", func(context.Context) error { calls.Add(1); return nil }))
		before := coretest.BubbleGoroutines()
		coretest.MustStart(t, s)
		synctest.Wait()
		for tick := 0; tick <= 2; tick++ {
			if extra := coretest.BubbleGoroutines() - before; extra != 0 {
				t.Fatalf("goroutines after %d ticks: got %d more than before Start, want 0", tick, extra)
			}
			<-time.After(100 * time.Millisecond)
			synctest.Wait()
		}
		if got := calls.Load(); got != 4 {
			t.Fatalf("calls: got %d, want 4 (start + 3 ticks)", got)
		}
		coretest.MustStop(t, s)
	})
}
