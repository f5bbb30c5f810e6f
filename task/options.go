package task

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/coreservice/coreservice/internal/values"
)

// Option configures a task built by New or Func. Options are values, not
// closures: they print themselves (String), so a task can be logged with its
// settings, and compare with == (options holding a function, Schedule and
// Retry, by identity). The interface is sealed: only this package
// implements it.
type Option interface {
	fmt.Stringer
	apply(c *config)
}

// DefaultEvery is the delay between two runs of a worker when no Every,
// Schedule or Once is given: 100 ms, as in core-service's @task.
const DefaultEvery = 100 * time.Millisecond

// cadence is what a worker does after a successful run.
type cadence int

const (
	cadenceEvery    cadence = iota // wait config.every, run again
	cadenceSchedule                // wait what config.schedule says, run again
	cadenceOnce                    // end the worker
)

// config is the settings of one task, built by newConfig.
type config struct {
	cadence  cadence
	every    time.Duration
	schedule func() backoff.BackOff // cadenceSchedule only
	retry    func() backoff.BackOff // nil: the first failure is the service's
	workers  int
	delay    time.Duration
	timeout  time.Duration // 0: none
	jitter   float64
	errs     []error
}

// newConfig sets the defaults, applies opts in order and validates the
// result. The error joins every invalid setting, each naming its option.
func newConfig(opts []Option) (config, error) {
	c := config{cadence: cadenceEvery, every: DefaultEvery, workers: 1}
	for i, o := range opts {
		if values.IsNil(o) {
			c.errs = append(c.errs, fmt.Errorf("option %d is nil", i))
			continue
		}
		o.apply(&c)
	}
	return c, errors.Join(c.errs...)
}

