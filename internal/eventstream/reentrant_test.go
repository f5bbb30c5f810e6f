package eventstream_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/health"
	"github.com/coreservice/coreservice/internal/coretest"
)

// A hook that calls its own service's Stop with an unrelated context waits
// for itself: documented to last StopTimeout, after which the events still
// queued are dropped, and the stop ends clean.
func TestHookCallingItsServiceStopWaitsStopTimeoutAtMost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s *core.Base
		var rec recorder
		type result struct {
			err  error
			took time.Duration
		}
		res := make(chan result, 1)
		s = core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.StopTimeout(2*time.Second),
			core.OnEvent(rec.hook),
			core.OnEvent(func(e core.Event) {
				if c, ok := e.(core.StateChanged); ok && c.To == core.StateRunning {
					begin := time.Now()
					err := s.Stop(context.Background())
					res <- result{err, time.Since(begin)}
				}
			}))
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		<-s.Done()
		r := <-res
		if r.err != nil || r.took != 2*time.Second {
			t.Errorf("Stop in a hook: got %v after %v, want nil after StopTimeout 2s", r.err, r.took)
		}
		if s.State() != core.StateTerminated || s.Err() != nil {
			t.Errorf("got %v, Err %v; want terminated, nil", s.State(), s.Err())
		}
		synctest.Wait()
	})
}

// A hook that calls Host.Stop ends the service at once, and every hook
// still gets the whole stream, the final change included.
func TestHookCallingHostStopEndsTheServiceAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec recorder
		var h atomic.Pointer[core.Host]
		keep := &unit{name: "host", launch: func(_ context.Context, host *core.Host) error { h.Store(host); return nil }}
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.StopTimeout(time.Hour), keep,
			core.OnEvent(func(e core.Event) {
				if c, ok := e.(core.StateChanged); ok && c.To == core.StateRunning {
					h.Load().Stop()
					h.Load().Stop()
				}
			}),
			core.OnEvent(rec.hook))
		rec.svc = s
		begin := time.Now()
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		<-s.Done()
		if took := time.Since(begin); took != 0 {
			t.Errorf("Done: after %v, want at once", took)
		}
		final := checkStream(t, "svc", rec.all())
		checkOutcome(t, s, final)
		if final.To != core.StateTerminated || len(rec.all()) != 4 {
			t.Errorf("got %d events ending %v, want 4 ending terminated", len(rec.all()), final.To)
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("Stop after Host.Stop: got %v, want nil", err)
		}
	})
}

// A hook may call State, Err, Changed and Healthcheck of its own service on
// every event without deadlock. Hooks run behind the service, so what they
// read may be later than the event, never earlier; the final change is seen
// before it is applied (Done is closed once the hooks have had it).
func TestHookCallingStateErrHealthcheckSeesTheEventOrLater(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s *core.Base
		type obs struct {
			e      core.StateChanged
			state  core.State
			err    error
			health error
			ch     <-chan struct{} // Changed taken in the hook
		}
		var got []obs
		s = core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Second),
			health.Check("c", func(context.Context) error { return nil }),
			core.OnEvent(func(e core.Event) {
				c, ok := e.(core.StateChanged)
				if !ok {
					return
				}
				got = append(got, obs{e: c, state: s.State(), err: s.Err(), health: s.Healthcheck(context.Background()), ch: s.Changed()})
			}))
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		coretest.Advance(3 * time.Second)
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if len(got) != 4 {
			t.Fatalf("got %d state changes, want 4", len(got))
		}
		for i, o := range got {
			if i == 3 {
				if o.state != core.StateStopping || o.err != nil {
					t.Errorf("hook of %s: got State %v, Err %v; want stopping (the final change is applied after the hooks had it), nil", edge(o.e), o.state, o.err)
				}
			} else if o.state < o.e.To || o.err != nil {
				t.Errorf("hook of %s: got State %v, Err %v; want %v or later, nil", edge(o.e), o.state, o.err, o.e.To)
			}
			if o.health != nil && !errors.Is(o.health, core.ErrUnhealthy) {
				t.Errorf("hook of %s: Healthcheck got %v, want nil or ErrUnhealthy", edge(o.e), o.health)
			}
			if o.health == nil && o.state > core.StateRunning {
				t.Errorf("hook of %s: Healthcheck passed after State read %v", edge(o.e), o.state)
			}
			if !isClosed(o.ch) {
				t.Errorf("hook of %s: Changed taken there still open after Done", edge(o.e))
			}
		}
	})
}

// A hook that panics on every event, also the final one, holds nothing up:
// the failure still reaches Err, Done closes at once, the other hook gets
// every event.
func TestHookPanickingOnEveryEventHoldsNothingUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hosts := make(chan *core.Host, 1)
		var rec recorder
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), hostUnit(hosts),
			core.OnEvent(func(e core.Event) { panic(e) }), core.OnEvent(rec.hook),
			core.OnEvent(func(core.Event) { panic(nil) }))
		rec.svc = s
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		h := <-hosts
		begin := time.Now()
		h.Fail(errBoom)
		<-s.Done()
		if took := time.Since(begin); took != 0 {
			t.Errorf("Done: after %v, want at once", took)
		}
		if !errors.Is(s.Err(), errBoom) {
			t.Errorf("Err: got %v, want boom", s.Err())
		}
		checkOutcome(t, s, checkStream(t, "svc", rec.all()))
		if n := len(rec.all()); n != 4 {
			t.Errorf("got %d events, want 4", n)
		}
	})
}

// Stop whose ctx ends while a hook holds the final change returns ctx's
// error then; Done closes at StopTimeout, and a later Stop gets the stop's
// result (nil).
func TestStopCtxEndingWhileAHookIsBehindReturnsCtxError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.StopTimeout(4*time.Second),
			core.OnEvent(func(e core.Event) {
				if c, ok := e.(core.StateChanged); ok && c.To == core.StateTerminated {
					<-release
				}
			}))
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		begin := time.Now()
		err := s.Stop(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || time.Since(begin) != time.Second {
			t.Errorf("Stop: got %v after %v, want the deadline after 1s", err, time.Since(begin))
		}
		if isClosed(s.Done()) || s.State() != core.StateStopping {
			t.Errorf("after 1s: Done closed %v, %v; want open, stopping", isClosed(s.Done()), s.State())
		}
		<-s.Done()
		if took := time.Since(begin); took != 4*time.Second {
			t.Errorf("Done: after %v, want StopTimeout 4s", took)
		}
		if err := s.Stop(context.Background()); err != nil || s.State() != core.StateTerminated {
			t.Errorf("later Stop: got %v, %v; want nil, terminated", err, s.State())
		}
		close(release)
		synctest.Wait()
	})
}
