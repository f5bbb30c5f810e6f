package health

import (
	"errors"
	"fmt"

	"github.com/coreservice/coreservice/core"
	"github.com/coreservice/coreservice/internal/names"
	"github.com/coreservice/coreservice/internal/values"
)

// checkServices reports why svcs cannot be probed: a nil service, a
// service whose methods panic or whose Done is nil (a type embedding a nil
// *core.Base, or a zero core.Base, neither built with core.NewService), a
// type embedding *core.Base with a Healthcheck of its own, which the probes
// would not see (core.ValidateHealthcheck), a name that is not a valid
// path segment, or two services with one name.
// fn names the caller in the error.
func checkServices(fn string, svcs []core.Service) error {
	seen := make(map[string]bool, len(svcs))
	for i, s := range svcs {
		if values.IsNil(s) {
			return fmt.Errorf("%s: service %d is nil", fn, i)
		}
		if err := core.Validate(s); err != nil {
			return fmt.Errorf("%s: service %d (%T) is not usable: %w", fn, i, s, err)
		}
		if err := core.ValidateHealthcheck(s); err != nil {
			return fmt.Errorf("%s: service %d: %w", fn, i, err)
		}
		name, err := inspect(s)
		if err != nil {
			return fmt.Errorf("%s: service %d (%T) is not usable: %w; build services with core.NewService", fn, i, s, err)
		}
		if err := names.Check(name); err != nil {
			return fmt.Errorf("%s: service %d: %w", fn, i, err)
		}
		if seen[name] {
			return fmt.Errorf("%s: two services named %q", fn, name)
		}
		seen[name] = true
	}
	return nil
}

// inspect calls the methods the probes use of s, and returns its name or
// why it cannot be probed.
func inspect(s core.Service) (name string, err error) {
	method := "Name"
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("its %s method panicked (a nil or zero *core.Base?): %v", method, v)
		}
	}()
	name = s.Name()
	if name == "" {
		return "", errors.New("empty name (a zero core.Base?)")
	}
	method = "Done"
	if s.Done() == nil {
		return "", errors.New("its Done channel is nil (a zero core.Base?)")
	}
	method = "State"
	s.State()
	if c, ok := s.(checker); ok {
		method = "Checks"
		c.Checks()
		method = "MonitorInterval"
		c.MonitorInterval()
	}
	if d, ok := s.(dependent); ok {
		method = "Dependencies"
		d.Dependencies()
	}
	return name, nil
}

// errPanicked matches the error of safeEvaluate when a service panicked.
var errPanicked = errors.New("a service panicked while probed")

// safeEvaluate is evaluate, with a panic in a service's methods (a
// requirement that was not built with core.NewService, say) turned into
// an error.
func safeEvaluate(p probe, svcs []core.Service) (nodes []*node, err error) {
	defer func() {
		if v := recover(); v != nil {
			nodes, err = nil, fmt.Errorf("%w: %v", errPanicked, v)
		}
	}()
	return evaluate(p, svcs), nil
}
