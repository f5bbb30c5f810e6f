package deps_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/internal/coretest"
)

func wantCycle(t *testing.T, err error, path string) {
	t.Helper()
	var ce *core.CycleError
	if !errors.Is(err, core.ErrStartup) || !errors.As(err, &ce) || !errors.Is(err, core.ErrCycle) {
		t.Fatalf("Start: got %v, want ErrStartup wrapping a *CycleError", err)
	}
	if got := strings.Join(ce.Path, " -> "); got != path {
		t.Fatalf("cycle: got %q, want %q", got, path)
	}
	if !strings.Contains(err.Error(), "dependency cycle: "+path) {
		t.Fatalf("message %q does not show the path %q", err, path)
	}
}

func TestCycleLengths(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { // a deadlock would panic the bubble
		rec := &coretest.Recorder{}

		var a *core.Base
		a = coretest.Node("a", rec, deps.Lazy(func(context.Context) (*core.Base, error) { return a, nil }))
		wantCycle(t, a.Start(t.Context()), "a -> a")

		var b *core.Base
		c := coretest.Node("c", rec, deps.Lazy(func(context.Context) (*core.Base, error) { return b, nil }))
		b = coretest.Node("b", rec, deps.Requires(c))
		wantCycle(t, b.Start(t.Context()), "b -> c -> b")

		var d *core.Base
		f := coretest.Node("f", rec, deps.Lazy(func(context.Context) (*core.Base, error) { return d, nil }))
		e := coretest.Node("e", rec, deps.Requires(f))
		d = coretest.Node("d", rec, deps.Requires(e))
		wantCycle(t, d.Start(t.Context()), "d -> e -> f -> d")

		coretest.WantEvents(t, rec.Events(), nil) // no service of a cycle ran its hooks
		for _, s := range []*core.Base{a, b, c, d, e, f} {
			if s.Running() {
				t.Fatalf("%s left running", s.Name())
			}
		}
	})
}

func TestStaticCycleAcrossConcurrentRoots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// x and y require each other: possible with types embedding *core.Base,
		// whose Base is set after the requirement is built.
		rec := &coretest.Recorder{}
		x, y := &Store{}, &Store{}
		x.Base = coretest.Node("x", rec, deps.Requires(y))
		y.Base = coretest.Node("y", rec, deps.Requires(x))
		r1 := coretest.Node("r1", rec, deps.Requires(x))
		r2 := coretest.Node("r2", rec, deps.Requires(y))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		begin := time.Now()
		for i, r := range []*core.Base{r1, r2} {
			wg.Go(func() { errs[i] = r.Start(context.Background()) })
		}
		wg.Wait()
		if d := time.Since(begin); d != 0 {
			t.Fatalf("cycle found after %v, want at once", d)
		}
		wantCycle(t, errs[0], "x -> y -> x")
		wantCycle(t, errs[1], "y -> x -> y")
		coretest.WantEvents(t, rec.Events(), nil)
	})
}

// After alone cannot form a cycle: After takes requirements that already
// exist. A cycle through After needs Lazy, as here: the lazy requirement,
// built after x, turns out to be the parent itself.
func TestCycleThroughLazyAndAfter(t *testing.T) {
	rec := &coretest.Recorder{}
	x := coretest.Node("x", rec)
	rx := deps.Requires(x)
	var p *core.Base
	p = coretest.Node("p", rec, rx, deps.Lazy(func(context.Context) (*core.Base, error) { return p, nil }, deps.After(rx)))
	wantCycle(t, p.Start(t.Context()), "p -> p")
	coretest.WantEvents(t, rec.Events(), []string{"x start", "x stop"}) // x, started first, was rolled back
}

// p builds y (Lazy), then starts x After it; y awaits x: y waits for x,
// whose start waits (After) for y. The static walk cannot see it (y is
// not known before it is built) and neither can the waits (x is New,
// waiting for nothing): once y is built, the walk must include it.
func TestCycleThroughLazyAfterAndAwait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		x := coretest.Node("x", rec)
		var y *core.Base
		ly := deps.Lazy(func(context.Context) (*core.Base, error) {
			y = coretest.Node("y", rec, deps.Await(x))
			return y, nil
		})
		p := coretest.Node("p", rec, core.StartTimeout(5*time.Second), ly, deps.Requires(x, deps.After(ly)))
		begin := time.Now()
		err := p.Start(context.Background())
		if !errors.Is(err, core.ErrCycle) || time.Since(begin) != 0 {
			t.Fatalf("Start: got %v after %v, want ErrCycle at once", err, time.Since(begin))
		}
		wantCycle(t, err, "y -> x -> y")
		coretest.WantEvents(t, rec.Events(), nil)
		for _, s := range []*core.Base{p, x, y} {
			if s.Running() {
				t.Fatalf("%s left running", s.Name())
			}
		}
	})
}

// p starts y After x, and x requires y: x starts y itself, so nothing
// waits for p's After and there is no cycle, whether x is known before
// Start or built lazily.
func TestAfterOnServiceStartedByItsRequirerIsNoCycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		y := coretest.Node("y", rec)
		x := coretest.Node("x", rec, deps.Requires(y))
		rx := deps.Requires(x)
		p := coretest.Node("p", rec, core.StartTimeout(5*time.Second), rx, deps.Requires(y, deps.After(rx)))
		if err := p.Start(context.Background()); err != nil {
			t.Fatalf("Start with a static x: got %v, want nil", err)
		}
		coretest.MustStop(t, p)

		y2 := coretest.Node("y2", rec)
		lx := deps.Lazy(func(context.Context) (*core.Base, error) { return coretest.Node("x2", rec, deps.Requires(y2)), nil })
		p2 := coretest.Node("p2", rec, core.StartTimeout(5*time.Second), lx, deps.Requires(y2, deps.After(lx)))
		if err := p2.Start(context.Background()); err != nil {
			t.Fatalf("Start with a lazy x: got %v, want nil", err)
		}
		coretest.MustStop(t, p2)
	})
}

