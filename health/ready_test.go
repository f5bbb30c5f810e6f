package health_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/health"
	"github.com/coreservice/coreservice/internal/coretest"
)

func TestReady(t *testing.T) {
	var tg toggle
	api := service("api", health.Check("ping", pass), health.Check("queue", tg.fn))
	err := health.Ready(api)
	for _, want := range []string{"api: service is not started", "api/ping: service api is not started", "api/queue: service api is not started"} {
		if !errors.Is(err, health.ErrNotReady) || !strings.Contains(err.Error(), want) {
			t.Errorf("Ready before Start: got %v, want ErrNotReady saying %q", err, want)
		}
	}
	coretest.MustStart(t, api)
	defer coretest.MustStop(t, api)
	if err := health.Ready(api); err != nil {
		t.Errorf("Ready once started: got %v, want nil", err)
	}
	deep := errors.New("depth 1200 > 1000")
	tg.set(deep)
	healthcheck(t, api, deep)
	if err := health.Ready(api); !errors.Is(err, health.ErrNotReady) || !errors.Is(err, deep) ||
		strings.Contains(err.Error(), "ping") {
		t.Errorf("Ready with a failing check: got %v, want ErrNotReady wrapping only that check's error", err)
	}
	if err := health.Ready(); err != nil {
		t.Errorf("Ready(): got %v, want nil", err)
	}
	if err := health.Ready(api, nil); err == nil || !strings.Contains(err.Error(), "service 1 is nil") {
		t.Errorf("Ready with a nil service: got %v, want an error naming it", err)
	}
}

func TestWaitReadyBeforeStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), health.Check("ping", pass))
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() {
			<-time.After(250 * time.Millisecond)
			if err := api.Start(context.Background()); err != nil {
				t.Errorf("Start: got %v, want nil", err)
			}
		})
		begin := time.Now()
		if err := health.WaitReady(t.Context(), api); err != nil {
			t.Fatalf("WaitReady: got %v, want nil", err)
		}
		// Ready at 250 ms, when the start finished: seen then, not at the
		// next look of a poll.
		if d := time.Since(begin); d != 250*time.Millisecond {
			t.Fatalf("WaitReady returned after %v, want 250ms", d)
		}
		if api.State() != core.StateRunning {
			t.Fatalf("State: got %v, want running", api.State())
		}
		coretest.MustStop(t, api)
	})
}

func TestWaitReadyWaitsForChecks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Passes at start, fails on ticks 1 and 2 (100 and 200 ms), then
		// passes: the threshold keeps the service running.
		sc := &scripted{results: []bool{true, false, false}}
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()),
			health.Check("flaky", sc.fn, health.Threshold(5)))
		coretest.MustStart(t, api)
		defer coretest.MustStop(t, api)
		<-time.After(150 * time.Millisecond)
		begin := time.Now()
		if err := health.WaitReady(t.Context(), api); err != nil {
			t.Fatalf("WaitReady: got %v, want nil", err)
		}
		// Ready since the tick at 300 ms: seen at that tick's result.
		if d := time.Since(begin); d != 150*time.Millisecond {
			t.Fatalf("WaitReady returned after %v, want 150ms", d)
		}
	})
}

func TestWaitReadyServiceFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		down := errors.New("connection refused")
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()),
			health.Check("db", func(context.Context) error { return down }))
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() {
			<-time.After(250 * time.Millisecond)
			_ = api.Start(context.Background()) // fails on the check
		})
		begin := time.Now()
		err := health.WaitReady(t.Context(), api)
		if !errors.Is(err, health.ErrNotReady) || !errors.Is(err, core.ErrStartup) || !errors.Is(err, down) ||
			!strings.Contains(err.Error(), "api failed") {
			t.Fatalf("WaitReady: got %v, want ErrNotReady saying api failed, wrapping its Err", err)
		}
		// At once, not at the next look (300 ms).
		if d := time.Since(begin); d != 250*time.Millisecond {
			t.Fatalf("WaitReady returned after %v, want 250ms", d)
		}
	})
}

func TestWaitReadyTerminated(t *testing.T) {
	api := service("api", health.Check("ping", pass))
	coretest.MustStart(t, api)
	coretest.MustStop(t, api)
	err := health.WaitReady(t.Context(), api)
	if !errors.Is(err, health.ErrNotReady) || !strings.Contains(err.Error(), "api is terminated") {
		t.Fatalf("WaitReady on a stopped service: got %v, want ErrNotReady saying it is terminated", err)
	}
}

func TestWaitReadyContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), health.Check("ping", pass))
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		begin := time.Now()
		err := health.WaitReady(ctx, api)
		if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, health.ErrNotReady) ||
			!strings.Contains(err.Error(), "api: service is not started") {
			t.Fatalf("WaitReady: got %v, want the context's error and why api is not ready", err)
		}
		if d := time.Since(begin); d != time.Second {
			t.Fatalf("WaitReady returned after %v, want 1s", d)
		}
	})
}

// plain is a core.Service that is not a *core.Base: no checks, no
// requirements, no MonitorInterval.
type plain struct {
	mu    sync.Mutex
	state core.State
	done  chan struct{}
}

func (p *plain) Name() string                      { return "plain" }
func (p *plain) Start(context.Context) error       { p.set(core.StateRunning); return nil }
func (p *plain) Stop(context.Context) error        { p.set(core.StateTerminated); close(p.done); return nil }
func (p *plain) Healthcheck(context.Context) error { return nil }
func (p *plain) Done() <-chan struct{}             { return p.done }
func (p *plain) Err() error                        { return nil }
func (p *plain) set(s core.State) {
	p.mu.Lock()
	p.state = s
	p.mu.Unlock()
}
func (p *plain) State() core.State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

func TestWaitReadyOtherServices(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := &plain{done: make(chan struct{})}
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Second),
			health.Check("ping", pass))
		coretest.MustStart(t, api)
		defer coretest.MustStop(t, api)
		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() {
			<-time.After(120 * time.Millisecond)
			_ = p.Start(context.Background())
		})
		begin := time.Now()
		if err := health.WaitReady(t.Context(), api, p); err != nil {
			t.Fatalf("WaitReady: got %v, want nil", err)
		}
		// The shortest interval wins: core's default for a service without one.
		if d := time.Since(begin); d != 200*time.Millisecond {
			t.Fatalf("WaitReady returned after %v, want 200ms", d)
		}
		checkProbes(t, health.Handler(api, p), []probeCase{
			{"/readyz?verbose", "", 200, "[+]api ok\n[+]api/ping ok\n[+]plain ok\nreadyz check passed\n"},
		})
		_ = p.Stop(context.Background())
	})
}

func TestWaitReadyBadInput(t *testing.T) {
	if err := health.WaitReady(t.Context()); err != nil {
		t.Errorf("WaitReady(): got %v, want nil", err)
	}
	if err := health.WaitReady(t.Context(), service("api"), nil); err == nil || !strings.Contains(err.Error(), "service 1 is nil") {
		t.Errorf("WaitReady with a nil service: got %v, want an error naming it", err)
	}
}

func TestWaitReadyWakesWhenStartFinishesNotAtNextPoll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
			core.OnStart(func(context.Context) error { coretest.Advance(time.Second); return nil }),
			health.Check("ping", pass))
		type result struct {
			err   error
			after time.Duration
		}
		returned := make(chan result, 1)
		begin := time.Now()
		go func() {
			err := health.WaitReady(context.Background(), api)
			returned <- result{err, time.Since(begin)}
		}()
		synctest.Wait()
		coretest.MustStart(t, api) // ready 1 s from now
		defer coretest.MustStop(t, api)
		synctest.Wait()
		select {
		case r := <-returned:
			if r.err != nil || r.after != time.Second {
				t.Fatalf("WaitReady: got %v after %v, want nil after 1s: when the start finished", r.err, r.after)
			}
		default:
			t.Fatalf("WaitReady still waiting once the service is ready, want it returned at once " +
				"(not a MonitorInterval of 1h later)")
		}
	})
}

func TestWaitReadyWakesOnPassingCheckResult(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var tg toggle
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
			health.Check("queue", tg.fn), health.Check("req", pass))
		coretest.MustStart(t, api)
		defer coretest.MustStop(t, api)
		tg.set(errors.New("depth 1200 > 1000"))
		healthcheck(t, api, core.ErrUnhealthy) // recorded: not ready
		returned := make(chan error, 1)
		go func() { returned <- health.WaitReady(context.Background(), api) }()
		<-time.After(time.Minute)
		synctest.Wait()
		select {
		case err := <-returned:
			t.Fatalf("WaitReady with a failing check: got %v, want it waiting", err)
		default:
		}
		tg.set(nil)
		healthcheck(t, api, nil) // recorded: ready
		synctest.Wait()
		select {
		case err := <-returned:
			if err != nil {
				t.Fatalf("WaitReady: got %v, want nil", err)
			}
		default:
			t.Fatalf("WaitReady still waiting once the check passed, want it returned at once " +
				"(not at the next monitor run, 1h later)")
		}
	})
}

