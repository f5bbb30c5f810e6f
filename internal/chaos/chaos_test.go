package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/task"
)

// TestChaosRounds runs seeded chaos rounds: the quick mode by default, a
// soak with CHAOS_ROUNDS, CHAOS_DURATION or -chaos.duration, one round with
// CHAOS_SEED (and CHAOS_SIZE).
func TestChaosRounds(t *testing.T) {
	cfg := readConfig(t)
	st := &stats{faults: map[string]int{}}
	quick := !cfg.fixed && cfg.rounds == 0 && cfg.duration == 0
	var deadline time.Time
	if cfg.duration > 0 {
		deadline = time.Now().Add(cfg.duration)
	}
	t.Logf("chaos: first seed %d (CHAOS_SEED=%d reproduces round 0; round i uses seed+i)", cfg.seed, cfg.seed)
	failed := 0
	for i := 0; ; i++ {
		switch {
		case cfg.fixed && i == 1:
		case quick && i == len(quickSizes):
		case cfg.rounds > 0 && i == cfg.rounds:
		case cfg.duration > 0 && cfg.rounds == 0 && !time.Now().Before(deadline):
		default:
			p := plan{seed: cfg.seed + uint64(i), size: cfg.sizeOf(i, quick)}
			if !runRound(t, p, st) {
				if failed++; failed == 5 {
					t.Logf("chaos: 5 failed rounds, giving up; %s", st)
					return
				}
			}
			continue
		}
		break
	}
	st.mu.Lock()
	st.goroutinesEnd = runtime.NumGoroutine()
	st.mu.Unlock()
	t.Logf("chaos: %s", st)
}

// round is the state of one round, inside its synctest bubble.
type round struct {
	t         *testing.T
	plan      plan
	size      int
	rate      float64 // probability of a fault per task and check (they fire after some runs)
	startRate float64 // per OnStart hook and Lazy builder: they fire during the start
	stopRate  float64 // per OnStop hook
	rng       *rand.Rand
	logger    *slog.Logger
	nodes     []*node
	faults    []*fault
	release   chan struct{} // closed at the end of the round: frees the stuck
	// stuckNow counts the goroutines that entered stuck.
	stuckNow atomic.Int64

	mu      sync.Mutex
	results []result
	holds   bool // an actor holds a service (Start, Run) besides the root's driver
}

// result is the outcome of one call of the public API.
type result struct {
	op    string // "Start s0001", "Stop s0000", "Run s0000"
	err   error
	took  time.Duration // fake time, from began (or from the cancellation, for Run)
	bound time.Duration // 0: no bound asserted
}

func (r *round) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Errorf("CHAOS_SEED=%d CHAOS_SIZE=%d: %s", r.plan.seed, r.plan.size, fmt.Sprintf(format, args...))
}

func (r *round) record(op string, err error, took, bound time.Duration) {
	r.mu.Lock()
	r.results = append(r.results, result{op: op, err: err, took: took, bound: bound})
	r.mu.Unlock()
}

// runRound runs one round and reports whether the test should go on.
func runRound(t *testing.T, p plan, st *stats) bool {
	t.Helper()
	began := time.Now()
	ok := t.Run(fmt.Sprintf("seed=%d/size=%d", p.seed, p.size), func(t *testing.T) {
		// Every goroutine outside the bubble, this one (which waits for the
		// bubble) included.
		outside := goleak.IgnoreCurrent()
		t.Logf("CHAOS_SEED=%d CHAOS_SIZE=%d go test -race -run 'ChaosRounds' ./internal/chaos/ reproduces this round", p.seed, p.size)
		synctest.Test(t, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(p.seed, uint64(p.size)))
			r := &round{
				t: t, plan: p, size: p.size, rng: rng, logger: discardLogger,
				rate:      pick(rng, 0.002, 0.005, 0.02),
				startRate: pick(rng, 0, 0.3, 1, 3) / float64(p.size),
				stopRate:  pick(rng, 0.005, 0.02, 0.05),
				release:   make(chan struct{}),
			}
			r.build()
			r.bounds()
			r.play()
			r.check(st)
			r.leaks(outside)
		})
		goleak.VerifyNone(t, outside)
	})
	st.mu.Lock()
	st.rounds++
	st.services = append(st.services, p.size)
	st.longestRound = max(st.longestRound, time.Since(began))
	st.mu.Unlock()
	return ok
}

