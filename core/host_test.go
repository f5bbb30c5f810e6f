package core_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
)

// Host.Stop, called by a unit whose job is done, begins the stop and
// returns at once; the stop waits for the unit's goroutine, the service
// ends Terminated and Stop's callers get its result.
func TestHostStopEndsTheServiceWithoutWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var host *core.Host
		returned := make(chan time.Duration, 1)
		jobDone := make(chan struct{})
		s := core.NewService(core.Name("job"), core.Logger(coretest.Quiet()), core.StopTimeout(time.Hour),
			&hostGrabber{h: &host},
			&unit{name: "job", fn: func(ctx context.Context) error {
				<-jobDone
				begin := time.Now()
				host.Stop()
				returned <- time.Since(begin)
				<-ctx.Done() // the stop cancels the unit's context
				return nil
			}})
		coretest.MustStart(t, s)
		begin := time.Now()
		close(jobDone)
		if took := <-returned; took != 0 {
			t.Fatalf("Host.Stop returned after %v, want at once", took)
		}
		<-s.Done()
		if took := time.Since(begin); took != 0 {
			t.Errorf("the service stopped after %v, want at once (its unit returned)", took)
		}
		if s.State() != core.StateTerminated || s.Err() != nil {
			t.Fatalf("after Host.Stop: got %v, Err %v; want terminated, nil", s.State(), s.Err())
		}
		if err := s.Stop(context.Background()); err != nil {
			t.Fatalf("Stop after Host.Stop: got %v, want the stop's result, nil", err)
		}
		host.Stop() // once stopped: a no-op
		if s.State() != core.StateTerminated {
			t.Fatalf("after a second Host.Stop: got %v, want terminated", s.State())
		}
	})
}

// Host.Stop called while the service starts (from a unit's Launch) aborts
// the start, which rolls back; the service ends Terminated, as after Stop
// during Start.
func TestHostStopDuringStartAbortsTheStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &coretest.Recorder{}
		s := coretest.Node("s", rec, &launchHook{fn: func(h *core.Host) { h.Stop() }})
		err := s.Start(context.Background())
		if !errors.Is(err, core.ErrStartup) || !strings.Contains(err.Error(), "stopped while starting") {
			t.Fatalf("Start: got %v, want a *StartupError saying it was stopped while starting", err)
		}
		if s.State() != core.StateTerminated || s.Err() != nil {
			t.Fatalf("after Host.Stop during Start: got %v, Err %v; want terminated, nil", s.State(), s.Err())
		}
		coretest.WantEvents(t, rec.Events(), []string{"s start", "s stop"})
	})
}

// launchHook is a unit whose Launch calls fn with the Host.
type launchHook struct{ fn func(*core.Host) }

func (u *launchHook) ApplyTo(c *core.Config) { c.AddUnit(u) }
func (u *launchHook) Name() string           { return "launch hook" }
func (u *launchHook) Launch(_ context.Context, h *core.Host) error {
	u.fn(h)
	return nil
}

// listened starts a service named svc logging to logs, with got as its
// OnEvent hook, and returns it with its Host.
func listened(t *testing.T, logs *coretest.Logs, got *coretest.Events) (*core.Base, *core.Host) {
	var host *core.Host
	s := core.NewService(core.Name("svc"), core.Logger(logs.Logger()), &hostGrabber{h: &host},
		core.OnEvent(got.Hook))
	coretest.MustStart(t, s)
	return s, host
}

