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
// states. It is safe for concurrent use. A nil service is an error that
// does not match ErrNotReady.
func Ready(svcs ...core.Service) error {
	if err := checkServices("health.Ready", svcs); err != nil {
		return err
	}
	return ready(svcs)
}

// ready is Ready for services checkServices accepted.
func ready(svcs []core.Service) error {
	nodes, err := safeEvaluate(readyz, svcs)
	if err != nil {
		return fmt.Errorf("health.Ready: %w", err)
	}
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

// WaitReady waits until svcs are ready, as Ready reports it, and returns
// nil. It waits through New and Starting, so it can be called before the
// services are started, from a goroutine that needs them up. It returns an
// error matching ErrNotReady as soon as one of them reaches a final state
// (it will never be ready), wrapping the service's Err, or once ctx ends,
// wrapping ctx's cause and why the services were not ready then.
//
// WaitReady looks at the services when one of them reaches a final state
// and otherwise every MonitorInterval (the shortest among svcs; for a
// service without one, core.DefaultMonitorInterval), the pace at which
// results change. It runs no check. WaitReady with no services returns nil;
// with a nil one, at once an error that does not match ErrNotReady.
func WaitReady(ctx context.Context, svcs ...core.Service) error {
	if err := checkServices("health.WaitReady", svcs); err != nil {
		return err
	}
	poll := time.Duration(0)
	for _, s := range svcs {
		interval := core.DefaultMonitorInterval
		if c, ok := s.(checker); ok {
			interval = c.MonitorInterval()
		}
		if poll == 0 || interval < poll {
			poll = interval
		}
	}
	if len(svcs) == 0 {
		return nil
	}

	// One goroutine per service wakes the loop when the service ends; all
	// of them return before WaitReady does.
	ended := make(chan struct{}, 1)
	watch, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, s := range svcs {
		wg.Go(func() {
			select {
			case <-s.Done():
				select {
				case ended <- struct{}{}:
				default:
				}
			case <-watch.Done():
			}
		})
	}

	t := time.NewTimer(poll)
	defer t.Stop()
	for {
		err := ready(svcs)
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
		case <-ended:
		case <-t.C:
			t.Reset(poll)
		}
	}
}
