package task_test

// Tests from a concurrency review of package task (at 58d7235; file:line
// references are to that commit). Those whose comment starts "Regression"
// failed before the fix of the bug it describes; the "coverage:" ones
// pinned behaviour that was already right.

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/task"
)

// Regression: the Retry policy's clock starts when the policy is made (Launch) or
// reset (right after each success, task/loop.go:181-182), not when a
// failure streak begins. backoff.ExponentialBackOff (the policy DESIGN.md's
// own example uses) measures MaxElapsedTime (15 min by default) from its
// last Reset, so the idle wait between runs (Every, Delay) and the
// duration of the failed run itself eat the retry budget: with Every(1h),
// or Delay(20m), the first failure gets backoff.Stop at once and fails the
// service, without a single retry. backoff.Retry, by contrast, resets the
// policy before the first attempt of an operation.
// Contract (DESIGN.md, task): "Retry(func() backoff.BackOff) (after a
// failed run wait NextBackOff() and run again; Reset() after a success)".
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
				mustStart(t, svc)
				advance(tc.wait)
				if got := svc.State(); got != core.StateRunning {
					t.Fatalf("state: got %v (Err %v), want running: the first failure after %v idle "+
						"was never retried", got, svc.Err(), tc.wait)
				}
				if f := tk.Failures(); f != 1 {
					t.Fatalf("Failures: got %d, want 1", f)
				}
				mustStop(t, svc)
			})
		})
	}
}

// Regression: Workers has no upper bound (task/options.go:158-161) and Launch
// allocates a slice of n workers up front (task/task.go:230). Workers(MaxInt)
// makes that make() panic: Start fails with "panic: runtime error:
// makeslice: len out of range", not an ErrInvalidOption naming the option.
// A smaller n that still passes make's length check is worse: 1<<44
// workers need a 128 TiB slice, more than a 47-bit address space holds, so
// the runtime throws "fatal error: runtime: out of memory", which no
// recover catches ("too many address space collisions for -race mode"
// under -race), and the whole process dies in Start (shown in a child
// process; no memory is actually committed, whatever the overcommit policy).
// Contract (DESIGN.md, core): "Invalid values: NewService returns the error
// at Start ... never a panic"; issue #3: bad input gives "clear errors from
// Start naming the task".
func TestHugeWorkersIsInvalid(t *testing.T) {
	for _, n := range []int{task.MaxWorkers + 1, 1 << 44, math.MaxInt} {
		svc := newService(task.Func("huge", func(context.Context) error { return nil }, task.Workers(n)))
		wantInvalid(t, svc.Start(t.Context()), "task huge", "task.Workers")
	}
}

// Regression: a failed run is counted in Failures before it is counted in Runs:
// failures.Add (task/loop.go:214) comes before the Retry policy is asked
// for its delay and the failure is logged, and runs.Add only after
// (task/loop.go:232). Meanwhile Failures() > Runs(), so a probe computing
// the successful runs as Runs()-Failures() gets an underflowed uint64.
// A slow log handler (or policy) makes the window as long as it likes.
// Contract (task.go doc): Runs counts "how many runs have ended, whatever
// their outcome", Failures "how many runs have failed": a failed run is a
// run, so Failures() <= Runs() should hold at every instant.
func TestFailuresNeverAheadOfRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &blockingHandler{msg: "task run failed; retrying", release: make(chan struct{})}
		tk := task.Func("flaky", func(context.Context) error { return errBoom }, afterStart, task.Once(),
			task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(time.Hour) }))
		svc := core.NewService(core.Name("svc"), core.Logger(slog.New(logs)), core.MonitorInterval(time.Hour), tk)
		mustStart(t, svc)
		advance(time.Second) // the first run failed; its worker is logging the retry
		r, f := tk.Runs(), tk.Failures()
		close(logs.release)
		mustStop(t, svc)
		if f > r {
			t.Fatalf("Runs, Failures: got %d, %d: more failed runs than runs (Runs-Failures = %d)", r, f, r-f)
		}
	})
}

// Regression: the Retry and Schedule policies are user code called without a
// recover (task/loop.go:182, 188, 217). If one panics, the panic unwinds
// out of runOnce: the run's span is never ended (so never exported), the
// run is not counted in Runs, and the run's own error is lost: the service
// fails with core's generic "task p#1: panic: ..." instead of a
// *core.TaskError wrapping the run's failure.
// Contract (DESIGN.md, task/otelx): "A panic is recovered into
// *core.PanicError and handled like an error"; "task <svc>/<task> for every
// run"; backoff.Stop/failures reach the service "as *core.TaskError";
// errors are never lost.
func TestPanickingPolicyFailsTheRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr, tp := newRecorder(t)
		tk := task.Func("p", func(context.Context) error { return errBoom }, afterStart,
			task.Retry(func() backoff.BackOff { return panickyPolicy{} }))
		svc := newService(core.TracerProvider(tp), tk)
		mustStart(t, svc)
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

