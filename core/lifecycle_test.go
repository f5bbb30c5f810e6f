package core_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
)

func TestStateString(t *testing.T) {
	want := map[core.State]string{
		core.StateNew: "new", core.StateStarting: "starting", core.StateRunning: "running",
		core.StateStopping: "stopping", core.StateTerminated: "terminated", core.StateFailed: "failed",
		core.State(42): "State(42)",
	}
	for s, w := range want {
		if got := s.String(); got != w {
			t.Errorf("State(%d).String(): got %q, want %q", int(s), got, w)
		}
	}
}

func TestStartStopStates(t *testing.T) {
	rec := &coretest.Recorder{}
	var s *core.Base
	s = core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()),
		core.OnStart(func(context.Context) error {
			rec.Add("hook sees " + s.State().String())
			return nil
		}),
		core.OnStop(func(context.Context) error {
			rec.Add("stop hook sees " + s.State().String())
			return nil
		}))
	if got := s.State(); got != core.StateNew {
		t.Fatalf("new service: got %v, want new", got)
	}
	if s.Running() {
		t.Fatal("Running() before Start: got true, want false")
	}
	coretest.MustStart(t, s)
	if got := s.State(); got != core.StateRunning || !s.Running() {
		t.Fatalf("after Start: got %v, want running", got)
	}
	select {
	case <-s.Done():
		t.Fatal("Done closed while running")
	default:
	}
	coretest.MustStop(t, s)
	if got := s.State(); got != core.StateTerminated {
		t.Fatalf("after Stop: got %v, want terminated", got)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	if err := s.Err(); err != nil {
		t.Fatalf("Err after clean stop: got %v, want nil", err)
	}
	coretest.WantEvents(t, rec.Events(), []string{"hook sees starting", "stop hook sees stopping"})
}

func TestStartTwice(t *testing.T) {
	s := core.NewService(core.Logger(coretest.Quiet()))
	coretest.MustStart(t, s)
	if err := s.Start(t.Context()); !errors.Is(err, core.ErrAlreadyStarted) {
		t.Fatalf("second Start: got %v, want ErrAlreadyStarted", err)
	}
	if s.State() != core.StateRunning {
		t.Fatalf("second Start changed the state to %v", s.State())
	}
	coretest.MustStop(t, s)
	if err := s.Start(t.Context()); !errors.Is(err, core.ErrAlreadyStarted) {
		t.Fatalf("Start after Stop: got %v, want ErrAlreadyStarted", err)
	}
}

func TestStopBeforeStartIsNoop(t *testing.T) {
	s := core.NewService(core.Logger(coretest.Quiet()))
	if err := s.Stop(t.Context()); err != nil {
		t.Fatalf("Stop before Start: got %v, want nil", err)
	}
	if s.State() != core.StateNew {
		t.Fatalf("Stop before Start: state %v, want new", s.State())
	}
	coretest.MustStart(t, s) // still startable
	coretest.MustStop(t, s)
}

func TestConcurrentStopSameResult(t *testing.T) {
	hookErr := errors.New("close failed")
	s := core.NewService(core.Logger(coretest.Quiet()), core.OnStop(func(context.Context) error { return hookErr }))
	coretest.MustStart(t, s)
	const n = 32
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = s.Stop(context.Background()) })
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, hookErr) || err != errs[0] {
			t.Fatalf("Stop #%d: got %v, want the same error %v as every other caller", i, err, errs[0])
		}
	}
	if again := s.Stop(context.Background()); again != errs[0] {
		t.Fatalf("later Stop: got %v, want %v", again, errs[0])
	}
}

func TestConcurrentStartAndStop(t *testing.T) {
	for range 20 {
		s := core.NewService(core.Logger(coretest.Quiet()), &unit{name: "worker", fn: func(ctx context.Context) error {
			<-ctx.Done()
			return nil
		}})
		var wg sync.WaitGroup
		var mu sync.Mutex
		okStarts, alreadyStarts := 0, 0
		for i := range 16 {
			wg.Go(func() {
				if i%2 == 0 {
					err := s.Start(context.Background())
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						okStarts++
					case errors.Is(err, core.ErrAlreadyStarted):
						alreadyStarts++
					case errors.Is(err, core.ErrStartup):
						okStarts++ // the one start, aborted by a concurrent Stop
					default:
						t.Errorf("Start: unexpected error %v", err)
					}
				} else if err := s.Stop(context.Background()); err != nil {
					t.Errorf("Stop: got %v, want nil", err)
				}
			})
		}
		wg.Wait()
		if err := s.Stop(context.Background()); err != nil {
			t.Fatalf("final Stop: %v", err)
		}
		if okStarts+alreadyStarts != 8 || okStarts > 1 {
			t.Fatalf("starts: %d ran, %d already started; want at most 1 to run", okStarts, alreadyStarts)
		}
		if st := s.State(); st != core.StateNew && st != core.StateTerminated {
			t.Fatalf("final state %v, want new or terminated", st)
		}
	}
}

func TestStartOrderAndStopOrder(t *testing.T) {
	rec := &coretest.Recorder{}
	r1, r2 := newFake("r1", rec), newFake("r2", rec)
	req1 := requires(r1)
	s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()),
		req1, requires(r2, req1),
		core.OnStart(rec.Hook("start hook 1", nil)), core.OnStart(rec.Hook("start hook 2", nil)),
		core.OnStop(rec.Hook("stop hook 1", nil)), core.OnStop(rec.Hook("stop hook 2", nil)),
		&unit{name: "u", fn: func(ctx context.Context) error {
			<-ctx.Done()
			rec.Add("unit ends")
			return nil
		}},
		&check{name: "c", fn: func(context.Context) error { rec.Add("check"); return nil }},
		core.MonitorInterval(time.Hour))
	coretest.MustStart(t, s)
	coretest.WantEvents(t, rec.Events(), []string{"r1 start", "r2 start", "start hook 1", "start hook 2", "check"})
	coretest.MustStop(t, s)
	coretest.WantEvents(t, rec.Events()[5:], []string{"unit ends", "stop hook 2", "stop hook 1", "r2 stop", "r1 stop"})
}

