package bench

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/health"
	"github.com/coreservice/coreservice/task"
)

// Coreservice is this library: each service a core.NewService with one
// task (task.Once for a blocking task, task.Every(Period) for a periodic
// one) and, with a check, one health.Check; the root a core.NewService that
// requires its children with deps.Requires. Options not named here keep
// their defaults, plus Extra.
type Coreservice struct {
	// Label overrides the name in benchmarks ("coreservice" when empty).
	Label string
	// Extra options given to every service, such as a TracerProvider.
	Extra []core.Option
	// CheckTimeout, when positive, is the health.Timeout of the check of a
	// Spec with Check (the default is half the MonitorInterval: 50 ms).
	CheckTimeout time.Duration
}

// Name implements Impl.
func (c Coreservice) Name() string {
	if c.Label != "" {
		return c.Label
	}
	return "coreservice"
}

var quiet = slog.New(slog.DiscardHandler)

func (c Coreservice) service(name string, opts ...core.Option) *core.Base {
	all := make([]core.Option, 0, len(opts)+len(c.Extra)+2)
	all = append(all, core.Name(name), core.Logger(quiet))
	all = append(all, c.Extra...)
	return core.NewService(append(all, opts...)...)
}

// work returns the task, and the check, of a service of spec.
func (c Coreservice) work(spec Spec, p *Probe) []core.Option {
	var t core.Option
	if spec.Period > 0 {
		first := true // a task of one worker calls its function sequentially
		t = task.Func("work", func(context.Context) error {
			p.runs.Add(1)
			if first {
				first = false
				p.Enter()
			}
			return nil
		}, task.Every(spec.Period))
	} else {
		t = task.Func("work", func(ctx context.Context) error { return blockUntilStop(ctx, p) }, task.Once())
	}
	if !spec.Check {
		return []core.Option{t}
	}
	var checked atomic.Bool
	var opts []health.Option
	if c.CheckTimeout > 0 {
		opts = append(opts, health.Timeout(c.CheckTimeout))
	}
	return []core.Option{t, health.Check("ok", func(ctx context.Context) error {
		err := p.okCheck(ctx)
		if !checked.Swap(true) {
			p.Enter()
		}
		return err
	}, opts...)}
}

// Group implements Impl.
func (c Coreservice) Group(shape Shape, names []string, spec Spec, p *Probe) (Group, error) {
	n := len(names)
	children := make([][]core.Option, n+1)
	// Children before parents: in both shapes a parent's index is lower.
	for i := n; i >= 1; i-- {
		opts := append(c.work(spec, p), children[i]...)
		svc := c.service(names[i-1], opts...)
		parent := shape.Parent(i)
		children[parent] = append(children[parent], deps.Requires(svc))
	}
	return c.service("root", children[0]...), nil
}

type coreChain struct {
	*core.Base
	fail *closer
}

func (c *coreChain) Fail() { c.fail.close() }

// Chain implements Impl: each dependent requires the service below it.
func (c Coreservice) Chain(depth int, p *Probe) (Chain, error) {
	fail := newCloser()
	svc := c.service("s0", task.Func("work", func(ctx context.Context) error {
		return failOnce(ctx, p, fail.ch)
	}, task.Once()))
	for i := 1; i <= depth; i++ {
		svc = c.service(fmt.Sprint("s", i), deps.Requires(svc),
			task.Func("work", func(ctx context.Context) error { return blockUntilStop(ctx, p) }, task.Once()))
	}
	return &coreChain{Base: svc, fail: fail}, nil
}

// Shared implements Impl: every parent requires the same *core.Base. A
// parent's task counts itself out of order unless the shared service is
// Running when it begins (a requirement is Running before its parent's
// units launch; its own task may not have been scheduled yet).
func (c Coreservice) Shared(names []string, p *Probe) (Group, error) {
	shared := c.service("shared", task.Func("work", func(ctx context.Context) error {
		return sharedUntilStop(ctx, p, nil)
	}, task.Once()))
	running := func() bool { return shared.State() == core.StateRunning }
	parents := make([]core.Option, 0, len(names))
	for _, name := range names {
		parents = append(parents, deps.Requires(c.service(name, deps.Requires(shared),
			task.Func("work", func(ctx context.Context) error { return parentUntilStop(ctx, p, running) }, task.Once()))))
	}
	return c.service("root", parents...), nil
}