// Regression: a run that times out but returns an error of its own (not wrapping
// ctx.Err(), as many clients do: "request failed", or fmt.Errorf with %v)
// is reported as that error alone: the TaskError neither wraps
// context.DeadlineExceeded nor says the run timed out, because the wrapping
// at task/loop.go:210-211 requires errors.Is(err, context.DeadlineExceeded)
// although the worker knows the deadline fired (timedOut, loop.go:172).
// Contract (task/options.go:Timeout): "A run that then returns an error has
// failed (the error wraps context.DeadlineExceeded)"; task/doc.go: "A run
// that timed out wraps context.DeadlineExceeded."
func TestTimedOutRunWrapsDeadlineExceeded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tk := task.Func("slow", func(ctx context.Context) error {
			<-ctx.Done()
			return errBoom // the client's own error, not ctx.Err()
		}, task.Timeout(2*time.Second))
		svc := newService(tk)
		mustStart(t, svc)
		waitFailed(t, svc)
		err := svc.Err()
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 2s") {
			t.Fatalf("Err: got %q, want it to wrap context.DeadlineExceeded and say the run timed out after 2s", err)
		}
	})
}

// Regression (design gap): a result consumer that waits for room, the very pattern
// of ExampleTask_OnResult (a send in a select with ctx.Done()), blocks its
// worker forever once the reader is gone, and nothing says so: with no
// Timeout the run's context only ends at Stop, the worker logs nothing,
// Runs stays frozen, the service stays Running and healthy. Consumers are
// called inline with no watchdog (task/loop.go:266-267); OnResult's doc only
// promises a signal at Stop (a StopTimeoutError for consumers that ignore
// ctx).
// Contract (issue #3): a typed consumer "that never blocks the loop
// silently forever nor drops silently".
func TestStuckConsumerIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &capture{}
		var n atomic.Int32
		tk := task.New("gen", func(context.Context) (int32, error) { return n.Add(1), nil }, task.Every(time.Second))
		ch := make(chan int32) // its reader is gone
		tk.OnResult(func(ctx context.Context, v int32) error {
			select {
			case ch <- v:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		svc := core.NewService(core.Name("svc"), core.Logger(slog.New(logs)), core.MonitorInterval(time.Hour), tk)
		mustStart(t, svc)
		advance(24 * time.Hour)
		var signalled bool
		for _, r := range logs.get() {
			if r.level >= slog.LevelWarn && r.attrs["task"] == "gen" {
				signalled = true
			}
		}
		state, healthy, runs := svc.State(), svc.Healthcheck(t.Context()), tk.Runs()
		mustStop(t, svc)
		if !signalled && state == core.StateRunning && healthy == nil {
			t.Fatalf("after 24h with the worker stuck delivering run 1 (Runs %d): no warning, service "+
				"Running and healthy; want the stuck delivery reported", runs)
		}
	})
}

// coverage: a provider installed globally after Start (otel.SetTracerProvider)
// is picked up by the SpanGate: runs start producing spans, with the
// attributes. Run in a child process, because the global provider cannot
// be uninstalled and the allocation test and benchmark of this package need
// it unset.
func TestSpanGatePicksUpALateProvider(t *testing.T) {
	if os.Getenv("REVIEW_CHILD") == "late-provider" {
		synctest.Test(t, func(t *testing.T) {
			tk := task.Func("tick", func(context.Context) error { return nil }, task.Every(time.Second))
			svc := newService(tk)
			mustStart(t, svc)
			advance(2500 * time.Millisecond) // runs 1-3, untraced
			sr := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
			otel.SetTracerProvider(tp)
			advance(2 * time.Second) // runs 4 and 5, traced
			mustStop(t, svc)
			_ = tp.Shutdown(context.Background())
			runs := spansNamed(sr, "task svc/tick")
			if len(runs) != 2 {
				t.Fatalf("task spans after the provider was installed: got %d, want 2", len(runs))
			}
			for i, s := range runs {
				a := attrs(s)
				if a["coreservice.run"].AsInt64() != int64(4+i) || a["coreservice.task"].AsString() != "tick" ||
					a["coreservice.next_delay"].AsFloat64() != 1 || s.Parent().IsValid() {
					t.Errorf("span %d: attributes %v, parent %v", i, s.Attributes(), s.Parent())
				}
			}
		})
		return
	}
	if out, err := runChild(t, "TestSpanGatePicksUpALateProvider", "late-provider"); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

// coverage: next_delay on a run's span is the jittered wait the worker then
// really sleeps, for Every and for Retry waits.
func TestNextDelayIsTheJitteredWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sr, tp := newRecorder(t)
		st := newStamps()
		var n atomic.Int32
		tk := task.Func("j", func(context.Context) error {
			st.add()
			if n.Add(1)%3 == 0 {
				return errBoom
			}
			return nil
		}, task.Every(10*time.Second), task.Jitter(0.5),
			task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(4 * time.Second) }))
		svc := newService(core.TracerProvider(tp), tk)
		mustStart(t, svc)
		advance(5 * time.Minute)
		mustStop(t, svc)
		at := st.get()
		runs := spansNamed(sr, "task svc/j")
		if len(runs) < 20 || len(runs) != len(at) {
			t.Fatalf("got %d spans for %d runs, want one per run, at least 20", len(runs), len(at))
		}
		for i := range len(at) - 1 {
			want := (at[i+1] - at[i]).Seconds()
			if got := attrs(runs[i])["coreservice.next_delay"].AsFloat64(); got != want {
				t.Fatalf("run %d: next_delay %v, want the wait that followed, %v", i+1, got, want)
			}
		}
	})
}