// play runs the round: the root's driver (core.Run cancelled, or Start then
// concurrent Stops) and actors on inner services, all concurrently.
func (r *round) play() {
	rng := r.rng
	root := r.nodes[0]
	at := func() time.Duration {
		if rng.Float64() < 0.2 {
			return time.Duration(rng.IntN(50)) * time.Millisecond // during the start
		}
		return time.Duration(rng.IntN(3000)) * time.Millisecond
	}
	var actors sync.WaitGroup
	nActors := rng.IntN(9)
	for range nActors {
		nd := r.nodes[1+rng.IntN(len(r.nodes)-1)]
		when, then := at(), time.Duration(rng.IntN(1000))*time.Millisecond
		switch rng.IntN(4) {
		case 0: // Stop from elsewhere
			actors.Go(func() {
				coretest.Advance(when)
				r.stop(nd)
			})
		case 1: // Start (or ErrAlreadyStarted) and a later Stop
			r.holds = true
			actors.Go(func() {
				coretest.Advance(when)
				begin := time.Now()
				err := nd.svc.Start(context.Background())
				r.record("Start "+nd.name, err, time.Since(begin), nd.startTO+core.AbandonGrace+nd.l)
				coretest.Advance(then)
				r.stop(nd)
			})
		case 2: // Run, cancelled
			r.holds = true
			actors.Go(func() {
				coretest.Advance(when)
				r.run(nd, then)
			})
		default: // Healthcheck calls
			actors.Go(func() {
				ctx := context.WithValue(context.Background(), actorKey{}, true)
				coretest.Advance(when)
				for range 5 {
					ctx, cancel := context.WithTimeout(ctx, time.Second)
					_ = nd.svc.Healthcheck(ctx) // reported where the suite looks for nothing
					cancel()
					coretest.Advance(then / 5)
				}
			})
		}
	}

	var nonFinal []string // started services not final when the root's stop returned
	snapshot := func() {
		for _, nd := range r.nodes {
			if s := nd.svc.State(); s != core.StateNew && s != core.StateTerminated && s != core.StateFailed {
				nonFinal = append(nonFinal, nd.name+" "+s.String())
			}
		}
	}
	when := at()
	var firstStop error
	if rng.IntN(2) == 0 {
		r.run(root, when)
		snapshot()
	} else {
		var driver sync.WaitGroup
		driver.Go(func() {
			begin := time.Now()
			err := root.svc.Start(context.Background())
			r.record("Start "+root.name, err, time.Since(begin), root.startTO+core.AbandonGrace+root.l)
		})
		// The Stops come after Start has begun: a Stop before Start is a
		// documented no-op that leaves the service startable.
		for changed := root.svc.Changed(); root.svc.State() == core.StateNew; changed = root.svc.Changed() {
			<-changed
		}
		coretest.Advance(when)
		var errs [2]error
		var stoppers sync.WaitGroup
		for k := range errs {
			stoppers.Go(func() { errs[k] = r.stop(root) })
		}
		stoppers.Wait()
		snapshot()
		driver.Wait()
		if errs[0] != errs[1] {
			r.fail("two concurrent Stops of the root: got %v and %v, want the same result", errs[0], errs[1])
		}
		firstStop = errs[0]
	}
	if len(nonFinal) > 0 && !r.holds {
		r.fail("the root's stop returned while %d started services were not final: %s",
			len(nonFinal), strings.Join(firstN(nonFinal, 10), ", "))
	}
	actors.Wait()
	// Once more: idempotent, and the end of whatever the actors held.
	err := r.stop(root)
	if firstStop != nil && err != firstStop {
		r.fail("a later Stop of the root: got %v, want the first Stop's %v", err, firstStop)
	}
}

// stop calls Stop on nd and records it with its bound.
func (r *round) stop(nd *node) error {
	begin := time.Now()
	err := nd.svc.Stop(context.Background())
	r.record("Stop "+nd.name, err, time.Since(begin), nd.l)
	return err
}

