package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/health"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/task"
)

// Fault kinds. "must be found": its error value reaches some Err, Start,
// Stop or Run result. "must be named": what ignored cancellation is named in
// a *core.StopTimeoutError (or a *core.StartupError for a start step).
// "benign": task.ErrDone, found in no result.
const (
	taskFail     = "task-fail"     // returns its error: must be found
	taskPanic    = "task-panic"    // panics with its error: must be found
	taskTimeout  = "task-timeout"  // hangs past task.Timeout, returns its error with the deadline: must be found
	taskLate     = "task-late"     // ignores the stop for a while, then returns its own error: must be found
	taskStuck    = "task-stuck"    // ignores cancellation until the round ends: must be named
	taskDone     = "task-done"     // returns task.ErrDone: benign
	startFail    = "onstart-fail"  // OnStart hook returns its error: must be found
	startPanic   = "onstart-panic" // OnStart hook panics: must be found
	startStuck   = "onstart-stuck" // OnStart hook ignores its context: must be named
	stopFail     = "onstop-fail"   // OnStop hook returns its error: must be found
	stopPanic    = "onstop-panic"  // OnStop hook panics: must be found
	stopStuck    = "onstop-stuck"  // OnStop hook ignores its context: must be named
	checkBad     = "check-bad"     // check turns bad for good: must be found
	checkStuck   = "check-stuck"   // check ignores its context: must be named
	lazyFail     = "lazy-fail"     // Lazy builder returns its error: must be found
	lazyStuck    = "lazy-stuck"    // Lazy builder ignores its context: must be named
	healthActors = "healthcheck"   // not a fault: an actor calling Healthcheck
)

var (
	taskKinds  = []string{taskFail, taskPanic, taskTimeout, taskLate, taskStuck, taskDone}
	startKinds = []string{startFail, startPanic, startStuck}
	stopKinds  = []string{stopFail, stopPanic, stopStuck}
	checkKinds = []string{checkBad, checkBad, checkStuck}
	lazyKinds  = []string{lazyFail, lazyFail, lazyStuck}
)

// fault is one injected failure. Its err is a value of its own, so that
// errors.Is finds exactly this fault in a result.
type fault struct {
	id    int
	kind  string
	svc   string // the service it is injected in
	part  string // what names it: "task t1", "OnStop hook 2", "check c0", "requirement s0042"
	err   error
	fired atomic.Bool // the fault happened (a fault scheduled after the stop never does)
}

type faultError struct{ f *fault }

func (e *faultError) Error() string {
	return fmt.Sprintf("chaos fault #%d %s in %s %s", e.f.id, e.f.kind, e.f.svc, e.f.part)
}

// Edge kinds.
const (
	edgeRequires = iota
	edgeLazy
	edgeAwait
)

// edge is one requirement of a node.
type edge struct {
	child *node
	kind  int
	after []int // indexes, in the parent's edges, of the requirements it comes After
	fault *fault
}

// node is one service of the tree and what the bounds are computed from.
type node struct {
	i           int
	name        string
	svc         *core.Base
	startTO     time.Duration
	stopTO      time.Duration
	interval    time.Duration
	stopHooks   int
	edges       []edge
	parents     []*node // every service that requires or awaits it
	owners      int     // parents by Requires or Lazy
	up, down, l time.Duration
	downDone    bool
}

// actorKey marks the contexts of the suite's Healthcheck actors, so that a
// bad check fires only where the library must report it.
type actorKey struct{}

// build makes the tree of round r: node 0 is the root; every other node has
// a parent of a lower index (Requires or Lazy), and some have more (shared
// requirements, Requires, Lazy or Await).
func (r *round) build() {
	rng := r.rng
	n := r.size
	r.nodes = make([]*node, n)
	for i := range n {
		r.nodes[i] = &node{
			i:        i,
			name:     fmt.Sprintf("s%04d", i),
			startTO:  pick(rng, 2*time.Second, 5*time.Second, 10*time.Second),
			stopTO:   pick(rng, 200*time.Millisecond, 500*time.Millisecond, time.Second),
			interval: pick(rng, 50*time.Millisecond, 100*time.Millisecond, 250*time.Millisecond),
		}
	}
	link := func(p, c *node, kind int) {
		e := edge{child: c, kind: kind}
		if kind != edgeAwait && rng.Float64() < 0.1 {
			var owned []int
			for k, pe := range p.edges {
				if pe.kind != edgeAwait {
					owned = append(owned, k)
				}
			}
			if len(owned) > 0 {
				e.after = []int{owned[rng.IntN(len(owned))]}
			}
		}
		if kind == edgeLazy && rng.Float64() < r.startRate {
			e.fault = r.newFault(pick(rng, lazyKinds...), p.name, "requirement "+c.name)
		}
		p.edges = append(p.edges, e)
		c.parents = append(c.parents, p)
		if kind != edgeAwait {
			c.owners++
		}
	}
	for j := 1; j < n; j++ {
		c := r.nodes[j]
		p := r.nodes[rng.IntN(j)]
		kind := edgeRequires
		if rng.Float64() < 0.1 {
			kind = edgeLazy
		}
		link(p, c, kind)
		if j > 1 && rng.Float64() < 0.15 { // shared
			q := r.nodes[rng.IntN(j)]
			if q != p {
				kind := edgeRequires
				switch x := rng.Float64(); {
				case x < 0.2:
					kind = edgeAwait
				case x < 0.3:
					kind = edgeLazy
				}
				link(q, c, kind)
			}
		}
	}
	for i := n - 1; i >= 0; i-- {
		r.construct(r.nodes[i])
	}
}

