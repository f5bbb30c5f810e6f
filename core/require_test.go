package core_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/task"
)

func TestNestedOrder(t *testing.T) {
	rec := &coretest.Recorder{}
	c := coretest.Node("c", rec)
	b := coretest.Node("b", rec, requires(c))
	a := coretest.Node("a", rec, requires(b))
	coretest.MustStart(t, a)
	if b.State() != core.StateRunning || c.State() != core.StateRunning {
		t.Fatalf("requirements: b %v, c %v, want running", b.State(), c.State())
	}
	coretest.MustStop(t, a)
	coretest.WantEvents(t, rec.Events(), []string{"c start", "b start", "a start", "a stop", "b stop", "c stop"})
	if b.State() != core.StateTerminated || c.State() != core.StateTerminated {
		t.Fatalf("after Stop: b %v, c %v, want terminated", b.State(), c.State())
	}
}

func TestIndependentRequirementsStartConcurrently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		var mu sync.Mutex
		inside, most := 0, 0
		slow := func(name string) *core.Base {
			return core.NewService(core.Name(name), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
				core.OnStart(func(context.Context) error {
					mu.Lock()
					inside++
					most = max(most, inside)
					mu.Unlock()
					<-time.After(time.Second) // fake time; overlapping starts take 1s in all
					mu.Lock()
					inside--
					mu.Unlock()
					return nil
				}))
		}
		x, y, z := slow("x"), slow("y"), slow("z")
		p := coretest.Node("p", rec, requires(x), requires(y), requires(z))
		begin := time.Now()
		coretest.MustStart(t, p)
		if d := time.Since(begin); d != time.Second || most != 3 {
			t.Fatalf("three independent 1s starts took %v with at most %d at once, want 1s and 3", d, most)
		}
		coretest.MustStop(t, p)
	})
}

func TestAfterOrdersSiblings(t *testing.T) {
	rec := &coretest.Recorder{}
	x, y, z := coretest.Node("x", rec), coretest.Node("y", rec), coretest.Node("z", rec)
	rz := requires(z)
	ry := requires(y, rz)
	p := coretest.Node("p", rec, requires(x, ry), ry, rz)
	coretest.MustStart(t, p)
	coretest.MustStop(t, p)
	coretest.WantEvents(t, rec.Events(), []string{"z start", "y start", "x start", "p start", "p stop", "x stop", "y stop", "z stop"})
}

func TestSharedRequirementStartsOnceStopsAfterLast(t *testing.T) {
	orders := [][]int{{0, 1}, {1, 0}, {0, 1, 2}, {2, 0, 1}, {1, 2, 0}}
	for _, order := range orders {
		rec := &coretest.Recorder{}
		db := coretest.Node("db", rec)
		parents := make([]*core.Base, len(order))
		for i := range parents {
			parents[i] = core.NewService(core.Logger(coretest.Quiet()), requires(db))
		}
		var wg sync.WaitGroup
		for _, p := range parents { // concurrent parents starting at once
			wg.Go(func() { coretest.MustStart(t, p) })
		}
		wg.Wait()
		coretest.WantEvents(t, rec.Events(), []string{"db start"})
		for n, i := range order {
			coretest.MustStop(t, parents[i])
			if last := n == len(order)-1; last != (db.State() == core.StateTerminated) {
				t.Fatalf("order %v: after stopping %d parents db is %v", order, n+1, db.State())
			}
		}
		coretest.WantEvents(t, rec.Events(), []string{"db start", "db stop"})
	}
}

func TestSharedWithDirectStart(t *testing.T) {
	rec := &coretest.Recorder{}
	db := coretest.Node("db", rec)
	api := coretest.Node("api", rec, requires(db))
	coretest.MustStart(t, db)
	coretest.MustStart(t, api)
	coretest.MustStop(t, api)
	if db.State() != core.StateRunning {
		t.Fatalf("db started directly was stopped by its dependent: %v", db.State())
	}
	coretest.MustStop(t, db)
	coretest.WantEvents(t, rec.Events(), []string{"db start", "api start", "api stop", "db stop"})
}

// late is a requirement whose service is set after construction, to build cycles.
func late(target **core.Base) *req {
	return &req{name: "late", resolve: func(context.Context) (core.Service, error) { return *target, nil }}
}

func TestCycles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		var a, b, c *core.Base
		a = coretest.Node("a", rec, late(&a))
		assertCycle(t, a, "a -> a")

		var d, e *core.Base
		d = coretest.Node("d", rec, late(&e))
		e = coretest.Node("e", rec, late(&d))
		assertCycle(t, d, "d -> e -> d")

		var f *core.Base
		b = coretest.Node("b", rec, late(&c))
		c = coretest.Node("c", rec, late(&f))
		f = coretest.Node("f", rec, late(&b))
		assertCycle(t, b, "b -> c -> f -> b")
		coretest.WantEvents(t, rec.Events(), nil) // nothing ran: no hook of any service in a cycle
	})
}

func assertCycle(t *testing.T, s *core.Base, path string) {
	t.Helper()
	err := s.Start(t.Context())
	var ce *core.CycleError
	if !errors.Is(err, core.ErrStartup) || !errors.As(err, &ce) || !errors.Is(err, core.ErrCycle) {
		t.Fatalf("Start: got %v, want ErrStartup wrapping a *CycleError", err)
	}
	if got := strings.Join(ce.Path, " -> "); got != path {
		t.Fatalf("cycle path: got %q, want %q", got, path)
	}
	if !strings.Contains(err.Error(), "dependency cycle: "+path) {
		t.Fatalf("message %q does not show the path", err)
	}
}

