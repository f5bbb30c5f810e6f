package task

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cenkalti/backoff/v4"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/inline"
	"github.com/coreservice/coreservice/internal/names"
	"github.com/coreservice/coreservice/internal/values"
	"github.com/coreservice/coreservice/leader"
)

// ErrDone, returned by a task's function (alone or wrapped), ends the loop
// of the worker that ran it, cleanly: the run is not a failure, its result
// is discarded, and the service keeps running.
var ErrDone = errors.New("task done")

// Task is work a service does in a loop: one or more workers, each calling
// the task's function, waiting, and calling it again, as the task's options
// say. T is the type of the function's result; Func builds tasks with no
// result (T is struct{}).
//
// A *Task is a core.Option: pass it to core.NewService, which launches its
// workers on Start and stops them on Stop. A Task belongs to one service:
// passing it to a second one, or twice to the same one, is an invalid
// option, reported by that service's Start.
//
// The methods of Task are safe for concurrent use, also while the workers
// run.
type Task[T any] struct {
	name string
	unit string // "task <name>", its unit's name
	fn   func(context.Context) (T, error)
	opts []Option
	cfg  config
	err  error // invalid arguments or options, reported by Start

	applied   atomic.Bool
	consumers atomic.Pointer[[]func(context.Context, T) error]
	// Every ended run is counted in exactly one of these: Stats reads them
	// as one snapshot.
	passed   atomic.Uint64 // runs that did not fail
	failures atomic.Uint64

	mu      sync.Mutex
	last    T
	hasLast bool
	host    *core.Host // set by Launch
	lateErr error      // an invalid OnResult, reported by ApplyTo, Validate or Launch
	// first holds the policies made by Validate for the first worker
	// (nil where the option is unused), taken by Launch.
	first struct{ sched, retry backoff.BackOff }
}

// New returns a task named name that runs fn in the loop its options
// describe. Without options it runs like core-service's default @task: one
// worker, first run as soon as the service launches it, then again 100 ms
// after each run ends, forever; the first failure fails the service.
//
// fn gets the run's context: it carries the run's span, the Timeout's
// deadline if any, and is cancelled when the service stops. fn returns the
// run's result, or an error: ErrDone ends the worker cleanly, any other
// error is a failed run, handled by the Retry policy (by default the
// service fails with a *core.TaskError).
//
// name identifies the task in spans, logs and errors ("task fetch"); it
// should be unique within its service. An empty name, a nil fn and invalid
// options are not reported here but by the service's Start, as errors
// matching core.ErrInvalidOption that name the task.
func New[T any](name string, fn func(ctx context.Context) (T, error), opts ...Option) *Task[T] {
	cfg, err := newConfig(opts)
	var errs []error
	if name == "" {
		errs = append(errs, errors.New("empty task name"))
	}
	if fn == nil {
		errs = append(errs, errors.New("nil function"))
	}
	if err != nil {
		errs = append(errs, err)
	}
	return &Task[T]{name: name, unit: "task " + name, fn: fn, opts: slices.Clone(opts), cfg: cfg, err: errors.Join(errs...)}
}

// Func returns a task with no result: New with a function whose result is
// struct{}. Last reports whether a run has succeeded.
func Func(name string, fn func(ctx context.Context) error, opts ...Option) *Task[struct{}] {
	var f func(context.Context) (struct{}, error)
	if fn != nil {
		f = func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) }
	}
	return New(name, f, opts...)
}

// Name returns the task's name.
func (t *Task[T]) Name() string { return t.name }

// String describes the task and its options, such as
// task.New("fetch", task.Every(1s), task.Workers(4)).
func (t *Task[T]) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "task.New(%q", t.name)
	for _, o := range t.opts {
		b.WriteString(", ")
		if values.IsNil(o) {
			b.WriteString("<nil>")
		} else {
			b.WriteString(o.String())
		}
	}
	b.WriteString(")")
	return b.String()
}

// Last returns the result of the latest run whose function succeeded, and
// whether there has been one. It is set as soon as fn returns, before the
// result consumers run. Results returned with an error, even ErrDone, are
// never kept.
func (t *Task[T]) Last() (T, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last, t.hasLast
}

