package core_test

// Tests from an adversarial review. Those marked "Regression" failed
// before the fix of the bug they describe; "coverage:" ones pinned behaviour
// that was already right.

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
)

// gateHandler is a slog.Handler that, the first time it sees a record with
// message msg, closes hit and blocks until gate is closed. The library raises
// every state change through its logger, so this pins a service between two
// steps of its lifecycle without touching its code.
type gateHandler struct {
	msg  string
	hit  chan struct{}
	gate chan struct{}
	once *sync.Once
}

func newGate(msg string) *gateHandler {
	return &gateHandler{msg: msg, hit: make(chan struct{}), gate: make(chan struct{}), once: new(sync.Once)}
}

func (h *gateHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *gateHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() {
			close(h.hit)
			<-h.gate
		})
	}
	return nil
}
func (h *gateHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *gateHandler) WithGroup(string) slog.Handler      { return h }

// Regression: Host.Go runs fn when called after the service has begun to stop.
// Stop (and fail) move the state to Stopping, but the worker set is closed
// only later, in shutdown -> workers.wait (host.go, workerSet.start checks
// only w.closed). In between, Host.Go starts fn with a live lifetime context.
// Violates host.go's own contract: "Go called once the service has begun to
// stop does not run fn."
func TestHostGoWhileStoppingDoesNotRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate("service stopping")
		var host *core.Host
		s := core.NewService(core.Name("s"), core.Logger(slog.New(g)), core.MonitorInterval(time.Hour),
			&hostGrabber{h: &host})
		mustStart(t, s)
		stopped := make(chan error, 1)
		go func() { stopped <- s.Stop(context.Background()) }()
		<-g.hit // the stop has begun: the service is Stopping
		if st := s.State(); st != core.StateStopping {
			t.Fatalf("state %v, want stopping", st)
		}
		ran := make(chan struct{}, 1)
		host.Go("late", func(context.Context) error { ran <- struct{}{}; return nil })
		synctest.Wait()
		close(g.gate)
		if err := <-stopped; err != nil {
			t.Fatalf("Stop: %v", err)
		}
		select {
		case <-ran:
			t.Fatal("Host.Go called while the service was Stopping ran its function")
		default:
		}
	})
}

// Regression: an error from a unit that outlived StopTimeout is lost when it
// arrives while the rest of the stop sequence (OnStop hooks, requirements)
// is still running. fail() in StateStopping appends it to b.lateErrs
// (service.go, fail), but shutdown read lateErrs once, right after
// workers.wait (service.go, shutdown), so it is neither returned by Stop,
// nor logged, nor in Err. Violates DESIGN core/Stop: "Errors met while
// stopping are joined (errors.Join), returned, and logged: never swallowed."
func TestLateUnitErrorDuringStopIsKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		late := errors.New("late unit error")
		var logs bytes.Buffer
		s := core.NewService(core.Name("s"), core.Logger(slog.New(slog.NewTextHandler(&logs, nil))),
			core.MonitorInterval(time.Hour), core.StopTimeout(2*time.Second),
			&unit{name: "slow", fn: func(ctx context.Context) error {
				<-ctx.Done()
				<-time.After(3 * time.Second) // outlives StopTimeout (2s) ...
				return late                   // ... then fails
			}},
			core.OnStop(func(context.Context) error {
				<-time.After(1500 * time.Millisecond) // a slow hook (2s to 3.5s): still stopping at 3s
				return nil
			}))
		mustStart(t, s)
		err := s.Stop(context.Background())
		if !errors.Is(err, core.ErrStopTimeout) {
			t.Fatalf("Stop: got %v, want a StopTimeoutError", err)
		}
		if !errors.Is(err, late) {
			t.Fatalf("the unit's error, met while stopping, was swallowed: Stop %v, Err %v, logs:\n%s", err, s.Err(), logs.String())
		}
	})
}

