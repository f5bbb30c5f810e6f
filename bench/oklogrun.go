package bench

import (
	"context"
	"errors"
	"sync"

	"github.com/oklog/run"
)

// OklogRun is github.com/oklog/run: each service's units are actors of a
// run.Group, each service with a context of its own that its actors'
// interrupt functions cancel; in a tree, a service with children is a
// run.Group of its own units and of one actor per child (child.Run, and
// cancel the child's context); the root group has one more actor, which
// returns when Stop is called, so that every actor is interrupted.
type OklogRun struct{}

// Name implements Impl.
func (OklogRun) Name() string { return "oklog-run" }

// runNode is one service: its group (nil for a leaf, whose actors are its
// parent's), and its context.
type runNode struct {
	g      *run.Group
	ctx    context.Context
	cancel context.CancelFunc
}

type runGroup struct {
	root *run.Group
	stop *closer
	errc chan error
}

func newRunGroup() *runGroup {
	g := &runGroup{root: &run.Group{}, stop: newCloser(), errc: make(chan error, 1)}
	g.root.Add(func() error { <-g.stop.ch; return nil }, func(error) { g.stop.close() })
	return g
}

func (g *runGroup) Start(context.Context) error {
	go func() { g.errc <- g.root.Run() }() // ends once every actor has returned
	return nil
}

func (g *runGroup) Stop(context.Context) error {
	g.stop.close()
	return <-g.errc
}

// addUnits adds a service's units to g, all interrupted by cancelling ctx.
func addUnits(g *run.Group, ctx context.Context, cancel context.CancelFunc, units []func(context.Context) error) {
	for _, u := range units {
		g.Add(func() error { return u(ctx) }, func(error) { cancel() })
	}
}

// Group implements Impl.
func (OklogRun) Group(shape Shape, names []string, spec Spec, p *Probe) (Group, error) {
	n := len(names)
	g := newRunGroup()
	nodes := make([]runNode, n+1)
	nodes[0].g = g.root
	// Children before parents, so that a child's group is complete when its
	// parent adds it.
	for i := n; i >= 1; i-- {
		ctx, cancel := context.WithCancel(context.Background())
		nodes[i].ctx, nodes[i].cancel = ctx, cancel
		if shape == Tree && 10*i+1 <= n {
			nodes[i].g = &run.Group{}
		}
	}
	for i := 1; i <= n; i++ {
		nd := nodes[i]
		into := nodes[shape.Parent(i)].g
		if nd.g != nil {
			child := nd.g
			into.Add(child.Run, func(error) { nd.cancel() })
			into = child
		}
		addUnits(into, nd.ctx, nd.cancel, spec.Units(p))
	}
	return g, nil
}

type runChain struct {
	runGroup
	fail *closer
	done chan struct{}
	err  error
}

func (c *runChain) Start(context.Context) error {
	go func() { // ends once every actor has returned
		c.err = c.root.Run()
		close(c.done)
	}()
	return nil
}

func (c *runChain) Stop(context.Context) error {
	c.stop.close()
	<-c.done
	if c.err != nil && !errors.Is(c.err, ErrInjected) {
		return c.err
	}
	return nil
}

func (c *runChain) Fail()                 { c.fail.close() }
func (c *runChain) Done() <-chan struct{} { return c.done }
func (c *runChain) Err() error            { <-c.done; return c.err }

// Chain implements Impl: groups nested depth deep, each of its own unit and
// an actor running the group below; an actor that returns interrupts its
// group, so the bottom's error ends every group above it.
func (OklogRun) Chain(depth int, p *Probe) (Chain, error) {
	c := &runChain{fail: newCloser(), done: make(chan struct{})}
	c.stop = newCloser()
	g := &run.Group{}
	bctx, bcancel := context.WithCancel(context.Background())
	g.Add(func() error { return failOnce(bctx, p, c.fail.ch) }, func(error) { bcancel() })
	interruptBelow := bcancel // ending the unit below ends its group
	for i := 1; i <= depth; i++ {
		up := &run.Group{}
		ctx, cancel := context.WithCancel(context.Background())
		addUnits(up, ctx, cancel, Spec{}.Units(p))
		below, interrupt := g, interruptBelow
		up.Add(below.Run, func(error) { interrupt() })
		g, interruptBelow = up, cancel
	}
	// Stop ends the top group.
	g.Add(func() error { <-c.stop.ch; return nil }, func(error) { c.stop.close() })
	c.root = g
	return c, nil
}

// Shared implements Impl: oklog/run starts and interrupts all actors at
// once, so the order is written by hand: each parent waits for the shared
// one to run before it signals, and the shared actor, once interrupted,
// waits for the parents to return before it does.
func (OklogRun) Shared(names []string, p *Probe) (Group, error) {
	g := newRunGroup()
	ready := make(chan struct{})
	var parents sync.WaitGroup
	// The shared actor's context ends once it is interrupted and every
	// parent has returned.
	sctx, scancel := context.WithCancel(context.Background())
	g.root.Add(func() error {
		return sharedUntilStop(sctx, p, func() { close(ready) })
	}, func(error) {
		go func() { // ends once the parents, interrupted too, have returned
			parents.Wait()
			scancel()
		}()
	})
	for range names {
		ctx, cancel := context.WithCancel(context.Background())
		parents.Add(1)
		g.root.Add(func() error {
			defer parents.Done()
			select {
			case <-ready:
			case <-ctx.Done():
				return nil
			}
			return parentUntilStop(ctx, p, nil)
		}, func(error) { cancel() })
	}
	return g, nil
}