func TestAfterCycle(t *testing.T) {
	rec := &coretest.Recorder{}
	r1 := requires(coretest.Node("x", rec))
	r2 := requires(coretest.Node("y", rec), r1)
	r1.after = []core.Requirement{r2}
	err := coretest.Node("p", rec, r1, r2).Start(t.Context())
	if !errors.Is(err, core.ErrCycle) || !strings.Contains(err.Error(), "x -> y -> x") {
		t.Fatalf("Start: got %v, want a cycle x -> y -> x", err)
	}
}

func TestRequirementBadInput(t *testing.T) {
	rec := &coretest.Recorder{}
	var typedNil *fake
	shared := coretest.Node("shared", rec)
	outsider := requires(coretest.Node("outsider", rec))
	cases := map[string]core.Option{
		"nil service":       &req{name: "nothing"},
		"typed nil service": &req{name: "typed", svc: typedNil},
		"required twice":    optionList{&req{name: "one", svc: shared}, &req{name: "two", svc: shared}},
		"After unknown":     requires(coretest.Node("y", rec), outsider),
		"resolve error": &req{name: "lazy", resolve: func(context.Context) (core.Service, error) {
			return nil, errors.New("cannot build")
		}},
	}
	for name, opt := range cases {
		t.Run(name, func(t *testing.T) {
			err := coretest.Node("p", rec, opt).Start(t.Context())
			var se *core.StartupError
			if !errors.As(err, &se) || !strings.HasPrefix(se.Part, "requirement ") {
				t.Fatalf("Start: got %v, want a *StartupError naming a requirement", err)
			}
		})
	}
	// The duplicate may be found before or while shared starts: either way
	// it must not be left running.
	if st := shared.State(); st != core.StateTerminated && st != core.StateFailed && st != core.StateNew {
		t.Fatalf("shared after the rollback: %v, want not running", st)
	}
}

func TestRollbackStopsStartedSiblings(t *testing.T) {
	boom := errors.New("third fails")
	rec := &coretest.Recorder{}
	x, y := coretest.Node("x", rec), coretest.Node("y", rec)
	z := core.NewService(core.Name("z"), core.Logger(coretest.Quiet()), core.OnStart(func(context.Context) error {
		rec.Add("z start")
		return boom
	}), core.OnStop(rec.Hook("z stop", nil)))
	rx := requires(x)
	ry := requires(y, rx)
	p := coretest.Node("p", rec, rx, ry, requires(z, ry))
	if err := p.Start(t.Context()); !errors.Is(err, boom) || !strings.Contains(err.Error(), "requirement z") {
		t.Fatalf("Start: got %v, want it to name requirement z and wrap its error", err)
	}
	// z's own rollback runs its OnStop hook (it got past its requirements).
	coretest.WantEvents(t, rec.Events(), []string{"x start", "y start", "z start", "z stop", "y stop", "x stop"})
	for _, s := range []*core.Base{x, y} {
		if s.State() != core.StateTerminated {
			t.Fatalf("%s after rollback: %v, want terminated", s.Name(), s.State())
		}
	}
}

func TestRollbackStopsFailedForeignRequirement(t *testing.T) {
	rec := &coretest.Recorder{}
	f := newFake("foreign", rec)
	f.startErr = errors.New("half started")
	err := coretest.Node("p", rec, requires(f)).Start(t.Context())
	if !errors.Is(err, f.startErr) {
		t.Fatalf("Start: got %v", err)
	}
	coretest.WantEvents(t, rec.Events(), []string{"foreign start", "foreign stop"})
}

func TestFailurePropagatesThroughThreeLevels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("disk full")
		rec := &coretest.Recorder{}
		c := coretest.Node("c", rec, &unit{name: "writer", fn: func(ctx context.Context) error {
			select {
			case <-time.After(time.Second):
				return boom
			case <-ctx.Done():
				return nil
			}
		}})
		b := coretest.Node("b", rec, requires(c))
		a := coretest.Node("a", rec, requires(b))
		begin := time.Now()
		coretest.MustStart(t, a)
		<-a.Done()
		if d := time.Since(begin); d != time.Second {
			t.Fatalf("a failed %v after start, want 1s (promptly)", d)
		}
		for _, s := range []*core.Base{a, b, c} {
			if s.State() != core.StateFailed || !errors.Is(s.Err(), boom) {
				t.Fatalf("%s: state %v err %v, want failed wrapping the cause", s.Name(), s.State(), s.Err())
			}
		}
		if msg := a.Err().Error(); !strings.Contains(msg, "requirement b failed: requirement c failed") {
			t.Fatalf("a's error %q does not name the chain", msg)
		}
		// The failure reaches the dependents before c's own stop runs, and
		// they stop first, as in any stop: dependents before what they use.
		coretest.WantEvents(t, rec.Events(), []string{"c start", "b start", "a start", "a stop", "b stop", "c stop"})
	})
}

