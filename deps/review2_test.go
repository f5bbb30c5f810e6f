package deps_test

// Tests from a second adversarial review. Those marked "Regression" failed
// before the fix of the bug they describe; "coverage:" ones pinned behaviour
// that was already right.

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
)

// Regression: a static cycle below a service, not through it, is reported under a
// part that is not one of the service's requirements. b requires c, and c
// and d require each other: staticCycle(b) returns "c -> d -> c" and
// startRequirements names the part "requirement " + path[1]
// (core/require.go:107), i.e. "requirement d". Violates core's StartupError
// contract: Part names "the part that failed" of the service being started
// ("requirement db"); b has no requirement d.
func TestR2StaticCycleBelowNamesOwnRequirement(t *testing.T) {
	rec := &recorder{}
	c, d := &Store{}, &Store{}
	c.Base = node("c", rec, deps.Requires(d))
	d.Base = node("d", rec, deps.Requires(c))
	b := node("b", rec, deps.Requires(c))
	err := b.Start(t.Context())
	wantCycle(t, err, "c -> d -> c")
	var se *core.StartupError
	if !errors.As(err, &se) || se.Service != "b" || se.Part != "requirement c" {
		t.Fatalf("Start: got %v, want part %q of b (its requirement on the cycle)", err, "requirement c")
	}
	wantEvents(t, rec.get(), nil)
}

// Regression: a cycle closed by an After edge is not found and the start hangs until
// StartTimeout. p starts y only after x (deps.After); x requires z; z awaits y:
// y never starts. staticCycle (core/require.go:459-489) follows Requires and
// Await edges but not After, and the waits-for check cannot see it either (y
// is New, waiting for nothing). Violates DESIGN deps: "Cycles are an ErrCycle
// whose message shows the path"; StaticRequirement: "a cycle among them is a
// *CycleError".
func TestR2CycleThroughAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		y := node("y", rec)
		z := node("z", rec, deps.Await(y))
		x := node("x", rec, deps.Requires(z))
		rx := deps.Requires(x)
		p := node("p", rec, core.StartTimeout(5*time.Second), rx, deps.Requires(y, deps.After(rx)))
		begin := time.Now()
		err := p.Start(context.Background())
		if !errors.Is(err, core.ErrCycle) {
			t.Fatalf("Start: got %v after %v, want ErrCycle at once", err, time.Since(begin))
		}
	})
}

// coverage: concurrent roots sharing a lazily built, slow dependency through
// typed requirements: no false cycle, one start, stopped after the last root.
func TestR2SharedLazyAcrossRoots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		db := newStore("db", rec, core.OnStart(func(context.Context) error { <-time.After(time.Second); return nil }))
		lazyDB := func() *deps.Requirement[*Store] {
			return deps.Lazy(func(context.Context) (*Store, error) { return db, nil }, deps.Name("db"))
		}
		x := node("x", rec, lazyDB())
		y := node("y", rec, lazyDB())
		r1 := node("r1", rec, deps.Requires(x), deps.Requires(y))
		r2 := node("r2", rec, lazyDB())
		errs := make(chan error, 2)
		go func() { errs <- r1.Start(context.Background()) }()
		go func() { errs <- r2.Start(context.Background()) }()
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("Start: %v", err)
			}
		}
		mustStop(t, r1)
		wantState(t, db, core.StateRunning)
		mustStop(t, r2)
		wantState(t, db, core.StateTerminated)
	})
}
