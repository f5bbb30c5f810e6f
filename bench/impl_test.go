package bench_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/coreservice/coreservice/bench"
)

// Each implementation must do the work the benchmarks say it does; these
// tests pin it at small sizes, under -race, for every implementation.

func TestGroupBeginsEveryUnitAndStopsEveryTask(t *testing.T) {
	for _, impl := range bench.Impls() {
		for _, shape := range []bench.Shape{bench.Flat, bench.Tree} {
			t.Run(impl.Name()+"/"+string(shape), func(t *testing.T) {
				lifecycle(t, impl, shape, 123, bench.Spec{}) // checks every task returned
			})
		}
	}
}

func TestGroupRunsPeriodicTasksAndChecks(t *testing.T) {
	spec := bench.Spec{Period: 5 * time.Millisecond, Check: true}
	for _, impl := range bench.Impls() {
		t.Run(impl.Name(), func(t *testing.T) {
			const n = 20
			p := bench.NewProbe(n, spec)
			g, err := impl.Group(bench.Tree, names(n), spec, p)
			if err != nil {
				t.Fatal(err)
			}
			if err := g.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := p.WaitReady(readyTimeout); err != nil {
				t.Fatal(err)
			}
			if got := p.Runs(); got < n {
				t.Errorf("periodic runs once ready: got %d, want at least %d", got, n)
			}
			if got := p.Checks(); got < n {
				t.Errorf("check runs once ready: got %d, want at least %d", got, n)
			}
			if err := g.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestTreeParentsAreTenWide(t *testing.T) {
	for i, want := range map[int]int{1: 0, 10: 0, 11: 1, 20: 1, 21: 2, 110: 10, 111: 11} {
		if got := bench.Tree.Parent(i); got != want {
			t.Errorf("Tree.Parent(%d): got %d, want %d", i, got, want)
		}
		if got := bench.Flat.Parent(i); got != 0 {
			t.Errorf("Flat.Parent(%d): got %d, want 0", i, got)
		}
	}
}

// startChain builds impl's chain of depth dependents, starts it, and
// waits until every task of it runs.
func startChain(t *testing.T, impl bench.Impl, depth int) (bench.Chain, *bench.Probe) {
	t.Helper()
	p := bench.NewProbe(depth+1, bench.Spec{})
	c, err := impl.Chain(depth, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitReady(readyTimeout); err != nil {
		t.Fatal(err)
	}
	return c, p
}

func TestChainFailureReachesTheTop(t *testing.T) {
	for _, impl := range bench.Impls() {
		t.Run(impl.Name(), func(t *testing.T) {
			const depth = 7
			c, p := startChain(t, impl, depth)
			select {
			case <-c.Done():
				t.Fatal("top done before the failure")
			default:
			}
			c.Fail()
			select {
			case <-c.Done():
			case <-time.After(time.Minute):
				t.Fatal("top not done a minute after the failure")
			}
			if err := c.Err(); !errors.Is(err, bench.ErrInjected) {
				t.Errorf("top's error: got %v, want one matching %v", err, bench.ErrInjected)
			}
			if err := c.Stop(context.Background()); err != nil && !errors.Is(err, bench.ErrInjected) {
				t.Errorf("Stop after the failure: got %v, want nil or %v", err, bench.ErrInjected)
			}
			if got := p.Exited(); got != depth+1 {
				t.Errorf("tasks returned: got %d, want %d", got, depth+1)
			}
		})
	}
}

func TestChainStopsCleanlyWithoutFailure(t *testing.T) {
	for _, impl := range bench.Impls() {
		t.Run(impl.Name(), func(t *testing.T) {
			const depth = 4
			c, p := startChain(t, impl, depth)
			if err := c.Stop(context.Background()); err != nil {
				t.Fatalf("Stop: got %v, want nil", err)
			}
			<-c.Done()
			if err := c.Err(); errors.Is(err, bench.ErrInjected) {
				t.Errorf("top's error after a clean stop: got %v, want no injected failure", err)
			}
			if got := p.Exited(); got != depth+1 {
				t.Errorf("tasks returned: got %d, want %d", got, depth+1)
			}
		})
	}
}

func TestSharedStartsFirstAndStopsLast(t *testing.T) {
	for _, impl := range bench.Impls() {
		t.Run(impl.Name(), func(t *testing.T) {
			const n = 50
			p := bench.NewProbe(n+1, bench.Spec{})
			g, err := impl.Shared(names(n), p)
			if err != nil {
				t.Fatal(err)
			}
			if err := g.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := p.WaitReady(readyTimeout); err != nil {
				t.Fatal(err)
			}
			if err := g.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			before, exited := p.SharedOrder()
			if before != 0 {
				t.Errorf("parents begun before the shared service had started: got %d, want 0", before)
			}
			if exited != n {
				t.Errorf("parents returned before the shared service did: got %d, want %d", exited, n)
			}
			if got := p.Exited(); got != n+1 {
				t.Errorf("tasks returned: got %d, want %d", got, n+1)
			}
		})
	}
}
