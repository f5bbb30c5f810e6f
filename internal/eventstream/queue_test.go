package eventstream_test

import (
	"context"
	"runtime"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
)

// emitter is a unit whose goroutine raises, on every signal from bursts,
// that many TaskRetryScheduled events (Run counting on from 1), then
// reports on emitted; it then waits for the stop.
func emitter(bursts <-chan int, emitted chan<- struct{}) *unit {
	return goUnit("emitter", func(ctx context.Context, h *core.Host) error {
		run := int64(0)
		for {
			select {
			case n := <-bursts:
				for range n {
					run++
					h.Emit(ctx, core.TaskRetryScheduled{Task: "t", Worker: 1, Run: run, Err: errBoom, Delay: time.Millisecond})
				}
				emitted <- struct{}{}
			case <-ctx.Done():
				return nil
			}
		}
	})
}

// Events raised while a hook is behind are dropped past EventQueueSize and
// counted: over two overflows, what the hook gets plus the N of every
// EventsDropped is exactly what was raised, the retries it gets keep their
// order, and each EventsDropped arrives.
func TestEventsDroppedCountsExactlyWhatWasDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		var rec recorder
		bursts, emitted := make(chan int), make(chan struct{})
		block := true
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), emitter(bursts, emitted),
			core.OnEvent(func(e core.Event) {
				rec.hook(e)
				if block {
					<-gate
				}
			}))
		rec.svc = s
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		const first, second = 300, 500
		bursts <- first
		<-emitted
		gate <- struct{}{} // release the hook blocked on new->starting
		synctest.Wait()    // it blocks again on the next event
		bursts <- second
		<-emitted
		block = false // read by the hook only after the next receive
		close(gate)
		synctest.Wait()
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		evs := rec.events()
		raised := 4 + first + second // 4 state changes
		delivered, dropped, reports := 0, 0, 0
		var runs []int64
		for _, e := range evs {
			switch e := e.(type) {
			case core.EventsDropped:
				dropped += e.N
				reports++
				if e.N <= 0 || e.Service != "svc" {
					t.Errorf("got %+v, want a positive N for svc", e)
				}
			case core.TaskRetryScheduled:
				runs = append(runs, e.Run)
				delivered++
			default:
				delivered++
			}
		}
		if delivered+dropped != raised {
			t.Fatalf("got %d delivered + %d dropped = %d, want %d raised:\n%s", delivered, dropped, delivered+dropped, raised, describe(evs))
		}
		if reports < 2 {
			t.Errorf("got %d EventsDropped, want at least 2 (two overflows)", reports)
		}
		if !slices.IsSorted(runs) || len(slices.Compact(slices.Clone(runs))) != len(runs) {
			t.Errorf("retries out of order: %v", runs)
		}
		checkOutcome(t, s, checkStream(t, "svc", rec.all()))
	})
}

// A hook that is EventQueueSize events behind when the service stops can
// lose the move to the final state: it is dropped and counted in the
// EventsDropped the hook gets last; Done still closes once the hook has
// caught up (documented: "Done is closed ... once every hook has had it or
// it was dropped").
func TestFinalStateChangeDroppedIsCountedInTheLastEventsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gate := make(chan struct{})
		var rec recorder
		bursts, emitted := make(chan int), make(chan struct{})
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.StopTimeout(time.Minute), emitter(bursts, emitted),
			core.OnEvent(func(e core.Event) { rec.hook(e); <-gate }))
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the hook holds new->starting; starting->running is queued
		bursts <- core.EventQueueSize - 1
		<-emitted // the queue is full
		go func() { coretest.Advance(time.Second); close(gate) }()
		begin := time.Now()
		if err := s.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(begin); took != time.Second {
			t.Errorf("Stop: took %v, want 1s (until the hook caught up)", took)
		}
		evs := rec.events()
		if len(evs) != 2+core.EventQueueSize-1+1 {
			t.Fatalf("got %d events, want %d:\n%s", len(evs), 2+core.EventQueueSize, describe(evs))
		}
		last, ok := evs[len(evs)-1].(core.EventsDropped)
		if !ok || last.N != 2 {
			t.Fatalf("last event: got %T %+v, want EventsDropped{N: 2} (stopping and terminated)", evs[len(evs)-1], evs[len(evs)-1])
		}
		if s.State() != core.StateTerminated {
			t.Fatalf("state: got %v, want terminated", s.State())
		}
	})
}

