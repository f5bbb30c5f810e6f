package deps_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/health"
	"github.com/coreservice/coreservice/internal/coretest"
)

// conn is a service of a user's own type, not a *core.Base: the test fails
// it with fail; its Stop returns stopErr.
type conn struct {
	name    string
	stopErr error
	block   chan struct{} // if set, Start waits for it, ignoring its context

	mu    sync.Mutex
	state core.State
	err   error
	done  chan struct{}
}

func newConn(name string, stopErr error) *conn {
	return &conn{name: name, stopErr: stopErr, state: core.StateNew, done: make(chan struct{})}
}

func (c *conn) Name() string { return c.name }

func (c *conn) Start(context.Context) error {
	if c.block != nil {
		<-c.block
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state = core.StateRunning
	return nil
}

func (c *conn) Stop(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == core.StateRunning {
		c.state = core.StateTerminated
		close(c.done)
	}
	return c.stopErr
}

func (c *conn) Healthcheck(context.Context) error {
	if st := c.State(); st != core.StateRunning {
		return fmt.Errorf("%s is %v", c.name, st)
	}
	return nil
}

func (c *conn) State() core.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

func (c *conn) Done() <-chan struct{} { return c.done }

func (c *conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// fail fails c as its own failure would.
func (c *conn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == core.StateRunning {
		c.state, c.err = core.StateFailed, err
		close(c.done)
	}
}

// conns is a factory of conns, named "<name>#<n>".
type conns struct {
	name    string
	stopErr error
	mu      sync.Mutex
	built   []*conn
}

func (f *conns) factory(context.Context) (*conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := newConn(fmt.Sprintf("%s#%d", f.name, len(f.built)+1), f.stopErr)
	f.built = append(f.built, c)
	return c, nil
}

func (f *conns) last() *conn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.built[len(f.built)-1]
}

func (f *conns) all() []*conn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*conn(nil), f.built...)
}

// constant returns a policy function of a BackOff that always gives d.
func constant(d time.Duration) func() backoff.BackOff {
	return func() backoff.BackOff { return backoff.NewConstantBackOff(d) }
}

// panicky is a BackOff whose methods panic when asked to.
type panicky struct {
	mu                    sync.Mutex
	panicReset, panicNext bool
}

func (p *panicky) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.panicReset {
		panic("reset exploded")
	}
}

func (p *panicky) NextBackOff() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.panicNext {
		panic("next exploded")
	}
	return time.Second
}

func TestInstanceOfAnotherTypeThanBaseIsRestarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &conns{name: "db"}
		db := deps.Supervise(f.factory, constant(time.Second), deps.Name("db"))
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), db)
		coretest.MustStart(t, api)
		first := f.last()
		first.fail(errors.New("disk full"))
		synctest.Wait()
		advance(time.Second)
		got, err := db.Current(t.Context())
		if err != nil || got == first || got.State() != core.StateRunning {
			t.Fatalf("Current after the delay: got %v, %v, want a new Running instance", got, err)
		}
		if n := db.Restarts(); n != 1 {
			t.Fatalf("Restarts: got %d, want 1", n)
		}
		coretest.MustStop(t, api)
		for _, c := range f.all() {
			if !isFinal(c.State()) {
				t.Fatalf("%s once the parent stopped: got %v, want a final state", c.Name(), c.State())
			}
		}
	})
}

func TestStopErrorOfAFailedInstanceIsLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := coretest.NewLogs()
		f := &conns{name: "db", stopErr: errors.New("flush failed")}
		db := deps.Supervise(f.factory, constant(time.Second), deps.Name("db"))
		api := core.NewService(core.Name("api"), core.Logger(logs.Logger()), db)
		coretest.MustStart(t, api)
		f.last().fail(errors.New("disk full"))
		synctest.Wait()
		advance(time.Second)
		found := false
		for _, r := range logs.Records() {
			if strings.Contains(fmt.Sprint(r), "flush failed") {
				found = true
			}
		}
		if !found {
			t.Errorf("records: got %v, want the failed instance's stop error (flush failed) logged", logs.Records())
		}
		// The last instance's stop error is the parent's Stop result.
		if err := api.Stop(context.Background()); err == nil || !strings.Contains(err.Error(), "flush failed") {
			t.Errorf("parent's Stop: got %v, want the held instance's stop error", err)
		}
	})
}

func TestStopErrorOfAFailedBaseInstanceIsLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := coretest.NewLogs()
		f := &coretest.Flaky{Name: "db", Opts: []core.Option{core.OnStop(func(context.Context) error { return errors.New("flush failed") })}}
		db := deps.Supervise(f.Factory, constant(time.Second), deps.Name("db"))
		api := core.NewService(core.Name("api"), core.Logger(logs.Logger()), db)
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		synctest.Wait()
		advance(time.Second)
		found := false
		for _, r := range logs.Records() {
			if strings.Contains(fmt.Sprint(r), "flush failed") {
				found = true
			}
		}
		if !found && f.Built()[0].Err() == nil {
			t.Errorf("records: got %v, and db#1's Err nil, want the failed instance's stop error (flush failed) logged or in its Err", logs.Records())
		}
		_ = api.Stop(context.Background())
	})
}

