package task_test

import (
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

// results collects what a consumer gets.
type results[T any] struct {
	mu sync.Mutex
	vs []T
}

func (r *results[T]) add(v T) {
	r.mu.Lock()
	r.vs = append(r.vs, v)
	r.mu.Unlock()
}

func (r *results[T]) get() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.vs)
}

func TestLastRunsFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		tk := task.New("count", func(context.Context) (int32, error) {
			switch v := n.Add(1); v {
			case 2:
				return v, errBoom // a failed run's result is never kept
			case 4:
				return v, task.ErrDone
			default:
				return v, nil
			}
		}, task.Every(time.Second), task.Retry(func() backoff.BackOff { return &backoff.ZeroBackOff{} }))
		if v, ok := tk.Last(); v != 0 || ok {
			t.Fatalf("Last before any run: got %d, %v, want 0, false", v, ok)
		}
		if r, f := tk.Runs(), tk.Failures(); r != 0 || f != 0 {
			t.Fatalf("Runs, Failures before any run: got %d, %d, want 0, 0", r, f)
		}
		svc := newService(tk)
		coretest.MustStart(t, svc)
		synctest.Wait()
		if v, ok := tk.Last(); v != 1 || !ok {
			t.Fatalf("Last after run 1: got %d, %v, want 1, true", v, ok)
		}
		advance(1500 * time.Millisecond)
		// Run 2 (at 1s) failed and was retried at once; run 3 succeeded.
		if v, ok := tk.Last(); v != 3 || !ok {
			t.Fatalf("Last: got %d, %v, want 3, true", v, ok)
		}
		if r, f := tk.Runs(), tk.Failures(); r != 3 || f != 1 {
			t.Fatalf("Runs, Failures: got %d, %d, want 3, 1", r, f)
		}
		advance(time.Minute)
		if v, ok := tk.Last(); v != 3 || !ok {
			t.Fatalf("Last after ErrDone: got %d, %v, want 3, true", v, ok)
		}
		if r, f := tk.Runs(), tk.Failures(); r != 4 || f != 1 {
			t.Fatalf("Runs, Failures after ErrDone: got %d, %d, want 4, 1", r, f)
		}
		coretest.MustStop(t, svc)
	})
}

func TestFunc(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		tk := task.Func("ping", func(context.Context) error { calls.Add(1); return nil }, task.Once())
		if _, ok := tk.Last(); ok {
			t.Fatal("Last before any run: got true, want false")
		}
		svc := newService(tk)
		coretest.MustStart(t, svc)
		synctest.Wait()
		if v, ok := tk.Last(); v != (struct{}{}) || !ok {
			t.Fatalf("Last: got %v, %v, want {}, true", v, ok)
		}
		if calls.Load() != 1 || tk.Name() != "ping" {
			t.Fatalf("calls, Name: got %d, %q, want 1, ping", calls.Load(), tk.Name())
		}
		coretest.MustStop(t, svc)
	})
}

func TestOnResultGetsEveryResultInOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n int
		tk := task.New("gen", func(context.Context) (int, error) {
			if n++; n > 5 {
				return 0, task.ErrDone
			}
			return n, nil
		}, task.Every(time.Second))
		var mu sync.Mutex
		var got []string
		for _, name := range []string{"a", "b"} {
			tk.OnResult(func(_ context.Context, v int) error {
				mu.Lock()
				got = append(got, fmt.Sprint(name, v))
				mu.Unlock()
				return nil
			})
		}
		svc := newService(tk)
		coretest.MustStart(t, svc)
		advance(time.Minute)
		coretest.MustStop(t, svc)
		want := []string{"a1", "b1", "a2", "b2", "a3", "b3", "a4", "b4", "a5", "b5"}
		if !slices.Equal(got, want) {
			t.Fatalf("consumers got %q, want %q", got, want)
		}
	})
}

