package bench

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sync/errgroup"
)

// Errgroup is golang.org/x/sync/errgroup: each unit a goroutine of the
// root's errgroup.Group (errgroup.WithContext); in a tree, a service with
// children is an errgroup of its own, below its parent's context, whose
// Wait is a goroutine of its parent's group.
type Errgroup struct{}

// Name implements Impl.
func (Errgroup) Name() string { return "errgroup" }

type egGroup struct {
	launch func(ctx context.Context) func() error
	cancel context.CancelFunc
	wait   func() error
}

func (g *egGroup) Start(ctx context.Context) error {
	ctx, g.cancel = context.WithCancel(context.WithoutCancel(ctx))
	g.wait = g.launch(ctx)
	return nil
}

func (g *egGroup) Stop(context.Context) error {
	g.cancel()
	return g.wait()
}

// Group implements Impl.
func (Errgroup) Group(shape Shape, names []string, spec Spec, p *Probe) (Group, error) {
	n := len(names)
	return &egGroup{launch: func(ctx context.Context) func() error {
		groups := make([]*errgroup.Group, n+1)
		ctxs := make([]context.Context, n+1)
		groups[0], ctxs[0] = errgroup.WithContext(ctx)
		inner := func(i int) bool { return shape == Tree && 10*i+1 <= n }
		// Contexts flow down: a service with children gets its group below
		// its parent's context.
		for i := 1; i <= n; i++ {
			if inner(i) {
				parent := shape.Parent(i)
				groups[i], ctxs[i] = errgroup.WithContext(ctxs[parent])
			}
		}
		// Goroutines go up: a group's Wait is launched once everything in
		// it is (children have higher indexes).
		for i := n; i >= 1; i-- {
			parent := shape.Parent(i)
			into, ctx := groups[parent], ctxs[parent]
			if inner(i) {
				into, ctx = groups[i], ctxs[i]
			}
			for _, u := range spec.Units(p) {
				into.Go(func() error { return u(ctx) })
			}
			if inner(i) {
				groups[parent].Go(groups[i].Wait)
			}
		}
		return groups[0].Wait
	}}, nil
}

type egChain struct {
	egGroup
	fail *closer
	done chan struct{}
	err  error
}

func (c *egChain) Fail()                 { c.fail.close() }
func (c *egChain) Done() <-chan struct{} { return c.done }
func (c *egChain) Err() error            { <-c.done; return c.err }

func (c *egChain) Stop(context.Context) error {
	c.cancel()
	<-c.done
	if c.err != nil && !errors.Is(c.err, ErrInjected) {
		return c.err
	}
	return nil
}

// Chain implements Impl: errgroups nested depth deep, each running its own
// unit and the group below, whose error (returned by Wait) cancels the
// group's context and so ends its unit.
func (Errgroup) Chain(depth int, p *Probe) (Chain, error) {
	c := &egChain{fail: newCloser(), done: make(chan struct{})}
	var level func(ctx context.Context, i int) error
	level = func(ctx context.Context, i int) error {
		g, gctx := errgroup.WithContext(ctx)
		if i == 0 {
			g.Go(func() error { return failOnce(gctx, p, c.fail.ch) })
		} else {
			g.Go(func() error { return blockUntilStop(gctx, p) })
			g.Go(func() error { return level(gctx, i-1) })
		}
		return g.Wait()
	}
	c.launch = func(ctx context.Context) func() error {
		go func() { // ends once every level has returned
			c.err = level(ctx, depth)
			close(c.done)
		}()
		return func() error { <-c.done; return c.err }
	}
	return c, nil
}

type egShared struct {
	n           int
	p           *Probe
	sharedStop  context.CancelFunc
	parentsStop context.CancelFunc
	shared      *errgroup.Group
	parents     *errgroup.Group
}

func (g *egShared) Start(ctx context.Context) error {
	base := context.WithoutCancel(ctx)
	var sctx, pctx context.Context
	sctx, g.sharedStop = context.WithCancel(base)
	pctx, g.parentsStop = context.WithCancel(base)
	g.shared, sctx = errgroup.WithContext(sctx)
	ready := make(chan struct{})
	g.shared.Go(func() error { return sharedUntilStop(sctx, g.p, func() { close(ready) }) })
	<-ready
	g.parents, pctx = errgroup.WithContext(pctx)
	for range g.n {
		g.parents.Go(func() error { return parentUntilStop(pctx, g.p, nil) })
	}
	return nil
}

func (g *egShared) Stop(context.Context) error {
	g.parentsStop()
	err := g.parents.Wait()
	g.sharedStop()
	return errors.Join(err, g.shared.Wait())
}

// Shared implements Impl: two groups, the shared one started first and
// stopped after the parents' Wait returns.
func (Errgroup) Shared(names []string, p *Probe) (Group, error) {
	return &egShared{n: len(names), p: p}, nil
}

// Impls is every implementation, the baseline first and coreservice last.
func Impls() []Impl {
	return []Impl{Bare{}, Errgroup{}, OklogRun{}, Suture{}, Fx{}, Coreservice{}}
}

// CheckedImpls is Impls, for services with a check, plus coreservice with
// a check Timeout of 1 s: at n=10,000 on 2 cores, checks with the default
// Timeout (50 ms) are cut off while the services start, and the start
// fails, so that the default has no figure there.
func CheckedImpls() []Impl {
	return append(Impls(), Coreservice{Label: "coreservice-check1s", CheckTimeout: time.Second})
}