func TestPanickingPolicyFailsTheParentNotTheProcess(t *testing.T) {
	t.Run("Reset at the parent's start", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := &coretest.Flaky{Name: "db"}
			pol := &panicky{panicReset: true}
			db := deps.Supervise(f.Factory, func() backoff.BackOff { return pol }, deps.Name("db"))
			api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), db)
			err := api.Start(t.Context())
			if err == nil || !strings.Contains(err.Error(), "reset exploded") || !strings.Contains(err.Error(), "db") {
				t.Fatalf("Start: got %v, want the panic, naming requirement db", err)
			}
			wantAllStopped(t, f.Built(), "at the end")
		})
	})
	t.Run("NextBackOff during a restart", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := &coretest.Flaky{Name: "db"}
			pol := &panicky{}
			db := deps.Supervise(f.Factory, func() backoff.BackOff { return pol }, deps.Name("db"))
			api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), db)
			coretest.MustStart(t, api)
			pol.mu.Lock()
			pol.panicNext = true
			pol.mu.Unlock()
			f.Last().Fail(errors.New("disk full"))
			<-api.Done()
			if err := api.Err(); err == nil || !strings.Contains(err.Error(), "next exploded") || !strings.Contains(err.Error(), "requirement db") {
				t.Fatalf("parent's Err: got %v, want the panic, naming requirement db", err)
			}
			wantAllStopped(t, f.Built(), "at the end")
		})
	})
}

func TestNegativeDelayRestartsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		db, api := supervised(f, coretest.NewPolicy(-time.Second), &coretest.Events{})
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		synctest.Wait()
		if got := f.Last(); got.N != 2 || got.State() != core.StateRunning || db.Restarts() != 1 {
			t.Fatalf("after a negative delay: got instance %d %v, Restarts %d, want instance 2 Running at once, Restarts 1",
				got.N, got.State(), db.Restarts())
		}
		coretest.MustStop(t, api)
	})
}

func TestHugeDelayIsEndedByTheParentsStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		db, api := supervised(f, coretest.NewPolicy(time.Duration(math.MaxInt64)), &coretest.Events{})
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		synctest.Wait()
		waiting := make(chan error, 1)
		go func() {
			_, err := db.Current(context.Background())
			waiting <- err
		}()
		synctest.Wait()
		took, err := coretest.Bounded(t, "parent's Stop", func() error { return api.Stop(context.Background()) })
		if err != nil || took != 0 {
			t.Fatalf("Stop: got %v after %v, want nil at once", err, took)
		}
		if err := <-waiting; err == nil || !strings.Contains(err.Error(), "db") {
			t.Fatalf("Current blocked during the stop: got %v, want an error naming db", err)
		}
		if len(f.Built()) != 1 {
			t.Fatalf("instances: got %d, want 1 (none built once stopping)", len(f.Built()))
		}
	})
}

func TestFactoryIgnoringItsContextDoesNotHangTheParentsStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		block := make(chan struct{})
		entered := make(chan struct{})
		calls := 0
		factory := func(ctx context.Context) (*coretest.Instance, error) {
			if calls++; calls == 2 {
				close(entered)
				<-block // ignores ctx
			}
			return f.Factory(ctx)
		}
		db := deps.Supervise(factory, constant(time.Second), deps.Name("db"))
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), db)
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		advance(time.Second)
		<-entered
		took, err := coretest.Bounded(t, "parent's Stop", func() error { return api.Stop(context.Background()) })
		close(block)
		synctest.Wait()
		if took > 2*core.DefaultStopTimeout {
			t.Errorf("Stop took %v, want it bounded by the stop timeouts", took)
		}
		if err == nil {
			t.Errorf("Stop with a factory still running: got nil, want an error saying what did not stop")
		}
		wantNoneRunning(t, f.Built(), "once the factory returned")
	})
}

func TestFactoryIgnoringItsContextIsBoundedByTheParentsStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		f := &coretest.Flaky{Name: "db"}
		factory := func(ctx context.Context) (*coretest.Instance, error) {
			<-block // ignores ctx
			return f.Factory(ctx)
		}
		db := deps.Supervise(factory, constant(time.Second), deps.Name("db"))
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.StartTimeout(5*time.Second), db)
		took, err := coretest.Bounded(t, "parent's Start", func() error { return api.Start(context.Background()) })
		close(block)
		synctest.Wait()
		if err == nil || took > 2*core.DefaultStartTimeout {
			t.Fatalf("Start with a factory that blocks: got %v after %v, want an error within the start timeouts", err, took)
		}
		wantNoneRunning(t, f.Built(), "once the factory returned")
	})
}

