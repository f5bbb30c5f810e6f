package core_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/task"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestChangedClosesAtEveryStateChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()),
			core.OnStart(func(context.Context) error { coretest.Advance(time.Second); return nil }))
		ch := s.Changed()
		if err := s.Stop(context.Background()); err != nil || closed(ch) {
			t.Fatalf("Changed after a Stop before Start: got closed=%v (Stop %v), want open: nothing changed", closed(ch), err)
		}
		begin := time.Now()
		go func() { _ = s.Start(context.Background()) }()
		<-ch
		if s.State() != core.StateStarting || time.Since(begin) != 0 {
			t.Fatalf("first change: got %v after %v, want starting at once", s.State(), time.Since(begin))
		}
		ch = s.Changed()
		<-ch
		if s.State() != core.StateRunning || time.Since(begin) != time.Second {
			t.Fatalf("second change: got %v after %v, want running after 1s", s.State(), time.Since(begin))
		}
		ch = s.Changed()
		go func() { _ = s.Stop(context.Background()) }()
		<-ch
		<-s.Done()
		final := s.Changed()
		synctest.Wait()
		if closed(final) {
			t.Fatal("Changed taken in a final state: got closed, want never closed")
		}
	})
}

func TestChangedOfAnUnusableBaseNeverCloses(t *testing.T) {
	var zero core.Base
	if closed(zero.Changed()) {
		t.Fatal("Changed of a zero Base: got closed, want open")
	}
	if err := zero.Start(context.Background()); !errors.Is(err, core.ErrInvalidOption) {
		t.Fatalf("Start of a zero Base: got %v, want ErrInvalidOption", err)
	}
}

// failingTask fails its first n runs, each retried after a millisecond,
// then ends its worker: n TaskRetryScheduled events, in run order.
func failingTask(n int) *task.Task[struct{}] {
	runs := 0
	return task.Func("flaky", func(context.Context) error {
		if runs++; runs > n {
			return task.ErrDone
		}
		return errBoomTask
	}, task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(time.Millisecond) }))
}

var errBoomTask = errors.New("boom")

// wantMessage is the log record of the events these tests raise.
func wantMessage(e core.Event) string {
	switch e := e.(type) {
	case core.StateChanged:
		return "service " + e.To.String()
	case core.TaskRetryScheduled:
		return "task run failed; retrying"
	}
	return fmt.Sprintf("unexpected %T", e)
}

// Many events of one service reach every hook in the order they happened,
// the same order as the service's log: the state changes in lifecycle
// order, and the retries of a task in the order of its runs.
func TestEventsArriveInTheOrderTheyHappened(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const failures = 100
		logs := coretest.NewLogs()
		var first, second coretest.Events
		s := core.NewService(core.Name("svc"), core.Logger(logs.Logger()), core.MonitorInterval(time.Hour),
			core.OnEvent(first.Hook), core.OnEvent(second.Hook), failingTask(failures))
		coretest.MustStart(t, s)
		coretest.Advance(time.Second) // every failure and retry has happened
		coretest.MustStop(t, s)

		got := first.All()
		if other := second.All(); !slices.Equal(got, other) {
			t.Fatalf("the two hooks got different streams:\n%v\n%v", got, other)
		}
		if n := len(got); n != failures+4 {
			t.Fatalf("got %d events, want %d: 4 state changes and %d retries", n, failures+4, failures)
		}
		var states []string
		run := int64(0)
		for _, e := range got {
			switch e := e.(type) {
			case core.StateChanged:
				states = append(states, e.From.String()+"->"+e.To.String())
			case core.TaskRetryScheduled:
				if e.Run != run+1 || e.Service != "svc" || e.Task != "flaky" || e.Delay != time.Millisecond {
					t.Fatalf("after run %d: got %+v, want run %d of svc/flaky retried in 1ms", run, e, run+1)
				}
				run = e.Run
			default:
				t.Fatalf("unexpected event %+v", e)
			}
		}
		coretest.WantEvents(t, states, []string{"new->starting", "starting->running", "running->stopping", "stopping->terminated"})
		if _, ok := got[0].(core.StateChanged); !ok {
			t.Fatalf("first event: got %+v, want the move to starting", got[0])
		}
		var want, logged []string
		for _, e := range got {
			want = append(want, wantMessage(e))
		}
		for _, r := range logs.Records() {
			if strings.HasPrefix(r.Message, "service ") || r.Message == "task run failed; retrying" {
				logged = append(logged, r.Message)
			}
		}
		coretest.WantEvents(t, logged, want) // the log and the hooks agree
	})
}