func TestAwait(t *testing.T) {
	t.Run("never starts", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rec := &coretest.Recorder{}
			ext := coretest.Node("ext", rec)
			p := coretest.Node("p", rec, core.StartTimeout(3*time.Second), &req{svc: ext, awaited: true})
			begin := time.Now()
			err := p.Start(t.Context())
			if !errors.Is(err, context.DeadlineExceeded) || time.Since(begin) != 3*time.Second {
				t.Fatalf("Start: got %v after %v, want DeadlineExceeded after 3s", err, time.Since(begin))
			}
			if ext.State() != core.StateNew {
				t.Fatalf("awaited service was touched: %v", ext.State())
			}
		})
	})
	t.Run("started by someone else, fails later", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rec := &coretest.Recorder{}
			ext := newFake("ext", rec)
			p := coretest.Node("p", rec, &req{svc: ext, awaited: true})
			go func() {
				<-time.After(time.Second)
				_ = ext.Start(context.Background())
			}()
			coretest.MustStart(t, p)
			boom := errors.New("ext crashed")
			ext.crash(boom)
			<-p.Done()
			if !errors.Is(p.Err(), boom) {
				t.Fatalf("p: got %v, want it to fail with the awaited service's error", p.Err())
			}
			coretest.WantEvents(t, rec.Events(), []string{"ext start", "p start", "p stop"}) // p never stops ext
		})
	})
}

func TestDependencies(t *testing.T) {
	rec := &coretest.Recorder{}
	db := coretest.Node("db", rec)
	lazyDB := coretest.Node("lazy", rec)
	rdb := requires(db)
	rlazy := &req{name: "lazy", resolve: func(context.Context) (core.Service, error) { return lazyDB, nil }}
	api := coretest.Node("api", rec, rdb, rlazy, &check{name: "c", fn: okCheck}, core.MonitorInterval(time.Minute))
	deps := api.Dependencies()
	if len(deps) != 2 || deps[0].Requirement != rdb || deps[1].Requirement != rlazy || deps[0].Service != nil || deps[1].Service != nil {
		t.Fatalf("before start: got %+v, want both requirements, unresolved", deps)
	}
	coretest.MustStart(t, api)
	deps = api.Dependencies()
	if deps[0].Service != db || deps[1].Service != lazyDB {
		t.Fatalf("after start: got %+v, want the resolved services", deps)
	}
	if cs := api.Checks(); len(cs) != 1 || cs[0].Name() != "c" {
		t.Fatalf("Checks: got %v, want [c]", cs)
	}
	if got := api.MonitorInterval(); got != time.Minute {
		t.Fatalf("MonitorInterval: got %v, want 1m", got)
	}
	coretest.MustStop(t, api)
}

func TestStartBoundsAForeignRequirementWhoseStartIgnoresItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		f := newFake("f", rec)
		f.hang = make(chan struct{})
		defer close(f.hang)
		p := core.NewService(core.Name("p"), core.Logger(coretest.Quiet()), core.StartTimeout(time.Second), requires(f))
		took, err := coretest.Bounded(t, "Start (StartTimeout 1s)", func() error { return p.Start(context.Background()) })
		var se *core.StartupError
		if !errors.As(err, &se) || se.Part != "requirement f" || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Start: got %v, want a *StartupError naming requirement f, matching DeadlineExceeded", err)
		}
		// The rollback stops f, whose Stop returns at once (f is not Running).
		if got, want := took, time.Second+core.AbandonGrace; got != want {
			t.Errorf("Start returned after %v, want %v (StartTimeout + AbandonGrace)", got, want)
		}
	})
}

func TestStopBoundsAForeignRequirementWhoseStopIgnoresItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		f := newFake("f", rec)
		p := core.NewService(core.Name("p"), core.Logger(coretest.Quiet()), core.StopTimeout(time.Second), requires(f))
		coretest.MustStart(t, p)
		f.hang = make(chan struct{})
		defer close(f.hang)
		took, err := coretest.Bounded(t, "Stop (StopTimeout 1s)", func() error { return p.Stop(context.Background()) })
		var ste *core.StopTimeoutError
		if !errors.As(err, &ste) || len(ste.Units) != 1 || ste.Units[0] != "requirement f" {
			t.Errorf("Stop: got %v, want a *StopTimeoutError naming requirement f", err)
		}
		if got, want := took, time.Second+core.AbandonGrace; got != want {
			t.Errorf("Stop returned after %v, want %v (StopTimeout + AbandonGrace)", got, want)
		}
		if got := p.State(); got != core.StateTerminated {
			t.Errorf("state: got %v, want terminated", got)
		}
	})
}

func TestSharedStartFailingAfterItsParentGaveUpIsFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		refused := errors.New("db refused")
		s := core.NewService(core.Name("s"), core.Logger(coretest.Quiet()),
			core.OnStart(func(ctx context.Context) error {
				<-ctx.Done()   // the only parent gave up: its rollback aborts this start ...
				return refused // ... which fails for a reason of its own
			}))
		p := core.NewService(core.Name("p"), core.Logger(coretest.Quiet()), core.StartTimeout(time.Second), requires(s))
		if err := p.Start(context.Background()); !errors.Is(err, core.ErrStartup) {
			t.Fatalf("p.Start: got %v, want ErrStartup", err)
		}
		<-s.Done()
		if got := s.State(); got != core.StateFailed || !errors.Is(s.Err(), refused) {
			t.Fatalf("s: got %v with Err %v, want failed with %v", got, s.Err(), refused)
		}
	})
}