// Regression (same cause as TestLateUnitErrorDuringStopIsKept): Host.Fail
// called while the OnStop hooks run (here by the hook itself, e.g. a flush
// that failed) is swallowed: fail() appends it to lateErrs after shutdown
// has read them. Stop returns nil, Err is nil, nothing is logged. Violates
// DESIGN core/Stop: "Errors met while stopping are ... returned, and
// logged: never swallowed."
func TestHostFailDuringOnStopIsKept(t *testing.T) {
	boom := errors.New("flush failed")
	var logs bytes.Buffer
	var host *core.Host
	s := core.NewService(core.Name("s"), core.Logger(slog.New(slog.NewTextHandler(&logs, nil))),
		core.MonitorInterval(time.Hour), &hostGrabber{h: &host},
		core.OnStop(func(context.Context) error { host.Fail(boom); return nil }))
	mustStart(t, s)
	err := s.Stop(context.Background())
	if !errors.Is(err, boom) || !strings.Contains(logs.String(), boom.Error()) {
		t.Fatalf("Host.Fail during the stop was swallowed: Stop %v, Err %v, logs:\n%s", err, s.Err(), logs.String())
	}
}

// Regression: State() reports a final state before Done is closed, and Err() is
// still nil then. finish (service.go) sets b.state = final, unlocks, logs
// and raises the event, and only then closes done; Err() returns nil until
// done is closed. A caller that sees StateFailed and asks Err() gets nil
// (core's own await() for non-*Base services does exactly that). Violates
// DESIGN core: "Done() is closed on reaching Terminated or Failed; Err() is
// then the cause of the failure".
func TestFinalStateComesWithDoneAndErr(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate("service failed")
		boom := errors.New("boom")
		s := core.NewService(core.Name("s"), core.Logger(slog.New(g)), core.MonitorInterval(time.Hour),
			&unit{name: "u", fn: func(ctx context.Context) error {
				select {
				case <-time.After(time.Second):
					return boom
				case <-ctx.Done():
					return nil
				}
			}})
		mustStart(t, s)
		<-g.hit // the service has reached Failed
		st, err := s.State(), s.Err()
		done := false
		select {
		case <-s.Done():
			done = true
		default:
		}
		close(g.gate)
		<-s.Done()
		if st == core.StateFailed && (!done || !errors.Is(err, boom)) {
			t.Fatalf("State() = %v while Done closed = %v and Err() = %v: want Done closed and Err = boom", st, done, err)
		}
	})
}

