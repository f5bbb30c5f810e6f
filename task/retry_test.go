package task_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/task"
)

// script returns a task function that fails (errBoom) or succeeds run after
// run as results says (true = success), and succeeds past its end. It
// records when each run starts.
func script(st *stamps, results ...bool) func(context.Context) error {
	var n atomic.Int32
	return func(context.Context) error {
		st.add()
		if i := int(n.Add(1)) - 1; i < len(results) && !results[i] {
			return errBoom
		}
		return nil
	}
}

func wantTaskError(t *testing.T, err error, taskName string, cause error) {
	t.Helper()
	var te *core.TaskError
	if !errors.As(err, &te) {
		t.Fatalf("Err: got %v, want a *core.TaskError", err)
	}
	if te.Service != "svc" || te.Task != taskName || te.Worker != 1 {
		t.Fatalf("TaskError: got service %q, task %q, worker %d, want svc, %s, 1", te.Service, te.Task, te.Worker, taskName)
	}
	if !errors.Is(err, cause) {
		t.Fatalf("Err: got %v, want it to wrap %v", err, cause)
	}
}

func TestNoRetryFirstFailureFailsTheService(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStamps()
		tk := task.Func("fragile", script(st, true, false), task.Every(time.Second))
		svc := newService(tk)
		coretest.MustStart(t, svc)
		waitFailed(t, svc)
		wantStamps(t, st, secs(0, 1)...)
		if got := svc.State(); got != core.StateFailed {
			t.Fatalf("state: got %v, want failed", got)
		}
		wantTaskError(t, svc.Err(), "fragile", errBoom)
		if want := "task svc/fragile worker 1: boom"; svc.Err().Error() != want {
			t.Fatalf("Err: got %q, want %q", svc.Err(), want)
		}
	})
}

func TestRetryFailFailSucceed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStamps()
		tk := task.Func("flaky", script(st, false, false, true), task.Every(10*time.Second),
			task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(2 * time.Second) }))
		svc := newService(tk)
		coretest.MustStart(t, svc)
		advance(25 * time.Second)
		// Fail at 0 and 2s, succeed at 4s, then every 10s.
		wantStamps(t, st, secs(0, 2, 4, 14, 24)...)
		if r, f := tk.Runs(), tk.Failures(); r != 5 || f != 2 {
			t.Fatalf("Runs, Failures: got %d, %d, want 5, 2", r, f)
		}
		if got := svc.State(); got != core.StateRunning {
			t.Fatalf("state: got %v, want running", got)
		}
		coretest.MustStop(t, svc)
	})
}

func TestRetryResetAfterSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStamps()
		policy := &sequence{delays: secs(1, 2, 4, 8)}
		tk := task.Func("flaky", script(st, false, false, true, false, true), task.Every(10*time.Second),
			task.Retry(func() backoff.BackOff { return policy }))
		svc := newService(tk)
		coretest.MustStart(t, svc)
		advance(30 * time.Second)
		// Fail at 0 (reset, +1s), fail at 1 (+2s), succeed at 3 (+10s), fail
		// at 13 (reset: +1s again, not +4s), succeed at 14, then every 10s.
		wantStamps(t, st, secs(0, 1, 3, 13, 14, 24)...)
		if nexts, resets := policy.counts(); nexts != 3 || resets != 2 {
			t.Fatalf("policy: got %d NextBackOff and %d Reset calls, want 3 and 2 (one per streak of failures)", nexts, resets)
		}
		coretest.MustStop(t, svc)
	})
}

func TestRetryExhaustedFailsTheService(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStamps()
		tk := task.Func("doomed", script(st, false, false, false, false),
			task.Retry(func() backoff.BackOff {
				return backoff.WithMaxRetries(backoff.NewConstantBackOff(time.Second), 2)
			}))
		svc := newService(tk)
		t0 := time.Now()
		coretest.MustStart(t, svc)
		waitFailed(t, svc)
		if d := time.Since(t0); d != 2*time.Second {
			t.Fatalf("service failed after %v, want 2s", d)
		}
		wantStamps(t, st, secs(0, 1, 2)...)
		if r, f := tk.Runs(), tk.Failures(); r != 3 || f != 3 {
			t.Fatalf("Runs, Failures: got %d, %d, want 3, 3", r, f)
		}
		if got := svc.State(); got != core.StateFailed {
			t.Fatalf("state: got %v, want failed", got)
		}
		wantTaskError(t, svc.Err(), "doomed", errBoom)
	})
}

func TestPermanentErrorsAreNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var runs atomic.Int32
		tk := task.Func("strict", func(context.Context) error {
			runs.Add(1)
			return backoff.Permanent(errBoom)
		}, afterStart, task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(time.Second) }))
		svc := newService(tk)
		coretest.MustStart(t, svc)
		waitFailed(t, svc)
		if got := runs.Load(); got != 1 {
			t.Fatalf("runs: got %d, want 1", got)
		}
		wantTaskError(t, svc.Err(), "strict", errBoom)
	})
}

func TestTimeoutCancelsTheRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStamps()
		var deadlineOK atomic.Bool
		tk := task.Func("slow", func(ctx context.Context) error {
			st.add()
			d, ok := ctx.Deadline()
			deadlineOK.Store(ok && d.Equal(time.Now().Add(2*time.Second)))
			<-ctx.Done()
			return ctx.Err()
		}, task.Timeout(2*time.Second),
			task.Retry(func() backoff.BackOff {
				return backoff.WithMaxRetries(backoff.NewConstantBackOff(time.Second), 1)
			}))
		svc := newService(tk)
		t0 := time.Now()
		coretest.MustStart(t, svc)
		waitFailed(t, svc)
		// Run at 0, times out at 2s; retried at 3s, times out at 5s: no more retries.
		if d := time.Since(t0); d != 5*time.Second {
			t.Fatalf("service failed after %v, want 5s", d)
		}
		wantStamps(t, st, secs(0, 3)...)
		if !deadlineOK.Load() {
			t.Fatal("the run's context has no deadline 2s after its start")
		}
		if f := tk.Failures(); f != 2 {
			t.Fatalf("Failures: got %d, want 2", f)
		}
		wantTaskError(t, svc.Err(), "slow", context.DeadlineExceeded)
		if !strings.Contains(svc.Err().Error(), "timed out after 2s") {
			t.Fatalf("Err: got %q, want it to say the run timed out after 2s", svc.Err())
		}
	})
}

func TestRetriesAreLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &capture{}
		st := newStamps()
		tk := task.Func("flaky", script(st, false, true), task.Once(),
			task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(time.Second) }))
		svc := core.NewService(core.Name("svc"), core.Logger(slog.New(logs)), tk)
		coretest.MustStart(t, svc)
		advance(time.Minute)
		coretest.MustStop(t, svc)
		r, ok := logs.find("task run failed; retrying")
		if !ok {
			t.Fatal("no log of the retry")
		}
		want := map[string]string{"service": "svc", "task": "flaky", "worker": "1", "run": "1",
			"error": "boom", "retry_in": "1s"}
		for k, v := range want {
			if r.attrs[k] != v {
				t.Errorf("retry log: %s=%q, want %q", k, r.attrs[k], v)
			}
		}
	})
}

// waitForCancel is a core.Check that blocks until its context ends: it
// holds the service in StateStarting until something aborts the start.
type waitForCancel struct{}

func (waitForCancel) ApplyTo(c *core.Config)              { c.AddCheck(waitForCancel{}) }
func (waitForCancel) Name() string                        { return "wait" }
func (waitForCancel) Timeout(time.Duration) time.Duration { return time.Hour }
func (waitForCancel) Threshold() int                      { return 1 }
func (waitForCancel) Check(ctx context.Context) error     { <-ctx.Done(); return ctx.Err() }

func TestFailureWhileStartingFailsStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Start launches the task, then runs the check, which waits: the
		// task's failure aborts the start.
		svc := newService(task.Func("early", func(context.Context) error { return errBoom }), waitForCancel{})
		err := svc.Start(t.Context())
		if !errors.Is(err, core.ErrStartup) {
			t.Fatalf("Start: got %v, want ErrStartup", err)
		}
		wantTaskError(t, err, "early", errBoom)
		if got := svc.State(); got != core.StateFailed {
			t.Fatalf("state: got %v, want failed", got)
		}
	})
}

// fixedPolicy is a backoff.BackOff that always returns d.
type fixedPolicy time.Duration

func (p fixedPolicy) NextBackOff() time.Duration { return time.Duration(p) }
func (fixedPolicy) Reset()                       {}

// untilCancelled returns a task function that fails its first n runs and
// then blocks until its context ends (so that a busy loop ends and the
// fake clock can move), counting its calls.
func untilCancelled(calls *atomic.Int32, n int32, err error) func(context.Context) error {
	return func(ctx context.Context) error {
		if calls.Add(1) <= n {
			return err
		}
		<-ctx.Done()
		return ctx.Err()
	}
}

// A Retry policy's delay is >= 0 or backoff.Stop: any other negative delay
// is invalid, and fails the service (it would make an always-failing task a
// busy loop).
func TestRetryNegativeDelayFailsTheService(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		tk := task.Func("spin", untilCancelled(&calls, 10, errBoom), afterStart,
			task.Retry(func() backoff.BackOff { return fixedPolicy(-5 * time.Second) }))
		svc := newService(tk)
		coretest.MustStart(t, svc)
		waitFailed(t, svc)
		wantTaskError(t, svc.Err(), "spin", errBoom)
		if want := "task.Retry policy: NextBackOff returned -5s, want >= 0 or backoff.Stop"; !strings.Contains(svc.Err().Error(), want) {
			t.Fatalf("Err: got %q, want it to contain %q", svc.Err(), want)
		}
		if got := calls.Load(); got != 1 {
			t.Fatalf("runs: got %d, want 1", got)
		}
	})
}