func TestStopWaitsForARequirementSomeoneElseIsStopping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		flush := errors.New("s: flush failed")
		s := core.NewService(core.Name("s"), core.Logger(coretest.Quiet()),
			core.OnStop(func(context.Context) error {
				<-time.After(2 * time.Second)
				return flush
			}))
		p := core.NewService(core.Name("p"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), requires(s))
		coretest.MustStart(t, p)
		go func() { _ = s.Stop(context.Background()) }() // someone else stops s under p
		synctest.Wait()                                  // s is in its OnStop hook
		err := p.Stop(context.Background())
		if got := s.State(); got != core.StateTerminated {
			t.Errorf("s when p's Stop returned: got %v, want terminated (stopped last)", got)
		}
		if !errors.Is(err, flush) {
			t.Errorf("p.Stop: got %v, want the stop errors of s (%v)", err, flush)
		}
		<-s.Done()
	})
}

// slowStop is a service embedding *core.Base whose Stop takes a while to
// begin, as a user type adding its own Stop might.
type slowStop struct {
	*core.Base
	gate chan struct{}
}

func (s slowStop) Stop(ctx context.Context) error {
	<-s.gate
	return s.Base.Stop(ctx)
}

func TestSharedRequirementIsNeverStoppedUnderAParentThatAcquiredIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := slowStop{core.NewService(core.Name("s"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour)), make(chan struct{})}
		a := core.NewService(core.Name("a"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), requires(s))
		coretest.MustStart(t, a)
		stopped := make(chan error, 1)
		go func() { stopped <- a.Stop(context.Background()) }() // a releases s, its last holder
		synctest.Wait()
		b := core.NewService(core.Name("b"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), requires(s))
		errB := b.Start(context.Background())
		close(s.gate)
		if err := <-stopped; err != nil {
			t.Errorf("a.Stop: got %v, want nil", err)
		}
		synctest.Wait()
		if errB == nil && (s.State() != core.StateRunning || b.State() != core.StateRunning) {
			t.Errorf("b started on s, then s was stopped under it: s %v, b %v, want both running", s.State(), b.State())
		}
		if errB != nil && s.State().String() == "running" {
			t.Errorf("b failed to start (%v) while s is running", errB)
		}
		_ = b.Stop(context.Background())
	})
}

func TestParentLearnsOfARequirementFailureBeforeTheRequirementStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("s: connection lost")
		var p *core.Base
		var pState core.State
		var pWork error
		rec := &coretest.Recorder{}
		work := make(chan context.Context, 1)
		s := core.NewService(core.Name("s"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
			&unit{name: "conn", fn: func(context.Context) error {
				<-time.After(time.Second)
				return boom
			}},
			core.OnStop(func(context.Context) error { // s closes what p's work uses
				pState, pWork = p.State(), (<-work).Err()
				rec.Add("s stop")
				return nil
			}))
		p = core.NewService(core.Name("p"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), requires(s),
			&unit{name: "work", fn: func(ctx context.Context) error {
				work <- ctx
				<-ctx.Done()
				return nil
			}},
			core.OnStop(func(context.Context) error { rec.Add("p stop"); return nil }))
		coretest.MustStart(t, p)
		<-p.Done()
		coretest.WantEvents(t, rec.Events(), []string{"p stop", "s stop"})
		if pState == core.StateRunning || pWork == nil {
			t.Errorf("when s's OnStop ran: p was %v and its work's context error %v, want p stopping and its work cancelled", pState, pWork)
		}
		if !errors.Is(p.Err(), boom) {
			t.Errorf("p.Err: got %v, want %v", p.Err(), boom)
		}
	})
}

func TestMonitorFailsAParentWhoseForeignRequirementIsStopping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake("f", &coretest.Recorder{})
		p := core.NewService(core.Name("p"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Second), requires(f))
		coretest.MustStart(t, p)
		f.stopping()
		begin := time.Now()
		select {
		case <-p.Done():
		case <-time.After(time.Hour):
			t.Errorf("p still %v an hour after its requirement began to stop", p.State())
			_ = p.Stop(context.Background())
		}
		if got := time.Since(begin); got != time.Second {
			t.Errorf("p failed after %v, want 1s (one MonitorInterval)", got)
		}
		if err := p.Err(); err == nil || !strings.Contains(err.Error(), "requirement f is stopping") {
			t.Errorf("p.Err: got %v, want requirement f is stopping", err)
		}
	})
}

func TestRequirementFailingWhileItsParentStopsIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("s: lost its disk")
		trigger := make(chan struct{})
		s := core.NewService(core.Name("s"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
			&unit{name: "disk", fn: func(ctx context.Context) error {
				select {
				case <-trigger:
					return boom
				case <-ctx.Done():
					return nil
				}
			}})
		p := core.NewService(core.Name("p"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), requires(s),
			core.OnStop(func(context.Context) error {
				close(trigger) // s fails while p stops
				<-time.After(time.Second)
				return nil
			}))
		coretest.MustStart(t, p)
		if err := p.Stop(context.Background()); !errors.Is(err, boom) {
			t.Errorf("p.Stop: got %v, want the failure of s (%v)", err, boom)
		}
	})
}

