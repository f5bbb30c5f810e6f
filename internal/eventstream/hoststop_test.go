package eventstream_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/health"
	"github.com/coreservice/coreservice/internal/coretest"
)

// Host.Stop from a unit's goroutine while the start still runs its checks
// aborts the start: Start returns a *StartupError, the service ends
// Terminated with a nil Err, and the events say so (the move to stopping
// carries the start's error, the move to terminated none).
func TestHostStopDuringStartEndsTerminated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec recorder
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.OnEvent(rec.hook),
			goUnit("quitter", func(ctx context.Context, h *core.Host) error { h.Stop(); <-ctx.Done(); return nil }),
			health.Check("slow", func(ctx context.Context) error {
				select {
				case <-time.After(time.Second):
				case <-ctx.Done():
				}
				return nil
			}, health.Timeout(time.Minute)))
		rec.svc = s
		err := s.Start(context.Background())
		var se *core.StartupError
		if !errors.As(err, &se) {
			t.Fatalf("Start: got %v, want a *StartupError", err)
		}
		final := checkStream(t, "svc", rec.all())
		checkOutcome(t, s, final)
		if final.To != core.StateTerminated || s.Err() != nil {
			t.Errorf("got %v, Err %v; want terminated, nil", final.To, s.Err())
		}
		changes := coretest.Only[core.StateChanged](rec.events())
		if len(changes) != 3 || edge(changes[1]) != "starting->stopping" || changes[1].Cause == nil {
			t.Errorf("got %+v, want new->starting, starting->stopping with the start's error, stopping->terminated", changes)
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("Stop after: got %v, want nil", err)
		}
	})
}

// Host.Stop after the service stopped does nothing: no event, no panic,
// the outcome unchanged.
func TestHostStopAfterTheStopDoesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hosts := make(chan *core.Host, 1)
		var rec recorder
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), hostUnit(hosts), core.OnEvent(rec.hook))
		rec.svc = s
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		h := <-hosts
		h.Fail(errBoom)
		<-s.Done()
		n := len(rec.all())
		h.Stop()
		h.Fail(errors.New("late"))
		h.Go("late", func(context.Context) error { t.Error("Go ran after the stop"); return nil })
		synctest.Wait()
		if len(rec.all()) != n || !errors.Is(s.Err(), errBoom) || s.State() != core.StateFailed {
			t.Errorf("after Host.Stop on a failed service: %d events (was %d), Err %v, %v", len(rec.all()), n, s.Err(), s.State())
		}
	})
}

// Host.Stop, Stop, Host.Fail and a unit's failure at the same instant, in
// every order the scheduler picks: one outcome, every Stop caller gets
// the same result, the stream is legal, and a failed service's Err is one
// of the failures.
func TestHostStopRacingStopAndFailuresHasOneOutcome(t *testing.T) {
	for i := range 20 {
		synctest.Test(t, func(t *testing.T) {
			hosts := make(chan *core.Host, 1)
			var rec recorder
			failA, failB := errors.New("fail A"), errors.New("fail B")
			s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), hostUnit(hosts), core.OnEvent(rec.hook),
				goUnit("w", func(ctx context.Context, _ *core.Host) error {
					select {
					case <-time.After(time.Second):
						return failB
					case <-ctx.Done():
						return nil
					}
				}))
			rec.svc = s
			if err := s.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			h := <-hosts
			coretest.Advance(time.Second - time.Nanosecond)
			var wg sync.WaitGroup
			results := make([]error, 3)
			acts := []func(){
				func() { coretest.Advance(time.Nanosecond); h.Stop() },
				func() { coretest.Advance(time.Nanosecond); results[0] = s.Stop(context.Background()) },
				func() { coretest.Advance(time.Nanosecond); h.Fail(failA) },
				func() { coretest.Advance(time.Nanosecond); results[1] = s.Stop(context.Background()) },
			}
			for k := range acts {
				a := acts[(k+i)%len(acts)]
				wg.Go(a)
			}
			wg.Wait()
			results[2] = s.Stop(context.Background())
			synctest.Wait()
			if results[0] != results[1] || results[1] != results[2] {
				t.Errorf("Stop results differ: %v", results)
			}
			final := checkStream(t, "svc", rec.all())
			checkOutcome(t, s, final)
			if err := s.Err(); err != nil && !errors.Is(err, failA) && !errors.Is(err, failB) {
				t.Errorf("Err: got %v, want nil, fail A or fail B", err)
			}
		})
	}
}
