package task_test

import (
	"context"
	"errors"
	"math"
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

// wantInvalid checks that err is a failed start caused by an invalid
// option, and that its message holds every fragment.
func wantInvalid(t *testing.T, err error, fragments ...string) {
	t.Helper()
	if !errors.Is(err, core.ErrStartup) || !errors.Is(err, core.ErrInvalidOption) {
		t.Fatalf("Start: got %v, want an error matching ErrStartup and ErrInvalidOption", err)
	}
	for _, f := range fragments {
		if !strings.Contains(err.Error(), f) {
			t.Fatalf("Start: got %q, want it to contain %q", err, f)
		}
	}
}

func TestBadInputIsReportedByStart(t *testing.T) {
	constant := func() backoff.BackOff { return backoff.NewConstantBackOff(time.Second) }
	cases := []struct {
		name string
		opts []task.Option
		fn   func(context.Context) error // default: a function that counts its calls
		want string
	}{
		{"Workers(0)", []task.Option{task.Workers(0)}, nil, "task.Workers: got 0, want 1 to 65536"},
		{"Workers(-1)", []task.Option{task.Workers(-1)}, nil, "task.Workers: got -1, want 1 to 65536"},
		{"Every(-1s)", []task.Option{task.Every(-time.Second)}, nil, "task.Every: got -1s, want >= 0"},
		{"Delay(-1s)", []task.Option{task.Delay(-time.Second)}, nil, "task.Delay: got -1s, want >= 0"},
		{"Timeout(-1s)", []task.Option{task.Timeout(-time.Second)}, nil, "task.Timeout: got -1s, want > 0"},
		{"Timeout(0)", []task.Option{task.Timeout(0)}, nil, "task.Timeout: got 0s, want > 0"},
		{"Jitter(-0.1)", []task.Option{task.Jitter(-0.1)}, nil, "task.Jitter: got -0.1, want a fraction in [0, 1]"},
		{"Jitter(1.5)", []task.Option{task.Jitter(1.5)}, nil, "task.Jitter: got 1.5, want a fraction in [0, 1]"},
		{"Jitter(NaN)", []task.Option{task.Jitter(math.NaN())}, nil, "task.Jitter: got NaN"},
		{"nil option", []task.Option{task.Every(time.Second), nil}, nil, "option 1 is nil"},
		{"nil fn", nil, func() func(context.Context) error { return nil }(), "nil function"},
		{"Retry(nil)", []task.Option{task.Retry(nil)}, nil, "task.Retry: nil policy factory"},
		{"Schedule(nil)", []task.Option{task.Schedule(nil)}, nil, "task.Schedule: nil policy factory"},
		{"Retry factory returns nil", []task.Option{task.Retry(func() backoff.BackOff { return nil })}, nil,
			"task.Retry: the policy factory returned nil"},
		{"Retry factory returns a typed nil", []task.Option{task.Retry(func() backoff.BackOff {
			return (*backoff.ExponentialBackOff)(nil)
		})}, nil, "task.Retry: the policy factory returned nil"},
		{"Schedule factory returns nil", []task.Option{task.Schedule(func() backoff.BackOff { return nil })}, nil,
			"task.Schedule: the policy factory returned nil"},
		{"Retry factory panics", []task.Option{task.Retry(func() backoff.BackOff { panic("no policy") })}, nil,
			"task.Retry: policy factory: panic: no policy"},
		{"several", []task.Option{task.Workers(0), task.Every(-1), task.Retry(constant)}, nil,
			"task.Every: got -1ns"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			fn := tc.fn
			if tc.fn == nil && tc.name != "nil fn" {
				fn = func(context.Context) error { calls.Add(1); return nil }
			}
			svc := newService(task.Func("bad", fn, tc.opts...))
			err := svc.Start(t.Context())
			wantInvalid(t, err, "task bad", tc.want)
			if got := svc.State(); got != core.StateFailed {
				t.Fatalf("state: got %v, want failed", got)
			}
			if calls.Load() != 0 {
				t.Fatal("the function ran")
			}
		})
	}
}