// Stats is a snapshot of a task's counters, taken by Task.Stats: both
// fields are read at one instant, so Failures <= Runs always holds and
// Runs-Failures is the number of runs that did not fail.
type Stats struct {
	// Runs is how many runs have ended, whatever their outcome, in all
	// workers together. A run ends once fn and the result consumers have
	// returned.
	Runs uint64
	// Failures is how many of those runs failed: fn or a result consumer
	// returned an error other than ErrDone (and other than the
	// cancellation of the service's stop), panicked, or timed out.
	// Failures that were retried count too.
	Failures uint64
}

// Stats returns the task's counters as one consistent snapshot: the values
// they had together at one instant while the workers went on counting.
// Computing Runs()-Failures() from two calls can underflow while workers
// fail concurrently; Stats().Runs-Stats().Failures cannot. It does not
// block the workers.
func (t *Task[T]) Stats() Stats {
	// Each ended run adds 1 to exactly one of passed and failures, and both
	// only grow: if failures is the same before and after passed is read,
	// it had that value at the instant passed was read.
	for {
		f := t.failures.Load()
		p := t.passed.Load()
		if t.failures.Load() == f {
			return Stats{Runs: p + f, Failures: f}
		}
	}
}

// Runs returns how many runs have ended, whatever their outcome, in all
// workers together: Stats().Runs. A run ends once fn and the result
// consumers have returned. To compare it with Failures, use one Stats
// snapshot rather than two calls.
func (t *Task[T]) Runs() uint64 { return t.Stats().Runs }

// Failures returns how many runs have failed: Stats().Failures. A run fails
// when fn or a result consumer returns an error other than ErrDone,
// panics, or times out. Failures that were retried count too. A run cut
// short by the service's stop (its error matches context.Canceled), or
// under Leader by the loss of leadership, is not a failure.
func (t *Task[T]) Failures() uint64 { return t.failures.Load() }