// failures is how many runs of failingTask behindHooks's task fails:
// more than EventQueueSize retries.
const failures = 200

// behindHooks is a service whose hook, keeping what it gets in got, blocks
// on the first event until release is closed, while a task fails
// failures times: the hooks fall EventQueueSize events behind.
func behindHooks(logs *coretest.Logs, got *coretest.Events, release chan struct{}, opts ...core.Option) *core.Base {
	return core.NewService(append([]core.Option{core.Name("svc"), core.Logger(logs.Logger()),
		core.MonitorInterval(time.Hour), failingTask(failures),
		core.OnEvent(func(e core.Event) { got.Hook(e); <-release })}, opts...)...)
}

// A hook blocked on a channel holds neither Start nor Stop: Start returns
// at once, and Stop waits for the hooks for StopTimeout, then drops what is
// still queued and logs how many; the hook, still blocked, is left to finish.
func TestSlowHookHoldsNeitherStartNorStopPastStopTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var got coretest.Events
		logs := coretest.NewLogs()
		s := behindHooks(logs, &got, release, core.StopTimeout(5*time.Second))
		took, err := coretest.Bounded(t, "Start", func() error { return s.Start(context.Background()) })
		if err != nil || took != 0 {
			t.Fatalf("Start with a blocked hook: got %v after %v, want nil at once", err, took)
		}
		coretest.Advance(time.Second) // the task's failures fill the queue
		took, err = coretest.Bounded(t, "Stop", func() error { return s.Stop(context.Background()) })
		if err != nil || took != 5*time.Second {
			t.Fatalf("Stop with a blocked hook: got %v after %v, want nil after StopTimeout (5s)", err, took)
		}
		if st := s.State(); st != core.StateTerminated {
			t.Fatalf("state after Stop: got %v, want terminated", st)
		}
		// Raised: the move to starting (the hook is blocked on it), the move
		// to running, the retries and the two moves of the stop. All but the
		// first are dropped: those queued at StopTimeout and those that
		// found the queue full.
		want := strconv.Itoa(1 + failures + 2)
		recs := logs.Find("OnEvent hooks still busy after StopTimeout: the events still queued are dropped")
		if len(recs) != 1 || recs[0].Attrs["dropped"] != want || recs[0].Level != slog.LevelWarn {
			t.Fatalf("drop at StopTimeout: got %+v, want one warning with dropped=%s", recs, want)
		}
		close(release)
		synctest.Wait()
		if all := got.All(); len(all) != 1 {
			t.Fatalf("hook got %d events, want 1 (the one it was blocked on): the rest was dropped at StopTimeout", len(all))
		}
	})
}

// Events raised while the hooks are EventQueueSize behind are dropped and
// counted; once the hooks catch up, an EventsDropped takes their place, in
// the stream and in the log.
func TestDroppedEventsAreReportedOnceThereIsRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var got coretest.Events
		logs := coretest.NewLogs()
		s := behindHooks(logs, &got, release)
		coretest.MustStart(t, s)
		coretest.Advance(time.Second)
		close(release)
		synctest.Wait() // the hook has caught up
		coretest.MustStop(t, s)

		all := got.All()
		// The move to starting (in flight), the queue, the report, the stop.
		if len(all) != 1+core.EventQueueSize+1+2 {
			t.Fatalf("got %d events, want %d", len(all), 1+core.EventQueueSize+1+2)
		}
		dropped, ok := all[1+core.EventQueueSize].(core.EventsDropped)
		retries := len(coretest.OfType[core.TaskRetryScheduled](&got))
		if !ok || dropped.Service != "svc" || dropped.N != failures-retries || dropped.N != 1+failures-core.EventQueueSize {
			t.Fatalf("after the queue: got %+v, want EventsDropped{svc, %d} (%d retries delivered of %d)",
				all[1+core.EventQueueSize], 1+failures-core.EventQueueSize, retries, failures)
		}
		last := all[len(all)-2:]
		if a, b := last[0].(core.StateChanged), last[1].(core.StateChanged); a.To != core.StateStopping || b.To != core.StateTerminated {
			t.Fatalf("last events: got %+v, want the moves to stopping and terminated", last)
		}
		recs := logs.Find("OnEvent hooks missed events")
		if len(recs) != 1 || recs[0].Attrs["dropped"] != strconv.Itoa(dropped.N) {
			t.Fatalf("log: got %+v, want one record with dropped=%d", recs, dropped.N)
		}
		if n := len(logs.Find("task run failed; retrying")); n != failures {
			t.Fatalf("log: got %d retry records, want %d: the log has every event, dropped or not", n, failures)
		}
	})
}