func TestRollbackIncludesFailingPart(t *testing.T) {
	boom := errors.New("boom")
	cases := []struct {
		name     string
		opts     func(rec *coretest.Recorder) []core.Option
		wantPart string
		want     []string
	}{{
		name: "requirement",
		opts: func(rec *coretest.Recorder) []core.Option {
			a, b := newFake("a", rec), newFake("b", rec)
			b.startErr = boom
			ra := requires(a)
			return []core.Option{ra, requires(b, ra), core.OnStop(rec.Hook("stop hook", nil))}
		},
		wantPart: "requirement b",
		want:     []string{"a start", "b start", "b stop", "a stop"},
	}, {
		name: "OnStart hook",
		opts: func(rec *coretest.Recorder) []core.Option {
			return []core.Option{requires(newFake("a", rec)),
				core.OnStart(rec.Hook("hook 1", nil)), core.OnStart(rec.Hook("hook 2", boom)),
				core.OnStop(rec.Hook("stop hook", nil))}
		},
		wantPart: "OnStart hook 2",
		want:     []string{"a start", "hook 1", "hook 2", "stop hook", "a stop"},
	}, {
		name: "unit",
		opts: func(rec *coretest.Recorder) []core.Option {
			return []core.Option{requires(newFake("a", rec)), core.OnStop(rec.Hook("stop hook", nil)),
				&unit{name: "task t", launch: boom, fn: func(ctx context.Context) error {
					<-ctx.Done()
					rec.Add("unit ended")
					return nil
				}}}
		},
		wantPart: "task t",
		want:     []string{"a start", "unit ended", "stop hook", "a stop"},
	}, {
		name: "check",
		opts: func(rec *coretest.Recorder) []core.Option {
			return []core.Option{requires(newFake("a", rec)), core.OnStart(rec.Hook("hook", nil)),
				core.OnStop(rec.Hook("stop hook", nil)),
				&check{name: "ping", fn: func(context.Context) error { rec.Add("check"); return boom }}}
		},
		wantPart: "check ping",
		want:     []string{"a start", "hook", "check", "stop hook", "a stop"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &coretest.Recorder{}
			s := core.NewService(append(tc.opts(rec), core.Name("svc"), core.Logger(coretest.Quiet()))...)
			err := s.Start(t.Context())
			var se *core.StartupError
			if !errors.As(err, &se) || !errors.Is(err, core.ErrStartup) || !errors.Is(err, boom) {
				t.Fatalf("Start: got %v, want a *StartupError wrapping boom", err)
			}
			if se.Service != "svc" || se.Part != tc.wantPart {
				t.Fatalf("StartupError: got service %q part %q, want svc, %q", se.Service, se.Part, tc.wantPart)
			}
			if want := "start svc: " + tc.wantPart + ": boom"; err.Error() != want {
				t.Fatalf("message: got %q, want %q", err, want)
			}
			coretest.WantEvents(t, rec.Events(), tc.want)
			if s.State() != core.StateFailed || !errors.Is(s.Err(), boom) {
				t.Fatalf("after failed start: state %v err %v, want failed with boom", s.State(), s.Err())
			}
			if err := s.Stop(t.Context()); err != nil {
				t.Fatalf("Stop after a clean rollback: got %v, want nil", err)
			}
		})
	}
}

func TestInvalidOptions(t *testing.T) {
	cases := map[string]core.Option{
		"empty name":               core.Name(""),
		"zero MonitorInterval":     core.MonitorInterval(0),
		"negative MonitorInterval": core.MonitorInterval(-time.Second),
		"zero StartTimeout":        core.StartTimeout(0),
		"negative StopTimeout":     core.StopTimeout(-1),
		"nil OnStart":              core.OnStart(nil),
		"nil OnStop":               core.OnStop(nil),
		"nil TracerProvider":       core.TracerProvider(nil),
		"nil MeterProvider":        core.MeterProvider(nil),
		"nil option":               nil,
		"duplicate check":          optionList{&check{name: "x", fn: okCheck}, &check{name: "x", fn: okCheck}},
		"empty check name":         &check{name: "", fn: okCheck},
		"zero threshold":           &check{name: "x", fn: okCheck, threshold: -1},
		"duplicate unit":           optionList{&unit{name: "u"}, &unit{name: "u"}},
		"empty unit name":          &unit{name: ""},
		"zero check timeout": &check{name: "x", fn: okCheck,
			timeout: func(time.Duration) time.Duration { return 0 }},
	}
	for name, opt := range cases {
		t.Run(name, func(t *testing.T) {
			ran := false
			s := core.NewService(core.Logger(coretest.Quiet()), opt, core.OnStart(func(context.Context) error {
				ran = true
				return nil
			}))
			err := s.Start(t.Context())
			if !errors.Is(err, core.ErrStartup) || !errors.Is(err, core.ErrInvalidOption) {
				t.Fatalf("Start: got %v, want ErrStartup and ErrInvalidOption", err)
			}
			if ran {
				t.Fatal("OnStart ran despite an invalid option")
			}
			if s.State() != core.StateFailed {
				t.Fatalf("state: got %v, want failed", s.State())
			}
		})
	}
}

