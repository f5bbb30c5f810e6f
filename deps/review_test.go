package deps_test

// Tests from an adversarial review. Those marked "Regression" failed
// before the fix of the bug they describe; "coverage:" ones pinned behaviour
// that was already right.

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
)

// Regression: a cycle through Lazy requirements of two roots started concurrently
// is not found: each root builds the other while the other is Starting, and
// acquire (core/require.go) then waits in awaitRunning; checkCycle only looks
// at the chain of the current goroutine's start (the ctx path), and the
// static pre-check skips Lazy. Both starts deadlock until StartTimeout and
// fail with DeadlineExceeded. Violates DESIGN deps: "Cycles are an ErrCycle
// whose message shows the path" (and core's "Cycles through lazily built
// services are found as they are built").
func TestLazyCycleAcrossConcurrentRoots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		slow := func(name string) *core.Base { // makes both roots be Starting when they build each other
			return core.NewService(core.Name(name), core.Logger(quiet), core.MonitorInterval(time.Hour),
				core.OnStart(func(context.Context) error { <-time.After(time.Second); return nil }))
		}
		var a, b *core.Base
		ga, gb := deps.Requires(slow("ga")), deps.Requires(slow("gb"))
		a = node("a", rec, core.StartTimeout(10*time.Second), ga,
			deps.Lazy(func(context.Context) (*core.Base, error) { return b, nil }, deps.After(ga)))
		b = node("b", rec, core.StartTimeout(10*time.Second), gb,
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

// Regression: a panic in a Lazy builder (user code run by the library) crashes the
// whole process: Resolve runs in startRequirements' wg.Go goroutines
// (core/require.go) with no recover, so neither the library nor the caller
// of Start can turn it into an error. Task workers and monitor checks are
// recovered into *core.PanicError; start steps are not. Violates DESIGN
// core/Start: "Any failure ... rolls back everything started so far ... and
// returns an error matching ErrStartup", and core/doc.go: "panics are
// *PanicError values with the stack".
func TestLazyPanicIsRecovered(t *testing.T) {
	rec := &recorder{}
	p := node("p", rec, deps.Lazy(func(context.Context) (*core.Base, error) {
		panic("builder bug")
	}, deps.Name("cache")))
	err := p.Start(context.Background())
	var pe *core.PanicError
	if !errors.Is(err, core.ErrStartup) || !errors.As(err, &pe) || pe.Value != "builder bug" {
		t.Fatalf("Start: got %v, want ErrStartup wrapping a *core.PanicError", err)
	}
	if !strings.Contains(err.Error(), "requirement cache") {
		t.Fatalf("Start: %q does not name the requirement", err)
	}
	wantState(t, p, core.StateFailed)
}

// coverage: a Lazy service built and started, whose parent's start then
// fails (in an OnStart hook), is stopped by the rollback.
func TestLazyStoppedWhenParentStartFails(t *testing.T) {
	rec := &recorder{}
	boom := errors.New("hook failed")
	lazy := deps.Lazy(func(context.Context) (*core.Base, error) { return node("cache", rec), nil })
	p := node("p", rec, lazy, core.OnStart(func(context.Context) error { return boom }))
	if err := p.Start(t.Context()); !errors.Is(err, boom) {
		t.Fatalf("Start: %v", err)
	}
	wantState(t, lazy.Get(), core.StateTerminated)
	wantEvents(t, rec.get(), []string{"cache start", "p start", "p stop", "cache stop"})
}

// coverage: an Await on a service that is itself Starting waits for its
// start to end: success lets the parent start; failure fails it with the
// awaited service's cause.
func TestAwaitStartingService(t *testing.T) {
	for _, fail := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			rec := &recorder{}
			boom := errors.New("ext start failed")
			ext := node("ext", rec, core.OnStart(func(context.Context) error {
				<-time.After(time.Second)
				if fail {
					return boom
				}
				return nil
			}))
			p := node("p", rec, deps.Await(ext))
			go ext.Start(context.Background())
			synctest.Wait() // ext is Starting
			wantState(t, ext, core.StateStarting)
			err := p.Start(context.Background())
			if fail != (err != nil) || fail && !errors.Is(err, boom) {
				t.Fatalf("fail=%v: Start p: %v", fail, err)
			}
			if !fail {
				mustStop(t, p)
				wantState(t, ext, core.StateRunning)
				mustStop(t, ext)
			}
		})
	}
}

// coverage: the same service awaited by one parent and required by another:
// the requiring parent starts and stops it; the awaiting one never stops it
// and fails when it goes away.
func TestAwaitedAndRequired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		db := node("db", rec)
		watcher := node("watcher", rec, deps.Await(db))
		owner := node("owner", rec, deps.Requires(db))
		wErr := make(chan error, 1)
		go func() { wErr <- watcher.Start(context.Background()) }()
		synctest.Wait() // watcher waits for db
		mustStart(t, owner)
		if err := <-wErr; err != nil {
			t.Fatalf("watcher: %v", err)
		}
		mustStop(t, watcher)
		wantState(t, db, core.StateRunning) // the awaiting parent never stops it
		mustStop(t, owner)
		wantState(t, db, core.StateTerminated)
		w2 := node("w2", rec, deps.Await(db))
		if err := w2.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "terminated") {
			t.Fatalf("await of a terminated service: %v", err)
		}
	})
}

// coverage: Graph and Dependencies while the tree starts and stops (-race).
func TestGraphDuringStart(t *testing.T) {
	rec := &recorder{}
	db := newStore("db", rec)
	rdb := deps.Requires(db)
	p := node("p", rec, rdb, deps.Lazy(func(context.Context) (*core.Base, error) { return node("cache", rec), nil }, deps.After(rdb)))
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				_ = deps.Graph(p)
			}
		}
	})
	mustStart(t, p)
	if g := deps.Graph(p); !strings.Contains(g, "cache") || strings.Contains(g, "not built") {
		t.Errorf("graph after start:\n%s", g)
	}
	mustStop(t, p)
	close(stop)
	wg.Wait()
}
