package health_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/deps"
	"github.com/coreservice/coreservice/health"
	"github.com/coreservice/coreservice/internal/coretest"
)

// ownHealth embeds *core.Base and defines a Healthcheck of its own, which
// the monitor and the probes would never run.
type ownHealth struct{ *core.Base }

func (*ownHealth) Healthcheck(context.Context) error { return errors.New("custom says no") }

// A type with a Healthcheck of its own is never silently ignored: the
// probes answer 500 naming it, Ready and WaitReady return the error, a
// parent's Start fails on it as a requirement, and so does core.Run.
func TestOwnHealthcheckIsRejected(t *testing.T) {
	svc := &ownHealth{service("db")}
	w := get(health.Handler(svc), "/readyz", "")
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "health_test.ownHealth's own") {
		t.Errorf("GET /readyz: got %d %q, want 500 naming ownHealth's Healthcheck", w.Code, w.Body)
	}
	if err := health.Ready(svc); !errors.Is(err, core.ErrInvalidOption) || errors.Is(err, health.ErrNotReady) {
		t.Errorf("Ready: got %v, want ErrInvalidOption, not ErrNotReady", err)
	}
	if err := health.WaitReady(t.Context(), svc); !errors.Is(err, core.ErrInvalidOption) {
		t.Errorf("WaitReady: got %v, want ErrInvalidOption", err)
	}

	api := service("api", deps.Requires(svc))
	if err := api.Start(t.Context()); !errors.Is(err, core.ErrStartup) || !errors.Is(err, core.ErrInvalidOption) ||
		!strings.Contains(err.Error(), "Healthcheck") {
		t.Errorf("Start of a parent: got %v, want ErrStartup, ErrInvalidOption naming the Healthcheck", err)
	}
	if st := svc.State(); st != core.StateNew {
		t.Errorf("requirement's State: got %v, want new: nothing started", st)
	}

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := core.Run(ctx, svc); !errors.Is(err, core.ErrInvalidOption) || !strings.Contains(err.Error(), "Healthcheck") {
		t.Errorf("core.Run: got %v, want ErrInvalidOption naming the Healthcheck", err)
	}
	if st := svc.State(); st != core.StateNew {
		t.Errorf("State after Run: got %v, want new: nothing started", st)
	}
}

// statsAPI declares its own health as a check on one of its methods, the
// way that replaces a Healthcheck method of its own.
type statsAPI struct {
	*core.Base
	stats toggle
}

func (a *statsAPI) checkStats(ctx context.Context) error { return a.stats.fn(ctx) }

// Health declared as a check is one truth: the monitor fails the service
// once it has failed Threshold times, /readyz shows its error before
// that, and Healthcheck and the probes say the same.
func TestCustomHealthAsCheckIsOneTruth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &statsAPI{}
		a.Base = core.NewService(core.Name("api"), core.Logger(coretest.Quiet()),
			core.MonitorInterval(100*time.Millisecond),
			health.Check("stats", a.checkStats, health.Threshold(2)))
		h := health.Handler(a)
		coretest.MustStart(t, a)
		defer func() { _ = a.Stop(context.Background()) }()
		a.stats.set(errors.New("stats stale"))
		<-time.After(150 * time.Millisecond) // one failing tick, of two
		if st := a.State(); st != core.StateRunning {
			t.Fatalf("State after one failure: got %v, want running", st)
		}
		checkProbes(t, h, []probeCase{
			{"/readyz/api/stats", "", 503, "[-]api/stats failed: stats stale\nreadyz check failed\n"},
		})
		hc := a.Healthcheck(t.Context())
		ready := health.Ready(a)
		if !errors.Is(hc, core.ErrUnhealthy) || !strings.Contains(hc.Error(), "check stats: stats stale") {
			t.Fatalf("Healthcheck: got %v, want ErrUnhealthy saying check stats: stats stale", hc)
		}
		if !errors.Is(ready, health.ErrNotReady) || !strings.Contains(ready.Error(), "api/stats: stats stale") {
			t.Fatalf("Ready: got %v, want ErrNotReady saying api/stats: stats stale", ready)
		}
		<-a.Done() // the second failing tick
		if err := a.Err(); !errors.Is(err, core.ErrUnhealthy) || !strings.Contains(err.Error(), "stats stale") {
			t.Fatalf("Err: got %v, want ErrUnhealthy saying stats stale", err)
		}
	})
}
