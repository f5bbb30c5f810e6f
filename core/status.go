package core

import (
	"fmt"
	"slices"

	"github.com/coreservice/coreservice/internal/names"
)

// Status is what one of a service's units says it is doing, as the probes
// (package health) and deps.Graph show it: a supervisor's "restarting
// (attempt 2, next in 1.5s)", a leader task's "standby". Units set it with
// Host.SetStatus.
type Status struct {
	// Name names the status among the service's parts: a path segment of
	// the probes (/readyz/<service>/<name>), unique among the service's
	// statuses, and best distinct from its checks' and requirements'
	// names (a probe path naming both finds the first).
	Name string
	// Text says what the unit is doing. The probes serve it, also when
	// reasons are withheld: it must hold no secret.
	Text string
	// Ready reports whether the unit lets the service be ready. A status
	// that is not Ready makes Healthcheck fail (ErrUnhealthy) and the
	// service not ready in the probes, but it never fails the service
	// (the monitor does not look at statuses), nor the start of a parent
	// (the one check of a requirement in its parent's start leaves the
	// statuses out, and the services its units hold: they say whether it
	// is ready, not whether it started).
	Ready bool
}

// SetStatus sets the status named name of the service (see Status),
// replacing the one of that name; an empty text removes it. It does not
// wait and is safe for concurrent use. An invalid name (empty, or one
// that cannot be a probe path segment) is logged as an error and the
// status is not set.
//
// Statuses outlive the unit that set them, until it clears them: once the
// service is no longer Running its state says more, and the probes and
// Healthcheck report that first.
func (h *Host) SetStatus(name, text string, ready bool) {
	b := h.b
	if err := names.Check(name); err != nil {
		b.logger().Error(fmt.Sprintf("Host.SetStatus(%q): %v: not set", name, err))
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	i := slices.IndexFunc(b.statuses, func(s Status) bool { return s.Name == name })
	switch {
	case text == "" && i >= 0:
		b.statuses = slices.Delete(b.statuses, i, i+1)
	case text == "":
	case i >= 0:
		b.statuses[i] = Status{Name: name, Text: text, Ready: ready}
	default:
		b.statuses = append(b.statuses, Status{Name: name, Text: text, Ready: ready})
	}
}

// Statuses returns the statuses the service's units set (Host.SetStatus),
// in the order they were first set. It is safe for concurrent use.
func (b *Base) Statuses() []Status {
	if b.invalid() != nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.statuses)
}

// notReadyStatuses returns an error for each status that is not Ready.
func (b *Base) notReadyStatuses() []error {
	b.mu.Lock()
	defer b.mu.Unlock()
	var errs []error
	for _, s := range b.statuses {
		if !s.Ready {
			errs = append(errs, fmt.Errorf("%s: %s", s.Name, s.Text))
		}
	}
	return errs
}
