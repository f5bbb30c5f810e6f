package deps_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/health"
	"github.com/coreservice/coreservice/internal/coretest"
)

func TestRequiresOrderAndTypedGet(t *testing.T) {
	rec := &coretest.Recorder{}
	c := newStore("c", rec)
	rc := deps.Requires(c)
	b := coretest.Node("b", rec, rc)
	a := coretest.Node("a", rec, deps.Requires(b))
	var got *Store = rc.Get() // typed: no assertion
	if got != c {
		t.Fatalf("Get: got %p, want the required *Store %p", got, c)
	}
	coretest.MustStart(t, a)
	if rc.Get().Rows() != 42 {
		t.Fatalf("Get().Rows(): got %d, want 42 (the running store)", rc.Get().Rows())
	}
	coretest.MustStop(t, a)
	coretest.WantEvents(t, rec.Events(), []string{"c start", "b start", "a start", "a stop", "b stop", "c stop"})
	for _, s := range []core.Service{a, b, c} {
		wantState(t, s, core.StateTerminated)
	}
}

func TestSiblingsStartConcurrently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		inside, most := 0, 0
		slow := func(name string) *core.Base {
			return core.NewService(core.Name(name), core.Logger(coretest.Quiet()), core.OnStart(func(context.Context) error {
				mu.Lock()
				inside++
				most = max(most, inside)
				mu.Unlock()
				<-time.After(time.Second)
				mu.Lock()
				inside--
				mu.Unlock()
				return nil
			}))
		}
		p := core.NewService(core.Logger(coretest.Quiet()),
			deps.Requires(slow("x")), deps.Requires(slow("y")), deps.Requires(slow("z")))
		begin := time.Now()
		coretest.MustStart(t, p)
		if d := time.Since(begin); d != time.Second || most != 3 {
			t.Fatalf("3 independent 1s starts: took %v, %d at once; want 1s, 3", d, most)
		}
		coretest.MustStop(t, p)
	})
}

func TestSharedDependency(t *testing.T) {
	for _, order := range [][]int{{0, 1}, {1, 0}, {0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}} {
		rec := &coretest.Recorder{}
		db := newStore("db", rec)
		parents := make([]*core.Base, len(order))
		for i := range parents {
			parents[i] = coretest.Node("p"+string(rune('0'+i)), &coretest.Recorder{}, deps.Requires(db))
		}
		var wg sync.WaitGroup
		for _, p := range parents {
			wg.Go(func() { coretest.MustStart(t, p) }) // concurrent parents
		}
		wg.Wait()
		coretest.WantEvents(t, rec.Events(), []string{"db start"})
		for n, i := range order {
			coretest.MustStop(t, parents[i])
			want := core.StateRunning
			if n == len(order)-1 {
				want = core.StateTerminated
			}
			if got := db.State(); got != want {
				t.Fatalf("order %v: after %d parents stopped, db is %v, want %v", order, n+1, got, want)
			}
		}
		coretest.WantEvents(t, rec.Events(), []string{"db start", "db stop"})
	}
}

func TestRollbackWhenThirdSiblingFails(t *testing.T) {
	boom := errors.New("z cannot start")
	rec := &coretest.Recorder{}
	x, y := coretest.Node("x", rec), coretest.Node("y", rec)
	z := core.NewService(core.Name("z"), core.Logger(coretest.Quiet()),
		core.OnStart(func(context.Context) error { rec.Add("z start"); return boom }),
		core.OnStop(func(context.Context) error { rec.Add("z stop"); return nil }))
	rx := deps.Requires(x)
	ry := deps.Requires(y, deps.After(rx))
	p := coretest.Node("p", rec, rx, ry, deps.Requires(z, deps.After(ry)))
	err := p.Start(t.Context())
	var se *core.StartupError
	if !errors.As(err, &se) || se.Part != "requirement z" || !errors.Is(err, boom) {
		t.Fatalf("Start: got %v, want a *StartupError for requirement z wrapping its cause", err)
	}
	coretest.WantEvents(t, rec.Events(), []string{"x start", "y start", "z start", "z stop", "y stop", "x stop"})
	wantState(t, x, core.StateTerminated)
	wantState(t, y, core.StateTerminated)
	wantState(t, z, core.StateFailed)
	wantState(t, p, core.StateFailed)
}

func TestFailureCancelsSiblingsStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("fast failure")
		rec := &coretest.Recorder{}
		entered := make(chan struct{})
		slow := core.NewService(core.Name("slow"), core.Logger(coretest.Quiet()),
			core.OnStart(func(ctx context.Context) error {
				close(entered)
				select {
				case <-time.After(time.Hour):
					return nil
				case <-ctx.Done():
					rec.Add("slow cancelled")
					return ctx.Err()
				}
			}))
		fast := core.NewService(core.Name("fast"), core.Logger(coretest.Quiet()),
			core.OnStart(func(context.Context) error { <-entered; return boom }))
		p := coretest.Node("p", rec, deps.Requires(slow), deps.Requires(fast))
		begin := time.Now()
		if err := p.Start(t.Context()); !errors.Is(err, boom) {
			t.Fatalf("Start: got %v, want boom", err)
		}
		if d := time.Since(begin); d != 0 {
			t.Fatalf("Start failed after %v, want at once (sibling's start cancelled)", d)
		}
		coretest.WantEvents(t, rec.Events(), []string{"slow cancelled"})
	})
}

func TestLazyAfter(t *testing.T) {
	rec := &coretest.Recorder{}
	cfg := newStore("config", rec)
	rcfg := deps.Requires(cfg)
	var sawRows int
	lazy := deps.Lazy(func(context.Context) (*Store, error) {
		sawRows = rcfg.Get().Rows() // config is Running: its OnStart ran
		rec.Add("build cache")
		return newStore("cache", rec), nil
	}, deps.After(rcfg), deps.Name("cache"))
	p := coretest.Node("p", rec, lazy, rcfg)
	if lazy.Get() != nil {
		t.Fatal("Lazy Get before start: got a service, want the zero value")
	}
	coretest.MustStart(t, p)
	if sawRows != 42 {
		t.Fatalf("lazy builder saw config rows %d, want 42 (After not honoured)", sawRows)
	}
	if lazy.Get() == nil || lazy.Get().State() != core.StateRunning {
		t.Fatal("Lazy Get after start: want the built, running service")
	}
	coretest.MustStop(t, p)
	coretest.WantEvents(t, rec.Events(), []string{"config start", "build cache", "cache start", "p start",
		"p stop", "cache stop", "config stop"})
}

func TestLazyErrorIsWrapped(t *testing.T) {
	buildErr := errors.New("dial tcp: refused")
	p := core.NewService(core.Logger(coretest.Quiet()), deps.Lazy(func(context.Context) (*core.Base, error) {
		return nil, buildErr
	}, deps.Name("pg")))
	err := p.Start(t.Context())
	if !errors.Is(err, core.ErrStartup) || !errors.Is(err, buildErr) || !strings.Contains(err.Error(), "requirement pg") {
		t.Fatalf("Start: got %v, want ErrStartup naming pg and wrapping the builder's error", err)
	}
}