// optionList applies several options as one.
type optionList []core.Option

func (l optionList) ApplyTo(c *core.Config) {
	for _, o := range l {
		o.ApplyTo(c)
	}
}

func okCheck(context.Context) error { return nil }

func TestOptionsPrint(t *testing.T) {
	for _, tc := range []struct {
		opt  core.Option
		want string
	}{
		{core.Name("api"), `core.Name("api")`},
		{core.MonitorInterval(time.Second), "core.MonitorInterval(1s)"},
		{core.StopTimeout(3 * time.Second), "core.StopTimeout(3s)"},
		{core.OnStart(okCheck), "core.OnStart(...)"},
	} {
		if got := fmt.Sprint(tc.opt); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
	if core.Name("a") != core.Name("a") || core.StartTimeout(time.Second) == core.StartTimeout(2*time.Second) {
		t.Error("options of the same value should compare equal, and of different values unequal")
	}
}

func TestDefaultNameFromCaller(t *testing.T) {
	a, b := core.NewService(), core.NewService()
	re := regexp.MustCompile(`^core_test\.TestDefaultNameFromCaller#\d+$`)
	if !re.MatchString(a.Name()) || !re.MatchString(b.Name()) {
		t.Fatalf("default names %q, %q: want core_test.TestDefaultNameFromCaller#N", a.Name(), b.Name())
	}
	if a.Name() == b.Name() {
		t.Fatalf("two default names are both %q, want unique", a.Name())
	}
}

func TestLogCarriesServiceName(t *testing.T) {
	var buf bytes.Buffer
	s := core.NewService(core.Name("ledger"), core.Logger(slog.New(slog.NewJSONHandler(&buf, nil))))
	s.Log().Info("hello")
	coretest.MustStart(t, s)
	coretest.MustStop(t, s)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) < 4 { // hello, starting, running, stopping, terminated
		t.Fatalf("got %d records, want at least 4:\n%s", len(lines), buf.String())
	}
	for _, line := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec["service"] != "ledger" {
			t.Errorf("record %s: got service=%v, want ledger", line, rec["service"])
		}
	}
	if !strings.Contains(buf.String(), `"msg":"service running"`) {
		t.Errorf("no 'service running' record in:\n%s", buf.String())
	}
}

func TestLoggerNilMeansDefault(t *testing.T) {
	var buf bytes.Buffer
	defer slog.SetDefault(slog.Default())
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	s := core.NewService(core.Name("dflt"), core.Logger(nil))
	s.Log().Info("to the default")
	if got := buf.String(); !strings.Contains(got, "to the default") || !strings.Contains(got, "service=dflt") {
		t.Fatalf("slog.Default got %q, want the record with service=dflt", got)
	}
}

func TestSelfFailureIsImmediate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		rec := &coretest.Recorder{}
		dep := newFake("dep", rec)
		s := core.NewService(core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), requires(dep),
			core.OnStop(rec.Hook("stop hook", nil)),
			&unit{name: "u", fn: func(ctx context.Context) error {
				select {
				case <-time.After(time.Second):
					return boom
				case <-ctx.Done():
					return nil
				}
			}})
		begin := time.Now()
		coretest.MustStart(t, s)
		<-s.Done()
		if d := time.Since(begin); d != time.Second {
			t.Fatalf("service failed after %v, want 1s (not at a monitor tick)", d)
		}
		if s.State() != core.StateFailed || !errors.Is(s.Err(), boom) {
			t.Fatalf("got state %v err %v, want failed with boom", s.State(), s.Err())
		}
		coretest.WantEvents(t, rec.Events(), []string{"dep start", "stop hook", "dep stop"})
		if err := s.Stop(t.Context()); err != nil {
			t.Fatalf("Stop after self-failure: got %v, want nil", err)
		}
	})
}

func TestUnitPanicIsRecovered(t *testing.T) {
	s := core.NewService(core.Logger(coretest.Quiet()), &unit{name: "bad", fn: func(context.Context) error {
		panic("oops")
	}})
	// The panic may come before or after Start returns: either way, it fails the service.
	_ = s.Start(t.Context())
	<-s.Done()
	var pe *core.PanicError
	if !errors.As(s.Err(), &pe) {
		t.Fatalf("Err: got %v, want a *PanicError", s.Err())
	}
	if pe.Value != "oops" || !bytes.Contains(pe.Stack, []byte("core_test.TestUnitPanicIsRecovered")) {
		t.Fatalf("PanicError: value %v, stack without the panicking function:\n%s", pe.Value, pe.Stack)
	}
	if !strings.Contains(s.Err().Error(), "bad") {
		t.Fatalf("error %q does not name the unit", s.Err())
	}
}

func TestStopTimeoutNamesStuckUnits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		rec := &coretest.Recorder{}
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.StopTimeout(2*time.Second),
			core.OnStop(rec.Hook("stop hook", nil)),
			&unit{name: "stuck", fn: func(context.Context) error { <-release; return nil }},
			&unit{name: "polite", fn: func(ctx context.Context) error { <-ctx.Done(); return nil }})
		coretest.MustStart(t, s)
		begin := time.Now()
		err := s.Stop(context.Background())
		if d := time.Since(begin); d != 2*time.Second {
			t.Errorf("Stop took %v, want the 2s StopTimeout", d)
		}
		var te *core.StopTimeoutError
		if !errors.As(err, &te) || !errors.Is(err, core.ErrStopTimeout) {
			t.Fatalf("Stop: got %v, want a *StopTimeoutError", err)
		}
		if len(te.Units) != 1 || te.Units[0] != "stuck" || te.Service != "svc" {
			t.Fatalf("StopTimeoutError: got %+v, want service svc, units [stuck]", te)
		}
		coretest.WantEvents(t, rec.Events(), []string{"stop hook"}) // the stop went on without the stuck unit
		if s.State() != core.StateTerminated {
			t.Fatalf("state: got %v, want terminated", s.State())
		}
	})
}

