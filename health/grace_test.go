package health_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/health"
	"github.com/coreservice/coreservice/internal/coretest"
)

var errNoStats = errors.New("no stats yet")

// graced builds api with the check stats, whose result the test sets, a
// monitor ticking every 100 ms, and opts for the check.
func graced(stats *toggle, opts ...health.Option) *core.Base {
	return core.NewService(core.Name("api"), core.Logger(coretest.Quiet()),
		core.MonitorInterval(100*time.Millisecond), health.Check("stats", stats.fn, opts...))
}

// A check failing in its startup grace does not fail Start: the service is
// Running but not ready, and every view says why: Ready, the probe and
// Healthcheck. Once the check passes, the service is ready.
func TestStartupGraceFailureMakesNotReadyNotFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stats := &toggle{err: errNoStats}
		api := graced(stats, health.StartupGrace(time.Second))
		h := health.Handler(api)
		coretest.MustStart(t, api)
		defer coretest.MustStop(t, api)
		<-time.After(550 * time.Millisecond) // five ticks in the grace, all failing
		if st := api.State(); st != core.StateRunning {
			t.Fatalf("State in the grace: got %v, want running", st)
		}
		checkProbes(t, h, []probeCase{
			{"/livez", "", 200, "ok"},
			{"/readyz", "", 503, "[+]api ok\n[-]api/stats failed: reason withheld\nreadyz check failed\n"},
			{"/readyz/api/stats", "", 503, "[-]api/stats failed: in startup grace: no stats yet\nreadyz check failed\n"},
		})
		if err := health.Ready(api); !errors.Is(err, health.ErrNotReady) || !errors.Is(err, errNoStats) ||
			!strings.Contains(err.Error(), "api/stats: in startup grace: no stats yet") {
			t.Fatalf("Ready: got %v, want ErrNotReady saying api/stats: in startup grace: no stats yet", err)
		}
		if err := api.Healthcheck(t.Context()); !errors.Is(err, core.ErrUnhealthy) ||
			!strings.Contains(err.Error(), "check stats: in startup grace: no stats yet") {
			t.Fatalf("Healthcheck: got %v, want ErrUnhealthy saying check stats: in startup grace: no stats yet", err)
		}
		stats.set(nil)
		<-time.After(100 * time.Millisecond)
		if err := health.Ready(api); err != nil {
			t.Fatalf("Ready once the check passes: got %v, want nil", err)
		}
	})
}

// A check that fails on through its grace is an ordinary check once the
// grace is over: Threshold failing ticks after it fail the service.
func TestStartupGraceOverThresholdApplies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stats := &toggle{err: errNoStats}
		api := graced(stats, health.StartupGrace(time.Second), health.Threshold(3))
		coretest.MustStart(t, api)
		defer func() { _ = api.Stop(context.Background()) }()
		// Ticks at 100 ms .. 900 ms are in the grace; those at 1000, 1100
		// and 1200 ms are the first three failures that count.
		<-time.After(1150 * time.Millisecond)
		if st := api.State(); st != core.StateRunning {
			t.Fatalf("State after two counted failures: got %v, want running", st)
		}
		if err := health.Ready(api); err == nil || strings.Contains(err.Error(), "in startup grace") {
			t.Fatalf("Ready after the grace: got %v, want not ready, not in startup grace", err)
		}
		<-api.Done() // the tick at 1200 ms
		if err := api.Err(); !errors.Is(err, core.ErrUnhealthy) || !errors.Is(err, errNoStats) {
			t.Fatalf("Err: got %v, want ErrUnhealthy wrapping no stats yet", err)
		}
	})
}

// The grace ends at the first run that passes, as Kubernetes' startupProbe
// ends at its first success: a failure after it counts at once.
func TestStartupGraceEndsAtFirstPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		stats := &toggle{err: errNoStats}
		api := graced(stats, health.StartupGrace(time.Hour))
		coretest.MustStart(t, api)
		defer func() { _ = api.Stop(context.Background()) }()
		<-time.After(250 * time.Millisecond)
		stats.set(nil)
		<-time.After(100 * time.Millisecond) // a passing tick ends the grace
		if api.InStartupGrace("stats") {
			t.Fatal("InStartupGrace after a pass: got true, want false")
		}
		stats.set(errors.New("stats gone"))
		<-api.Done() // the next tick fails the service (Threshold 1)
		if err := api.Err(); !errors.Is(err, core.ErrUnhealthy) || !strings.Contains(err.Error(), "stats gone") {
			t.Fatalf("Err: got %v, want ErrUnhealthy saying stats gone", err)
		}
	})
}

// Without StartupGrace, or with StartupGrace(0), a check failing at Start
// fails the start, as before.
func TestWithoutStartupGraceCheckGatesStart(t *testing.T) {
	for _, opts := range [][]health.Option{nil, {health.StartupGrace(0)}} {
		stats := &toggle{err: errNoStats}
		api := graced(stats, opts...)
		err := api.Start(t.Context())
		if !errors.Is(err, core.ErrStartup) || !errors.Is(err, errNoStats) || !strings.Contains(err.Error(), "check stats") {
			t.Fatalf("Start with %v: got %v, want ErrStartup naming check stats, wrapping no stats yet", opts, err)
		}
	}
}

// A negative grace is an invalid option, naming the option, the check and
// the service.
func TestStartupGraceNegativeIsInvalid(t *testing.T) {
	api := graced(&toggle{}, health.StartupGrace(-time.Second))
	err := api.Start(t.Context())
	if !errors.Is(err, core.ErrInvalidOption) {
		t.Fatalf("Start: got %v, want ErrInvalidOption", err)
	}
	for _, want := range []string{"api", `health.Check "stats"`, "health.StartupGrace(-1s): want >= 0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Start: got %v, want it to say %q", err, want)
		}
	}
}
