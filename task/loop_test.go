package task_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/coretest"
	"github.com/coreservice/coreservice/task"
)

func TestDefaultsEvery100msFromTheStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStamps()
		svc := newService(task.Func("tick", func(context.Context) error { st.add(); return nil }))
		coretest.MustStart(t, svc)
		advance(450 * time.Millisecond)
		ms := time.Millisecond
		wantStamps(t, st, 0, 100*ms, 200*ms, 300*ms, 400*ms)
		coretest.MustStop(t, svc)
	})
}

func TestEveryIsAFixedDelayFromTheEndOfARun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStamps()
		tk := task.Func("slow", func(context.Context) error {
			st.add()
			<-time.After(3 * time.Second) // the run takes 3s
			return nil
		}, task.Every(10*time.Second))
		svc := newService(tk)
		coretest.MustStart(t, svc)
		advance(40 * time.Second)
		wantStamps(t, st, secs(0, 13, 26, 39)...)
		if got := tk.Runs(); got != 3 {
			t.Fatalf("Runs: got %d, want 3 (the 4th is in progress)", got)
		}
		coretest.MustStop(t, svc)
	})
}

func TestEveryZeroRunsBackToBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n int
		tk := task.New("spin", func(context.Context) (int, error) {
			if n++; n == 1000 {
				return n, task.ErrDone
			}
			return n, nil
		}, task.Every(0))
		svc := newService(tk)
		t0 := time.Now()
		coretest.MustStart(t, svc)
		synctest.Wait()
		if got := tk.Runs(); got != 1000 {
			t.Fatalf("Runs: got %d, want 1000", got)
		}
		if d := time.Since(t0); d != 0 {
			t.Fatalf("1000 runs took %v of fake time, want 0", d)
		}
		coretest.MustStop(t, svc)
	})
}

func TestDelayBeforeTheFirstRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStamps()
		tk := task.Func("late", func(context.Context) error { st.add(); return nil },
			task.Delay(5*time.Second), task.Every(10*time.Second), task.Workers(2))
		svc := newService(tk)
		coretest.MustStart(t, svc)
		advance(4 * time.Second)
		if got := tk.Runs(); got != 0 {
			t.Fatalf("Runs after 4s: got %d, want 0", got)
		}
		advance(26 * time.Second)
		wantStamps(t, st, secs(5, 5, 15, 15, 25, 25)...)
		coretest.MustStop(t, svc)
	})
}

func TestJitterBounds(t *testing.T) {
	cases := []struct {
		name     string
		opts     []task.Option
		fail     bool
		min, max time.Duration // of the first run and of every gap
	}{
		{"Every", []task.Option{task.Every(10 * time.Second), task.Delay(10 * time.Second), task.Jitter(0.5)},
			false, 5 * time.Second, 15 * time.Second},
		{"Retry", []task.Option{task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(10 * time.Second) }),
			task.Delay(10 * time.Second), task.Jitter(0.2)},
			true, 8 * time.Second, 12 * time.Second},
		{"Schedule", []task.Option{task.Schedule(func() backoff.BackOff { return backoff.NewConstantBackOff(10 * time.Second) }),
			task.Delay(10 * time.Second), task.Jitter(1)},
			false, 0, 20 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := newStamps()
				tk := task.Func("jittery", func(context.Context) error {
					st.add()
					if tc.fail {
						return errBoom
					}
					return nil
				}, tc.opts...)
				svc := newService(tk)
				coretest.MustStart(t, svc)
				advance(2000 * time.Second)
				coretest.MustStop(t, svc)
				at := st.get()
				if len(at) < 2000/int(tc.max/time.Second) {
					t.Fatalf("%d runs in 2000s, want at least %d", len(at), 2000/int(tc.max/time.Second))
				}
				gaps := map[time.Duration]bool{}
				prev := time.Duration(0)
				for i, a := range at {
					gap := a - prev
					if gap < tc.min || gap > tc.max {
						t.Fatalf("wait before run %d: got %v, want within [%v, %v]", i+1, gap, tc.min, tc.max)
					}
					gaps[gap] = true
					prev = a
				}
				if len(gaps) < len(at)/2 {
					t.Fatalf("%d distinct waits among %d, want them randomized", len(gaps), len(at))
				}
			})
		})
	}
}

func TestSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStamps()
		var made atomic.Int32
		tk := task.Func("sched", func(context.Context) error { st.add(); return nil },
			task.Schedule(func() backoff.BackOff {
				made.Add(1)
				return &sequence{delays: secs(1, 2, 3)}
			}))
		svc := newService(tk)
		coretest.MustStart(t, svc)
		advance(time.Hour)
		// 0, then +1s, +2s, +3s; then the policy says Stop: the worker ends.
		wantStamps(t, st, secs(0, 1, 3, 6)...)
		if got := svc.State(); got != core.StateRunning {
			t.Fatalf("state after the schedule stopped: got %v, want running", got)
		}
		if got := made.Load(); got != 1 {
			t.Fatalf("policies made: got %d, want 1", got)
		}
		coretest.MustStop(t, svc)
	})
}

// Once says whether a worker repeats, Every and Schedule how long it waits:
// Once holds whatever order the options come in, while Every and Schedule
// replace each other (the last one given wins).
func TestOnceIsIndependentOfEveryAndSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		nop := func(context.Context) error { return nil }
		once := task.Func("once", nop, task.Every(time.Second), task.Once())
		onceFirst := task.Func("once-first", nop,
			task.Once(), task.Schedule(func() backoff.BackOff { return &backoff.StopBackOff{} }), task.Every(time.Second))
		every := task.Func("every", nop,
			task.Schedule(func() backoff.BackOff { return &backoff.StopBackOff{} }), task.Every(time.Second))
		st := newStamps()
		schedule := task.Func("schedule", func(context.Context) error { st.add(); return nil },
			task.Every(time.Second), task.Schedule(func() backoff.BackOff { return &sequence{delays: secs(2, 3)} }))
		svc := newService(once, onceFirst, every, schedule)
		coretest.MustStart(t, svc)
		advance(10*time.Second + time.Millisecond)
		if got := once.Runs(); got != 1 {
			t.Errorf("Every then Once: got %d runs, want 1", got)
		}
		if got := onceFirst.Runs(); got != 1 {
			t.Errorf("Once, Schedule then Every(1s): got %d runs in 10s, want 1", got)
		}
		if got := every.Runs(); got != 11 {
			t.Errorf("Schedule then Every(1s): got %d runs in 10s, want 11", got)
		}
		// 0, +2s, +3s, then the policy says Stop.
		if got, want := st.get(), secs(0, 2, 5); !slices.Equal(got, want) {
			t.Errorf("Every then Schedule: runs started at %v, want %v", got, want)
		}
		coretest.MustStop(t, svc)
	})
}

func TestErrDoneEndsTheWorkerCleanly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		tk := task.New("counter", func(context.Context) (int32, error) {
			if v := n.Add(1); v < 3 {
				return v, nil
			}
			return 99, fmt.Errorf("no more work: %w", task.ErrDone)
		}, task.Every(time.Second))
		svc := newService(tk)
		coretest.MustStart(t, svc)
		advance(time.Hour)
		if got := tk.Runs(); got != 3 {
			t.Fatalf("Runs: got %d, want 3", got)
		}
		if got := tk.Failures(); got != 0 {
			t.Fatalf("Failures: got %d, want 0", got)
		}
		if v, ok := tk.Last(); v != 2 || !ok {
			t.Fatalf("Last: got %d, %v, want 2, true (a result with ErrDone is discarded)", v, ok)
		}
		if got := svc.State(); got != core.StateRunning {
			t.Fatalf("state: got %v, want running", got)
		}
		coretest.MustStop(t, svc)
	})
}

func TestErrDoneEndsOnlyItsWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		tk := task.Func("pair", func(context.Context) error {
			if n.Add(1) == 1 {
				return task.ErrDone
			}
			return nil
		}, task.Every(10*time.Second), task.Workers(2))
		svc := newService(tk)
		coretest.MustStart(t, svc)
		advance(25 * time.Second)
		// t=0: both workers run, one ends; t=10s, 20s: the other one.
		if got := tk.Runs(); got != 4 {
			t.Fatalf("Runs: got %d, want 4", got)
		}
		coretest.MustStop(t, svc)
	})
}

func TestOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tk := task.New("init", func(context.Context) (string, error) { return "ready", nil }, task.Once())
		svc := newService(tk)
		coretest.MustStart(t, svc)
		advance(time.Hour)
		if got := tk.Runs(); got != 1 {
			t.Fatalf("Runs: got %d, want 1", got)
		}
		if v, ok := tk.Last(); v != "ready" || !ok {
			t.Fatalf("Last: got %q, %v, want ready, true", v, ok)
		}
		if got := svc.State(); got != core.StateRunning {
			t.Fatalf("state: got %v, want running", got)
		}
		coretest.MustStop(t, svc)
	})
}

func TestOnceRetriesUntilItSucceeds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStamps()
		var n atomic.Int32
		tk := task.Func("init", func(context.Context) error {
			st.add()
			if n.Add(1) < 3 {
				return errBoom
			}
			return nil
		}, task.Once(), task.Workers(1),
			task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(time.Second) }))
		svc := newService(tk)
		coretest.MustStart(t, svc)
		advance(time.Hour)
		wantStamps(t, st, secs(0, 1, 2)...)
		if got := tk.Failures(); got != 2 {
			t.Fatalf("Failures: got %d, want 2", got)
		}
		coretest.MustStop(t, svc)
	})
}

func TestOnceWithWorkersRunsOncePerWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tk := task.Func("init", func(context.Context) error { return nil }, task.Once(), task.Workers(3))
		svc := newService(tk)
		coretest.MustStart(t, svc)
		advance(time.Hour)
		if got := tk.Runs(); got != 3 {
			t.Fatalf("Runs: got %d, want 3", got)
		}
		coretest.MustStop(t, svc)
	})
}

func TestWorkersRunInParallel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		inside, most := 0, 0
		release := make(chan struct{})
		var policies atomic.Int32
		tk := task.Func("parallel", func(ctx context.Context) error {
			mu.Lock()
			inside++
			most = max(most, inside)
			mu.Unlock()
			select {
			case <-release:
			case <-ctx.Done():
			}
			mu.Lock()
			inside--
			mu.Unlock()
			return nil
		}, task.Workers(4), task.Every(time.Hour),
			task.Retry(func() backoff.BackOff {
				policies.Add(1)
				return &sequence{}
			}))
		svc := newService(tk)
		coretest.MustStart(t, svc)
		synctest.Wait()
		mu.Lock()
		got := inside
		mu.Unlock()
		if got != 4 {
			t.Fatalf("runs in progress at once: got %d, want 4", got)
		}
		if got := policies.Load(); got != 4 {
			t.Fatalf("Retry policies made: got %d, want 4, one per worker", got)
		}
		close(release)
		synctest.Wait()
		if got := tk.Runs(); got != 4 {
			t.Fatalf("Runs: got %d, want 4", got)
		}
		coretest.MustStop(t, svc)
		if most != 4 {
			t.Fatalf("most runs at once: got %d, want 4", most)
		}
	})
}

func TestStopDuringSleepReturnsAtOnce(t *testing.T) {
	cases := []struct {
		name string
		fail bool
		opts []task.Option
	}{
		{"Every", false, []task.Option{task.Every(time.Hour)}},
		{"Delay", false, []task.Option{task.Delay(time.Hour)}},
		{"Retry", true, []task.Option{task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(time.Hour) })}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tk := task.Func("sleepy", func(context.Context) error {
					if tc.fail {
						return errBoom
					}
					return nil
				}, tc.opts...)
				svc := newService(tk)
				coretest.MustStart(t, svc)
				advance(time.Minute)
				t0 := time.Now()
				coretest.MustStop(t, svc)
				if d := time.Since(t0); d != 0 {
					t.Fatalf("Stop took %v of fake time, want 0", d)
				}
				if err := svc.Err(); err != nil || svc.State() != core.StateTerminated {
					t.Fatalf("after Stop: got %v, %v, want terminated, nil", svc.State(), err)
				}
			})
		})
	}
}

func TestStopDuringRunCancelsAndWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sawCancel atomic.Bool
		var cleaned atomic.Bool
		tk := task.Func("busy", func(ctx context.Context) error {
			<-ctx.Done()
			sawCancel.Store(errors.Is(ctx.Err(), context.Canceled))
			<-time.After(2 * time.Second) // cleanup
			cleaned.Store(true)
			return ctx.Err()
		})
		svc := newService(tk)
		coretest.MustStart(t, svc)
		advance(time.Minute)
		t0 := time.Now()
		coretest.MustStop(t, svc)
		if d := time.Since(t0); d != 2*time.Second {
			t.Fatalf("Stop returned after %v, want 2s: it waits for the run", d)
		}
		if !sawCancel.Load() || !cleaned.Load() {
			t.Fatalf("run: saw cancel %v, cleaned up %v; want both", sawCancel.Load(), cleaned.Load())
		}
		if got := tk.Failures(); got != 0 {
			t.Fatalf("Failures: got %d, want 0: a run cut short by Stop is no failure", got)
		}
		if got := tk.Runs(); got != 1 {
			t.Fatalf("Runs: got %d, want 1", got)
		}
		if err := svc.Err(); err != nil || svc.State() != core.StateTerminated {
			t.Fatalf("after Stop: got %v, %v, want terminated, nil", svc.State(), err)
		}
	})
}

func TestStopTimeoutNamesTheWorkers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		tk := task.Func("stubborn", func(context.Context) error {
			<-release // ignores its context
			return nil
		}, task.Workers(2))
		svc := newService(core.StopTimeout(time.Second), tk)
		coretest.MustStart(t, svc)
		synctest.Wait()
		err := svc.Stop(context.Background())
		var ste *core.StopTimeoutError
		if !errors.As(err, &ste) {
			t.Fatalf("Stop: got %v, want a *core.StopTimeoutError", err)
		}
		slices.Sort(ste.Units)
		if want := []string{"task stubborn#1", "task stubborn#2"}; !slices.Equal(ste.Units, want) {
			t.Fatalf("units still running: got %q, want %q", ste.Units, want)
		}
		close(release)
		synctest.Wait()
	})
}

func TestPanicFailsTheServiceWithStack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tk := task.Func("crash", func(context.Context) error { panic("kaboom") }, afterStart)
		svc := newService(tk)
		coretest.MustStart(t, svc)
		waitFailed(t, svc)
		var te *core.TaskError
		if !errors.As(svc.Err(), &te) || te.Service != "svc" || te.Task != "crash" || te.Worker != 1 {
			t.Fatalf("Err: got %#v, want a *core.TaskError for svc/crash worker 1", svc.Err())
		}
		var pe *core.PanicError
		if !errors.As(svc.Err(), &pe) || pe.Value != "kaboom" {
			t.Fatalf("Err: got %v, want a *core.PanicError with the value kaboom", svc.Err())
		}
		if !bytes.Contains(pe.Stack, []byte("TestPanicFailsTheServiceWithStack")) {
			t.Fatalf("stack does not show the panicking function:\n%s", pe.Stack)
		}
		if got := tk.Failures(); got != 1 {
			t.Fatalf("Failures: got %d, want 1", got)
		}
	})
}

func TestPanicIsRetriedLikeAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		tk := task.Func("crash", func(context.Context) error {
			if n.Add(1) == 1 {
				panic(errBoom)
			}
			return nil
		}, task.Once(), task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(time.Second) }))
		svc := newService(tk)
		coretest.MustStart(t, svc)
		advance(time.Minute)
		if r, f := tk.Runs(), tk.Failures(); r != 2 || f != 1 {
			t.Fatalf("Runs, Failures: got %d, %d, want 2, 1", r, f)
		}
		if got := svc.State(); got != core.StateRunning {
			t.Fatalf("state: got %v, want running", got)
		}
		coretest.MustStop(t, svc)
	})
}

func TestPanicWithErrDoneIsStillAFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		svc := newService(task.Func("crash", func(context.Context) error { panic(task.ErrDone) }, afterStart))
		coretest.MustStart(t, svc)
		waitFailed(t, svc)
		var pe *core.PanicError
		if !errors.As(svc.Err(), &pe) {
			t.Fatalf("Err: got %v, want a *core.PanicError", svc.Err())
		}
	})
}