func TestStopErrorsAreJoined(t *testing.T) {
	e1, e2, e3 := errors.New("hook 1"), errors.New("hook 2"), errors.New("dep stop")
	rec := &coretest.Recorder{}
	dep := newFake("dep", rec)
	dep.stopErr = e3
	var logs bytes.Buffer
	s := core.NewService(core.Logger(slog.New(slog.NewTextHandler(&logs, nil))), requires(dep),
		core.OnStop(rec.Hook("stop 1", e1)), core.OnStop(rec.Hook("stop 2", e2)))
	coretest.MustStart(t, s)
	err := s.Stop(t.Context())
	for _, want := range []error{e1, e2, e3} {
		if !errors.Is(err, want) {
			t.Errorf("Stop: got %v, want it to wrap %v", err, want)
		}
	}
	coretest.WantEvents(t, rec.Events(), []string{"dep start", "stop 2", "stop 1", "dep stop"})
	if !strings.Contains(logs.String(), "dep stop") {
		t.Errorf("stop errors were not logged:\n%s", logs.String())
	}
}

func TestStartTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		s := core.NewService(core.Logger(coretest.Quiet()), core.StartTimeout(time.Second),
			core.OnStart(func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }),
			core.OnStop(rec.Hook("stop hook", nil)))
		begin := time.Now()
		err := s.Start(t.Context())
		if d := time.Since(begin); d != time.Second {
			t.Errorf("Start took %v, want 1s", d)
		}
		if !errors.Is(err, core.ErrStartup) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Start: got %v, want ErrStartup wrapping DeadlineExceeded", err)
		}
		if !strings.Contains(err.Error(), "StartTimeout 1s") {
			t.Errorf("message %q does not say which timeout ran out", err)
		}
		coretest.WantEvents(t, rec.Events(), []string{"stop hook"})
		if s.State() != core.StateFailed {
			t.Fatalf("state %v, want failed", s.State())
		}
	})
}

func TestStopDuringStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		entered := make(chan struct{})
		s := core.NewService(core.Logger(coretest.Quiet()),
			core.OnStart(func(ctx context.Context) error {
				close(entered)
				<-ctx.Done()
				return ctx.Err()
			}))
		startErr := make(chan error)
		go func() { startErr <- s.Start(context.Background()) }()
		<-entered
		if err := s.Stop(context.Background()); err != nil {
			t.Fatalf("Stop during Start: got %v, want nil", err)
		}
		if err := <-startErr; !errors.Is(err, core.ErrStartup) || !strings.Contains(err.Error(), "stopped while starting") {
			t.Fatalf("Start: got %v, want ErrStartup saying it was stopped", err)
		}
		if s.State() != core.StateTerminated || s.Err() != nil {
			t.Fatalf("got state %v err %v, want terminated with no error", s.State(), s.Err())
		}
	})
}

func TestUnitFailureDuringStartIsTheCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("first run failed")
		s := core.NewService(core.Logger(coretest.Quiet()),
			&unit{name: "u", fn: func(context.Context) error { return boom }},
			&check{name: "slow", fn: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }})
		err := s.Start(t.Context())
		if !errors.Is(err, core.ErrStartup) || !errors.Is(err, boom) {
			t.Fatalf("Start: got %v, want ErrStartup wrapping the unit's error", err)
		}
		if !errors.Is(s.Err(), boom) {
			t.Fatalf("Err: got %v, want boom", s.Err())
		}
	})
}

func TestStopCallerContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		s := core.NewService(core.Logger(coretest.Quiet()), core.StopTimeout(time.Minute),
			core.OnStop(func(context.Context) error { <-release; return nil }))
		coretest.MustStart(t, s)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := s.Stop(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Stop with an expiring context: got %v, want DeadlineExceeded", err)
		}
		if s.State() != core.StateStopping {
			t.Fatalf("state: got %v, want stopping (the stop goes on)", s.State())
		}
		close(release)
		<-s.Done()
		if err := s.Stop(context.Background()); err != nil {
			t.Fatalf("later Stop: got %v, want nil", err)
		}
	})
}

func TestHostGoAfterStopDoesNotRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var host *core.Host
		s := core.NewService(core.Logger(coretest.Quiet()), &hostGrabber{h: &host})
		coretest.MustStart(t, s)
		var ranWhileRunning, ranAfterStop atomic.Bool
		host.Go("early", func(context.Context) error { ranWhileRunning.Store(true); return nil })
		synctest.Wait() // a goroutine Go started has run by now
		if !ranWhileRunning.Load() {
			t.Fatal("Go while Running did not run its function")
		}
		coretest.MustStop(t, s)
		host.Go("late", func(context.Context) error { ranAfterStop.Store(true); return nil })
		synctest.Wait()
		if ranAfterStop.Load() {
			t.Fatal("Go after Stop ran its function")
		}
		if host.Name() != s.Name() || host.Log() == nil || host.Tracer() == nil || host.Meter() == nil {
			t.Fatal("Host accessors do not describe the service")
		}
	})
}

type hostGrabber struct{ h **core.Host }

