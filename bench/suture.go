package bench

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/thejerf/suture/v4"
)

// Suture is thejerf/suture/v4: each unit a suture.Service, the root a
// supervisor; in a tree, a service with children is a supervisor holding
// its own units and its children. Every supervisor drops its events.
type Suture struct{}

// Name implements Impl.
func (Suture) Name() string { return "suture" }

// sutureSpec is every supervisor's Spec: events dropped, defaults
// otherwise (stop Timeout 10 s).
func sutureSpec() suture.Spec {
	return suture.Spec{EventHook: func(suture.Event) {}}
}

// sutureUnit is a suture.Service running one unit's body.
type sutureUnit struct {
	name string
	fn   func(context.Context) error
}

func (u *sutureUnit) Serve(ctx context.Context) error { return u.fn(ctx) }
func (u *sutureUnit) String() string                  { return u.name }

type sutureGroup struct {
	root   *suture.Supervisor
	cancel context.CancelFunc
	errc   <-chan error
}

func (g *sutureGroup) Start(ctx context.Context) error {
	ctx, g.cancel = context.WithCancel(context.WithoutCancel(ctx))
	g.errc = g.root.ServeBackground(ctx)
	return nil
}

func (g *sutureGroup) Stop(context.Context) error {
	g.cancel()
	if err := <-g.errc; err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// Group implements Impl.
func (Suture) Group(shape Shape, names []string, spec Spec, p *Probe) (Group, error) {
	n := len(names)
	sups := make([]*suture.Supervisor, n+1)
	sups[0] = suture.New("root", sutureSpec())
	hasChildren := func(i int) bool { return shape == Tree && 10*i+1 <= n }
	for i := 1; i <= n; i++ {
		into := sups[shape.Parent(i)]
		if hasChildren(i) {
			sups[i] = suture.New(names[i-1], sutureSpec())
			into.Add(sups[i])
			into = sups[i]
		}
		for _, u := range spec.Units(p) {
			into.Add(&sutureUnit{name: names[i-1], fn: u})
		}
	}
	return &sutureGroup{root: sups[0]}, nil
}

type sutureChain struct {
	sutureGroup
	fail *closer
	done chan struct{}
	err  error
}

func (c *sutureChain) Start(ctx context.Context) error {
	if err := c.sutureGroup.Start(ctx); err != nil {
		return err
	}
	errc := c.errc
	go func() { // ends when the root supervisor does
		c.err = <-errc
		close(c.done)
	}()
	return nil
}

func (c *sutureChain) Stop(context.Context) error {
	c.cancel()
	<-c.done
	if c.err != nil && !errors.Is(c.err, context.Canceled) && !errors.Is(c.err, ErrInjected) {
		return c.err
	}
	return nil
}

func (c *sutureChain) Fail()                 { c.fail.close() }
func (c *sutureChain) Done() <-chan struct{} { return c.done }
func (c *sutureChain) Err() error            { <-c.done; return c.err }

// Chain implements Impl: supervisors nested depth deep, each holding its
// own unit and the one below; the bottom unit returns an error wrapping
// suture.ErrTerminateSupervisorTree, which terminates every supervisor
// above it (suture restarts anything else).
func (Suture) Chain(depth int, p *Probe) (Chain, error) {
	fail := newCloser()
	sup := suture.New("s0", sutureSpec())
	sup.Add(&sutureUnit{name: "s0", fn: func(ctx context.Context) error {
		if err := failOnce(ctx, p, fail.ch); err != nil {
			return errors.Join(err, suture.ErrTerminateSupervisorTree)
		}
		return nil
	}})
	for i := 1; i <= depth; i++ {
		up := suture.New("s", sutureSpec())
		up.Add(&sutureUnit{name: "s", fn: func(ctx context.Context) error { return blockUntilStop(ctx, p) }})
		up.Add(sup)
		sup = up
	}
	return &sutureChain{sutureGroup: sutureGroup{root: sup}, fail: fail, done: make(chan struct{})}, nil
}

type sutureShared struct {
	sutureGroup
	parents *suture.Supervisor
	ready   chan struct{}
	token   suture.ServiceToken
}

func (g *sutureShared) Start(ctx context.Context) error {
	if err := g.sutureGroup.Start(ctx); err != nil {
		return err
	}
	<-g.ready
	g.token = g.root.Add(g.parents)
	return nil
}

func (g *sutureShared) Stop(ctx context.Context) error {
	if err := g.root.RemoveAndWait(g.token, 10*time.Second); err != nil {
		return err
	}
	return g.sutureGroup.Stop(ctx)
}

// Shared implements Impl: suture has no dependencies, so the order is
// written by hand: the shared service under the root, the parents in a
// supervisor added once it runs and removed (RemoveAndWait) before the
// root stops.
func (Suture) Shared(names []string, p *Probe) (Group, error) {
	g := &sutureShared{ready: make(chan struct{})}
	g.root = suture.New("root", sutureSpec())
	g.root.Add(&sutureUnit{name: "shared", fn: func(ctx context.Context) error {
		return sharedUntilStop(ctx, p, func() { close(g.ready) })
	}})
	g.parents = suture.New("parents", sutureSpec())
	for _, name := range names {
		g.parents.Add(&sutureUnit{name: name, fn: func(ctx context.Context) error { return parentUntilStop(ctx, p, nil) }})
	}
	return g, nil
}

// SutureLoop is suture's restart loop, the peer of a periodic task with
// no delay: a supervisor restarting a service whose Serve returns at once.
// Its FailureThreshold is infinite, so that it never backs off.
func SutureLoop(ctx context.Context, runs int) (perRun time.Duration, err error) {
	spec := sutureSpec()
	spec.FailureThreshold = math.Inf(1)
	sup := suture.New("loop", spec)
	var n int
	var first, last time.Time
	done := make(chan struct{})
	sup.Add(&sutureUnit{name: "loop", fn: func(context.Context) error {
		n++ // one instance at a time: suture restarts after Serve returns
		switch n {
		case 1:
			first = time.Now()
		case runs + 1:
			last = time.Now()
			close(done)
			return suture.ErrDoNotRestart
		}
		return nil
	}})
	ctx, cancel := context.WithCancel(ctx)
	errc := sup.ServeBackground(ctx)
	<-done
	cancel()
	if err := <-errc; err != nil && !errors.Is(err, context.Canceled) {
		return 0, err
	}
	return last.Sub(first) / time.Duration(runs), nil
}
