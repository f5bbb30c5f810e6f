package deps

import (
	"errors"
	"fmt"
	"strings"

	"github.com/samber/lo"

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