func (g *hostGrabber) ApplyTo(c *core.Config) { c.AddUnit(g) }
func (g *hostGrabber) Name() string           { return "grabber" }
func (g *hostGrabber) Launch(_ context.Context, h *core.Host) error {
	*g.h = h
	return nil
}

func TestHostFail(t *testing.T) {
	var host *core.Host
	s := core.NewService(core.Logger(coretest.Quiet()), &hostGrabber{h: &host})
	coretest.MustStart(t, s)
	boom := errors.New("external failure")
	host.Fail(boom)
	<-s.Done()
	if !errors.Is(s.Err(), boom) || s.State() != core.StateFailed {
		t.Fatalf("after Host.Fail: state %v err %v, want failed with the error", s.State(), s.Err())
	}
}

func TestStartBoundsAnOnStartHookThatIgnoresItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.StartTimeout(time.Second),
			core.OnStart(func(context.Context) error { <-release; return nil }))
		took, err := coretest.Bounded(t, "Start (StartTimeout 1s)", func() error { return s.Start(context.Background()) })
		if got, want := took, time.Second+core.AbandonGrace; got != want {
			t.Errorf("Start returned after %v, want %v (StartTimeout + AbandonGrace)", got, want)
		}
		var se *core.StartupError
		if !errors.As(err, &se) || se.Part != "OnStart hook 1" || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Start: got %v, want a *StartupError naming OnStart hook 1 and matching DeadlineExceeded", err)
		}
		if !strings.Contains(err.Error(), "left running") {
			t.Errorf("Start: got %q, want it to say the hook was left running", err)
		}
		<-s.Done()
		if got := s.State(); got != core.StateFailed {
			t.Errorf("state: got %v, want failed", got)
		}
	})
}

func TestStopBoundsAnOnStopHookThatIgnoresItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.StopTimeout(2*time.Second),
			core.OnStop(func(context.Context) error { <-release; return nil }))
		coretest.MustStart(t, s)
		took, err := coretest.Bounded(t, "Stop (StopTimeout 2s)", func() error { return s.Stop(context.Background()) })
		if got, want := took, 2*time.Second+core.AbandonGrace; got != want {
			t.Errorf("Stop returned after %v, want %v (StopTimeout + AbandonGrace)", got, want)
		}
		var ste *core.StopTimeoutError
		if !errors.As(err, &ste) || len(ste.Units) != 1 || ste.Units[0] != "OnStop hook 1" {
			t.Fatalf("Stop: got %v, want a *StopTimeoutError naming OnStop hook 1", err)
		}
		select {
		case <-s.Done():
		default:
			t.Fatal("Done not closed after Stop returned")
		}
		if got := s.State(); got != core.StateTerminated {
			t.Errorf("state: got %v, want terminated", got)
		}
	})
}

func TestOnStopHooksGetAFullStopTimeoutAfterAUnitUsedItUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		var left time.Duration
		var hookErr error
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.StopTimeout(time.Second),
			&unit{name: "stuck", fn: func(context.Context) error { <-release; return nil }},
			core.OnStop(func(ctx context.Context) error {
				dl, _ := ctx.Deadline()
				left, hookErr = time.Until(dl), ctx.Err()
				return nil
			}))
		coretest.MustStart(t, s)
		begin := time.Now()
		err := s.Stop(context.Background())
		if got := time.Since(begin); got != time.Second {
			t.Errorf("Stop returned after %v, want 1s (StopTimeout for the units, none used by the hook)", got)
		}
		if left != time.Second || hookErr != nil {
			t.Errorf("OnStop hook: got %v left and ctx.Err %v, want 1s left and nil", left, hookErr)
		}
		var ste *core.StopTimeoutError
		if !errors.As(err, &ste) || len(ste.Units) != 1 || ste.Units[0] != "stuck" {
			t.Fatalf("Stop: got %v, want a *StopTimeoutError naming only the unit stuck", err)
		}
		if strings.Contains(err.Error(), "Healthcheck") {
			t.Errorf("Stop: got %q, want no Healthcheck calls reported: nobody called Healthcheck", err)
		}
	})
}

func TestStopFromAnOnStartHookReturnsAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		ctx  func(hook context.Context) context.Context
	}{
		{"hook context", func(hook context.Context) context.Context { return hook }},
		{"unrelated context", func(context.Context) context.Context { return context.Background() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var s *core.Base
				stopped := make(chan error, 1)
				s = core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()),
					core.OnStart(func(ctx context.Context) error {
						stopped <- s.Stop(tc.ctx(ctx))
						return nil
					}))
				res := make(chan error, 1)
				go func() { res <- s.Start(context.Background()) }()
				select {
				case err := <-stopped:
					if err != nil {
						t.Errorf("Stop from the hook: got %v, want nil", err)
					}
				case <-time.After(time.Hour):
					t.Fatal("Stop called from an OnStart hook still waiting an hour later")
				}
				if err := <-res; !errors.Is(err, core.ErrStartup) {
					t.Errorf("Start: got %v, want ErrStartup (stopped while starting)", err)
				}
				<-s.Done()
				if got := s.State(); got != core.StateTerminated {
					t.Errorf("state: got %v, want terminated", got)
				}
			})
		})
	}
}

func TestStopFromAnOnStopHookReturnsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s *core.Base
		var inner error
		s = core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()),
			core.OnStop(func(ctx context.Context) error {
				inner = s.Stop(ctx)
				return nil
			}))
		coretest.MustStart(t, s)
		begin := time.Now()
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("Stop: got %v, want nil", err)
		}
		if got := time.Since(begin); got != 0 {
			t.Errorf("Stop returned after %v, want at once", got)
		}
		if inner != nil {
			t.Errorf("Stop from the OnStop hook: got %v, want nil", inner)
		}
	})
}

func TestRollbackErrorsReachStartErrAndStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		boom, flush := errors.New("check: boom"), errors.New("flush failed")
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.StopTimeout(time.Second),
			&unit{name: "stuck", fn: func(context.Context) error { <-release; return nil }},
			core.OnStop(func(context.Context) error { return flush }),
			&check{name: "ping", fn: func(context.Context) error { return boom }})
		err := s.Start(context.Background())
		for _, want := range []error{core.ErrStartup, boom, flush, core.ErrStopTimeout} {
			if !errors.Is(err, want) {
				t.Errorf("Start: got %v, want it to match %v", err, want)
			}
			if !errors.Is(s.Err(), want) {
				t.Errorf("Err: got %v, want it to match %v", s.Err(), want)
			}
		}
		var se *core.StartupError
		if !errors.As(err, &se) || se.Part != "check ping" || !errors.Is(se.Err, boom) || errors.Is(se.Err, flush) {
			t.Errorf("Start: got %#v, want Part check ping, Err the check's failure", se)
		}
		if err := s.Stop(context.Background()); !errors.Is(err, flush) {
			t.Errorf("Stop after the rollback: got %v, want the rollback's errors", err)
		}
	})
}

func TestRollbackGoesThroughStopping(t *testing.T) {
	var s *core.Base
	var during core.State
	s = core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()),
		core.OnStop(func(context.Context) error { during = s.State(); return nil }),
		&check{name: "ping", fn: func(context.Context) error { return errors.New("down") }})
	if err := s.Start(t.Context()); err == nil {
		t.Fatal("Start: got nil, want the check's failure")
	}
	if during != core.StateStopping || s.State() != core.StateFailed {
		t.Fatalf("states: got %v during the rollback and %v after, want stopping then failed", during, s.State())
	}
}

func TestNameMustBeAPathSegment(t *testing.T) {
	for _, name := range []string{"a/b", "api\n[+]forged", "a\tb", "a\x00"} {
		s := core.NewService(core.Name(name), core.Logger(coretest.Quiet()))
		err := s.Start(t.Context())
		if !errors.Is(err, core.ErrInvalidOption) || !strings.Contains(err.Error(), "core.Name("+strconv.Quote(name)+")") {
			t.Errorf("Start with core.Name(%q): got %v, want ErrInvalidOption naming the option", name, err)
		}
		if s.Name() == name {
			t.Errorf("Name: got %q, want the default name, not the invalid one", s.Name())
		}
	}
}

func TestStopDuringStartNamesTheOnStartHookTheAbortedStartLeftRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		entered := make(chan struct{})
		// The child is started by its parent alone: no Start call of its
		// own gets the *StartupError naming the hook.
		child := core.NewService(core.Name("child"), core.Logger(coretest.Quiet()),
			core.OnStart(func(context.Context) error { close(entered); <-release; return nil }))
		parent := core.NewService(core.Name("parent"), core.Logger(coretest.Quiet()), requires(child))
		res := make(chan error, 1)
		go func() { res <- parent.Start(context.Background()) }()
		<-entered
		stopErr := parent.Stop(context.Background()) // aborts both starts
		<-res
		for _, got := range []struct {
			what string
			err  error
		}{{"parent's Stop", stopErr}, {"child's Stop", child.Stop(context.Background())}} {
			var se *core.StartupError
			if !errors.As(got.err, &se) || se.Service != "child" || se.Part != "OnStart hook 1" ||
				!strings.Contains(se.Error(), "left running") {
				t.Errorf("%s: got %v, want a *StartupError of child naming OnStart hook 1 as left running", got.what, got.err)
			}
		}
		if got := child.State(); got != core.StateTerminated {
			t.Errorf("child's state: got %v, want terminated (Stop aborted its start)", got)
		}
	})
}

// Host.Go called once the service has begun to stop does not run fn, even
// in the window between the move to Stopping and the close of the worker set
// (host.go: "Go called once the service has begun to stop does not run fn").
func TestHostGoWhileStoppingDoesNotRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate("service stopping")
		var host *core.Host
		s := core.NewService(core.Name("s"), core.Logger(slog.New(g)), core.MonitorInterval(time.Hour),
			&hostGrabber{h: &host})
		coretest.MustStart(t, s)
		stopped := make(chan error, 1)
		go func() { stopped <- s.Stop(context.Background()) }()
		<-g.hit // the stop has begun: the service is Stopping
		if st := s.State(); st != core.StateStopping {
			t.Fatalf("state %v, want stopping", st)
		}
		ran := make(chan struct{}, 1)
		host.Go("late", func(context.Context) error { ran <- struct{}{}; return nil })
		synctest.Wait()
		close(g.gate)
		if err := <-stopped; err != nil {
			t.Fatalf("Stop: %v", err)
		}
		select {
		case <-ran:
			t.Fatal("Host.Go called while the service was Stopping ran its function")
		default:
		}
	})
}