func TestAwait(t *testing.T) {
	t.Run("never starts: times out", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rec := &coretest.Recorder{}
			ext := coretest.Node("ext", rec)
			p := coretest.Node("p", rec, core.StartTimeout(5*time.Second), deps.Await(ext))
			begin := time.Now()
			err := p.Start(t.Context())
			if !errors.Is(err, core.ErrStartup) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Start: got %v, want ErrStartup wrapping DeadlineExceeded", err)
			}
			if d := time.Since(begin); d != 5*time.Second {
				t.Fatalf("gave up after %v, want the 5s StartTimeout", d)
			}
			wantState(t, ext, core.StateNew)
			coretest.WantEvents(t, rec.Events(), nil)
		})
	})
	t.Run("started by its owner later, fails later", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			rec := &coretest.Recorder{}
			boom := errors.New("ext crashed")
			var host *core.Host
			ext := coretest.Node("ext", rec, &grab{h: &host})
			p := coretest.Node("p", rec, deps.Await(ext))
			go func() {
				<-time.After(time.Second)
				coretest.MustStart(t, ext)
			}()
			begin := time.Now()
			coretest.MustStart(t, p)
			if d := time.Since(begin); d != time.Second {
				t.Fatalf("p started after %v, want 1s (when ext was Running)", d)
			}
			host.Fail(boom)
			<-p.Done()
			if !errors.Is(p.Err(), boom) || !strings.Contains(p.Err().Error(), "requirement ext failed") {
				t.Fatalf("p: got %v, want it to fail with ext's cause", p.Err())
			}
			// p hears of the failure, and stops, before ext's stop runs; p
			// does not own ext, so its Done does not wait for ext's.
			<-ext.Done()
			coretest.WantEvents(t, rec.Events(), []string{"ext start", "p start", "p stop", "ext stop"})
		})
	})
	t.Run("never stopped by the awaiting service", func(t *testing.T) {
		rec := &coretest.Recorder{}
		ext := coretest.Node("ext", rec)
		coretest.MustStart(t, ext)
		p := coretest.Node("p", rec, deps.Await(ext))
		coretest.MustStart(t, p)
		coretest.MustStop(t, p)
		wantState(t, ext, core.StateRunning)
		coretest.MustStop(t, ext)
	})
}

// grab is a core unit that hands out the service's Host.
type grab struct{ h **core.Host }

func (g *grab) ApplyTo(c *core.Config) { c.AddUnit(g) }
func (g *grab) Name() string           { return "grab" }
func (g *grab) Launch(_ context.Context, h *core.Host) error {
	*g.h = h
	return nil
}

func TestPropagationThroughThreeLevels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("disk full")
		rec := &coretest.Recorder{}
		var host *core.Host
		c := coretest.Node("c", rec, &grab{h: &host})
		b := coretest.Node("b", rec, deps.Requires(c))
		a := coretest.Node("a", rec, deps.Requires(b))
		coretest.MustStart(t, a)
		begin := time.Now()
		host.Fail(boom)
		<-a.Done()
		if d := time.Since(begin); d != 0 {
			t.Fatalf("a failed %v after c, want at once", d)
		}
		for _, s := range []*core.Base{a, b, c} {
			if s.State() != core.StateFailed || !errors.Is(s.Err(), boom) {
				t.Fatalf("%s: state %v err %v, want failed wrapping disk full", s.Name(), s.State(), s.Err())
			}
		}
		const chain = "requirement b failed: requirement c failed: disk full"
		if msg := a.Err().Error(); msg != chain {
			t.Fatalf("a's error: got %q, want %q", msg, chain)
		}
	})
}

func TestBadInput(t *testing.T) {
	rec := &coretest.Recorder{}
	var typedNil *Store
	shared := coretest.Node("shared", rec)
	sharedStore := newStore("store", rec)
	other := deps.Requires(coretest.Node("other", rec))
	_ = core.NewService(other) // other belongs to another parent
	reused := deps.Requires(coretest.Node("reused", rec))
	_ = core.NewService(reused)
	cases := []struct {
		name string
		opts []core.Option
		want string
	}{
		{"nil service", []core.Option{deps.Requires[core.Service](nil)}, "nil service"},
		{"typed nil pointer", []core.Option{deps.Requires(typedNil)}, "nil service"},
		{"awaited nil", []core.Option{deps.Await(typedNil)}, "nil service"},
		{"nil Lazy function", []core.Option{deps.Lazy[*Store](nil)}, "nil function"},
		{"Lazy returns nil", []core.Option{deps.Lazy(func(context.Context) (*Store, error) { return nil, nil })},
			"returned a nil service"},
		{"required twice", []core.Option{deps.Requires(shared), deps.Requires(shared)}, `two requirements named "shared"`},
		{"required twice under two names", []core.Option{deps.Requires(shared, deps.Name("a")),
			deps.Requires(shared, deps.Name("b"))}, "required twice"},
		{"required twice as two types", []core.Option{deps.Requires(sharedStore, deps.Name("a")),
			deps.Requires(sharedStore.Base, deps.Name("b"))}, "required twice"},
		{"After a requirement of another service", []core.Option{deps.Requires(coretest.Node("y", rec), deps.After(other))},
			"not a requirement of"},
		{"requirement used by two parents", []core.Option{reused}, "belongs to one service"},
		{"empty name", []core.Option{deps.Requires(coretest.Node("z", rec), deps.Name(""))}, "empty name"},
		{"nil After", []core.Option{deps.Requires(coretest.Node("w", rec), deps.After(nil))}, "nil requirement"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := core.NewService(append(tc.opts, core.Name("p"), core.Logger(coretest.Quiet()))...)
			err := p.Start(t.Context())
			if !errors.Is(err, core.ErrStartup) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start: got %v, want ErrStartup saying %q", err, tc.want)
			}
			wantState(t, p, core.StateFailed)
		})
	}
}