// A hook that panics is recovered and logged: the service runs on, and the
// other hooks get every event.
func TestPanickingHookIsRecoveredAndLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := coretest.NewLogs()
		var got coretest.Events
		s := core.NewService(core.Name("svc"), core.Logger(logs.Logger()),
			core.OnEvent(func(core.Event) { panic("hook bug") }), core.OnEvent(got.Hook))
		coretest.MustStart(t, s)
		coretest.MustStop(t, s)
		if n := len(got.All()); n != 4 {
			t.Fatalf("second hook: got %d events, want 4", n)
		}
		recs := logs.Find("OnEvent hook panicked")
		if len(recs) != 4 || recs[0].Attrs["hook"] != "1" || !strings.Contains(recs[0].Attrs["error"], "hook bug") {
			t.Fatalf("log: got %+v, want 4 records naming hook 1 and the panic", recs)
		}
		if s.Err() != nil {
			t.Fatalf("Err: got %v, want nil", s.Err())
		}
	})
}

// A failure is the cause of the move to Stopping and of the move to Failed.
func TestStateChangedCarriesTheCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		boom := errors.New("boom")
		var got coretest.Events
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.OnEvent(got.Hook),
			&unit{name: "u", fn: failsAfter(time.Second, boom)})
		coretest.MustStart(t, s)
		<-s.Done()
		changes := coretest.OfType[core.StateChanged](&got)
		if len(changes) != 4 {
			t.Fatalf("got %+v, want 4 state changes", changes)
		}
		for _, c := range changes[:2] {
			if c.Cause != nil {
				t.Errorf("%v -> %v: got cause %v, want nil", c.From, c.To, c.Cause)
			}
		}
		for _, c := range changes[2:] {
			if !errors.Is(c.Cause, boom) {
				t.Errorf("%v -> %v: got cause %v, want boom", c.From, c.To, c.Cause)
			}
		}
		if changes[3].To != core.StateFailed {
			t.Errorf("last change: got %v, want failed", changes[3].To)
		}
	})
}

// The hooks get the move to the final state before it is applied: the
// service still reports Stopping, Done is not closed yet, and it is once the
// hook has returned.
func TestFinalEventIsDeliveredBeforeDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var s *core.Base
		type seen struct {
			state core.State
			done  bool
		}
		res := make(chan seen, 1)
		s = core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.OnEvent(func(e core.Event) {
			if c, ok := e.(core.StateChanged); ok && c.To.String() == "terminated" {
				res <- seen{s.State(), closed(s.Done())}
			}
		}))
		coretest.MustStart(t, s)
		coretest.MustStop(t, s)
		if got := <-res; got.state != core.StateStopping || got.done {
			t.Fatalf("in the hook of the final event: got state %v, Done closed %v; want stopping, open", got.state, got.done)
		}
	})
}

// The monitor raises CheckFailed on each tick a check fails, counting the
// failures in a row, up to the threshold, which fails the service.
func TestCheckFailedCountsTowardsTheThreshold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		bad := errors.New("queue full")
		calls := 0
		var got coretest.Events
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Second),
			core.OnEvent(got.Hook), &check{name: "queue", threshold: 3, fn: func(context.Context) error {
				if calls++; calls == 1 {
					return nil // the check of Start
				}
				return bad
			}})
		coretest.MustStart(t, s)
		second := func(e core.Event) bool { c, ok := e.(core.CheckFailed); return ok && c.Failures == 2 }
		if got.Wait(t.Context(), second) == nil {
			t.Fatal("no second CheckFailed")
		}
		if st := s.State(); st != core.StateRunning {
			t.Fatalf("after 2 failures of 3: got %v, want running", st)
		}
		<-s.Done()
		var seq []string
		for _, e := range got.All() {
			switch e := e.(type) {
			case core.CheckFailed:
				if e.Service != "svc" || e.Check != "queue" || e.Threshold != 3 || !errors.Is(e.Err, bad) {
					t.Fatalf("got %+v, want svc's check queue, threshold 3, its error", e)
				}
				seq = append(seq, fmt.Sprintf("check %d/3", e.Failures))
			case core.StateChanged:
				seq = append(seq, e.To.String())
				if e.To == core.StateStopping && !errors.Is(e.Cause, core.ErrUnhealthy) {
					t.Fatalf("move to stopping: got cause %v, want ErrUnhealthy", e.Cause)
				}
			}
		}
		coretest.WantEvents(t, seq, []string{"starting", "running", "check 1/3", "check 2/3", "check 3/3", "stopping", "failed"})
	})
}

