package eventstream_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/task"
)

// Tasks of several workers failing and retried while Stop comes at various
// points, runs under way: every failed run is exactly one TaskRunFailed or
// TaskRetryScheduled, runs of one worker arrive in order, a worker's last
// event is a TaskRunFailed only when the stop interrupted a retry, and
// nothing comes after the final state change.
func TestTaskFailuresRacingStopAreOneEventEach(t *testing.T) {
	for i := range 10 {
		t.Run(fmt.Sprint("stop at ", i), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var rec recorder
				tk := task.Func("flaky", func(ctx context.Context) error {
					select {
					case <-time.After(3 * time.Millisecond):
						return errBoom
					case <-ctx.Done():
						return errors.New("interrupted, not the cancellation") // a failure while stopping
					}
				}, task.Workers(3), task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(time.Millisecond) }))
				s := core.NewService(core.Name("svc"), core.Logger(coretest.Quiet()), core.OnEvent(rec.hook), tk)
				rec.svc = s
				if err := s.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
				coretest.Advance(time.Duration(50+i) * time.Millisecond)
				_ = s.Stop(context.Background())
				synctest.Wait()
				evs := rec.events()
				checkOutcome(t, s, checkStream(t, "svc", rec.all()))
				runs := map[int]int64{}
				n := 0
				for _, e := range evs {
					var w int
					var run int64
					switch e := e.(type) {
					case core.TaskRunFailed:
						w, run = e.Worker, e.Run
						if !e.Stopping {
							t.Errorf("got %+v, want Stopping: only the stop ends these retries", e)
						}
					case core.TaskRetryScheduled:
						w, run = e.Worker, e.Run
					default:
						continue
					}
					n++
					if run <= runs[w] {
						t.Errorf("worker %d: run %d after run %d", w, run, runs[w])
					}
					runs[w] = run
				}
				if uint64(n) != tk.Failures() {
					t.Errorf("got %d failure events, want %d (Failures)", n, tk.Failures())
				}
			})
		})
	}
}