func TestNewInstanceWhoseStartHangsIsBoundedByItsStartTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db", Opts: []core.Option{core.StartTimeout(3 * time.Second)}}
		release := make(chan struct{})
		factory := func(ctx context.Context) (*coretest.Instance, error) {
			inst, err := f.Factory(ctx)
			if inst.N == 2 {
				inst.Base = core.NewService(core.Name("db#2"), core.Logger(coretest.Quiet()), core.StartTimeout(3*time.Second),
					core.OnStart(func(context.Context) error { <-release; return nil }))
			}
			return inst, err
		}
		ev := &coretest.Events{}
		db := deps.Supervise(factory, func() backoff.BackOff { return coretest.NewPolicy(time.Second, time.Second) },
			deps.Name("db"), deps.OnEvent(ev.Hook))
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), db)
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		synctest.Wait()
		advance(time.Minute)
		if got := f.Last(); got.N != 3 || got.State() != core.StateRunning {
			t.Fatalf("after instance 2's start hung: got instance %d %v, want instance 3 Running", got.N, got.State())
		}
		sched := coretest.OfType[core.RestartScheduled](ev)
		if len(sched) != 2 || sched[1].Instance != "db#2" || sched[1].Err == nil {
			t.Fatalf("scheduled restarts: got %v, want db#2's hung start as the second cause", sched)
		}
		if took, _ := coretest.Bounded(t, "parent's Stop", func() error { return api.Stop(context.Background()) }); took > 2*core.DefaultStopTimeout {
			t.Fatalf("Stop took %v, want it bounded", took)
		}
		close(release) // the abandoned start returns
		synctest.Wait()
		if st := f.Built()[1].State(); st != core.StateNew && !isFinal(st) {
			t.Fatalf("db#2 once its hung start returned: got %v, want it stopped", st)
		}
	})
}

// crashUnit is a unit whose goroutine fails at once.
type crashUnit struct{}

func (u crashUnit) ApplyTo(c *core.Config) { c.AddUnit(u) }
func (crashUnit) Name() string             { return "crash" }
func (crashUnit) Launch(_ context.Context, h *core.Host) error {
	h.Go("crash", func(context.Context) error { return errors.New("crashed at once") })
	return nil
}

func TestInstanceThatFailsRightAfterItsStartIsRestartedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		factory := func(ctx context.Context) (*coretest.Instance, error) {
			inst, err := f.Factory(ctx)
			if inst.N == 2 {
				inst.Base = core.NewService(core.Name("db#2"), core.Logger(coretest.Quiet()), crashUnit{})
			}
			return inst, err
		}
		ev := &coretest.Events{}
		db := deps.Supervise(factory, func() backoff.BackOff { return coretest.NewPolicy(time.Second, 2*time.Second) },
			deps.Name("db"), deps.OnEvent(ev.Hook))
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), db)
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		advance(time.Second)
		advance(2 * time.Second)
		if got := f.Last(); got.N != 3 || got.State() != core.StateRunning {
			t.Fatalf("got instance %d %v, want instance 3 Running", got.N, got.State())
		}
		if got, err := db.Current(t.Context()); err != nil || got.N != 3 {
			t.Fatalf("Current: got %v, %v, want instance 3", got, err)
		}
		sched := coretest.OfType[core.RestartScheduled](ev)
		if len(sched) != 2 || sched[1].Instance != "db#2" || !strings.Contains(fmt.Sprint(sched[1].Err), "crashed at once") {
			t.Fatalf("scheduled restarts: got %v, want db#2's crash as the second cause", sched)
		}
		if api.State() != core.StateRunning {
			t.Fatalf("parent: got %v, want Running", api.State())
		}
		coretest.MustStop(t, api)
	})
}

func TestCurrentWaitersGetTheGiveUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		refused := errors.New("connection refused")
		f := &coretest.Flaky{Name: "db", StartErr: func(n int) error {
			if n > 1 {
				return refused
			}
			return nil
		}}
		db, api := supervised(f, coretest.NewPolicy(time.Second), &coretest.Events{})
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		synctest.Wait()
		const waiters = 3
		errs := make(chan error, waiters)
		for range waiters {
			go func() {
				_, err := db.Current(context.Background())
				errs <- err
			}()
		}
		synctest.Wait()
		advance(time.Second)
		for range waiters {
			var gu *deps.GaveUpError
			if err := <-errs; !errors.As(err, &gu) || !errors.Is(err, refused) {
				t.Fatalf("Current blocked when the supervisor gave up: got %v, want its *GaveUpError", err)
			}
		}
		<-api.Done()
	})
}

func TestCurrentWaitersAreEndedByTheParentsStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		db, api := supervised(f, coretest.NewPolicy(time.Hour), &coretest.Events{})
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		synctest.Wait()
		errs := make(chan error, 1)
		go func() {
			_, err := db.Current(context.Background())
			errs <- err
		}()
		synctest.Wait()
		coretest.MustStop(t, api)
		if err := <-errs; err == nil || !strings.Contains(err.Error(), "db") {
			t.Fatalf("Current blocked during the parent's stop: got %v, want an error naming db", err)
		}
	})
}

func TestInstanceStoppedWhileTheParentRunsIsRestarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		ev := &coretest.Events{}
		db, api := supervised(f, coretest.NewPolicy(time.Second), ev)
		coretest.MustStart(t, api)
		coretest.MustStop(t, f.Last())
		synctest.Wait()
		advance(time.Second)
		if got, err := db.Current(t.Context()); err != nil || got.N != 2 {
			t.Fatalf("Current: got %v, %v, want instance 2", got, err)
		}
		sched := coretest.OfType[core.RestartScheduled](ev)
		if len(sched) != 1 || sched[0].Err == nil || !strings.Contains(sched[0].Err.Error(), "db#1 stopped") {
			t.Fatalf("scheduled: got %v, want one, saying db#1 stopped", sched)
		}
		coretest.MustStop(t, api)
	})
}

func TestStopFromInsideTheFactoryEndsTheParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		var api *core.Base
		stopped := make(chan error, 1)
		calls := 0
		factory := func(ctx context.Context) (*coretest.Instance, error) {
			if calls++; calls == 2 {
				stopped <- api.Stop(ctx)
			}
			return f.Factory(ctx)
		}
		db := deps.Supervise(factory, constant(time.Second), deps.Name("db"))
		api = core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), db)
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		advance(time.Second)
		advance(time.Hour)
		select {
		case <-api.Done():
		default:
			t.Fatalf("parent an hour after Stop was called from the factory: got %v, want it stopped", api.State())
		}
		select {
		case <-stopped:
		default:
			t.Fatal("Stop called from the factory still blocked an hour later")
		}
		wantNoneRunning(t, f.Built(), "at the end")
	})
}

// supervisedWith is supervised with opts, built for each instance (a
// Requirement belongs to one service).
func supervisedWith(f *coretest.Flaky, opts func() []core.Option, pol backoff.BackOff) (*deps.Requirement[*coretest.Instance], *core.Base) {
	factory := func(ctx context.Context) (*coretest.Instance, error) {
		f.Opts = opts() // one factory call at a time
		return f.Factory(ctx)
	}
	db := deps.Supervise(factory, func() backoff.BackOff { return pol }, deps.Name("db"))
	api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), db)
	return db, api
}

func TestSharedRequirementOfAnInstanceIsJoinedNotRestarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		shared := coretest.Node("shared", rec)
		other := coretest.Node("other", rec, deps.Requires(shared))
		coretest.MustStart(t, other)
		f := &coretest.Flaky{Name: "db"}
		_, api := supervisedWith(f, func() []core.Option { return []core.Option{deps.Requires(shared)} }, coretest.NewPolicy(time.Second))
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		synctest.Wait()
		if shared.State() != core.StateRunning {
			t.Fatalf("shared once db#1 failed: got %v, want Running (other holds it)", shared.State())
		}
		advance(time.Second)
		if f.Last().N != 2 || f.Last().State() != core.StateRunning {
			t.Fatalf("got instance %d %v (%v), want instance 2 Running", f.Last().N, f.Last().State(), f.Last().Err())
		}
		coretest.MustStop(t, api)
		if shared.State() != core.StateRunning {
			t.Fatalf("shared once api stopped: got %v, want Running (other holds it)", shared.State())
		}
		coretest.MustStop(t, other)
		coretest.WantEvents(t, rec.Events(), []string{"shared start", "other start", "other stop", "shared stop"})
	})
}

func TestRequirementHeldOnlyByTheFailedInstanceIsStoppedWithItAndNamedByTheNextStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		own := coretest.Node("own", rec)
		f := &coretest.Flaky{Name: "db"}
		_, api := supervisedWith(f, func() []core.Option { return []core.Option{deps.Requires(own)} }, coretest.NewPolicy(time.Second))
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		advance(time.Second)
		// A stopped service never starts again (Supervise's doc): the
		// next instance's start fails, naming it.
		if own.State() != core.StateTerminated || f.Last().N != 2 || f.Last().State() != core.StateFailed ||
			!strings.Contains(f.Last().Err().Error(), "requirement own: own is terminated") {
			t.Fatalf("own: got %v with instance %d %v (%v), want own terminated and instance 2 failed naming it",
				own.State(), f.Last().N, f.Last().State(), f.Last().Err())
		}
		coretest.MustStop(t, api)
		coretest.WantEvents(t, rec.Events(), []string{"own start", "own stop"})
	})
}

func TestLazyRequirementOfAnInstanceIsBuiltAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		builds := 0
		build := func(context.Context) (*core.Base, error) {
			builds++
			return coretest.Node(fmt.Sprintf("cache%d", builds), rec), nil
		}
		f := &coretest.Flaky{Name: "db"}
		_, api := supervisedWith(f, func() []core.Option { return []core.Option{deps.Lazy(build, deps.Name("cache"))} }, coretest.NewPolicy(time.Second))
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		advance(time.Second)
		if builds != 2 {
			t.Fatalf("Lazy builds: got %d, want 2 (once per instance)", builds)
		}
		coretest.MustStop(t, api)
		coretest.WantEvents(t, rec.Events(), []string{"cache1 start", "cache1 stop", "cache2 start", "cache2 stop"})
	})
}

// outer is a service with a supervised requirement of its own.
type outer struct {
	*core.Base
	inner *deps.Requirement[*coretest.Instance]
	f     *coretest.Flaky
}

