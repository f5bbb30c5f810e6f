package etcd

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// DefaultTTL is the lease TTL when TTL is not given: 10 s, etcd's
// concurrency package's examples' figure. A replica that dies takes up to
// the TTL to be replaced; a leader cut off from etcd gives up after TTL/2.
const DefaultTTL = 10 * time.Second

// MinTTL is the shortest TTL that Validate accepts: 2 s. It is etcd's own
// minimum lease TTL with its default timings (--heartbeat-interval 100ms,
// --election-timeout 1000ms: ceil(1.5 × election timeout) = 2 s; etcd
// silently raises a shorter grant to it). A cluster configured with a longer
// election timeout raises short TTLs further; the elector then times its
// keepalives on the TTL etcd granted, never on a shorter one.
const MinTTL = 2 * time.Second

// Option configures an Elector built by NewElector. Options are values, not
// closures: they print themselves (String) and compare with ==. The
// interface is sealed: only this package implements it. A nil Option is an
// error from Validate.
type Option interface {
	fmt.Stringer
	apply(c *config)
}

// TTL sets the TTL of the lease that holds the leadership: a leader that
// dies is replaced at most TTL after its last keepalive, and a leader that
// cannot reach etcd gives its leadership up TTL/2 after the last keepalive
// that reached etcd. Default DefaultTTL. etcd counts TTLs in whole seconds:
// a TTL that is not a whole number of seconds, or below MinTTL, is an error
// from Validate. Repeats replace: the last one wins.
func TTL(d time.Duration) Option { return ttlOption(d) }

type ttlOption time.Duration

func (o ttlOption) apply(c *config) { c.ttl = time.Duration(o) }

// String returns "etcd.TTL(<d>)".
func (o ttlOption) String() string { return "etcd.TTL(" + time.Duration(o).String() + ")" }

// Value sets the value the leader publishes on its election key, so that
// others (etcdctl, Election.Leader) can see who leads. Default
// "<host name>/<pid>". The empty string is allowed. Repeats replace.
func Value(v string) Option { return valueOption(v) }

type valueOption string

func (o valueOption) apply(c *config) { c.value = string(o) }

// String returns "etcd.Value(<quoted value>)".
func (o valueOption) String() string { return "etcd.Value(" + strconv.Quote(string(o)) + ")" }

// config is the settings of one Elector, built by newConfig.
type config struct {
	ttl   time.Duration
	value string
	errs  []error
}

// defaultValue is "<host name>/<pid>".
func defaultValue() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return host + "/" + strconv.Itoa(os.Getpid())
}

// newConfig sets the defaults, applies opts in order and validates the
// result. Its error joins every invalid setting, each naming its option.
func newConfig(opts []Option) config {
	c := config{ttl: DefaultTTL, value: defaultValue()}
	var ttlOpt Option
	for i, o := range opts {
		if o == nil {
			c.errs = append(c.errs, fmt.Errorf("option %d is nil", i))
			continue
		}
		if _, ok := o.(ttlOption); ok {
			ttlOpt = o
		}
		o.apply(&c)
	}
	if ttlOpt != nil {
		switch {
		case c.ttl <= 0:
			c.errs = append(c.errs, fmt.Errorf("%v: TTL must be positive", ttlOpt))
		case c.ttl%time.Second != 0:
			c.errs = append(c.errs, fmt.Errorf("%v: etcd lease TTLs are whole seconds", ttlOpt))
		case c.ttl < MinTTL:
			c.errs = append(c.errs, fmt.Errorf("%v: below etcd's minimum lease TTL %v", ttlOpt, MinTTL))
		}
	}
	return c
}
