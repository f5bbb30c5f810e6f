package health

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coreservice/coreservice/core"
)

// ErrNotReady matches the errors of Ready and WaitReady.
var ErrNotReady = errors.New("not ready")

// Ready reports whether svcs are ready by the rules of the /readyz probe:
// nil if every service and every requirement under them is Running and the
// latest result of each of their checks passed and is fresh (see
// StalePeriods). Otherwise it returns an error matching ErrNotReady that
// names each part that is not ready and wraps why, such as the check's own
// error.
//
// Like Handler, Ready runs no check: it reads the recorded results and the
// states. It is safe for concurrent use. A service that cannot be probed
// (nil, not built with core.NewService, or two with one name; see Handler)
// is an error that does not match ErrNotReady.
func Ready(svcs ...core.Service) error {
	if err := checkServices("health.Ready", svcs); err != nil {
		return err
	}
	nodes, err := safeEvaluate(readyz, svcs)
	if err != nil {
		return fmt.Errorf("health.Ready: %w", err)
	}
	return notReady(nodes)
}

// notReady judges nodes as Ready does.
func notReady(nodes []*node) error {
	var errs []error
	lines, _ := list("", nodes, nil)
	for _, l := range lines {
		if l.n.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", l.name, l.n.err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrNotReady, errors.Join(errs...))
	}
	return nil
}

// changer is what WaitReady uses to learn, without polling, that a
// service's state changed: core.Base has it.
type changer interface {
	Changed() <-chan struct{}
}

// WaitReady waits until svcs are ready, as Ready reports it, and returns
// nil. It waits through New and Starting, so it can be called before the
// services are started, from a goroutine that needs them up. It returns an
// error matching ErrNotReady as soon as one of them reaches a final state
// (it will never be ready), wrapping the service's Err, or once ctx ends,
// wrapping ctx's cause and why the services were not ready then.
//
// WaitReady looks at the services whenever readiness can change: when the
// state of one of them changes (core.Base.Changed), when a check of any
// of them or of their requirements records a result, and when one of them
// reaches a final state. So it returns at the moment the services become
// ready, not at the next monitor run. A service not built on core.Base
// does not say when its state changes: while there is one, WaitReady also
// looks every core.DefaultMonitorInterval. It runs no check. WaitReady with
// no services returns nil; with one that cannot be probed (see Ready), at
// once an error that does not match ErrNotReady.
func WaitReady(ctx context.Context, svcs ...core.Service) error {
	if err := checkServices("health.WaitReady", svcs); err != nil {
		return err
	}
	if len(svcs) == 0 {
		return nil
	}

	// wake holds one pending "look again"; whoever may change readiness
	// sends to it without blocking.
	wake := make(chan struct{}, 1)
	notify := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	watched := make(map[*check]bool)
	defer func() {
		for c := range watched {
			c.unwatch(wake)
		}
	}()

	// One goroutine per service wakes the loop at every state change and
	// when it ends; all of them return before WaitReady does. Each takes
	// the next Changed channel before it wakes the loop, and the first one
	// before the loop first looks, so that no change goes unseen.
	watch, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	poll := false
	for _, s := range svcs {
		c, ok := s.(changer)
		poll = poll || !ok
		var changed <-chan struct{} // nil, never ready, for a service that does not say
		if ok {
			changed = c.Changed()
		}
		wg.Go(func() {
			for {
				select {
				case <-changed:
					changed = c.Changed()
					notify()
				case <-s.Done():
					notify()
					return
				case <-watch.Done():
					return
				}
			}
		})
	}
	var tick <-chan time.Time
	if poll {
		t := time.NewTicker(core.DefaultMonitorInterval)
		defer t.Stop()
		tick = t.C
	}

	for {
		nodes, err := safeEvaluate(readyz, svcs)
		if err != nil {
			return fmt.Errorf("health.WaitReady: %w", err)
		}
		if watchChecks(nodes, wake, watched) {
			// A check seen for the first time: a result it recorded before
			// it was watched may be missing from nodes, so look again.
			continue
		}
		err = notReady(nodes)
		if err == nil {
			return nil
		}
		for _, s := range svcs {
			switch s.State() {
			case core.StateTerminated:
				return fmt.Errorf("%w: %s is terminated", ErrNotReady, s.Name())
			case core.StateFailed:
				select {
				case <-s.Done(): // Err is set once Done is closed
				case <-ctx.Done():
				}
				if cause := s.Err(); cause != nil {
					return fmt.Errorf("%w: %s failed: %w", ErrNotReady, s.Name(), cause)
				}
				return fmt.Errorf("%w: %s failed", ErrNotReady, s.Name())
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("health.WaitReady: %w; %w", context.Cause(ctx), err)
		case <-wake:
		case <-tick:
		}
	}
}

// watchChecks makes every check under nodes not in watched yet send its
// results to wake, adds it to watched, and reports whether there was one.
func watchChecks(nodes []*node, wake chan<- struct{}, watched map[*check]bool) bool {
	added := false
	for _, n := range nodes {
		if c := n.check; c != nil && !watched[c] {
			c.watch(wake)
			watched[c] = true
			added = true
		}
		if watchChecks(n.kids, wake, watched) {
			added = true
		}
	}
	return added
}