// An error from a unit that outlived StopTimeout, arriving while the rest of
// the stop sequence (OnStop hooks, requirements) still runs, is returned by
// Stop (DESIGN core/Stop: "Errors met while stopping are joined
// (errors.Join), returned, and logged: never swallowed").
func TestLateUnitErrorDuringStopIsKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		late := errors.New("late unit error")
		var logs bytes.Buffer
		s := core.NewService(core.Name("s"), core.Logger(slog.New(slog.NewTextHandler(&logs, nil))),
			core.MonitorInterval(time.Hour), core.StopTimeout(2*time.Second),
			&unit{name: "slow", fn: func(ctx context.Context) error {
				<-ctx.Done()
				<-time.After(3 * time.Second) // outlives StopTimeout (2s) ...
				return late                   // ... then fails
			}},
			core.OnStop(func(context.Context) error {
				<-time.After(1500 * time.Millisecond) // a slow hook (2s to 3.5s): still stopping at 3s
				return nil
			}))
		coretest.MustStart(t, s)
		err := s.Stop(context.Background())
		if !errors.Is(err, core.ErrStopTimeout) {
			t.Fatalf("Stop: got %v, want a StopTimeoutError", err)
		}
		if !errors.Is(err, late) {
			t.Fatalf("the unit's error, met while stopping, was swallowed: Stop %v, Err %v, logs:\n%s", err, s.Err(), logs.String())
		}
	})
}

// Host.Fail called while the OnStop hooks run (here by the hook itself, e.g.
// a flush that failed) is returned by Stop and logged (DESIGN core/Stop:
// "Errors met while stopping are ... returned, and logged: never swallowed").
func TestHostFailDuringOnStopIsKept(t *testing.T) {
	boom := errors.New("flush failed")
	var logs bytes.Buffer
	var host *core.Host
	s := core.NewService(core.Name("s"), core.Logger(slog.New(slog.NewTextHandler(&logs, nil))),
		core.MonitorInterval(time.Hour), &hostGrabber{h: &host},
		core.OnStop(func(context.Context) error { host.Fail(boom); return nil }))
	coretest.MustStart(t, s)
	err := s.Stop(context.Background())
	if !errors.Is(err, boom) || !strings.Contains(logs.String(), boom.Error()) {
		t.Fatalf("Host.Fail during the stop was swallowed: Stop %v, Err %v, logs:\n%s", err, s.Err(), logs.String())
	}
}

// A caller that sees a final State sees Done closed and Err set with it: the
// final state, Done and Err change together (DESIGN core: "Done() is closed
// on reaching Terminated or Failed; Err() is then the cause of the failure").
func TestFinalStateComesWithDoneAndErr(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := newGate("service failed")
		boom := errors.New("boom")
		s := core.NewService(core.Name("s"), core.Logger(slog.New(g)), core.MonitorInterval(time.Hour),
			&unit{name: "u", fn: func(ctx context.Context) error {
				select {
				case <-time.After(time.Second):
					return boom
				case <-ctx.Done():
					return nil
				}
			}})
		coretest.MustStart(t, s)
		<-g.hit // the service has reached Failed
		st, err := s.State(), s.Err()
		done := false
		select {
		case <-s.Done():
			done = true
		default:
		}
		close(g.gate)
		<-s.Done()
		if st == core.StateFailed && (!done || !errors.Is(err, boom)) {
			t.Fatalf("State() = %v while Done closed = %v and Err() = %v: want Done closed and Err = boom", st, done, err)
		}
	})
}

// Stop with an already cancelled context on a service that has already
// stopped returns the stop's result (nil), every time, not the context's
// error (DESIGN core/Stop: "idempotent ... concurrent callers all get the
// same result").
func TestStopAfterDoneWithCancelledContext(t *testing.T) {
	s := core.NewService(core.Name("s"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour))
	coretest.MustStart(t, s)
	coretest.MustStop(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	bad := 0
	for range 200 {
		if err := s.Stop(ctx); err != nil {
			bad++
		}
	}
	if bad > 0 {
		t.Fatalf("Stop(cancelled ctx) on a terminated service returned an error %d times out of 200, want always nil", bad)
	}
}

// Stop called from one of the service's own units, with the unit's context,
// returns at once and the service terminates, instead of waiting the whole
// StopTimeout for the calling unit and naming it as stuck.
func TestStopFromOwnUnit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s *core.Base
		res := make(chan error, 1)
		s = core.NewService(core.Name("s"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
			core.StopTimeout(10*time.Second),
			&unit{name: "job", fn: func(ctx context.Context) error {
				<-time.After(time.Second) // the job is finished: stop the service
				res <- s.Stop(ctx)
				return nil
			}})
		begin := time.Now()
		coretest.MustStart(t, s)
		if err := <-res; err != nil {
			t.Fatalf("Stop from the service's own unit: got %v, want nil at once", err)
		}
		<-s.Done()
		if d := time.Since(begin); d != time.Second || s.State() != core.StateTerminated {
			t.Fatalf("stopped %v after start in state %v, want 1s (when the job called Stop) and terminated", d, s.State())
		}
	})
}

// A panic in an OnStart hook does not escape Start: Start returns a
// *PanicError, the start is rolled back and the service is Failed (DESIGN
// core/Start: "Any failure ... rolls back everything started so far ...
// State → Failed"; doc.go: "panics are *PanicError values with the stack").
func TestPanicInOnStartRollsBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := core.NewService(core.Name("s"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
			core.OnStart(func(context.Context) error { panic("bad hook") }))
		var startErr error
		panicked := func() (p bool) {
			defer func() { p = recover() != nil }()
			startErr = s.Start(context.Background())
			return false
		}()
		var pe *core.PanicError
		if panicked || !errors.As(startErr, &pe) || s.State() != core.StateFailed {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			t.Fatalf("Start panicked=%v err=%v; state %v; Stop: %v; want a *PanicError, state failed",
				panicked, startErr, s.State(), s.Stop(ctx))
		}
	})
}