// run calls core.Run on nd, cancels it after d, and records the result and
// the time from the cancellation to Run's return.
func (r *round) run(nd *node, d time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- core.Run(ctx, nd.svc) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-done:
		r.record("Run "+nd.name+" (ended by itself)", err, 0, 0)
		return
	case <-t.C:
	}
	cancel()
	begin := time.Now()
	err := <-done
	r.record("Run "+nd.name, err, time.Since(begin), nd.l)
}

func firstN(xs []string, n int) []string {
	if len(xs) > n {
		return append(xs[:n:n], fmt.Sprintf("... (%d more)", len(xs)-n))
	}
	return xs
}

// check asserts the round's invariants and adds its figures to st.
func (r *round) check(st *stats) {
	// Every started service is final, its Done closed, its Err matching
	// its state.
	var errs []error
	for _, nd := range r.nodes {
		s := nd.svc.State()
		switch s {
		case core.StateNew:
			continue
		case core.StateTerminated, core.StateFailed:
		default:
			r.fail("%s is %v after every Stop returned, want terminated or failed", nd.name, s)
			continue
		}
		select {
		case <-nd.svc.Done():
		default:
			r.fail("%s is %v but Done is not closed", nd.name, s)
		}
		err := nd.svc.Err()
		if (s == core.StateFailed) != (err != nil) {
			r.fail("%s is %v with Err %v", nd.name, s, err)
		}
		errs = append(errs, err)
	}
	r.mu.Lock()
	results := slices.Clone(r.results)
	r.mu.Unlock()
	var longest time.Duration
	longestAt := ""
	for _, res := range results {
		errs = append(errs, res.err)
		if res.bound > 0 && res.took > res.bound {
			r.fail("%s took %v, want <= %v (documented bound)", res.op, res.took, res.bound)
		}
		if strings.HasPrefix(res.op, "Stop ") || strings.HasPrefix(res.op, "Run ") {
			if res.took > longest {
				longest, longestAt = res.took, res.op
			}
		}
	}

	// What the results contain: every error value in their trees, the
	// *core.StopTimeoutError and *core.StartupError among them.
	seen := map[error]bool{}
	var timeouts []*core.StopTimeoutError
	var startups []*core.StartupError
	walk(errs, seen, func(e error) {
		switch e := e.(type) {
		case *core.StopTimeoutError:
			timeouts = append(timeouts, e)
		case *core.StartupError:
			startups = append(startups, e)
		}
	})
	fired := map[string]int{}
	for _, f := range r.faults {
		if !f.fired.Load() {
			continue
		}
		fired[f.kind]++
		switch f.kind {
		case taskDone:
			if seen[f.err] {
				r.fail("fault #%d (%s, %s %s) ended its worker with task.ErrDone, yet a result reports it",
					f.id, f.kind, f.svc, f.part)
			}
		case taskStuck, stopStuck, checkStuck:
			unit := strings.TrimPrefix(f.part, "task ")
			named := slices.ContainsFunc(timeouts, func(e *core.StopTimeoutError) bool {
				return e.Service == f.svc && slices.ContainsFunc(e.Units, func(u string) bool {
					if f.kind == taskStuck {
						return strings.HasPrefix(u, "task "+unit+"#")
					}
					return u == f.part
				})
			})
			if !named {
				r.fail("fault #%d (%s, %s %s) ignored cancellation, but no *core.StopTimeoutError of %s names it (%s)",
					f.id, f.kind, f.svc, f.part, f.svc, r.describe(f.svc))
			}
		case startStuck, lazyStuck:
			named := slices.ContainsFunc(startups, func(e *core.StartupError) bool {
				return e.Service == f.svc && (e.Part == f.part || strings.HasPrefix(e.Part, f.part+" "))
			})
			if !named {
				r.fail("fault #%d (%s, %s %s) ignored its context, but no *core.StartupError of %s names %q (%s)",
					f.id, f.kind, f.svc, f.part, f.svc, f.part, r.describe(f.svc))
			}
		default:
			if !seen[f.err] && !slices.ContainsFunc(errs, func(e error) bool { return errors.Is(e, f.err) }) {
				r.fail("fault #%d (%s, %s %s) fired, but no Err, Start, Stop or Run result has it (errors.Is) (%s)",
					f.id, f.kind, f.svc, f.part, r.describe(f.svc))
			}
		}
	}
	for _, e := range errs {
		if errors.Is(e, task.ErrDone) {
			r.fail("a result matches task.ErrDone, which ends a worker cleanly: %v", e)
			break
		}
	}
	var faults []string
	for k, n := range fired {
		faults = append(faults, fmt.Sprintf("%s=%d", k, n))
	}
	slices.Sort(faults)
	newSvcs := 0
	for _, nd := range r.nodes {
		if nd.svc.State() == core.StateNew {
			newSvcs++
		}
	}
	r.t.Logf("round: %d services (%d never started), rates %v/%.2g/%v, %d results, faults fired: %s; longest Stop/Run %v (%s), bound of the root %v",
		len(r.nodes), newSvcs, r.rate, r.startRate*float64(r.size), r.stopRate, len(results), strings.Join(faults, " "), longest, longestAt, r.nodes[0].l)

	st.mu.Lock()
	for k, n := range fired {
		st.faults[k] += n
	}
	if longest > st.longestStop {
		st.longestStop, st.longestStopAt = longest, fmt.Sprintf("%s, seed %d", longestAt, r.plan.seed)
	}
	st.stuck += int(r.stuckNow.Load())
	st.mu.Unlock()
}