// A requirement that fails or stops under its parent raises
// RequirementFailed on the parent, naming it, before the parent's move to
// Stopping; a *Base tells its parents itself, a service of another type is
// seen by the parent's watcher or monitor.
func TestRequirementFailedNamesTheRequirement(t *testing.T) {
	boom := errors.New("disk full")
	cases := []struct {
		name    string
		child   func(rec *coretest.Recorder) (core.Service, func())
		wantErr string
	}{{
		name: "a *Base fails",
		child: func(rec *coretest.Recorder) (core.Service, func()) {
			c := coretest.Node("child", rec, &unit{name: "u", fn: failsAfter(time.Second, boom)})
			return c, func() {}
		},
		wantErr: boom.Error(),
	}, {
		name: "a *Base is stopped",
		child: func(rec *coretest.Recorder) (core.Service, func()) {
			c := coretest.Node("child", rec)
			return c, func() { _ = c.Stop(context.Background()) }
		},
		wantErr: "requirement child stopped",
	}, {
		name: "a foreign service fails",
		child: func(rec *coretest.Recorder) (core.Service, func()) {
			f := newFake("child", rec)
			return f, func() { f.crash(boom) }
		},
		wantErr: boom.Error(),
	}, {
		name: "a foreign service is stopping",
		child: func(rec *coretest.Recorder) (core.Service, func()) {
			f := newFake("child", rec)
			return f, f.stopping
		},
		wantErr: "requirement child is stopping",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rec := &coretest.Recorder{}
				child, breakIt := tc.child(rec)
				var got coretest.Events
				p := core.NewService(core.Name("p"), core.Logger(coretest.Quiet()), core.MonitorInterval(time.Second),
					requires(child), core.OnEvent(got.Hook))
				coretest.MustStart(t, p)
				coretest.Advance(time.Millisecond)
				breakIt()
				<-p.Done()
				var seq []string
				for _, e := range got.All() {
					switch e := e.(type) {
					case core.RequirementFailed:
						if e.Service != "p" || e.Requirement != "child" || e.Err == nil || e.Err.Error() != tc.wantErr {
							t.Fatalf("got %+v, want p's requirement child with error %q", e, tc.wantErr)
						}
						seq = append(seq, "requirement failed")
					case core.StateChanged:
						seq = append(seq, e.To.String())
					}
				}
				coretest.WantEvents(t, seq, []string{"starting", "running", "requirement failed", "stopping", "failed"})
			})
		})
	}
}

// A stop step that runs out of its StopTimeout raises StopTimedOut naming
// what it left running, as its *StopTimeoutError does.
func TestStopTimedOutNamesWhatWasLeftRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		var got coretest.Events
		s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.StopTimeout(time.Second),
			core.OnEvent(got.Hook),
			&unit{name: "stuck", fn: func(context.Context) error { <-release; return nil }},
			core.OnStop(func(context.Context) error { <-release; return nil }))
		coretest.MustStart(t, s)
		if err := s.Stop(context.Background()); !errors.Is(err, core.ErrStopTimeout) {
			t.Fatalf("Stop: got %v, want ErrStopTimeout", err)
		}
		var units []string
		for _, e := range coretest.OfType[core.StopTimedOut](&got) {
			if e.Service != "svc" || e.Timeout != time.Second {
				t.Fatalf("got %+v, want svc's StopTimeout 1s", e)
			}
			units = append(units, e.Units...)
		}
		coretest.WantEvents(t, units, []string{"stuck", "OnStop hook 1"})
	})
}

