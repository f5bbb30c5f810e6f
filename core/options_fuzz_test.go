package core_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
)

// FuzzCoreOptions gives a service random values of Name, MonitorInterval,
// StartTimeout and StopTimeout, with an OnStart and an OnStop hook that
// take a random time up to a day (each returns when its context ends) and a check that
// passes. Start must return ErrInvalidOption for an invalid value, before
// any hook runs; otherwise the service starts (or, when the OnStart hook
// outlasts StartTimeout, fails with context.DeadlineExceeded), runs its
// check every MonitorInterval and stops cleanly within StopTimeout: never a
// panic, never a hang (synctest reports a goroutine left blocked).
func FuzzCoreOptions(f *testing.F) {
	f.Add("svc", int64(core.DefaultMonitorInterval), int64(core.DefaultStartTimeout), int64(core.DefaultStopTimeout),
		int64(0), int64(0))
	f.Add("", int64(0), int64(-1), int64(math.MinInt64), int64(-1), int64(-1))
	f.Add("a/b\n[+]c", int64(1), int64(1), int64(1), int64(1), int64(1))
	f.Add("svc", int64(math.MaxInt64), int64(math.MaxInt64), int64(math.MaxInt64),
		int64(time.Hour), int64(math.MaxInt64))
	f.Add("svc", int64(time.Second), int64(time.Second), int64(time.Second), int64(2*time.Second), int64(2*time.Second))
	f.Fuzz(func(t *testing.T, name string, monitor, startTimeout, stopTimeout, startDelay, stopDelay int64) {
		// The hooks wait at most a day: waiting ~292 years would take the
		// bubble's fake clock to its end, where every timer is due at once.
		hookDelay := func(d int64) time.Duration { return min(time.Duration(max(d, 0)), 24*time.Hour) }
		synctest.Test(t, func(t *testing.T) {
			fuzzCore(t, name, time.Duration(monitor), time.Duration(startTimeout), time.Duration(stopTimeout),
				hookDelay(startDelay), hookDelay(stopDelay))
		})
	})
}

// wait waits d, or until ctx ends; it always returns nil, so that only the
// service's own bounds can make a hook fail.
func wait(ctx context.Context, d time.Duration) {
	if d == 0 {
		return
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// saturatingAdd is a+b for non-negative durations, capped at the largest.
func saturatingAdd(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

func fuzzCore(t *testing.T, name string, monitor, startTimeout, stopTimeout, startDelay, stopDelay time.Duration) {
	var started, stopped atomic.Bool
	var checks atomic.Int64
	svc := core.NewService(core.Name(name), core.Logger(coretest.Quiet()),
		core.MonitorInterval(monitor), core.StartTimeout(startTimeout), core.StopTimeout(stopTimeout),
		core.OnStart(func(ctx context.Context) error {
			started.Store(true)
			wait(ctx, startDelay)
			return ctx.Err()
		}),
		core.OnStop(func(ctx context.Context) error {
			stopped.Store(true)
			wait(ctx, stopDelay)
			return nil
		}),
		&check{name: "ok", fn: func(context.Context) error { checks.Add(1); return nil },
			timeout: func(time.Duration) time.Duration { return time.Hour }})
	desc := func() string {
		return "core.Name(" + strings.ReplaceAll(name, "\n", `\n`) + "), MonitorInterval(" + monitor.String() +
			"), StartTimeout(" + startTimeout.String() + "), StopTimeout(" + stopTimeout.String() +
			"), OnStart waiting " + startDelay.String() + ", OnStop waiting " + stopDelay.String()
	}
	mustStop := func() {
		t.Helper()
		t0 := time.Now()
		if err := svc.Stop(context.Background()); err != nil {
			t.Fatalf("%s: Stop: got %v, want nil", desc(), err)
		}
		if d := time.Since(t0); d > max(stopTimeout, 0) {
			t.Fatalf("%s: Stop took %v, want at most StopTimeout (0 after an invalid option)", desc(), d)
		}
		if st := svc.State(); st != core.StateTerminated && st != core.StateFailed {
			t.Fatalf("%s: state after Stop: got %v, want terminated or failed", desc(), st)
		}
	}

	t0 := time.Now()
	err := svc.Start(t.Context())
	elapsed := time.Since(t0)
	invalid := name == "" || monitor <= 0 || startTimeout <= 0 || stopTimeout <= 0
	switch {
	case invalid || errors.Is(err, core.ErrInvalidOption):
		if !errors.Is(err, core.ErrInvalidOption) || !errors.Is(err, core.ErrStartup) {
			t.Fatalf("%s: Start: got %v, want ErrStartup and ErrInvalidOption", desc(), err)
		}
		// A non-empty name may be rejected, if the error says so.
		if !invalid && !strings.Contains(err.Error(), "core.Name") {
			t.Fatalf("%s: Start: got %v, want nil, or an invalid core.Name", desc(), err)
		}
		if started.Load() || stopped.Load() || checks.Load() != 0 {
			t.Fatalf("%s: hooks or checks ran before the invalid option was reported", desc())
		}
		mustStop()
		return
	case startDelay > startTimeout:
		if !errors.Is(err, core.ErrStartup) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s: Start: got %v, want ErrStartup and context.DeadlineExceeded", desc(), err)
		}
	case startDelay < startTimeout && err != nil:
		t.Fatalf("%s: Start: got %v, want nil", desc(), err)
	}
	if bound := saturatingAdd(startTimeout, stopTimeout); elapsed > bound {
		t.Fatalf("%s: Start took %v, want at most StartTimeout+StopTimeout (the rollback)", desc(), elapsed)
	}
	if err != nil {
		if st := svc.State(); st != core.StateFailed {
			t.Fatalf("%s: state after a failed Start: got %v, want failed", desc(), st)
		}
		mustStop()
		return
	}

	// About three monitor periods, at most an hour.
	adv := time.Hour
	if monitor <= 20*time.Minute {
		adv = 3 * monitor
	}
	before := checks.Load() // the check at start
	<-time.After(adv)
	synctest.Wait()
	ticks, want := checks.Load()-before, int64(adv/monitor)
	// A tick due at the very instant the wait ends may run before or after it.
	if ticks != want && !(adv%monitor == 0 && ticks == want-1) {
		t.Fatalf("%s: the monitor checked %d times in %v, want %d", desc(), ticks, adv, want)
	}
	if err := svc.Healthcheck(t.Context()); err != nil || svc.State() != core.StateRunning {
		t.Fatalf("%s: after %v: got %v, %v, want running and healthy", desc(), adv, svc.State(), err)
	}
	mustStop()
	if st, err := svc.State(), svc.Err(); st != core.StateTerminated || err != nil {
		t.Fatalf("%s: after Stop: got %v, %v, want terminated, nil", desc(), st, err)
	}
	if !stopped.Load() {
		t.Fatalf("%s: the OnStop hook did not run", desc())
	}
}