func TestOnResultSlowConsumerDelaysTheNextRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := newStamps()
		var n atomic.Int32
		tk := task.New("gen", func(context.Context) (int32, error) {
			st.add()
			return n.Add(1), nil
		}, task.Every(10*time.Second))
		got := &results[int32]{}
		tk.OnResult(func(ctx context.Context, v int32) error {
			select {
			case <-time.After(5 * time.Second): // slow
			case <-ctx.Done():
				return ctx.Err()
			}
			got.add(v)
			return nil
		})
		svc := newService(tk)
		coretest.MustStart(t, svc)
		advance(40 * time.Second)
		// Each run takes 5s (its consumer), then the worker waits 10s.
		wantStamps(t, st, secs(0, 15, 30)...)
		if vs := got.get(); !slices.Equal(vs, []int32{1, 2, 3}) {
			t.Fatalf("consumer got %v, want [1 2 3]", vs)
		}
		if r := tk.Runs(); r != 3 {
			t.Fatalf("Runs: got %d, want 3", r)
		}
		advance(7 * time.Second) // run 4 starts at 45s and is being delivered
		if vs := got.get(); len(vs) != 3 || tk.Runs() != 3 {
			t.Fatalf("at 47s: consumer got %v, Runs %d, want 3 results and 3 runs ended", vs, tk.Runs())
		}
		coretest.MustStop(t, svc)
		// Stop cut the 4th delivery short: the run ended, without a failure.
		if r, f := tk.Runs(), tk.Failures(); r != 4 || f != 0 {
			t.Fatalf("Runs, Failures: got %d, %d, want 4, 0", r, f)
		}
	})
}

func TestOnResultIsBoundedByTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tk := task.New("gen", func(context.Context) (string, error) { return "v", nil },
			task.Timeout(3*time.Second))
		tk.OnResult(func(ctx context.Context, _ string) error {
			<-ctx.Done() // stuck
			return ctx.Err()
		})
		svc := newService(tk)
		t0 := time.Now()
		coretest.MustStart(t, svc)
		waitFailed(t, svc)
		if d := time.Since(t0); d != 3*time.Second {
			t.Fatalf("service failed after %v, want 3s", d)
		}
		wantTaskError(t, svc.Err(), "gen", context.DeadlineExceeded)
		if !strings.Contains(svc.Err().Error(), "result consumer 1") {
			t.Fatalf("Err: got %q, want it to name the consumer", svc.Err())
		}
		if v, ok := tk.Last(); v != "v" || !ok {
			t.Fatalf("Last: got %q, %v, want v, true: the function succeeded", v, ok)
		}
		if f := tk.Failures(); f != 1 {
			t.Fatalf("Failures: got %d, want 1", f)
		}
	})
}

func TestOnResultErrorRetriesTheRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		tk := task.New("gen", func(context.Context) (int32, error) { return n.Add(1), nil },
			task.Once(), task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(time.Second) }))
		got := &results[int32]{}
		var fail atomic.Bool
		fail.Store(true)
		tk.OnResult(func(_ context.Context, v int32) error {
			got.add(v)
			if fail.Swap(false) {
				return errBoom
			}
			return nil
		})
		svc := newService(tk)
		coretest.MustStart(t, svc)
		advance(time.Minute)
		if vs := got.get(); !slices.Equal(vs, []int32{1, 2}) {
			t.Fatalf("consumer got %v, want [1 2]: the failed delivery is retried with a new run", vs)
		}
		if r, f := tk.Runs(), tk.Failures(); r != 2 || f != 1 {
			t.Fatalf("Runs, Failures: got %d, %d, want 2, 1", r, f)
		}
		coretest.MustStop(t, svc)
	})
}

func TestOnResultPanicFailsTheRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tk := task.New("gen", func(context.Context) (int, error) { return 1, nil }, afterStart)
		tk.OnResult(func(context.Context, int) error { panic("consumer bug") })
		svc := newService(tk)
		coretest.MustStart(t, svc)
		waitFailed(t, svc)
		var pe *core.PanicError
		if !errors.As(svc.Err(), &pe) || pe.Value != "consumer bug" {
			t.Fatalf("Err: got %v, want a *core.PanicError from the consumer", svc.Err())
		}
	})
}

func TestOnResultStopDuringDeliveryIsLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &capture{}
		tk := task.New("gen", func(context.Context) (int, error) { return 7, nil })
		var second atomic.Bool
		tk.OnResult(func(ctx context.Context, _ int) error {
			<-ctx.Done() // a consumer that waits for room
			return ctx.Err()
		})
		tk.OnResult(func(context.Context, int) error { second.Store(true); return nil })
		svc := core.NewService(core.Name("svc"), core.Logger(slog.New(logs)), tk)
		coretest.MustStart(t, svc)
		synctest.Wait()
		coretest.MustStop(t, svc)
		if err := svc.Err(); err != nil {
			t.Fatalf("Err: got %v, want nil: a delivery cut short by Stop is no failure", err)
		}
		if f := tk.Failures(); f != 0 {
			t.Fatalf("Failures: got %d, want 0", f)
		}
		if second.Load() {
			t.Fatal("the second consumer got the result after the first was cut short")
		}
		r, ok := logs.find("task result not delivered to every consumer: the service is stopping")
		if !ok || r.level != slog.LevelWarn || r.attrs["task"] != "gen" || r.attrs["run"] != "1" {
			t.Fatalf("log: got %+v, %v, want a warning naming task gen, run 1", r, ok)
		}
	})
}

func TestOnResultAddedWhileRunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		tk := task.New("gen", func(context.Context) (int32, error) { return n.Add(1), nil },
			task.Every(time.Second))
		svc := newService(tk)
		coretest.MustStart(t, svc)
		advance(2500 * time.Millisecond) // runs 1, 2, 3 at 0, 1s, 2s
		got := &results[int32]{}
		tk.OnResult(func(_ context.Context, v int32) error { got.add(v); return nil })
		advance(2 * time.Second) // runs 4, 5 at 3s, 4s
		coretest.MustStop(t, svc)
		if vs := got.get(); !slices.Equal(vs, []int32{4, 5}) {
			t.Fatalf("consumer got %v, want [4 5]", vs)
		}
	})
}

func TestOnResultNil(t *testing.T) {
	t.Run("before Start", func(t *testing.T) {
		tk := task.New("gen", func(context.Context) (int, error) { return 1, nil })
		tk.OnResult(nil)
		svc := newService(tk)
		wantInvalid(t, svc.Start(t.Context()), "task gen", "OnResult: nil consumer")
	})
	t.Run("between NewService and Start", func(t *testing.T) {
		tk := task.New("gen", func(context.Context) (int, error) { return 1, nil })
		svc := newService(tk)
		tk.OnResult(nil)
		wantInvalid(t, svc.Start(t.Context()), "task gen", "OnResult: nil consumer")
	})
	t.Run("while running", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			tk := task.New("gen", func(context.Context) (int, error) { return 1, nil }, task.Every(time.Hour))
			svc := newService(tk)
			coretest.MustStart(t, svc)
			tk.OnResult(nil)
			waitFailed(t, svc)
			if err := svc.Err(); !errors.Is(err, core.ErrInvalidOption) || !strings.Contains(err.Error(), "task gen") {
				t.Fatalf("Err: got %v, want ErrInvalidOption naming task gen", err)
			}
		})
	})
}