// Done closed implies a final state and Err set, for the three ways to end
// (clean stop, self-failure, failed start).
func TestDoneImpliesFinalState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		clean := core.NewService(core.Logger(coretest.Quiet()))
		coretest.MustStart(t, clean)
		go clean.Stop(context.Background())
		<-clean.Done()
		if clean.State() != core.StateTerminated || clean.Err() != nil {
			t.Fatalf("clean: %v %v", clean.State(), clean.Err())
		}
		failing := core.NewService(core.Logger(coretest.Quiet()), &unit{name: "u", fn: func(context.Context) error {
			<-time.After(time.Second)
			return boom
		}})
		coretest.MustStart(t, failing)
		<-failing.Done()
		if failing.State() != core.StateFailed || !errors.Is(failing.Err(), boom) {
			t.Fatalf("failing: %v %v", failing.State(), failing.Err())
		}
		bad := core.NewService(core.Logger(coretest.Quiet()), core.OnStart(func(context.Context) error { return boom }))
		go bad.Start(context.Background())
		<-bad.Done()
		if bad.State() != core.StateFailed || !errors.Is(bad.Err(), core.ErrStartup) || !errors.Is(bad.Err(), boom) {
			t.Fatalf("failed start: %v %v", bad.State(), bad.Err())
		}
	})
}

// A unit failure met while the service is Starting, after another one has
// already aborted the start, is not dropped: it reaches Start, Stop or the
// log, as the same two failures do while Running (DESIGN core/Stop: "Errors
// met while stopping are joined (errors.Join), returned, and logged: never
// swallowed").
func TestSecondFailureDuringStartIsKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		errA, errB := errors.New("worker a: db unreachable"), errors.New("worker b: queue unreachable")
		var logs bytes.Buffer
		var host *core.Host
		aDone, bDone, bLaunched := make(chan struct{}), make(chan struct{}), make(chan struct{})
		s := core.NewService(core.Name("s"), core.Logger(slog.New(slog.NewTextHandler(&logs, nil))),
			core.MonitorInterval(time.Hour), &hostGrabber{h: &host},
			&unit{name: "a", fn: func(context.Context) error {
				<-bLaunched // both units run before the first failure
				host.Fail(errA)
				close(aDone)
				return nil
			}},
			&unit{name: "b", fn: func(context.Context) error {
				close(bLaunched)
				<-aDone
				host.Fail(errB)
				close(bDone)
				return nil
			}},
			&check{name: "ready", fn: func(context.Context) error {
				<-bDone // the start is still under way when both workers fail
				return nil
			}})
		startErr := s.Start(context.Background())
		if !errors.Is(startErr, errA) {
			t.Fatalf("Start: got %v, want the first failure %v", startErr, errA)
		}
		stopErr := s.Stop(context.Background())
		if !errors.Is(startErr, errB) && !errors.Is(stopErr, errB) && !strings.Contains(logs.String(), errB.Error()) {
			t.Errorf("the second failure was swallowed: Start %v, Stop %v, logs:\n%s", startErr, stopErr, logs.String())
		}
	})
}

// A Healthcheck still running when the service stops either leaves the
// OnStop hooks a live context or is reported in a *StopTimeoutError: it
// never uses up StopTimeout silently (DESIGN core/Stop: "Workers still
// running at StopTimeout are named in a *StopTimeoutError", "Errors met
// while stopping are ... returned ... never swallowed").
func TestHealthcheckStuckDuringStopIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hookErr error
		var slow atomic.Bool // the check passes at start, then hangs until its caller gives up
		s := core.NewService(core.Name("s"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
			core.StopTimeout(time.Second),
			&check{name: "slow", timeout: func(time.Duration) time.Duration { return time.Hour },
				fn: func(ctx context.Context) error {
					if slow.Load() {
						<-ctx.Done()
					}
					return ctx.Err()
				}},
			core.OnStop(func(ctx context.Context) error { hookErr = ctx.Err(); return nil }))
		coretest.MustStart(t, s)
		slow.Store(true)
		probe, cancelProbe := context.WithCancel(context.Background()) // e.g. a readiness probe
		defer cancelProbe()
		go func() { _ = s.Healthcheck(probe) }()
		synctest.Wait() // the Healthcheck is under way
		err := s.Stop(context.Background())
		if hookErr != nil && !errors.Is(err, core.ErrStopTimeout) {
			t.Errorf("Stop: got %v, and the OnStop hook ran with an ended context (%v): "+
				"the stuck Healthcheck used up StopTimeout without being reported", err, hookErr)
		}
	})
}

// An OnStart hook that swallows the end of the start's context and returns
// nil is named by the start's error, as one that returns the context's
// error and one left running are.
func TestAStartTimeoutNamesTheOnStartHookItEnded(t *testing.T) {
	for name, hook := range map[string]func(context.Context) error{
		"returns nil":     func(ctx context.Context) error { <-ctx.Done(); return nil },
		"returns ctx.Err": func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
		"ignores ctx": func(ctx context.Context) error {
			coretest.Advance(time.Second)
			return nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := core.NewService(core.Name("s"), core.Logger(coretest.Quiet()), core.StartTimeout(200*time.Millisecond),
					core.OnStart(func(context.Context) error { return nil }), core.OnStart(hook))
				err := s.Start(context.Background())
				var se *core.StartupError
				if !errors.As(err, &se) || se.Part != "OnStart hook 2" || !errors.Is(err, context.DeadlineExceeded) ||
					!strings.HasPrefix(err.Error(), "start s: OnStart hook 2: ") {
					t.Fatalf("Start: got %v, want start s: OnStart hook 2: ... matching context.DeadlineExceeded", err)
				}
				coretest.Advance(time.Second) // the abandoned hook returns
			})
		})
	}
}