// errFlush is a run's own error, returned after the stop cancelled it: not
// a context error.
var errFlush = errors.New("flush: connection reset")

// A run that ignores the stop's cancellation and then fails with an error
// of its own (not a context error) has failed: when the failure is the
// service's (no Retry, backoff.Stop, backoff.Permanent), it is the stop's
// error, returned by Stop, as a panic at the same point is.
func TestRunErrorAfterStopIsAStopError(t *testing.T) {
	cases := []struct {
		name string
		fn   func(context.Context) error
		opts []task.Option
	}{
		{"own error", func(ctx context.Context) error { <-ctx.Done(); return errFlush }, nil},
		{"own error wrapping DeadlineExceeded", func(ctx context.Context) error {
			<-ctx.Done()
			return fmt.Errorf("%w: %w", errFlush, context.DeadlineExceeded)
		}, nil},
		{"panic", func(ctx context.Context) error { <-ctx.Done(); panic(errFlush) }, nil},
		{"permanent error, with Retry", func(ctx context.Context) error {
			<-ctx.Done()
			return backoff.Permanent(errFlush)
		}, []task.Option{task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(time.Second) })}},
		{"own error, with Retry that stops", func(ctx context.Context) error { <-ctx.Done(); return errFlush },
			[]task.Option{task.Retry(func() backoff.BackOff { return &backoff.StopBackOff{} })}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tk := task.Func("flusher", tc.fn, tc.opts...)
				svc := newService(tk)
				coretest.MustStart(t, svc)
				synctest.Wait()
				err := svc.Stop(context.Background())
				wantTaskError(t, err, "flusher", errFlush)
				if f := tk.Failures(); f != 1 {
					t.Fatalf("Failures: got %d, want 1", f)
				}
				if got := svc.State(); got != core.StateTerminated {
					t.Fatalf("state: got %v, want terminated: the failure is the stop's error", got)
				}
				if e := svc.Err(); e != nil {
					t.Fatalf("Err: got %v, want nil: the failure is the stop's error", e)
				}
				if again := svc.Stop(context.Background()); !errors.Is(again, errFlush) {
					t.Fatalf("second Stop: got %v, want the same error", again)
				}
			})
		})
	}
}

// A run that fails during the stop, with a Retry policy that would have
// retried it, is not retried (the service stops) and is no error of the
// service's, as it would not be a moment earlier: it is counted and logged.
func TestRunErrorAfterStopWithRetryIsLogged(t *testing.T) {
	for _, panics := range []bool{false, true} {
		t.Run(fmt.Sprintf("panic=%v", panics), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				logs := &capture{}
				tk := task.Func("flusher", func(ctx context.Context) error {
					<-ctx.Done()
					if panics {
						panic(errFlush)
					}
					return errFlush
				}, task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(time.Second) }))
				svc := core.NewService(core.Name("svc"), core.Logger(slog.New(logs)), tk)
				coretest.MustStart(t, svc)
				synctest.Wait()
				coretest.MustStop(t, svc)
				if f := tk.Failures(); f != 1 {
					t.Fatalf("Failures: got %d, want 1", f)
				}
				r, ok := logs.find("task run failed while the service stops; not retried")
				if !ok || r.level != slog.LevelWarn || !strings.Contains(r.attrs["error"], errFlush.Error()) {
					t.Fatalf("log: got %+v, %v, want a warning with the run's error", r, ok)
				}
			})
		})
	}
}

// Only an error matching context.Canceled (or the context's cause) is an
// interruption by the stop: no failure, no error.
func TestRunInterruptedByStopIsNoFailure(t *testing.T) {
	cases := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"context.Canceled, wrapped", func(ctx context.Context) error {
			<-ctx.Done()
			return fmt.Errorf("query: %w", ctx.Err())
		}},
		{"the context's cause, joined with an error", func(ctx context.Context) error {
			<-ctx.Done()
			return errors.Join(errFlush, context.Cause(ctx))
		}},
		{"ErrDone", func(ctx context.Context) error { <-ctx.Done(); return task.ErrDone }},
		{"nil", func(ctx context.Context) error { <-ctx.Done(); return nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tk := task.Func("flusher", tc.fn)
				svc := newService(tk)
				coretest.MustStart(t, svc)
				synctest.Wait()
				coretest.MustStop(t, svc)
				if f := tk.Failures(); f != 0 {
					t.Fatalf("Failures: got %d, want 0", f)
				}
				if got := svc.State(); got != core.StateTerminated {
					t.Fatalf("state: got %v, want terminated", got)
				}
			})
		})
	}
}

