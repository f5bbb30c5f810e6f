package core_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
)

// scripted is a check whose results follow a script, one per run; past the
// end of the script it passes.
type scripted struct {
	results []bool // true = pass
	runs    atomic.Int32
}

func (s *scripted) fn(context.Context) error {
	i := int(s.runs.Add(1)) - 1
	if i < len(s.results) && !s.results[i] {
		return errors.New("scripted failure")
	}
	return nil
}

func TestMonitorThreshold(t *testing.T) {
	cases := []struct {
		name      string
		results   []bool // run 0 is the start check
		threshold int
		failAt    time.Duration // 0: never, within the test
	}{
		{"first failure fails with threshold 1", []bool{true, true, true, false}, 1, 300 * time.Millisecond},
		{"fail pass fail fail with threshold 2", []bool{true, false, true, false, false}, 2, 400 * time.Millisecond},
		{"isolated failures never reach threshold 2", []bool{true, false, true, false, true, false, true}, 2, 0},
		{"three in a row with threshold 3", []bool{true, false, false, false}, 3, 300 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sc := &scripted{results: tc.results}
				s := core.NewService(core.Logger(coretest.Quiet()), core.MonitorInterval(100*time.Millisecond),
					&check{name: "scripted", fn: sc.fn, threshold: tc.threshold})
				begin := time.Now()
				coretest.MustStart(t, s)
				select {
				case <-s.Done():
					if tc.failAt == 0 {
						t.Fatalf("service failed after %v, want it to keep running", time.Since(begin))
					}
					if d := time.Since(begin); d != tc.failAt {
						t.Fatalf("service failed after %v, want %v", d, tc.failAt)
					}
					if !errors.Is(s.Err(), core.ErrUnhealthy) || !strings.Contains(s.Err().Error(), "scripted") {
						t.Fatalf("Err: got %v, want ErrUnhealthy naming the check", s.Err())
					}
				case <-time.After(time.Second):
					if tc.failAt != 0 {
						t.Fatalf("service still running after 1s, want it failed at %v", tc.failAt)
					}
					coretest.MustStop(t, s)
				}
			})
		})
	}
}

func TestMonitorCutsHangingCheck(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var hang atomic.Bool
		s := core.NewService(core.Logger(coretest.Quiet()), core.MonitorInterval(time.Second),
			&check{name: "hangs", timeout: func(time.Duration) time.Duration { return 200 * time.Millisecond },
				fn: func(ctx context.Context) error {
					if hang.Load() {
						<-ctx.Done()
						return ctx.Err()
					}
					return nil
				}})
		coretest.MustStart(t, s)
		hang.Store(true)
		begin := time.Now()
		<-s.Done()
		if d := time.Since(begin); d != 1200*time.Millisecond {
			t.Fatalf("failed after %v, want 1.2s (tick at 1s + 200ms check timeout)", d)
		}
		if !errors.Is(s.Err(), context.DeadlineExceeded) {
			t.Fatalf("Err: got %v, want the check's DeadlineExceeded", s.Err())
		}
	})
}

func TestMonitorIntervalDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := &scripted{}
		s := core.NewService(core.Logger(coretest.Quiet()), &check{name: "count", fn: sc.fn})
		coretest.MustStart(t, s)
		<-time.After(time.Second + time.Millisecond) // fake time: ten ticks of the default 100 ms
		coretest.MustStop(t, s)
		if got := sc.runs.Load(); got != 11 {
			t.Fatalf("check ran %d times in 1s, want 11 (start + 10 ticks of 100ms)", got)
		}
	})
}

func TestHealthcheck(t *testing.T) {
	var failing atomic.Bool
	rec := &coretest.Recorder{}
	dep := newFake("dep", rec)
	s := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), requires(dep),
		&check{name: "ping", fn: func(context.Context) error {
			if failing.Load() {
				return errors.New("no pong")
			}
			return nil
		}})
	if err := s.Healthcheck(t.Context()); !errors.Is(err, core.ErrUnhealthy) || !strings.Contains(err.Error(), "new") {
		t.Fatalf("Healthcheck before Start: got %v, want ErrUnhealthy saying new", err)
	}
	coretest.MustStart(t, s)
	if err := s.Healthcheck(t.Context()); err != nil {
		t.Fatalf("Healthcheck while healthy: got %v, want nil", err)
	}
	failing.Store(true)
	err := s.Healthcheck(t.Context())
	if !errors.Is(err, core.ErrUnhealthy) || !strings.Contains(err.Error(), "ping") || !strings.Contains(err.Error(), "no pong") {
		t.Fatalf("Healthcheck with a failing check: got %v, want ErrUnhealthy naming ping", err)
	}
	if s.State() != core.StateRunning {
		t.Fatal("a failing Healthcheck call changed the state: only the monitor may fail the service")
	}
	failing.Store(false)
	dep.setFinal(core.StateTerminated, nil) // stopped behind our back; the watcher fails api too
	if err := s.Healthcheck(t.Context()); !errors.Is(err, core.ErrUnhealthy) {
		t.Fatalf("Healthcheck with a stopped requirement: got %v, want ErrUnhealthy", err)
	}
	<-s.Done()
	if !strings.Contains(s.Err().Error(), "requirement dep stopped") {
		t.Fatalf("Err: got %v, want it to say the requirement stopped", s.Err())
	}
}

func TestNoMonitorWithoutSomethingToWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		idle := core.NewService(core.Name("idle"), core.Logger(coretest.Quiet()), core.TracerProvider(tp))
		checked := core.NewService(core.Name("checked"), core.Logger(coretest.Quiet()), core.TracerProvider(tp),
			&check{name: "ping", fn: func(context.Context) error { return nil }})
		before := coretest.BubbleGoroutines()
		coretest.MustStart(t, idle)
		synctest.Wait()
		extra := coretest.BubbleGoroutines() - before
		coretest.MustStart(t, checked)
		<-time.After(time.Second)
		synctest.Wait()
		coretest.MustStop(t, checked)
		coretest.MustStop(t, idle)
		if extra != 0 {
			t.Errorf("goroutines of a started service with nothing to watch: got %d, want 0", extra)
		}
		counts := map[string]int{}
		for _, s := range sr.Ended() {
			counts[s.Name()]++
		}
		if counts["healthcheck idle"] != 0 || counts["healthcheck checked"] != 10 {
			t.Fatalf("monitor ticks in 1 s: got %d for idle and %d for checked, want 0 and 10",
				counts["healthcheck idle"], counts["healthcheck checked"])
		}
	})
}

// The monitor stuck in a check that ignores its context is named in the
// StopTimeoutError, and the stop goes on.
func TestStopTimeoutNamesStuckMonitor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		first := true
		s := core.NewService(core.Logger(coretest.Quiet()), core.MonitorInterval(time.Second), core.StopTimeout(2*time.Second),
			&check{name: "c", timeout: func(time.Duration) time.Duration { return time.Hour }, fn: func(context.Context) error {
				if first { // the start's check passes
					first = false
					return nil
				}
				<-release
				return nil
			}})
		coretest.MustStart(t, s)
		<-time.After(1500 * time.Millisecond) // the monitor is inside the check
		err := s.Stop(context.Background())
		var te *core.StopTimeoutError
		if !errors.As(err, &te) || len(te.Units) != 1 || te.Units[0] != "monitor" {
			t.Fatalf("Stop: got %v, want a StopTimeoutError naming the monitor", err)
		}
		close(release)
		synctest.Wait()
	})
}

// Healthcheck while stopping reports ErrUnhealthy naming the state.
func TestHealthcheckWhileStopping(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		s := core.NewService(core.Name("s"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
			core.OnStop(func(context.Context) error { <-release; return nil }))
		coretest.MustStart(t, s)
		go s.Stop(context.Background())
		synctest.Wait()
		if err := s.Healthcheck(context.Background()); !errors.Is(err, core.ErrUnhealthy) || !strings.Contains(err.Error(), "stopping") {
			t.Fatalf("Healthcheck while stopping: %v", err)
		}
		close(release)
		<-s.Done()
	})
}

// Between ticks the monitor is a timer, not a goroutine: a started service
// with a check and nothing else runs no goroutine while idle, and the
// checks still run on every tick.
func TestMonitorRunsNoGoroutineBetweenTicks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := &scripted{}
		s := core.NewService(core.Logger(coretest.Quiet()), core.MonitorInterval(100*time.Millisecond),
			&check{name: "count", fn: sc.fn})
		before := coretest.BubbleGoroutines()
		coretest.MustStart(t, s)
		for tick := 1; tick <= 3; tick++ {
			<-time.After(100 * time.Millisecond)
			synctest.Wait()
			if extra := coretest.BubbleGoroutines() - before; extra != 0 {
				t.Fatalf("goroutines after tick %d: got %d more than before Start, want 0", tick, extra)
			}
		}
		if got := sc.runs.Load(); got != 4 {
			t.Fatalf("check runs: got %d, want 4 (start + 3 ticks)", got)
		}
		coretest.MustStop(t, s)
	})
}

// The stop disarms the monitor's next tick: no check runs once Stop has
// returned, however long the service stays around.
func TestMonitorTicksNoMoreAfterStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := &scripted{}
		s := core.NewService(core.Logger(coretest.Quiet()), core.MonitorInterval(100*time.Millisecond),
			&check{name: "count", fn: sc.fn})
		coretest.MustStart(t, s)
		<-time.After(250 * time.Millisecond)
		coretest.MustStop(t, s)
		runs := sc.runs.Load()
		<-time.After(time.Second)
		synctest.Wait()
		if got := sc.runs.Load(); got != runs || runs != 3 {
			t.Fatalf("check runs: got %d at Stop (want 3: start + 2 ticks) and %d a second later, want no more", runs, got)
		}
	})
}

// A parent is unhealthy while a requirement's check fails, as the parent's
// probe (/readyz/<parent>, which lists the requirement's checks) says: its
// Healthcheck names the requirement and the check, and passes again with
// them.
func TestHealthcheckFailsWhileARequirementsCheckFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var down atomic.Bool
		reset := errors.New("conn reset")
		db := core.NewService(core.Name("db"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour),
			&check{name: "ping", fn: func(context.Context) error {
				if down.Load() {
					return reset
				}
				return nil
			}})
		api := core.NewService(core.Name("api"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Hour), requires(db))
		coretest.MustStart(t, api)
		if err := api.Healthcheck(context.Background()); err != nil {
			t.Fatalf("Healthcheck with db healthy: got %v, want nil", err)
		}
		down.Store(true)
		err := api.Healthcheck(context.Background())
		if !errors.Is(err, core.ErrUnhealthy) || !errors.Is(err, reset) || !strings.Contains(err.Error(), "requirement db") {
			t.Fatalf("Healthcheck with db's ping failing: got %v, want ErrUnhealthy naming requirement db and wrapping its check's error", err)
		}
		down.Store(false)
		if err := api.Healthcheck(context.Background()); err != nil {
			t.Fatalf("Healthcheck with db healthy again: got %v, want nil", err)
		}
		coretest.MustStop(t, api)
	})
}