func TestRequirementString(t *testing.T) {
	rec := &coretest.Recorder{}
	db := coretest.Node("db", rec)
	for _, tc := range []struct {
		opt  core.Option
		want string
	}{
		{deps.Requires(db), "deps.Requires(db)"},
		{deps.Await(db), "deps.Await(db)"},
		{deps.Lazy(func(context.Context) (*Store, error) { return nil, nil }), "deps.Lazy(lazy *deps_test.Store)"},
		{deps.Lazy(func(context.Context) (*Store, error) { return nil, nil }, deps.Name("pg")), "deps.Lazy(pg)"},
	} {
		if got := tc.opt.(interface{ String() string }).String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	if got := deps.After(deps.Requires(db)).String(); got != "deps.After(deps.Requires(db))" {
		t.Errorf("After: got %q", got)
	}
}

func TestStartBoundsALazyBuilderThatIgnoresItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		lazy := deps.Lazy(func(context.Context) (*core.Base, error) {
			<-release
			return nil, errors.New("too late")
		}, deps.Name("db"))
		p := core.NewService(core.Name("p"), core.Logger(coretest.Quiet()), core.StartTimeout(time.Second), lazy)
		took, err := coretest.Bounded(t, "Start (StartTimeout 1s)", func() error { return p.Start(context.Background()) })
		var se *core.StartupError
		if !errors.As(err, &se) || se.Part != "requirement db" || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Start: got %v, want a *StartupError naming requirement db, matching DeadlineExceeded", err)
		}
		if got, want := took, time.Second+core.AbandonGrace; got != want {
			t.Errorf("Start returned after %v, want %v (StartTimeout + AbandonGrace)", got, want)
		}
	})
}

// embedsBase is a user type embedding *core.Base.
type embedsBase struct{ *core.Base }

func TestUnusableBaseIsAnErrorFromStart(t *testing.T) {
	for name, svc := range map[string]embedsBase{"nil *Base": {}, "zero Base": {&core.Base{}}} {
		t.Run(name+" required", func(t *testing.T) {
			p := core.NewService(core.Name("p"), core.Logger(coretest.Quiet()), deps.Requires(svc))
			if err := p.Start(t.Context()); !errors.Is(err, core.ErrInvalidOption) {
				t.Fatalf("Start: got %v, want ErrInvalidOption", err)
			}
		})
		t.Run(name+" built by Lazy", func(t *testing.T) {
			lazy := deps.Lazy(func(context.Context) (embedsBase, error) { return svc, nil })
			p := core.NewService(core.Name("p"), core.Logger(coretest.Quiet()), lazy)
			if err := p.Start(t.Context()); !errors.Is(err, core.ErrInvalidOption) {
				t.Fatalf("Start: got %v, want ErrInvalidOption", err)
			}
			if s := lazy.Get(); s.Base != nil {
				t.Errorf("Get: got %v, want the zero value: nothing usable was built", s)
			}
		})
	}
}

// named is a core.Service that is not a *core.Base, with any name.
type named struct {
	*core.Base
	name string
}

func (n named) Name() string { return n.name }