// A requirement that fails between being Running and passing the parent's
// health check of it fails the parent's start with its cause, as it does
// at any other moment of the start: "s is stopping" alone would lose why.
func TestRequirementFailingDuringItsStartupCheckFailsTheParentWithItsCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("s: lost its disk")
		var host *core.Host
		var calls atomic.Int32
		s := core.NewService(core.Name("s"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
			&hostGrabber{h: &host},
			&check{name: "disk", fn: func(context.Context) error {
				if calls.Add(1) == 2 { // the parent's health check of s
					host.Fail(boom)
				}
				return nil
			}},
			&check{name: "net", fn: func(context.Context) error { return nil }})
		p := core.NewService(core.Name("p"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), requires(s))
		if err := p.Start(context.Background()); !errors.Is(err, boom) {
			t.Errorf("p.Start: got %v, want the failure of s (%v)", err, boom)
		}
		if err := p.Err(); !errors.Is(err, boom) {
			t.Errorf("p.Err: got %v, want the failure of s (%v)", err, boom)
		}
		<-s.Done()
	})
}

// A requirement stopped in order (its owner released it) while another
// parent that awaits it is already stopping is no failure of that parent's
// stop: the parent is going down anyway, and the requirement's stop waits
// for the parent's hooks. Only a requirement that fails is reported then.
func TestRequirementStoppedInOrderIsNoStopErrorOfAStoppingParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := core.NewService(core.Name("a"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour))
		owner := core.NewService(core.Name("owner"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), requires(a))
		inHook, release := make(chan struct{}), make(chan struct{})
		p := core.NewService(core.Name("p"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
			&req{svc: a, awaited: true},
			core.OnStop(func(context.Context) error {
				close(inHook)
				<-release
				return nil
			}))
		coretest.MustStart(t, owner)
		coretest.MustStart(t, p)
		pStop := make(chan error, 1)
		go func() { pStop <- p.Stop(context.Background()) }()
		<-inHook // p is stopping and still holds a
		ownerStop := make(chan error, 1)
		go func() { ownerStop <- owner.Stop(context.Background()) }()
		synctest.Wait() // owner released a; a's stop waits for p's hooks
		close(release)
		if err := <-pStop; err != nil {
			t.Errorf("p.Stop: got %v, want nil", err)
		}
		if err := <-ownerStop; err != nil {
			t.Errorf("owner.Stop: got %v, want nil", err)
		}
		if st, err := p.State(), p.Err(); st != core.StateTerminated || err != nil {
			t.Errorf("p: got %v, Err %v; want terminated, Err nil", st, err)
		}
	})
}

// embedsBase is a user type embedding *core.Base.
type embedsBase struct{ *core.Base }

// unusableBases are services whose *core.Base was not built by NewService.
func unusableBases() map[string]core.Service {
	return map[string]core.Service{
		"embedded nil *Base":  embedsBase{},
		"embedded zero Base":  embedsBase{&core.Base{}},
		"zero Base":           &core.Base{},
		"nil *Base":           (*core.Base)(nil),
		"pointer to embedder": &embedsBase{},
	}
}

func TestRequirementWithAnUnusableBaseIsAnErrorFromStart(t *testing.T) {
	for name, svc := range unusableBases() {
		t.Run(name, func(t *testing.T) {
			p := core.NewService(core.Name("p"), core.Logger(coretest.Quiet()), &req{name: "db", svc: svc})
			err := p.Start(t.Context())
			if !errors.Is(err, core.ErrStartup) || !errors.Is(err, core.ErrInvalidOption) {
				t.Fatalf("Start: got %v, want ErrStartup and ErrInvalidOption", err)
			}
			if !strings.Contains(err.Error(), "NewService") {
				t.Errorf("Start: got %q, want it to say to build the service with NewService", err)
			}
		})
	}
}

func TestLazyRequirementResolvingToAnUnusableBaseIsAnErrorFromStart(t *testing.T) {
	for name, svc := range unusableBases() {
		t.Run(name, func(t *testing.T) {
			p := core.NewService(core.Name("p"), core.Logger(coretest.Quiet()),
				&req{name: "db", resolve: func(context.Context) (core.Service, error) { return svc, nil }})
			if err := p.Start(t.Context()); !errors.Is(err, core.ErrStartup) {
				t.Fatalf("Start: got %v, want ErrStartup", err)
			}
		})
	}
}

func TestUnusableBaseMethodsDoNotPanic(t *testing.T) {
	for name, svc := range unusableBases() {
		t.Run(name, func(t *testing.T) {
			if err := core.Validate(svc); !errors.Is(err, core.ErrInvalidOption) {
				t.Errorf("Validate: got %v, want ErrInvalidOption", err)
			}
			if err := svc.Start(t.Context()); !errors.Is(err, core.ErrInvalidOption) {
				t.Errorf("Start: got %v, want ErrInvalidOption", err)
			}
			if err := svc.Healthcheck(t.Context()); !errors.Is(err, core.ErrUnhealthy) {
				t.Errorf("Healthcheck: got %v, want ErrUnhealthy", err)
			}
			<-svc.Done()
			if svc.State() != core.StateFailed || !errors.Is(svc.Err(), core.ErrInvalidOption) {
				t.Errorf("got state %v and Err %v, want failed with ErrInvalidOption", svc.State(), svc.Err())
			}
			_ = svc.Name()
			_ = svc.Stop(t.Context())
		})
	}
	if err := core.Validate(core.NewService(core.Logger(coretest.Quiet()))); err != nil {
		t.Errorf("Validate(NewService()): got %v, want nil", err)
	}
}

