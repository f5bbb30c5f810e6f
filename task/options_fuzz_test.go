package task_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/task"
)

// Kinds of policy factory given to Schedule or Retry by FuzzTaskOptions.
const (
	policyNone     = iota // option not given
	policyNil             // a nil factory
	policyNilValue        // a factory returning nil
	policyTypedNil        // a factory returning a typed nil
	policyPanics          // a factory that panics
	policyFixed           // a factory of a policy that always returns the fuzzed delay
	policyKinds
)

// fuzzRuns is how many calls of the task function follow the fuzzed
// pattern; later calls block until the test releases them.
const fuzzRuns = 16

// FuzzTaskOptions gives a task random option values (durations, worker
// counts, jitter, Once anywhere in the list, policy factories that are nil,
// return nil or panic, policies returning any delay) and a function that
// succeeds, fails, panics or returns ErrDone as a random pattern says. The
// service's Start must report exactly the invalid values as an invalid
// option, before the function runs; otherwise the service runs, and its
// Stop returns promptly, without a StopTimeoutError, never a panic or a
// hang; every failure is in Err or Stop's result; Stats stays consistent.
func FuzzTaskOptions(f *testing.F) {
	f.Add(int64(time.Second), int64(0), int64(0), 1, 0.0, false, uint8(0),
		uint8(policyNone), int64(0), uint8(policyNone), int64(0), false, uint32(0))
	f.Add(int64(-1), int64(-1), int64(-1), 0, math.NaN(), true, uint8(3),
		uint8(policyNil), int64(0), uint8(policyNilValue), int64(0), true, uint32(0))
	f.Add(int64(0), int64(0), int64(time.Millisecond), 4, 1.0, false, uint8(0),
		uint8(policyFixed), int64(-5*time.Second), uint8(policyNone), int64(0), false, uint32(0x55555555))
	f.Add(int64(0), int64(math.MaxInt64), int64(math.MaxInt64), task.MaxWorkers+1, 0.5, true, uint8(0),
		uint8(policyPanics), int64(0), uint8(policyFixed), int64(-2), false, uint32(0xffffffff))
	f.Fuzz(func(t *testing.T, every, delay, timeout int64, workers int, jitter float64, once bool, oncePos uint8,
		retryKind uint8, retryDelay int64, schedKind uint8, schedDelay int64, everyLast bool, pattern uint32) {
		retryKind %= policyKinds
		schedKind %= policyKinds
		synctest.Test(t, func(t *testing.T) {
			fuzzTask(t, taskInput{every, delay, timeout, workers, jitter, once, oncePos,
				retryKind, retryDelay, schedKind, schedDelay, everyLast, pattern})
		})
	})
}

type taskInput struct {
	every, delay, timeout int64
	workers               int
	jitter                float64
	once                  bool
	oncePos               uint8
	retryKind             uint8
	retryDelay            int64
	schedKind             uint8
	schedDelay            int64
	everyLast             bool // Every comes after Schedule
	pattern               uint32
}

// factory returns the factory of kind, and whether it is invalid.
func (in taskInput) factory(kind uint8, d int64) (func() backoff.BackOff, bool) {
	switch kind {
	case policyNil:
		return nil, true
	case policyNilValue:
		return func() backoff.BackOff { return nil }, true
	case policyTypedNil:
		return func() backoff.BackOff { return (*backoff.ConstantBackOff)(nil) }, true
	case policyPanics:
		return func() backoff.BackOff { panic("no policy") }, true
	default:
		return func() backoff.BackOff { return fixedPolicy(d) }, false
	}
}