func (c *config) invalid(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// Every makes each worker wait d between the end of a run and the start of
// the next: a fixed delay, so a run never overlaps the previous one of its
// worker, and a slow run delays the next. Zero runs back to back. The
// default is DefaultEvery (100 ms). Negative is invalid.
//
// Every, Schedule and Once all say what follows a successful run; the last
// one given wins. Every(d) is Schedule with a backoff.ConstantBackOff of d.
func Every(d time.Duration) Option { return everyOption(d) }

type everyOption time.Duration

func (o everyOption) apply(c *config) {
	if o < 0 {
		c.invalid("task.Every: got %v, want >= 0", time.Duration(o))
		return
	}
	c.cadence, c.every, c.schedule = cadenceEvery, time.Duration(o), nil
}

func (o everyOption) String() string { return fmt.Sprintf("task.Every(%v)", time.Duration(o)) }

// Once makes each worker end after its first successful run: the task is
// not periodic. A failed run is retried as the Retry policy says. The
// service keeps running after its once-tasks end. Every, Schedule and Once
// all say what follows a successful run; the last one given wins.
func Once() Option { return onceOption{} }

type onceOption struct{}

func (onceOption) apply(c *config) { c.cadence, c.schedule = cadenceOnce, nil }
func (onceOption) String() string  { return "task.Once()" }

// Schedule takes the delays between successful runs from a backoff policy:
// after each successful run, the worker waits the policy's NextBackOff().
// When the policy returns backoff.Stop, the worker ends cleanly, as with
// ErrDone; the service keeps running. A policy that panics fails the service
// with a *core.TaskError. The policy's Reset is never called: a worker takes
// its delays in order from its own policy.
//
// factory is called once per worker when the service starts, because a
// backoff.BackOff is stateful: each worker needs its own. A nil factory, or
// one that returns nil, is invalid and reported by the service's Start.
// Every, Schedule and Once all say what follows a successful run; the last
// one given wins.
func Schedule(factory func() backoff.BackOff) Option { return &scheduleOption{factory} }

type scheduleOption struct{ factory func() backoff.BackOff }

func (o *scheduleOption) apply(c *config) {
	if o.factory == nil {
		c.invalid("task.Schedule: nil policy factory")
		return
	}
	c.cadence, c.schedule = cadenceSchedule, o.factory
}

func (*scheduleOption) String() string { return "task.Schedule(...)" }

// Retry retries failed runs as a backoff policy says. After a failed run
// the worker waits the policy's NextBackOff() and runs again. A success
// ends the streak of failures: the first failure after a success (and the
// first failure ever) calls the policy's Reset() before NextBackOff(), so
// that a policy measuring elapsed time, like backoff.ExponentialBackOff's
// MaxElapsedTime, counts from the first failure of the streak, not from
// the last success (the wait between successful runs is not retry time).
// When the policy returns backoff.Stop, or panics, the failure becomes the
// service's: the service fails with a *core.TaskError (which, for a panic,
// wraps the panic too). An error wrapped with backoff.Permanent is never
// retried. A run that panics is a failed run like any other.
//
// The default is no retry: the first failure fails the service, as in
// core-service. factory is called once per worker when the service starts,
// because a backoff.BackOff is stateful: each worker needs its own. A nil
// factory, or one that returns nil, is invalid and reported by the service's
// Start. Repeats replace.
func Retry(factory func() backoff.BackOff) Option { return &retryOption{factory} }

type retryOption struct{ factory func() backoff.BackOff }

func (o *retryOption) apply(c *config) {
	if o.factory == nil {
		c.invalid("task.Retry: nil policy factory")
		return
	}
	c.retry = o.factory
}

func (*retryOption) String() string { return "task.Retry(...)" }

// MaxWorkers is the most workers one task may have.
const MaxWorkers = 1 << 16

// Workers runs n workers, each a goroutine with its own loop, its own delays
// and its own Schedule and Retry policies; they run fn concurrently. The
// default is 1. Less than 1, or more than MaxWorkers, is invalid. Repeats
// replace.
func Workers(n int) Option { return workersOption(n) }

type workersOption int

func (o workersOption) apply(c *config) {
	if o < 1 || o > MaxWorkers {
		c.invalid("task.Workers: got %d, want 1 to %d", int(o), MaxWorkers)
		return
	}
	c.workers = int(o)
}

func (o workersOption) String() string { return fmt.Sprintf("task.Workers(%d)", int(o)) }

// Delay makes each worker wait d before its first run. The default is 0:
// the first run starts as soon as the service launches the task, during
// Start. Negative is invalid. Repeats replace.
func Delay(d time.Duration) Option { return delayOption(d) }

type delayOption time.Duration

func (o delayOption) apply(c *config) {
	if o < 0 {
		c.invalid("task.Delay: got %v, want >= 0", time.Duration(o))
		return
	}
	c.delay = time.Duration(o)
}

func (o delayOption) String() string { return fmt.Sprintf("task.Delay(%v)", time.Duration(o)) }

// Timeout bounds each run: its context is cancelled d after the run starts.
// A run that then returns an error has failed (the error wraps
// context.DeadlineExceeded); the Retry policy applies. Timeout does not
// abandon a run that ignores its context: the worker waits for fn to
// return. The result consumers (OnResult) run within the same bound. The
// default is no timeout. Zero or negative is invalid. Repeats replace.
func Timeout(d time.Duration) Option { return timeoutOption(d) }

type timeoutOption time.Duration

func (o timeoutOption) apply(c *config) {
	if o <= 0 {
		c.invalid("task.Timeout: got %v, want > 0", time.Duration(o))
		return
	}
	c.timeout = time.Duration(o)
}

func (o timeoutOption) String() string { return fmt.Sprintf("task.Timeout(%v)", time.Duration(o)) }

// Jitter randomizes every wait of the task by up to fraction of its length:
// a wait of d becomes a uniformly random duration in
// [d*(1-fraction), d*(1+fraction)]. It applies to Delay, to the delays
// between runs (Every or Schedule) and to the Retry delays, each drawn
// anew, so that workers and replicas do not run in lockstep. The default is
// 0 (no jitter). A fraction outside [0, 1] is invalid. Repeats replace.
func Jitter(fraction float64) Option { return jitterOption(fraction) }

type jitterOption float64

func (o jitterOption) apply(c *config) {
	if !(o >= 0 && o <= 1) { // also catches NaN
		c.invalid("task.Jitter: got %v, want a fraction in [0, 1]", float64(o))
		return
	}
	c.jitter = float64(o)
}

func (o jitterOption) String() string { return fmt.Sprintf("task.Jitter(%v)", float64(o)) }

// jittered randomizes d by fraction f, with r uniform in [0, 1).
func jittered(d time.Duration, f, r float64) time.Duration {
	if f == 0 || d <= 0 {
		return d
	}
	x := float64(d) * (1 - f + 2*f*r)
	if x >= math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(x)
}