func TestStartReportsEveryRequirementThatFailsOnItsOwn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errA, errB := errors.New("a failed"), errors.New("b failed")
		bResolving, aFailed := make(chan struct{}), make(chan struct{})
		// a fails once b is resolving (else the start may skip b, which is
		// no failure of b's own), and b fails on its own while a's failure
		// aborts the start.
		a := &req{name: "a", resolve: func(context.Context) (core.Service, error) {
			<-bResolving
			close(aFailed)
			return nil, errA
		}}
		b := &req{name: "b", resolve: func(context.Context) (core.Service, error) {
			close(bResolving)
			<-aFailed
			return nil, errB
		}}
		s := core.NewService(core.Name("parent"), core.Logger(coretest.Quiet()), a, b)
		err := s.Start(context.Background())
		if !errors.Is(err, errA) || !errors.Is(err, errB) {
			t.Errorf("Start: got %v, want both requirements' failures", err)
		}
		if !errors.Is(s.Err(), errA) || !errors.Is(s.Err(), errB) {
			t.Errorf("Err: got %v, want both requirements' failures", s.Err())
		}
	})
}

// A shared requirement's start is not bound to the first parent that began
// it: when that parent's start is aborted (stopped, or failed by a sibling),
// the other parent waiting for the shared start still gets it (DESIGN deps:
// "The same service required by several parents starts once and stops after
// its last dependent").
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
				rec := &coretest.Recorder{}
				db := core.NewService(core.Name("db"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
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
				a := coretest.Node("a", rec, opts...)
				b := coretest.Node("b", rec, requires(db))
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
				coretest.MustStop(t, b)
			})
		})
	}
}

// An Await on a service that (directly or through its requirements) requires
// the awaiting service is a cycle, found at once, not a start that hangs
// until StartTimeout (DESIGN deps: "Cycles are an ErrCycle whose message
// shows the path").
func TestAwaitCycleIsDetected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		var x *core.Base
		y := coretest.Node("y", rec, core.StartTimeout(5*time.Second), &req{name: "x", resolve: func(context.Context) (core.Service, error) { return x, nil }})
		x = coretest.Node("x", rec, &req{svc: y, awaited: true}) // x awaits y; y requires x
		begin := time.Now()
		err := y.Start(t.Context())
		if !errors.Is(err, core.ErrCycle) {
			t.Fatalf("Start: got %v after %v, want ErrCycle at once", err, time.Since(begin))
		}
	})
}

// Stop during Start while a requirement is still starting cancels the
// requirement's start, rolls it back, and ends Terminated.
func TestStopWhileRequirementStarting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		db := coretest.Node("db", rec, core.OnStart(func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }))
		p := coretest.Node("p", rec, requires(db))
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
		coretest.WantEvents(t, rec.Events(), []string{"db start", "db stop"})
	})
}

// A requirement that fails after it is Running but before its parent is
// Running aborts the parent's start with the requirement's error.
func TestRequirementFailsDuringParentStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("db crashed")
		rec := &coretest.Recorder{}
		db := coretest.Node("db", rec, &unit{name: "u", fn: func(ctx context.Context) error {
			select {
			case <-time.After(time.Second):
				return boom
			case <-ctx.Done():
				return nil
			}
		}})
		p := coretest.Node("p", rec, requires(db), core.OnStart(func(ctx context.Context) error {
			<-ctx.Done() // a slow hook, cut by the requirement's failure
			return ctx.Err()
		}))
		err := p.Start(context.Background())
		if !errors.Is(err, core.ErrStartup) || !errors.Is(err, boom) || p.State() != core.StateFailed {
			t.Fatalf("Start: %v, state %v; want ErrStartup wrapping boom, failed", err, p.State())
		}
	})
}

// Dependencies() read concurrently with start and stop (-race).
func TestDependenciesDuringStart(t *testing.T) {
	rec := &coretest.Recorder{}
	a, b := coretest.Node("a", rec), coretest.Node("b", rec)
	p := coretest.Node("p", rec, requires(a), requires(b))
	stop := coretest.Repeat(func() {
		for _, d := range p.Dependencies() {
			if d.Service != nil {
				_ = d.Service.State()
			}
		}
		_ = p.Healthcheck(context.Background())
	})
	coretest.MustStart(t, p)
	coretest.MustStop(t, p)
	stop()
}

// Stop called on a parent p by a unit of its requirement s, with that unit's
// context, is not mistaken inside p's stop sequence for a call from one of
// s's own units: p reaches its final state only after s has stopped, and
// p's Stop returns s's stop error (DESIGN core/Stop: "stop owned
// requirements in reverse dependency order ... → Terminated", "Errors met
// while stopping are joined, returned, and logged: never swallowed";
// Base.Done: "closed ... after its whole stop sequence has finished").
func TestParentStoppedFromARequirementsUnitWaitsForTheRequirement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		flush := errors.New("s: flush failed")
		var p *core.Base
		s := core.NewService(core.Name("s"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
			core.OnStop(func(context.Context) error {
				<-time.After(time.Second) // s's stop takes 1s and fails
				return flush
			}),
			&unit{name: "job", fn: func(ctx context.Context) error {
				<-time.After(time.Second) // the job is finished: shut the application down
				_ = p.Stop(ctx)
				return nil
			}})
		p = coretest.Node("p", rec, requires(s))
		coretest.MustStart(t, p)
		<-p.Done()
		if st := s.State(); st != core.StateTerminated && st != core.StateFailed {
			t.Errorf("p is %v while its requirement s is still %v", p.State(), st)
		}
		if err := p.Stop(context.Background()); !errors.Is(err, flush) {
			t.Errorf("p's Stop: got %v, want s's stop error %q", err, flush)
		}
		<-s.Done()
	})
}