func TestRequirementNameMustBeAPathSegment(t *testing.T) {
	rec := &coretest.Recorder{}
	cases := map[string]core.Option{
		"deps.Name with a slash":     deps.Requires(coretest.Node("a", rec), deps.Name("x/y")),
		"deps.Name with a newline":   deps.Requires(coretest.Node("b", rec), deps.Name("db\n[+]p/forged")),
		"deps.Name on Lazy":          deps.Lazy(func(context.Context) (*Store, error) { return nil, nil }, deps.Name("a\tb")),
		"service name with a slash":  deps.Requires(named{coretest.Node("c", rec), "c/d"}),
		"awaited name with a tab":    deps.Await(named{coretest.Node("e", rec), "e\tf"}),
		"built service name invalid": deps.Lazy(func(context.Context) (named, error) { return named{coretest.Node("g", rec), "g/h"}, nil }),
	}
	for name, opt := range cases {
		t.Run(name, func(t *testing.T) {
			p := coretest.Node("p", rec, opt)
			err := p.Start(t.Context())
			if !errors.Is(err, core.ErrInvalidOption) || !strings.Contains(err.Error(), "deps.") ||
				!strings.Contains(err.Error(), "start p") {
				t.Fatalf("Start: got %v, want ErrInvalidOption naming the deps option and p", err)
			}
		})
	}
	coretest.WantEvents(t, rec.Events(), nil)
}

func TestLazyNameCheckedAgainOnceBuilt(t *testing.T) {
	rec := &coretest.Recorder{}
	cases := map[string][]core.Option{
		"built as another requirement's name": {deps.Requires(coretest.Node("db", rec)),
			deps.Lazy(func(context.Context) (*core.Base, error) { return coretest.Node("db", rec), nil })},
		"built as a check's name": {health.Check("cache", func(context.Context) error { return nil }),
			deps.Lazy(func(context.Context) (*core.Base, error) { return coretest.Node("cache", rec), nil })},
		"two lazy built with one name": {
			deps.Lazy(func(context.Context) (*core.Base, error) { return coretest.Node("x", rec), nil }),
			deps.Lazy(func(context.Context) (*Store, error) { return &Store{Base: coretest.Node("x", rec)}, nil })},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			p := core.NewService(append(opts, core.Name("p"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour))...)
			err := p.Start(t.Context())
			if !errors.Is(err, core.ErrInvalidOption) || !strings.Contains(err.Error(), "ambiguous") {
				t.Fatalf("Start: got %v, want ErrInvalidOption saying the built name is ambiguous", err)
			}
			wantState(t, p, core.StateFailed)
		})
	}
	for _, e := range rec.Events() {
		if strings.HasPrefix(e, "cache") {
			t.Errorf("events: got %q, want the lazily built service of a clash not started", e)
		}
	}
}

// A panic in a Lazy builder (user code run by the library) does not crash
// the process: Start returns an error matching ErrStartup and the start is
// rolled back (DESIGN core/Start: "Any failure ... rolls back everything
// started so far ... and returns an error matching ErrStartup"; core/doc.go:
// "panics are *PanicError values with the stack").
func TestLazyPanicIsRecovered(t *testing.T) {
	rec := &coretest.Recorder{}
	p := coretest.Node("p", rec, deps.Lazy(func(context.Context) (*core.Base, error) {
		panic("builder bug")
	}, deps.Name("cache")))
	err := p.Start(context.Background())
	var pe *core.PanicError
	if !errors.Is(err, core.ErrStartup) || !errors.As(err, &pe) || pe.Value != "builder bug" {
		t.Fatalf("Start: got %v, want ErrStartup wrapping a *core.PanicError", err)
	}
	if !strings.Contains(err.Error(), "requirement cache") {
		t.Fatalf("Start: %q does not name the requirement", err)
	}
	wantState(t, p, core.StateFailed)
}