// Each event is a slog.LogValuer: its value is its fields, service first,
// the same attributes as its log record.
func TestEventsAreLogValuers(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		e    core.Event
		want string
	}{
		{core.StateChanged{Service: "s", From: core.StateRunning, To: core.StateStopping, Cause: boom},
			"[service=s from=running state=stopping reason=failure error=boom]"},
		{core.StateChanged{Service: "s", From: core.StateRunning, To: core.StateStopping},
			"[service=s from=running state=stopping reason=requested]"},
		{core.TaskRunFailed{Service: "s", Task: "t", Worker: 2, Run: 3, Err: boom, Fails: true},
			"[service=s task=t worker=2 run=3 error=boom]"},
		{core.TaskRetryScheduled{Service: "s", Task: "t", Worker: 1, Run: 4, Err: boom, Delay: time.Second},
			"[service=s task=t worker=1 run=4 error=boom retry_in=1s]"},
		{core.CheckFailed{Service: "s", Check: "c", Failures: 1, Threshold: 2, Err: boom},
			"[service=s check=c failures=1 threshold=2 error=boom]"},
		{core.RequirementFailed{Service: "s", Requirement: "db", Err: boom},
			"[service=s requirement=db error=boom]"},
		{core.RequirementFailed{Service: "s", Requirement: "db", Err: boom, Origin: "disk"},
			"[service=s requirement=db origin=disk]"},
		{core.StopTimedOut{Service: "s", Timeout: time.Second, Units: []string{"task t#1"}},
			"[service=s timeout=1s units=[task t#1]]"},
		{core.EventsDropped{Service: "s", N: 7}, "[service=s dropped=7]"},
	} {
		if got := tc.e.LogValue().String(); got != tc.want {
			t.Errorf("%T: got %s, want %s", tc.e, got, tc.want)
		}
	}
}

func TestOnEventNilIsInvalid(t *testing.T) {
	err := core.NewService(core.Logger(coretest.Quiet()), core.OnEvent(nil)).Start(context.Background())
	if !errors.Is(err, core.ErrInvalidOption) || !strings.Contains(err.Error(), "core.OnEvent: nil function") {
		t.Fatalf("Start: got %v, want ErrInvalidOption naming core.OnEvent", err)
	}
}

// An idle service with OnEvent hooks keeps no goroutine for them: the one
// that delivers its events ends once they are delivered.
func TestNoDeliveryGoroutineWhileNoEventWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var got coretest.Events
		s := core.NewService(core.Name("idle"), core.Logger(coretest.Quiet()), core.OnEvent(func(e core.Event) {
			got.Hook(e)
			if len(got.All()) == 1 {
				<-release
			}
		}))
		coretest.MustStart(t, s)
		synctest.Wait()
		if n := delivering(); n != 1 {
			t.Fatalf("while the hook holds an event: got %d delivery goroutines, want 1", n)
		}
		close(release)
		synctest.Wait() // the two events of the start are delivered
		if n := delivering(); n != 0 || len(got.All()) != 2 {
			t.Fatalf("idle service with a hook: got %d delivery goroutines and %d events, want 0 and 2", n, len(got.All()))
		}
		coretest.MustStop(t, s)
	})
}

// delivering counts the goroutines delivering events to OnEvent hooks.
func delivering() int {
	buf := make([]byte, 1<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "core.(*Base).deliver(")
}

// errorRecords returns the records logged at ERROR or above.
func errorRecords(logs *coretest.Logs) []coretest.Record {
	var out []coretest.Record
	for _, r := range logs.Records() {
		if r.Level >= slog.LevelError {
			out = append(out, r)
		}
	}
	return out
}

// A failure is logged at ERROR once, where it happens; the services it
// propagates to reference it by the name of the service where it began.
func TestAFailureIsLoggedAtErrorOnceAlongAChain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := coretest.NewLogs()
		l := logs.Logger()
		db := core.NewService(core.Name("db"), core.Logger(l), &unit{name: "conn", fn: func(ctx context.Context) error {
			coretest.Advance(time.Second)
			return errors.New("conn reset")
		}})
		cache := core.NewService(core.Name("cache"), core.Logger(l), requires(db))
		api := core.NewService(core.Name("api"), core.Logger(l), requires(cache))
		coretest.MustStart(t, api)
		<-api.Done()
		synctest.Wait()

		errs := errorRecords(logs)
		if len(errs) != 1 {
			t.Fatalf("ERROR records: got %d %+v, want 1", len(errs), errs)
		}
		if r := errs[0]; r.Message != "service stopping" || r.Attrs["service"] != "db" || r.Attrs["error"] != "conn reset" {
			t.Fatalf("the ERROR record: got %+v, want db's service stopping with error=conn reset", r)
		}
		for _, tc := range []struct{ svc, req string }{{"cache", "db"}, {"api", "cache"}} {
			r := stopRecord(t, logs, tc.svc)
			if r.Level != slog.LevelWarn || r.Attrs["reason"] != "requirement "+tc.req+" failed" || r.Attrs["origin"] != "db" {
				t.Fatalf("%s's stop: got %+v, want WARN with reason=requirement %s failed origin=db", tc.svc, r, tc.req)
			}
			if _, ok := r.Attrs["error"]; ok {
				t.Fatalf("%s's stop: got %+v, want no error repeated", tc.svc, r)
			}
		}
		for _, r := range logs.Find("requirement failed") {
			if r.Level != slog.LevelWarn || r.Attrs["origin"] != "db" {
				t.Fatalf("requirement failed: got %+v, want WARN with origin=db", r)
			}
		}
		if n := len(logs.Find("requirement failed")); n != 2 {
			t.Fatalf("requirement failed records: got %d, want 2 (cache's and api's)", n)
		}
	})
}