// ExampleTask_OnResult's pattern: a consumer in a goroutine of its own,
// behind a channel, with sends bounded by the run's context.
func TestOnResultIntoAChannel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		tk := task.New("gen", func(context.Context) (int32, error) { return n.Add(1), nil },
			task.Every(time.Second), task.Timeout(500*time.Millisecond),
			task.Retry(func() backoff.BackOff { return backoff.NewConstantBackOff(time.Second) }))
		ch := make(chan int32) // unbuffered: every send waits for the reader
		tk.OnResult(func(ctx context.Context, v int32) error {
			select {
			case ch <- v:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		svc := newService(tk)
		coretest.MustStart(t, svc)
		synctest.Wait()
		if got := <-ch; got != 1 {
			t.Fatalf("first result: got %d, want 1", got)
		}
		advance(5 * time.Second) // nobody reads: each run times out in delivery
		if f := tk.Failures(); f == 0 {
			t.Fatal("Failures: got 0, want the undelivered results counted as failed runs")
		}
		got := <-ch // the reader is back: the next delivery succeeds
		if want, _ := tk.Last(); got != want {
			t.Fatalf("result: got %d, want the latest, %d", got, want)
		}
		coretest.MustStop(t, svc)
	})
}

// Stats is one snapshot of both counters, so Runs-Failures is the number of
// runs that did not fail, even while workers count concurrently: a failure
// is never counted in one field and not in the other.
func TestStatsIsAConsistentSnapshot(t *testing.T) {
	const workers, snapshots = 8, 20000
	var oks, fails atomic.Uint64 // counted by the function, before the task counts the run
	var n atomic.Uint64
	tk := task.Func("mixed", func(context.Context) error {
		if n.Add(1)%2 == 0 {
			fails.Add(1)
			return errBoom
		}
		oks.Add(1)
		return nil
	}, task.Every(0), task.Workers(workers), task.Retry(func() backoff.BackOff { return &backoff.ZeroBackOff{} }))
	svc := newService(tk)
	coretest.MustStart(t, svc)
	var prev task.Stats
	for i := range snapshots {
		s := tk.Stats()
		if s.Failures > s.Runs {
			t.Fatalf("snapshot %d: got Runs %d, Failures %d: more failures than runs", i, s.Runs, s.Failures)
		}
		// Read after the snapshot, the function's own counts bound it.
		if ok, f := oks.Load(), fails.Load(); s.Runs-s.Failures > ok || s.Failures > f {
			t.Fatalf("snapshot %d: got %d runs that did not fail and %d failures, want at most %d and %d",
				i, s.Runs-s.Failures, s.Failures, ok, f)
		}
		if s.Runs < prev.Runs || s.Failures < prev.Failures {
			t.Fatalf("snapshot %d: got %+v after %+v: a counter went back", i, s, prev)
		}
		prev = s
	}
	coretest.MustStop(t, svc)
	s := tk.Stats()
	if s.Runs != tk.Runs() || s.Failures != tk.Failures() {
		t.Fatalf("after Stop: Stats %+v, Runs %d, Failures %d: want the same counts", s, tk.Runs(), tk.Failures())
	}
	if s.Runs != oks.Load()+fails.Load() || s.Failures != fails.Load() {
		t.Fatalf("after Stop: got %+v, want Runs %d, Failures %d", s, oks.Load()+fails.Load(), fails.Load())
	}
}

// A result consumer that waits for room (the pattern of ExampleTask_OnResult)
// and blocks its worker once the reader is gone is reported (a warning
// naming the task, or the service no longer Running and healthy), not left
// silently stuck for ever (issue #3: a typed consumer "that never blocks the
// loop silently forever nor drops silently").
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
		coretest.MustStart(t, svc)
		advance(24 * time.Hour)
		var signalled bool
		for _, r := range logs.get() {
			if r.level >= slog.LevelWarn && r.attrs["task"] == "gen" {
				signalled = true
			}
		}
		state, healthy, runs := svc.State(), svc.Healthcheck(t.Context()), tk.Runs()
		coretest.MustStop(t, svc)
		if !signalled && state == core.StateRunning && healthy == nil {
			t.Fatalf("after 24h with the worker stuck delivering run 1 (Runs %d): no warning, service "+
				"Running and healthy; want the stuck delivery reported", runs)
		}
	})
}

// Counters, Last and consumers added from other goroutines while several
// workers run (for the race detector): every run is counted once, and a
// consumer added before Start gets every result.
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
		coretest.MustStart(t, svc)
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
		coretest.MustStop(t, svc)
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