// construct builds the service of nd; its requirements are built already.
func (r *round) construct(nd *node) {
	rng := r.rng
	opts := []core.Option{
		core.Name(nd.name),
		core.Logger(r.logger),
		core.StartTimeout(nd.startTO),
		core.StopTimeout(nd.stopTO),
		core.MonitorInterval(nd.interval),
	}
	reqs := make([]deps.AnyRequirement, len(nd.edges))
	for k, e := range nd.edges {
		var ropts []deps.Option
		for _, a := range e.after {
			ropts = append(ropts, deps.After(reqs[a]))
		}
		switch e.kind {
		case edgeRequires:
			req := deps.Requires(e.child.svc, ropts...)
			reqs[k], opts = req, append(opts, req)
		case edgeAwait:
			req := deps.Await(e.child.svc, ropts...)
			reqs[k], opts = req, append(opts, req)
		case edgeLazy:
			req := deps.Lazy(r.builder(e.child.svc, e.fault), append(ropts, deps.Name(e.child.name))...)
			reqs[k], opts = req, append(opts, req)
		}
	}
	for k := range rng.IntN(3) {
		var f *fault
		if rng.Float64() < r.startRate {
			f = r.newFault(pick(rng, startKinds...), nd.name, fmt.Sprintf("OnStart hook %d", k+1))
		}
		opts = append(opts, core.OnStart(r.hook(f, rng.IntN(20))))
	}
	nd.stopHooks = rng.IntN(3)
	for k := range nd.stopHooks {
		var f *fault
		if rng.Float64() < r.stopRate {
			f = r.newFault(pick(rng, stopKinds...), nd.name, fmt.Sprintf("OnStop hook %d", k+1))
		}
		opts = append(opts, core.OnStop(r.hook(f, rng.IntN(20))))
	}
	for k := range rng.IntN(3) {
		name := fmt.Sprintf("t%d", k)
		var f *fault
		if rng.Float64() < r.rate {
			f = r.newFault(pick(rng, taskKinds...), nd.name, "task "+name)
		}
		topts := []task.Option{
			task.Every(pick(rng, 10*time.Millisecond, 50*time.Millisecond, 200*time.Millisecond)),
			task.Workers(1 + rng.IntN(2)),
		}
		if f != nil && f.kind == taskTimeout || rng.Float64() < 0.2 {
			topts = append(topts, task.Timeout(pick(rng, 20*time.Millisecond, 100*time.Millisecond)))
		}
		if f == nil && rng.Float64() < 0.1 {
			topts = append(topts, task.Once())
		}
		opts = append(opts, task.Func(name, r.taskFn(nd, f, rng.IntN(10), time.Duration(rng.IntN(15))*time.Millisecond), topts...))
	}
	for k := range rng.IntN(3) {
		name := fmt.Sprintf("c%d", k)
		var f *fault
		if rng.Float64() < r.rate {
			f = r.newFault(pick(rng, checkKinds...), nd.name, "check "+name)
		}
		opts = append(opts, health.Check(name, r.checkFn(f, rng.IntN(30))))
	}
	nd.svc = core.NewService(opts...)
}

func pick[T any](rng *rand.Rand, xs ...T) T { return xs[rng.IntN(len(xs))] }

func (r *round) newFault(kind, svc, part string) *fault {
	f := &fault{id: len(r.faults) + 1, kind: kind, svc: svc, part: part}
	f.err = &faultError{f}
	r.faults = append(r.faults, f)
	return f
}

// stuck blocks, ignoring every context, until the round releases it: the
// deliberately stuck goroutines of the round are the ones in this method.
func (r *round) stuck() {
	r.stuckNow.Add(1)
	<-r.release
}

// stuckFunc is the name goleak knows stuck by.
const stuckFunc = "github.com/coreservice/coreservice/internal/chaos_test.(*round).stuck"