func TestNestedSupervisorsRestartIndependently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			mu     sync.Mutex
			outers []*outer
		)
		factory := func(context.Context) (*outer, error) {
			mu.Lock()
			defer mu.Unlock()
			o := &outer{f: &coretest.Flaky{Name: fmt.Sprintf("conn%d", len(outers)+1)}}
			o.inner = deps.Supervise(o.f.Factory, constant(time.Second), deps.Name("conn"))
			fu := coretest.NewHostUnit("fail")
			o.Base = core.NewService(core.Name(fmt.Sprintf("pool#%d", len(outers)+1)), core.Logger(coretest.Quiet()), o.inner, fu)
			outers = append(outers, o)
			return o, nil
		}
		pool := deps.Supervise(factory, constant(2*time.Second), deps.Name("pool"))
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), pool)
		coretest.MustStart(t, api)
		first := pool.Get()
		first.f.Last().Fail(errors.New("conn reset"))
		advance(time.Second)
		if first.inner.Restarts() != 1 || pool.Restarts() != 0 || first.State() != core.StateRunning {
			t.Fatalf("after the inner failure: got inner %d, outer %d restarts, pool %v, want 1, 0, Running",
				first.inner.Restarts(), pool.Restarts(), first.State())
		}
		coretest.MustStop(t, first) // the outer instance ends: its own supervisor with it
		advance(2 * time.Second)
		second, err := pool.Current(t.Context())
		if err != nil || second == first || pool.Restarts() != 1 {
			t.Fatalf("after the outer stop: got %v, %v, %d restarts, want a new pool, 1 restart", second, err, pool.Restarts())
		}
		if c, err := second.inner.Current(t.Context()); err != nil || c.State() != core.StateRunning {
			t.Fatalf("the new pool's conn: got %v, %v, want Running", c, err)
		}
		coretest.MustStop(t, api)
		mu.Lock()
		defer mu.Unlock()
		for _, o := range outers {
			for _, c := range o.f.Built() {
				if !isFinal(c.State()) {
					t.Fatalf("%s: got %v, want it stopped", c.Name(), c.State())
				}
			}
		}
	})
}

func TestInstanceJoinedByAnotherHolderOutlivesTheParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		db, api := supervised(f, coretest.NewPolicy(time.Second), &coretest.Events{})
		coretest.MustStart(t, api)
		hu := coretest.NewHostUnit("holder")
		other := core.NewService(core.Name("other"), core.Logger(coretest.Quiet()), hu)
		coretest.MustStart(t, other)
		inst := db.Get()
		if err := hu.Host().Acquire(t.Context(), "db", inst); err != nil {
			t.Fatalf("Acquire: got %v, want nil", err)
		}
		coretest.MustStop(t, api)
		if inst.State() != core.StateRunning {
			t.Fatalf("db#1 once api stopped: got %v, want Running (other holds it)", inst.State())
		}
		coretest.MustStop(t, other)
		if !isFinal(inst.State()) {
			t.Fatalf("db#1 once other stopped: got %v, want a final state", inst.State())
		}
	})
}

func TestParentStopRacingTheRestartLeavesNoInstanceRunning(t *testing.T) {
	for i := range 20 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &coretest.Flaky{Name: "db"}
				_, api := supervised(f, coretest.NewPolicy(time.Second), &coretest.Events{})
				coretest.MustStart(t, api)
				f.Last().Fail(errors.New("disk full"))
				synctest.Wait()
				coretest.Advance(time.Second) // the timer fires as Stop begins
				if err := api.Stop(context.Background()); err != nil {
					t.Fatalf("Stop: got %v, want nil", err)
				}
				synctest.Wait()
				wantNoneRunning(t, f.Built(), "once the parent stopped")
			})
		})
	}
}

func TestGraphShowsTheRestartCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		_, api := supervised(f, coretest.NewPolicy(time.Second, time.Second), &coretest.Events{})
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		synctest.Wait()
		if g := deps.Graph(api); !strings.Contains(g, "restarting (attempt 1 in 1s)") {
			t.Fatalf("Graph during the restart: got\n%s\nwant the supervisor restarting", g)
		}
		advance(time.Second)
		if g := deps.Graph(api); !strings.Contains(g, "restarts: 1") || !strings.Contains(g, "db#2") {
			t.Fatalf("Graph once restarted: got\n%s\nwant restarts: 1 and db#2", g)
		}
		coretest.MustStop(t, api)
	})
}

func TestProbeShowsRestartingThenReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		_, api := supervised(f, coretest.NewPolicy(2*time.Second), &coretest.Events{})
		coretest.MustStart(t, api)
		h := health.Handler(api)
		probe := func(path string) (int, string) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
			return w.Code, w.Body.String()
		}
		if code, body := probe("/readyz"); code != http.StatusOK {
			t.Fatalf("/readyz while Running: got %d %q, want 200", code, body)
		}
		f.Last().Fail(errors.New("disk full"))
		synctest.Wait()
		code, body := probe("/readyz/api/db/supervisor")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "restarting (attempt 1 in 2s)") {
			t.Fatalf("/readyz/api/db/supervisor during the restart: got %d %q, want 503 restarting (attempt 1 in 2s)", code, body)
		}
		if code, _ := probe("/livez"); code != http.StatusOK {
			t.Fatalf("/livez during the restart: got %d, want 200 (the parent runs)", code)
		}
		advance(2 * time.Second)
		if code, body := probe("/readyz"); code != http.StatusOK {
			t.Fatalf("/readyz once restarted: got %d %q, want 200", code, body)
		}
		coretest.MustStop(t, api)
	})
}