// A diamond is not a cycle. p starts x and y concurrently; both require the
// slow service s (not statically known, so the waits-for check runs): y
// waits for s's start begun by x. s starts once, stops after both.
func TestDiamondIsNotACycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		var s *core.Base
		t2 := slowNode("t", rec, time.Second)
		s = slowNode("s", rec, time.Second, requires(t2))
		x := coretest.Node("x", rec, late(&s))
		y := coretest.Node("y", rec, late(&s))
		p := coretest.Node("p", rec, requires(x), requires(y))
		begin := time.Now()
		coretest.MustStart(t, p)
		if d := time.Since(begin); d != 2*time.Second {
			t.Fatalf("start took %v, want 2s", d)
		}
		coretest.MustStop(t, p)
		got := rec.Events()
		if n := strings.Count(strings.Join(got, ","), "s start"); n != 1 {
			t.Fatalf("s started %d times: %q", n, got)
		}
		if got[len(got)-2] != "s stop" || got[len(got)-1] != "t stop" {
			t.Fatalf("s and t must stop last: %q", got)
		}
	})
}

// Unrelated roots sharing a slow service (through a chain) are not a cycle,
// and when one root's start fails and releases its hold, the shared service
// keeps running for the other (holders).
func TestUnrelatedParentsShareAStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		s := slowNode("s", rec, 2*time.Second)
		a := coretest.Node("a", rec, late(&s))
		r1 := coretest.Node("r1", rec, requires(a), &req{name: "broken", resolve: func(context.Context) (core.Service, error) {
			<-time.After(3 * time.Second)
			return nil, errors.New("broken")
		}})
		r2 := coretest.Node("r2", rec, late(&s))
		var wg sync.WaitGroup
		var err1, err2 error
		wg.Go(func() { err1 = r1.Start(context.Background()) })
		synctest.Wait() // r1 -> a -> s: s is starting
		wg.Go(func() { err2 = r2.Start(context.Background()) })
		wg.Wait()
		if err1 == nil || errors.Is(err1, core.ErrCycle) {
			t.Fatalf("r1: got %v, want its broken requirement", err1)
		}
		if err2 != nil {
			t.Fatalf("r2: %v", err2)
		}
		if s.State() != core.StateRunning || a.State() != core.StateTerminated {
			t.Fatalf("s %v (want running, r2 holds it), a %v (want terminated)", s.State(), a.State())
		}
		coretest.MustStop(t, r2)
		if s.State() != core.StateTerminated {
			t.Fatalf("s %v after its last holder stopped", s.State())
		}
	})
}

// Two services whose starts form a cycle, each started by its own root, find
// the cycle and roll back without deadlocking, although each one's rollback
// releases the other's last hold and stops it: the roots release their holds
// first, then a's and b's rollbacks stop each other. The log gates force
// that interleaving (DESIGN deps: "Cycles are an ErrCycle"; core/Stop: the
// stop sequence ends, bounded by StopTimeout). A deadlock panics the bubble,
// so this test is the last of the file.
func TestTwoRollbacksReleasingEachOtherDoNotDeadlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		ga, gb := requires(slowNode("ga", rec, time.Second)), requires(slowNode("gb", rec, time.Second))
		gateA, gateB := newGate("service stopping"), newGate("service stopping")
		var a, b *core.Base
		a = core.NewService(core.Name("a"), core.Logger(slog.New(gateA)), core.MonitorInterval(time.Hour),
			ga, &req{name: "b", after: []core.Requirement{ga}, resolve: func(context.Context) (core.Service, error) { return b, nil }})
		b = core.NewService(core.Name("b"), core.Logger(slog.New(gateB)), core.MonitorInterval(time.Hour),
			gb, &req{name: "a", after: []core.Requirement{gb}, resolve: func(context.Context) (core.Service, error) { return a, nil }})
		r1, r2 := coretest.Node("r1", rec, requires(a)), coretest.Node("r2", rec, requires(b))
		var wg sync.WaitGroup
		var err1, err2 error
		wg.Go(func() { err1 = r1.Start(context.Background()) })
		wg.Go(func() { err2 = r2.Start(context.Background()) })
		// Both roots failed and released their holds; they wait for a and b
		// (a root's rollback ends only once its requirements have stopped),
		// which are about to roll back, releasing each other.
		<-gateA.hit
		<-gateB.hit
		synctest.Wait()
		close(gateA.gate)
		close(gateB.gate)
		select {
		case <-a.Done():
			<-b.Done()
		case <-time.After(time.Hour):
			t.Errorf("a (%v) and b (%v) never finish their rollbacks: each waits in Stop for the other", a.State(), b.State())
		}
		wg.Wait()
		if !errors.Is(err1, core.ErrCycle) || !errors.Is(err2, core.ErrCycle) {
			t.Fatalf("roots: got %v and %v, want ErrCycle", err1, err2)
		}
	})
}