// coverage: Once + Retry + ErrDone: failures are retried, then ErrDone ends
// the worker cleanly; the service keeps running and the run is no failure.
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
		mustStart(t, svc)
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
		mustStop(t, svc)
	})
}

// coverage: a run that ignores its context and returns success at the
// instant its Timeout fires is a success, not a timeout.
func TestTimeoutRacingSuccess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tk := task.New("edge", func(context.Context) (int, error) {
			<-time.After(2 * time.Second)
			return 7, nil
		}, task.Timeout(2*time.Second), task.Every(time.Hour))
		svc := newService(tk)
		mustStart(t, svc)
		advance(time.Minute)
		if v, ok := tk.Last(); v != 7 || !ok || tk.Failures() != 0 || svc.State() != core.StateRunning {
			t.Fatalf("Last %d %v, Failures %d, state %v: want 7, true, 0, running",
				v, ok, tk.Failures(), svc.State())
		}
		mustStop(t, svc)
	})
}

// coverage: counters, Last and consumers added from other goroutines while
// several workers run (for the race detector): every run is counted once,
// and a consumer added before Start gets every result.
func TestCountersAndConsumersUnderConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const workers, perWorker = 8, 50
		var calls atomic.Int64
		tk := task.New("busy", func(context.Context) (int64, error) {
			v := calls.Add(1)
			if v%7 == 0 {
				return 0, errBoom
			}
			return v, nil
		}, task.Workers(workers), task.Every(time.Second),
			task.Retry(func() backoff.BackOff { return &backoff.ZeroBackOff{} }))
		var delivered atomic.Int64
		tk.OnResult(func(context.Context, int64) error { delivered.Add(1); return nil })
		svc := newService(tk)
		mustStart(t, svc)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 20 {
					tk.OnResult(func(context.Context, int64) error { return nil })
					_, _ = tk.Last()
					_, _ = tk.Runs(), tk.Failures()
					<-time.After(time.Second)
				}
			})
		}
		advance(perWorker*time.Second - time.Millisecond)
		wg.Wait()
		mustStop(t, svc)
		r, f := tk.Runs(), tk.Failures()
		if r != uint64(calls.Load()) || int64(r-f) != delivered.Load() {
			t.Fatalf("Runs %d, Failures %d, calls %d, delivered %d: want Runs = calls and Runs-Failures = delivered",
				r, f, calls.Load(), delivered.Load())
		}
		if r-f != workers*perWorker {
			t.Fatalf("successful runs: got %d, want %d", r-f, workers*perWorker)
		}
	})
}

// panickyPolicy is a backoff.BackOff with a bug.
type panickyPolicy struct{}

func (panickyPolicy) NextBackOff() time.Duration { panic("policy bug") }
func (panickyPolicy) Reset()                     {}

// blockingHandler is a slog.Handler that blocks every record whose message
// is msg until release is closed: a slow log sink.
type blockingHandler struct {
	msg     string
	release chan struct{}
}

func (h *blockingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *blockingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		<-h.release
	}
	return nil
}
func (h *blockingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *blockingHandler) WithGroup(string) slog.Handler      { return h }

// runChild runs the test named name of this binary in a child process with
// REVIEW_CHILD=mode, and returns its output.
func runChild(t *testing.T, name, mode string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+name+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "REVIEW_CHILD="+mode)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