func TestReadersDuringRestartsAreSafe(t *testing.T) {
	f := &coretest.Flaky{Name: "db"}
	delays := make([]time.Duration, 50)
	db, api := supervised(f, coretest.NewPolicy(delays...), &coretest.Events{}, deps.HealthyAfter(time.Hour))
	coretest.MustStart(t, api)
	h := health.Handler(api)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	readers := []func(){
		func() { _ = db.Get() },
		func() { _ = db.Restarts() },
		func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
			defer cancel()
			_, _ = db.Current(ctx)
		},
		func() { _ = deps.Graph(api) },
		func() { _ = api.Healthcheck(context.Background()) },
		func() {
			for _, d := range api.Dependencies() {
				if b, ok := d.Service.(*core.Base); ok {
					_ = b.Statuses()
				}
			}
		},
		func() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz?verbose", nil))
		},
	}
	for _, read := range readers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					read()
				}
			}
		})
	}
	for range 20 {
		inst, err := db.Current(t.Context())
		if err != nil {
			t.Fatalf("Current: got %v, want an instance", err)
		}
		inst.Fail(errors.New("disk full"))
		<-inst.Done()
	}
	if _, err := db.Current(t.Context()); err != nil {
		t.Fatalf("Current after 20 restarts: got %v, want an instance", err)
	}
	close(stop)
	wg.Wait()
	if n := db.Restarts(); n != 20 {
		t.Fatalf("Restarts: got %d, want 20", n)
	}
	coretest.MustStop(t, api)
}

func TestPolicyStoppingAtOnceGivesUpWithTheInstancesFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		ev := &coretest.Events{}
		_, api := supervised(f, coretest.NewPolicy(), ev)
		coretest.MustStart(t, api)
		full := errors.New("disk full")
		f.Last().Fail(full)
		<-api.Done()
		var gu *deps.GaveUpError
		if err := api.Err(); !errors.As(err, &gu) || gu.Attempts != 0 || !errors.Is(err, full) || gu.Requirement != "db" {
			t.Fatalf("parent's Err: got %v, want a *GaveUpError of db after 0 restarts wrapping disk full", err)
		}
		gave := coretest.OfType[core.RestartGaveUp](ev)
		if len(gave) != 1 || !errors.Is(gave[0].Err, full) || len(coretest.OfType[core.RestartScheduled](ev)) != 0 {
			t.Fatalf("events: got %v, want one RestartGaveUp with disk full and no restart scheduled", ev.All())
		}
	})
}

func TestPermanentStartErrorOfANewInstanceGivesUpAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gone := errors.New("schema gone")
		f := &coretest.Flaky{Name: "db", StartErr: func(n int) error {
			if n > 1 {
				return backoff.Permanent(gone)
			}
			return nil
		}}
		pol := coretest.NewPolicy(time.Second, time.Second, time.Second)
		_, api := supervised(f, pol, &coretest.Events{})
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		advance(time.Second)
		<-api.Done()
		var gu *deps.GaveUpError
		if err := api.Err(); !errors.As(err, &gu) || gu.Attempts != 1 || !errors.Is(err, gone) {
			t.Fatalf("parent's Err: got %v, want a *GaveUpError after 1 restart wrapping schema gone", err)
		}
		if n := len(f.Built()); n != 2 {
			t.Fatalf("instances: got %d, want 2 (no retry after a permanent start error)", n)
		}
	})
}

func TestFirstInstancesFailureNamesTheRequirement(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db", StartErr: func(int) error { return errors.New("connection refused") }}
		_, api := supervised(f, coretest.NewPolicy(time.Second), &coretest.Events{})
		err := api.Start(t.Context())
		if err == nil || !strings.Contains(err.Error(), "requirement db") || !strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("Start: got %v, want the failure naming requirement db", err)
		}
		if st := f.Last().State(); !isFinal(st) {
			t.Fatalf("db#1: got %v, want a final state", st)
		}
	})
}

func TestInstanceOfAnotherTypeWhoseStartHangsIsStoppedOnceItReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		f := &conns{name: "db"}
		factory := func(ctx context.Context) (*conn, error) {
			c, err := f.factory(ctx)
			if c.name == "db#2" {
				c.block = block
			}
			return c, err
		}
		db := deps.Supervise(factory, constant(time.Second), deps.Name("db"))
		logs := coretest.NewLogs()
		api := core.NewService(core.Name("api"), core.Logger(logs.Logger()), db)
		coretest.MustStart(t, api)
		f.last().fail(errors.New("disk full"))
		advance(time.Second) // db#2's start hangs
		took, err := coretest.Bounded(t, "parent's Stop", func() error { return api.Stop(context.Background()) })
		if took > 2*core.DefaultStopTimeout {
			t.Errorf("Stop took %v, want it bounded", took)
		}
		reported := err != nil && strings.Contains(err.Error(), "db#2")
		for _, r := range logs.Records() {
			if r.Level >= slog.LevelWarn && strings.Contains(fmt.Sprint(r), "db#2 Start") {
				reported = true
			}
		}
		if !reported {
			t.Errorf("parent's Stop: got %v and records %v, want db#2's start left running in Stop's result or logged", err, logs.Records())
		}
		close(block) // db#2's Start returns: it is Running, and nobody wants it
		advance(time.Hour)
		for _, c := range f.all() {
			if !isFinal(c.State()) {
				t.Errorf("%s once its late start returned: got %v, want it stopped (no instance left behind)", c.Name(), c.State())
			}
		}
	})
}

