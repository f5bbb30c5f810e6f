package bench

import (
	"context"
	"fmt"
	"strconv"
	"sync"

	"go.uber.org/fx"
)

// Fx is go.uber.org/fx: one app; each service is provided by a
// constructor of its own, which takes the fx.Lifecycle (and, in a tree, its
// children) and appends one fx.Hook whose OnStart launches the service's
// units as goroutines and whose OnStop cancels them and waits for them, as
// fx's documentation writes a server. The root is an fx.Invoke that takes
// the top-level services, so that fx constructs, and starts, them all.
// Services reach their parent through value groups, one per parent. Logging
// is off (fx.NopLogger).
type Fx struct{}

// Name implements Impl.
func (Fx) Name() string { return "fx" }

// fxService is one fx-managed service.
type fxService struct {
	name   string
	units  []func(context.Context) error
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newFxService(lc fx.Lifecycle, name string, units []func(context.Context) error) *fxService {
	s := &fxService{name: name, units: units}
	lc.Append(fx.Hook{OnStart: s.start, OnStop: s.stop})
	return s
}

func (s *fxService) start(context.Context) error {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	for _, u := range s.units {
		s.wg.Go(func() { _ = u(ctx) })
	}
	return nil
}

func (s *fxService) stop(ctx context.Context) error {
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop %s: %w", s.name, ctx.Err())
	}
}

type fxGroup struct{ app *fx.App }

func (g *fxGroup) Start(ctx context.Context) error { return g.app.Start(ctx) }
func (g *fxGroup) Stop(ctx context.Context) error  { return g.app.Stop(ctx) }

func groupTag(i int) string { return `group:"c` + strconv.Itoa(i) + `"` }

// Group implements Impl.
func (Fx) Group(shape Shape, names []string, spec Spec, p *Probe) (Group, error) {
	n := len(names)
	opts := make([]fx.Option, 0, n+2)
	opts = append(opts, fx.NopLogger)
	for i := 1; i <= n; i++ {
		name := names[i-1]
		units := spec.Units(p)
		out := fx.ResultTags(groupTag(shape.Parent(i)))
		if shape == Tree && 10*i+1 <= n {
			opts = append(opts, fx.Provide(fx.Annotate(
				func(lc fx.Lifecycle, _ []*fxService) *fxService { return newFxService(lc, name, units) },
				fx.ParamTags(``, groupTag(i)), out)))
			continue
		}
		opts = append(opts, fx.Provide(fx.Annotate(
			func(lc fx.Lifecycle) *fxService { return newFxService(lc, name, units) }, out)))
	}
	opts = append(opts, fx.Invoke(fx.Annotate(func([]*fxService) {}, fx.ParamTags(groupTag(0)))))
	app := fx.New(opts...)
	if err := app.Err(); err != nil {
		return nil, err
	}
	return &fxGroup{app: app}, nil
}

type fxChain struct {
	fxGroup
	sd   fx.Shutdowner
	fail *closer
	done chan struct{}
	err  error
}

func (c *fxChain) Start(ctx context.Context) error {
	if err := c.app.Start(ctx); err != nil {
		return err
	}
	wait := c.app.Wait()
	go func() { // ends once the app has stopped, on the failure or on Stop
		sig := <-wait
		c.err = c.app.Stop(context.Background())
		if sig.ExitCode != 0 && c.err == nil {
			c.err = ErrInjected
		}
		close(c.done)
	}()
	return nil
}

func (c *fxChain) Stop(context.Context) error {
	select {
	case <-c.done: // stopped on the failure
	default:
		if err := c.sd.Shutdown(); err != nil {
			return err
		}
		<-c.done
	}
	if c.err != nil && c.err != ErrInjected {
		return c.err
	}
	return nil
}

func (c *fxChain) Fail()                 { c.fail.close() }
func (c *fxChain) Done() <-chan struct{} { return c.done }
func (c *fxChain) Err() error            { <-c.done; return c.err }

// Chain implements Impl: service i's constructor takes service i-1 (named
// values), so fx starts them bottom up and stops them top down. fx has no
// failure propagation: the bottom's unit calls fx.Shutdowner.Shutdown with
// exit code 1, and the app is stopped (all OnStop hooks, top first) when
// fx.App.Wait reports it: Done is closed then.
func (Fx) Chain(depth int, p *Probe) (Chain, error) {
	c := &fxChain{fail: newCloser(), done: make(chan struct{})}
	name := func(i int) string { return `name:"s` + strconv.Itoa(i) + `"` }
	opts := []fx.Option{fx.NopLogger, fx.Provide(fx.Annotate(
		func(lc fx.Lifecycle, sd fx.Shutdowner) *fxService {
			return newFxService(lc, "s0", []func(context.Context) error{func(ctx context.Context) error {
				err := failOnce(ctx, p, c.fail.ch)
				if err != nil {
					_ = sd.Shutdown(fx.ExitCode(1))
				}
				return err
			}})
		}, fx.ResultTags(name(0))))}
	for i := 1; i <= depth; i++ {
		opts = append(opts, fx.Provide(fx.Annotate(
			func(lc fx.Lifecycle, _ *fxService) *fxService {
				return newFxService(lc, "s", Spec{}.Units(p))
			}, fx.ParamTags(``, name(i-1)), fx.ResultTags(name(i)))))
	}
	opts = append(opts, fx.Invoke(fx.Annotate(func(*fxService) {}, fx.ParamTags(name(depth)))), fx.Populate(&c.sd))
	c.app = fx.New(opts...)
	if err := c.app.Err(); err != nil {
		return nil, err
	}
	return c, nil
}

// Shared implements Impl: one constructor for the shared service, and one
// per parent taking it, so fx starts it first and stops it last. The
// shared service's OnStart returns once its unit runs, as an OnStart that
// waits for its server to listen does: fx orders hooks, not goroutines.
func (Fx) Shared(names []string, p *Probe) (Group, error) {
	opts := []fx.Option{fx.NopLogger, fx.Provide(fx.Annotate(
		func(lc fx.Lifecycle) *fxService {
			running := make(chan struct{})
			s := &fxService{name: "shared", units: []func(context.Context) error{func(ctx context.Context) error {
				return sharedUntilStop(ctx, p, func() { close(running) })
			}}}
			lc.Append(fx.Hook{OnStart: func(ctx context.Context) error {
				if err := s.start(ctx); err != nil {
					return err
				}
				select {
				case <-running:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}, OnStop: s.stop})
			return s
		},
		fx.ResultTags(`name:"shared"`)))}
	parent := []func(context.Context) error{func(ctx context.Context) error { return parentUntilStop(ctx, p, nil) }}
	for _, name := range names {
		opts = append(opts, fx.Provide(fx.Annotate(
			func(lc fx.Lifecycle, _ *fxService) *fxService { return newFxService(lc, name, parent) },
			fx.ParamTags(``, `name:"shared"`), fx.ResultTags(groupTag(0)))))
	}
	opts = append(opts, fx.Invoke(fx.Annotate(func([]*fxService) {}, fx.ParamTags(groupTag(0)))))
	app := fx.New(opts...)
	if err := app.Err(); err != nil {
		return nil, err
	}
	return &fxGroup{app: app}, nil
}