// fastMonitor tells the probes its monitor runs every 100µs while it runs
// hourly: like a monitor at 100µs whose timer fires late, as timers do at
// that scale on a loaded machine.
type fastMonitor struct{ *core.Base }

func (fastMonitor) MonitorInterval() time.Duration { return 100 * time.Microsecond }

func TestStalenessIsFlooredForSubMillisecondIntervals(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := fastMonitor{service("api", health.Check("ping", pass))}
		coretest.MustStart(t, api)
		defer coretest.MustStop(t, api)
		// Three periods are 450µs; a result 5 ms old is fresh all the same.
		coretest.Advance(5 * time.Millisecond)
		if err := health.Ready(api); err != nil {
			t.Fatalf("Ready 5ms after the last result: got %v, want nil: staleness is at least %v", err, health.MinStale)
		}
		coretest.Advance(health.MinStale - 5*time.Millisecond)
		if err := health.Ready(api); err != nil {
			t.Fatalf("Ready %v after the last result: got %v, want nil", health.MinStale, err)
		}
		coretest.Advance(time.Millisecond)
		if err := health.Ready(api); !errors.Is(err, health.ErrNotReady) || !strings.Contains(err.Error(), "stale") {
			t.Fatalf("Ready past MinStale: got %v, want ErrNotReady saying the result is stale", err)
		}
	})
}

// The staleness limit does not overflow for a long, valid Timeout
// (Timeout(math.MaxInt64), the usual "no timeout" idiom, or a long
// MonitorInterval): a result recorded a moment ago is not stale, and the
// service is ready.
func TestLongTimeoutIsReady(t *testing.T) {
	const century = 100 * 365 * 24 * time.Hour
	for name, opts := range map[string][]core.Option{
		"Timeout(MaxInt64)":     {health.Check("ping", pass, health.Timeout(math.MaxInt64))},
		"Timeout(100y)":         {health.Check("ping", pass, health.Timeout(century))},
		"MonitorInterval(100y)": {core.MonitorInterval(century), health.Check("ping", pass)},
	} {
		t.Run(name, func(t *testing.T) {
			api := service("api", opts...)
			coretest.MustStart(t, api)
			defer coretest.MustStop(t, api)
			healthcheck(t, api, nil)
			if err := health.Ready(api); err != nil {
				t.Errorf("Ready right after a passing run: got %v, want nil", err)
			}
		})
	}
}

// Readiness during Starting: a service whose start check is under way is
// live, not ready, and its check says the service is starting.
func TestReadinessWhileStarting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Second),
			health.Check("slow", func(context.Context) error {
				<-time.After(200 * time.Millisecond)
				return nil
			}))
		h := health.Handler(s)
		var wg sync.WaitGroup
		wg.Go(func() { coretest.MustStart(t, s) })
		<-time.After(100 * time.Millisecond)
		checkProbes(t, h, []probeCase{
			{"/livez", "", 200, "ok"},
			{"/readyz", "", 503, "[-]api failed: starting\n[-]api/slow failed: reason withheld\nreadyz check failed\n"},
			{"/readyz/api/slow", "", 503, "[-]api/slow failed: service api is starting\nreadyz check failed\n"},
		})
		wg.Wait()
		checkProbes(t, h, []probeCase{{"/readyz", "", 200, "ok"}})
		coretest.MustStop(t, s)
	})
}

// WaitReady edge cases: no services, a context already cancelled, a service
// that never starts.
func TestWaitReadyEdges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := health.WaitReady(ctx); err != nil {
			t.Errorf("WaitReady(cancelled) with no services: got %v, want nil", err)
		}
		never := core.NewService(core.Name("never"), core.Logger(coretest.Quiet()))
		begin := time.Now()
		err := health.WaitReady(ctx, never)
		if !errors.Is(err, context.Canceled) || !errors.Is(err, health.ErrNotReady) || time.Since(begin) != 0 {
			t.Errorf("WaitReady(cancelled, never started): got %v after %v, want Canceled and ErrNotReady at once",
				err, time.Since(begin))
		}
		ctx2, cancel2 := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel2()
		err = health.WaitReady(ctx2, never)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(begin) != 2*time.Second {
			t.Errorf("WaitReady(2s, never started): got %v after %v, want DeadlineExceeded after 2s", err, time.Since(begin))
		}
	})
}