func TestPolicyIsCalledOncePerStartOfTheParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		calls := 0
		db := deps.Supervise(f.Factory, func() backoff.BackOff {
			calls++
			return coretest.NewPolicy(time.Second, time.Second, time.Second)
		}, deps.Name("db"))
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), db)
		_ = deps.Graph(api)
		coretest.MustStart(t, api)
		_ = deps.Graph(api)
		_ = api.Healthcheck(t.Context())
		for range 2 {
			f.Last().Fail(errors.New("disk full"))
			advance(time.Second)
		}
		if calls != 1 {
			t.Fatalf("policy function calls: got %d, want 1 for one start of the parent", calls)
		}
		coretest.MustStop(t, api)
	})
}

func TestNegativeHealthyAfterIsRejectedNamingTheRequirement(t *testing.T) {
	f := &coretest.Flaky{Name: "db"}
	db := deps.Supervise(f.Factory, constant(time.Second), deps.Name("db"), deps.HealthyAfter(-time.Second))
	api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), db)
	err := api.Start(t.Context())
	if !errors.Is(err, core.ErrInvalidOption) || !strings.Contains(err.Error(), "db") || !strings.Contains(err.Error(), "HealthyAfter") {
		t.Fatalf("Start: got %v, want ErrInvalidOption naming db and HealthyAfter", err)
	}
	if len(f.Built()) != 0 {
		t.Fatalf("instances: got %d, want none built", len(f.Built()))
	}
}

func TestStopFromAnEventHookEndsTheParent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		var api *core.Base
		var once sync.Once
		stopped := make(chan error, 1)
		hook := func(e core.Event) {
			if _, ok := e.(core.RestartScheduled); ok {
				once.Do(func() { stopped <- api.Stop(context.Background()) })
			}
		}
		db := deps.Supervise(f.Factory, constant(time.Second), deps.Name("db"), deps.OnEvent(hook))
		api = core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), db)
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		advance(time.Hour)
		select {
		case <-stopped:
		default:
			t.Fatalf("Stop called from an OnEvent hook still blocked an hour later (parent %v)", api.State())
		}
		wantNoneRunning(t, f.Built(), "at the end")
	})
}

func TestFailedInstanceWhoseStopHangsDoesNotStallTheRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		f := &coretest.Flaky{Name: "db"}
		factory := func(ctx context.Context) (*coretest.Instance, error) {
			if len(f.Built()) == 0 {
				f.Opts = []core.Option{core.StopTimeout(2 * time.Second), core.OnStop(func(context.Context) error { <-gate; return nil })}
			} else {
				f.Opts = nil
			}
			return f.Factory(ctx)
		}
		db := deps.Supervise(factory, constant(time.Second), deps.Name("db"))
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), db)
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		advance(time.Minute)
		if got := f.Last(); got.N != 2 || got.State() != core.StateRunning || db.Restarts() != 1 {
			t.Fatalf("a minute after db#1 failed with a hung stop: got instance %d %v, Restarts %d, want db#2 Running", got.N, got.State(), db.Restarts())
		}
		close(gate)
		synctest.Wait()
		coretest.MustStop(t, api)
	})
}

func TestBadInstanceDuringARestartGivesUpAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  func(first *coretest.Instance) *coretest.Instance
		want string
	}{
		{"nil", func(*coretest.Instance) *coretest.Instance { return nil }, "factory returned a nil service"},
		{"the failed instance again", func(first *coretest.Instance) *coretest.Instance { return first }, "build a new service each time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &coretest.Flaky{Name: "db"}
				var first *coretest.Instance
				factory := func(ctx context.Context) (*coretest.Instance, error) {
					if first == nil {
						var err error
						first, err = f.Factory(ctx)
						return first, err
					}
					return tc.bad(first), nil
				}
				pol := coretest.NewPolicy(time.Second, time.Second, time.Second)
				db := deps.Supervise(factory, func() backoff.BackOff { return pol }, deps.Name("db"))
				api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), db)
				coretest.MustStart(t, api)
				first.Fail(errors.New("disk full"))
				advance(time.Second)
				<-api.Done()
				var gu *deps.GaveUpError
				err := api.Err()
				if !errors.As(err, &gu) || gu.Attempts != 1 || !errors.Is(err, core.ErrInvalidOption) ||
					!strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "db") {
					t.Fatalf("parent's Err: got %v, want a *GaveUpError after 1 restart, ErrInvalidOption, %q, naming db", err, tc.want)
				}
			})
		})
	}
}

func TestAllCurrentWaitersGetTheRestartedInstance(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		db, api := supervised(f, coretest.NewPolicy(time.Second), &coretest.Events{})
		coretest.MustStart(t, api)
		f.Last().Fail(errors.New("disk full"))
		synctest.Wait()
		const waiters = 5
		got := make(chan *coretest.Instance, waiters)
		for range waiters {
			go func() {
				inst, err := db.Current(context.Background())
				if err != nil {
					t.Errorf("Current: got %v, want an instance", err)
				}
				got <- inst
			}()
		}
		advance(time.Second)
		for range waiters {
			if inst := <-got; inst == nil || inst.N != 2 {
				t.Fatalf("a waiter got %v, want instance 2", inst)
			}
		}
		coretest.MustStop(t, api)
	})
}