// A cycle through Lazy requirements of two roots started concurrently (each
// root builds the other while the other is Starting) is an ErrCycle, not two
// starts that hang until StartTimeout (DESIGN deps: "Cycles are an ErrCycle
// whose message shows the path"; core: "Cycles through lazily built services
// are found as they are built").
func TestLazyCycleAcrossConcurrentRoots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		slow := func(name string) *core.Base { // makes both roots be Starting when they build each other
			return core.NewService(core.Name(name), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
				core.OnStart(func(context.Context) error { <-time.After(time.Second); return nil }))
		}
		var a, b *core.Base
		ga, gb := deps.Requires(slow("ga")), deps.Requires(slow("gb"))
		a = coretest.Node("a", rec, core.StartTimeout(10*time.Second), ga,
			deps.Lazy(func(context.Context) (*core.Base, error) { return b, nil }, deps.After(ga)))
		b = coretest.Node("b", rec, core.StartTimeout(10*time.Second), gb,
			deps.Lazy(func(context.Context) (*core.Base, error) { return a, nil }, deps.After(gb)))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		begin := time.Now()
		for i, r := range []*core.Base{a, b} {
			wg.Go(func() { errs[i] = r.Start(context.Background()) })
		}
		wg.Wait()
		for i, err := range errs {
			if !errors.Is(err, core.ErrCycle) {
				t.Errorf("root %d: got %v after %v, want ErrCycle when the cycle is built (1s)", i, err, time.Since(begin))
			}
		}
	})
}

// A static cycle below a service, not through it, is reported under the
// service's own requirement that leads to it: b requires c, and c and d
// require each other, so b's start fails in "requirement c", not in
// "requirement d" (core's StartupError: Part names "the part that failed" of
// the service being started).
func TestCycleBelowAServiceIsNamedAfterItsOwnRequirement(t *testing.T) {
	rec := &coretest.Recorder{}
	c, d := &Store{}, &Store{}
	c.Base = coretest.Node("c", rec, deps.Requires(d))
	d.Base = coretest.Node("d", rec, deps.Requires(c))
	b := coretest.Node("b", rec, deps.Requires(c))
	err := b.Start(t.Context())
	wantCycle(t, err, "c -> d -> c")
	var se *core.StartupError
	if !errors.As(err, &se) || se.Service != "b" || se.Part != "requirement c" {
		t.Fatalf("Start: got %v, want part %q of b (its requirement on the cycle)", err, "requirement c")
	}
	coretest.WantEvents(t, rec.Events(), nil)
}

// A cycle closed by an After edge is found, not a start that hangs until
// StartTimeout: p starts y only after x (deps.After); x requires z; z awaits
// y (DESIGN deps: "Cycles are an ErrCycle whose message shows the path";
// StaticRequirement: "a cycle among them is a *CycleError").
func TestCycleClosedByAnAfterEdgeIsFound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		y := coretest.Node("y", rec)
		z := coretest.Node("z", rec, deps.Await(y))
		x := coretest.Node("x", rec, deps.Requires(z))
		rx := deps.Requires(x)
		p := coretest.Node("p", rec, core.StartTimeout(5*time.Second), rx, deps.Requires(y, deps.After(rx)))
		begin := time.Now()
		err := p.Start(context.Background())
		if !errors.Is(err, core.ErrCycle) {
			t.Fatalf("Start: got %v after %v, want ErrCycle at once", err, time.Since(begin))
		}
	})
}

// A cycle that only the waits between concurrent starts show is found when
// it closes, not at StartTimeout: p's OnStart hook starts q, which requires
// s; s, started by another root r, builds p (Lazy) and waits for it to be
// Running. No requirement leads from p to q, so no walk of the
// requirements sees the cycle: q waits for s, which waits for p, whose
// start is starting q.
func TestCycleThroughWaitingStartsIsFound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		const timeout = time.Minute
		var p *core.Base
		s := coretest.Node("s", rec, core.StartTimeout(timeout),
			deps.Lazy(func(context.Context) (*core.Base, error) { return p, nil }))
		q := coretest.Node("q", rec, core.StartTimeout(timeout), deps.Requires(s))
		proceed := make(chan struct{})
		p = coretest.Node("p", rec, core.StartTimeout(timeout), core.OnStart(func(ctx context.Context) error {
			<-proceed // s is waiting for p by now
			return q.Start(ctx)
		}))
		r := coretest.Node("r", rec, core.StartTimeout(timeout), deps.Requires(s))
		var pErr, rErr error
		var wg sync.WaitGroup
		wg.Go(func() { pErr = p.Start(context.Background()) })
		synctest.Wait() // p's hook is waiting for proceed
		wg.Go(func() { rErr = r.Start(context.Background()) })
		synctest.Wait() // s waits for p
		begin := time.Now()
		close(proceed)
		wg.Wait()
		if took := time.Since(begin); took != 0 {
			t.Fatalf("cycle found after %v, want at once (StartTimeout %v)", took, timeout)
		}
		wantCycle(t, pErr, "p -> q -> s -> p")
		if !errors.Is(rErr, core.ErrStartup) {
			t.Fatalf("r.Start: got %v, want ErrStartup", rErr)
		}
		for _, svc := range []*core.Base{p, q, r, s} {
			if svc.Running() {
				t.Fatalf("%s left running", svc.Name())
			}
		}
	})
}