// A start that fails in a requirement is logged at ERROR once, by the
// requirement; the parents whose starts it fails say so at WARN, naming
// where it began (origin), without the error again.
func TestAFailedStartIsLoggedAtErrorOnceAlongAChain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := coretest.NewLogs()
		l := logs.Logger()
		db := core.NewService(core.Name("db"), core.Logger(l),
			core.OnStart(func(context.Context) error { return errors.New("connection refused") }))
		cache := core.NewService(core.Name("cache"), core.Logger(l), requires(db))
		api := core.NewService(core.Name("api"), core.Logger(l), requires(cache))
		if err := api.Start(context.Background()); !errors.Is(err, core.ErrStartup) {
			t.Fatalf("Start: got %v, want ErrStartup", err)
		}
		synctest.Wait()
		errs := errorRecords(logs)
		if len(errs) != 1 {
			t.Fatalf("ERROR records: got %d %+v, want 1", len(errs), errs)
		}
		if r := errs[0]; r.Message != "service stopping" || r.Attrs["service"] != "db" {
			t.Fatalf("the ERROR record: got %+v, want db's service stopping", r)
		}
		for _, svc := range []string{"cache", "api"} {
			r := stopRecord(t, logs, svc)
			if r.Level != slog.LevelWarn || r.Attrs["origin"] != "db" {
				t.Fatalf("%s's stop: got %+v, want WARN with origin=db", svc, r)
			}
			if _, ok := r.Attrs["error"]; ok {
				t.Fatalf("%s's stop: got %+v, want no error repeated", svc, r)
			}
		}
	})
}

// A task run that fails its service is the failure's ERROR record: the move
// to Stopping it causes names it as the reason, at WARN.
func TestATaskFailureIsLoggedAtErrorOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := coretest.NewLogs()
		boom := errors.New("boom")
		s := core.NewService(core.Name("svc"), core.Logger(logs.Logger()), &launchHook{fn: func(h *core.Host) {
			h.Go("task fetch#1", func(ctx context.Context) error {
				coretest.Advance(time.Second)
				h.Emit(ctx, core.TaskRunFailed{Task: "fetch", Worker: 1, Run: 1, Err: boom, Fails: true})
				return &core.TaskError{Service: "svc", Task: "fetch", Worker: 1, Err: boom}
			})
		}})
		coretest.MustStart(t, s)
		<-s.Done()
		errs := errorRecords(logs)
		if len(errs) != 1 || errs[0].Message != "task run failed; the service fails" {
			t.Fatalf("ERROR records: got %+v, want the task run's only", errs)
		}
		if r := stopRecord(t, logs, "svc"); r.Level != slog.LevelWarn || r.Attrs["reason"] != "failure of task fetch" {
			t.Fatalf("svc's stop: got %+v, want WARN with reason=failure of task fetch", r)
		}
	})
}

func TestTheMoveToStoppingSaysWhoAskedForIt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := coretest.NewLogs()
		s := core.NewService(core.Name("svc"), core.Logger(logs.Logger()))
		coretest.MustStart(t, s)
		coretest.MustStop(t, s)
		if r := stopRecord(t, logs, "svc"); r.Level != slog.LevelInfo || r.Attrs["reason"] != "Stop" {
			t.Fatalf("svc's stop: got %+v, want INFO with reason=Stop", r)
		}
	})
}