// A Schedule policy's delay is >= 0 or backoff.Stop: any other negative
// delay is invalid, and fails the service with a *core.TaskError naming the
// policy (it would run the task back to back).
func TestScheduleNegativeDelayFailsTheService(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		tk := task.Func("spin", func(ctx context.Context) error {
			if calls.Add(1) <= 10 {
				return nil
			}
			<-ctx.Done()
			return ctx.Err()
		}, afterStart, task.Schedule(func() backoff.BackOff { return &sequence{delays: []time.Duration{-2 * time.Second}} }))
		svc := newService(tk)
		coretest.MustStart(t, svc)
		waitFailed(t, svc)
		var te *core.TaskError
		if !errors.As(svc.Err(), &te) || te.Task != "spin" {
			t.Fatalf("Err: got %v, want a *core.TaskError for task spin", svc.Err())
		}
		if want := "task.Schedule policy: NextBackOff returned -2s, want >= 0 or backoff.Stop"; !strings.Contains(svc.Err().Error(), want) {
			t.Fatalf("Err: got %q, want it to contain %q", svc.Err(), want)
		}
		if got := calls.Load(); got != 1 {
			t.Fatalf("runs: got %d, want 1", got)
		}
	})
}

// A failed run is counted in Runs no later than in Failures, so
// Failures() <= Runs() at every instant, even while a slow log handler holds
// the worker between the two (task.go: Runs counts "how many runs have
// ended, whatever their outcome", Failures "how many runs have failed").
func TestFailuresNeverAheadOfRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &blockingHandler{msg: "task run failed; retrying", release: make(chan struct{})}
		tk := task.Func("flaky", func(context.Context) error { return errBoom }, afterStart, task.Once(),
			task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(time.Hour) }))
		svc := core.NewService(core.Name("svc"), core.Logger(slog.New(logs)), core.MonitorInterval(time.Hour), tk)
		coretest.MustStart(t, svc)
		advance(time.Second) // the first run failed; its worker is logging the retry
		r, f := tk.Runs(), tk.Failures()
		close(logs.release)
		coretest.MustStop(t, svc)
		if f > r {
			t.Fatalf("Runs, Failures: got %d, %d: more failed runs than runs (Runs-Failures = %d)", r, f, r-f)
		}
	})
}

// A run that times out but returns an error of its own (not wrapping
// ctx.Err(), as many clients do) is reported wrapping
// context.DeadlineExceeded and saying the run timed out (options.go Timeout: "A run that then returns an
// error has failed (the error wraps context.DeadlineExceeded)").
func TestTimedOutRunWrapsDeadlineExceeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tk := task.Func("slow", func(ctx context.Context) error {
			<-ctx.Done()
			return errBoom // the client's own error, not ctx.Err()
		}, task.Timeout(2*time.Second))
		svc := newService(tk)
		coretest.MustStart(t, svc)
		waitFailed(t, svc)
		err := svc.Err()
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 2s") {
			t.Fatalf("Err: got %q, want it to wrap context.DeadlineExceeded and say the run timed out after 2s", err)
		}
	})
}

// A run that ignores its context and returns success at the instant its
// Timeout fires is a success, not a timeout.
func TestTimeoutRacingSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tk := task.New("edge", func(context.Context) (int, error) {
			<-time.After(2 * time.Second)
			return 7, nil
		}, task.Timeout(2*time.Second), task.Every(time.Hour))
		svc := newService(tk)
		coretest.MustStart(t, svc)
		advance(time.Minute)
		if v, ok := tk.Last(); v != 7 || !ok || tk.Failures() != 0 || svc.State() != core.StateRunning {
			t.Fatalf("Last %d %v, Failures %d, state %v: want 7, true, 0, running",
				v, ok, tk.Failures(), svc.State())
		}
		coretest.MustStop(t, svc)
	})
}