// The Retry policy's budget starts when a failure streak begins, not when
// the policy was made or last reset: the idle wait between runs (Every,
// Delay) and the failed run itself do not use up MaxElapsedTime, so the
// first failure after a long wait is retried (DESIGN task: "Retry(func()
// backoff.BackOff) (after a failed run wait NextBackOff() and run again;
// Reset() after a success)").
func TestRetryBudgetStartsAtTheFirstFailure(t *testing.T) {
	expo := task.Retry(func() backoff.BackOff { return backoff.NewExponentialBackOff() })
	cases := []struct {
		name    string
		opts    []task.Option
		results []bool // per run: true = success
		wait    time.Duration
	}{
		// Succeed at 0, fail at 1h: retried ~0.5s later, succeeds.
		{"Every(1h)", []task.Option{task.Every(time.Hour), expo}, []bool{true, false}, time.Hour + time.Minute},
		// First run at 20m fails: retried ~0.5s later, succeeds.
		{"Delay(20m)", []task.Option{task.Delay(20 * time.Minute), task.Once(), expo}, []bool{false}, 21 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := newStamps()
				tk := task.Func("hourly", script(st, tc.results...), tc.opts...)
				svc := newService(tk)
				coretest.MustStart(t, svc)
				advance(tc.wait)
				if got := svc.State(); got != core.StateRunning {
					t.Fatalf("state: got %v (Err %v), want running: the first failure after %v idle "+
						"was never retried", got, svc.Err(), tc.wait)
				}
				if f := tk.Failures(); f != 1 {
					t.Fatalf("Failures: got %d, want 1", f)
				}
				coretest.MustStop(t, svc)
			})
		})
	}
}

// A Retry or Schedule policy that panics fails the run like an error: the
// run's span ends, the run is counted, and the service fails with a
// *core.TaskError that keeps the run's own error (DESIGN task/otelx: "A panic is recovered into *core.PanicError and
// handled like an error").
func TestPanickingPolicyFailsTheRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr, tp := newRecorder(t)
		tk := task.Func("p", func(context.Context) error { return errBoom }, afterStart,
			task.Retry(func() backoff.BackOff { return panickyPolicy{} }))
		svc := newService(core.TracerProvider(tp), tk)
		coretest.MustStart(t, svc)
		waitFailed(t, svc)
		if n := len(spansNamed(sr, "task svc/p")); n != 1 {
			t.Errorf("ended task spans: got %d, want 1: the run's span was never ended", n)
		}
		if r := tk.Runs(); r != 1 {
			t.Errorf("Runs: got %d, want 1", r)
		}
		var te *core.TaskError
		if !errors.As(svc.Err(), &te) || !errors.Is(svc.Err(), errBoom) {
			t.Errorf("Err: got %q, want a *core.TaskError that keeps the run's error (boom)", svc.Err())
		}
	})
}

// Once + Retry + ErrDone: failures are retried, then ErrDone ends the worker
// cleanly; the service keeps running and the run is no failure.
func TestOnceRetryThenErrDone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		tk := task.Func("init", func(context.Context) error {
			if n.Add(1) < 3 {
				return errBoom
			}
			return task.ErrDone
		}, task.Once(), task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(time.Second) }))
		svc := newService(tk)
		coretest.MustStart(t, svc)
		advance(time.Hour)
		if r, f := tk.Runs(), tk.Failures(); r != 3 || f != 2 {
			t.Fatalf("Runs, Failures: got %d, %d, want 3, 2", r, f)
		}
		if _, ok := tk.Last(); ok {
			t.Fatal("Last: got a result, want none: no run succeeded")
		}
		if got := svc.State(); got != core.StateRunning {
			t.Fatalf("state: got %v, want running", got)
		}
		coretest.MustStop(t, svc)
	})
}

func TestExhaustedRetriesSayWhichRunFailed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tk := task.Func("fetch", func(context.Context) error { return errBoom },
			task.Retry(func() backoff.BackOff {
				return backoff.WithMaxRetries(backoff.NewConstantBackOff(time.Second), 3)
			}))
		svc := newService(tk)
		if err := svc.Start(context.Background()); err == nil {
			<-svc.Done()
		}
		err := svc.Err()
		wantTaskError(t, err, "fetch", errBoom)
		var te *core.TaskError
		if !errors.As(err, &te) || te.Run != 4 || te.Retries != 3 || !te.Exhausted {
			t.Fatalf("TaskError: got %+v, want run 4, 3 retries, exhausted", te)
		}
		if want := "task svc/fetch worker 1: run 4 (retries exhausted after 3): boom"; err.Error() != want {
			t.Fatalf("Err: got %q, want %q", err, want)
		}
	})
}