// A Lazy service built and started, whose parent's start then fails (in an
// OnStart hook), is stopped by the rollback.
func TestLazyStoppedWhenParentStartFails(t *testing.T) {
	rec := &coretest.Recorder{}
	boom := errors.New("hook failed")
	lazy := deps.Lazy(func(context.Context) (*core.Base, error) { return coretest.Node("cache", rec), nil })
	p := coretest.Node("p", rec, lazy, core.OnStart(func(context.Context) error { return boom }))
	if err := p.Start(t.Context()); !errors.Is(err, boom) {
		t.Fatalf("Start: %v", err)
	}
	wantState(t, lazy.Get(), core.StateTerminated)
	coretest.WantEvents(t, rec.Events(), []string{"cache start", "p start", "p stop", "cache stop"})
}

// An Await on a service that is itself Starting waits for its start to end:
// success lets the parent start; failure fails it with the awaited service's
// cause.
func TestAwaitStartingService(t *testing.T) {
	for _, fail := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			rec := &coretest.Recorder{}
			boom := errors.New("ext start failed")
			ext := coretest.Node("ext", rec, core.OnStart(func(context.Context) error {
				<-time.After(time.Second)
				if fail {
					return boom
				}
				return nil
			}))
			p := coretest.Node("p", rec, deps.Await(ext))
			go ext.Start(context.Background())
			synctest.Wait() // ext is Starting
			wantState(t, ext, core.StateStarting)
			err := p.Start(context.Background())
			if fail != (err != nil) || fail && !errors.Is(err, boom) {
				t.Fatalf("fail=%v: Start p: %v", fail, err)
			}
			if !fail {
				coretest.MustStop(t, p)
				wantState(t, ext, core.StateRunning)
				coretest.MustStop(t, ext)
			}
		})
	}
}

// The same service awaited by one parent and required by another: the
// requiring parent starts and stops it; the awaiting one never stops it and
// fails when it goes away.
func TestAwaitedAndRequired(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		db := coretest.Node("db", rec)
		watcher := coretest.Node("watcher", rec, deps.Await(db))
		owner := coretest.Node("owner", rec, deps.Requires(db))
		wErr := make(chan error, 1)
		go func() { wErr <- watcher.Start(context.Background()) }()
		synctest.Wait() // watcher waits for db
		coretest.MustStart(t, owner)
		if err := <-wErr; err != nil {
			t.Fatalf("watcher: %v", err)
		}
		coretest.MustStop(t, watcher)
		wantState(t, db, core.StateRunning) // the awaiting parent never stops it
		coretest.MustStop(t, owner)
		wantState(t, db, core.StateTerminated)
		w2 := coretest.Node("w2", rec, deps.Await(db))
		if err := w2.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "terminated") {
			t.Fatalf("await of a terminated service: %v", err)
		}
	})
}

// Concurrent roots sharing a lazily built, slow dependency through typed
// requirements: no false cycle, one start, stopped after the last root.
func TestLazyDependencySharedByConcurrentRootsStartsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		db := newStore("db", rec, core.OnStart(func(context.Context) error { <-time.After(time.Second); return nil }))
		lazyDB := func() *deps.Requirement[*Store] {
			return deps.Lazy(func(context.Context) (*Store, error) { return db, nil }, deps.Name("db"))
		}
		x := coretest.Node("x", rec, lazyDB())
		y := coretest.Node("y", rec, lazyDB())
		r1 := coretest.Node("r1", rec, deps.Requires(x), deps.Requires(y))
		r2 := coretest.Node("r2", rec, lazyDB())
		errs := make(chan error, 2)
		go func() { errs <- r1.Start(context.Background()) }()
		go func() { errs <- r2.Start(context.Background()) }()
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("Start: %v", err)
			}
		}
		coretest.MustStop(t, r1)
		wantState(t, db, core.StateRunning)
		coretest.MustStop(t, r2)
		wantState(t, db, core.StateTerminated)
	})
}

func TestAwaitOnAServiceNobodyStartsSaysItWasNeverStarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := core.NewService(core.Name("db"), core.Logger(coretest.Quiet()))
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.StartTimeout(15*time.Second),
			deps.Await(db))
		err := api.Start(context.Background())
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(),
			"db was never started (still new when the wait ended: context deadline exceeded: StartTimeout 15s exceeded)") {
			t.Fatalf("Start: got %v, want it to say db was never started, matching context.DeadlineExceeded", err)
		}
	})
}
