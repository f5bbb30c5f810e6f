package health

import (
	"fmt"
	"time"
)

// Option configures one check built by Check. Options are values that print
// as the call that made them, such as "health.Timeout(2s)". Only this
// package makes them.
type Option interface {
	fmt.Stringer
	apply(*config)
}

// DefaultThreshold is how many consecutive failed monitor runs fail the
// service when Threshold is not given: the first one, as in core-service.
const DefaultThreshold = 1

// config is the settings of one check, built by newConfig.
type config struct {
	timeout    time.Duration // the deadline of a run, when hasTimeout
	hasTimeout bool          // Timeout was given; else half the monitor interval
	threshold  int
	grace      time.Duration // StartupGrace; 0: none
	errs       []error
}

// newConfig sets the defaults, applies opts in order and returns the
// settings, or every invalid option joined.
func newConfig(opts []Option) config {
	c := config{threshold: DefaultThreshold}
	for i, o := range opts {
		if o == nil {
			c.errs = append(c.errs, fmt.Errorf("option %d is nil", i))
			continue
		}
		o.apply(&c)
	}
	return c
}

// timeoutFor is the deadline of one run of the check in a service whose
// monitor runs every interval.
func (c config) timeoutFor(interval time.Duration) time.Duration {
	if c.hasTimeout {
		return c.timeout
	}
	return max(interval/2, time.Nanosecond)
}

// Timeout bounds each run of the check: at start, on every monitor tick and
// in every Healthcheck. A run that has not returned by then fails, even if
// its function ignores its context (see Check). The default is half the
// service's MonitorInterval (50 ms with core's default of 100 ms), so that
// a hanging check delays the next monitor run by at most that much. Zero or
// negative is invalid and reported by Start. Repeats replace.
func Timeout(d time.Duration) Option { return timeoutOption(d) }

type timeoutOption time.Duration

func (o timeoutOption) apply(c *config) {
	if o <= 0 {
		c.errs = append(c.errs, fmt.Errorf("%v: want > 0", o))
		return
	}
	c.timeout, c.hasTimeout = time.Duration(o), true
}

func (o timeoutOption) String() string { return fmt.Sprintf("health.Timeout(%v)", time.Duration(o)) }

// Threshold sets how many consecutive failed monitor runs of the check fail
// the service; a passing run resets the count. The default is
// DefaultThreshold (1: the first failure). The run at start is not counted:
// a failure there fails the start whatever the threshold
// (see StartupGrace for a check that need not pass there). Less than 1 is
// invalid and reported by Start. Repeats replace.
func Threshold(n int) Option { return thresholdOption(n) }

type thresholdOption int

func (o thresholdOption) apply(c *config) {
	if o < 1 {
		c.errs = append(c.errs, fmt.Errorf("%v: want >= 1", o))
		return
	}
	c.threshold = int(o)
}

func (o thresholdOption) String() string { return fmt.Sprintf("health.Threshold(%d)", int(o)) }

// StartupGrace gives the check a startup grace of d, as Kubernetes'
// startupProbe: until d has passed since the service became Running (the
// end of its Start), or until a run of the check passes, whichever comes
// first, a failure of the check makes the service not ready but does not
// fail it.
//
// So the check does not gate Start: its run there is recorded, and a
// failure leaves the service Running but not ready (/readyz reads
// "[-]api/stats failed: in startup grace: no stats yet" for that check).
// Failures on monitor ticks during the grace count towards no Threshold
// and raise no core.CheckFailed event; Healthcheck reports them, as
// "check stats: in startup grace: ...". Once the grace is over the check
// is an ordinary one: the monitor counts its failures from zero, and
// Threshold failures in a row fail the service. The monitor looks at the
// check on its ticks only, so a grace ends in effect at the first tick at
// or after d; d need not be a multiple of the MonitorInterval.
//
// Checks without it (and with StartupGrace(0), which means none) must pass
// at Start. Negative is invalid and reported by Start. Repeats replace.
func StartupGrace(d time.Duration) Option { return graceOption(d) }

type graceOption time.Duration

func (o graceOption) apply(c *config) {
	if o < 0 {
		c.errs = append(c.errs, fmt.Errorf("%v: want >= 0", o))
		return
	}
	c.grace = time.Duration(o)
}

func (o graceOption) String() string {
	return fmt.Sprintf("health.StartupGrace(%v)", time.Duration(o))
}