// Host.Emit raises the events of units, with the service's name; the kinds
// the service raises itself, and nil, are dropped with an error record.
func TestHostEmitRaisesUnitEventsOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got coretest.Events
		logs := coretest.NewLogs()
		s, host := listened(t, logs, &got)
		ctx := context.Background()
		host.Emit(ctx, core.TaskRetryScheduled{Service: "forged", Task: "t", Worker: 1, Run: 1, Delay: time.Second})
		host.Emit(ctx, core.StateChanged{From: core.StateRunning, To: core.StateFailed})
		host.Emit(ctx, nil)
		coretest.MustStop(t, s)
		retries := coretest.OfType[core.TaskRetryScheduled](&got)
		if len(retries) != 1 || retries[0].Service != "svc" {
			t.Fatalf("got %+v, want one TaskRetryScheduled of svc", retries)
		}
		if n := len(coretest.OfType[core.StateChanged](&got)); n != 4 {
			t.Fatalf("got %d state changes, want 4: the forged one is dropped", n)
		}
		var errs []string
		for _, r := range logs.Records() {
			if strings.HasPrefix(r.Message, "Host.Emit: ") {
				errs = append(errs, r.Message)
			}
		}
		coretest.WantEvents(t, errs, []string{
			"Host.Emit: core.StateChanged is raised by the service, not by its units: dropped",
			"Host.Emit: nil event: dropped",
		})
	})
}

// No event reaches the hooks after the final state change: an event raised
// later (by user code the stop left behind) is logged only.
func TestNoEventAfterTheFinalStateChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var got coretest.Events
		logs := coretest.NewLogs()
		s, host := listened(t, logs, &got)
		coretest.MustStop(t, s)
		host.Emit(context.Background(), core.TaskRunFailed{Task: "late", Worker: 1, Run: 1, Err: errors.New("late")})
		synctest.Wait()
		all := got.All()
		if last, ok := all[len(all)-1].(core.StateChanged); !ok || last.To != core.StateTerminated {
			t.Fatalf("last event: got %+v, want the move to terminated", all[len(all)-1])
		}
		if len(logs.Find("task run failed while the service stops; not retried")) != 1 {
			t.Fatalf("log: got %+v, want the late event logged", logs.Records())
		}
	})
}

// panicHandler is a slog.Handler that panics on records with message msg.
type panicHandler struct{ msg string }

func (h panicHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h panicHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		panic("log sink bug")
	}
	return nil
}
func (h panicHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h panicHandler) WithGroup(string) slog.Handler      { return h }

// A log handler that panics while a unit's event is written fails the unit
// (its goroutine recovers the panic), and the records after it are still
// written: the stop, which waits for the log, ends.
func TestPanickingLogHandlerDoesNotHoldUpTheLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var host *core.Host
		var got coretest.Events
		s := core.NewService(core.Name("svc"), core.Logger(slog.New(panicHandler{msg: "task run failed; retrying"})),
			core.MonitorInterval(time.Hour), core.OnEvent(got.Hook), &hostGrabber{h: &host},
			&unit{name: "u", fn: func(ctx context.Context) error {
				<-time.After(time.Second) // once Running
				host.Emit(ctx, core.TaskRetryScheduled{Task: "t", Worker: 1, Run: 1, Delay: time.Second})
				<-ctx.Done()
				return nil
			}})
		coretest.MustStart(t, s)
		if _, err := coretest.Bounded(t, "the self-stop", func() error { <-s.Done(); return nil }); err != nil {
			t.Fatal(err)
		}
		var pe *core.PanicError
		if !errors.As(s.Err(), &pe) {
			t.Fatalf("Err: got %v, want the handler's panic, recovered in the unit", s.Err())
		}
		changes := coretest.OfType[core.StateChanged](&got)
		if len(changes) != 4 || changes[3].To != core.StateFailed {
			t.Fatalf("got %+v, want 4 state changes ending failed", changes)
		}
	})
}

func TestHostStopTimeoutIsTheServicesStopTimeout(t *testing.T) {
	cases := []struct {
		name string
		opts []core.Option
		want time.Duration
	}{
		{"default", nil, core.DefaultStopTimeout},
		{"set", []core.Option{core.StopTimeout(1500 * time.Millisecond)}, 1500 * time.Millisecond},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var host *core.Host
			s := core.NewService(append([]core.Option{core.Name("s"), core.Logger(coretest.Quiet()), &hostGrabber{h: &host}}, tc.opts...)...)
			coretest.MustStart(t, s)
			if got := host.StopTimeout(); got != tc.want {
				t.Fatalf("Host.StopTimeout: got %v, want %v", got, tc.want)
			}
		})
	}
}