// Regression: Stop with an already-cancelled context on a service that has already
// stopped returns the context error or the stop's result at random: Stop
// (service.go) selects on b.done and ctx.Done() together, both ready.
// Violates DESIGN core/Stop: "idempotent ... concurrent callers all get the
// same result" (the doc comment: "If ctx ends first, Stop returns ctx's
// error" — here the stop ended first).
func TestStopAfterDoneWithCancelledContext(t *testing.T) {
	s := core.NewService(core.Name("s"), core.Logger(quiet), core.MonitorInterval(time.Hour))
	mustStart(t, s)
	mustStop(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	bad := 0
	for range 200 {
		if err := s.Stop(ctx); err != nil {
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("Stop(cancelled ctx) on a terminated service returned an error %d times out of 200, want always nil", bad)
	}
}

// Regression: a shared requirement's start runs under the context of the first
// parent that acquired it (require.go, acquire -> b.startup(b.begin(ctx))).
// When that parent's start is aborted (Stop, its StartTimeout, its ctx),
// the shared service's start is cancelled too and every other parent
// waiting for it fails, although they still need it and their own start is
// fine. Violates DESIGN deps: "The same service required by several parents
// starts once and stops after its last dependent" (here it fails before
// its remaining dependent even started).
func TestSharedStartNotBoundToFirstParent(t *testing.T) {
	cases := map[string]func(a *core.Base){
		// a is stopped while it starts: its own start is aborted, not b's.
		"first parent stopped": func(a *core.Base) {
			if err := a.Stop(context.Background()); err != nil {
				t.Errorf("Stop a: %v", err)
			}
		},
		// a's start fails because of a sibling of db: nothing to do with b.
		"first parent's sibling fails": nil,
	}
	for name, abort := range cases {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &recorder{}
				db := core.NewService(core.Name("db"), core.Logger(quiet), core.MonitorInterval(time.Hour),
					core.OnStart(func(ctx context.Context) error {
						select {
						case <-time.After(2 * time.Second): // a slow but successful start
							return nil
						case <-ctx.Done():
							return ctx.Err()
						}
					}))
				opts := []core.Option{requires(db)}
				if abort == nil {
					opts = append(opts, &req{name: "cache", resolve: func(ctx context.Context) (core.Service, error) {
						<-time.After(time.Second)
						return nil, errors.New("cache: no such host")
					}})
				}
				a := node("a", rec, opts...)
				b := node("b", rec, requires(db))
				aErr := make(chan error, 1)
				go func() { aErr <- a.Start(context.Background()) }()
				synctest.Wait() // a is starting db
				bErr := make(chan error, 1)
				go func() { bErr <- b.Start(context.Background()) }()
				<-time.After(time.Second)
				if abort != nil {
					abort(a)
				}
				<-aErr
				if err := <-bErr; err != nil {
					t.Fatalf("b's start failed because of db's other parent a: %v", err)
				}
				if db.State() != core.StateRunning {
					t.Fatalf("db: %v, want running (b holds it)", db.State())
				}
				mustStop(t, b)
			})
		})
	}
}

// Regression: an Await on a service that (directly or via its requirements)
// requires the awaiting service is a dependency cycle, but it is not
// detected: staticCycle skips non-owned requirements and startRequirement
// calls checkCycle only for owned ones (require.go). The start deadlocks
// until StartTimeout and fails with DeadlineExceeded. Violates DESIGN deps:
// "Cycles are an ErrCycle whose message shows the path".
func TestAwaitCycleIsDetected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		var x *core.Base
		y := node("y", rec, core.StartTimeout(5*time.Second), &req{name: "x", resolve: func(context.Context) (core.Service, error) { return x, nil }})
		x = node("x", rec, &req{svc: y, awaited: true}) // x awaits y; y requires x
		begin := time.Now()
		err := y.Start(t.Context())
		if !errors.Is(err, core.ErrCycle) {
			t.Fatalf("Start: got %v after %v, want ErrCycle at once", err, time.Since(begin))
		}
	})
}

// Regression: Run does not notice that an already started service failed while a
// later service is still starting: runAll (run.go) starts svcs one by one
// and only then waits (waitAny). A failure of svcs[0] while svcs[1] starts
// slowly keeps Run (and the failed service's dependents) going until svcs[1]'s
// start ends, up to its StartTimeout. Violates DESIGN core/Run: "block until
// ctx is done, SIGINT/SIGTERM, or any service fails; then stop all" and
// core/Failure: "... fails in turn, promptly".
func TestRunSeesFailureDuringLaterStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		rec := &recorder{}
		a := node("a", rec, &unit{name: "u", fn: func(ctx context.Context) error {
			select {
			case <-time.After(time.Second):
				return boom
			case <-ctx.Done():
				return nil
			}
		}})
		b := core.NewService(core.Name("b"), core.Logger(quiet), core.StartTimeout(time.Minute),
			core.OnStart(func(ctx context.Context) error { // waits for something that never comes
				<-ctx.Done()
				return ctx.Err()
			}))
		begin := time.Now()
		err := core.RunSignals(context.Background(), nil, a, b)
		if !errors.Is(err, boom) {
			t.Fatalf("Run: got %v, want a's failure", err)
		}
		if d := time.Since(begin); d != time.Second {
			t.Fatalf("Run returned %v after start, want 1s (when a failed)", d)
		}
	})
}