// A hook blocked forever holds Stop for StopTimeout, no more; once it is
// released, nothing of the service is left running (the bubble ends).
func TestHookBlockedForeverHoldsStopForStopTimeoutOnly(t *testing.T) {
	for _, on := range []core.State{core.StateStarting, core.StateRunning, core.StateStopping, core.StateTerminated} {
		t.Run(on.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				release := make(chan struct{})
				s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.StopTimeout(3*time.Second),
					core.OnEvent(func(e core.Event) {
						if c, ok := e.(core.StateChanged); ok && c.To == on {
							<-release
						}
					}))
				if err := s.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
				begin := time.Now()
				err := s.Stop(context.Background())
				if took := time.Since(begin); err != nil || took != 3*time.Second {
					t.Errorf("Stop: got %v after %v, want nil after StopTimeout 3s", err, took)
				}
				if !isClosed(s.Done()) || s.State() != core.StateTerminated {
					t.Errorf("after Stop: Done closed %v, state %v; want closed, terminated", isClosed(s.Done()), s.State())
				}
				close(release)
				synctest.Wait()
			})
		})
	}
}

// A hook that calls runtime.Goexit (t.FailNow in a hook, say) ends the
// goroutine that delivers the events. The other hooks should still get
// the events, and Stop should not wait for a delivery that will never come.
func TestHookThatCallsGoexitDoesNotStallDelivery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var rec recorder
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.StopTimeout(5*time.Second),
			core.OnEvent(func(e core.Event) {
				if c, ok := e.(core.StateChanged); ok && c.To == core.StateRunning {
					runtime.Goexit()
				}
			}),
			core.OnEvent(rec.hook))
		rec.svc = s
		if err := s.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		begin := time.Now()
		err := s.Stop(context.Background())
		took := time.Since(begin)
		evs := rec.events()
		if len(evs) != 4 {
			t.Errorf("second hook: got %d events, want 4 (every state change):\n%s", len(evs), describe(evs))
		}
		if err != nil || took != 0 {
			t.Errorf("Stop: got %v after %v, want nil at once", err, took)
		}
	})
}

// Several hooks, one slow: both get the same stream, never two events of
// the service at once, and neither Start nor a failure waits for them.
func TestSlowHookAndFastHookGetTheSameStreamOneAtATime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var slow, fast recorder
		hosts := make(chan *core.Host, 1)
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.StopTimeout(time.Hour), hostUnit(hosts),
			core.OnEvent(func(e core.Event) { slow.hook(e); coretest.Advance(time.Second) }),
			core.OnEvent(fast.hook))
		slow.svc, fast.svc = s, s
		begin := time.Now()
		if err := s.Start(context.Background()); err != nil || time.Since(begin) != 0 {
			t.Fatalf("Start: got %v after %v, want nil at once", err, time.Since(begin))
		}
		h := <-hosts
		for i := range 10 {
			h.Emit(context.Background(), core.TaskRunFailed{Task: "t", Worker: 1, Run: int64(i + 1), Err: errBoom})
		}
		h.Fail(errBoom)
		<-s.Done()
		a, b := slow.events(), fast.events()
		if len(a) != 14 || !slices.EqualFunc(a, b, func(x, y core.Event) bool { return x == y }) {
			t.Fatalf("streams: got %d and %d events, want the same 14:\n%s\n%s", len(a), len(b), describe(a), describe(b))
		}
		if slow.concur != 1 || fast.concur != 1 {
			t.Errorf("events delivered at once: got %d and %d, want 1", slow.concur, fast.concur)
		}
		checkOutcome(t, s, checkStream(t, "svc", slow.all()))
	})
}