// leaf is a service whose start runs no user code (one task, nothing else),
// as deps.Requires starts them on the parent's goroutine: its task blocks
// until the stop and counts itself in and out.
func leaf(name string, in, out *atomic.Int32, opts ...task.Option) *core.Base {
	return core.NewService(core.Name(name), core.Logger(coretest.Quiet()),
		task.Func("work", func(ctx context.Context) error {
			in.Add(1)
			<-ctx.Done()
			out.Add(1)
			return nil
		}, append([]task.Option{task.Once()}, opts...)...))
}

// Requirements whose start runs no user code start and stop as any other:
// every one Running once the parent's Start returns, with its task begun,
// and stopped with its task returned once the parent's Stop has; also next
// to a requirement that comes After one of them, which starts in a
// goroutine of its own once that one is Running.
func TestRequirementsWithoutUserCodeStartAndStopWithTheirParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var in, out atomic.Int32
		a, b, c := leaf("a", &in, &out), leaf("b", &in, &out), leaf("c", &in, &out)
		ra := deps.Requires(a)
		p := core.NewService(core.Name("p"), core.Logger(coretest.Quiet()),
			ra, deps.Requires(b), deps.Requires(c, deps.After(ra)))
		coretest.MustStart(t, p)
		synctest.Wait()
		for _, s := range []*core.Base{a, b, c} {
			if got := s.State(); got != core.StateRunning {
				t.Fatalf("%s after the parent's Start: got %v, want running", s.Name(), got)
			}
		}
		if got := in.Load(); got != 3 {
			t.Fatalf("tasks begun: got %d, want 3", got)
		}
		coretest.MustStop(t, p)
		for _, s := range []*core.Base{a, b, c} {
			if got := s.State(); got != core.StateTerminated {
				t.Fatalf("%s after the parent's Stop: got %v, want terminated", s.Name(), got)
			}
		}
		if got := out.Load(); got != 3 {
			t.Fatalf("tasks returned once Stop returned: got %d, want 3", got)
		}
	})
}

// A requirement without user code whose task fails at once fails its
// parent with that failure, whether the parent's start sees it or the
// parent is Running by then, and nothing of either is left running (the
// other requirement is stopped, or was never started).
func TestRequirementWithoutUserCodeWhoseTaskFailsFailsItsParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		var in, out atomic.Int32
		failing := core.NewService(core.Name("failing"), core.Logger(coretest.Quiet()),
			task.Func("work", func(context.Context) error { return boom }, task.Once()))
		other := leaf("other", &in, &out)
		p := core.NewService(core.Name("p"), core.Logger(coretest.Quiet()), deps.Requires(failing), deps.Requires(other))
		if err := p.Start(context.Background()); err != nil && !errors.Is(err, boom) {
			t.Fatalf("Start: got %v, want nil or an error wrapping boom", err)
		}
		<-p.Done()
		if err := p.Err(); !errors.Is(err, boom) {
			t.Fatalf("parent's Err: got %v, want one wrapping boom", err)
		}
		<-failing.Done()
		if got := failing.State(); got != core.StateFailed {
			t.Fatalf("failing: got %v, want failed", got)
		}
		// The parent's start may fail before it started other: other is
		// then New (never started, nothing of it running), else Terminated.
		if other.State() != core.StateNew {
			<-other.Done()
			if got := other.State(); got != core.StateTerminated {
				t.Fatalf("other: got %v, want terminated (or new: never started)", got)
			}
		}
		if in.Load() != out.Load() {
			t.Fatalf("tasks: %d begun, %d returned, want every one returned", in.Load(), out.Load())
		}
	})
}

// The leaves a parent releases stop concurrently: leaves whose units are
// stuck each take their own StopTimeout at the same time, not one after the
// other, and the leaves whose units end are stopped meanwhile.
func TestReleasedLeavesStopConcurrently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		var opts []core.Option
		var leaves []*core.Base
		for i := range 6 {
			fn := func(ctx context.Context) error { <-ctx.Done(); return nil }
			if i%2 == 0 {
				fn = func(context.Context) error { <-release; return nil }
			}
			leaf := core.NewService(core.Name(fmt.Sprintf("leaf%d", i)), core.Logger(coretest.Quiet()),
				core.StopTimeout(2*time.Second), &unit{name: "work", fn: fn})
			leaves = append(leaves, leaf)
			opts = append(opts, requires(leaf))
		}
		parent := core.NewService(append(opts, core.Name("parent"), core.Logger(coretest.Quiet()))...)
		coretest.MustStart(t, parent)
		begin := time.Now()
		err := parent.Stop(context.Background())
		if d := time.Since(begin); d != 2*time.Second {
			t.Errorf("Stop took %v, want one 2s StopTimeout of the leaves, run concurrently", d)
		}
		if !errors.Is(err, core.ErrStopTimeout) {
			t.Errorf("Stop: got %v, want it to match ErrStopTimeout", err)
		}
		for i, leaf := range leaves {
			select {
			case <-leaf.Done():
			default:
				t.Fatalf("%s: got Done open after the parent's Stop, want closed", leaf.Name())
			}
			if got := leaf.State(); got != core.StateTerminated {
				t.Errorf("%s: got state %v, want terminated", leaf.Name(), got)
			}
			if stuck := i%2 == 0; stuck != strings.Contains(fmt.Sprint(err), leaf.Name()+":") {
				t.Errorf("Stop: got %v, want a stop timeout named for %s: %v", err, leaf.Name(), stuck)
			}
		}
	})
}