// Regression: Stop called from one of the service's own units waited for
// the whole StopTimeout and then named the calling unit as stuck: the stop
// sequence waits for every unit, including the one blocked in Stop. Stop
// now recognises the unit's context and does not wait (it cannot recognise
// an unrelated context such as context.Background(): documented on Stop).
func TestStopFromOwnUnit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s *core.Base
		res := make(chan error, 1)
		s = core.NewService(core.Name("s"), core.Logger(quiet), core.MonitorInterval(time.Hour),
			core.StopTimeout(10*time.Second),
			&unit{name: "job", fn: func(ctx context.Context) error {
				<-time.After(time.Second) // the job is finished: stop the service
				res <- s.Stop(ctx)
				return nil
			}})
		begin := time.Now()
		mustStart(t, s)
		if err := <-res; err != nil {
			t.Fatalf("Stop from the service's own unit: got %v, want nil at once", err)
		}
		<-s.Done()
		if d := time.Since(begin); d != time.Second || s.State() != core.StateTerminated {
			t.Fatalf("stopped %v after start in state %v, want 1s (when the job called Stop) and terminated", d, s.State())
		}
	})
}

// Regression: a panic in an OnStart hook escapes Start and leaves the service in
// StateStarting for ever: nothing is rolled back, Done is never closed and
// every Stop blocks until its ctx ends. (A panic in a Lazy function or a
// requirement's Start/Healthcheck is worse: it happens in startRequirements'
// goroutines and kills the process; see deps TestLazyPanicIsRecovered.)
// Task workers and monitor checks are recovered into *PanicError, start
// steps are not (service.go, startSteps; require.go, startRequirements).
// Violates DESIGN core/Start: "Any failure ... rolls back everything started
// so far, including the part that failed ... State → Failed" and doc.go's
// "panics are *PanicError values with the stack".
func TestPanicInOnStartRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := core.NewService(core.Name("s"), core.Logger(quiet), core.MonitorInterval(time.Hour),
			core.OnStart(func(context.Context) error { panic("bad hook") }))
		var startErr error
		panicked := func() (p bool) {
			defer func() { p = recover() != nil }()
			startErr = s.Start(context.Background())
			return false
		}()
		var pe *core.PanicError
		if panicked || !errors.As(startErr, &pe) || s.State() != core.StateFailed {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			t.Fatalf("Start panicked=%v err=%v; state %v; Stop: %v; want a *PanicError, state failed",
				panicked, startErr, s.State(), s.Stop(ctx))
		}
	})
}

// coverage: Done closed implies a final state and Err set, for the three
// ways to end (clean stop, self-failure, failed start).
func TestDoneImpliesFinalState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		clean := core.NewService(core.Logger(quiet))
		mustStart(t, clean)
		go clean.Stop(context.Background())
		<-clean.Done()
		if clean.State() != core.StateTerminated || clean.Err() != nil {
			t.Fatalf("clean: %v %v", clean.State(), clean.Err())
		}
		failing := core.NewService(core.Logger(quiet), &unit{name: "u", fn: func(context.Context) error {
			<-time.After(time.Second)
			return boom
		}})
		mustStart(t, failing)
		<-failing.Done()
		if failing.State() != core.StateFailed || !errors.Is(failing.Err(), boom) {
			t.Fatalf("failing: %v %v", failing.State(), failing.Err())
		}
		bad := core.NewService(core.Logger(quiet), core.OnStart(func(context.Context) error { return boom }))
		go bad.Start(context.Background())
		<-bad.Done()
		if bad.State() != core.StateFailed || !errors.Is(bad.Err(), core.ErrStartup) || !errors.Is(bad.Err(), boom) {
			t.Fatalf("failed start: %v %v", bad.State(), bad.Err())
		}
	})
}