func fuzzTask(t *testing.T, in taskInput) {
	// Keep the run cheap: valid worker counts above 4 are all alike, and a
	// valid Timeout under 1 ms would only make the fake clock crawl.
	workers := in.workers
	if workers >= 1 && workers <= task.MaxWorkers {
		workers = 1 + workers%4
	}
	timeout := time.Duration(in.timeout)
	if timeout > 0 {
		timeout = max(timeout, time.Millisecond)
	}
	invalid := workers < 1 || workers > task.MaxWorkers || in.every < 0 || in.delay < 0 || timeout < 0 ||
		!(in.jitter >= 0 && in.jitter <= 1)

	opts := []task.Option{task.Workers(workers), task.Delay(time.Duration(in.delay)), task.Jitter(in.jitter)}
	if timeout != 0 {
		opts = append(opts, task.Timeout(timeout))
	}
	if in.retryKind != policyNone {
		fac, bad := in.factory(in.retryKind, in.retryDelay)
		invalid = invalid || bad
		opts = append(opts, task.Retry(fac))
	}
	every := task.Every(time.Duration(in.every))
	if in.schedKind != policyNone {
		fac, bad := in.factory(in.schedKind, in.schedDelay)
		invalid = invalid || bad // even when Every replaces it
		if in.everyLast {
			opts = append(opts, task.Schedule(fac), every)
		} else {
			opts = append(opts, every, task.Schedule(fac))
		}
	} else {
		opts = append(opts, every)
	}
	if in.once {
		opts = slices.Insert(opts, int(in.oncePos)%(len(opts)+1), task.Once())
	}

	quit := make(chan struct{})
	var calls atomic.Int32
	tk := task.Func("fuzz", func(context.Context) error {
		n := calls.Add(1)
		if n > fuzzRuns {
			<-quit // ignores its context until the test releases it
			return nil
		}
		switch in.pattern >> (2 * (n - 1)) & 3 {
		case 1:
			return errBoom
		case 2:
			panic(errBoom)
		case 3:
			return task.ErrDone
		}
		return nil
	}, opts...)
	svc := newService(tk)

	err := svc.Start(t.Context())
	if invalid {
		close(quit)
		if !errors.Is(err, core.ErrInvalidOption) {
			t.Fatalf("Start with %v: got %v, want ErrInvalidOption", tk, err)
		}
		synctest.Wait()
		if n := calls.Load(); n != 0 {
			t.Fatalf("Start with %v: the function ran %d times before the invalid option was reported", tk, n)
		}
		return
	}
	if err != nil {
		// Only a first run that fails at once may fail the start.
		close(quit)
		var te *core.TaskError
		if errors.Is(err, core.ErrInvalidOption) || !errors.As(err, &te) {
			t.Fatalf("Start with %v: got %v, want nil or a *core.TaskError", tk, err)
		}
		return
	}
	advance(10 * time.Second)
	close(quit)
	t0 := time.Now()
	stopErr := svc.Stop(context.Background())
	if d := time.Since(t0); d > core.DefaultStopTimeout {
		t.Fatalf("Stop with %v: took %v, want at most %v", tk, d, core.DefaultStopTimeout)
	}
	if errors.Is(stopErr, core.ErrStopTimeout) {
		t.Fatalf("Stop with %v: got %v, want no worker left running", tk, stopErr)
	}
	for _, e := range []error{svc.Err(), stopErr} {
		var te *core.TaskError
		if e != nil && !errors.As(e, &te) {
			t.Fatalf("with %v: got %v, want nil or a *core.TaskError", tk, e)
		}
	}
	switch st := svc.State(); {
	case st == core.StateFailed && svc.Err() == nil, st != core.StateFailed && st != core.StateTerminated:
		t.Fatalf("after Stop with %v: got %v, Err %v, want terminated, or failed with an error", tk, st, svc.Err())
	}
	s := tk.Stats()
	if s.Failures > s.Runs {
		t.Fatalf("with %v: got %+v, want Failures <= Runs", tk, s)
	}
	both := errors.Join(svc.Err(), stopErr)
	badRetry := in.retryKind == policyFixed && in.retryDelay < 0 && time.Duration(in.retryDelay) != backoff.Stop
	// A failed run asks the Retry policy (a failed Schedule policy is a
	// failure too, and fails the service first).
	if badRetry && s.Failures > 0 && (both == nil || !strings.Contains(both.Error(), "policy: NextBackOff returned")) {
		t.Fatalf("with %v: %d failures with a Retry policy returning %v, got %v, want the policy's error",
			tk, s.Failures, time.Duration(in.retryDelay), both)
	}
	if both != nil && strings.Contains(both.Error(), "NextBackOff returned") && !badRetry &&
		!(in.schedKind == policyFixed && in.schedDelay < -1) {
		t.Fatalf("with %v: got %v, but no policy returned a negative delay", tk, both)
	}
}