// The failure and the parent's Stop race on real goroutines (a bubble
// orders them too tidily), many rounds, with restarts at once.
func TestFailureRacingTheParentsStopLeavesNoInstanceRunning(t *testing.T) {
	for i := range 300 {
		f := &coretest.Flaky{Name: "db"}
		_, api := supervised(f, coretest.NewPolicy(0, 0, 0), &coretest.Events{}, deps.HealthyAfter(time.Hour))
		if err := api.Start(context.Background()); err != nil {
			t.Fatalf("Start: got %v, want nil", err)
		}
		begin := make(chan struct{})
		stopped, failed := make(chan error, 1), make(chan struct{})
		go func() { <-begin; f.Last().Fail(errors.New("disk full")); close(failed) }()
		go func() { <-begin; stopped <- api.Stop(context.Background()) }()
		close(begin)
		<-failed
		// A failure the stop saw first is in its result.
		if err := <-stopped; err != nil && !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("round %d: Stop: got %v, want nil or the instance's failure", i, err)
		}
		wantNoneRunning(t, f.Built(), fmt.Sprintf("in round %d, once the parent stopped", i))
	}
}

func TestCurrentAfterTheParentsStartFailedReturns(t *testing.T) {
	for _, order := range []string{"a sibling requirement fails first", "the first instance fails"} {
		t.Run(order, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &coretest.Flaky{Name: "db"}
				if order == "the first instance fails" {
					f.StartErr = func(int) error { return errors.New("connection refused") }
				}
				db := deps.Supervise(f.Factory, constant(time.Second), deps.Name("db"))
				bad := core.NewService(core.Name("bad"), core.Logger(coretest.Quiet()),
					core.OnStart(func(context.Context) error { return errors.New("no config") }))
				opts := []core.Option{core.Name("api"), core.Logger(coretest.Quiet())}
				if order == "a sibling requirement fails first" {
					opts = append(opts, deps.Requires(bad), db)
				} else {
					opts = append(opts, db)
				}
				api := core.NewService(opts...)
				if err := api.Start(context.Background()); err == nil {
					t.Fatal("parent's Start: got nil, want an error")
				}
				res := make(chan error, 1)
				go func() {
					_, err := db.Current(context.Background())
					res <- err
				}()
				select {
				case err := <-res:
					if err == nil {
						t.Fatal("Current after the parent's start failed: got nil, want an error")
					}
				case <-time.After(time.Hour):
					t.Fatal("Current after the parent's start failed still waiting an hour later: want an error at once")
				}
			})
		})
	}
}

func TestCurrentOfOtherKindsIsGetOnceRunning(t *testing.T) {
	rec := &coretest.Recorder{}
	node := coretest.Node("cfg", rec)
	cfg := deps.Requires(node)
	lazy := deps.Lazy(func(context.Context) (*core.Base, error) { return coretest.Node("cache", rec), nil }, deps.Name("cache"))
	if _, err := lazy.Current(t.Context()); err == nil || !strings.Contains(err.Error(), "not built") {
		t.Fatalf("Lazy's Current before the parent's start: got %v, want an error saying it is not built", err)
	}
	if _, err := cfg.Current(t.Context()); err == nil || !strings.Contains(err.Error(), "cfg") {
		t.Fatalf("Requires' Current before the parent's start: got %v, want an error naming cfg", err)
	}
	api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), cfg, lazy)
	coretest.MustStart(t, api)
	if got, err := cfg.Current(t.Context()); got != node || err != nil {
		t.Fatalf("Requires' Current while Running: got %v, %v, want cfg", got, err)
	}
	if got, err := lazy.Current(t.Context()); err != nil || got != lazy.Get() {
		t.Fatalf("Lazy's Current while Running: got %v, %v, want Get", got, err)
	}
	if cfg.Restarts() != 0 || lazy.Restarts() != 0 {
		t.Fatalf("Restarts of other kinds: got %d, %d, want 0", cfg.Restarts(), lazy.Restarts())
	}
	coretest.MustStop(t, api)
	if _, err := cfg.Current(t.Context()); err == nil || !strings.Contains(err.Error(), "terminated") {
		t.Fatalf("Requires' Current once stopped: got %v, want an error saying cfg is terminated", err)
	}
}

func TestStopFromInsideTheFirstFactoryCallEndsTheStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &coretest.Flaky{Name: "db"}
		var api *core.Base
		stopped := make(chan error, 1)
		factory := func(ctx context.Context) (*coretest.Instance, error) {
			stopped <- api.Stop(context.Background()) // the parent is Starting
			return f.Factory(ctx)
		}
		db := deps.Supervise(factory, constant(time.Second), deps.Name("db"))
		api = core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), db)
		took, err := coretest.Bounded(t, "parent's Start", func() error { return api.Start(context.Background()) })
		if err == nil {
			t.Fatalf("Start stopped from the factory: got nil after %v, want an error", took)
		}
		select {
		case <-stopped:
		case <-time.After(time.Hour):
			t.Fatal("Stop called from the factory still blocked an hour later")
		}
		wantNoneRunning(t, f.Built(), "at the end")
	})
}
