package serve

import (
	"errors"
	"fmt"
)

// Option configures a server unit built by HTTP or New. Options are values,
// not closures: they print themselves (String), so a unit can be logged
// with its settings, and compare with ==. The interface is sealed: only
// this package implements it.
type Option interface {
	fmt.Stringer
	apply(c *config)
}

// config is the settings of one unit, built by newConfig.
type config struct {
	name string // "" until Name: the unit is named after its address
	errs []error
}

// newConfig applies opts in order and validates the result. The error
// joins every invalid setting, each naming its option.
func newConfig(opts []Option) (config, error) {
	var c config
	for i, o := range opts {
		if isNil(o) {
			c.errs = append(c.errs, fmt.Errorf("option %d is nil", i))
			continue
		}
		o.apply(&c)
	}
	return c, errors.Join(c.errs...)
}

// Name names the server in the service's errors, logs and stop timeouts:
// its unit is "server <name>". The default is the address the server is
// given, such as "server 127.0.0.1:8080". A service's units need unique
// names, so two servers of one service on the same address (two on port 0,
// say) need a Name each. Empty is invalid. A later Name replaces an earlier
// one.
func Name(name string) Option { return nameOption(name) }

type nameOption string

func (o nameOption) String() string { return fmt.Sprintf("serve.Name(%q)", string(o)) }

func (o nameOption) apply(c *config) {
	if o == "" {
		c.errs = append(c.errs, errors.New("serve.Name: empty name"))
		return
	}
	c.name = string(o)
}