// OnResult adds fn to the task's result consumers: every successful result
// is handed to every consumer, in the order they were added, as it is
// produced.
//
// Consumers run in the worker that produced the result, right after the
// task's function, as part of the same run: under the run's span and within
// the run's context, so bounded by its Timeout and by the service's stop.
// Delivery applies back pressure and never drops a result silently:
//
//   - A slow consumer delays its worker's next run by exactly the time it
//     takes (the wait before the next run starts when it returns); the
//     run's span shows that time. While one delivery lasts longer than
//     SlowConsumerWarning (10 s), the worker logs a warning every 10 s, so
//     a consumer stuck for good (one waiting on a reader that is gone,
//     with no Timeout) never blocks the loop silently.
//   - A consumer that returns an error, or panics, fails the run as fn
//     would: the Retry policy runs fn again and every consumer gets the
//     new result, so each result reaches every consumer or its run fails
//     (at-least-once delivery). Without Retry the service fails.
//   - A consumer cut short by a Timeout fails the run the same way.
//   - A consumer cut short by the service's stop ends the run without a
//     failure; the consumers after it do not get that result, and the
//     worker logs a warning saying so.
//   - A consumer that ignores its context holds its worker until it
//     returns; Stop then names the worker in a *core.StopTimeoutError.
//
// A consumer may return ErrDone to end its worker, as fn can. To consume
// results in a goroutine of your own, send them on a channel in a select
// with ctx.Done(), as the example does.
//
// OnResult may be called at any time, even while the task runs: fn gets the
// results of the runs whose function returns after the call. A nil fn is
// invalid: given before the service's Start, Start reports it before it
// starts anything; once the task has been launched, the service fails with
// that error.
func (t *Task[T]) OnResult(fn func(ctx context.Context, v T) error) {
	if fn == nil {
		err := errors.New("OnResult: nil consumer")
		t.mu.Lock()
		h := t.host
		if h == nil {
			t.lateErr = errors.Join(t.lateErr, err)
		}
		t.mu.Unlock()
		if h != nil {
			h.Fail(fmt.Errorf("task %s: %w: %w", t.name, core.ErrInvalidOption, err))
		}
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var cs []func(context.Context, T) error
	if old := t.consumers.Load(); old != nil {
		cs = append(cs, *old...)
	}
	cs = append(cs, fn)
	t.consumers.Store(&cs)
}

// ApplyTo adds the task to the service's units, so that the service
// launches its workers on Start and stops them on Stop; invalid settings
// are recorded for Start to report. It implements core.Option and is meant
// to be called by core.NewService only.
func (t *Task[T]) ApplyTo(c *core.Config) {
	if t.err != nil {
		if t.name == "" {
			c.AddError(fmt.Errorf("task %q: %w", t.name, t.err))
		} else {
			c.AddError(fmt.Errorf("task %s: %w", t.name, t.err))
		}
		return
	}
	if !t.applied.CompareAndSwap(false, true) {
		c.AddError(fmt.Errorf("task %s: already given to a service; a Task belongs to one service", t.name))
		return
	}
	t.mu.Lock()
	err := t.lateErr
	t.lateErr = nil
	t.mu.Unlock()
	if err != nil {
		c.AddError(fmt.Errorf("task %s: %w", t.name, err))
		return
	}
	c.AddUnit(unit[T]{t})
}

// unit is the core.Unit of a task: it launches the workers. It is a
// core.UnitValidator: the service's Start validates it before it starts
// anything.
type unit[T any] struct{ t *Task[T] }

func (u unit[T]) Name() string { return u.t.unit }

// Validate reports what could not be checked when the task was given to
// NewService: a nil OnResult consumer added since, and the Schedule and
// Retry factories, each called once (a factory returning nil, or
// panicking, is invalid), winning or not. It keeps the policies of the
// winning options for the first worker.
func (u unit[T]) Validate() error {
	t := u.t
	t.mu.Lock()
	lateErr := t.lateErr
	t.mu.Unlock()
	var errs []error
	if lateErr != nil {
		errs = append(errs, lateErr)
	}
	var sched, retry backoff.BackOff
	for i, pf := range t.cfg.policies {
		p, err := policy(pf.option, pf.factory)
		switch {
		case err != nil:
			errs = append(errs, err)
		case i == t.cfg.retry:
			retry = p
		case i == t.cfg.schedule && t.cfg.cadence == cadenceSchedule && !t.cfg.once:
			sched = p
		}
	}
	if t.cfg.leader != nil {
		e := t.cfg.leader.e
		if err := leader.Check(e); err != nil {
			errs = append(errs, fmt.Errorf("task.Leader: %w", err))
		}
		// The task's role is the service's status "leader <task>".
		if err := names.Check(t.statusName()); err != nil {
			errs = append(errs, fmt.Errorf("task.Leader: the task's name cannot name a status: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	t.mu.Lock()
	t.first.sched, t.first.retry = sched, retry
	t.mu.Unlock()
	return nil
}

func (u unit[T]) Launch(_ context.Context, h *core.Host) error {
	t := u.t
	t.mu.Lock()
	err := t.lateErr
	t.host = h
	first := t.first
	t.first.sched, t.first.retry = nil, nil
	t.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: %w", core.ErrInvalidOption, err)
	}
	if t.cfg.leader != nil {
		return t.launchLeader(h, first.sched, first.retry)
	}
	if t.cfg.workers == 1 {
		w, err := newWorker(t, h, 1, first.sched, first.retry)
		if err != nil {
			return fmt.Errorf("%w: %w", core.ErrInvalidOption, err)
		}
		h.Go(w.goName, w.loop)
		return nil
	}
	// Every worker is made before any runs: a factory that fails launches
	// none.
	ws := make([]*worker[T], t.cfg.workers)
	for i := range ws {
		var w *worker[T]
		if i == 0 {
			w, err = newWorker(t, h, i+1, first.sched, first.retry)
		} else {
			w, err = newWorker(t, h, i+1, nil, nil)
		}
		if err != nil {
			return fmt.Errorf("%w: %w", core.ErrInvalidOption, err)
		}
		ws[i] = w
	}
	for _, w := range ws {
		h.Go(w.goName, w.loop)
	}
	return nil
}

// set records a successful result.
func (t *Task[T]) set(v T) {
	t.mu.Lock()
	t.last, t.hasLast = v, true
	t.mu.Unlock()
}

// LaunchInline implements inline.Launcher: with one worker, Launch uses the
// policies Validate made and calls no user code, so the service calls it on
// its own goroutine. More workers call the policy factories in Launch.
func (u unit[T]) LaunchInline(inline.Token) bool { return u.t.cfg.workers == 1 }

// ValidateInline implements inline.Launcher: Validate calls the policy
// factories, user code, when the task has policy options.
// Under Leader it does too, when the elector is a leader.Validator.
func (u unit[T]) ValidateInline(inline.Token) bool {
	if l := u.t.cfg.leader; l != nil {
		if _, ok := l.e.(leader.Validator); ok {
			return false
		}
	}
	return len(u.t.cfg.policies) == 0
}