// coverage: Stop during Start while a requirement is still starting cancels
// the requirement's start, rolls it back, and ends Terminated.
func TestStopWhileRequirementStarting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		db := node("db", rec, core.OnStart(func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }))
		p := node("p", rec, requires(db))
		startErr := make(chan error, 1)
		go func() { startErr <- p.Start(context.Background()) }()
		synctest.Wait()
		if err := p.Stop(context.Background()); err != nil {
			t.Fatalf("Stop: %v", err)
		}
		if err := <-startErr; !errors.Is(err, core.ErrStartup) {
			t.Fatalf("Start: %v", err)
		}
		if p.State() != core.StateTerminated || p.Err() != nil || db.State() == core.StateRunning {
			t.Fatalf("p %v %v, db %v", p.State(), p.Err(), db.State())
		}
		wantEvents(t, rec.get(), []string{"db start", "db stop"})
	})
}

// coverage: a requirement that fails after it is Running but before its
// parent is Running aborts the parent's start with the requirement's error.
func TestRequirementFailsDuringParentStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("db crashed")
		rec := &recorder{}
		db := node("db", rec, &unit{name: "u", fn: func(ctx context.Context) error {
			select {
			case <-time.After(time.Second):
				return boom
			case <-ctx.Done():
				return nil
			}
		}})
		p := node("p", rec, requires(db), core.OnStart(func(ctx context.Context) error {
			<-ctx.Done() // a slow hook, cut by the requirement's failure
			return ctx.Err()
		}))
		err := p.Start(context.Background())
		if !errors.Is(err, core.ErrStartup) || !errors.Is(err, boom) || p.State() != core.StateFailed {
			t.Fatalf("Start: %v, state %v; want ErrStartup wrapping boom, failed", err, p.State())
		}
	})
}

// coverage: the monitor stuck in a check that ignores its context is named
// in the StopTimeoutError, and the stop goes on.
func TestStopTimeoutNamesStuckMonitor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		first := true
		s := core.NewService(core.Logger(quiet), core.MonitorInterval(time.Second), core.StopTimeout(2*time.Second),
			&check{name: "c", timeout: func(time.Duration) time.Duration { return time.Hour }, fn: func(context.Context) error {
				if first { // the start's check passes
					first = false
					return nil
				}
				<-release
				return nil
			}})
		mustStart(t, s)
		<-time.After(1500 * time.Millisecond) // the monitor is inside the check
		err := s.Stop(context.Background())
		var te *core.StopTimeoutError
		if !errors.As(err, &te) || len(te.Units) != 1 || te.Units[0] != "monitor" {
			t.Fatalf("Stop: got %v, want a StopTimeoutError naming the monitor", err)
		}
		close(release)
		synctest.Wait()
	})
}

// coverage: Healthcheck while stopping reports ErrUnhealthy naming the state.
func TestHealthcheckWhileStopping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		s := core.NewService(core.Name("s"), core.Logger(quiet), core.MonitorInterval(time.Hour),
			core.OnStop(func(context.Context) error { <-release; return nil }))
		mustStart(t, s)
		go s.Stop(context.Background())
		synctest.Wait()
		if err := s.Healthcheck(context.Background()); !errors.Is(err, core.ErrUnhealthy) || !strings.Contains(err.Error(), "stopping") {
			t.Fatalf("Healthcheck while stopping: %v", err)
		}
		close(release)
		<-s.Done()
	})
}

// coverage: Dependencies() read concurrently with start and stop (-race).
func TestDependenciesDuringStart(t *testing.T) {
	rec := &recorder{}
	a, b := node("a", rec), node("b", rec)
	p := node("p", rec, requires(a), requires(b))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				for _, d := range p.Dependencies() {
					if d.Service != nil {
						_ = d.Service.State()
					}
				}
				_ = p.Healthcheck(context.Background())
			}
		}
	})
	mustStart(t, p)
	mustStop(t, p)
	close(stop)
	wg.Wait()
}