func TestBadInputReportsEveryError(t *testing.T) {
	svc := newService(task.Func("bad", nil, task.Workers(0), task.Every(-1)))
	wantInvalid(t, svc.Start(t.Context()), "nil function", "task.Workers", "task.Every")
}

func TestEmptyName(t *testing.T) {
	svc := newService(task.Func("", func(context.Context) error { return nil }))
	wantInvalid(t, svc.Start(t.Context()), `task "": empty task name`)
}

func TestATaskBelongsToOneService(t *testing.T) {
	tk := task.Func("solo", func(ctx context.Context) error { <-ctx.Done(); return nil })
	first := newService(tk)
	second := core.NewService(core.Name("other"), core.Logger(coretest.Quiet()), tk)
	wantInvalid(t, second.Start(t.Context()), "task solo", "already given to a service")
	coretest.MustStart(t, first)
	coretest.MustStop(t, first)

	twice := task.Func("twice", func(context.Context) error { return nil })
	wantInvalid(t, newService(twice, twice).Start(t.Context()), "task twice", "already given to a service")
}

func TestString(t *testing.T) {
	cases := []struct {
		got  interface{ String() string }
		want string
	}{
		{task.Every(time.Second), "task.Every(1s)"},
		{task.Once(), "task.Once()"},
		{task.Workers(4), "task.Workers(4)"},
		{task.Delay(time.Minute), "task.Delay(1m0s)"},
		{task.Timeout(5 * time.Second), "task.Timeout(5s)"},
		{task.Jitter(0.25), "task.Jitter(0.25)"},
		{task.Schedule(func() backoff.BackOff { return nil }), "task.Schedule(...)"},
		{task.Retry(func() backoff.BackOff { return nil }), "task.Retry(...)"},
		{task.Func("fetch", nil, task.Every(time.Second), task.Workers(4), nil),
			`task.New("fetch", task.Every(1s), task.Workers(4), <nil>)`},
		{task.New("x", func(context.Context) (int, error) { return 0, nil }), `task.New("x")`},
	}
	for _, tc := range cases {
		if s := tc.got.String(); s != tc.want {
			t.Errorf("String: got %q, want %q", s, tc.want)
		}
	}
	if task.Every(time.Second) != task.Every(time.Second) || task.Once() != task.Once() ||
		task.Every(time.Second) == task.Every(time.Minute) {
		t.Error("options of equal values do not compare equal, or different ones do")
	}
	factory := func() backoff.BackOff { return nil }
	if r := task.Retry(factory); r == task.Retry(factory) || task.Schedule(factory) == r {
		t.Error("policy options do not compare by identity")
	}
}

// witness is a requirement, an OnStart hook and a task that record whether
// they ran: a service given an invalid task option must start none of them.
type witness struct {
	mu  sync.Mutex
	ran []string
}

func (w *witness) record(what string) {
	w.mu.Lock()
	w.ran = append(w.ran, what)
	w.mu.Unlock()
}

func (w *witness) get() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.ran)
}

// options returns the witness's requirement, hook and task, to be given to
// a service before the option under test.
func (w *witness) options() []core.Option {
	req := core.NewService(core.Name("db"), core.Logger(coretest.Quiet()),
		core.OnStart(func(context.Context) error { w.record("requirement db"); return nil }))
	return []core.Option{
		witnessRequirement{req},
		core.OnStart(func(context.Context) error { w.record("OnStart hook"); return nil }),
		task.Func("first", func(context.Context) error { w.record("task first"); return nil }),
	}
}

// witnessRequirement is an owned core.Requirement on a fixed service.
type witnessRequirement struct{ s core.Service }

func (r witnessRequirement) ApplyTo(c *core.Config)                        { c.AddRequirement(r) }
func (r witnessRequirement) Name() string                                  { return r.s.Name() }
func (r witnessRequirement) Resolve(context.Context) (core.Service, error) { return r.s, nil }
func (r witnessRequirement) Owned() bool                                   { return true }
func (r witnessRequirement) After() []core.Requirement                     { return nil }

