package task_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/task"
)

// Every failed run raises exactly one event on its service: a
// TaskRetryScheduled with the delay when it is retried, else a TaskRunFailed
// saying whether the failure is the service's and whether the service was
// stopping.
func TestEveryFailedRunRaisesOneEvent(t *testing.T) {
	retry := task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(time.Second) })
	failOnStop := func(ctx context.Context) error { <-ctx.Done(); return errFlush }
	cases := []struct {
		name string
		tk   *task.Task[struct{}]
		stop bool // stop the service, else wait for it to fail
		want core.Event
	}{
		{"not retried", task.Func("t", func(context.Context) error { return errBoom }, afterStart), false,
			core.TaskRunFailed{Service: "svc", Task: "t", Worker: 1, Run: 1, Err: errBoom, Fails: true}},
		{"retried", task.Func("t", func(context.Context) error { return errBoom }, afterStart, retry,
			task.Workers(2)), true,
			core.TaskRetryScheduled{Service: "svc", Task: "t", Worker: 1, Run: 1, Err: errBoom, Delay: time.Second}},
		{"while stopping", task.Func("t", failOnStop), true,
			core.TaskRunFailed{Service: "svc", Task: "t", Worker: 1, Run: 1, Err: errFlush, Fails: true, Stopping: true}},
		{"while stopping, retry", task.Func("t", failOnStop, retry), true,
			core.TaskRunFailed{Service: "svc", Task: "t", Worker: 1, Run: 1, Err: errFlush, Stopping: true}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var got coretest.Events
				svc := newService(tc.tk, core.OnEvent(got.Hook))
				coretest.MustStart(t, svc)
				advance(time.Millisecond) // the first runs have failed; no retry is due yet
				if tc.stop {
					_ = svc.Stop(context.Background())
				} else {
					waitFailed(t, svc)
				}
				var events []core.Event
				for _, e := range got.All() {
					switch e.(type) {
					case core.TaskRunFailed, core.TaskRetryScheduled:
						events = append(events, e)
					}
				}
				if tc.name == "retried" { // two workers: one event each
					if len(events) != 2 {
						t.Fatalf("got %+v, want one retry per worker", events)
					}
					if w2 := events[0].(core.TaskRetryScheduled); w2.Worker == 2 {
						events[0], events[1] = events[1], events[0]
					}
					w2 := tc.want.(core.TaskRetryScheduled)
					w2.Worker = 2
					if !eventIs(events[1], w2) {
						t.Fatalf("worker 2: got %+v, want %+v", events[1], w2)
					}
				} else if len(events) != 1 {
					t.Fatalf("got %+v, want one event", events)
				}
				if !eventIs(events[0], tc.want) {
					t.Fatalf("got %+v, want %+v", events[0], tc.want)
				}
			})
		})
	}
}

// eventIs compares two task events, their errors with errors.Is.
func eventIs(got, want core.Event) bool {
	g, gerr := withoutErr(got)
	w, werr := withoutErr(want)
	return g != nil && g == w && errors.Is(gerr, werr)
}

// withoutErr returns a task event without its error, and the error.
func withoutErr(e core.Event) (core.Event, error) {
	switch e := e.(type) {
	case core.TaskRunFailed:
		err := e.Err
		e.Err = nil
		return e, err
	case core.TaskRetryScheduled:
		err := e.Err
		e.Err = nil
		return e, err
	}
	return nil, nil
}
