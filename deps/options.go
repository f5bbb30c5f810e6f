package deps

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/samber/lo"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/names"
	"github.com/coreservice/coreservice/internal/values"
)

// Option configures a requirement.
type Option interface {
	apply(*config)
	fmt.Stringer
}

type config struct {
	name  string
	after []AnyRequirement
	errs  []error

	sv *superviseConfig // the options only Supervise takes; nil when none was given
}

// superviseConfig is the settings only Supervise takes, apart so that the
// other requirements do not carry them.
type superviseConfig struct {
	healthyAfter time.Duration
	hooks        []func(core.Event)
	given        []string // the options given, for the error on another kind
}

// supervise returns c's Supervise settings, made with their defaults on
// first use.
func (c *config) supervise() *superviseConfig {
	if c.sv == nil {
		c.sv = &superviseConfig{healthyAfter: DefaultHealthyAfter}
	}
	return c.sv
}

func newConfig(opts []Option) config {
	var c config
	for i, o := range opts {
		if o == nil {
			c.errs = append(c.errs, fmt.Errorf("option %d is nil", i))
			continue
		}
		o.apply(&c)
	}
	return c
}

// After makes the requirement wait, in its parent's start, until the named
// requirements of the same parent are Running; a Lazy one is built only
// then. The parent stops it before them. Naming a requirement of another
// service is reported by the parent's Start; so is a cycle of After.
// Repeats append.
func After(reqs ...AnyRequirement) Option { return afterOption(reqs) }

type afterOption []AnyRequirement

func (o afterOption) apply(c *config) {
	for _, r := range o {
		if values.IsNil(r) {
			c.errs = append(c.errs, errors.New("deps.After: nil requirement"))
			continue
		}
		c.after = append(c.after, r)
	}
}

func (o afterOption) String() string {
	return "deps.After(" + strings.Join(lo.Map(o, func(r AnyRequirement, _ int) string { return fmt.Sprint(r) }), ", ") + ")"
}

// Name names the requirement in errors, graphs and probe paths (spans name
// the service). The default is the service's name; for Lazy, before the
// service is built, "lazy " and its type. Empty is invalid. Repeats
// replace. Names must be unique among a parent's requirements and differ
// from its checks' names (two Lazy of one type need Name): the parent's
// Start reports a repeat as an invalid option, also when a Lazy without
// Name builds a service whose name is already taken (checked once built,
// before that service starts). A name is a path segment of the health
// probes: one with a '/', a control character such as a newline, or
// another character that is not graphic is invalid, whether given here or
// the default.
func Name(name string) Option { return nameOption(name) }

type nameOption string

func (o nameOption) apply(c *config) {
	if o == "" {
		c.errs = append(c.errs, errors.New("deps.Name: empty name"))
		return
	}
	if err := names.Check(string(o)); err != nil {
		c.errs = append(c.errs, fmt.Errorf("%v: %w", o, err))
		return
	}
	c.name = string(o)
}

func (o nameOption) String() string { return fmt.Sprintf("deps.Name(%q)", string(o)) }

// HealthyAfter sets how long an instance of a Supervise requirement must
// have been Running for its failure to begin a new streak of restarts:
// the supervisor then Resets the policy before asking it for a delay. The
// default is DefaultHealthyAfter; d must be positive. Repeats replace. Only
// Supervise takes it: on another requirement it is an invalid option.
func HealthyAfter(d time.Duration) Option { return healthyAfterOption(d) }

type healthyAfterOption time.Duration

func (o healthyAfterOption) apply(c *config) {
	sv := c.supervise()
	sv.given = append(sv.given, o.String())
	if o <= 0 {
		c.errs = append(c.errs, fmt.Errorf("%v: must be positive", o))
		return
	}
	sv.healthyAfter = time.Duration(o)
}

func (o healthyAfterOption) String() string {
	return fmt.Sprintf("deps.HealthyAfter(%v)", time.Duration(o))
}

// OnEvent adds fn to the OnEvent hooks of the supervisor of a Supervise
// requirement (core.OnEvent): it receives the supervisor's events
// (core.RestartScheduled, core.Restarted, core.RestartGaveUp and its state
// changes), in order, never blocking the supervisor. The supervisor's
// logger, the parent's, logs them either way. A nil fn is an invalid
// option. Repeats append. Only Supervise takes it.
func OnEvent(fn func(core.Event)) Option { return &onEventOption{fn} }

type onEventOption struct{ fn func(core.Event) }

func (o *onEventOption) apply(c *config) {
	sv := c.supervise()
	sv.given = append(sv.given, o.String())
	if o.fn == nil {
		c.errs = append(c.errs, errors.New("deps.OnEvent: nil function"))
		return
	}
	sv.hooks = append(sv.hooks, o.fn)
}

func (o *onEventOption) String() string { return "deps.OnEvent(func)" }