// describe tells what happened to the service named name, for failure
// messages: its state, Err, parents and the results of calls on it.
func (r *round) describe(name string) string {
	var nd *node
	for _, n := range r.nodes {
		if n.name == name {
			nd = n
		}
	}
	if nd == nil {
		return "no such service"
	}
	var parents []string
	for _, p := range nd.parents {
		parents = append(parents, p.name+" "+p.svc.State().String())
	}
	var calls []string
	r.mu.Lock()
	for _, res := range r.results {
		if strings.HasSuffix(res.op, " "+name) {
			calls = append(calls, fmt.Sprintf("%s: %v", res.op, res.err))
		}
	}
	r.mu.Unlock()
	return fmt.Sprintf("%s is %v, Err %v; parents [%s]; calls [%s]", name, nd.svc.State(), nd.svc.Err(),
		strings.Join(parents, ", "), strings.Join(calls, "; "))
}

// walk visits every error in the trees of errs once.
func walk(errs []error, seen map[error]bool, visit func(error)) {
	var rec func(e error)
	rec = func(e error) {
		if e == nil {
			return
		}
		if reflect.TypeOf(e).Comparable() {
			if seen[e] {
				return
			}
			seen[e] = true
		}
		visit(e)
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				rec(e)
			}
		case interface{ Unwrap() error }:
			rec(u.Unwrap())
		}
	}
	for _, e := range errs {
		rec(e)
	}
}

// leaks asserts that, once every Stop has returned, the only goroutines
// left are the deliberately stuck ones (and the library's goroutines
// waiting for them); then releases them and asserts that none is left.
func (r *round) leaks(outside goleak.Option) {
	synctest.Wait()
	waiting := []goleak.Option{
		outside, // goleak leaves out the current goroutine by itself
		goleak.IgnoreTopFunction("testing/synctest.testingSynctestTest"),
		// A stop that gave up on a stuck task worker or check leaves the
		// goroutine waiting for it, and a check's owner (a unit) waits for
		// its stuck call: they end with it.
		goleak.IgnoreAnyFunction("github.com/coreservice/coreservice/core.waitGroup.func1"),
		goleak.IgnoreAnyFunction("github.com/coreservice/coreservice/health.waiter.Launch.func1"),
	}
	if err := goleak.Find(append(waiting, goleak.IgnoreAnyFunction(stuckFunc))...); err != nil {
		r.fail("goroutines left after every Stop returned, besides the deliberately stuck ones: %v", err)
	}
	if r.stuckNow.Load() > 0 && goleak.Find(waiting...) == nil {
		r.fail("%d goroutines entered stuck, but goleak does not see them: is stuckFunc %q right?", r.stuckNow.Load(), stuckFunc)
	}
	close(r.release)
	synctest.Wait()
	if err := goleak.Find(waiting[:2]...); err != nil {
		r.fail("goroutines left after the stuck ones were released: %v", err)
	}
}
