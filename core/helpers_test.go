package core_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// unit is a core.Option and core.Unit running fn in one goroutine.
type unit struct {
	name   string
	launch error // returned by Launch, after fn is started when fn != nil
	fn     func(ctx context.Context) error
}

func (u *unit) ApplyTo(c *core.Config) { c.AddUnit(u) }
func (u *unit) Name() string           { return u.name }
func (u *unit) Launch(_ context.Context, h *core.Host) error {
	if u.fn != nil {
		h.Go(u.name, u.fn)
	}
	return u.launch
}

// req is a core.Option and core.Requirement for a fixed service.
type req struct {
	name    string
	svc     core.Service
	awaited bool
	after   []core.Requirement
	resolve func(context.Context) (core.Service, error)
}

func (r *req) ApplyTo(c *core.Config) { c.AddRequirement(r) }
func (r *req) Name() string {
	if r.name == "" && r.svc != nil {
		return r.svc.Name()
	}
	return r.name
}
func (r *req) Owned() bool               { return !r.awaited }
func (r *req) After() []core.Requirement { return r.after }
func (r *req) Resolve(ctx context.Context) (core.Service, error) {
	if r.resolve != nil {
		return r.resolve(ctx)
	}
	return r.svc, nil
}

func requires(s core.Service, after ...core.Requirement) *req {
	return &req{svc: s, after: after}
}

// check is a core.Option and core.Check.
type check struct {
	name      string
	fn        func(context.Context) error
	timeout   func(time.Duration) time.Duration
	threshold int
}

func (c *check) ApplyTo(cfg *core.Config) { cfg.AddCheck(c) }
func (c *check) Name() string             { return c.name }
func (c *check) Check(ctx context.Context) error {
	return c.fn(ctx)
}
func (c *check) Timeout(interval time.Duration) time.Duration {
	if c.timeout != nil {
		return c.timeout(interval)
	}
	return interval
}
func (c *check) Threshold() int {
	if c.threshold == 0 {
		return 1
	}
	return c.threshold
}

// fake is a core.Service that is not a *core.Base, recording its calls.
type fake struct {
	name     string
	rec      *coretest.Recorder
	startErr error
	stopErr  error
	block    chan struct{} // Start waits on it (or ctx) when not nil
	hang     chan struct{} // Start and Stop wait on it, ignoring ctx, when not nil

	mu    sync.Mutex
	state core.State
	err   error
	done  chan struct{}
	once  sync.Once
}

func newFake(name string, rec *coretest.Recorder) *fake {
	return &fake{name: name, rec: rec, done: make(chan struct{})}
}

func (f *fake) Name() string { return f.name }
func (f *fake) Start(ctx context.Context) error {
	f.rec.Add(f.name + " start")
	if f.hang != nil {
		<-f.hang
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			f.setFinal(core.StateFailed, ctx.Err())
			return ctx.Err()
		}
	}
	if f.startErr != nil {
		f.setFinal(core.StateFailed, f.startErr)
		return f.startErr
	}
	f.mu.Lock()
	f.state = core.StateRunning
	f.mu.Unlock()
	return nil
}
func (f *fake) Stop(context.Context) error {
	f.rec.Add(f.name + " stop")
	if f.hang != nil && f.State() == core.StateRunning {
		<-f.hang
	}
	f.setFinal(core.StateTerminated, nil)
	return f.stopErr
}

// stopping makes the fake report StateStopping, as a service of another
// type whose own stop is under way.
func (f *fake) stopping() {
	f.mu.Lock()
	f.state = core.StateStopping
	f.mu.Unlock()
}

// crash makes the fake fail on its own while running.
func (f *fake) crash(err error) { f.setFinal(core.StateFailed, err) }

func (f *fake) setFinal(s core.State, err error) {
	f.once.Do(func() {
		f.mu.Lock()
		f.state, f.err = s, err
		f.mu.Unlock()
		close(f.done)
	})
}
func (f *fake) Healthcheck(context.Context) error {
	if f.State() != core.StateRunning {
		return core.ErrUnhealthy
	}
	return nil
}
func (f *fake) State() core.State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}
func (f *fake) Done() <-chan struct{} { return f.done }
func (f *fake) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// gateHandler is a slog.Handler that, the first time it sees a record with
// message msg, closes hit and blocks until gate is closed. The library raises
// every state change through its logger, so this pins a service between two
// steps of its lifecycle without touching its code.
type gateHandler struct {
	msg  string
	hit  chan struct{}
	gate chan struct{}
	once *sync.Once
}

func newGate(msg string) *gateHandler {
	return &gateHandler{msg: msg, hit: make(chan struct{}), gate: make(chan struct{}), once: new(sync.Once)}
}

func (h *gateHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *gateHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.once.Do(func() {
			close(h.hit)
			<-h.gate
		})
	}
	return nil
}
func (h *gateHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *gateHandler) WithGroup(string) slog.Handler      { return h }

// slowNode is a service whose start takes d (fake time) and records it.
func slowNode(name string, rec *coretest.Recorder, d time.Duration, opts ...core.Option) *core.Base {
	return coretest.Node(name, rec, append([]core.Option{core.OnStart(func(ctx context.Context) error {
		select {
		case <-time.After(d):
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})}, opts...)...)
}

// failsAfter is a unit function that returns err after d, or nil once the
// service stops.
func failsAfter(d time.Duration, err error) func(context.Context) error {
	return func(ctx context.Context) error {
		select {
		case <-time.After(d):
			return err
		case <-ctx.Done():
			return nil
		}
	}
}