func TestEveryInvalidOptionIsReportedBeforeAnythingStarts(t *testing.T) {
	var nilPolicy func() backoff.BackOff = func() backoff.BackOff { return nil }
	panicky := func() backoff.BackOff { panic("no policy") }
	constant := func() backoff.BackOff { return backoff.NewConstantBackOff(time.Second) }
	cases := []struct {
		name  string
		opts  []task.Option
		after func(*task.Task[struct{}]) // called between NewService and Start
		want  string
	}{
		{"Retry factory returns nil", []task.Option{task.Retry(nilPolicy)}, nil,
			"task.Retry: the policy factory returned nil"},
		{"Retry factory panics", []task.Option{task.Retry(panicky)}, nil,
			"task.Retry: policy factory: panic: no policy"},
		{"Schedule factory returns nil", []task.Option{task.Schedule(nilPolicy)}, nil,
			"task.Schedule: the policy factory returned nil"},
		{"Schedule factory panics", []task.Option{task.Schedule(panicky)}, nil,
			"task.Schedule: policy factory: panic: no policy"},
		{"Schedule factory returns nil, then Every", []task.Option{task.Schedule(nilPolicy), task.Every(time.Second)}, nil,
			"task.Schedule: the policy factory returned nil"},
		{"Schedule factory returns nil, under Once", []task.Option{task.Once(), task.Schedule(nilPolicy)}, nil,
			"task.Schedule: the policy factory returned nil"},
		{"Retry factory returns nil, then another Retry", []task.Option{task.Retry(nilPolicy), task.Retry(constant)}, nil,
			"task.Retry: the policy factory returned nil"},
		{"OnResult(nil) between NewService and Start", nil, func(tk *task.Task[struct{}]) { tk.OnResult(nil) },
			"OnResult: nil consumer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				w := &witness{}
				tk := task.Func("bad", func(context.Context) error { w.record("task bad"); return nil }, tc.opts...)
				svc := newService(append(w.options(), tk)...)
				t.Cleanup(func() { _ = svc.Stop(context.Background()) }) // if Start succeeds
				if tc.after != nil {
					tc.after(tk)
				}
				wantInvalid(t, svc.Start(t.Context()), "task bad", tc.want)
				synctest.Wait()
				if ran := w.get(); len(ran) != 0 {
					t.Fatalf("before the invalid option was reported, these ran: %q; want none", ran)
				}
			})
		})
	}
}

func TestPolicyFactoriesAreCalledOncePerWorker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var scheds, retries, overridden atomic.Int32
		tk := task.Func("counted", func(context.Context) error { return nil }, task.Workers(3),
			task.Schedule(func() backoff.BackOff { overridden.Add(1); return &backoff.StopBackOff{} }),
			task.Schedule(func() backoff.BackOff { scheds.Add(1); return backoff.NewConstantBackOff(time.Second) }),
			task.Retry(func() backoff.BackOff { retries.Add(1); return &backoff.StopBackOff{} }))
		svc := newService(tk)
		coretest.MustStart(t, svc)
		synctest.Wait()
		// The validation at Start calls each factory once; the first
		// worker keeps the policies of the options that won.
		if s, r, o := scheds.Load(), retries.Load(), overridden.Load(); s != 3 || r != 3 || o != 1 {
			t.Fatalf("factory calls: got Schedule %d, Retry %d, overridden Schedule %d, want 3, 3, 1", s, r, o)
		}
		coretest.MustStop(t, svc)
	})
}

// A huge Workers value is an ErrInvalidOption from Start naming the option,
// not a makeslice panic or an out-of-memory crash of the process (DESIGN
// core: "Invalid values: NewService returns the error at Start ... never a
// panic").
func TestHugeWorkersIsInvalid(t *testing.T) {
	for _, n := range []int{task.MaxWorkers + 1, 1 << 44, math.MaxInt} {
		svc := newService(task.Func("huge", func(context.Context) error { return nil }, task.Workers(n)))
		wantInvalid(t, svc.Start(t.Context()), "task huge", "task.Workers")
	}
}