// work is a normal run of user code: d of work that honours ctx.
func work(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *round) hook(f *fault, ms int) func(context.Context) error {
	return func(ctx context.Context) error {
		if f == nil {
			return work(ctx, time.Duration(ms)*time.Millisecond)
		}
		f.fired.Store(true)
		switch f.kind {
		case startFail, stopFail:
			return f.err
		case startPanic, stopPanic:
			panic(f.err)
		default: // startStuck, stopStuck
			r.stuck()
			return nil
		}
	}
}

func (r *round) builder(child *core.Base, f *fault) func(context.Context) (*core.Base, error) {
	return func(context.Context) (*core.Base, error) {
		if f == nil {
			return child, nil
		}
		f.fired.Store(true)
		if f.kind == lazyFail {
			return nil, f.err
		}
		r.stuck()
		return child, nil
	}
}

// taskFn is a task's function: after runs normal runs of d each, the fault.
func (r *round) taskFn(nd *node, f *fault, after int, d time.Duration) func(context.Context) error {
	var runs atomic.Int64
	return func(ctx context.Context) error {
		if f == nil || runs.Add(1) <= int64(after) {
			return work(ctx, d)
		}
		switch f.kind {
		case taskFail:
			f.fired.Store(true)
			return f.err
		case taskPanic:
			f.fired.Store(true)
			panic(f.err)
		case taskTimeout:
			<-ctx.Done()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				f.fired.Store(true)
			}
			return fmt.Errorf("%w: %w", f.err, ctx.Err())
		case taskLate:
			<-ctx.Done()
			coretest.Advance(nd.stopTO / 4) // well within StopTimeout
			f.fired.Store(true)
			return f.err
		case taskStuck:
			f.fired.Store(true)
			r.stuck()
			return nil
		default: // taskDone
			f.fired.Store(true)
			return fmt.Errorf("%w: %w", task.ErrDone, f.err)
		}
	}
}

// checkFn is a check's function: after calls healthy calls, the fault.
func (r *round) checkFn(f *fault, after int) func(context.Context) error {
	var calls atomic.Int64
	return func(ctx context.Context) error {
		if f == nil || calls.Add(1) <= int64(after) {
			return nil
		}
		if f.kind == checkStuck {
			f.fired.Store(true)
			r.stuck()
			return nil
		}
		// Bad from now on. It fires where the library must report it: not
		// for the suite's own Healthcheck calls, nor for a caller that has
		// already given up on it.
		if ctx.Value(actorKey{}) == nil && ctx.Err() == nil {
			f.fired.Store(true)
		}
		return f.err
	}
}

// bounds computes, for every node, the documented bound of its stop in
// fake time:
//
//	w(s)    = (1 + OnStop hooks) × (StopTimeout + AbandonGrace) + AbandonGrace
//	down(s) = w(s) + the longest release chain of its owned requirements
//	          (a requirement After another is released first)
//	up(s)   = the longest chain of dependents above s, each w
//	L(s)    = max over s and everything it owns d of up(d) + down(d)
//
// w is StopTimeout's formula, plus one AbandonGrace for a stop that aborts
// a start under way (Start and Stop docs: user code is abandoned
// AbandonGrace after its context ends). up is there because a service
// tells its dependents first and waits for their units and OnStop hooks
// (core doc, Lifecycle), and a parent's stop waits for a shared requirement
// that someone else is stopping, whose own stop waits for its other
// dependents (Requirement doc).
func (r *round) bounds() {
	w := func(nd *node) time.Duration {
		return time.Duration(1+nd.stopHooks)*(nd.stopTO+core.AbandonGrace) + core.AbandonGrace
	}
	var down func(nd *node) time.Duration
	down = func(nd *node) time.Duration {
		if nd.downDone {
			return nd.down
		}
		fin := make([]time.Duration, len(nd.edges))
		for k := len(nd.edges) - 1; k >= 0; k-- {
			e := nd.edges[k]
			if e.kind == edgeAwait {
				continue
			}
			var later time.Duration
			for j := k + 1; j < len(nd.edges); j++ {
				for _, a := range nd.edges[j].after {
					if a == k {
						later = max(later, fin[j])
					}
				}
			}
			fin[k] = down(e.child) + later
		}
		var rel time.Duration
		for _, f := range fin {
			rel = max(rel, f)
		}
		nd.down, nd.downDone = w(nd)+rel, true
		return nd.down
	}
	for _, nd := range r.nodes { // parents have lower indexes
		for _, p := range nd.parents {
			nd.up = max(nd.up, p.up+w(p))
		}
	}
	for i := len(r.nodes) - 1; i >= 0; i-- {
		nd := r.nodes[i]
		nd.l = nd.up + down(nd)
		for _, e := range nd.edges {
			if e.kind != edgeAwait {
				nd.l = max(nd.l, e.child.l)
			}
		}
	}
}

// discardLogger is the services' logger: the suite reads results, not logs.
var discardLogger = slog.New(slog.DiscardHandler)
