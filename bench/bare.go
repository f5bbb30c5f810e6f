package bench

import (
	"context"
	"sync"
)

// Bare is the baseline: each unit is a goroutine, each service a context
// (derived from its parent's in a tree), one WaitGroup for the group. It
// has no start or stop order, no timeouts, and no failure propagation
// beyond what is written here by hand.
type Bare struct{}

// Name implements Impl.
func (Bare) Name() string { return "bare" }

type bareGroup struct {
	launch  func(ctx context.Context)
	cancel  context.CancelFunc
	cancels []context.CancelFunc
	wg      sync.WaitGroup
}

func (g *bareGroup) Start(ctx context.Context) error {
	ctx, g.cancel = context.WithCancel(context.WithoutCancel(ctx))
	g.launch(ctx)
	return nil
}

func (g *bareGroup) Stop(context.Context) error {
	g.cancel()
	g.wg.Wait()
	for _, cancel := range g.cancels {
		cancel()
	}
	return nil
}

// Group implements Impl.
func (Bare) Group(shape Shape, names []string, spec Spec, p *Probe) (Group, error) {
	g := &bareGroup{}
	n := len(names)
	g.launch = func(root context.Context) {
		ctxs := make([]context.Context, n+1)
		ctxs[0] = root
		if shape == Tree {
			g.cancels = make([]context.CancelFunc, 0, n)
		}
		for i := 1; i <= n; i++ {
			ctx := ctxs[shape.Parent(i)]
			if shape == Tree {
				// Each service owns a context below its parent's.
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				g.cancels = append(g.cancels, cancel)
			}
			ctxs[i] = ctx
			for _, u := range spec.Units(p) {
				g.wg.Go(func() { _ = u(ctx) })
			}
		}
	}
	return g, nil
}

// bareLevel is one service of a bare chain.
type bareLevel struct {
	done chan struct{}
	err  error
}

type bareChain struct {
	bareGroup
	fail *closer
	top  *bareLevel
}

func (c *bareChain) Fail()                 { c.fail.close() }
func (c *bareChain) Done() <-chan struct{} { return c.top.done }
func (c *bareChain) Err() error            { <-c.top.done; return c.top.err }

// Chain implements Impl: the task of each dependent blocks until its
// context ends or the service below it is done, and then it is done
// itself, with the error of the one below.
func (Bare) Chain(depth int, p *Probe) (Chain, error) {
	c := &bareChain{fail: newCloser(), top: &bareLevel{done: make(chan struct{})}}
	c.launch = func(ctx context.Context) {
		below := &bareLevel{done: make(chan struct{})}
		bottom := below
		c.wg.Go(func() {
			bottom.err = failOnce(ctx, p, c.fail.ch)
			close(bottom.done)
		})
		for i := 1; i <= depth; i++ {
			lv := &bareLevel{done: make(chan struct{})}
			if i == depth {
				lv = c.top
			}
			prev := below
			c.wg.Go(func() {
				p.Enter()
				select {
				case <-ctx.Done():
				case <-prev.done:
					lv.err = prev.err
				}
				p.Exit()
				close(lv.done)
			})
			below = lv
		}
	}
	return c, nil
}

type bareShared struct {
	n           int
	p           *Probe
	sharedStop  context.CancelFunc
	parentsStop context.CancelFunc
	shared      sync.WaitGroup
	parents     sync.WaitGroup
}

func (g *bareShared) Start(ctx context.Context) error {
	base := context.WithoutCancel(ctx)
	var sctx, pctx context.Context
	sctx, g.sharedStop = context.WithCancel(base)
	pctx, g.parentsStop = context.WithCancel(base)
	ready := make(chan struct{})
	g.shared.Go(func() { _ = sharedUntilStop(sctx, g.p, func() { close(ready) }) })
	<-ready
	for range g.n {
		g.parents.Go(func() { _ = parentUntilStop(pctx, g.p, nil) })
	}
	return nil
}

func (g *bareShared) Stop(context.Context) error {
	g.parentsStop()
	g.parents.Wait()
	g.sharedStop()
	g.shared.Wait()
	return nil
}

// Shared implements Impl: the shared goroutine starts first, and is
// stopped once the parents' WaitGroup is done.
func (Bare) Shared(names []string, p *Probe) (Group, error) {
	return &bareShared{n: len(names), p: p}, nil
}
