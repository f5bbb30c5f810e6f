package task

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/coreservice/coreservice/internal/values"
	"github.com/coreservice/coreservice/leader"
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

// DefaultEvery is the delay between two runs of a worker when neither
// Every nor Schedule is given: 100 ms, as in core-service's @task.
const DefaultEvery = 100 * time.Millisecond

// cadence is how long a worker waits after a successful run.
type cadence int

const (
	cadenceEvery    cadence = iota // wait config.every
	cadenceSchedule                // wait what the policy config.schedule says
)

// config is the settings of one task, built by newConfig.
type config struct {
	once     bool // end the worker after its first success
	cadence  cadence
	every    time.Duration
	schedule int // index in policies of the Schedule that won; cadenceSchedule only
	retry    int // index in policies of the Retry that won; -1: the first failure is the service's
	// policies is every Schedule and Retry factory given, in order, winning
	// or not: the service's Start calls each once to validate it.
	policies []policyFactory
	workers  int
	delay    time.Duration
	timeout  time.Duration // 0: none
	jitter   float64
	leader   *leaderOption // nil: no task.Leader (a pointer: one word in every task's config)
	errs     []error
}

// policyFactory is the factory of a Schedule or Retry option.
type policyFactory struct {
	option  string // "task.Schedule" or "task.Retry"
	factory func() backoff.BackOff
}

// newConfig sets the defaults, applies opts in order and validates the
// result. The error joins every invalid setting, each naming its option.
func newConfig(opts []Option) (config, error) {
	c := config{cadence: cadenceEvery, every: DefaultEvery, schedule: -1, retry: -1, workers: 1}
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

// Every makes each worker wait d between the end of a successful run and
// the start of the next: a fixed delay, so a run never overlaps the previous
// one of its worker, and a slow run delays the next. Zero runs back to back.
// The default is DefaultEvery (100 ms). Negative is invalid.
//
// Every and Schedule both say how long a worker waits after a successful
// run: they replace each other, the last one given wins. Every(d) is
// Schedule with a backoff.ConstantBackOff of d. Every is independent of
// Once, whatever their order (under Once no worker waits after a success).
func Every(d time.Duration) Option { return everyOption(d) }

type everyOption time.Duration

func (o everyOption) apply(c *config) {
	if o < 0 {
		c.invalid("task.Every: got %v, want >= 0", time.Duration(o))
		return
	}
	c.cadence, c.every, c.schedule = cadenceEvery, time.Duration(o), -1
}

func (o everyOption) String() string { return fmt.Sprintf("task.Every(%v)", time.Duration(o)) }

// Once makes each worker end after its first successful run: the task is
// not periodic (core-service's periodic=False). A failed run is retried as
// the Retry policy says. The service keeps running after its once-tasks
// end.
//
// Once says whether a worker repeats, Every and Schedule how long it waits
// between runs: Once is independent of them, and the order in which they
// are given never changes its meaning (Once then Every runs once, as Every
// then Once does). A Schedule given with Once is still validated by Start.
func Once() Option { return onceOption{} }

type onceOption struct{}

func (onceOption) apply(c *config) { c.once = true }
func (onceOption) String() string  { return "task.Once()" }

// Schedule takes the delays between successful runs from a backoff policy:
// after each successful run, the worker waits the policy's NextBackOff().
// When the policy returns backoff.Stop, the worker ends cleanly, as with
// ErrDone; the service keeps running. A policy that panics, or returns a
// negative delay other than backoff.Stop, fails the service with a
// *core.TaskError naming task.Schedule. The policy's Reset is never called:
// a worker takes its delays in order from its own policy.
//
// factory is called once per worker, because a backoff.BackOff is
// stateful: each worker needs its own. The first call is made by the
// service's Start, before it starts anything, to validate the option: a nil
// factory, one that returns nil and one that panics are invalid, reported
// by Start as invalid options. The first worker then gets the policy of
// that call, the others call factory when the task is launched. A Schedule
// that a later Every or Schedule replaces, or that Once makes unused, is
// still validated: its factory is called once, at Start, and the policy
// discarded.
//
// Every and Schedule both say how long a worker waits after a successful
// run: they replace each other, the last one given wins. Schedule is
// independent of Once, whatever their order.
func Schedule(factory func() backoff.BackOff) Option { return &scheduleOption{factory} }

type scheduleOption struct{ factory func() backoff.BackOff }

func (o *scheduleOption) apply(c *config) {
	if o.factory == nil {
		c.invalid("task.Schedule: nil policy factory")
		return
	}
	c.cadence, c.schedule = cadenceSchedule, len(c.policies)
	c.policies = append(c.policies, policyFactory{"task.Schedule", o.factory})
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
// wraps the panic too). A negative delay other than backoff.Stop is
// invalid (there is no floor: it would make a failing task a busy loop):
// the failure becomes the service's too, and the *core.TaskError also
// names task.Retry and the delay. An error wrapped with backoff.Permanent
// is never retried. A run that panics is a failed run like any other. A
// run that fails while the service stops is not retried; see the package
// documentation.
//
// The default is no retry: the first failure fails the service, as in
// core-service. factory is called once per worker, because a
// backoff.BackOff is stateful: each worker needs its own. The first call is
// made by the service's Start, before it starts anything, to validate the
// option: a nil factory, one that returns nil and one that panics are
// invalid, reported by Start as invalid options. The first worker then gets
// the policy of that call, the others call factory when the task is
// launched. Repeats replace, but a replaced Retry is still validated: its
// factory is called once, at Start, and the policy discarded.
func Retry(factory func() backoff.BackOff) Option { return &retryOption{factory} }

type retryOption struct{ factory func() backoff.BackOff }

func (o *retryOption) apply(c *config) {
	if o.factory == nil {
		c.invalid("task.Retry: nil policy factory")
		return
	}
	c.retry = len(c.policies)
	c.policies = append(c.policies, policyFactory{"task.Retry", o.factory})
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

// Leader makes the task run only while this replica of the service leads
// the election e campaigns on (package leader): the task's workers run
// while it leads, and on the other replicas the task waits, running
// nothing. The task campaigns once (one campaign for all its workers),
// from the service's Start, retrying failed campaigns with a backoff
// (leader.Lead), and the service starts and runs whether it leads or not.
//
// Each term won starts the workers as a launch does (Delay first); the
// context of every run carries the term's fencing token (leader.Token).
// When leadership is lost, the run in progress is cancelled at once: its
// context ends with a cause matching leader.ErrLost. A run that then
// returns that cancellation is not a failure (no TaskRunFailed, no
// TaskRetryScheduled, no retry counted); a run that returns another error
// is handled as a failure during a stop is. No new run starts until
// leadership is won again; workers resume with their own state (a worker
// that ended, by ErrDone, Once or its Schedule, stays ended). Once every
// worker has ended, the task keeps the leadership until it is lost or the
// service stops, so that another replica does not do the work again.
// Stop cancels the runs, waits for them, and resigns at once.
//
// A nil e (also a typed nil) is invalid; an e that is a leader.Validator
// is validated by the service's Start. Repeats replace. Leader options
// compare by identity.
func Leader(e leader.Elector) Option { return &leaderOption{e} }

type leaderOption struct{ e leader.Elector }

func (o *leaderOption) apply(c *config) {
	if values.IsNil(o.e) {
		c.invalid("task.Leader: nil leader.Elector")
		return
	}
	c.leader = o
}

func (o *leaderOption) String() string {
	if values.IsNil(o.e) {
		return "task.Leader(<nil>)"
	}
	return fmt.Sprintf("task.Leader(%T)", o.e)
}
